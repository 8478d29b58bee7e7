"""The frozen LSU image tokenizer for a run, and the cache of the image tokens it gives.

Tokenizer: the `learned` VQ-VAE is fitted once on the training split's images only and cached by
(dataset content hash, tokenizer config, image size, seed, and where the fit ran); the `dalle`
backend loads the user's encoder file. The checkpoint hash goes into the run record. The fit runs
on the run's device: on the CPU on :data:`FIT_THREADS` threads (byte-identical on any machine
setting, as before), elsewhere with deterministic cuDNN kernels; a fit made on another device
type is another cache entry. A fit may use a seeded subsample of the training studies (recorded
in the key); the default is every training image.

Image tokens: the tokenizer is frozen, so the token grid of an image seen at evaluation size
(val, test, the image-use probe: no crop) never changes. :func:`with_cached_tokens` encodes such
a split once per (tokenizer checkpoint hash, image-cache entry) and stores the ids as an
int16 / int32 ``.npy`` under ``$UARBENCH_CACHE/image_tokens/``; every LSU run with the same
tokenizer and data reads them instead of re-encoding every validation. Training batches are
random crops and are still encoded on the device per batch (docs/spec.md §10 says why).
"""
from __future__ import annotations

import hashlib
import io
import json
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from uarbench.io import atomic_write_bytes, default_cache_dir
from uarbench.models.uar.config import UARConfig
from uarbench.models.tokenizers import ImageTokenizer, LearnedVQTokenizer, build_tokenizer
from uarbench.training.data import SplitTensors, to_device_unit, to_unit

# The fit's floats depend on the number of intra-op threads (reductions split differently), so
# it always runs on this many, whatever the caller's setting: the same images, config and seed
# give the same bytes in a test (1 thread), a suite's preparation (the machine's default) and a
# worker. Part of the cache key, so fits made otherwise are never reused.
FIT_THREADS = 1
TOKENS_FORMAT = "uarbench.image_tokens/1"


def tokenizer_cache_key(cfg: UARConfig, dataset_hash: str, seed: int,
                        device: torch.device | str | None = None,
                        fit_subsample: int | None = None) -> str:
    """The fit's identity. A CPU fit of every training image keeps the key it always had; a fit
    on another device type, or on a subsample, adds that to the key."""
    fields = {"format": LearnedVQTokenizer.FORMAT, "dataset": dataset_hash,
              "codebook": cfg.codebook_size, "vq": asdict(cfg.vq),
              "size": cfg.crop_size, "seed": seed, "fit_threads": FIT_THREADS}
    kind = _device_type(device)
    if kind != "cpu":
        fields["fit_device"] = kind
    if fit_subsample is not None:
        fields["fit_subsample"] = fit_subsample
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _device_type(device: torch.device | str | None) -> str:
    return "cpu" if device is None else torch.device(device).type


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN's deterministic kernels for the block (a GPU fit then gives the same bytes twice)."""
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def tokenizer_path(cfg: UARConfig, dataset_hash: str, seed: int,
                   cache_dir: str | Path | None, device: torch.device | str | None = None,
                   fit_subsample: int | None = None) -> Path | None:
    """Where the learned tokenizer of this config, dataset, seed and fit device is cached (None:
    not a learned tokenizer)."""
    if cfg.tokenizer != "learned":
        return None
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = tokenizer_cache_key(cfg, dataset_hash, seed, device, fit_subsample)
    return base / "image_tokenizers" / f"vq-{key}.pt"


