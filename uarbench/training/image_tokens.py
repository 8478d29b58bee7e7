"""The frozen LSU image tokenizer for a run: the `learned` VQ-VAE is fitted once on the training
split's images only and cached by (dataset content hash, tokenizer config, image size, seed);
the `dalle` backend loads the user's encoder file. The checkpoint hash goes into the run record.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch

from uarbench.models.uar.config import UARConfig
from uarbench.models.tokenizers import ImageTokenizer, LearnedVQTokenizer, build_tokenizer
from uarbench.training.data import to_unit


# The fit's floats depend on the number of intra-op threads (reductions split differently), so
# it always runs on this many, whatever the caller's setting: the same images, config and seed
# give the same bytes in a test (1 thread), a suite's preparation (the machine's default) and a
# worker. Part of the cache key, so fits made otherwise are never reused.
FIT_THREADS = 1


def tokenizer_cache_key(cfg: UARConfig, dataset_hash: str, seed: int) -> str:
    blob = json.dumps({"format": LearnedVQTokenizer.FORMAT, "dataset": dataset_hash,
                       "codebook": cfg.codebook_size, "vq": asdict(cfg.vq),
                       "size": cfg.crop_size, "seed": seed, "fit_threads": FIT_THREADS},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tokenizer_path(cfg: UARConfig, dataset_hash: str, seed: int,
                   cache_dir: str | Path | None) -> Path | None:
    """Where the learned tokenizer of this config, dataset and seed is cached (None: not a
    learned tokenizer)."""
    if cfg.tokenizer != "learned":
        return None
    from uarbench.io import default_cache_dir
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / "image_tokenizers" / f"vq-{tokenizer_cache_key(cfg, dataset_hash, seed)}.pt"


def prepare_image_tokenizer(cfg: UARConfig, train_images: torch.Tensor, dataset_hash: str,
                            cache_dir: Path, seed: int = 0, batch_views: int = 64) -> ImageTokenizer:
    """``train_images``: (N, V, S, S) uint8 at crop_size, the training split only."""
    if cfg.tokenizer != "learned":
        return build_tokenizer(cfg)
    path = tokenizer_path(cfg, dataset_hash, seed, cache_dir)
    if path.is_file():
        return LearnedVQTokenizer.load(path)
    tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
    views = to_unit(train_images).flatten(0, 1)  # (N*V, 1, S, S)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(views), generator=gen)
    batches = [views[order[i:i + batch_views]] for i in range(0, len(views), batch_views)]
    with torch_threads(FIT_THREADS):
        tok.fit(batches, seed=seed)
    tok.save(path)     # atomic: parallel workers fitting the same key write the same bytes
    # every run uses the tokenizer as read back from the cache, warm or cold
    return LearnedVQTokenizer.load(path)
