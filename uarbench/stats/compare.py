"""The one significance engine of uarbench: rows (systems) that may have several training seeds
against a baseline row, over the test reports: a bootstrap CI of each row's per-seed mean
score, the paired difference with its CI, a paired approximate-randomization p-value, one Holm
step over a table's comparisons, and one signature format (:func:`test_signature`).

The number a multi-seed row shows is the mean of its seeds' scores, so its uncertainty over test
reports is that of the same statistic (``seeds:per-seed-mean`` in the signature):

- CI: every seed's run is scored on the same bootstrap resamples of the test reports (one shared
  index matrix for the whole table: :func:`uarbench.stats.bootstrap.resampled_scores`) and a
  resample's row score is the mean over the row's seeds; percentile interval of those (Koehn
  2004). With one seed this is exactly the run's own bootstrap CI.
- Test: paired approximate randomization (Riezler & Maxwell 2005) with the table's shared swap
  masks; a trial swaps report i between the row and the baseline in every seed pair and the
  trial statistic is the mean over pairs of the swapped differences. Seeds are paired in sorted
  order when both rows have the same number of seeds, a one-seed row is paired with every seed
  of the other; other combinations are not tested (the reason is recorded). With one seed on
  both sides this is exactly :func:`uarbench.stats.randomization.randomization_tests`.

:func:`seed_mean_comparison` is the engine (one metric family); :func:`holm_step` the
correction; :func:`compare_systems` the library call for one table of one-seed systems (what
``uarbench compare``'s table does per column, :mod:`uarbench.compare.table`, with the seed-level
test of :mod:`uarbench.stats.seeds` beside it). :func:`uarbench.compare.evaluations.compare_runs` does the
same from the folders ``uarbench eval`` wrote. This package reads no files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from uarbench.metrics.base import MetricFamily
from uarbench.metrics.signature import Signature
from uarbench.stats.bootstrap import percentile_interval, resampled_scores
from uarbench.stats.holm import holm_adjust
from uarbench.stats.randomization import at_least_as_extreme, trial_differences
from uarbench.stats.resample import iter_swap_masks
from uarbench.stats.seeds import SEED_TEST

HOLM_SCOPES = ("table", "metric")
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
    runs = {s: [np.asarray(x, dtype=np.float64) for x in systems[s]] for s in pairs}
    for masks in iter_swap_masks(n, trials, seed=seed):                    # (c, n) bool
        diffs = _pair_differences(base, runs, pairs, family, masks)
        for s in pairs:
            for m in family.names:
                mean_diff = np.mean([d[m] for d in diffs[s]], axis=0)        # (c,)
                counts[s][m] += int(at_least_as_extreme(mean_diff, observed[s][m]).sum())
    for s in pairs:
        out[s] = {m: ((counts[s][m] + 1) / (trials + 1), None) for m in family.names}
    return out


PAIR_BLOCK_ELEMENTS = 1 << 22     # bounds the (trials, pairs x k) moved-sums block (32 MB)


def _pair_differences(base: Sequence[np.ndarray], runs: Mapping[str, Sequence[np.ndarray]],
                      pairs: Mapping[str, Sequence[tuple[int, int]]], family: MetricFamily,
                      masks: np.ndarray) -> dict[str, list[dict[str, np.ndarray]]]:
    """system -> per seed pair: metric -> (c,) trial differences score(run') - score(base')
    (:func:`~uarbench.stats.randomization.trial_differences` of every pair, with the masks
    converted once and the moved sums of many pairs in one matrix product)."""
    if not family.scores_from_sums():
        return {s: [trial_differences(base[j], runs[s][i], family, masks) for i, j in ps]
                for s, ps in pairs.items()}
    fmasks = masks.astype(np.float64)                                        # (c, n)
    base_rows = [family.summable_stats(b) for b in base]
    items = [(s, family.summable_stats(runs[s][i]), base_rows[j])
             for s, ps in pairs.items() for i, j in ps]
    out: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in pairs}
    k = base_rows[0].shape[1]
    n = fmasks.shape[1]
    block = max(1, PAIR_BLOCK_ELEMENTS // max(1, len(fmasks) * k))
    for lo in range(0, len(items), block):
        part = items[lo:lo + block]
        moved = fmasks @ np.hstack([b - a for _, b, a in part])           # (c, pairs x k)
        for p, (s, b, a) in enumerate(part):
            mv = moved[:, p * k:(p + 1) * k]
            sa = family.score_from_sums(a.sum(axis=0) + mv, n)
            sb = family.score_from_sums(b.sum(axis=0) - mv, n)
            out[s].append({m: np.asarray(sb[m], dtype=np.float64)
                           - np.asarray(sa[m], dtype=np.float64) for m in family.names})
    return out


def holm_step(p_values: Sequence[float | None], alpha: float
              ) -> list[tuple[float | None, bool | None]]:
    """Holm-adjusted p-values of one family of comparisons and whether each is <= ``alpha``
    (None where there is no p-value)."""
    return [(q, None if q is None else q <= alpha) for q in holm_adjust(list(p_values))]


def test_signature(metric: str, family: MetricFamily, *, n_resamples: int, trials: int,
                   seed: int, confidence: float, alpha: float, holm_m: int,
                   holm_scope: str = "table", holm_m_seed: int = 0) -> str:
    """How the CI, p-values and significance markers of ``metric`` were obtained (the one
    signature format of every significance result)."""
    fields = (("test", "paired-ar"), ("trials", str(trials)), ("sided", "two"),
              ("p", "(c+1)/(N+1)"), ("bs", str(n_resamples)),
              ("ci", f"{confidence:g}-percentile"), ("seed", str(seed)), ("rng", "numpy-pcg64"),
              ("seeds", SEED_STATISTIC), ("holm", f"{holm_scope}(m={holm_m})"),
              ("alpha", f"{alpha:g}"), *family.resampling_fields())
    if holm_m_seed:
        fields += (("seed_test", SEED_TEST), ("seed_holm", f"table(m={holm_m_seed})"))
    return str(Signature(metric, fields))




@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    system: str
    estimate: float
    ci: tuple[float, float]
    difference: float | None = None              # system - baseline; None on the baseline row
    difference_ci: tuple[float, float] | None = None
    p_value: float | None = None                 # paired AR, two-sided
    p_holm: float | None = None
    significant: bool | None = None              # p_holm <= alpha


@dataclass(frozen=True)
class Comparison:
    baseline: str
    rows: tuple[ComparisonRow, ...]
    signatures: dict[str, str]                   # metric -> signature of the tests

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows])

    def table(self, fmt: str = "simple") -> str:
        def f(x: float | None) -> str:
            return "" if x is None else f"{x:.4f}"
        body = [(r.metric, r.system, f(r.estimate), f"[{f(r.ci[0])}, {f(r.ci[1])}]",
                 "(baseline)" if r.difference is None else f"{r.difference:+.4f}",
                 "" if r.difference_ci is None else f"[{r.difference_ci[0]:+.4f}, "
                                                     f"{r.difference_ci[1]:+.4f}]",
                 f(r.p_value), f(r.p_holm), "*" if r.significant else "")
                for r in self.rows]
        head = ("metric", "system", "score", "CI", "diff", "diff CI", "p (AR)", "p (Holm)", "sig")
        footer = "\n".join(f"{m}: {s}" for m, s in self.signatures.items())
        return tabulate(body, headers=head, tablefmt=fmt) + "\n" + footer


def family_columns(family: MetricFamily) -> list[str]:
    """The family's columns in per_report_stats.csv (``<family>.<stat>``, CE: its own)."""
    columns = getattr(family, "columns", None)
    if callable(columns):
        return list(columns())
    return [f"{family.family}.{s}" for s in family.stat_names]


