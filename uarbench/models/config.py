"""The fields every report-generation model here shares: :class:`SequenceModelConfig`, the
Transformer, text and image settings of the R2Gen lineage (R2Gen, R2GenCMN, and UAR, which
docs/spec.md §1 builds on the same Transformer). UAR's config and the encoder-decoder
baselines' config extend it with what their papers add, so a field such as ``d_model`` or
``max_seq_length`` is declared, documented and validated once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from uarbench.configs import FrozenConfig
from uarbench.errors import UarbenchError

ResNetArch = Literal["resnet18", "resnet34", "resnet50", "resnet101"]
AttentionKind = Literal["sdpa", "explicit"]


@dataclass(frozen=True)
class SequenceModelConfig(FrozenConfig):
    """Transformer (R2Gen: 3 layers, d 512, d_ff 512, 8 heads, dropout 0.1), text and image
    fields. Subclasses may redeclare a field to change its default and add checks by extending
    :meth:`_problems`; ``__post_init__`` raises one error naming every problem."""
    # --- Transformer ---
    d_model: int = 512
    n_heads: int = 8
    d_ff: int = 512
    n_layers: int = 3
    dropout: float = 0.1
    attention: AttentionKind = "sdpa"   # same math: fused SDPA kernels | the explicit reference
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
    cnn_arch: ResNetArch = "resnet101"  # CNN backbone (R2Gen: ResNet-101)
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
        if self.attention not in AttentionKind.__args__:
            problems.append(f"attention {self.attention!r} not in {AttentionKind.__args__}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout} must be in [0, 1)")
        return problems

    @property
    def cnn_grid(self) -> int:
        """ResNet feature-map side: five stride-2 stages, each ceil(n / 2) (224 -> 7, 112 -> 4)."""
        n = self.crop_size
        for _ in range(5):
            n = math.ceil(n / 2)
        return n
