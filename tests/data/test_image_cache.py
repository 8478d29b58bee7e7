"""The decoded-image cache (uarbench/data/image_cache.py): a miss fills, a hit maps; the key
changes with what the pixels depend on; the pixels are load_views' own; the arrays are memory
maps of the cache file; concurrent fills are harmless; unreadable images are one clear error."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uarbench.data import image_cache
from uarbench.data.datasets import load_dataset
from uarbench.data.image_cache import CacheSpec, cached_images, dataset_images, decode_view
from uarbench.data.r2gen import Study
from uarbench.errors import UarbenchError
from uarbench.training.data import load_views, split_tensors

REPORTS = ["The heart is normal. The lungs are clear.", "Mild cardiomegaly. No effusion."]


def _noise_image(rng: np.random.Generator, kind: str) -> Image.Image:
    h, w = (int(v) for v in rng.integers(20, 60, 2))    # odd, non-square sizes
    if kind == "RGB":
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    return Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")


def _release(root: Path, n: dict[str, int], *, suffix: str = ".png", views: int = 2) -> Path:
    rng = np.random.default_rng(0)
    data = {}
    for split, count in n.items():
        data[split] = []
        for i in range(count):
            sid = f"{split}{i}"
            paths = [f"{sid}/{v}{suffix}" for v in range(views)]
            for v, rel in enumerate(paths):
                p = root / "images" / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                im = _noise_image(rng, "RGB" if v == 0 else "L")
                im.save(p, format="JPEG" if suffix == ".jpg" else "PNG")
            data[split].append({"id": sid, "report": REPORTS[i % 2], "image_path": paths,
                                "split": split})
    (root / "annotation.json").write_text(json.dumps(data))
    return root


@pytest.fixture
def release(tmp_path):
    return load_dataset("iu_xray", _release(tmp_path / "rel", {"train": 6, "val": 3, "test": 3}))


def _expected(dataset, split, size):
    """The pixels the in-memory loader gave before the cache, written out independently."""
    def view(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("L").resize((size, size), Image.BILINEAR))
    want = np.stack([np.stack([view(p) for p in s.image_paths]) for s in dataset.split(split)])
    assert np.array_equal(want, np.stack([load_views(s, size) for s in dataset.split(split)]))
    return want


def test_miss_fills_then_hit_maps_the_same_file(release, tmp_path):
    cache = tmp_path / "cache"
    first = dataset_images(release, "train", 16, cache_dir=cache)
    assert first.filled and first.path.is_file() and first.path.parent == cache / "image_cache"
    second = dataset_images(release, "train", 16, cache_dir=cache)
    assert not second.filled and second.path == first.path and second.key == first.key
    assert np.array_equal(first.array, second.array)
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["key"] == first.key and meta["shape"] == [6, 2, 16, 16]
    assert meta["annotation"] == release.content_hash and meta["views"] == 2
    assert not list((cache / "image_cache").glob(".*.tmp"))


def test_key_contents(release, tmp_path):
    base = dataset_images(release, "train", 16, cache_dir=tmp_path).spec
    assert base.annotation == release.content_hash
    assert base.image_root == str((tmp_path / "rel" / "images").resolve())
    assert (base.split, base.size, base.views, base.jpeg_draft) == ("train", 16, 2, True)
    assert base.pillow and base.resample and base.format == image_cache.FORMAT
    others = [base.__class__(**{**base.__dict__, field: value})
              for field, value in (("annotation", "0" * 64), ("image_root", "/elsewhere"),
                                   ("split", "val"), ("size", 24), ("views", 1),
                                   ("jpeg_draft", False), ("pillow", "0.0"))]
    assert len({base.key, *(o.key for o in others)}) == len(others) + 1
    one_view = load_dataset("mimic_cxr", tmp_path / "rel")       # view policy: first view only
    spec = dataset_images(one_view, "train", 16, cache_dir=tmp_path).spec
    assert spec.views == 1 and spec.key != base.key


@pytest.mark.parametrize("workers", [1, 2])
def test_same_pixels_as_load_views(release, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(image_cache, "POOL_MIN_IMAGES", 0)   # workers=2: a real process pool
    monkeypatch.setattr(image_cache, "CHUNK_STUDIES", 2)     # several chunks, several offsets
    for split, size in (("train", 16), ("val", 24), ("test", 8)):
        got = dataset_images(release, split, size, cache_dir=tmp_path, workers=workers).array
        assert got.dtype == np.uint8 and np.array_equal(got, _expected(release, split, size))


def test_jpeg_draft_is_jpeg_only_and_in_the_key(tmp_path):
    rng = np.random.default_rng(1)
    big = Image.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8), "L")
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    big.save(png)
    big.save(jpg, quality=95)
    assert np.array_equal(decode_view(png, 32, jpeg_draft=True), decode_view(png, 32))
    full, draft = decode_view(jpg, 32), decode_view(jpg, 32, jpeg_draft=True)
    assert draft.shape == full.shape == (32, 32)
    assert np.abs(draft.astype(int) - full.astype(int)).mean() < 8     # close, not equal
    dataset = load_dataset("iu_xray", _release(tmp_path / "j", {"train": 2, "val": 1, "test": 1},
                                               suffix=".jpg"))
    off = dataset_images(dataset, "train", 16, cache_dir=tmp_path, jpeg_draft=False)
    assert np.array_equal(off.array, _expected(dataset, "train", 16))  # no draft: full decode
    on = dataset_images(dataset, "train", 16, cache_dir=tmp_path)
    assert on.key != off.key and on.path != off.path


def _mapped_files() -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            spans.setdefault(parts[5], []).append((lo, hi))
    return spans


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs /proc (Linux)")
def test_split_images_are_memory_maps_of_the_cache_file(release, tmp_path):
    cached = dataset_images(release, "train", 16, cache_dir=tmp_path)
    assert isinstance(cached.array, np.memmap) and not cached.array.flags.writeable
    data = split_tensors(release, "train", release.tokenizer, 16, cache_dir=tmp_path)
    assert data.image_key == cached.key
    ptr = data.images.data_ptr()
    spans = _mapped_files().get(str(cached.path), [])
    assert any(lo <= ptr < hi for lo, hi in spans), "the images tensor is not the mapped file"
    assert np.array_equal(data.images.numpy(), _expected(release, "train", 16))
    batch = data.images[[4, 1]]                  # a batch is a copy made by indexing
    assert not any(lo <= batch.data_ptr() < hi for lo, hi in spans)
    assert np.array_equal(batch.numpy(), _expected(release, "train", 16)[[4, 1]])


@pytest.mark.parametrize("locks", [True, False])
def test_concurrent_fills_of_one_key_are_harmless(release, tmp_path, monkeypatch, locks):
    if not locks:   # a file system without flock: both writers fill, the later rename wins
        import contextlib

        @contextlib.contextmanager
        def no_lock(path):
            yield False
        monkeypatch.setattr(image_cache, "_lock", no_lock)
    barrier, results, errors = threading.Barrier(3), [], []

    def fill():
        barrier.wait()
        try:
            results.append(dataset_images(release, "train", 16, cache_dir=tmp_path, workers=1))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=fill) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    assert len({r.path for r in results}) == 1
    if locks:
        assert sum(r.filled for r in results) == 1     # the others waited and mapped it
    for r in results:
        assert np.array_equal(r.array, _expected(release, "train", 16))
    folder = tmp_path / "image_cache"
    assert not list(folder.glob(".*.tmp"))
    assert np.array_equal(np.load(results[0].path), _expected(release, "train", 16))


def test_a_damaged_file_is_refilled_and_stale_temp_files_removed(release, tmp_path):
    first = dataset_images(release, "train", 16, cache_dir=tmp_path)
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2])          # cut short
    stale = first.path.parent / f".{first.path.name}.abc123.tmp"
    stale.write_bytes(b"x" * 10)
    again = dataset_images(release, "train", 16, cache_dir=tmp_path)
    assert again.filled and not stale.exists()
    assert np.array_equal(again.array, _expected(release, "train", 16))


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_image_names_file_record_and_fix(release, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(image_cache, "POOL_MIN_IMAGES", 0)
    monkeypatch.setattr(image_cache, "CHUNK_STUDIES", 1)
    studies = release.split("train")
    bad_first, bad_later = studies[2].image_paths[1], studies[4].image_paths[0]
    bad_first.write_bytes(b"not an image")
    bad_later.write_bytes(png_cut_short())
    with pytest.raises(UarbenchError) as e:
        dataset_images(release, "train", 16, cache_dir=tmp_path, workers=workers)
    err = e.value
    assert err.file == str(bad_first) and err.record == studies[2].id    # the first, in order
    assert "cannot read image" in str(err) and "uarbench data info" in err.fix
    with pytest.raises(UarbenchError, match="cannot read image") as direct:   # same as before
        load_views(studies[2], 16)
    assert direct.value.file == err.file and direct.value.record == err.record
    folder = tmp_path / "image_cache"
    assert not list(folder.glob("*.npy")) and not list(folder.glob(".*.tmp"))  # nothing kept


def png_cut_short() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (40, 40), 7).save(buf, format="PNG")
    return buf.getvalue()[:60]


def test_an_empty_split_needs_no_file(tmp_path):
    spec = CacheSpec("0" * 64, str(tmp_path), "val", 16, 2, True)
    got = cached_images([], spec, cache_dir=tmp_path)
    assert got.array.shape == (0, 2, 16, 16) and got.path is None


def test_study_objects_are_all_it_needs(tmp_path):
    path = tmp_path / "x.png"
    Image.new("L", (30, 20), 200).save(path)
    spec = CacheSpec("1" * 64, str(tmp_path), "train", 8, 1, True)
    got = cached_images([Study("s", "r", (path,), "train")], spec, cache_dir=tmp_path)
    assert got.array.shape == (1, 1, 8, 8) and int(got.array.min()) == 200


def test_a_failed_write_is_one_clear_error_and_leaves_nothing(release, tmp_path, monkeypatch):
    import errno
    import os

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(UarbenchError, match="cannot write the image cache: No space") as e:
        dataset_images(release, "train", 16, cache_dir=tmp_path, workers=1)
    assert "UARBENCH_CACHE" in e.value.fix
    assert not [p for p in (tmp_path / "image_cache").iterdir() if p.suffix != ".lock"]
