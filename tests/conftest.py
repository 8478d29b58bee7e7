"""Shared fixtures: the real IU-Xray reports (skipped when ../shared/data is absent) and small
R2Gen-format datasets built in temp folders. Nothing here downloads anything."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config):
    """The whole session on a temporary cache: tests never read or write the user's
    $UARBENCH_CACHE / ~/.cache/uarbench (a tokenizer a test fits must not become a user's run's,
    and a user's must not decide a test). Subprocesses inherit it. Removed at the end."""
    import tempfile
    config._uarbench_cache = tempfile.mkdtemp(prefix="uarbench-test-cache-")
    config._uarbench_cache_before = os.environ.get("UARBENCH_CACHE")
    os.environ["UARBENCH_CACHE"] = config._uarbench_cache


def pytest_unconfigure(config):
    import shutil
    cache = getattr(config, "_uarbench_cache", None)
    if cache is None:
        return
    before = config._uarbench_cache_before
    if before is None:
        os.environ.pop("UARBENCH_CACHE", None)
    else:
        os.environ["UARBENCH_CACHE"] = before
    shutil.rmtree(cache, ignore_errors=True)

SHARED_IU_XRAY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iu_xray"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread for every test: on a shared 2-core machine two OpenMP threads that wait
    for each other made tiny models up to 100x slower (measured). Restored after each test."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def iu_xray_root() -> Path:
    """Folder of the real IU-Xray annotation (CC BY-NC-ND: read in place, never copied)."""
    if not (SHARED_IU_XRAY / "annotation.json").is_file():
        pytest.skip("IU-Xray reports not present at ../shared/data/iu_xray")
    return SHARED_IU_XRAY


@pytest.fixture(scope="session")
def iu_xray_mesh_dev() -> Path:
    """The coders' MeSH annotations of the IU-Xray train split (read in place, never copied)."""
    path = SHARED_IU_XRAY / "mesh_dev.csv"
    if not path.is_file():
        pytest.skip("IU-Xray MeSH annotations not present at ../shared/data/iu_xray/mesh_dev.csv")
    return path


@pytest.fixture(scope="module")
def _early_jvms() -> dict:
    """JVMs a test module started early (overridden by modules that do: the METEOR tests)."""
    return {}


@pytest.fixture(scope="module")
def coco_meteor(_early_jvms):
    """pycocoevalcap's own Meteor (its JVM), closed after the module; skipped without Java."""
    import shutil
    if shutil.which("java") is None:
        pytest.skip("java not found on PATH")
    from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor
    m = _early_jvms.get("coco") or CocoMeteor()
    yield m
    with m.lock:
        m.meteor_p.stdin.close()
        m.meteor_p.kill()
        m.meteor_p.wait()


def write_release(root: Path, splits: dict[str, list[dict]], *, images: bool = True) -> Path:
    """Write a tiny R2Gen-format release (annotation.json + 8x8 PNGs) under ``root``."""
    from PIL import Image
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotation.json").write_text(json.dumps(splits))
    if images:
        for items in splits.values():
            for item in items:
                for rel in item.get("image_path", []):
                    p = root / "images" / rel
                    p.parent.mkdir(parents=True, exist_ok=True)
                    Image.new("L", (8, 8), 128).save(p)
    return root


def toy_splits() -> dict[str, list[dict]]:
    reports = ["The heart is normal. The lungs are clear.",
               "Mild cardiomegaly. No pleural effusion.",
               "The lungs are clear. No pneumothorax.",
               "The heart is normal. The lungs are clear."]
    def items(split: str, n: int) -> list[dict]:
        return [{"id": f"{split}{i}", "report": reports[i % len(reports)],
                 "image_path": [f"{split}{i}/0.png", f"{split}{i}/1.png"], "split": split}
                for i in range(n)]
    return {"train": items("train", 8), "val": items("val", 3), "test": items("test", 4)}


@pytest.fixture
def toy_release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "toy", toy_splits())


@pytest.fixture
def no_jvm(monkeypatch):
    """Any attempt to start or ask the METEOR jar fails the test (METEOR from stored statistics
    must not need Java)."""
    import uarbench.metrics.meteor as meteor_mod

    def refuse(*args, **kwargs):
        raise AssertionError("the METEOR jar was asked")
    monkeypatch.setattr(meteor_mod, "_jvm", refuse)
    monkeypatch.setattr(meteor_mod, "_ask", refuse)
