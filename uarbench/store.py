"""The run store: everything that knows how a run folder is laid out. Writers (the runner,
training, ``uarbench import``, ``uarbench predict``, evaluation) and readers (``compare``,
``results``, the runner's skip / resume checks) all go through this module.

Layout: ``<root>/<suite>/<row>-seed<k>/`` holds ``predictions.jsonl`` (id, prediction, cleaned
reference), ``metrics.json`` and ``per_report_stats.csv`` (written by
:mod:`uarbench.evaluate`), the label files, for trained runs ``train_log.jsonl``,
``config.json``, ``summary.json``, ``checkpoints/`` and ``val/``, and ``run.json`` last.

The run record ``run.json`` is written last, so a run folder is complete only when it exists,
parses, and every file it lists is present with the recorded sha256.

Schema (version 1)::

    schema_version  1
    suite, run, row, model, seed, preset   what ran
    spec                                   the full RunSpec (overrides included)
    benchmark_version                      benchmark.toml's version
    dataset          {name, root, sha256}  the annotation's content hash
    config           resolved model + training config (trained models) or floor parameters
    image_tokenizer  checkpoint hash of the frozen LSU tokenizer, or null
    metrics          {name: {value, signature, ...}} on the test split (as in metrics.json)
    files            {relative path: sha256} of everything the run left behind
    device, wall_s, provenance (git commit + dirty flag, package versions)
    source, citation                       imported runs only (``uarbench import``): "imported"
                                           and where the outputs come from; their ``spec`` and
                                           ``config`` hold the file's sha256, the convention,
                                           the columns read and the reference source

Hand-written: a thin reader and writer of our own format.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, atomic_write_jsonl
from uarbench.provenance import file_sha256, provenance

# file names of a run folder
RUN_JSON = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
PER_REPORT_FILE = "per_report_stats.csv"
ERROR_LOG = "error.log"
CONFIG_FILE = "config.json"        # a trained run's resolved configuration
SUMMARY_FILE = "summary.json"      # a trained run's summary, written last by training
TRAIN_LOG = "train_log.jsonl"      # one row per step and per validation
RUN_NAME = re.compile(r"^(?P<row>.+)-seed(?P<seed>\d+)$")   # RunSpec.name: <row>-seed<k>

SCHEMA_VERSION = 1


def spec_dict(spec) -> dict:
    d = asdict(spec)
    d.pop("device")  # where it ran does not change what it is
    return json.loads(json.dumps(d))


def write_run_record(run_dir: Path, spec, *, dataset, config: dict, metrics: dict,
                     files: list[str], image_tokenizer: str | None, device: str | None,
                     wall_s: float, spec_record: dict | None = None,
                     extra: dict | None = None) -> Path:
    """``spec_record``: the record's ``spec`` (default: the RunSpec's fields); ``extra``: more top-level
    keys (an imported run's ``source`` and ``citation``)."""
    record = {
        "schema_version": SCHEMA_VERSION, "suite": spec.suite, "run": spec.name, "row": spec.row,
        "model": spec.model, "seed": spec.seed, "preset": spec.preset,
        "spec": spec_dict(spec) if spec_record is None else spec_record,
        "benchmark_version": spec.benchmark_version,
        "dataset": {"name": dataset.name, "root": str(dataset.root), "sha256": dataset.content_hash},
        "config": config, "image_tokenizer": image_tokenizer, "metrics": metrics,
        "files": {f: file_sha256(run_dir / f) for f in sorted(files)},
        "device": device, "wall_s": round(wall_s, 1), "provenance": provenance(),
        **(extra or {}),
    }
    return atomic_write_json(run_dir / RUN_JSON, record)


def read_complete(run_dir: Path) -> dict | None:
    """The run record if the run is complete (record present, parseable, files intact)."""
    record = read_record(run_dir)
    if record is None:
        return None
    for rel, sha in record["files"].items():
        f = Path(run_dir) / rel
        if not f.is_file() or file_sha256(f) != sha:
            return None
    return record


def read_record(run_dir: Path) -> dict | None:
    """The run record if it is present and well formed, without checking the files it hashes
    (cheap: for estimates such as a suite's ETA; results go through :func:`read_complete`)."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError):
        return None
    # a record of another shape is damaged, whatever it holds
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        return None
    files = record.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    if not _well_typed(record):
        return None
    return record


# the keys a complete record must have, and their types (compare and the runner read them)
_TYPES = {"suite": str, "run": str, "row": str, "model": str, "seed": int, "metrics": dict,
          "spec": dict, "dataset": dict}


def _well_typed(record: dict) -> bool:
    for key, typ in _TYPES.items():
        value = record.get(key)
        if not isinstance(value, typ) or isinstance(value, bool):
            return False
    return all(isinstance(m, dict) for m in record["metrics"].values())


# --- predictions and per-report statistics ---------------------------------------------------
def write_predictions(path: str | Path, ids: Iterable[str], predictions: Iterable[str],
                      references: Iterable[str]) -> Path:
    """``predictions.jsonl``: one {id, prediction, reference} per study, atomically."""
    return atomic_write_jsonl(path, ({"id": i, "prediction": p, "reference": r}
                                     for i, p, r in zip(ids, predictions, references)))


def read_metrics(folder: str | Path) -> dict[str, dict]:
    """The ``metrics`` of a folder's ``metrics.json`` (name -> {value, signature, ...})."""
    from uarbench.io import parse_json
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise UarbenchError(f"no {METRICS_FILE} here.", file=path,
                            fix="run `uarbench eval` for this system first.")
    fix = "score it again (`uarbench eval`)."
    data = parse_json(path.read_text(encoding="utf-8"), path, fix=fix)
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise UarbenchError("no `metrics` table in it.", file=path, fix=fix)
    return data["metrics"]


def read_predictions(folder: str | Path, field: str = "prediction") -> dict[str, str]:
    """id -> ``field`` ("prediction", or "reference" for an imported run's own references) of a
    folder's ``predictions.jsonl``; a damaged file is one error naming it and the line."""
    from uarbench.textfiles import read_texts
    return read_texts(Path(folder) / PREDICTIONS_FILE, field)


def read_per_report(folder: str | Path) -> pd.DataFrame:
    """A run's (or evaluation's) per-report statistics indexed by study id (str), every column a
    finite number, one row per id; anything else is one error naming the file."""
    path = Path(folder) / PER_REPORT_FILE
    if not path.is_file():
        raise UarbenchError("no per-report statistics: CIs and tests need them.",
                            file=path, fix="re-run the run (or `uarbench eval`), or "
                            "pass --no-significance.")
    try:
        frame = pd.read_csv(path)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        raise UarbenchError(f"not a readable per-report statistics file "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:120]}).",
                            file=path, fix="re-score the run (or re-run it), or pass "
                            "--no-significance.") from None
    if "id" not in frame.columns:
        raise UarbenchError("no `id` column: reports cannot be paired across runs.",
                            file=path, fix="re-score the run with this uarbench "
                            "version (it writes an id column).")
    frame["id"] = frame["id"].astype(str)
    frame = frame.set_index("id")
    # every statistic is a finite number (counts, per-report scores): text or NaN in a
    # column would fail inside the resampling, far from the file
    numeric = [pd.api.types.is_numeric_dtype(t) for t in frame.dtypes]
    finite = np.ones(len(numeric), dtype=bool)
    if any(numeric):    # one conversion for the whole frame, not one per column
        numbers = frame if all(numeric) else frame.iloc[:, np.flatnonzero(numeric)]
        finite[np.flatnonzero(numeric)] = np.isfinite(
            numbers.to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=0)
    bad = [c for c, is_num, fin in zip(frame.columns, numeric, finite) if not (is_num and fin)]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UarbenchError(f"not a readable per-report statistics file (column "
                            f"{bad[0]!r}{more}: values that are not finite numbers).",
                            file=path, fix="re-score the run (or re-run it), or pass "
                            "--no-significance.")
    if frame.index.has_duplicates:
        raise UarbenchError("duplicate study ids.", file=path,
                            fix="re-score the run: one row per test study.")
    return frame


# --- run folders ---------------------------------------------------------------------------------
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
