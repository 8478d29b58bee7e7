"""Models: the registry every report generator (UAR, baselines, floors) is entered in."""
from __future__ import annotations

from uarbench.registry import Registry

MODELS: Registry[type] = Registry("model")


def register_model(name: str):
    """Class decorator: ``@register_model("constant")``."""
    return MODELS.register(name)
