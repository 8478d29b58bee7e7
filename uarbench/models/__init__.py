"""Models: the registry every report generator (UAR, baselines, floors) is entered in."""
from __future__ import annotations

from uarbench.registry import Registry

MODELS: Registry[type] = Registry("model")


def register_model(name: str):
    """Class decorator: ``@register_model("constant")``."""
    return MODELS.register(name)


def load_models() -> None:
    """Import every module that registers a model (UAR, the baselines and floors)."""
    import baselines  # noqa: F401
    import baselines.base  # noqa: F401
    import uarbench.models.uar  # noqa: F401
