"""Batches for training and decoding: views decoded once into the on-disk image cache and
memory-mapped as uint8, word ids in memory.

Paper preprocessing (§4.1): train images are resized to ``image_size`` then randomly cropped to
``crop_size``; evaluation images are resized to ``crop_size``. Crops and shuffling draw from a
``torch.Generator`` seeded per (seed, stage, epoch), so a run resumed at an epoch boundary sees
exactly the batches an uninterrupted run sees.

A split's views come from :mod:`uarbench.data.image_cache` (decoded once per dataset, size and
view policy, in parallel, then memory-mapped by every run, seed and rank): a batch is built by
indexing the mapped array, so only its rows are read and a process's memory does not grow with
the dataset. Batches reach the device as uint8 (pinned memory and an asynchronous copy on CUDA)
and become float there (:func:`to_device_unit`); on the CPU the result is what it always was.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from uarbench.data.datasets import Dataset
from uarbench.data.image_cache import dataset_images, decode_view, read_error
from uarbench.data.r2gen import Study
from uarbench.data.tokenizer import WordTokenizer


def load_views(study: Study, size: int) -> np.ndarray:
    """(V, size, size) uint8 grayscale views of one study (a full decode, JPEG included: the
    pixels of the image cache for every format but JPEG, whose cache uses draft decoding)."""
    views = []
    for path in study.image_paths:
        try:
            views.append(decode_view(path, size))
        except Exception as e:  # OSError, PIL's DecompressionBombError, ValueError, ...
            raise read_error(path, study.id, str(e)) from None
    return np.stack(views)


def memmap_tensor(array: np.ndarray) -> Tensor:
    """A tensor over ``array``'s memory without a copy (for a read-only memory map too).

    torch has no read-only tensors and warns once about it; nothing here writes into the
    views (batches are copies made by indexing), and a write would fault, not corrupt the cache.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


@dataclass
class SplitTensors:
    """One split ready for batching: ids (N,), images (N, V, S, S) uint8, word ids (N, T) long.

    ``images`` is normally a tensor over the memory-mapped image cache (``image_key`` names the
    cache entry). For an LSU run the evaluation splits may instead hold their cached image-token
    grids (N, V, h, w) int16/int32 (:func:`uarbench.training.image_tokens.with_cached_tokens`):
    :func:`to_unit` and the batch iterators pass integer token ids through as long ids.
    """

    ids: list[str]
    images: Tensor
    tokens: Tensor
    references: list[str]   # cleaned full reports (what scoring uses)
    image_key: str | None = None    # the image-cache entry of ``images`` (None: not cached)


def split_tensors(dataset: Dataset, split: str, tokenizer: WordTokenizer, size: int, *,
                  cache_dir: str | Path | None = None, workers: int | None = None) -> SplitTensors:
    """``split`` of ``dataset`` with its views at ``size`` from the image cache (under
    ``cache_dir``, default ``$UARBENCH_CACHE``; filled on ``workers`` processes, default every
    core, when missing) and its cleaned reports as word ids."""
    studies = dataset.split(split)
    cached = dataset_images(dataset, split, size, cache_dir=cache_dir, workers=workers)
    cleaned = [dataset.clean(s.report) for s in studies]
    encoded = [tokenizer.encode(c) for c in cleaned]
    tokens = torch.full((len(encoded), max(map(len, encoded), default=1)), tokenizer.pad_id,
                        dtype=torch.long)
    for i, e in enumerate(encoded):
        tokens[i, : len(e)] = torch.tensor(e)
    return SplitTensors([s.id for s in studies], memmap_tensor(cached.array), tokens, cleaned,
                        cached.key)


def is_token_grid(images: Tensor) -> bool:
    """Whether a batch holds cached image-token ids (integers other than uint8 pixels)."""
    return not images.is_floating_point() and images.dtype != torch.uint8


def to_unit(images: Tensor) -> Tensor:
    """uint8 (B, V, S, S) -> float (B, V, 1, S, S) in [0, 1]; cached token ids -> long ids."""
    if is_token_grid(images):
        return images.long()
    return images.unsqueeze(2).float().div_(255.0)


def to_device_unit(images: Tensor, device: torch.device | str | None = None) -> Tensor:
    """A uint8 batch on ``device`` as :func:`to_unit` makes it: copied as uint8 (from pinned
    memory, asynchronously, on CUDA) and made float on the device. ``None`` or a CPU device: the
    same tensor :func:`to_unit` returns on the CPU. Cached token ids travel as long ids."""
    if device is None or torch.device(device).type == "cpu":
        return to_unit(images)
    device = torch.device(device)
    if device.type == "cuda":
        images = images.pin_memory().to(device, non_blocking=True)
    else:
        images = images.to(device)
    return to_unit(images)


def random_crop(images: Tensor, crop: int, gen: torch.Generator) -> Tensor:
    """Independent random crop per study (same offset for its views): (B, V, S, S) -> (B, V, c, c)."""
    B, _, S, _ = images.shape
    if crop == S:
        return images
    offs = torch.randint(0, S - crop + 1, (B, 2), generator=gen)
    return torch.stack([images[b, :, y:y + crop, x:x + crop] for b, (y, x) in enumerate(offs.tolist())])


def train_batches(data: SplitTensors, batch_size: int, crop: int, gen: torch.Generator,
                  device: torch.device | str | None = None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Shuffled (index, images float (B,V,1,c,c), tokens (B,T)) batches for one epoch; the images
    on ``device`` (:func:`to_device_unit`; default: the CPU), index and tokens on the CPU."""
    order = torch.randperm(len(data.ids), generator=gen)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, to_device_unit(random_crop(data.images[idx], crop, gen), device), data.tokens[idx]


def eval_batches(data: SplitTensors, batch_size: int,
                 device: torch.device | str | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """In-order (index, images float (B,V,1,S,S)) batches, the images on ``device`` (default:
    the CPU); a split holding cached token ids gives long ids (B,V,h,w) instead."""
    for start in range(0, len(data.ids), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data.ids)))
        yield idx, to_device_unit(data.images[idx], device)
