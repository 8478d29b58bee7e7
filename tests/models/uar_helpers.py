"""Tiny UAR configs and batches, small enough that every model test runs in well under a second.

Not a conftest.py: other test modules import ``conftest`` by name, and a second conftest module
would shadow the top-level one. Test modules here import these fixtures explicitly.
"""
from __future__ import annotations

import pytest
import torch

from uarbench.models.uar.config import UARConfig, VQConfig


def tiny_config(**overrides) -> UARConfig:
    """d 32, 1-2 layers, 16 px crops -> 2x2 tokens per view, 8 visual tokens for 2 views."""
    base = dict(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=2, dropout=0.0,
                vocab_size=20, max_seq_length=12, image_size=16, crop_size=16, basis_size=64,
                codebook_size=32, cnn_arch="resnet18", vq=VQConfig(hidden=8, embed_dim=8))
    return UARConfig(**{**base, **overrides})


def tiny_batch(cfg: UARConfig, B: int = 4, T: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    """bos + words + eos, with the later rows shortened by padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    ids[:, 0] = cfg.bos_id
    for b in range(B):
        n = T - b  # row b has T - b real tokens
        ids[b, n - 1] = cfg.eos_id
        ids[b, n:] = cfg.pad_id
    grid = cfg.token_grid
    return {"ids": ids, "mask": ids != cfg.pad_id,
            "image_tokens": torch.randint(0, cfg.codebook_size, (B, cfg.n_views, grid, grid), generator=g),
            "images": torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, generator=g)}


@pytest.fixture
def make_cfg():
    return tiny_config


@pytest.fixture
def make_batch():
    return tiny_batch


