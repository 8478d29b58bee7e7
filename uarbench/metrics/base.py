"""The metric contract: per-report sufficient statistics plus a score-from-statistics function.

A metric family (BLEU gives BLEU-1..4) turns ``predictions`` and ``references`` (already cleaned
strings, one reference per study) into a float matrix of per-report statistics, shape
``(n_reports, n_stats)``; ``score_from_stats`` turns any such matrix (or a resampled subset of
its rows) into the corpus-level scores. Resampling for significance tests therefore never
re-tokenises text. A family that cannot run here (METEOR without Java) says why in
``unavailable_reason`` and is reported as unavailable, never as 0.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

import uarbench
from uarbench.metrics.signature import Signature
from uarbench.registry import Registry


class MetricUnavailable(RuntimeError):
    """Raised by a family that fails at run time (a JVM that died); reported, not fatal."""


@dataclass(frozen=True)
class MetricResult:
    """One reported number with its signature; ``value`` is None when unavailable."""

    name: str
    value: float | None
    signature: str
    higher_is_better: bool = True
    unavailable: str | None = None

    def to_dict(self) -> dict:
        out = {"value": self.value, "signature": self.signature,
               "higher_is_better": self.higher_is_better}
        if self.unavailable is not None:
            out["unavailable"] = self.unavailable
        return out


class MetricFamily(ABC):
    """A group of scores computed from one statistics matrix."""

    family: str                    # "BLEU"
    names: tuple[str, ...]         # ("BLEU-1", ..., "BLEU-4")
    stat_names: tuple[str, ...]    # column names of the statistics matrix
    higher_is_better: bool = True
    impl: str = ""                 # goes into the signature, e.g. "uarbench-fast=pycocoevalcap-1.2"
    # how the statistic of a resample is formed; goes into the signature where it matters
    signature_fields: tuple[tuple[str, str], ...] = ()
    version: str = f"uarbench-{uarbench.__version__}"   # of this implementation, in signatures

    def unavailable_reason(self) -> str | None:
        """None when the metric can run on this machine, else a one-line reason."""
        return None

    def resampling_unavailable_reason(self) -> str | None:
        """None when scores can be computed here from stored statistics
        (:meth:`score_from_stats`, :meth:`score_from_sums`: CIs and tests), else why not. By
        default what :meth:`unavailable_reason` says; METEOR scores its statistics without the
        JVM that computes them."""
        return self.unavailable_reason()

    def signature(self, name: str, n: int, base: Mapping[str, object]) -> str:
        """The signature of metric ``name`` scored on ``n`` reports; ``base``: what the scoring
        job fixed (convention, cleaning, references, ids), first."""
        fields = tuple((str(k), str(v)) for k, v in base.items())
        fields += (("n", str(n)), *self.signature_fields, ("impl", self.impl),
                   ("version", self.version))
        return str(Signature(name, fields))

    @abstractmethod
    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """Per-report sufficient statistics, shape (n_reports, len(stat_names))."""

    @abstractmethod
    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        """Corpus scores (one per entry of ``names``) from a statistics matrix."""

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """Scores of R row sets from their column sums (R, k) and row count n -> (R,) per name:
        what scores thousands of bootstrap resamples or randomization trials at once
        (:mod:`uarbench.stats`). The sums are those of :meth:`summable_stats` rows. A family
        whose score is a function of such sums overrides it, equal to :meth:`score_from_stats`
        of the rows (tests/stats/test_resampled_scores.py); without it, resampling rescores the
        rows themselves (exact, slow)."""
        raise NotImplementedError(f"{self.family} does not score from column sums")

    def summable_stats(self, stats: np.ndarray) -> np.ndarray:
        """The rows whose column sums :meth:`score_from_sums` scores, from statistics rows: (n,
        k') with each row computed from its own row only, so that resampling and swapping rows
        commute with it. The statistics themselves by default; METEOR leaves out the chunk of
        perfectly matched reports (as the jar's corpus score does), CE keeps only the columns
        its averaging reads."""
        return np.asarray(stats, dtype=np.float64)

    @classmethod
    def scores_from_sums(cls) -> bool:
        """Whether :meth:`score_from_sums` is implemented."""
        return cls.score_from_sums is not MetricFamily.score_from_sums

    def resampling_fields(self) -> tuple[tuple[str, str], ...]:
        """Signature fields of a resampled score that differ from the full one (CIDEr: document
        frequencies stay those of the full test set)."""
        return ()

    def compute(self, *, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        return self.score_from_stats(self.stats(predictions, references))


NLG_METRICS: Registry[type[MetricFamily]] = Registry("NLG metric")
