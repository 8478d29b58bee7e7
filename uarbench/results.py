"""The complete runs of a results folder as one table row per (run, metric), read through the
run store (:mod:`uarbench.store`: layout, completeness, scanning). ``load_runs(root)`` returns a long DataFrame with columns suite, row, run, seed, model,
dataset, metric, value, signature, higher_is_better, unavailable; ``summary_table`` gives mean ±
sd strings, "—" where any seed lacks a metric. Hand-written: a thin reader of our own format.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from uarbench.compare.cells import number
from uarbench.store import scan_runs

COLUMNS = ("suite", "row", "run", "seed", "model", "dataset", "metric", "value", "signature",
           "higher_is_better", "unavailable")


def load_runs(root: str | Path, suite: str | None = None) -> pd.DataFrame:
    rows = []
    for run in scan_runs(root, suite):
        record = run.record
        if record is None:
            continue
        for metric, m in record.get("metrics", {}).items():
            rows.append({"suite": record["suite"], "row": record["row"], "run": record["run"],
                         "seed": record["seed"], "model": record["model"],
                         "dataset": record.get("dataset", {}).get("name"), "metric": metric,
                         "value": m.get("value"), "signature": m.get("signature", ""),
                         "higher_is_better": m.get("higher_is_better", True),
                         "unavailable": m.get("unavailable")})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summary_table(runs: pd.DataFrame, row_order: list[str] | None = None) -> pd.DataFrame:
    """Rows x metrics of "mean" or "mean ± sd" strings in one number format
    (:func:`uarbench.compare.cells.number`: 4 decimals, an exponent for a tiny non-zero value);
    "—" where any seed lacks it."""
    if runs.empty:
        return pd.DataFrame()
    metrics = list(dict.fromkeys(runs["metric"]))
    rows = row_order or list(dict.fromkeys(runs["row"]))
    out = {}
    for row in rows:
        sub = runs[runs["row"] == row]
        seeds = sorted(sub["seed"].unique())
        cells = {}
        for metric in metrics:
            vals = sub[sub["metric"] == metric].set_index("seed")["value"].reindex(seeds)
            if vals.isna().any() or vals.empty:
                cells[metric] = "—"
            elif len(vals) == 1:
                cells[metric] = number(vals.iloc[0])
            else:
                sd = vals.std(ddof=1)
                cells[metric] = f"{number(vals.mean())} ± {number(0.0 if math.isnan(sd) else sd)}"
        out[row] = cells
    table = pd.DataFrame.from_dict(out, orient="index", columns=metrics)
    table.index.name = "run"
    return table
