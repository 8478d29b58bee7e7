"""UARConfig: the one input of the UAR model (Li et al., ICCV 2023, arXiv 2303.15932).

Every value the paper fixes or this project decides (docs/spec.md) is a field here with the
spec's default, so a run records exactly what it trained. The ablation switches reproduce the
paper's Tables 2-4: ``lsu`` (rows a/e), ``cra_integration`` and ``cra_global_loss`` (rows b-d),
``tir`` and ``two_stage`` (row f vs full UAR), ``basis`` (Table 3) and ``fusion`` (Table 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from uarbench.configs import FrozenConfig
from uarbench.models.config import SequenceModelConfig

BasisKind = Literal["orthogonal", "uniform", "normal"]
FusionKind = Literal["dual_gate", "none", "add"]
TokenizerKind = Literal["learned", "dalle"]
NegativesKind = Literal["hardest", "all"]


@dataclass(frozen=True)
class VQConfig(FrozenConfig):
    """The offline `learned` image tokenizer (a small VQ-VAE, docs/spec.md §2). Its codebook
    size is UARConfig.codebook_size, so the two cannot disagree."""
    hidden: int = 64            # conv channels of encoder and decoder
    embed_dim: int = 64         # dimension of a codebook vector
    commitment: float = 0.25    # beta of the commitment loss (van den Oord et al. 2017)
    steps: int = 2000           # optimiser steps of fit()
    lr: float = 1e-3            # Adam learning rate of fit()
    restart_every: int = 100    # steps between re-seeding unused codes from encoder outputs


@dataclass(frozen=True)
class UARConfig(SequenceModelConfig):
    """The shared Transformer, text and image fields (:class:`SequenceModelConfig`, docs/spec.md
    §1, R2Gen lineage) with UAR's image size, and UAR's own: the ablation switches, LSU, CRA, TIR
    and the Eq. 13 loss weights."""
    # --- ablation switches (paper Tables 2-4) ---
    lsu: bool = True                    # False: ResNet patch features, the paper's Base path
    cra_integration: bool = True        # apply CRA (Eqs. 6-9); False: F = E
    cra_global_loss: bool = True        # L_Global (Eq. 10), on F (= E without integration)
    tir: bool = True                    # learnable cross-attention masks (Eqs. 11-12)
    two_stage: bool = True              # False = ablation row (f): TIR from the start, l3 = 1
    basis: BasisKind = "orthogonal"
    fusion: FusionKind = "dual_gate"
    # --- Transformer extras ---
    norm_first: bool = True             # pre-norm with a final LayerNorm, as R2Gen's code
    embed_std: float = 0.02             # init std of the token tables W_I, W_R
    # --- images (paper §4.1: 112 px crops from 128); the Base path's CNN is cnn_arch ---
    image_size: int = 128               # train: resize to this, then random crop
    crop_size: int = 112                # train crop; test images are resized to this
    tokenizer: TokenizerKind = "learned"
    codebook_size: int = 8192           # |V_I|: DALL-E dVAE 8192; learned VQ configurable
    token_downsample: int = 8           # pixels per visual token side (dVAE and VQ-VAE both 8)
    dalle_encoder: str | None = None    # path of a DALL-E dVAE encoder state dict (`dalle`)
    vq: VQConfig = field(default_factory=VQConfig)
    # --- CRA (docs/spec.md §3) ---
    basis_size: int = 2048
    basis_seed: int = 0
    cra_heads: int = 8
    triplet_margin: float = 0.2
    triplet_negatives: NegativesKind = "hardest"  # Eq. 10 (paper) | "all": VSE0 mean hinge
    # --- TIR (docs/spec.md §4) ---
    tir_k: float = 1000.0
    # --- losses: L = l1 CE + l2 L_Global + l3 L_Mask (Eq. 13); stage 1 uses no mask ---
    l1: float = 1.0
    l2: float = 1.0
    l3: float = 1.0

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if self.d_model % self.cra_heads:
            problems.append(f"d_model {self.d_model} must divide by cra_heads {self.cra_heads}")
        if self.crop_size % self.token_downsample:
            problems.append(f"crop_size {self.crop_size} must be a multiple of "
                            f"token_downsample {self.token_downsample}")
        for name, allowed in (("basis", BasisKind), ("fusion", FusionKind),
                              ("tokenizer", TokenizerKind), ("triplet_negatives", NegativesKind)):
            if getattr(self, name) not in allowed.__args__:
                problems.append(f"{name} {getattr(self, name)!r} not in {allowed.__args__}")
        return problems

    # --- derived sizes ---
    @property
    def token_grid(self) -> int:
        """Visual tokens per image side: 112 / 8 = 14 (196 per view, paper §4.1)."""
        return self.crop_size // self.token_downsample

    @property
    def n_visual_tokens(self) -> int:
        """L, the number of image positions the decoder attends to (392 for the paper preset)."""
        grid = self.token_grid if self.lsu else self.cnn_grid
        return self.n_views * grid * grid

    # --- presets ---
    @classmethod
    def paper(cls, **overrides) -> "UARConfig":
        """The paper's IU-Xray setting (docs/spec.md §1-§4): d 512, 8 heads, d_ff 512, 3 layers,
        112 px crops from 128, basis 2048, codebook 8192."""
        return cls(**overrides)

    @classmethod
    def cpu_small(cls, **overrides) -> "UARConfig":
        """A model that trains usefully in about a minute on 2 CPU cores.

        Why these sizes: 64 px crops (from 72) give an 8x8 grid, so two views make L = 128
        visual tokens instead of 392, which cuts the cross-attention and TIR masks ~3x; d 128 with
        4 heads keeps 32 dims per head as in the paper (512 / 8 = 64 is the same order); two
        layers and d_ff 256 put the model near 1M parameters. basis 256 (> d 128) keeps B's
        columns orthonormal as in the paper (2048 > 512); codebook 1024 is the spec's small default
        for the learned tokenizer. The VQ-VAE is shrunk in step. Dropout 0: a one-minute run sees
        each study only a few times, so regularisation would only slow learning, and on 2 CPU cores
        the Bernoulli sampling was about half of a step (measured: ~0.17 s vs ~0.3 s per step at
        batch 16, T 60, one torch thread). The Base path's ResNet-18 is 16 channels wide instead
        of 64 (random init either way: ImageNet weights need width 64): at full width a Base step
        cost 0.58 s, 3.4x an LSU step. L_Global averages the hinge over every in-batch negative
        (VSE0, Faghri et al. 2018) instead of taking the hardest one: from scratch, in a few
        hundred steps, the hardest-negative loss stayed at 2 x margin (pooled features
        collapsed) and slowed grounding, while the mean hinge fell to 0.07 and made it faster
        (measured on synth-cxr, teacher-forced CE gap own vs shuffled images at 450 steps:
        Base+CRA+L_Global 0.054 -> 0.123, full UAR stage 1 0.000 -> 0.012). The paper preset
        keeps the hardest negative of Eq. 10.
        """
        small = dict(d_model=128, n_heads=4, d_ff=256, n_layers=2, cra_heads=4, dropout=0.0,
                     triplet_negatives="all",
                     image_size=72, crop_size=64, basis_size=256, codebook_size=1024,
                     cnn_arch="resnet18", cnn_width=16,
                     vq=VQConfig(hidden=32, embed_dim=32, steps=300, lr=2e-3, restart_every=50))
        return cls(**{**small, **overrides})
