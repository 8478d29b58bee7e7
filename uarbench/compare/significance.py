"""Test-sample uncertainty of table rows that may have several training seeds: a bootstrap CI of
the per-seed mean score and a paired approximate-randomization test against the baseline row.

The number a multi-seed row shows is the mean of its seeds' scores, so its uncertainty over test
reports is that of the same statistic ("per-seed mean", recorded as ``seeds:per-seed-mean`` in
the test signature):

- CI: every seed's run is scored on the same bootstrap resamples of the test reports (one shared
  index matrix for the whole table: :func:`uarbench.stats.bootstrap.resampled_scores`) and a
  resample's row score is the mean over the row's seeds; 95% percentile interval of those
  (Koehn 2004). With one seed this is exactly the run's own bootstrap CI.
- Test: paired approximate randomization (Riezler & Maxwell 2005) with the table's shared swap
  masks; a trial swaps report i between the row and the baseline in every seed pair and the
  trial statistic is the mean over pairs of the swapped differences. Seeds are paired in sorted
  order when both rows have the same number of seeds, a one-seed row is paired with every seed
  of the other; other combinations are not tested (the reason is recorded). With one seed on
  both sides this is exactly :func:`uarbench.stats.randomization.randomization_tests`.

Holm's correction across the table is applied by the caller (:mod:`uarbench.compare.table`).
Composed from :mod:`uarbench.stats` (shared resamples, sum scorers, tie rule); only the averaging
over seeds is new here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from uarbench.metrics.base import MetricFamily
from uarbench.metrics.signature import Signature
from uarbench.stats.bootstrap import percentile_interval, resampled_scores
from uarbench.stats.randomization import at_least_as_extreme, trial_differences
from uarbench.stats.resample import iter_swap_masks
from uarbench.stats.seeds import SEED_TEST
from uarbench.stats.sums import resampling_fields

SEED_STATISTIC = "per-seed-mean"


@dataclass(frozen=True)
class SeedMeanEstimate:
    """One row, one metric: the per-seed mean score with its CI, and against the baseline the
    difference (row - baseline), its paired CI and the two-sided AR p-value."""

    estimate: float
    ci: tuple[float, float]
    difference: float | None = None
    difference_ci: tuple[float, float] | None = None
    p_value: float | None = None
    untested: str | None = None        # why there is no p-value (not on the baseline row)


def seed_pairs(n_system: int, n_baseline: int) -> list[tuple[int, int]] | None:
    """(system seed index, baseline seed index) pairs for the AR test; None: not testable."""
    if n_system == n_baseline:
        return [(i, i) for i in range(n_system)]
    if n_baseline == 1:
        return [(i, 0) for i in range(n_system)]
    if n_system == 1:
        return [(0, j) for j in range(n_baseline)]
    return None


def seed_mean_comparison(systems: Mapping[str, Sequence[np.ndarray]], family: MetricFamily, *,
                         baseline: str | None = None, n_resamples: int = 1000,
                         trials: int = 10000, seed: int = 0, confidence: float = 0.95
                         ) -> dict[str, dict[str, SeedMeanEstimate]]:
    """system -> metric -> :class:`SeedMeanEstimate`.

    ``systems``: row -> one (n, k) statistics matrix of ``family`` per seed, every matrix over
    the same n reports in the same order. Without ``baseline`` only scores and CIs.
    """
    if baseline is not None and baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems: {', '.join(systems)}")
    flat = {f"{s}\0{k}": np.asarray(st, dtype=np.float64)
            for s, seeds in systems.items() for k, st in enumerate(seeds)}
    samples = resampled_scores(flat, family, n_resamples=n_resamples, seed=seed)  # (B,) each
    full = {key: family.score_from_stats(st) for key, st in flat.items()}

    def seed_mean(s: str, source: Mapping[str, Mapping[str, object]], m: str):
        return np.mean([np.asarray(source[f"{s}\0{k}"][m], dtype=np.float64)
                        for k in range(len(systems[s]))], axis=0)

    est = {s: {m: float(seed_mean(s, full, m)) for m in family.names} for s in systems}
    boot = {s: {m: seed_mean(s, samples, m) for m in family.names} for s in systems}
    p_values = _ar_p_values(systems, family, baseline, est, trials, seed)
    out: dict[str, dict[str, SeedMeanEstimate]] = {}
    for s in systems:
        out[s] = {}
        for m in family.names:
            ci = percentile_interval(boot[s][m], confidence)
            if baseline is None or s == baseline:
                out[s][m] = SeedMeanEstimate(est[s][m], ci)
                continue
            p, why = p_values[s].get(m, (None, "not tested"))
            out[s][m] = SeedMeanEstimate(
                est[s][m], ci, est[s][m] - est[baseline][m],
                percentile_interval(boot[s][m] - boot[baseline][m], confidence), p, why)
    return out


def _ar_p_values(systems: Mapping[str, Sequence[np.ndarray]], family: MetricFamily,
                 baseline: str | None, est: Mapping[str, Mapping[str, float]], trials: int,
                 seed: int) -> dict[str, dict[str, tuple[float | None, str | None]]]:
    """system -> metric -> (two-sided AR p-value, or None and the reason)."""
    out: dict[str, dict[str, tuple[float | None, str | None]]] = {s: {} for s in systems}
    if baseline is None:
        return out
    base = [np.asarray(x, dtype=np.float64) for x in systems[baseline]]
    pairs: dict[str, list[tuple[int, int]]] = {}
    for s in systems:
        if s == baseline:
            continue
        p = seed_pairs(len(systems[s]), len(base))
        if p is None:
            why = (f"not tested: {len(systems[s])} seeds against the baseline's {len(base)} "
                   "(seeds pair only 1:1, 1:k or k:1)")
            out[s] = {m: (None, why) for m in family.names}
        else:
            pairs[s] = p
    if not pairs:
        return out
    observed = {s: {m: est[s][m] - est[baseline][m] for m in family.names} for s in pairs}
    counts = {s: {m: 0 for m in family.names} for s in pairs}
    n = len(base[0])
    for masks in iter_swap_masks(n, trials, seed=seed):                    # (c, n) bool
        for s, ps in pairs.items():
            runs = [np.asarray(x, dtype=np.float64) for x in systems[s]]
            diffs = [trial_differences(base[j], runs[i], family, masks) for i, j in ps]
            for m in family.names:
                mean_diff = np.mean([d[m] for d in diffs], axis=0)          # (c,)
                counts[s][m] += int(at_least_as_extreme(mean_diff, observed[s][m]).sum())
    for s in pairs:
        out[s] = {m: ((counts[s][m] + 1) / (trials + 1), None) for m in family.names}
    return out


def significance_signature(metric: str, family: MetricFamily, *, n_resamples: int, trials: int,
                   seed: int, confidence: float, alpha: float, holm_m: int,
                   holm_m_seed: int = 0) -> str:
    """How the CI, p-values and significance markers of ``metric`` were obtained."""
    fields = (("test", "paired-ar"), ("trials", str(trials)), ("sided", "two"),
              ("p", "(c+1)/(N+1)"), ("bs", str(n_resamples)),
              ("ci", f"{confidence:g}-percentile"), ("seed", str(seed)), ("rng", "numpy-pcg64"),
              ("seeds", SEED_STATISTIC), ("holm", f"table(m={holm_m})"), ("alpha", f"{alpha:g}"),
              *resampling_fields(family))
    if holm_m_seed:
        fields += (("seed_test", SEED_TEST), ("seed_holm", f"table(m={holm_m_seed})"))
    return str(Signature(metric, fields))
