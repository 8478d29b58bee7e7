"""The run record ``run.json``: written last, so a run folder is complete only when it exists,
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
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from uarbench.io import atomic_write_json
from uarbench.provenance import file_sha256, provenance

SCHEMA_VERSION = 1
RUN_JSON = "run.json"


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
    for rel, sha in files.items():
        f = Path(run_dir) / rel
        if not f.is_file() or file_sha256(f) != sha:
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
