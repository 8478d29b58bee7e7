"""Reading a results folder: every run folder of a suite, complete or not, and the complete runs'
records as one table row per (run, metric).

Layout (written by :mod:`uarbench.runner`): ``<root>/<suite>/<row>-seed<k>/run.json``. A run is
complete only when ``run.json`` exists and its files match (:func:`uarbench.runner.record.
read_complete`); :func:`scan_runs` also returns the incomplete folders (a failed or interrupted
run) so that a table can show their rows as missing instead of averaging the seeds that happen
to exist. ``load_runs(root)`` returns a long DataFrame with columns suite, row, run, seed, model,
dataset, metric, value, signature, higher_is_better, unavailable; ``summary_table`` gives mean ±
sd strings, "—" where any seed lacks a metric. Hand-written: a thin reader of our own format.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from uarbench.errors import UarbenchError
from uarbench.runner.record import RUN_JSON, read_complete

COLUMNS = ("suite", "row", "run", "seed", "model", "dataset", "metric", "value", "signature",
           "higher_is_better", "unavailable")
RUN_NAME = re.compile(r"^(?P<row>.+)-seed(?P<seed>\d+)$")   # RunSpec.name
ERROR_LOG = "error.log"


@dataclass(frozen=True)
class RunFolder:
    """One ``<suite>/<run>/`` folder; ``record`` is None when the run is not complete."""

    path: Path
    suite: str
    run: str
    row: str
    seed: int
    record: dict | None
    why: str | None = None        # set when a reader sets a complete-looking run aside

    @property
    def complete(self) -> bool:
        return self.record is not None

    def why_incomplete(self) -> str:
        if self.record is not None:
            return ""
        if self.why:
            return self.why
        if (self.path / ERROR_LOG).is_file():
            return f"failed (see {self.path / ERROR_LOG})"
        if not (self.path / RUN_JSON).is_file():
            return "not finished (no run.json)"
        return "damaged (run.json unreadable or its files changed)"


def scan_runs(root: str | Path, suite: str | None = None) -> list[RunFolder]:
    """Every run folder under ``root`` (of ``suite`` if given), complete or not, sorted by path.

    The suite is the folder's parent name (where the run lies); a complete run's row and seed
    come from its record, an incomplete one's from its folder name ``<row>-seed<k>`` (folders
    named otherwise are not runs and are skipped)."""
    root = Path(root)
    out = []
    for d in sorted(root.glob(f"{suite or '*'}/*")):
        if not d.is_dir() or d.name.startswith("."):
            continue
        record = read_complete(d)
        if record is not None:
            out.append(RunFolder(d, d.parent.name, record["run"], record["row"],
                                 int(record["seed"]), record))
            continue
        m = RUN_NAME.match(d.name)
        if m is not None:
            out.append(RunFolder(d, d.parent.name, d.name, m["row"], int(m["seed"]), None))
    return out


def suite_runs(root: str | Path, suite: str | None = None) -> tuple[str, list[RunFolder]]:
    """(suite, its run folders) of a results folder, with one clear error when there is none.

    ``root`` may be the results root (``<root>/<suite>/<run>/``) or one suite's folder. Without
    ``suite`` the root must hold exactly one suite."""
    root = Path(root)
    fix = ("point to the folder `uarbench run --out` wrote (it holds <suite>/<run>/run.json), "
           "or run a suite first: `uarbench run --suite smoke --out results`.")
    if not root.is_dir():
        raise UarbenchError("no results folder here.", file=root, fix=fix)
    if suite is None and any((d / RUN_JSON).is_file() for d in root.iterdir() if d.is_dir()):
        root, suite = root.parent, root.name          # the folder of one suite
    runs = scan_runs(root, suite)
    suites = sorted({r.suite for r in runs if r.complete})
    if not suites:
        where = root / suite if suite else root
        found = sorted({r.suite for r in scan_runs(root)} if suite else set())
        extra = f" (suites here: {', '.join(found)})" if found else ""
        raise UarbenchError(f"no complete run (run.json) in this folder{extra}; "
                            f"{len(runs)} incomplete run folder(s).", file=where,
                            fix=fix if not found else "pass one of the suites with --suite.")
    if suite is None and len(suites) > 1:
        raise UarbenchError(f"this folder holds {len(suites)} suites: {', '.join(suites)}.",
                            file=root, fix="choose one with --suite NAME.")
    suite = suite or suites[0]
    return suite, [r for r in runs if r.suite == suite]


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
    """Rows x metrics of "mean" or "mean ± sd (n seeds)" strings; "—" where any seed lacks it."""
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
                cells[metric] = f"{vals.iloc[0]:.4f}"
            else:
                sd = vals.std(ddof=1)
                cells[metric] = f"{vals.mean():.4f} ± {0.0 if math.isnan(sd) else sd:.4f}"
        out[row] = cells
    table = pd.DataFrame.from_dict(out, orient="index", columns=metrics)
    table.index.name = "run"
    return table
