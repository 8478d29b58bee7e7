"""Comparing the folders ``uarbench eval`` wrote ({system: folder with metrics.json and
per_report_stats.csv}, read through :mod:`uarbench.store`) with the one significance engine
(:func:`uarbench.stats.compare.compare_systems`), after checking that every number of one column
has the same signature and every system was scored on the same studies."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from uarbench.errors import UarbenchError
from uarbench.metrics import family_of
from uarbench.metrics.base import MetricFamily
from uarbench.stats.compare import Comparison, compare_systems, stats_from_frame
from uarbench.store import METRICS_FILE, PER_REPORT_FILE, read_metrics, read_per_report


def compare_runs(runs: Mapping[str, str | Path], *, baseline: str, n_resamples: int = 1000,
                 trials: int = 10000, seed: int = 0, confidence: float = 0.95,
                 alpha: float = 0.05, holm_scope: str = "table") -> Comparison:
    """:func:`compare_systems` on evaluation folders ({system: folder with metrics.json and
    per_report_stats.csv}). Metrics are those scored (not unavailable) in every run; a metric
    whose signature differs between runs, or runs over different study ids, is an error."""
    if baseline not in runs:
        raise UarbenchError(f"baseline {baseline!r} is not one of the runs: {', '.join(runs)}.",
                            fix="name the baseline as one of the given systems.")
    metrics = {system: read_metrics(folder) for system, folder in runs.items()}
    frames = {system: read_per_report(folder) for system, folder in runs.items()}
    ids = list(frames[baseline].index)
    for system, frame in frames.items():
        if set(frame.index) != set(ids) or len(frame) != len(ids):
            raise UarbenchError(f"run {system!r} scored other studies than {baseline!r}.",
                                file=Path(runs[system]) / PER_REPORT_FILE,
                                fix="evaluate every system on the same dataset split.")
        frames[system] = frame.loc[ids]
    families: dict[str, MetricFamily] = {}
    for name, base in metrics[baseline].items():
        found = family_of(name)
        if found is None or any(metrics[s].get(name, {}).get("value") is None for s in runs):
            continue
        for system in runs:
            if metrics[system][name]["signature"] != base["signature"]:
                raise UarbenchError(
                    f"{name} of {system!r} has signature {metrics[system][name]['signature']} "
                    f"but {baseline!r} has {base['signature']}: not comparable.",
                    file=Path(runs[system]) / METRICS_FILE,
                    fix="score every system with the same settings and uarbench version.")
        key, family = found
        if family.resampling_unavailable_reason() is None:   # METEOR: no JVM needed
            families.setdefault(key, family)
    systems = {s: {k: stats_from_frame(f, frames[s]) for k, f in families.items()} for s in runs}
    return compare_systems(systems, families, baseline=baseline, n_resamples=n_resamples,
                           trials=trials, seed=seed, confidence=confidence, alpha=alpha,
                           holm_scope=holm_scope)
