"""R2GenCMN (Chen et al., ACL 2021, "Cross-modal Memory Networks for Radiology Report
Generation"), the second baseline of UAR's tables (docs/spec.md §9).

    m in R^{N x d}, one learned memory matrix shared by both modalities
    r(x) = TopKAttention(query=x, key=m, value=m)                            # k = 32
    V = Encoder(PE(CNN patches + r(CNN patches)))                            # visual side
    h_t = Decoder(e_<=t + r(e_<=t), V)                                       # text side
    p(w_{t+1} | w_<=t, I) = softmax(Linear(h_t))

Each query reads the memory with multi-head attention that keeps, per head, only its top-k scores
and normalises over those (a "top-k softmax"): the other slots get weight exactly 0. The decoder
is the plain pre-norm Transformer decoder of :mod:`uarbench.models.layers` (R2GenCMN has no
relational memory). The response of a word depends on that word alone, so causality holds.

Hand-written because no library provides it; the settings are the facts of the authors' public
code (zhjohnchan/R2GenCMN, ``modules/base_cmn.py``, ``train_iu_xray.sh``): memory 2048 x 512
initialised N(0, (1/512)^2), top-32, the model's 8 heads, dropout 0.1 on the memory's weights,
sinusoidal positions on the visual features, Xavier init for every other matrix. Its IU-Xray
training settings (lr 1e-4 visual / 5e-4 rest, decay 0.8 every 10 epochs, 100 epochs, batch 16,
beam 3) live in TrainConfig / DecodeConfig, not here. The shared skeleton and its departures from
the original (the project's CNN patch encoder, torch's layer norm) are in :mod:`baselines.r2gen`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from baselines.encoder_decoder import CPU_SMALL, EncoderDecoderBaseline, EncoderDecoderConfig
from uarbench.models import register_model
from uarbench.models.layers import SinusoidalPositions, TransformerDecoder


@dataclass(frozen=True)
class R2GenCMNConfig(EncoderDecoderConfig):
    """R2GenCMN's model settings; the memory is ``memory_size`` x d_model."""
    memory_size: int = 2048             # N, slots of the cross-modal memory (R2GenCMN: 2048)
    topk: int = 32                      # scores kept per query and head (R2GenCMN: 32)

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not 1 <= self.topk <= self.memory_size:
            problems.append(f"topk {self.topk} must be in [1, memory_size {self.memory_size}]")
        return problems

    @classmethod
    def paper(cls, **overrides) -> "R2GenCMNConfig":
        """R2GenCMN's IU-Xray setting: ResNet-101 patches, 3 layers, d 512, d_ff 512, 8 heads,
        memory 2048 x 512 read with top-32 attention, dropout 0.1, beam 3 (DecodeConfig)."""
        return cls(**overrides)

    @classmethod
    def cpu_small(cls, **overrides) -> "R2GenCMNConfig":
        """UARConfig.cpu_small's sizes, memory 512 x 128 (a quarter of the slots at a quarter of
        the width, as UAR cpu-small shrinks its 2048-vector basis) still read with top-32."""
        return cls(**{**CPU_SMALL, "memory_size": 512, **overrides})


class TopKMemoryAttention(nn.Module):
    """Multi-head attention of queries over a memory matrix keeping the top-k logits per query
    and head (R2GenCMN's memory querying and responding)."""

    def __init__(self, d_model: int, n_heads: int, topk: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads, self.d_head, self.topk = n_heads, d_model // n_heads, topk
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def weights(self, query: Tensor, memory: Tensor) -> Tensor:
        """query (B, T, d), memory (N, d) -> attention weights (B, H, T, N): each row sums to 1
        over its top-k slots and is exactly 0 elsewhere."""
        B, T, _ = query.shape
        q = self.q_proj(query).view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(memory).view(-1, self.n_heads, self.d_head).transpose(0, 1)  # (H, N, hd)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, T, N)
        top, idx = scores.topk(self.topk, dim=-1)  # (B, H, T, k)
        # softmax over the kept scores, scattered back: the other N - k slots stay exactly 0
        p = top.softmax(dim=-1)  # float32 under autocast: the zeros take its dtype
        return scores.new_zeros(scores.shape, dtype=p.dtype).scatter(-1, idx, p)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        """query (B, T, d), memory (N, d) -> responses (B, T, d)."""
        B, T, d = query.shape
        v = self.v_proj(memory).view(-1, self.n_heads, self.d_head).transpose(0, 1)  # (H, N, hd)
        y = self.dropout(self.weights(query, memory)) @ v  # (B, H, T, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, d))


@register_model("r2gencmn")
class R2GenCMNModel(EncoderDecoderBaseline):
    config_class = R2GenCMNConfig

    def __init__(self, cfg: R2GenCMNConfig) -> None:
        super().__init__(cfg)
        self.memory = nn.Parameter(torch.empty(cfg.memory_size, cfg.d_model))
        self.cmn = TopKMemoryAttention(cfg.d_model, cfg.n_heads, cfg.topk, cfg.dropout)
        self.visual_positions = SinusoidalPositions(cfg.n_visual_tokens, cfg.d_model)
        self.visual_dropout = nn.Dropout(cfg.dropout)
        self.decoder = TransformerDecoder(cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_ff,
                                          cfg.dropout, norm_first=True)
        self._init_weights()
        nn.init.normal_(self.memory, mean=0.0, std=1.0 / cfg.d_model)  # R2GenCMN: std 1/cmm_dim

    def respond(self, x: Tensor) -> Tensor:
        """x + its memory response (B, T, d): the same memory and attention for both modalities."""
        return x + self.cmn(x, self.memory)

    def encode(self, images: Tensor) -> Tensor:
        patches = self.respond(self.cnn(self._check_images(images)))  # (B, L, d)
        return self.encoder(self.visual_dropout(self.visual_positions(patches)))

    def hidden(self, memory: Tensor, memory_mask: Tensor | None, ids: Tensor,
               mask: Tensor | None) -> Tensor:
        return self.decoder(self.respond(self.embed(ids)), memory, self_mask=mask,
                            memory_mask=memory_mask)
