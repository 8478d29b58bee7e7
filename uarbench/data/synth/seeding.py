"""Independent random streams per study, so each study depends only on (seed, split, index).

A study's findings, anatomy and report wording come from separate streams: changing how one is
drawn never shifts the others, and a study does not depend on how many studies other splits hold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uarbench.data.synth.config import SPLITS

FINDINGS, ANATOMY, GRAMMAR = 0, 1, 2


@dataclass(frozen=True)
class StudyKey:
    seed: int
    split: str
    index: int

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLITS.index(self.split), self.index, stream])
