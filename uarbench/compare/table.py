"""The comparison table of one suite: rows x metric columns, seed variance, CIs, significance
against a baseline row, signatures, and optional reported rows from the paper.

:func:`build_comparison` is the library call behind ``uarbench compare``. Conventions (every one
also written into the table's notes / legend, so a reader of the output sees them):

- Rows: the suite's rows, in the order of the suite in benchmark.toml when that file declares it
  (others after, by name). A row's seeds are the seeds of its run folders; a row with more than
  one shows "mean ± sd" over seeds (sample sd, ddof 1: *seed variance*, not a CI).
- Missing: a metric missing or unavailable in any seed's run, or any of the row's run folders
  incomplete (failed, interrupted), makes the cell "—": never an average of what happens to
  exist.
- Columns: one per metric and signature. When runs carry different signatures for one metric
  name, the column is split ("BLEU-4 [a]", "BLEU-4 [b]"), each row's number goes under its own
  signature, and a note says so: two numbers with different signatures never share a column.
- Baseline: ``baseline`` if given, else the suite's first complete *trained* row (a row whose
  runs have a training log: ``base`` in main/ablations, the paper's setting in basis/fusion),
  else the first complete row. A floor is a poor default: every trained model beats it.
- CI: 95% paired-bootstrap percentile interval over the test reports of the row's per-seed
  mean score (:mod:`uarbench.stats.compare`, the one significance engine; for one seed, the
  run's own CI).
- Significance: paired approximate randomization against the baseline on each column; Holm's
  step-down correction across *all* tests of the table (m in the test signature); † marks a
  significant improvement, ‡ a significant degradation (Holm-adjusted p <= alpha).
- Paired tests need the same test reports: every run's per_report_stats.csv must cover the same
  study ids (rows are aligned by id), else one error names the file.
- Reported rows (``reference_rows="paper"``) carry their source and never enter a test.

Cost: every number comes from the stored per-report statistics (per_report_stats.csv, written
when a run is scored); no metric is scored again (METEOR's corpus score of a resample is
computed from its statistics in numpy, no JVM: :mod:`uarbench.metrics.meteor`). The CIs and tests
are computed once per call and the table holds them: write it in several formats (and plots)
from the one :class:`ComparisonTable`, not by calling :func:`build_comparison` per format.
Progress (a line per metric family with its time) goes to the ``uarbench.compare`` logger at
INFO.
"""
from __future__ import annotations

import fnmatch
import logging
import math
import string
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from uarbench.compare.reported import REFERENCE_SETS, ReportedRow
from uarbench.metrics import family_of
from uarbench.errors import UarbenchError
from uarbench.metrics.base import MetricFamily
from uarbench.metrics.signature import Signature
from uarbench.stats.compare import (SEED_STATISTIC, family_columns, holm_step,
                                    seed_mean_comparison, test_signature)
from uarbench.stats.seeds import LABEL as SEED_LABEL
from uarbench.stats.seeds import seed_level_test, seed_variance
from uarbench.store import (PER_REPORT_FILE, PREDICTIONS_FILE, RunFolder, read_per_report,
                            read_predictions, suite_runs)

TRAIN_LOG = "train_log.jsonl"
MISSING = "—"
LOG = logging.getLogger("uarbench.compare")   # progress of the CIs and tests (INFO)
ARROWS = {True: "↑", False: "↓"}
BETTER, WORSE = "†", "‡"                 # per-report paired test (AR on per-seed means)
SEED_BETTER, SEED_WORSE = "⁺", "⁻"       # seed-level test (paired t over training seeds)


@dataclass(frozen=True)
class Column:
    key: str                  # unique: "BLEU-4", or "BLEU-4 [b]" when split by signature
    metric: str
    signature: str            # of every number in the column ("" when none is available)
    higher_is_better: bool = True
    split: str | None = None  # "a", "b", ... when the metric's column is split

    @property
    def header(self) -> str:
        return f"{self.key} {ARROWS[self.higher_is_better]}"


@dataclass(frozen=True)
class RowInfo:
    name: str
    model: str = ""
    seeds: tuple[int, ...] = ()             # seeds with a run folder
    run_dirs: tuple[str, ...] = ()          # the complete runs' folders, in seed order
    incomplete: tuple[str, ...] = ()        # "run: why" of its incomplete run folders
    trained: bool = False
    kind: str = "measured"                  # "measured" | "reported"
    source: str = "measured"
    same_as_floor: str | None = None        # a floor row whose test outputs it repeats, every seed


