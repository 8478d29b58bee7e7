"""TrainConfig: optimiser, schedule, stages, selection and decoding of one training run
(UAR_SPEC.md §5-6). Presets mirror the model presets: ``paper`` and ``cpu_small``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from uarbench.errors import UarbenchError
from uarbench.training.decoding import DecodeConfig


@dataclass(frozen=True)
class TrainConfig:
    epochs_stage1: int = 30
    epochs_stage2: int = 10             # used only when the model trains in two stages
    batch_size: int = 16
    lr: float = 1e-4                    # AdamW, everything but the image side
    lr_image: float = 5e-5              # image-side embeddings / CNN (spec §6)
    weight_decay: float = 5e-5
    lr_decay: float = 0.8               # step decay, once per epoch
    grad_clip: float = 0.1              # grad-norm clip; TIR masks are clipped on their own
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = 0                    # torch CPU threads; 0 = leave torch's default
    eval_batch_size: int = 32
    decode: DecodeConfig = field(default_factory=DecodeConfig)          # test decoding
    select_decode: DecodeConfig = field(default_factory=DecodeConfig)   # validation decoding

    def __post_init__(self) -> None:
        problems = [f"{f} must be >= 1" for f in ("batch_size", "eval_batch_size")
                    if getattr(self, f) < 1]
        problems += [f"{f} must be >= 0" for f in ("epochs_stage1", "epochs_stage2", "threads")
                     if getattr(self, f) < 0]
        if self.device not in ("cpu", "cuda", "auto"):
            problems.append(f"device {self.device!r} not in cpu, cuda, auto")
        if problems:
            raise UarbenchError("invalid TrainConfig: " + "; ".join(problems) + ".",
                                fix="correct the fields named above.")

    @classmethod
    def paper(cls, **kw) -> "TrainConfig":
        return cls(**kw)

    @classmethod
    def cpu_small(cls, **kw) -> "TrainConfig":
        """About a minute on 2 cores for synth-cxr's 600 training studies: a higher learning
        rate and fewer epochs than the paper, greedy decoding for validation (selection only)."""
        small = dict(epochs_stage1=6, epochs_stage2=2, lr=1e-3, lr_image=5e-4, lr_decay=0.85,
                     grad_clip=1.0, threads=1, eval_batch_size=64,
                     select_decode=DecodeConfig(method="greedy"))
        return cls(**{**small, **kw})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        from uarbench.config import config_from_dict
        return config_from_dict(cls, d, {"decode": DecodeConfig, "select_decode": DecodeConfig})

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)
