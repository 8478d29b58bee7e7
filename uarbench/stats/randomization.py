"""Paired approximate randomization (Riezler & Maxwell, 2005), as sacrebleu runs it.

Null hypothesis: the two systems' outputs are exchangeable report by report. Each trial swaps
the two systems' outputs on a random half of the reports (the same swap masks for every pair of
one table, :mod:`uarbench.stats.resample`) and rescores both; the two-sided p-value is
``p = (c + 1) / (N + 1)`` where c counts trials with ``|d_trial| >= |d_observed|``, d = score(B) -
score(A). Defaults: N = 10,000 trials (sacrebleu), seed 0.

Fast path: a trial's summed statistics are the base sums plus ``mask @ (stats_B - stats_A)``
(the rows that moved), for all trials at once, then scored with
:meth:`MetricFamily.score_from_sums <uarbench.metrics.base.MetricFamily.score_from_sums>`. Differences within ``TIE_RTOL`` (relative) of the
observed one count as at least as extreme, so that the order of floating-point summation can
never decide a p-value (a trial that swaps only identical outputs is a tie, not a coin flip).
Hand-written: no library runs approximate randomization on sufficient statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from uarbench.metrics.base import MetricFamily
from uarbench.metrics.signature import Signature
from uarbench.stats.bootstrap import check_stats
from uarbench.stats.resample import iter_swap_masks

TIE_RTOL = 1e-10


@dataclass(frozen=True)
class RandomizationTest:
    """One metric, one pair: observed difference (B - A), how many trials were at least as
    extreme, and the p-value."""

    difference: float
    count: int
    trials: int
    p_value: float


def ar_signature(family: MetricFamily, *, trials: int, seed: int) -> str:
    fields = (("trials", str(trials)), ("sided", "two"), ("p", "(c+1)/(N+1)"),
              ("seed", str(seed)), ("rng", "numpy-pcg64"), *family.resampling_fields())
    return str(Signature("paired-ar", fields))


def at_least_as_extreme(trial_diffs: np.ndarray, observed: float) -> np.ndarray:
    """Which trial differences count towards c (ties within TIE_RTOL included)."""
    return np.abs(trial_diffs) >= abs(observed) - TIE_RTOL * max(1.0, abs(observed))


def trial_differences(stats_a: np.ndarray, stats_b: np.ndarray, family: MetricFamily,
                      masks: np.ndarray) -> dict[str, np.ndarray]:
    """metric -> (c,) differences score(B') - score(A') after swapping the rows in ``masks``.

    ``masks``: (c, n) bool, True where the two systems trade outputs.
    """
    checked = check_stats({"a": stats_a, "b": stats_b}, family)
    a, b = checked["a"], checked["b"]
    if family.scores_from_sums():
        n = len(a)
        a, b = family.summable_stats(a), family.summable_stats(b)
        moved = masks.astype(np.float64) @ (b - a)          # (c, k): what the swapped rows move
        sa = family.score_from_sums(a.sum(axis=0) + moved, n)
        sb = family.score_from_sums(b.sum(axis=0) - moved, n)
        return {m: np.asarray(sb[m], dtype=np.float64) - np.asarray(sa[m], dtype=np.float64)
                for m in family.names}
    rows = []  # exact, slow: rescore the swapped rows themselves
    for mask in masks:
        ta = family.score_from_stats(np.where(mask[:, None], b, a))
        tb = family.score_from_stats(np.where(mask[:, None], a, b))
        rows.append({m: tb[m] - ta[m] for m in family.names})
    return {m: np.array([r[m] for r in rows], dtype=np.float64) for m in family.names}


def randomization_tests(baseline: np.ndarray, systems: Mapping[str, np.ndarray],
                        family: MetricFamily, *, trials: int = 10000,
                        seed: int = 0) -> dict[str, dict[str, RandomizationTest]]:
    """Each system against ``baseline`` with one shared set of swap masks.

    Returns system -> metric -> :class:`RandomizationTest` (difference = system - baseline).
    """
    checked = check_stats({"\0baseline": baseline, **systems}, family)
    a = checked.pop("\0baseline")
    score_a = family.score_from_stats(a)
    observed = {s: {m: float(score_b[m] - score_a[m]) for m in family.names}
                for s, score_b in ((s, family.score_from_stats(b)) for s, b in checked.items())}
    counts = {s: {m: 0 for m in family.names} for s in checked}
    for masks in iter_swap_masks(len(a), trials, seed=seed):              # (c, n) bool
        for s, b in checked.items():
            diffs = trial_differences(a, b, family, masks)
            for m in family.names:
                counts[s][m] += int(at_least_as_extreme(diffs[m], observed[s][m]).sum())
    return {s: {m: RandomizationTest(observed[s][m], counts[s][m], trials,
                                     (counts[s][m] + 1) / (trials + 1))
                for m in family.names} for s in checked}


def paired_randomization(stats_a: np.ndarray, stats_b: np.ndarray, family: MetricFamily, *,
                         trials: int = 10000, seed: int = 0) -> dict[str, RandomizationTest]:
    """metric -> test of system B against system A (difference = B - A)."""
    return randomization_tests(stats_a, {"B": stats_b}, family, trials=trials, seed=seed)["B"]
