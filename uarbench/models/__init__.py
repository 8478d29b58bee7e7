"""Models: the registry every report generator (UAR, baselines, floors) is entered in."""
from __future__ import annotations

from uarbench.registry import Registry

MODELS: Registry[type] = Registry("model")


def register_model(name: str):
    """Class decorator: ``@register_model("constant")``."""
    return MODELS.register(name)


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


def load_models() -> None:
    """Import every module that registers a model (UAR, the baselines and floors)."""
    import baselines  # noqa: F401
    import uarbench.models.uar  # noqa: F401
