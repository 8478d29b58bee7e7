"""R2Gen (Chen et al., EMNLP 2020, "Generating Radiology Reports via Memory-driven Transformer"),
the baseline every radiology report generation table starts from (docs/spec.md §9).

    V = Encoder(CNN patches of each view)            # ResNet-101, 7x7 patches per 224 px view
    e_t = Embed(w_t) * sqrt(d) + PE(t)
    M_t = RM(M_{t-1}, e_t)                           # relational memory (Santoro et al. 2018)
    h_t = Decoder(e_<=t, V), each sublayer's norm an MCLN(., M_t)    # memory-driven conditional LN
    p(w_{t+1} | w_<=t, I) = softmax(Linear(h_t))

Hand-written because no maintained library provides it: the authors' repository is a research
script (one ``args`` namespace, features switched on dataset names). The settings below are the
facts of that public code and paper (cuhksz-nlp/R2Gen, ``modules/encoder_decoder.py``); nothing is
copied from it. Where this module departs from it, it says so:

* the patch features come from the project's :class:`CNNPatchEncoder` (a linear projection plus a
  view embedding; R2Gen projects with Linear + ReLU + dropout and has no view embedding);
* every layer norm normalises with ``torch.nn.functional.layer_norm`` (biased variance, eps inside
  the square root) where R2Gen divides by ``std + eps`` (unbiased std);
* the token table and the output layer also get Xavier initialisation (R2Gen: PyTorch defaults).

The training settings of the paper (Adam, lr 5e-5 visual extractor / 1e-4 the rest, step decay 0.8
per epoch, batch 16, beam 3, max length 60 IU-Xray / 100 MIMIC-CXR) are not model fields: they
live in :class:`uarbench.training.config.TrainConfig` and :class:`DecodeConfig`, so each setting
has one source of truth.

What R2Gen and R2GenCMN share (the config base, the word embedding, the encoder-decoder with the
trainable-model contract) is :mod:`baselines.encoder_decoder`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from baselines.encoder_decoder import CPU_SMALL, EncoderDecoderBaseline, EncoderDecoderConfig
from uarbench.models import register_model
from uarbench.models.layers import FeedForward, MultiHeadAttention

# R2Gen's layer norms use eps 1e-6 (PyTorch's default is 1e-5)
LN_EPS = 1e-6


@dataclass(frozen=True)
class R2GenConfig(EncoderDecoderConfig):
    """R2Gen's model settings; the relational memory has ``rm_slots`` slots of width d_model."""
    rm_slots: int = 3                   # R2Gen: 3 memory slots
    rm_heads: int = 8                   # heads of the memory's attention (R2Gen: 8)

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if self.rm_slots < 1:
            problems.append(f"rm_slots {self.rm_slots} must be >= 1")
        if self.d_model % self.rm_heads:
            problems.append(f"d_model {self.d_model} must divide by rm_heads {self.rm_heads}")
        return problems

    @classmethod
    def paper(cls, **overrides) -> "R2GenConfig":
        """R2Gen's IU-Xray setting: ResNet-101 patches (7x7x2048 per 224 px view), 3 layers,
        d 512, d_ff 512, 8 heads, relational memory 3 slots with 8 heads, dropout 0.1. Train with
        lr 5e-5 (visual) / 1e-4 (rest) and decode with beam 3 (TrainConfig / DecodeConfig)."""
        return cls(**overrides)

    @classmethod
    def cpu_small(cls, **overrides) -> "R2GenConfig":
        """UARConfig.cpu_small's sizes; the memory keeps R2Gen's 3 slots, with 4 heads of 32 dims."""
        return cls(**{**CPU_SMALL, "rm_heads": 4, **overrides})


