"""CheXpert-style labelers: the offline rule-based one (default) and the CheXbert adapter."""
from uarbench.labeling.base import LABELERS, Labeler   # built-ins: lazy entries of LABELERS

__all__ = ["LABELERS", "Labeler"]