@dataclass(frozen=True)
class Cell:
    mean: float | None = None               # mean over seeds (the number shown)
    sd: float | None = None                 # sample sd over seeds; None with one seed
    n_seeds: int = 0
    values: tuple[float | None, ...] = ()   # per seed, in the row's seed order
    missing: str | None = None              # why the cell is "—"
    ci: tuple[float, float] | None = None
    difference: float | None = None         # row - baseline (per-seed means)
    difference_ci: tuple[float, float] | None = None
    p_value: float | None = None            # paired AR, two-sided, before Holm
    p_holm: float | None = None
    significant: bool | None = None
    better: bool | None = None              # the difference is an improvement
    untested: str | None = None             # why there is no p-value
    # the seed-level test: per-seed scores against the baseline's, paired t over seeds
    p_seed: float | None = None
    p_seed_holm: float | None = None
    seed_significant: bool | None = None
    seed_untested: str | None = None

    @property
    def marker(self) -> str:
        out = ""
        if self.significant:
            out += BETTER if self.better else WORSE
        if self.seed_significant:
            out += SEED_BETTER if self.better else SEED_WORSE
        return out


@dataclass(frozen=True)
class ComparisonTable:
    suite: str
    dataset: str
    baseline: str | None
    rows: tuple[RowInfo, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple[str, str], Cell]      # (row name, column key) -> cell
    notes: tuple[str, ...] = ()
    test_signatures: dict[str, str] = field(default_factory=dict)   # column key -> signature
    alpha: float = 0.05
    confidence: float = 0.95
    holm_m: int = 0
    provenance: dict = field(default_factory=dict)
    holm_m_seed: int = 0
    problems: tuple[str, ...] = ()          # damaged / incomplete / duplicated runs, bad values

    def cell(self, row: str, column: str) -> Cell:
        return self.cells.get((row, column), Cell(missing="not reported"))

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(key)

    def legend(self) -> list[str]:
        """What the numbers mean, in words (printed under every format)."""
        pct = f"{self.confidence:.0%}"
        lines = [f"Cells: score of one seed, or mean ± sd over the row's training seeds "
                 f"({SEED_LABEL}, sample sd); {MISSING}: missing in at least one seed's run "
                 "(never averaged over the seeds that have it).",
                 f"CI: {pct} paired-bootstrap percentile interval over the test reports "
                 f"({SEED_STATISTIC}: each resample scores every seed's run on the same reports "
                 "and averages them; one seed: the run's own CI)."]
        if self.baseline is not None and self.test_signatures:
            lines.append(f"{BETTER} / {WORSE}: significantly better / worse than the baseline "
                         f"{self.baseline!r} over test reports (paired approximate "
                         f"randomization on the per-seed means, Holm-adjusted p ≤ "
                         f"{self.alpha:g} across the table's {self.holm_m} comparisons).")
            if self.holm_m_seed:
                lines.append(f"{SEED_BETTER} / {SEED_WORSE}: significantly better / worse than "
                             f"the baseline over training seeds (two-sided paired t-test of "
                             f"the per-seed scores; a one-seed floor as a constant; "
                             f"Holm-adjusted p ≤ {self.alpha:g} across the table's "
                             f"{self.holm_m_seed} seed-level comparisons). Both tests are "
                             "shown: the first asks whether another test sample would change "
                             "the ranking, the second whether another training seed would.")
        floors = [r for r in self.rows if r.same_as_floor]
        if floors:
            lines.append("= FLOOR: the row's test outputs are the floor row's, report for "
                         "report, in every seed (it learned nothing beyond the floor).")
        lines.append("↑ / ↓: higher / lower is better. Reported rows: numbers from the "
                     "literature, not measured here, never tested.")
        labelers = sorted({p.removeprefix("labeler:") for c in self.columns
                           if c.signature.startswith("CE-") for p in c.signature.split("|")
                           if p.startswith("labeler:")})
        if labelers:
            lines.append(f"CE columns: CheXpert labels by {', '.join(labelers)} (accuracy of the "
                         "rules labeler on manual annotations: `uarbench label --card`).")
        return lines

    def records(self) -> list[dict]:
        """One flat record per (row, column): every number, CI, p-value and signature."""
        out = []
        for r in self.rows:
            for c in self.columns:
                cell = self.cell(r.name, c.key)
                ci, dci = cell.ci or (None, None), cell.difference_ci or (None, None)
                out.append({
                    "row": r.name, "kind": r.kind, "source": r.source, "model": r.model,
                    "seeds": " ".join(map(str, r.seeds)), "baseline": r.name == self.baseline,
                    "column": c.key, "metric": c.metric, "higher_is_better": c.higher_is_better,
                    "mean": cell.mean, "sd": cell.sd, "n_seeds": cell.n_seeds,
                    "ci_lo": ci[0], "ci_hi": ci[1], "difference": cell.difference,
                    "difference_ci_lo": dci[0], "difference_ci_hi": dci[1],
                    "p_value": cell.p_value, "p_holm": cell.p_holm,
                    "significant": cell.significant, "missing": cell.missing,
                    "untested": cell.untested, "p_seed": cell.p_seed,
                    "p_seed_holm": cell.p_seed_holm, "seed_significant": cell.seed_significant,
                    "seed_untested": cell.seed_untested, "same_as_floor": r.same_as_floor,
                    "signature": c.signature if r.kind == "measured" else r.source,
                    "test_signature": (self.test_signatures.get(c.key)
                                       if r.kind == "measured" else None)})
        return out

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records())

    def to_dict(self) -> dict:
        return {"schema_version": 1, "suite": self.suite, "dataset": self.dataset,
                "baseline": self.baseline, "alpha": self.alpha, "confidence": self.confidence,
                "holm_m": self.holm_m, "holm_m_seed": self.holm_m_seed, "columns": [asdict(c) for c in self.columns],
                "rows": [{**asdict(r), "cells": {
                    c.key: asdict(self.cell(r.name, c.key)) for c in self.columns}}
                    for r in self.rows],
                "test_signatures": self.test_signatures, "legend": self.legend(),
                "notes": list(self.notes), "provenance": self.provenance}


