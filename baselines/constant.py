"""Sanity floor ``constant``: the most frequent (cleaned) training report, predicted for every study.

Every comparison table shows it: a model that does not beat it has learned nothing about images.
Ties between equally frequent reports go to the lexicographically smallest, so the floor does
not depend on file order.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from uarbench.data.datasets import Dataset
from uarbench.data.r2gen import Study
from uarbench.models import register_model


@register_model("constant")
class ConstantReport:
    def __init__(self) -> None:
        self.report: str | None = None

    def fit(self, dataset: Dataset) -> "ConstantReport":
        counts = Counter(dataset.clean(s.report) for s in dataset.split("train"))
        self.report = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return self

    def predict(self, studies: Iterable[Study]) -> dict[str, str]:
        if self.report is None:
            raise RuntimeError("call fit() before predict()")
        return {s.id: self.report for s in studies}
