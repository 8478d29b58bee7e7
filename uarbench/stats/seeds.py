"""Seed variance: mean +/- sample standard deviation of a score over training seeds.

This is the spread caused by training randomness (initialisation, data order), not test-sample
uncertainty: it is labelled "seed variance" and kept apart from bootstrap confidence intervals,
which say how much the score of *one* model would move with another test sample. Report both.
The standard deviation uses ddof=1 (sample sd); with one seed it is missing, not 0. A metric
missing (or unavailable) in any seed's run is reported as missing, never averaged over the
seeds that happen to have it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

LABEL = "seed variance"


@dataclass(frozen=True)
class SeedSummary:
    metric: str
    mean: float | None
    sd: float | None                 # sample sd (ddof=1); None with fewer than 2 seeds
    seeds: tuple[str, ...]           # the seeds that entered
    missing: tuple[str, ...] = ()    # seeds whose run lacks this metric: then mean is None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def __str__(self) -> str:
        if self.mean is None:
            return f"missing (no value for seed(s) {', '.join(self.missing)})"
        sd = "n/a" if self.sd is None else f"{self.sd:.4f}"
        return f"{self.mean:.4f} ± {sd} ({LABEL}: sd over {self.n_seeds} training seeds)"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n_seeds": self.n_seeds,
                "seeds": list(self.seeds), "missing": list(self.missing), "label": LABEL}


def seed_variance(runs: Mapping[object, Mapping[str, float | None]]) -> dict[str, SeedSummary]:
    """metric -> mean +/- sd over ``runs`` ({seed: {metric: value}}), in first-seen order."""
    if not runs:
        raise ValueError("no runs given: need {seed: {metric: value}} for at least one seed")
    seeds = tuple(str(s) for s in runs)
    metrics: list[str] = []
    for scores in runs.values():
        metrics += [m for m in scores if m not in metrics]
    out = {}
    for m in metrics:
        values = [scores.get(m) for scores in runs.values()]
        missing = tuple(s for s, v in zip(seeds, values)
                        if v is None or (isinstance(v, float) and math.isnan(v)))
        if missing:
            out[m] = SeedSummary(m, None, None, seeds, missing)
            continue
        xs = [float(v) for v in values]  # type: ignore[arg-type]
        out[m] = SeedSummary(m, *_mean_sd(xs), seeds)
    return out


def _mean_sd(xs: list[float]) -> tuple[float, float | None]:
    """Mean and sample sd (None for one value). Values near the float limit (a damaged record
    holding 1e308) are scaled down first instead of raising OverflowError."""
    n = len(xs)
    try:
        mean = math.fsum(xs) / n
        return mean, (math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
                      if n > 1 else None)
    except OverflowError:
        pass
    scale = max(abs(x) for x in xs)
    ys = [x / scale for x in xs]
    mean = math.fsum(ys) / n
    sd = math.sqrt(math.fsum((y - mean) ** 2 for y in ys) / (n - 1)) * scale if n > 1 else None
    return mean * scale, sd


SEED_TEST = "paired-t-over-seeds"


@dataclass(frozen=True)
class SeedTest:
    """A seed-level test of a row against the baseline: does the training-seed spread leave the
    difference of the per-seed scores distinguishable from 0? ``p_value`` None: not testable
    (``why``)."""

    p_value: float | None
    n_pairs: int
    why: str | None = None


def seed_level_test(row: list[float], baseline: list[float]) -> SeedTest:
    """Two-sided t-test on per-seed scores (each already a corpus score over the test reports).

    Same number of seeds on both sides: paired by seed order (``scipy.stats.ttest_rel``). A
    one-seed baseline (a floor, fitted once): the row's seeds against that value
    (``ttest_1samp``). A one-seed row, or other combinations: not testable. Differences without
    any spread (every seed moved by exactly the same amount) have no t statistic: p = 1 when
    that amount is 0, else not testable."""
    if len(row) < 2:
        return SeedTest(None, len(row), "not tested at seed level: one seed")
    if len(baseline) == len(row):
        diffs = [a - b for a, b in zip(row, baseline)]
    elif len(baseline) == 1:
        diffs = [a - baseline[0] for a in row]
    else:
        return SeedTest(None, 0, f"not tested at seed level: {len(row)} seeds against the "
                                 f"baseline's {len(baseline)}")
    if max(diffs) == min(diffs):
        if diffs[0] == 0:
            return SeedTest(1.0, len(diffs))
        return SeedTest(None, len(diffs), "not tested at seed level: the same difference in "
                                          "every seed (no seed spread)")
    return SeedTest(_t_test_p(diffs), len(diffs))


def _t_test_p(diffs: list[float]) -> float:
    """Two-sided p-value of the one-sample t-test of ``diffs`` against 0: the operations of
    ``scipy.stats.ttest_1samp`` (= ``ttest_rel`` on the paired scores; bit-identical, tested),
    with scipy.special's Student t tail instead of importing scipy.stats (~1 s, a fifth of a
    ``uarbench compare``)."""
    from scipy.special import stdtr
    a = np.asarray(diffs, dtype=np.float64)
    n = len(a)
    mean = a.mean()
    var = np.mean((a - mean) ** 2) * (n / (n - 1))
    t = mean / np.sqrt(var / n)
    return float(2 * stdtr(n - 1, -abs(t)))
