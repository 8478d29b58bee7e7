"""LSU, the Latent Space Unifier (paper §3.2): images and reports both become discrete tokens,
embedded by trainable tables into one space (Eqs. 1-2: E(I) = W_I[tokens], E(R) = W_R[words]).

The image tokenizer is frozen and runs outside the model (:mod:`uarbench.models.tokenizers`);
the model only sees token ids (B, V, h, w). This module holds the embedding tables.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from uarbench.models.layers import LearnedPositions
from uarbench.models.uar.config import UARConfig


class VisualTokenEmbedding(nn.Module):
    """E(I) = W_I[token] + learned 2-D position + view embedding (docs/spec.md §2 decision)."""

    def __init__(self, codebook_size: int, d_model: int, grid: int, n_views: int, dropout: float) -> None:
        super().__init__()
        self.tokens = nn.Embedding(codebook_size, d_model)  # W_I
        self.pos = nn.Parameter(torch.randn(grid, grid, d_model) * 0.02)
        self.view = nn.Embedding(n_views, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, V, h, w) -> (B, V*h*w, d), view-major then row-major."""
        B, V, h, w = ids.shape
        if h > self.pos.shape[0] or w > self.pos.shape[1] or V > self.view.num_embeddings:
            raise ValueError(f"token grid {V}x{h}x{w} exceeds the configured "
                             f"{self.view.num_embeddings}x{self.pos.shape[0]}x{self.pos.shape[1]}")
        x = self.tokens(ids) + self.pos[:h, :w] + self.view.weight[:V, None, None]  # (B, V, h, w, d)
        return self.dropout(x.flatten(1, 3))  # (B, V*h*w, d)


class WordEmbedding(nn.Module):
    """E(R) = W_R[word] + learned 1-D position."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, d_model)  # W_R
        self.pos = LearnedPositions(max_len, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> (B, T, d)."""
        return self.dropout(self.pos(self.words(ids)))

    def at(self, ids: Tensor, position: int) -> Tensor:
        """One decoding step: ids (B, 1) standing at ``position`` -> (B, 1, d)."""
        return self.dropout(self.pos.at(self.words(ids), position))


class LSUEmbedding(nn.Module):
    """Both tables of the unified space. With ``cfg.lsu`` False (the Base path) there is no image
    table: E(I) then comes from :class:`uarbench.models.resnet.CNNPatchEncoder`."""

    def __init__(self, cfg: UARConfig) -> None:
        super().__init__()
        self.image = (VisualTokenEmbedding(cfg.codebook_size, cfg.d_model, cfg.token_grid,
                                           cfg.n_views, cfg.dropout) if cfg.lsu else None)
        self.text = WordEmbedding(cfg.vocab_size, cfg.d_model, cfg.max_seq_length, cfg.dropout)

    def forward(self, image_tokens: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
        """-> E(I) (B, L, d) with L = V*h*w, E(R) (B, T, d)."""
        return self.image(image_tokens), self.text(ids)