def stats_from_frame(family: MetricFamily, per_report: pd.DataFrame) -> np.ndarray:
    """(n, k) statistics of ``family`` from a per-report DataFrame (per_report_stats.csv)."""
    missing = [c for c in family_columns(family) if c not in per_report.columns]
    if missing:
        raise ValueError(f"per-report statistics lack {family.family} columns "
                         f"({', '.join(missing[:3])}...): was the metric scored?")
    return per_report[family_columns(family)].to_numpy(dtype=np.float64)


def compare_systems(systems: Mapping[str, Mapping[str, np.ndarray]],
                    families: Mapping[str, MetricFamily], *, baseline: str,
                    n_resamples: int = 1000, trials: int = 10000, seed: int = 0,
                    confidence: float = 0.95, alpha: float = 0.05,
                    holm_scope: str = "table") -> Comparison:
    """Compare every system with ``baseline`` on every metric of ``families``: the engine with
    one seed per system, then one Holm step over the table (or per metric).

    ``systems``: system -> family key -> (n, k) per-report statistics of that family (same n
    reports, same order, for every system); ``families``: family key -> family instance.
    """
    if baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems: {', '.join(systems)}")
    if holm_scope not in HOLM_SCOPES:
        raise ValueError(f"holm_scope must be one of {HOLM_SCOPES}, got {holm_scope!r}")
    rows: list[dict] = []
    fam_of_metric: dict[str, MetricFamily] = {}
    for key, family in families.items():
        res = seed_mean_comparison({s: [systems[s][key]] for s in systems}, family,
                                   baseline=baseline, n_resamples=n_resamples, trials=trials,
                                   seed=seed, confidence=confidence)
        for m in family.names:
            fam_of_metric[m] = family
            for s in systems:
                e = res[s][m]
                row = {"metric": m, "system": s, "estimate": e.estimate, "ci": e.ci}
                if s != baseline:
                    row.update(difference=e.difference, difference_ci=e.difference_ci,
                               p_value=e.p_value)
                rows.append(row)
    tested = [i for i, r in enumerate(rows) if "p_value" in r]
    groups = ([tested] if holm_scope == "table" else
              [[i for i in tested if rows[i]["metric"] == m] for m in fam_of_metric])
    m_of: dict[str, int] = {}
    for g in groups:
        for i, (q, flag) in zip(g, holm_step([rows[i]["p_value"] for i in g], alpha)):
            rows[i].update(p_holm=q, significant=flag)
            m_of[rows[i]["metric"]] = len(g)
    signatures = {m: test_signature(m, family, n_resamples=n_resamples, trials=trials, seed=seed,
                                    confidence=confidence, alpha=alpha, holm_m=m_of.get(m, 0),
                                    holm_scope=holm_scope)
                  for m, family in fam_of_metric.items()}
    return Comparison(baseline, tuple(ComparisonRow(**r) for r in rows), signatures)