def build_comparison(root: str | Path, suite: str | None = None, *,
                     baseline: str | None = None, reference_rows: str | None = None,
                     metrics: Sequence[str] | None = None, significance: bool = True,
                     n_resamples: int = 1000, trials: int = 10000, seed: int = 0,
                     confidence: float = 0.95, alpha: float = 0.05,
                     benchmark: str | Path | None = None,
                     convention: str | None = None) -> ComparisonTable:
    """The comparison table of ``suite`` under the results folder ``root`` (module docstring).

    ``metrics``: column names or shell patterns (``"BLEU-*"``), default every metric;
    ``significance``: False skips CIs and tests (fast); ``reference_rows``: a registered set of
    reported rows (``"paper"``); ``benchmark``: the benchmark file giving the row order;
    ``convention``: show every run's numbers under this scoring convention (runs scored under
    another are scored again from their predictions, :mod:`uarbench.runner.rescore`).
    """
    if not 0 < alpha < 1 or not 0 < confidence < 1:
        raise UarbenchError(f"alpha and confidence must be in (0, 1), got {alpha} and "
                            f"{confidence}.", fix="use e.g. alpha 0.05, confidence 0.95.")
    suite, folders = suite_runs(root, suite)
    notes: list[str] = []
    problems: list[str] = []        # what compare does not trust (warnings; --strict fails)
    folders = _one_run_per_seed(_well_formed(folders), notes, problems)
    if convention is not None:
        folders = _under_convention(folders, convention, notes)
    rows = _rows(suite, folders, benchmark)
    records = {r.name: [f.record for f in folders if f.row == r.name and f.complete]
               for r in rows}
    for r in rows:
        records[r.name].sort(key=lambda rec: int(rec["seed"]))
        if r.incomplete:
            notes.append(f"row {r.name!r}: incomplete run(s) {'; '.join(r.incomplete)}; "
                         f"its cells show {MISSING}.")
            problems.append(notes[-1])
    columns = _columns([rec for r in rows for rec in records[r.name]], metrics, notes)
    cells = {(r.name, c.key): _cell(r, records[r.name], c) for r in rows for c in columns}
    problems += list(dict.fromkeys(
        f"row {r.name!r}, {c.key}: {cells[(r.name, c.key)].missing}" for r in rows
        for c in columns if "not a finite number" in (cells[(r.name, c.key)].missing or "")))
    base = _baseline(rows, baseline)
    datasets = sorted({str(rec.get("dataset", {}).get("name")) for recs in records.values()
                       for rec in recs})
    dataset = datasets[0] if len(datasets) == 1 else "+".join(datasets)
    rows = _mark_floor_copies(rows, records, notes)
    test_sigs: dict[str, str] = {}
    holm_m = holm_m_seed = 0
    if significance:
        test_sigs, holm_m, holm_m_seed = _significance(
            rows, columns, cells, base, n_resamples=n_resamples, trials=trials, seed=seed,
            confidence=confidence, alpha=alpha, notes=notes)
    reported: list[RowInfo] = []
    if reference_rows is not None:
        ref = REFERENCE_SETS.get(reference_rows)(dataset, suite)
        if ref.note:
            notes.append(f"reference rows ({reference_rows}): {ref.note}")
        for rr in ref.rows:
            info = RowInfo(f"{rr.label} (reported)", kind="reported", source=rr.source)
            reported.append(info)
            cells.update(_reported_cells(info.name, rr, columns))
    return ComparisonTable(suite, dataset, base, tuple(rows) + tuple(reported), tuple(columns),
                           cells, tuple(notes), test_sigs, alpha, confidence, holm_m,
                           _provenance(records), holm_m_seed, tuple(problems))


