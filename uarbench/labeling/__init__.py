"""CheXpert-style labelers: the offline rule-based one (default) and the CheXbert adapter."""
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.labeling import chexbert  # noqa: F401  (registers "chexbert")
from uarbench.labeling import rules  # noqa: F401  (registers "rules")

__all__ = ["LABELERS", "Labeler"]
