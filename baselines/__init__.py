"""Baselines and sanity floors, registered in ``uarbench.models.MODELS`` on import:
``constant`` and ``nn_retrieval`` (floors), ``base``, ``r2gen`` and ``r2gencmn`` (trained)."""
from baselines import base, constant, nn_retrieval, r2gen, r2gencmn

__all__ = ["base", "constant", "nn_retrieval", "r2gen", "r2gencmn"]
