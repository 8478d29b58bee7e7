"""The decoded-image cache: each split of a dataset decoded once, at one size, into a uint8
``.npy`` array under ``$UARBENCH_CACHE/image_cache/``, then memory-mapped by every run.

Why: decoding is the slowest thing a run does before its first step on a large dataset
(MIMIC-CXR: ~270k JPEGs, hours on one thread), and holding decoded splits in RAM grows with the
dataset. Here a split is decoded once, in parallel on every core, and each run, seed and
data-parallel rank maps the same file (``np.load(mmap_mode="r")``): pages are read on demand and
shared through the page cache, so a process's anonymous memory does not grow with the dataset
and a rank touches only the rows it indexes.

**Key.** sha256 of: the cache format, the annotation file's sha256, the resolved image root
(two synth-cxr builds of different image sizes have the same annotation), the split, the output
size, the view policy (the first ``views`` images of each study), the resampling filter, whether
JPEG draft decoding is on, and Pillow's version (its resampler defines the bytes). A changed
image file under an unchanged annotation and root is not detected: delete the cache folder (or
the one ``.npy``) after editing images in place.

**Pixels.** Each view is ``Image.open(path).convert("L").resize((size, size), BILINEAR)`` as an
``(S, S)`` uint8 array: the same bytes as :func:`uarbench.training.data.load_views`. For a JPEG,
``jpeg_draft=True`` (the default) first asks the decoder for a reduced image
(``Image.draft("L", (size, size))``: DCT scaling by 1/2, 1/4 or 1/8 while the result stays at
least ``size`` on each side, grey taken from the luma channel), which is several times faster on
large images; its pixels differ slightly (a few grey levels) from a full decode followed by the
resize. It never applies to PNG or any other format. The setting is part of the key.

**Writes.** A fill writes a temp file beside the target (``.NAME.XXXX.tmp``: npy header, then
rows written by the worker processes with ``os.pwrite`` at their offsets, so neither the parent
nor a worker holds more than one chunk), fsyncs it and renames it into place. Fills of one key
are serialised with an advisory lock (``NAME.lock``, ``flock``); where the file system has no
locks, two writers each write a complete temp file and the later rename wins, with the same
bytes, so a concurrent second writer is harmless either way.

**Errors.** An image that cannot be read is one :class:`UarbenchError` naming the file, the study
and the fix (the first such image in split order), as before the cache existed.

Hand-written rather than a dataset library (torchvision / webdataset / a LMDB): the job is one
fixed decode per image into one array per split, with the repo's atomic-write and error
conventions, and the result must be byte-identical to the in-memory loader it replaces; a numpy
file plus a process pool does that in a page of code with no new dependency.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import PIL
from PIL import Image

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, default_cache_dir

FORMAT = "uarbench.image_cache/1"
FOLDER = "image_cache"
RESAMPLE = "PIL convert(L) resize BILINEAR"
CHUNK_STUDIES = 64         # studies per pool task (and per pwrite)
POOL_MIN_IMAGES = 512      # below this a pool's start-up (spawn) costs more than it saves
_UMASK = os.umask(0)        # read once, at import (setting it back is not thread-safe later)
os.umask(_UMASK)
READ_FIX = ("replace or remove this study's image (`uarbench data info` decodes every image and "
            "lists the studies).")


def decode_view(path: str | Path, size: int, jpeg_draft: bool = False) -> np.ndarray:
    """One view as an (size, size) uint8 grey array (raises what PIL raises).

    ``jpeg_draft``: for a JPEG only, let the decoder scale down by a power of two first (see the
    module docstring: fast, slightly different pixels)."""
    with Image.open(path) as im:
        if jpeg_draft and im.format == "JPEG":
            im.draft("L", (size, size))
        return np.asarray(im.convert("L").resize((size, size), Image.BILINEAR))


def read_error(path: str | Path, record: str, message: str) -> UarbenchError:
    """The error for an image that cannot be decoded."""
    return UarbenchError(f"cannot read image: {message}.", file=path, record=record, fix=READ_FIX)


@dataclass(frozen=True)
class CacheSpec:
    """What the cached pixels depend on; its hash names the file."""

    annotation: str         # sha256 of annotation.json
    image_root: str         # resolved
    split: str
    size: int
    views: int              # first `views` images of each study
    jpeg_draft: bool
    resample: str = RESAMPLE
    pillow: str = PIL.__version__
    format: str = FORMAT

    @property
    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        return f"{self.split}-{self.size}px-{self.key}.npy"


@dataclass(frozen=True)
class CachedImages:
    """A split's views, (N, V, S, S) uint8, memory-mapped read-only from ``path``."""

    array: np.ndarray
    spec: CacheSpec
    path: Path | None       # None for an empty split (nothing to map)
    filled: bool            # True when this call decoded the images (a cache miss)

    @property
    def key(self) -> str:
        return self.spec.key


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / FOLDER


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def dataset_images(dataset, split: str, size: int, *, cache_dir: str | Path | None = None,
                   jpeg_draft: bool = True, workers: int | None = None,
                   progress: bool | None = None) -> CachedImages:
    """The views of ``dataset``'s ``split`` at ``size``, from the cache (filled on a miss)."""
    spec = CacheSpec(annotation=dataset.content_hash,
                     image_root=str(Path(dataset.annotation.image_root).resolve()),
                     split=split, size=size, views=dataset.spec.views, jpeg_draft=jpeg_draft)
    return cached_images(dataset.split(split), spec, cache_dir=cache_dir, workers=workers,
                         progress=progress)