def prepare_image_tokenizer(cfg: UARConfig, train_images: torch.Tensor | Callable[[], torch.Tensor],
                            dataset_hash: str, cache_dir: Path, seed: int = 0,
                            batch_views: int = 64, device: torch.device | str | None = None,
                            fit_subsample: int | None = None) -> ImageTokenizer:
    """The run's frozen tokenizer, on the CPU (the caller moves it).

    ``train_images``: (N, V, S, S) uint8 at crop_size, the training split only, or a function
    returning them (called only when the tokenizer must be fitted). ``device``: where the fit
    runs (default: the CPU). ``fit_subsample``: fit on this many training studies, drawn with
    ``seed`` (default: all of them)."""
    if cfg.tokenizer != "learned":
        return build_tokenizer(cfg)
    path = tokenizer_path(cfg, dataset_hash, seed, cache_dir, device, fit_subsample)
    if path.is_file():
        return LearnedVQTokenizer.load(path)
    images = train_images() if callable(train_images) else train_images
    gen = torch.Generator().manual_seed(seed)
    if fit_subsample is not None and fit_subsample < len(images):
        pick = torch.randperm(len(images), generator=gen)[:fit_subsample].sort().values
        images = images[pick]
    n_views = images.shape[0] * images.shape[1]
    flat = images.reshape(n_views, 1, *images.shape[-2:])  # (N*V, 1, S, S) uint8
    order = torch.randperm(n_views, generator=gen)
    # float batches (b, 1, 1, S, S) made one at a time: the fit keeps its own normalised copy
    # of each, so no float copy of the whole split is made here
    batches = (to_unit(flat[order[i:i + batch_views]]) for i in range(0, n_views, batch_views))
    tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
    on_cpu = _device_type(device) == "cpu"
    if not on_cpu:
        tok.to(device)
    with torch_threads(FIT_THREADS) if on_cpu else deterministic_cudnn():
        tok.fit(batches, seed=seed)
    tok.cpu().save(path)  # atomic: parallel workers fitting the same key write the same bytes
    # every run uses the tokenizer as read back from the cache, warm or cold
    return LearnedVQTokenizer.load(path)


def resize_to_crop(images: torch.Tensor, crop: int, chunk: int = 256) -> torch.Tensor:
    """(N, V, S, S) uint8 -> (N, V, crop, crop) uint8 (antialiased bilinear, rounded), a chunk
    of studies at a time so that no float copy of the whole split is made."""
    if images.shape[-1] == crop:
        return images.clone()
    out = torch.empty((*images.shape[:2], crop, crop), dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        out[i:i + chunk] = F.interpolate(images[i:i + chunk].float(), size=crop, mode="bilinear",
                                         antialias=True, align_corners=False).round().clamp(0, 255)
    return out


# --- the image-token cache ---

def tokens_cache_key(tokenizer_hash: str, image_key: str, device: torch.device | str,
                     batch_size: int) -> str:
    """Identity of a split's token grids: the tokenizer's checkpoint, the image-cache entry, and
    what could move an argmax between equal-looking codes (the device type, CPU threads, the
    encoding batch size, torch's version)."""
    kind = _device_type(device)
    fields = {"format": TOKENS_FORMAT, "tokenizer": tokenizer_hash, "images": image_key,
              "device": kind, "batch": batch_size, "torch": torch.__version__,
              "threads": torch.get_num_threads() if kind == "cpu" else None}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def encode_split(tok: ImageTokenizer, images: torch.Tensor, device: torch.device | str,
                 batch_size: int) -> np.ndarray:
    """Token ids (N, V, h, w) of uint8 views (N, V, S, S), encoded on ``device`` in batches of
    ``batch_size`` in order (the batches evaluation used to encode), as int16 / int32."""
    dtype = np.int16 if tok.codebook_size <= np.iinfo(np.int16).max + 1 else np.int32
    parts = []
    for start in range(0, len(images), batch_size):
        ids = tok.encode(to_device_unit(images[start:start + batch_size], device))
        parts.append(ids.cpu().numpy().astype(dtype))
    return np.concatenate(parts)


def cached_tokens(tok: ImageTokenizer, images: torch.Tensor, image_key: str,
                  device: torch.device | str, batch_size: int,
                  cache_dir: str | Path | None = None) -> torch.Tensor:
    """Token ids (N, V, h, w) (int16 / int32) of the split whose views are ``images``, read
    from the token cache or encoded now and cached."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = tokens_cache_key(tok.checkpoint_hash, image_key, device, batch_size)
    path = base / "image_tokens" / f"{key}.npy"
    try:
        ids = np.load(path)
        if len(ids) == len(images):
            return torch.from_numpy(ids)
    except (OSError, ValueError):
        pass
    ids = encode_split(tok, images, device, batch_size)
    buf = _npy_bytes(ids)
    atomic_write_bytes(path, buf)   # same key, same bytes: a concurrent writer is harmless
    return torch.from_numpy(ids)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def with_cached_tokens(data: SplitTensors, tok: ImageTokenizer, device: torch.device | str,
                       batch_size: int, cache_dir: str | Path | None = None) -> SplitTensors:
    """``data`` (an evaluation split: views at crop size, no crop) with its views replaced by
    their cached token grids; a split not read from the image cache is returned unchanged."""
    if data.image_key is None or len(data.ids) == 0:
        return data
    ids = cached_tokens(tok, data.images, data.image_key, device, batch_size, cache_dir)
    return replace(data, images=ids)

