"""Score a predictions file (or mapping) against references: the library behind ``uarbench eval``.

References come from a dataset split (cleaned full reports by default, or R2Gen's truncated
and <unk>-mapped way with ``reference_mode="r2gen_compat"``) or from a references file. The
same cleaning is applied to predictions and references. The result carries per-report
statistics (for significance tests later), one signature per number and the provenance.

Clinical efficacy: with a ``labeler`` (default ``"rules"``, the offline CheXpert-style labeler)
predictions and references are labelled (``labels_pred.csv`` / ``labels_ref.csv``) and scored
under the CE conventions of :func:`uarbench.metrics.ce.default_ce_conventions`; a labeler that is
missing or cannot run makes CE "unavailable: <reason>", never a crash and never a 0. With
``bootstrap > 0`` every number gets a paired-bootstrap percentile CI (``ci: [lo, hi]`` and
``ci_signature`` in metrics.json) computed from the per-report statistics.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.data.cleaning import CLEANERS
from uarbench.data.datasets import Dataset, load_dataset
from uarbench.data.references import dataset_references, reference_signature
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, atomic_write_text
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.metrics.base import NLG_METRICS, MetricFamily, MetricResult, MetricUnavailable
from uarbench.metrics.ce import CEConvention, ce_families, score_ce, unavailable_ce
from uarbench.metrics.nlg import score_nlg
from uarbench.provenance import file_sha256, provenance
from uarbench.textfiles import read_texts

METRICS_FILE = "metrics.json"
PER_REPORT_FILE = "per_report_stats.csv"
LABEL_FILES = {"pred": "labels_pred.csv", "ref": "labels_ref.csv"}
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, MetricResult]
    per_report: pd.DataFrame          # index: study id; columns: family.statistic
    inputs: dict                      # what was scored: dataset / split / files / modes
    # metric -> (lo, hi) bootstrap CI, with its signature; empty without bootstrap
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_signatures: dict[str, str] = field(default_factory=dict)
    # "pred" / "ref" -> (n, 14) labels (index: study id, columns: OBSERVATIONS); empty without CE
    labels: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_dict(self) -> dict:
        metrics = {}
        for k, v in self.metrics.items():
            metrics[k] = v.to_dict()
            if k in self.intervals:
                metrics[k]["ci"] = list(self.intervals[k])
                metrics[k]["ci_signature"] = self.ci_signatures[k]
        return {"schema_version": SCHEMA_VERSION, "metrics": metrics,
                "inputs": self.inputs, "provenance": provenance()}

    def table(self, fmt: str = "simple") -> str:
        def ci(name: str) -> str:
            lo_hi = self.intervals.get(name)
            return "" if lo_hi is None else f"[{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]"
        rows = [(name, "unavailable" if r.value is None else f"{r.value:.4f}", ci(name),
                 r.unavailable or r.signature) for name, r in self.metrics.items()]
        return tabulate(rows, headers=("metric", "value", "CI", "signature / reason"),
                        tablefmt=fmt)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """per_report_stats.csv and the label files first, metrics.json (the marker) last."""
        out_dir = Path(out_dir)
        stats = atomic_write_text(out_dir / PER_REPORT_FILE, self.per_report.to_csv())
        for which, name in LABEL_FILES.items():
            if which in self.labels:
                atomic_write_text(out_dir / name, self.labels[which].to_csv())
            else:  # no CE this time: a label file of an earlier run would not belong to it
                (out_dir / name).unlink(missing_ok=True)
        return atomic_write_json(out_dir / METRICS_FILE, self.to_dict()), stats


def evaluate(*, predictions: Mapping[str, str] | str | Path,
             references: Mapping[str, str] | str | Path | None = None,
             dataset: str | Dataset | None = None, split: str = "test",
             data_root: str | Path | None = None, reference_mode: str = "clean",
             cleaning: str | None = None, metrics: Sequence[str] | None = None,
             out_dir: str | Path | None = None, labeler: str | None = "rules",
             labeler_kwargs: Mapping[str, object] | None = None,
             ce_conventions: Sequence[CEConvention] | None = None,
             bootstrap: int = 1000, confidence: float = 0.95,
             bootstrap_seed: int = 0, radgraph_model: str | Path | None = None,
             radgraph_model_type: str = "radgraph") -> Evaluation:
    """Score predictions; write metrics.json + per-report statistics to ``out_dir`` if given.

    Give exactly one of ``references`` (mapping or JSONL/CSV file with id, reference) and
    ``dataset`` (a registered name or a loaded :class:`Dataset`; ``split`` selects the studies).
    ``labeler``: a registered labeler name for clinical efficacy (None: no CE), built with
    ``labeler_kwargs``; ``ce_conventions``: default :func:`default_ce_conventions`.
    ``bootstrap``: resamples for the percentile CI of every number (0: no CIs), at
    ``confidence``, seeded with ``bootstrap_seed``. ``radgraph_model``: a local RadGraph model
    folder (``radgraph`` package format) for RadGraph F1; without one RadGraph is reported as
    "unavailable: <reason>".
    """
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise UarbenchError(f"bootstrap must be a number of resamples >= 0, got {bootstrap!r}.",
                            fix="use 1000 (the default) or 0 for no confidence intervals.")
    if not 0 < confidence < 1:
        raise UarbenchError(f"confidence must be between 0 and 1, got {confidence!r}.",
                            fix="use 0.95 for a 95% interval.")
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
    ref_list = [refs[i] for i in ids]
    signature_base = {"tok": cleaning, "ref": reference_signature(reference_mode, ds)}
    results, per_report = score_nlg(preds, ref_list, families=metrics,
                                    signature_base=signature_base)
    families: list[MetricFamily] = _scored_nlg_families(per_report)
    labels: dict[str, pd.DataFrame] = {}
    if labeler is not None:
        inputs["labeler"] = labeler
        ce_results, ce_stats, labels = _clinical_efficacy(
            preds, ref_list, ids, labeler, labeler_kwargs, ce_conventions, signature_base)
        results.update(ce_results)
        if ce_stats is not None:
            per_report = pd.concat([per_report, ce_stats], axis=1)
            families += ce_families(ce_conventions)
    rg_results, rg_stats, rg_family = _radgraph(preds, ref_list, radgraph_model,
                                                radgraph_model_type, signature_base)
    results.update(rg_results)
    if rg_stats is not None:
        per_report = pd.concat([per_report, rg_stats], axis=1)
        families.append(rg_family)
    per_report.index = pd.Index(ids, name="id")
    inputs["cleaning"] = cleaning
    intervals: dict[str, tuple[float, float]] = {}
    ci_sigs: dict[str, str] = {}
    if bootstrap > 0:
        intervals, ci_sigs = _intervals(families, per_report, bootstrap, confidence,
                                        bootstrap_seed)
    evaluation = Evaluation(results, per_report, inputs, intervals, ci_sigs, labels)
    if out_dir is not None:
        evaluation.write(out_dir)
    return evaluation


def _scored_nlg_families(per_report: pd.DataFrame) -> list[MetricFamily]:
    """The NLG families whose statistics are in ``per_report`` (available ones)."""
    names = dict.fromkeys(c.split(".", 1)[0] for c in per_report.columns)
    return [NLG_METRICS.get(name)() for name in names]


BUILTIN_LABELERS = {"rules": "uarbench.labeling.rules", "chexbert": "uarbench.labeling.chexbert"}


def _make_labeler(name: str, kwargs: Mapping[str, object] | None) -> tuple[Labeler | None, str]:
    """The labeler, or None and the reason it is missing. Built-in labelers are imported lazily
    (the rule labeler registers itself when ``uarbench.labeling.rules`` is imported)."""
    reasons = []
    if name not in LABELERS:
        modules = [BUILTIN_LABELERS[name]] if name in BUILTIN_LABELERS else list(
            BUILTIN_LABELERS.values())
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as e:
                reasons.append(f"{module} cannot be imported ({e})")
    if name not in LABELERS:
        known = ", ".join(LABELERS.names()) or "none"
        why = f"; {'; '.join(reasons)}" if reasons else ""
        return None, f"unavailable: labeler {name!r} is not registered (known: {known}){why}"
    labeler = LABELERS.get(name)(**dict(kwargs or {}))
    reason = labeler.unavailable_reason()
    if reason is not None:
        return None, reason if reason.startswith("unavailable") else f"unavailable: {reason}"
    return labeler, ""


def _clinical_efficacy(preds: list[str], refs: list[str], ids: list[str], name: str,
                       kwargs: Mapping[str, object] | None,
                       conventions: Sequence[CEConvention] | None, signature_base: dict
                       ) -> tuple[dict[str, MetricResult], pd.DataFrame | None,
                                  dict[str, pd.DataFrame]]:
    """CE results, per-report CE statistics (None when unavailable) and the label frames."""
    labeler, reason = _make_labeler(name, kwargs)
    if labeler is None:
        return unavailable_ce(reason, len(ids), labeler_version=name, conventions=conventions,
                              signature_base=signature_base), None, {}
    try:
        pred_labels, ref_labels = labeler.label(preds), labeler.label(refs)   # (n, 14) each
    except MetricUnavailable as e:  # the labeler's model failed at run time
        return unavailable_ce(f"unavailable: {e}", len(ids), labeler_version=labeler.version,
                              conventions=conventions, signature_base=signature_base), None, {}
    results, stats = score_ce(pred_labels, ref_labels, labeler_version=labeler.version,
                              conventions=conventions, signature_base=signature_base)
    stats.index = pd.RangeIndex(len(ids))
    frames = {which: pd.DataFrame(np.asarray(x, dtype=np.float64), columns=list(OBSERVATIONS),
                                  index=pd.Index(ids, name="id")).astype("Int64")
              for which, x in (("pred", pred_labels), ("ref", ref_labels))}
    return results, stats, frames


def _radgraph(preds: list[str], refs: list[str], model: str | Path | None, model_type: str,
              signature_base: dict) -> tuple[dict[str, MetricResult], pd.DataFrame | None,
                                             MetricFamily]:
    """RadGraph F1 results and per-report statistics (None when unavailable)."""
    from uarbench.metrics.nlg import signature
    from uarbench.metrics.radgraph import RadGraphAnnotator, RadGraphF1
    family = RadGraphF1(RadGraphAnnotator(model, model_type))
    n = len(preds)
    reason = family.unavailable_reason()
    stats = None
    if reason is None:
        try:
            stats = family.stats(preds, refs)  # (n, 4)
        except MetricUnavailable as e:
            reason = f"unavailable: {e}"
    if stats is None:
        reason = reason if reason.startswith("unavailable") else f"unavailable: {reason}"
        return {name: MetricResult(name, None, signature(family, name, n, signature_base),
                                   unavailable=reason) for name in family.names}, None, family
    values = family.score_from_stats(stats)
    results = {name: MetricResult(name, values[name], signature(family, name, n, signature_base))
               for name in family.names}
    frame = pd.DataFrame(stats, columns=[f"{family.family}.{c}" for c in family.stat_names])
    return results, frame, family


def _intervals(families: Sequence[MetricFamily], per_report: pd.DataFrame, n_resamples: int,
               confidence: float, seed: int) -> tuple[dict[str, tuple[float, float]],
                                                      dict[str, str]]:
    """Bootstrap percentile CI of every scored metric from its per-report statistics."""
    from uarbench.stats.bootstrap import paired_bootstrap
    from uarbench.stats.compare import stats_from_frame
    intervals: dict[str, tuple[float, float]] = {}
    sigs: dict[str, str] = {}
    for family in families:
        try:
            res = paired_bootstrap({"system": stats_from_frame(family, per_report)}, family,
                                   n_resamples=n_resamples, seed=seed, confidence=confidence)
        except MetricUnavailable:   # the METEOR JVM died: that number keeps no CI
            continue
        for name, iv in res.systems["system"].items():
            intervals[name] = (iv.lo, iv.hi)
            sigs[name] = res.signature
    return intervals, sigs


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