def cached_images(studies: Sequence, spec: CacheSpec, *, cache_dir: str | Path | None = None,
                  workers: int | None = None, progress: bool | None = None) -> CachedImages:
    """``studies`` (each with ``id`` and ``image_paths``, ``spec.views`` of them) decoded as
    ``spec`` says: a memory-mapped (N, V, S, S) uint8 array, filled first on a cache miss."""
    shape = (len(studies), spec.views, spec.size, spec.size)
    if not studies:
        return CachedImages(np.zeros(shape, np.uint8), spec, None, False)
    path = cache_folder(cache_dir) / spec.file_name
    array = _open(path, shape)
    if array is not None:
        return CachedImages(array, spec, path, False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UarbenchError(f"cannot write the image cache: {e.strerror or e}.", file=path.parent,
                            fix="set UARBENCH_CACHE to a writable folder.") from None
    with _lock(path.with_name(path.name[:-len(".npy")] + ".lock")) as exclusive:
        array = _open(path, shape)      # another process may have filled it while we waited
        if array is not None:
            return CachedImages(array, spec, path, False)
        if exclusive:   # nobody else is filling this key: a killed fill's temp files can go
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        _fill(path, studies, spec, workers, progress)
    array = _open(path, shape)
    if array is None:
        raise UarbenchError("the image cache file was written but cannot be read back.",
                            file=path, fix="delete it; it is rebuilt on the next run.")
    return CachedImages(array, spec, path, True)


def _open(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached array if ``path`` holds one of ``shape``, else None (absent or damaged)."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if array.dtype != np.uint8 or array.shape != shape:
        return None
    return array


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path`` for the block; yields False where locks are missing."""
    try:
        import fcntl
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except (ImportError, OSError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError:
            locked = False
        yield locked
    finally:
        os.close(fd)    # releases the lock


def _fill(path: Path, studies: Sequence, spec: CacheSpec, workers: int | None,
          progress: bool | None) -> None:
    shape = (len(studies), spec.views, spec.size, spec.size)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)   # mkstemp makes 0600: ordinary permissions
        with os.fdopen(fd, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                     "fortran_order": False, "shape": shape})
            offset = fh.tell()
            fh.truncate(offset + int(np.prod(shape)))
        tasks = [(tmp, offset, start, spec.views, spec.size, spec.jpeg_draft,
                  [(str(s.id), tuple(str(p) for p in s.image_paths[:spec.views]))
                   for s in studies[start:start + CHUNK_STUDIES]])
                 for start in range(0, len(studies), CHUNK_STUDIES)]
        n = default_workers() if workers is None else max(1, workers)
        try:
            if n > 1 and len(studies) * spec.views >= POOL_MIN_IMAGES \
                    and not multiprocessing.current_process().daemon:
                with multiprocessing.get_context("spawn").Pool(min(n, len(tasks))) as pool:
                    _collect(pool.imap(_decode_chunk, tasks), len(tasks), spec, progress)
            else:
                _collect(map(_decode_chunk, tasks), len(tasks), spec, progress)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as e:     # unreadable images are returned, not raised: this is a write
            raise UarbenchError(f"cannot write the image cache: {e.strerror or e}.", file=path,
                                fix=f"free {int(np.prod(shape)) >> 20} MiB there, or set "
                                    "UARBENCH_CACHE to a folder with room.") from None
        # what the file holds, for a person looking at the cache (the .npy is the entry)
        atomic_write_json(path.with_suffix(".json"),
                          {**asdict(spec), "key": spec.key, "shape": list(shape),
                           "ids_first": [str(s.id) for s in studies[:3]]})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _collect(results, total: int, spec: CacheSpec, progress: bool | None) -> None:
    """Consume chunk results in split order; the first unreadable image stops the fill."""
    from tqdm import tqdm
    disable = None if progress is None else not progress     # None: only on a terminal
    with tqdm(total=total, desc=f"image cache {spec.split} {spec.size}px", unit="chunk",
              disable=disable, leave=False) as bar:
        for error in results:
            if error is not None:
                record, image, message = error
                raise read_error(image, record, message)
            bar.update(1)


def _decode_chunk(task) -> tuple[str, str, str] | None:
    """Decode one chunk of studies and write its rows into the temp file; returns (study id,
    image, message) for the first unreadable image, else None. Runs in a pool worker."""
    tmp, offset, start, views, size, draft, items = task
    rows = np.empty((len(items), views, size, size), np.uint8)
    for i, (record, paths) in enumerate(items):
        for v, image in enumerate(paths):
            try:
                rows[i, v] = decode_view(image, size, draft)
            except Exception as e:  # OSError, PIL's DecompressionBombError, ValueError, ...
                return record, image, str(e)
    data = memoryview(rows.reshape(-1))
    fd = os.open(tmp, os.O_WRONLY)
    try:
        at = offset + start * views * size * size
        while data:
            written = os.pwrite(fd, data, at)
            data, at = data[written:], at + written
    finally:
        os.close(fd)
    return None
