"""Score a predictions file (or mapping) against references: the library behind ``uarbench eval``.

References come from a dataset split (cleaned full reports by default, or R2Gen's truncated
and <unk>-mapped way with ``reference_mode="r2gen_compat"``) or from a references file. The
same cleaning is applied to predictions and references. The result carries per-report
statistics (for significance tests later), one signature per number and the provenance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from uarbench.data.cleaning import CLEANERS
from uarbench.data.datasets import Dataset, load_dataset
from uarbench.data.references import dataset_references, reference_signature
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, atomic_write_text
from uarbench.metrics.base import MetricResult
from uarbench.metrics.nlg import score_nlg
from uarbench.provenance import file_sha256, provenance
from uarbench.textfiles import read_texts

METRICS_FILE = "metrics.json"
PER_REPORT_FILE = "per_report_stats.csv"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, MetricResult]
    per_report: pd.DataFrame          # index: study id; columns: family.statistic
    inputs: dict                      # what was scored: dataset / split / files / modes

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "inputs": self.inputs, "provenance": provenance()}

    def table(self, fmt: str = "simple") -> str:
        rows = [(name, "unavailable" if r.value is None else f"{r.value:.4f}",
                 r.unavailable or r.signature) for name, r in self.metrics.items()]
        return tabulate(rows, headers=("metric", "value", "signature / reason"), tablefmt=fmt)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        out_dir = Path(out_dir)
        stats = atomic_write_text(out_dir / PER_REPORT_FILE, self.per_report.to_csv())
        return atomic_write_json(out_dir / METRICS_FILE, self.to_dict()), stats


def evaluate(*, predictions: Mapping[str, str] | str | Path,
             references: Mapping[str, str] | str | Path | None = None,
             dataset: str | Dataset | None = None, split: str = "test",
             data_root: str | Path | None = None, reference_mode: str = "clean",
             cleaning: str | None = None, metrics: Sequence[str] | None = None,
             out_dir: str | Path | None = None) -> Evaluation:
    """Score predictions; write metrics.json + per-report statistics to ``out_dir`` if given.

    Give exactly one of ``references`` (mapping or JSONL/CSV file with id, reference) and
    ``dataset`` (a registered name or a loaded :class:`Dataset`; ``split`` selects the studies).
    """
    inputs: dict = {"split": split if dataset is not None else None,
                    "reference_mode": reference_mode}
    if (references is None) == (dataset is None):
        raise UarbenchError("give either references or a dataset, not both or neither.",
                            fix="use --references FILE or --dataset NAME [--data-root R].")
    ds: Dataset | None = None
    if dataset is not None:
        ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_root,
                                                                       image_check="none")
        refs = dataset_references(ds, split, reference_mode)
        cleaning = cleaning or ds.spec.cleaning
        inputs.update(dataset=ds.name, dataset_sha256=ds.content_hash, data_root=str(ds.root))
    else:
        if reference_mode != "clean":
            raise UarbenchError(f"reference mode {reference_mode!r} needs the dataset's training "
                                "vocabulary.", fix="use --dataset instead of --references.")
        refs_raw = _load(references, "reference", ("report",), inputs, "references")
        cleaning = cleaning or "r2gen-iu"
        refs = {k: CLEANERS.get(cleaning)(v) for k, v in refs_raw.items()}
        empty = [k for k, v in refs.items() if not v]
        if empty:
            raise UarbenchError(f"{len(empty)} empty reference(s) (first: {', '.join(empty[:5])}).",
                                file=inputs.get("references"), fix="remove them or restore the text.")
    preds_raw = _load(predictions, "prediction", (), inputs, "predictions")
    _check_ids(preds_raw, refs, inputs.get("predictions"))
    clean = CLEANERS.get(cleaning)
    ids = list(refs)
    preds = [clean(preds_raw[i]) for i in ids]
    results, per_report = score_nlg(preds, [refs[i] for i in ids], families=metrics,
                                    signature_base={"tok": cleaning,
                                                    "ref": reference_signature(reference_mode, ds)})
    per_report.index = pd.Index(ids, name="id")
    inputs["cleaning"] = cleaning
    evaluation = Evaluation(results, per_report, inputs)
    if out_dir is not None:
        evaluation.write(out_dir)
    return evaluation


def _load(source: Mapping[str, str] | str | Path, field: str, aliases: tuple[str, ...],
          inputs: dict, key: str) -> dict[str, str]:
    if isinstance(source, Mapping):
        return {str(k): v for k, v in source.items()}
    inputs[key] = str(source)
    inputs[f"{key}_sha256"] = file_sha256(source) if Path(source).is_file() else None
    return read_texts(source, field, aliases=aliases)


def _check_ids(preds: Mapping[str, str], refs: Mapping[str, str], file: str | None) -> None:
    missing = [i for i in refs if i not in preds]
    extra = [i for i in preds if i not in refs]
    if missing:
        raise UarbenchError(f"{len(missing)} reference id(s) have no prediction "
                            f"(first: {', '.join(missing[:5])}).", file=file,
                            fix="predict every study of the split (check --split).")
    if extra:
        raise UarbenchError(f"{len(extra)} prediction id(s) are not in the references "
                            f"(first: {', '.join(extra[:5])}).", file=file,
                            fix="check --dataset / --split, or remove those rows.")