# --- R2Gen's two additions: relational memory and MCLN ------------------------------------------------
class RelationalMemory(nn.Module):
    """Relational memory (Santoro et al. 2018) as R2Gen uses it: S slots of
    width d, updated once per token by attention over [memory; current input], an MLP, and
    LSTM-like input and forget gates. Output at step t: the memory after reading token t."""

    def __init__(self, n_slots: int, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_slots = n_slots
        self.attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(),
                                 nn.Linear(d_model, d_model), nn.ReLU())
        self.W = nn.Linear(d_model, 2 * d_model)  # gate logits from the input
        self.U = nn.Linear(d_model, 2 * d_model)  # gate logits from the previous memory
        # M_0: slot i is the i-th unit vector (an identity matrix padded with zeros to width d)
        self.register_buffer("initial", torch.eye(n_slots, d_model), persistent=False)

    def step(self, x: Tensor, memory: Tensor) -> Tensor:
        """x (B, d), memory (B, S, d) -> next memory (B, S, d)."""
        kv = torch.cat([memory, x[:, None]], dim=1)  # (B, S+1, d): keys and values [M; y_t]
        z = memory + self.attn(memory, kv, kv)
        z = z + self.mlp(z)
        i, f = (self.W(x)[:, None] + self.U(torch.tanh(memory))).chunk(2, dim=-1)  # (B, S, d) each
        return torch.sigmoid(i) * torch.tanh(z) + torch.sigmoid(f) * memory  # gated like an LSTM

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T, d) -> memories (B, T, S*d), row t after reading inputs[:, t] (causal:
        a pad appended after the real tokens changes no earlier row)."""
        memory = self.initial.expand(inputs.shape[0], -1, -1)  # (B, S, d)
        out = []
        for t in range(inputs.shape[1]):
            memory = self.step(inputs[:, t], memory)
            out.append(memory.flatten(1))  # (B, S*d)
        return torch.stack(out, dim=1)  # (B, T, S*d)


class ConditionalLayerNorm(nn.Module):
    """Memory-driven conditional layer norm (MCLN): the memory of step t
    predicts offsets of the norm's scale and shift, gamma_t = gamma + MLP_g(M_t),
    beta_t = beta + MLP_b(M_t)."""

    def __init__(self, d_model: int, memory_dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d_model))
        self.beta = nn.Parameter(torch.zeros(d_model))
        self.mlp_gamma = nn.Sequential(nn.Linear(memory_dim, d_model), nn.ReLU(),
                                       nn.Linear(d_model, d_model))
        self.mlp_beta = nn.Sequential(nn.Linear(memory_dim, d_model), nn.ReLU(),
                                      nn.Linear(d_model, d_model))
        for m in (*self.mlp_gamma, *self.mlp_beta):
            if isinstance(m, nn.Linear):  # R2Gen: biases 0.1 (weights: Xavier, as every matrix)
                nn.init.constant_(m.bias, 0.1)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        """x (B, T, d), memory (B, T, S*d) -> (B, T, d)."""
        x_hat = F.layer_norm(x, x.shape[-1:], eps=LN_EPS)
        return (self.gamma + self.mlp_gamma(memory)) * x_hat + self.beta + self.mlp_beta(memory)


class MemoryDrivenDecoderLayer(nn.Module):
    """A pre-norm decoder layer whose three norms are MCLNs conditioned on the memory."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, memory_dim: int) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norms = nn.ModuleList(ConditionalLayerNorm(d_model, memory_dim) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, visual: Tensor, rm: Tensor, *, self_mask: Tensor | None,
                memory_mask: Tensor | None) -> Tensor:
        h = self.norms[0](x, rm)
        x = x + self.dropout(self.self_attn(h, h, h, key_mask=self_mask, causal=True))
        h = self.norms[1](x, rm)
        x = x + self.dropout(self.cross_attn(h, visual, visual, key_mask=memory_mask))
        return x + self.dropout(self.ffn(self.norms[2](x, rm)))


class MemoryDrivenDecoder(nn.Module):
    def __init__(self, cfg: R2GenConfig) -> None:
        super().__init__()
        memory_dim = cfg.rm_slots * cfg.d_model
        self.layers = nn.ModuleList(
            MemoryDrivenDecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, memory_dim)
            for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model, eps=LN_EPS)  # R2Gen's final norm is a plain one

    def forward(self, x: Tensor, visual: Tensor, rm: Tensor, *, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None) -> Tensor:
        """x (B, T, d), visual (B, L, d), rm (B, T, S*d) -> (B, T, d)."""
        for layer in self.layers:
            x = layer(x, visual, rm, self_mask=self_mask, memory_mask=memory_mask)
        return self.norm(x)


@register_model("r2gen")
class R2GenModel(EncoderDecoderBaseline):
    config_class = R2GenConfig

    def __init__(self, cfg: R2GenConfig) -> None:
        super().__init__(cfg)
        self.rm = RelationalMemory(cfg.rm_slots, cfg.d_model, cfg.rm_heads, cfg.dropout)
        self.decoder = MemoryDrivenDecoder(cfg)
        self._init_weights()

    def encode(self, images: Tensor) -> Tensor:
        # R2Gen adds no positions to the patches (its src_embed is the identity)
        return self.encoder(self.cnn(self._check_images(images)))  # (B, L, d)

    def hidden(self, memory: Tensor, memory_mask: Tensor | None, ids: Tensor,
               mask: Tensor | None) -> Tensor:
        e = self.embed(ids)  # (B, T, d); R2Gen feeds the same embeddings to the memory
        return self.decoder(e, memory, self.rm(e), self_mask=mask, memory_mask=memory_mask)
