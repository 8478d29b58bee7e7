"""R2Gen (Chen et al., EMNLP 2020, "Generating Radiology Reports via Memory-driven Transformer"),
the baseline every radiology report generation table starts from (UAR_SPEC.md §9).

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

This module also holds what R2Gen and R2GenCMN (:mod:`baselines.r2gencmn`, built on R2Gen's code)
share: :class:`EncoderDecoderConfig` and :class:`EncoderDecoderBaseline`, which implement the
trainable-model contract of :class:`uarbench.models.uar.UARModel` (forward with teacher forcing,
encode / decode_step for decoding, checkpoints that store their config).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.configs import FrozenConfig
from uarbench.errors import UarbenchError
from uarbench.models import ConfigCheckpoint, register_model
from uarbench.models.layers import (FeedForward, MultiHeadAttention, SinusoidalPositions,
                                    TransformerEncoder)
from uarbench.models.resnet import CNNPatchEncoder
from uarbench.models.uar.config import ResNetArch

# R2Gen's layer norms use eps 1e-6 (PyTorch's default is 1e-5)
LN_EPS = 1e-6


# --- configs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderDecoderConfig(FrozenConfig):
    """Fields every R2Gen-lineage baseline has: the Transformer, text and image settings."""
    # --- Transformer (R2Gen: 3 layers, d 512, d_ff 512, 8 heads, dropout 0.1) ---
    d_model: int = 512
    n_heads: int = 8
    d_ff: int = 512
    n_layers: int = 3
    dropout: float = 0.1
    # --- text ---
    vocab_size: int = 0                 # 0 = unset: pass len(WordTokenizer) (specials included)
    max_seq_length: int = 60            # 60 IU-Xray / 100 MIMIC-CXR; ids (B, T) have T <= this
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    # --- images (R2Gen: resize 256, random crop 224 for training; test resized to 224) ---
    n_views: int = 2                    # IU-Xray frontal + lateral; MIMIC-CXR 1
    image_size: int = 256               # train: resize to this, then random crop
    crop_size: int = 224                # train crop; test images are resized to this
    cnn_arch: ResNetArch = "resnet101"
    cnn_weights: str | None = None      # torchvision state-dict file; None = random init
    cnn_width: int = 64                 # ResNet stem width (torchvision 64; weights need 64)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise UarbenchError(f"invalid {type(self).__name__}: " + "; ".join(problems) + ".",
                                fix="correct the fields named above.")

    def _problems(self) -> list[str]:
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} must divide by n_heads {self.n_heads}")
        if self.crop_size > self.image_size:
            problems.append(f"crop_size {self.crop_size} exceeds image_size {self.image_size}")
        if self.cnn_arch not in ResNetArch.__args__:
            problems.append(f"cnn_arch {self.cnn_arch!r} not in {ResNetArch.__args__}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout} must be in [0, 1)")
        return problems

    @property
    def cnn_grid(self) -> int:
        """ResNet feature-map side: five stride-2 stages, each ceil(n / 2) (224 -> 7)."""
        n = self.crop_size
        for _ in range(5):
            n = math.ceil(n / 2)
        return n

    @property
    def n_visual_tokens(self) -> int:
        """L, the patches the decoder attends to: 2 views x 7 x 7 = 98 in the paper setting."""
        return self.n_views * self.cnn_grid ** 2



# the cpu-small sizes of UARConfig.cpu_small (d 128 with 4 heads, 2 layers, 64 px crops from 72,
# ResNet-18, no dropout): a synth-cxr run then takes about as long as UAR cpu-small
CPU_SMALL = dict(d_model=128, n_heads=4, d_ff=256, n_layers=2, dropout=0.0, image_size=72,
                 crop_size=64, cnn_arch="resnet18", cnn_width=16)


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


# --- the shared encoder-decoder ----------------------------------------------------------------------
class TextEmbedding(nn.Module):
    """Word table scaled by sqrt(d) plus sinusoidal positions, then dropout (R2Gen's tgt_embed)."""

    def __init__(self, cfg: EncoderDecoderConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.positions = SinusoidalPositions(cfg.max_seq_length, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> (B, T, d)."""
        if ids.shape[1] > self.positions.table.shape[0]:
            raise ValueError(f"{ids.shape[1]} token positions exceed max_seq_length "
                             f"{self.positions.table.shape[0]}")
        return self.dropout(self.positions(self.words(ids) * self.scale))


class EncoderDecoderBaseline(ConfigCheckpoint, nn.Module):
    """The trainable-model contract shared by R2Gen and R2GenCMN (the one UARModel follows).

    Subclasses build their own parts, call :meth:`_init_weights` last, and define
    :meth:`encode` (images -> visual memory) and :meth:`hidden` (decoder states of a prefix).
    Batch: ``images`` (B, V, 1, H, W) float in [0, 1], ``ids`` (B, T) [bos] + words + [eos] + pad,
    optional ``mask`` (B, T) bool (True = real token; defaults to ids != pad).
    """
    config_class: type = EncoderDecoderConfig
    @staticmethod
    def uses_image_tokens(cfg) -> bool:
        """These models read batch["images"], never image tokens."""
        return False
    tir = None                  # no text-to-image refiner: the trainer runs one stage

    def __init__(self, cfg: EncoderDecoderConfig) -> None:
        super().__init__()
        if cfg.vocab_size <= max(cfg.pad_id, cfg.bos_id, cfg.eos_id):
            raise UarbenchError(f"{type(cfg).__name__}.vocab_size is {cfg.vocab_size} (unset).",
                                fix="pass vocab_size=len(word_tokenizer), specials included.")
        self.cfg = cfg
        self.stage = 1
        self.cnn = CNNPatchEncoder(cfg.cnn_arch, cfg.d_model, cfg.n_views, cfg.dropout,
                                   cfg.cnn_weights, cfg.cnn_width)
        self.embed = TextEmbedding(cfg)
        self.encoder = TransformerEncoder(cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_ff,
                                          cfg.dropout, norm_first=True)  # R2Gen is pre-norm
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def _init_weights(self) -> None:
        # R2Gen's make_model: Xavier-uniform for every matrix, biases and norms left as built;
        # the ResNet keeps its own init or the loaded weights
        for name, p in self.named_parameters():
            if p.dim() > 1 and not name.startswith("cnn.resnet."):
                nn.init.xavier_uniform_(p)

    @staticmethod
    def _check_images(images: Tensor) -> Tensor:
        if images.dim() != 5 or not images.is_floating_point():
            raise ValueError(f"takes images (B, V, 1, H, W) float in [0, 1], got "
                             f"{tuple(images.shape)} {images.dtype}")
        return images

    def encode(self, images: Tensor) -> Tensor:
        """images (B, V, 1, H, W) -> visual memory (B, L, d)."""
        raise NotImplementedError

    def hidden(self, memory: Tensor, memory_mask: Tensor | None, ids: Tensor,
               mask: Tensor | None) -> Tensor:
        """Decoder states (B, T, d) of the prefix ids (B, T); state t sees tokens <= t only."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Teacher forcing: input ids[:, :-1], target ids[:, 1:], pad targets carry no loss.
        -> ``loss`` (= ``ce``), ``global_`` and ``mask`` (0: no such terms), ``logits`` (B, T-1, V)."""
        ids = batch["ids"]
        mask = batch["mask"] if batch.get("mask") is not None else ids != self.cfg.pad_id
        if "images" not in batch:
            raise KeyError(f"{type(self).__name__} needs batch['images']")
        memory = self.encode(batch["images"])  # (B, L, d)
        logits = self.head(self.hidden(memory, None, ids[:, :-1], mask[:, :-1]))  # (B, T-1, V)
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        zero = ce.new_zeros(())
        return {"loss": ce, "ce": ce, "global_": zero, "mask": zero, "logits": logits}

    def decode_step(self, memory: Tensor, memory_mask: Tensor | None, prefix_ids: Tensor) -> Tensor:
        """memory (B, L, d) from :meth:`encode`, memory_mask (B, L) bool or None, prefix_ids
        (B, t) unpadded, starting with bos -> log-probabilities (B, vocab) of token t+1. The whole
        prefix is recomputed each call (recurrent memories included): no cache to keep in step."""
        h = self.hidden(memory, memory_mask, prefix_ids, None)  # (B, t, d)
        return F.log_softmax(self.head(h[:, -1]), dim=-1)  # (B, vocab)

    def set_stage(self, stage: int) -> None:
        """One training stage: only stage 1 exists."""
        if stage != 1:
            raise ValueError(f"{type(self).__name__} trains in one stage, got stage {stage}")

    def image_side_parameters(self) -> list[nn.Parameter]:
        """The visual extractor (ResNet and its projection): trained at the lower image lr."""
        return list(self.cnn.parameters())



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
