"""The labeler contract: report text -> one CheXpert label vector per report.

A labeler maps cleaned report strings to a float matrix of shape ``(n_reports, 14)`` whose
columns follow :data:`uarbench.data.chexpert.OBSERVATIONS` (aligned by name, whatever order the
underlying model uses) and whose values are 1 positive, 0 negative, -1 uncertain and NaN blank
(not mentioned). ``version`` goes into every clinical-efficacy signature. A labeler that cannot
run here (CheXbert without a checkpoint) says why in ``unavailable_reason`` and is reported as
unavailable, never as a number.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from uarbench.registry import Registry


class Labeler(ABC):
    name: str = ""

    @property
    @abstractmethod
    def version(self) -> str:
        """What produced the labels, e.g. ``rules-v2(phrases:2,hedges:probable)`` or ``chexbert-<sha256 of weights[:12]>``."""

    def unavailable_reason(self) -> str | None:
        """None when the labeler can run on this machine, else a one-line reason."""
        return None

    @abstractmethod
    def label(self, reports: Sequence[str]) -> np.ndarray:
        """(n_reports, 14) float array: 1 / 0 / -1 / NaN, columns in OBSERVATIONS order."""


# the built-in labelers, imported when first asked for (uarbench.registry)
LABELERS: Registry[type[Labeler]] = Registry("labeler", lazy={
    "rules": "uarbench.labeling.rules:RuleLabeler",
    "chexbert": "uarbench.labeling.chexbert:CheXbertLabeler",
})
