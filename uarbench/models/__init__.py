"""Models: the registry every report generator (UAR, baselines, floors) is entered in."""
from __future__ import annotations

from uarbench.registry import Registry

# every built-in report generator, imported when first asked for (uarbench.registry)
MODELS: Registry[type] = Registry("model", lazy={
    "uar": "uarbench.models.uar.model:UARModel",
    "base": "baselines.base:BaseModel",
    "r2gen": "baselines.r2gen:R2GenModel",
    "r2gencmn": "baselines.r2gencmn:R2GenCMNModel",
    "constant": "baselines.constant:ConstantReport",
    "nn_retrieval": "baselines.nn_retrieval:NearestNeighbourReport",
})


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
