"""A finished run's test outputs scored again under another convention (``compare --convention``).

A run keeps its raw predictions (``predictions.jsonl``); the raw references come from the run's
dataset (rebuilt from the run's spec: a synth-cxr build, or the data root it ran on) or, for an
imported run scored against its own released references, from its predictions.jsonl. The
scores go to ``<run>/conventions/<name>/`` (metrics.json, per_report_stats.csv, label files),
written by :func:`uarbench.evaluate.evaluate` with metrics.json last and reused while
predictions.jsonl is unchanged (its sha256 is recorded). ``run.json`` does not list these files:
the run itself is unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from uarbench.errors import UarbenchError
from uarbench.provenance import file_sha256
from uarbench.store import METRICS_FILE, PREDICTIONS_FILE, read_predictions

CONVENTIONS_DIR = "conventions"


def run_convention(record: dict) -> str | None:
    """The convention a run's own metrics were scored under (None: no signed number)."""
    for m in record.get("metrics", {}).values():
        for part in str(m.get("signature", "")).split("|")[1:]:
            if part.startswith("conv:"):
                return part.removeprefix("conv:")
    return None


def rescored(run_dir: str | Path, record: dict, convention: str) -> tuple[Path, dict]:
    """(folder holding per_report_stats.csv, metrics) of the run under ``convention``."""
    run_dir = Path(run_dir)
    if run_convention(record) == convention:
        return run_dir, record.get("metrics", {})
    preds_path = run_dir / PREDICTIONS_FILE
    if not preds_path.is_file():
        raise UarbenchError(f"no {PREDICTIONS_FILE}: the run cannot be scored under another "
                            "convention.", file=run_dir,
                            fix="re-run it, or compare without --convention.")
    out = run_dir / CONVENTIONS_DIR / convention
    sha = file_sha256(preds_path)
    cached = out / METRICS_FILE
    if cached.is_file():
        try:
            done = json.loads(cached.read_text(encoding="utf-8"))
            if done.get("inputs", {}).get("run_predictions_sha256") == sha:
                return out, done["metrics"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError):
            pass                       # damaged: score again
    from uarbench.evaluate import evaluate, scoring_job
    preds = read_predictions(run_dir)   # one clear error for a damaged file
    spec = record.get("spec", {})
    scoring = _scoring_options(spec)
    if record.get("source") == "imported" and spec.get("reference_source") == "file":
        refs = read_predictions(run_dir, "reference")   # its own released references
        job = scoring_job(predictions=preds, references=refs)
    else:
        job = scoring_job(predictions=preds, dataset=_dataset(record, run_dir),
                          split=spec.get("split", "test"), common_ids=bool(spec.get("common_ids")))
    scoring.pop("convention", None)
    ev = evaluate(job=job, convention=convention, out_dir=None, bootstrap=0, **scoring)
    ev.inputs["run_predictions_sha256"] = sha
    ev.write(out)
    return out, {name: result.to_dict() for name, result in ev.metrics.items()}


def _scoring_options(spec: dict) -> dict:
    """The run's scoring options: a dict (imported runs) or RunSpec.scoring's [key, value]
    pairs (nested for labeler_kwargs)."""
    def thaw(value):
        if isinstance(value, dict):
            return dict(value)
        return {k: thaw(v) if isinstance(v, list) else v for k, v in value}
    scoring = spec.get("scoring") or {}
    return thaw(scoring)


def _dataset(record: dict, run_dir: Path):
    from uarbench.runner.execute import load_run_dataset
    spec = record.get("spec", {})
    if record.get("source") == "imported":
        from uarbench.data.datasets import load_dataset
        root = record.get("dataset", {}).get("root")
        return load_dataset(record["dataset"]["name"], root, image_check="none")
    try:
        ds = load_run_dataset(SimpleNamespace(**{**spec, "synth": spec.get("synth") or ()}),
                              image_check="none")
    except UarbenchError as e:
        raise UarbenchError(f"its dataset cannot be loaded to score it again ({e.problem})",
                            file=run_dir, fix=e.fix or "compare without --convention.") from None
    want = record.get("dataset", {}).get("sha256")
    if want and ds.content_hash != want:
        raise UarbenchError("its dataset has changed since the run (annotation sha256 "
                            f"{ds.content_hash[:12]} vs {want[:12]}).", file=run_dir,
                            fix="compare without --convention, or re-run the suite.")
    return ds
