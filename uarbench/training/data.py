"""Batches for training and decoding: views resized once and held in memory as uint8, word ids.

Paper preprocessing (§4.1): train images are resized to ``image_size`` then randomly cropped to
``crop_size``; evaluation images are resized to ``crop_size``. Crops and shuffling draw from a
``torch.Generator`` seeded per (seed, stage, epoch), so a run resumed at an epoch boundary sees
exactly the batches an uninterrupted run sees. Holding a split in memory suits IU-Xray and
synth-cxr (tens of MB); MIMIC-CXR at full size needs a streaming loader (not written yet).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from uarbench.data.datasets import Dataset
from uarbench.data.r2gen import Study
from uarbench.data.tokenizer import WordTokenizer
from uarbench.errors import UarbenchError


def load_views(study: Study, size: int) -> np.ndarray:
    """(V, size, size) uint8 grayscale views of one study."""
    views = []
    for path in study.image_paths:
        try:
            with Image.open(path) as im:
                views.append(np.asarray(im.convert("L").resize((size, size), Image.BILINEAR)))
        except Exception as e:  # OSError, PIL's DecompressionBombError, ValueError, ...
            raise UarbenchError(f"cannot read image: {e}.", file=path, record=study.id,
                                fix="replace or remove this study's image (`uarbench data "
                                    "info` decodes every image and lists the studies).") \
                from None
    return np.stack(views)


@dataclass
class SplitTensors:
    """One split ready for batching: ids (N,), images (N, V, S, S) uint8, word ids (N, T) long."""

    ids: list[str]
    images: Tensor
    tokens: Tensor
    references: list[str]   # cleaned full reports (what scoring uses)


def split_tensors(dataset: Dataset, split: str, tokenizer: WordTokenizer, size: int) -> SplitTensors:
    studies = dataset.split(split)
    images = torch.from_numpy(np.stack([load_views(s, size) for s in studies]))
    cleaned = [dataset.clean(s.report) for s in studies]
    encoded = [tokenizer.encode(c) for c in cleaned]
    tokens = torch.full((len(encoded), max(map(len, encoded))), tokenizer.pad_id, dtype=torch.long)
    for i, e in enumerate(encoded):
        tokens[i, : len(e)] = torch.tensor(e)
    return SplitTensors([s.id for s in studies], images, tokens, cleaned)


def to_unit(images: Tensor) -> Tensor:
    """uint8 (B, V, S, S) -> float (B, V, 1, S, S) in [0, 1]."""
    return images.unsqueeze(2).float().div_(255.0)


def random_crop(images: Tensor, crop: int, gen: torch.Generator) -> Tensor:
    """Independent random crop per study (same offset for its views): (B, V, S, S) -> (B, V, c, c)."""
    B, _, S, _ = images.shape
    if crop == S:
        return images
    offs = torch.randint(0, S - crop + 1, (B, 2), generator=gen)
    return torch.stack([images[b, :, y:y + crop, x:x + crop] for b, (y, x) in enumerate(offs.tolist())])


def train_batches(data: SplitTensors, batch_size: int, crop: int,
                  gen: torch.Generator) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Shuffled (index, images float (B,V,1,c,c), tokens (B,T)) batches for one epoch."""
    order = torch.randperm(len(data.ids), generator=gen)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, to_unit(random_crop(data.images[idx], crop, gen)), data.tokens[idx]


def eval_batches(data: SplitTensors, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """In-order (index, images float (B,V,1,S,S)) batches."""
    for start in range(0, len(data.ids), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data.ids)))
        yield idx, to_unit(data.images[idx])
