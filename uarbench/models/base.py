"""What the trainer may ask of a model (:class:`TrainableModel`) and checkpoints that store their
config (:class:`ConfigCheckpoint`). UAR and the encoder-decoder baselines implement both, so
:mod:`uarbench.training.trainer` never looks inside a model: its training stages, the loss
weights of Eq. 13, which parameters learn at the image-side rate and which are clipped apart
are the model's to say. UAR's two-stage schedule (paper §3.5) is written in
:class:`uarbench.models.uar.model.UARModel` alone.
"""
from __future__ import annotations

from torch import nn


class ConfigCheckpoint:
    """``to_checkpoint`` / ``from_checkpoint`` for a model built from one frozen config
    (``self.cfg``, class attribute ``config_class``) with a training ``stage``: checkpoints store
    their config, and reloading never re-reads ``cfg.cnn_weights`` (the weights are in the state
    dict, and the file may be gone)."""

    def to_checkpoint(self) -> dict:
        return {"config": self.cfg.to_dict(), "stage": self.stage, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict):
        cfg = cls.config_class.from_dict(ckpt["config"])
        model = cls(cfg.replace(cnn_weights=None))
        model.cfg = cfg  # keep the config as recorded
        model.load_state_dict(ckpt["state_dict"])
        model.set_stage(ckpt.get("stage", 1))
        return model


class TrainableModel(nn.Module):
    """The trainer's view of a model; the defaults describe a one-stage model whose loss is
    ``ce + global_ + mask`` with every parameter at one learning rate and one clip.

    ``forward(batch)`` returns ``loss`` and its terms ``ce``, ``global_``, ``mask`` (the trainer
    logs them; data-parallel training reweighs them per rank, so ``loss`` must equal
    ``sum(w * term)`` with :meth:`loss_weights`)."""

    stage: int = 1
    # state-dict name prefixes that stage 1 never trains (may differ between runs sharing it)
    stage1_unused: tuple[str, ...] = ()

    @staticmethod
    def stage1_config(cfg):
        """The config of the one-stage model whose whole training is ``cfg``'s stage 1
        (:mod:`uarbench.training.shared_stage1`); a one-stage model is its own."""
        return cfg

    @staticmethod
    def uses_image_tokens(cfg) -> bool:
        """Whether the model reads frozen image-token ids (``image_tokens``) or pixels."""
        return False

    def training_stages(self) -> tuple[int, ...]:
        """The stages the trainer runs, in order (each with a fresh optimiser)."""
        return (1,)

    def set_stage(self, stage: int) -> None:
        if stage not in self.training_stages():
            raise ValueError(f"{type(self).__name__} trains in stages "
                             f"{self.training_stages()}, got stage {stage}")
        self.stage = stage

    def loss_weights(self) -> tuple[float, float, float]:
        """(ce, global_, mask) weights of the loss (UAR: Eq. 13's l1, l2, l3)."""
        return (1.0, 1.0, 1.0)

    def image_side_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the image-side learning rate (none by default)."""
        return []

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups whose gradient norms are clipped separately."""
        return [list(self.parameters())]
