"""One table of systems against a baseline: scores with CIs, paired differences, AR p-values,
Holm-adjusted p-values and a significance flag, each metric with a signature of the tests.

The library call behind a significance table: for every metric family it runs the paired
bootstrap (:mod:`uarbench.stats.bootstrap`) and approximate randomization
(:mod:`uarbench.stats.randomization`) on per-report statistics with one seed for the whole
table, then corrects the p-values with Holm (:mod:`uarbench.stats.holm`) across all comparisons
of the table (``holm_scope="table"``, default) or of each metric (``"metric"``).
:func:`compare_runs` does the same from the folders ``uarbench eval`` wrote (metrics.json +
per_report_stats.csv), after checking that every number of one column has the same signature.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from tabulate import tabulate

from uarbench.errors import UarbenchError
from uarbench.metrics.base import NLG_METRICS, MetricFamily
from uarbench.metrics.ce import ce_family_of
from uarbench.metrics.nlg import NLG_FAMILIES   # importing it registers the NLG families
from uarbench.metrics.signature import Signature
from uarbench.stats.bootstrap import paired_bootstrap
from uarbench.stats.holm import holm_adjust
from uarbench.stats.randomization import randomization_tests
from uarbench.stats.sums import resampling_fields

HOLM_SCOPES = ("table", "metric")


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
    """Compare every system with ``baseline`` on every metric of ``families``.

    ``systems``: system -> family key -> (n, k) per-report statistics of that family (same n
    reports, same order, for every system); ``families``: family key -> family instance.
    """
    if baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems: {', '.join(systems)}")
    if holm_scope not in HOLM_SCOPES:
        raise ValueError(f"holm_scope must be one of {HOLM_SCOPES}, got {holm_scope!r}")
    others = [s for s in systems if s != baseline]
    rows: list[dict] = []
    fam_of_metric: dict[str, MetricFamily] = {}
    for key, family in families.items():
        stats = {s: systems[s][key] for s in systems}
        boot = paired_bootstrap(stats, family, n_resamples=n_resamples, seed=seed,
                                confidence=confidence, baseline=baseline)
        ar = (randomization_tests(stats[baseline], {s: stats[s] for s in others}, family,
                                  trials=trials, seed=seed) if others else {})
        for m in family.names:
            fam_of_metric[m] = family
            for s in systems:
                iv = boot.systems[s][m]
                row = {"metric": m, "system": s, "estimate": iv.estimate, "ci": (iv.lo, iv.hi)}
                if s != baseline:
                    d = boot.differences[s][m]
                    row.update(difference=d.estimate, difference_ci=(d.lo, d.hi),
                               p_value=ar[s][m].p_value)
                rows.append(row)
    tested = [i for i, r in enumerate(rows) if "p_value" in r]
    groups = ([tested] if holm_scope == "table" else
              [[i for i in tested if rows[i]["metric"] == m] for m in fam_of_metric])
    m_of: dict[str, int] = {}
    for g in groups:
        for i, q in zip(g, holm_adjust([rows[i]["p_value"] for i in g])):
            rows[i]["p_holm"] = q
            rows[i]["significant"] = q is not None and q <= alpha
            m_of[rows[i]["metric"]] = len(g)
    signatures = {}
    for m, family in fam_of_metric.items():
        fields = (("test", "paired-ar"), ("trials", str(trials)), ("sided", "two"),
                  ("bs", str(n_resamples)), ("ci", f"{confidence:g}-percentile"),
                  ("seed", str(seed)), ("rng", "numpy-pcg64"),
                  ("holm", f"{holm_scope}(m={m_of.get(m, 0)})"), ("alpha", f"{alpha:g}"),
                  *resampling_fields(family))
        signatures[m] = str(Signature(m, fields))
    return Comparison(baseline, tuple(ComparisonRow(**r) for r in rows), signatures)


def _family_key(metric: str) -> tuple[str, MetricFamily] | None:
    ce = ce_family_of(metric)
    if ce is not None:
        return ce.convention.key, ce
    for name in NLG_FAMILIES:
        family = NLG_METRICS.get(name)()
        if metric in family.names:
            return name, family
    return None


def compare_runs(runs: Mapping[str, str | Path], *, baseline: str, n_resamples: int = 1000,
                 trials: int = 10000, seed: int = 0, confidence: float = 0.95,
                 alpha: float = 0.05, holm_scope: str = "table") -> Comparison:
    """:func:`compare_systems` on evaluation folders ({system: folder with metrics.json and
    per_report_stats.csv}). Metrics are those scored (not unavailable) in every run; a metric
    whose signature differs between runs, or runs over different study ids, is an error."""
    if baseline not in runs:
        raise UarbenchError(f"baseline {baseline!r} is not one of the runs: {', '.join(runs)}.",
                            fix="name the baseline as one of the given systems.")
    metrics: dict[str, dict] = {}
    frames: dict[str, pd.DataFrame] = {}
    for system, folder in runs.items():
        path = Path(folder) / "metrics.json"
        if not path.is_file():
            raise UarbenchError("no metrics.json here.", file=path,
                                fix="run `uarbench eval` for this system first.")
        metrics[system] = json.loads(path.read_text(encoding="utf-8"))["metrics"]
        frames[system] = pd.read_csv(Path(folder) / "per_report_stats.csv", index_col="id")
        frames[system].index = frames[system].index.astype(str)
    ids = list(frames[baseline].index)
    for system, frame in frames.items():
        if set(frame.index) != set(ids) or len(frame) != len(ids):
            raise UarbenchError(f"run {system!r} scored other studies than {baseline!r}.",
                                file=Path(runs[system]) / "per_report_stats.csv",
                                fix="evaluate every system on the same dataset split.")
        frames[system] = frame.loc[ids]
    families: dict[str, MetricFamily] = {}
    for name, base in metrics[baseline].items():
        found = _family_key(name)
        if found is None or any(metrics[s].get(name, {}).get("value") is None for s in runs):
            continue
        for system in runs:
            if metrics[system][name]["signature"] != base["signature"]:
                raise UarbenchError(
                    f"{name} of {system!r} has signature {metrics[system][name]['signature']} "
                    f"but {baseline!r} has {base['signature']}: not comparable.",
                    file=Path(runs[system]) / "metrics.json",
                    fix="score every system with the same settings and uarbench version.")
        key, family = found
        if family.unavailable_reason() is None:
            families.setdefault(key, family)
    systems = {s: {k: stats_from_frame(f, frames[s]) for k, f in families.items()} for s in runs}
    return compare_systems(systems, families, baseline=baseline, n_resamples=n_resamples,
                           trials=trials, seed=seed, confidence=confidence, alpha=alpha,
                           holm_scope=holm_scope)
