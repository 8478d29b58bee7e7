"""Published systems as table rows: ``uarbench import`` turns a released output file into a run
folder that ``uarbench compare`` ranks beside trained runs.

The folder ``<suite folder>/<name>/`` has the layout of a trained run (predictions.jsonl,
metrics.json, per_report_stats.csv, label files, run.json written last) and a ``run.json``
with ``source: imported``, the file's sha256, its citation, the convention and the columns
read. Its numbers are measured here from the released texts, under a named convention, so they
carry the same signatures as trained runs scored the same way: an imported file scored against
the dataset's references under the default convention shares columns, CIs and paired tests
with the trained rows; scored against its own released references (``ref:file``) or under
another convention it gets its own columns, and compare says why it is not tested.

The folder is built in a hidden temporary folder beside the target and renamed into place, so
an interrupted import leaves nothing that looks like a run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from uarbench.errors import UarbenchError
from uarbench.provenance import file_sha256
from uarbench.report_files import ColumnChoice
from uarbench.store import (METRICS_FILE, PREDICTIONS_FILE, read_complete, write_predictions,
                            write_run_record)

IMPORTED_MODEL = "imported"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def import_outputs(pred_file: str | Path, *, name: str, out: str | Path, dataset: str,
                   data_root: str | Path | None = None, references: str | Path | None = None,
                   citation: str | None = None, convention: str | None = None,
                   split: str = "test", cleaning: str | None = None, columns: ColumnChoice = ColumnChoice(),
                   order_from: str | Path | None = None, skip_empty_references: bool = False,
                   common_ids: bool = False, overwrite: bool = False,
                   scoring: dict | None = None) -> Path:
    """Score ``pred_file`` and write it as the run folder ``out/name`` (module docstring).

    ``out``: the suite's folder (``results/<suite>``). References: ``references`` if given, else
    the dataset's split when ``data_root`` is given (or the dataset is generated), else the
    file's own reference column. ``scoring``: further :func:`uarbench.evaluate.evaluate`
    arguments (labeler, bootstrap, ...)."""
    from uarbench.benchmark import default_synth_config, find_benchmark_file, load_benchmark
    from uarbench.data.datasets import DATASETS, load_dataset
    from uarbench.evaluate import evaluate, scoring_job
    if not _NAME.match(name):
        raise UarbenchError(f"row name {name!r} is not usable as a folder name.",
                            fix="use letters, digits and . _ + - (e.g. --name mlrg_2025).")
    pred_file = Path(pred_file)
    out = Path(out)
    target = out / name
    if target.exists() and not overwrite:
        what = "an imported or trained run" if read_complete(target) else "a folder"
        raise UarbenchError(f"{what} named {name!r} is already there.", file=target,
                            fix="choose another --name, or pass --overwrite.")
    spec = DATASETS.get(dataset)
    ds = None
    if data_root is not None or spec.generated:
        ds = load_dataset(dataset, data_root, image_check="none",
                          synth_config=default_synth_config())
    bench = load_benchmark() if find_benchmark_file() else None
    convention = convention or (bench.convention if bench else "r2gen")
    t0 = time.perf_counter()
    job = scoring_job(predictions=pred_file, references=references, dataset=ds, split=split,
                      columns=columns, order_from=order_from,
                      skip_empty_references=skip_empty_references, common_ids=common_ids)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.import-", dir=out))
    try:
        write_predictions(tmp / PREDICTIONS_FILE, job.ids, job.predictions, job.references)
        ev = evaluate(job=job, convention=convention, cleaning=cleaning, out_dir=tmp,
                      metrics=bench.nlg_metrics if bench else None, **(scoring or {}))
        sha = file_sha256(pred_file)
        run_spec = SimpleNamespace(
            suite=out.name, name=name, row=name, model=IMPORTED_MODEL, seed=0, preset=None,
            benchmark_version=bench.version if bench else None)
        source = {"source": "imported", "file": str(pred_file), "file_sha256": sha,
                  "citation": citation, "convention": convention,
                  "references": ev.inputs.get("references") or f"{dataset} / {split}",
                  "columns": ev.inputs.get("columns"), "dataset": dataset, "split": split,
                  "inputs": ev.inputs, "reference_source": job.reference_source,
                  "scoring": json.loads(json.dumps(
                      {k: v for k, v in (scoring or {}).items() if k != "bootstrap"},
                      default=str)),
                  "common_ids": common_ids,
                  "skipped_empty_references": len(ev.inputs.get("skipped_empty_references", ()))}
        ds_info = SimpleNamespace(name=dataset, root=str(ds.root) if ds is not None else None,
                                  content_hash=ds.content_hash if ds is not None else None)
        files = [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()]
        metrics = json.loads((tmp / METRICS_FILE).read_text(encoding="utf-8"))["metrics"]
        write_run_record(tmp, run_spec, dataset=ds_info, config=source, metrics=metrics,
                         files=files, image_tokenizer=None, device=None,
                         wall_s=time.perf_counter() - t0, spec_record=source,
                         extra={"source": "imported", "citation": citation})
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def is_imported(record: dict) -> bool:
    return record.get("source") == "imported"
