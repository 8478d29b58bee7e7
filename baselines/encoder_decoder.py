"""The encoder-decoder that R2Gen (:mod:`baselines.r2gen`) and R2GenCMN (:mod:`baselines.r2gencmn`,
built on R2Gen's code) share: :class:`EncoderDecoderConfig`, the word embedding and
:class:`EncoderDecoderBaseline`, which implements the trainable-model contract of
:class:`uarbench.models.uar.UARModel` (forward with teacher forcing, encode / decode_step for
decoding, checkpoints that store their config). Each baseline adds only what its paper adds.
Hand-written for the reasons :mod:`baselines.r2gen` gives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.errors import UarbenchError
from uarbench.models.base import ConfigCheckpoint, TrainableModel
from uarbench.models.config import SequenceModelConfig
from uarbench.models.layers import SinusoidalPositions, TransformerEncoder, use_attention
from uarbench.models.resnet import CNNPatchEncoder


# --- configs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderDecoderConfig(SequenceModelConfig):
    """Fields every R2Gen-lineage baseline has: the shared Transformer, text and image settings
    of :class:`SequenceModelConfig` at R2Gen's defaults (256 px resized, 224 px crops)."""

    @property
    def n_visual_tokens(self) -> int:
        """L, the patches the decoder attends to: 2 views x 7 x 7 = 98 in the paper setting."""
        return self.n_views * self.cnn_grid ** 2


# the cpu-small sizes of UARConfig.cpu_small (d 128 with 4 heads, 2 layers, 64 px crops from 72,
# ResNet-18, no dropout): a synth-cxr run then takes about as long as UAR cpu-small
CPU_SMALL = dict(d_model=128, n_heads=4, d_ff=256, n_layers=2, dropout=0.0, image_size=72,
                 crop_size=64, cnn_arch="resnet18", cnn_width=16)


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


class EncoderDecoderBaseline(ConfigCheckpoint, TrainableModel):
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
        use_attention(self, self.cfg.attention)

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

    def image_side_parameters(self) -> list[nn.Parameter]:
        """The visual extractor (ResNet and its projection): trained at the lower image lr."""
        return list(self.cnn.parameters())
