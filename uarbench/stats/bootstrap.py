"""Paired bootstrap resampling (Koehn, EMNLP 2004): 95% percentile confidence intervals.

Every system is resampled with the same report indices (:mod:`uarbench.stats.resample`), so the
interval of a difference to a baseline is paired. A resample's score is recomputed from summed
per-report statistics (each family's ``score_from_sums``), never by averaging per-report scores of a
corpus-level metric; all resamples are scored at once: counts (B, n) @ stats (n, k).

Conventions (recorded by :func:`ci_signature`): ``n_resamples`` 1,000 (sacrebleu's default),
percentile interval ``numpy.quantile(scores, [(1 - c) / 2, (1 + c) / 2])`` with linear
interpolation, ``confidence`` 0.95, the point estimate is the score of the full test set (not the
mean of the resamples). Hand-written: scipy.stats.bootstrap resamples raw data and recomputes a
statistic per resample, which is what this module exists to avoid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from uarbench.metrics.base import MetricFamily
from uarbench.metrics.signature import Signature
from uarbench.stats.resample import iter_bootstrap_counts


@dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its confidence interval."""

    estimate: float
    lo: float
    hi: float

    def to_list(self) -> list[float]:
        return [self.lo, self.hi]


@dataclass(frozen=True)
class BootstrapResult:
    systems: dict[str, dict[str, Interval]]       # system -> metric -> score and CI
    differences: dict[str, dict[str, Interval]]   # system -> metric -> (system - baseline) and CI
    baseline: str | None
    signature: str
    samples: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)  # (B,)


def check_stats(systems: Mapping[str, np.ndarray], family: MetricFamily) -> dict[str, np.ndarray]:
    """Validate same-shaped, non-empty (n, k) statistics matrices, one per system."""
    if not systems:
        raise ValueError("no systems given")
    out = {str(k): np.asarray(v, dtype=np.float64) for k, v in systems.items()}
    k = len(family.stat_names)
    shapes = {s.shape for s in out.values()}
    first = next(iter(out.values()))
    if len(shapes) != 1 or first.ndim != 2 or first.shape[1] != k or len(first) == 0:
        raise ValueError(f"{family.family}: every system needs the same non-empty (n, {k}) "
                         f"statistics matrix (same reports, same order); got "
                         f"{ {s: v.shape for s, v in out.items()} }")
    return out


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def ci_signature(family: MetricFamily, *, n_resamples: int, seed: int, confidence: float) -> str:
    fields = (("bs", str(n_resamples)), ("ci", f"{confidence:g}-percentile"),
              ("seed", str(seed)), ("rng", "numpy-pcg64"), *family.resampling_fields())
    return str(Signature("paired-bootstrap", fields))


def resampled_scores(systems: Mapping[str, np.ndarray], family: MetricFamily, *,
                     n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """system -> metric -> (n_resamples,) scores of the shared bootstrap resamples."""
    systems = check_stats(systems, family)
    n = len(next(iter(systems.values())))
    parts: dict[str, dict[str, list[np.ndarray]]] = {s: {m: [] for m in family.names}
                                                     for s in systems}
    summable = ({s: family.summable_stats(st) for s, st in systems.items()}
                if family.scores_from_sums() else {})
    for counts in iter_bootstrap_counts(n, n_resamples, seed=seed):       # (c, n)
        for s, st in systems.items():
            if family.scores_from_sums():
                scores = family.score_from_sums(counts @ summable[s], n)  # sums (c, k)
            else:  # not a function of sums: score the resampled rows themselves
                rows = [family.score_from_stats(np.repeat(st, c.astype(np.int64), axis=0))
                        for c in counts]
                scores = {m: np.array([r[m] for r in rows]) for m in family.names}
            for m in family.names:
                parts[s][m].append(np.asarray(scores[m], dtype=np.float64))
    return {s: {m: np.concatenate(v) for m, v in ms.items()} for s, ms in parts.items()}


def paired_bootstrap(systems: Mapping[str, np.ndarray], family: MetricFamily, *,
                     n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                     baseline: str | None = None) -> BootstrapResult:
    """Score and percentile CI per system and metric; with ``baseline``, paired difference CIs.

    ``systems``: name -> (n, k) per-report statistics of ``family`` on the same n reports.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    systems = check_stats(systems, family)
    if baseline is not None and baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems: {', '.join(systems)}")
    samples = resampled_scores(systems, family, n_resamples=n_resamples, seed=seed)
    estimates = {s: family.score_from_stats(st) for s, st in systems.items()}
    out = {s: {m: Interval(float(estimates[s][m]), *percentile_interval(samples[s][m], confidence))
               for m in family.names} for s in systems}
    diffs: dict[str, dict[str, Interval]] = {}
    if baseline is not None:
        for s in systems:
            if s == baseline:
                continue
            diffs[s] = {m: Interval(float(estimates[s][m] - estimates[baseline][m]),
                                    *percentile_interval(samples[s][m] - samples[baseline][m],
                                                         confidence))
                        for m in family.names}
    sig = ci_signature(family, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return BootstrapResult(out, diffs, baseline, sig, samples)
