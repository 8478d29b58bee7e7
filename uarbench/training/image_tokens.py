"""The frozen LSU image tokenizer for a run: the `learned` VQ-VAE is fitted once on the training
split's images only and cached by (dataset content hash, tokenizer config, image size, seed);
the `dalle` backend loads the user's encoder file. The checkpoint hash goes into the run record.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from uarbench.models.uar.config import UARConfig
from uarbench.models.uar.lsu import ImageTokenizer, LearnedVQTokenizer, build_tokenizer
from uarbench.training.data import to_unit


def tokenizer_cache_key(cfg: UARConfig, dataset_hash: str, seed: int) -> str:
    blob = json.dumps({"format": LearnedVQTokenizer.FORMAT, "dataset": dataset_hash, "codebook": cfg.codebook_size, "vq": asdict(cfg.vq),
                       "size": cfg.crop_size, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare_image_tokenizer(cfg: UARConfig, train_images: torch.Tensor, dataset_hash: str,
                            cache_dir: Path, seed: int = 0, batch_views: int = 64) -> ImageTokenizer:
    """``train_images``: (N, V, S, S) uint8 at crop_size, the training split only."""
    if cfg.tokenizer != "learned":
        return build_tokenizer(cfg)
    path = Path(cache_dir) / "image_tokenizers" / f"vq-{tokenizer_cache_key(cfg, dataset_hash, seed)}.pt"
    if path.is_file():
        return LearnedVQTokenizer.load(path)
    tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
    views = to_unit(train_images).flatten(0, 1)  # (N*V, 1, S, S)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(views), generator=gen)
    batches = [views[order[i:i + batch_views]] for i in range(0, len(views), batch_views)]
    tok.fit(batches, seed=seed)
    tok.save(path)
    return tok
