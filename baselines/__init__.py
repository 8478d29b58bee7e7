"""Baselines and sanity floors, registered in ``uarbench.models.MODELS`` on import:
``constant`` and ``nn_retrieval`` (floors), ``r2gen`` and ``r2gencmn`` (trainable baselines)."""
from baselines import constant, nn_retrieval, r2gen, r2gencmn

__all__ = ["constant", "nn_retrieval", "r2gen", "r2gencmn"]
