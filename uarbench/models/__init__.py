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
