"""synth-cxr's JPEG option and parallel builds (for MIMIC-shaped benchmark sets): PNG builds
keep their keys and bytes, JPEG builds are their own entry with .jpg files, and the number of
build processes does not change a byte."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest
from PIL import Image

from uarbench.cli import main
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.errors import UarbenchError

TINY = SynthConfig(n_train=3, n_val=1, n_test=1, size=64, seed=2)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_png_keeps_its_key_and_jpeg_is_another():
    fields = asdict(TINY)
    assert fields.pop("image_format") == "png"
    before = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"))
                            .encode()).hexdigest()[:16]
    assert TINY.to_dict() == fields and TINY.cache_key() == before
    jpeg = TINY.replace(image_format="jpeg")
    assert jpeg.to_dict()["image_format"] == "jpeg" and jpeg.cache_key() != before
    assert SynthConfig.from_dict(jpeg.to_dict()) == jpeg
    assert SynthConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(UarbenchError, match="image_format"):
        SynthConfig(image_format="gif")


def test_jpeg_build_writes_jpg_files(tmp_path):
    root = generate_synth(tmp_path / "j", TINY.replace(image_format="jpeg"), progress=False)
    ann = json.loads((root / "annotation.json").read_text())
    item = ann["train"][0]
    assert item["image_path"] == [f"{item['id']}/0.jpg", f"{item['id']}/1.jpg"]
    with Image.open(root / "images" / item["image_path"][0]) as im:
        assert im.format == "JPEG" and im.mode == "L" and im.size == (64, 64)
    meta = json.loads((root / "synth_config.json").read_text())
    assert meta["config"]["image_format"] == "jpeg" and meta["views"][0].startswith("0.jpg")


def test_parallel_build_is_byte_identical(tmp_path):
    one = generate_synth(tmp_path / "one", TINY, progress=False)
    two = generate_synth(tmp_path / "two", TINY, progress=False, workers=2)
    assert _files(one) == _files(two)
    meta = json.loads((one / "synth_config.json").read_text())
    assert "image_format" not in meta["config"] and meta["views"][0].startswith("0.png")


def test_cli_format_option(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "synth", "--out", str(out), "--n-train", "2", "--n-val", "1",
                 "--n-test", "1", "--size", "64", "--format", "jpeg", "--workers", "1"]) == 0
    assert len(list((out / "images").rglob("*.jpg"))) == 8
