"""Baselines and sanity floors, registered in ``uarbench.models.MODELS`` on import."""
from baselines import constant  # noqa: F401  (registers "constant")
