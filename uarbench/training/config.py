"""TrainConfig: optimiser, schedule, stages, selection and decoding of one training run
(docs/spec.md §5-6). Presets mirror the model presets: ``paper`` and ``cpu_small``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from uarbench.configs import FrozenConfig
from uarbench.errors import UarbenchError
from uarbench.training.decoding import DecodeConfig


@dataclass(frozen=True)
class TrainConfig(FrozenConfig):
    epochs_stage1: int = 30
    epochs_stage2: int = 10             # used only when the model trains in two stages
    batch_size: int = 16
    lr: float = 1e-4                    # AdamW, everything but the image side
    lr_image: float = 5e-5              # image-side embeddings / CNN (docs/spec.md §6)
    lr_image_tokens: float | None = None  # LSU's visual-token table W_I (+ its positions); None = lr_image
    weight_decay: float = 5e-5
    lr_decay: float = 0.8               # step decay, once per epoch
    grad_clip: float = 0.1              # grad-norm clip; TIR masks are clipped on their own
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = 0                    # torch CPU threads; 0 = leave torch's default
    eval_batch_size: int = 32
    eval_batch_size_gpu: int = 256      # studies per decoding batch on CUDA (beams share memory)
    compile: bool = False               # torch.compile the model call of a training step
    decode: DecodeConfig = field(default_factory=DecodeConfig)          # test decoding
    select_decode: DecodeConfig = field(default_factory=DecodeConfig)   # validation decoding

    def __post_init__(self) -> None:
        problems = [f"{f} must be >= 1"
                    for f in ("batch_size", "eval_batch_size", "eval_batch_size_gpu")
                    if getattr(self, f) < 1]
        problems += [f"{f} must be >= 0" for f in ("epochs_stage1", "epochs_stage2", "threads")
                     if getattr(self, f) < 0]
        problems += [f"{f} must be > 0" for f in ("lr", "lr_image", "lr_image_tokens")
                     if getattr(self, f) is not None and not getattr(self, f) > 0]
        if self.device not in ("cpu", "cuda", "auto"):
            problems.append(f"device {self.device!r} not in cpu, cuda, auto")
        if problems:
            raise UarbenchError("invalid TrainConfig: " + "; ".join(problems) + ".",
                                fix="correct the fields named above.")

    def eval_batch_size_on(self, device_type: str) -> int:
        """Studies per decoding / scoring batch on a device of this type (the GPU size on CUDA)."""
        return self.eval_batch_size_gpu if device_type == "cuda" else self.eval_batch_size

    @classmethod
    def paper(cls, **kw) -> "TrainConfig":
        return cls(**kw)

    @classmethod
    def cpu_small(cls, **kw) -> "TrainConfig":
        """About a minute on 2 cores for synth-cxr's 600 training studies: a higher learning
        rate and fewer epochs than the paper.

        Two choices measured on synth-cxr (cpu-small UAR, seed 0, label recovery = micro F1 of
        the rule labels of the generated reports against the ground truth, validation split):

        * Validation decodes as the test does (beam 3), not greedily. With greedy selection the
          LSU rows chose their epoch-0 model (a generic report scoring 0.606 greedy vs 0.591 for
          the template) whose beam-3 output is a truncated template (test BLEU-4 0.18), and stage 2
          restarted from that model. Costs ~25% more wall time per run.
        * W_I, LSU's visual-token table, learns at 1e-2 (``lr_image_tokens``) while a CNN image
          side keeps 5e-4: the table starts from random rows, each updated only when its code
          occurs. UAR label recovery 0.188 (= the constant floor) at 5e-4, 0.228 at 3e-3, 0.279
          at 1e-2; the Base path's CNN at 1e-2 stays at the template (0.188 vs 0.287 at 5e-4).
        """
        small = dict(epochs_stage1=6, epochs_stage2=2, lr=1e-3, lr_image=5e-4,
                     lr_image_tokens=1e-2, lr_decay=0.85, grad_clip=1.0, threads=1,
                     eval_batch_size=64)
        return cls(**{**small, **kw})