def _rows(suite: str, folders: list[RunFolder], benchmark: str | Path | None) -> list[RowInfo]:
    names = list(dict.fromkeys(f.row for f in folders))
    order = _suite_row_order(suite, benchmark)
    names.sort(key=lambda n: (order.index(n), "") if n in order else (len(order), n))
    out = []
    for name in names:
        mine = sorted((f for f in folders if f.row == name), key=lambda f: f.seed)
        done = [f for f in mine if f.complete]
        model = done[0].record["model"] if done else ""
        trained = bool(done) and all(TRAIN_LOG in f.record.get("files", {}) for f in done)
        source = "measured"
        if done and done[0].record.get("source") == "imported":
            rec = done[0].record
            cfg = rec.get("config", {})
            source = f"imported: {rec.get('citation') or Path(str(cfg.get('file', ''))).name}"
        out.append(RowInfo(name, model, tuple(f.seed for f in mine),
                           tuple(str(f.path) for f in done),
                           tuple(f"{f.run}: {f.why_incomplete()}" for f in mine
                                 if not f.complete), trained, source=source))
    return out


def _finite(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


# the optional parts of a run record compare reads, and the type each must have when present
# (the writers never write null for a table; a null source or citation is "none")
_OPTIONAL = {"provenance": dict, "config": dict, "source": (str, type(None)),
             "citation": (str, type(None))}
_OPTIONAL_NESTED = {("provenance", "git"): dict, ("provenance", "versions"): dict}
_METRIC_FIELDS = {"signature": str, "higher_is_better": bool,
                  "unavailable": (str, type(None))}


def _damage(record: dict) -> str | None:
    """Why a complete-looking record (read_complete checked its top-level types and hashes)
    cannot be tabulated, or None. Values of metrics are checked per cell (non-finite: a note)."""
    def kind(value: object) -> str:
        return "null" if value is None else type(value).__name__

    def name(typ) -> str:
        return typ.__name__ if isinstance(typ, type) else typ[0].__name__
    for key, typ in _OPTIONAL.items():
        if key in record and not isinstance(record[key], typ):
            return f"{key} is a {kind(record[key])}, not a {name(typ)}"
    for (outer, key), typ in _OPTIONAL_NESTED.items():
        if key in record.get(outer, {}) and not isinstance(record[outer][key], typ):
            return f"{outer}.{key} is a {kind(record[outer][key])}, not a {name(typ)}"
    for metric, entry in record["metrics"].items():
        for key, typ in _METRIC_FIELDS.items():
            if key in entry and not isinstance(entry[key], typ):
                return f"metrics[{metric!r}].{key} is a {kind(entry[key])}, not a {name(typ)}"
    return None


def _well_formed(folders: list[RunFolder]) -> list[RunFolder]:
    """Complete run folders whose record has a part of the wrong type (a signature that is a
    list, a provenance that is a string) are set aside as damaged: their row shows "—" and a
    note names the part, instead of a traceback or a number under a broken signature. Keys
    that only compare itself sets (``_run_dir``) are dropped from what was read."""
    out = []
    for f in folders:
        if not f.complete:
            out.append(f)
            continue
        record = {k: v for k, v in f.record.items() if not k.startswith("_")}
        why = _damage(record)
        out.append(RunFolder(f.path, f.suite, f.run, f.row, f.seed, None if why else record,
                             why=f"damaged run.json: {why}" if why else None))
    return out


def _one_run_per_seed(folders: list[RunFolder], notes: list[str],
                      problems: list[str]) -> list[RunFolder]:
    """Two complete run folders with the same row and seed (a copied folder, an edited seed)
    would count that seed twice: both are set aside as incomplete, so the row shows "—" and a
    note names them, instead of an average that weights one seed double."""
    seen: dict[tuple[str, int], list[RunFolder]] = {}
    for f in folders:
        if f.complete:
            seen.setdefault((f.row, f.seed), []).append(f)
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    if not twice:
        return folders
    out = []
    for f in folders:
        if f.complete and (f.row, f.seed) in twice:
            others = [str(o.path) for o in twice[(f.row, f.seed)] if o is not f]
            out.append(RunFolder(f.path, f.suite, f.run, f.row, f.seed, None,
                                 why=f"seed {f.seed} of row {f.row!r} also in {', '.join(others)}"))
        else:
            out.append(f)
    for (row, seed), fs in twice.items():
        msg = (f"row {row!r}: {len(fs)} run folders hold seed {seed} "
               f"({', '.join(str(f.path) for f in fs)}); none is used. Keep one.")
        notes.append(msg)
        problems.append(msg)
    return out


def _under_convention(folders: list[RunFolder], convention: str,
                      notes: list[str]) -> list[RunFolder]:
    """The complete runs with their numbers under ``convention`` (scored again where needed)."""
    from uarbench.conventions import CONVENTIONS
    from uarbench.runner.rescore import rescored, run_convention
    CONVENTIONS.get(convention)
    out, again = [], []
    for f in folders:
        if not f.complete:
            out.append(f)
            continue
        if run_convention(f.record) != convention:
            again.append(f.run)
        path, metrics = rescored(f.path, f.record, convention)
        out.append(RunFolder(path, f.suite, f.run, f.row, f.seed,
                             {**f.record, "metrics": metrics, "_run_dir": str(f.path)}))
    if again:
        notes.append(f"convention {convention}: {len(again)} run(s) scored again from their "
                     f"predictions under it ({', '.join(again[:6])}"
                     + (" ..." if len(again) > 6 else "") + ").")
    return out


def _suite_row_order(suite: str, benchmark: str | Path | None) -> list[str]:
    """Row names of ``suite`` in benchmark.toml order; [] when no benchmark file declares it."""
    from uarbench.benchmark import find_benchmark_file, load_benchmark
    path = find_benchmark_file(benchmark)
    if path is None or not path.is_file():
        if benchmark is not None:
            raise UarbenchError("benchmark file not found.", file=benchmark,
                                fix="pass the benchmark.toml the suite was run with.")
        return []
    rows = load_benchmark(path).suites.get(suite, {}).get("rows", [])
    return [r["name"] for r in rows if isinstance(r, dict) and "name" in r]


def _columns(records: list[dict], patterns: Sequence[str] | None,
             notes: list[str]) -> list[Column]:
    names = list(dict.fromkeys(m for rec in records for m in rec.get("metrics", {})))
    if patterns:
        chosen = []
        for p in patterns:
            # exact names first: CE names hold brackets, which are patterns to fnmatch
            hits = [n for n in names if n == p] or [n for n in names
                                                    if fnmatch.fnmatchcase(n, p)]
            if not hits:
                raise UarbenchError(f"no metric matches {p!r}.",
                                    fix=f"use names or patterns of: {', '.join(names)}.")
            chosen += [h for h in hits if h not in chosen]
        names = chosen
    columns = []
    split: dict[int, list[str]] = {}      # number of signatures -> metrics split that way
    for name in names:
        entries = [rec["metrics"][name] for rec in records if name in rec.get("metrics", {})]
        sigs = list(dict.fromkeys(e.get("signature", "") for e in entries
                                  if e.get("value") is not None))
        hib = bool(entries[0].get("higher_is_better", True))
        if not sigs:
            # a metric no run could compute (RadGraph without a model) is a note, not a column
            # of dashes, unless asked for by name
            reasons = sorted({str(e.get("unavailable") or "no value") for e in entries})
            notes.append(f"{name}: unavailable in every run ({'; '.join(reasons)}).")
            if patterns:
                columns.append(Column(name, name, entries[0].get("signature", ""), hib))
        elif len(sigs) == 1:
            columns.append(Column(name, name, sigs[0], hib))
        else:
            letters = string.ascii_lowercase
            split.setdefault(len(sigs), []).append(name)
            columns += [Column(f"{name} [{letters[i]}]", name, s, hib, letters[i])
                        for i, s in enumerate(sigs)]
    for k, split_names in split.items():
        parts = ", ".join(f"[{string.ascii_lowercase[i]}]" for i in range(k))
        notes.append(f"{', '.join(split_names)}: the runs carry {k} different signatures, so "
                     f"each column is split ({parts}); numbers with different signatures are "
                     "not comparable.")
    return columns


def _cell(row: RowInfo, records: list[dict], column: Column) -> Cell:
    if row.incomplete:
        runs = ", ".join(i.split(":")[0] for i in row.incomplete)
        return Cell(missing=f"incomplete run(s): {runs}")
    values: list[float | None] = []
    why: list[str] = []
    for rec in records:
        m = rec.get("metrics", {}).get(column.metric)
        if m is None:
            values.append(None)
            why.append(f"{rec['run']}: no {column.metric}")
        elif m.get("value") is None:
            values.append(None)
            why.append(f"{rec['run']}: {m.get('unavailable') or 'no value'}")
        elif not _finite(m.get("value")):
            values.append(None)
            why.append(f"{rec['run']}: {column.metric} is {m.get('value')!r}, not a finite "
                       "number (damaged record)")
        elif m.get("signature", "") != column.signature:
            values.append(None)
            why.append(f"{rec['run']}: another signature")
        else:
            values.append(float(m["value"]))
    if why:
        return Cell(n_seeds=len(records), values=tuple(values), missing="; ".join(why))
    summary = seed_variance({rec["seed"]: {column.metric: v}
                             for rec, v in zip(records, values)})[column.metric]
    if not row.trained and len(set(values)) == 1:
        # a floor is fitted, not trained: seeds do not change it (one value, no "± 0")
        return Cell(summary.mean, None, summary.n_seeds, tuple(values))
    return Cell(summary.mean, summary.sd, summary.n_seeds, tuple(values))


def _baseline(rows: list[RowInfo], baseline: str | None) -> str | None:
    names = [r.name for r in rows]
    if baseline is not None:
        if baseline not in names:
            raise UarbenchError(f"baseline {baseline!r} is not a row of this table.",
                                fix=f"use one of: {', '.join(names)}.")
        return baseline
    complete = [r for r in rows if r.run_dirs and not r.incomplete]
    trained = [r.name for r in complete if r.trained]
    return (trained or [r.name for r in complete] or names or [None])[0]


def _significance(rows: list[RowInfo], columns: list[Column], cells: dict, baseline: str | None,
                  *, n_resamples: int, trials: int, seed: int, confidence: float, alpha: float,
                  notes: list[str]) -> tuple[dict[str, str], int, int]:
    """Fill CIs, differences and Holm-adjusted p-values (per-report and seed-level) into
    ``cells``; returns the test signatures and the two Holm family sizes."""
    started = time.perf_counter()
    frames, id_sets = _per_report_frames(rows)
    aligned = _aligned(frames)
    groups: dict[tuple, list[Column]] = {}
    families: dict[str, MetricFamily] = {}
    no_stats: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    lacking_of: dict[str, list[str]] = {}      # column -> rows with a value but no statistics
    for c in columns:
        found = family_of(c.metric)
        if found is None:
            notes.append(f"{c.key}: no metric family known for it: no CI or test.")
            continue
        key, family = found
        reason = family.resampling_unavailable_reason()
        if reason is not None:
            notes.append(f"{c.key}: no CI or test on this machine ({reason}).")
            continue
        eligible, lacking = [], []
        for r in rows:
            if cells[(r.name, c.key)].missing is not None:
                continue
            if all(aligned[d].has(family) for d in r.run_dirs):
                eligible.append(r.name)
            else:
                lacking.append(r.name)
                cells[(r.name, c.key)] = replace(
                    cells[(r.name, c.key)], untested=f"no CI or test: no {family.family} "
                    "statistics in its per_report_stats.csv")
        if lacking:
            no_stats.setdefault((family.family, tuple(lacking)), []).append(c.key)
        lacking_of[c.key] = lacking
        families[key] = family
        groups.setdefault((key, tuple(eligible)), []).append(c)
    for (fam, lacking), keys in no_stats.items():
        notes.append(f"{', '.join(keys)}: no CI or test for {', '.join(map(repr, lacking))}: "
                     f"their per_report_stats.csv has no {fam} statistics (scored while "
                     f"{fam} was unavailable, or by an older uarbench); score them again "
                     "(`uarbench eval`, or re-run) to test them.")
    tested: list[tuple[str, str]] = []
    todo = [(k, e) for k, e in groups if e]
    if todo:
        LOG.info("compare: CIs (%d resamples) and tests (%d trials) of %d metric "
                 "famil%s over %d rows", n_resamples, trials, len(todo),
                 "y" if len(todo) == 1 else "ies", len(rows))
    done = 0
    for (key, eligible), cols in groups.items():
        if not eligible:
            continue
        family = families[key]
        t0 = time.perf_counter()
        # paired resampling needs the same reports: one comparison per set of study ids, the
        # baseline's set first; rows scored on other ids get CIs but no test
        classes: dict[frozenset, list[str]] = {}
        for name in eligible:
            classes.setdefault(id_sets[name], []).append(name)
        base_ids = id_sets.get(baseline) if baseline in eligible else None
        for ids, members in classes.items():
            systems = {r.name: [aligned[d].stats(family) for d in r.run_dirs]
                       for r in rows if r.name in members}
            base = baseline if baseline in systems and len(systems) > 1 else None
            res = seed_mean_comparison(systems, family, baseline=base, n_resamples=n_resamples,
                                       trials=trials, seed=seed, confidence=confidence)
            why = None
            if base_ids is not None and ids != base_ids:
                why = (f"not tested: scored on other study ids than the baseline {baseline!r} "
                       f"({len(ids)} vs {len(base_ids)} reports, {len(ids & base_ids)} in "
                       "common); paired tests need the same reports")
            for c in cols:
                if baseline in lacking_of[c.key]:
                    why = (f"not tested: the baseline {baseline!r} has no {family.family} "
                           "statistics")
                for name in members:
                    e = res[name][c.metric]
                    untested = e.untested if why is None or name == baseline else why
                    cells[(name, c.key)] = replace(
                        cells[(name, c.key)], ci=e.ci, difference=e.difference,
                        difference_ci=e.difference_ci, p_value=e.p_value, untested=untested)
                    if e.p_value is not None:
                        tested.append((name, c.key))
        off = [n for ids, members in classes.items() if base_ids is not None and ids != base_ids
               for n in members]
        if off:
            notes.append(f"{', '.join(c.key for c in cols)}: not tested for "
                         f"{', '.join(map(repr, off))}: scored on other study ids than the "
                         f"baseline {baseline!r} (paired tests need the same reports).")
        if baseline is not None and baseline not in eligible and not any(
                baseline in lacking_of[c.key] for c in cols):
            notes.extend(_untested_signature_notes(rows, columns, cols, cells, baseline))
        done += 1
        LOG.info("compare: %s (%d/%d): %d rows, %d columns in %.1f s", family.family, done,
                 len(todo), len(eligible), len(cols), time.perf_counter() - t0)
    hib = {c.key: c.higher_is_better for c in columns}
    for k, (q, flag) in zip(tested, holm_step([cells[k].p_value for k in tested], alpha)):
        cell = cells[k]
        better = (cell.difference or 0.0) > 0 if hib[k[1]] else (cell.difference or 0.0) < 0
        cells[k] = replace(cell, p_holm=q, significant=flag, better=better)
    seed_tested = _seed_level(rows, columns, cells, baseline, alpha)
    sigs = {}
    for (key, _), cols in groups.items():
        for c in cols:
            sigs[c.key] = test_signature(c.metric, families[key], n_resamples=n_resamples,
                                         trials=trials, seed=seed, confidence=confidence,
                                         alpha=alpha, holm_m=len(tested),
                                         holm_m_seed=seed_tested)
    if todo:
        LOG.info("compare: CIs and tests done in %.1f s (%d per-report and %d seed-level "
                 "comparisons)", time.perf_counter() - started, len(tested), seed_tested)
    return sigs, len(tested), seed_tested


def _seed_level(rows: list[RowInfo], columns: list[Column], cells: dict, baseline: str | None,
                alpha: float) -> int:
    """The seed-level test of every row against the baseline in every column (one Holm step
    across them); returns how many were tested."""
    if baseline is None:
        return 0
    tested: list[tuple[str, str]] = []
    for c in columns:
        base = cells[(baseline, c.key)]
        if base.missing is not None or base.mean is None:
            continue
        for r in rows:
            cell = cells[(r.name, c.key)]
            if r.name == baseline or cell.missing is not None or cell.mean is None:
                continue
            t = seed_level_test([float(v) for v in cell.values],
                                [float(v) for v in base.values])
            cells[(r.name, c.key)] = replace(
                cell, p_seed=t.p_value, seed_untested=t.why,
                difference=cell.difference if cell.difference is not None
                else cell.mean - base.mean)
            if t.p_value is not None:
                tested.append((r.name, c.key))
    hib = {c.key: c.higher_is_better for c in columns}
    for k, (q, flag) in zip(tested, holm_step([cells[k].p_seed for k in tested], alpha)):
        cell = cells[k]
        better = (cell.difference or 0.0) > 0 if hib[k[1]] else (cell.difference or 0.0) < 0
        cells[k] = replace(cell, p_seed_holm=q, seed_significant=flag,
                           better=better if cell.better is None else cell.better)
    return len(tested)


def _mark_floor_copies(rows: list[RowInfo], records: dict[str, list[dict]],
                       notes: list[str]) -> list[RowInfo]:
    """Flag rows whose test predictions equal a floor row's in every seed ("= constant
    floor"): a trained row that only learned to write the floor's output."""
    # a floor: a complete measured row without training (fitted, like constant / nn_retrieval)
    floors = [r for r in rows if r.run_dirs and not r.trained and r.kind == "measured"
              and not r.source.startswith("imported")]
    if not floors:
        return rows
    floor_preds = {f.name: _predictions(f.run_dirs[0], records[f.name][0]) for f in floors}
    out = []
    for r in rows:
        same = None
        if r.trained and r.run_dirs and not r.incomplete:
            mine = [_predictions(d, rec) for d, rec in zip(r.run_dirs, records[r.name])]
            for f in floors:
                if floor_preds[f.name] and all(p == floor_preds[f.name] for p in mine):
                    same = f.name
                    break
        if same is not None:
            notes.append(f"row {r.name!r}: its test outputs equal the {same!r} floor's in every "
                         f"seed ({len(r.run_dirs)}).")
            r = replace(r, same_as_floor=same)
        out.append(r)
    return out


def _predictions(run_dir: str, record: dict) -> dict[str, str] | None:
    """id -> prediction of a run's predictions.jsonl (None when it has none or it is
    unreadable: no "= floor" claim either way)."""
    folder = Path(record.get("_run_dir") or run_dir)
    if not (folder / PREDICTIONS_FILE).is_file():
        return None
    try:
        return read_predictions(folder)
    except UarbenchError:
        return None


@dataclass(frozen=True)
class _RunStats:
    """One run's per-report statistics in one study order, as one float matrix (the frame is
    converted once, not once per metric family)."""

    values: np.ndarray                     # (n, all columns)
    index: dict[str, int]                  # column name -> position

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _RunStats:
        return cls(frame.to_numpy(dtype=np.float64),
                   {str(c): i for i, c in enumerate(frame.columns)})

    def has(self, family: MetricFamily) -> bool:
        return all(c in self.index for c in family_columns(family))

    def stats(self, family: MetricFamily) -> np.ndarray:
        """(n, k) statistics of ``family`` (as :func:`uarbench.stats.compare.stats_from_frame`)."""
        return self.values[:, [self.index[c] for c in family_columns(family)]]


def _per_report_frames(rows: list[RowInfo]) -> tuple[dict[str, pd.DataFrame],
                                                     dict[str, frozenset]]:
    """(run folder -> its per-report statistics indexed by study id, row -> its id set).

    Paired tests compare report i of one run with report i of another, so they need runs
    scored on the same study ids (:func:`_aligned` orders them alike). The seeds of one row must
    share their ids (else one error names the file); rows on other ids than the baseline are
    shown with CIs and left untested."""
    frames: dict[str, pd.DataFrame] = {}
    id_sets: dict[str, frozenset] = {}
    for r in rows:
        first: Path | None = None
        for d in r.run_dirs:
            frame = read_per_report(d)
            path = Path(d) / PER_REPORT_FILE
            ids = frozenset(frame.index)
            if r.name not in id_sets:
                id_sets[r.name], first = ids, path
            elif ids != id_sets[r.name]:
                raise UarbenchError(
                    f"scored other test studies than {first} ({len(ids)} vs "
                    f"{len(id_sets[r.name])} reports), though both are seeds of row "
                    f"{r.name!r}.", file=path, fix="score every seed of a row on the same "
                    "dataset build and split, or pass --no-significance.")
            frames[d] = frame
    return frames, id_sets


def _aligned(frames: dict[str, pd.DataFrame]) -> dict[str, _RunStats]:
    """run folder -> its statistics, the runs of one id set in one order (the first one's)."""
    order: dict[frozenset, pd.Index] = {}
    out = {}
    for d, frame in frames.items():
        first = order.setdefault(frozenset(frame.index), frame.index)
        out[d] = _RunStats.of(frame if frame.index.equals(first) else frame.loc[first])
    return out


def _untested_signature_notes(rows: list[RowInfo], columns: list[Column], cols: list[Column],
                              cells: dict, baseline: str) -> list[str]:
    """Why the rows of split columns where the baseline has no number are not tested: the
    signature fields in which their numbers differ from the baseline's (e.g. the convention)."""
    whys: dict[str, list[str]] = {}
    for c in cols:
        base_sig = next((o.signature for o in columns if o.metric == c.metric and
                         cells[(baseline, o.key)].missing is None), None)
        if base_sig is None:
            whys.setdefault(f"the baseline {baseline!r} has no number here: no test.",
                            []).append(c.key)
            continue
        ours, theirs = dict(Signature.parse(c.signature).fields), dict(
            Signature.parse(base_sig).fields)
        diff = [k for k in dict.fromkeys([*ours, *theirs]) if ours.get(k) != theirs.get(k)]
        mine = "|".join(f"{k}:{ours[k]}" for k in diff if k in ours)
        base = "|".join(f"{k}:{theirs[k]}" for k in diff if k in theirs)
        why = f"not tested: scored under {mine}, the baseline under {base}"
        for r in rows:
            cell = cells[(r.name, c.key)]
            if cell.missing is None and r.name != baseline:
                cells[(r.name, c.key)] = replace(cell, untested=why)
        whys.setdefault(f"{why} (numbers under different signatures are not compared).",
                        []).append(c.key)
    return [f"{', '.join(keys)}: {why}" for why, keys in whys.items()]


def _reported_cells(name: str, rr: ReportedRow, columns: list[Column]) -> dict:
    out = {}
    placed: set[str] = set()
    for c in columns:
        v = rr.value(c.metric)
        if v is None or c.metric in placed:
            out[(name, c.key)] = Cell(missing="not reported")
            continue
        placed.add(c.metric)           # a split column: the first of its parts
        out[(name, c.key)] = Cell(mean=v, n_seeds=0, values=(v,))
    return out


def _provenance(records: dict[str, list[dict]]) -> dict:
    recs = [rec for rs in records.values() for rec in rs]

    def distinct(get) -> list:
        return sorted({str(get(rec)) for rec in recs})
    prov = [rec.get("provenance", {}) for rec in recs]
    return {
        "runs": sum(len(rs) for rs in records.values()),
        "git_commits": sorted({str(p.get("git", {}).get("commit")) for p in prov}),
        "git_dirty": any(bool(p.get("git", {}).get("dirty")) for p in prov),
        "uarbench_versions": sorted({str(p.get("versions", {}).get("uarbench")) for p in prov}),
        "benchmark_versions": distinct(lambda r: r.get("benchmark_version")),
        "dataset_sha256": distinct(lambda r: r.get("dataset", {}).get("sha256")),
        "presets": distinct(lambda r: r.get("preset")),
        "devices": distinct(lambda r: r.get("device")),
        "time_utc": [min((str(p.get("time_utc")) for p in prov), default=None),
                     max((str(p.get("time_utc")) for p in prov), default=None)],
    }
