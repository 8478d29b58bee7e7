"""Score a predictions file (or mapping) against references: the library behind ``uarbench eval``.

References come from a references file, the predictions file's own reference column, or a
dataset split (its raw reports). A named scoring convention (:mod:`uarbench.conventions`:
R2Gen's cleaning by default) turns both sides into the strings that are scored; its name and
parameters, and where the references came from, are in every signature. The result carries
per-report statistics (for significance tests later), one signature per number and the
provenance.

Clinical efficacy: with a ``labeler`` (default ``"rules"``, the offline CheXpert-style labeler)
predictions and references are labelled (``labels_pred.csv`` / ``labels_ref.csv``) and scored
under the CE conventions of :func:`uarbench.metrics.ce.default_ce_conventions`; a labeler that is
missing or cannot run makes CE "unavailable: <reason>", never a crash and never a 0. With
``bootstrap > 0`` every number gets a paired-bootstrap percentile CI (``ci: [lo, hi]`` and
``ci_signature`` in metrics.json) computed from the per-report statistics.

per_report_stats.csv holds every family's sufficient statistics, computed once here (METEOR's
are the jar's 23 numbers per report): ``uarbench compare`` scores resamples and randomization
trials from them alone, without text and without a JVM.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from uarbench import faults
from uarbench.benchmark import default_synth_config
from uarbench.conventions import DEFAULT_CONVENTION, Convention, make_convention
from uarbench.data.chexpert import OBSERVATIONS
from uarbench.data.datasets import Dataset, load_dataset
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, atomic_write_text
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.metrics.base import NLG_METRICS, MetricFamily, MetricResult, MetricUnavailable
from uarbench.metrics.ce import CEConvention, ce_families, score_ce, unavailable_ce
from uarbench.metrics.nlg import score_nlg
from uarbench.provenance import provenance
from uarbench.report_files import ColumnChoice, read_report_texts, split_order
from uarbench.store import METRICS_FILE, PER_REPORT_FILE
from uarbench.timing import phase

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
        # no time and no temporary paths: a rerun writes the same bytes (run.json says when)
        return {"schema_version": SCHEMA_VERSION, "metrics": metrics,
                "inputs": self.inputs, "provenance": provenance(time=False)}

    def table(self, fmt: str = "simple") -> str:
        def ci(name: str) -> str:
            lo_hi = self.intervals.get(name)
            return "" if lo_hi is None else f"[{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]"
        rows = [(name, "unavailable" if r.value is None else f"{r.value:.4f}", ci(name),
                 r.unavailable or r.signature) for name, r in self.metrics.items()]
        return tabulate(rows, headers=("metric", "value", "CI", "signature / reason"),
                        tablefmt=fmt)

    def input_notes(self) -> list[str]:
        """What was read and left out, in words (printed by ``uarbench eval``)."""
        return input_notes(self.inputs)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """per_report_stats.csv and the label files first, metrics.json (the marker) last."""
        out_dir = Path(out_dir)
        stats = atomic_write_text(out_dir / PER_REPORT_FILE, self.per_report.to_csv())
        for which, name in LABEL_FILES.items():
            if which in self.labels:
                atomic_write_text(out_dir / name, self.labels[which].to_csv())
            else:  # no CE this time: a label file of an earlier run would not belong to it
                (out_dir / name).unlink(missing_ok=True)
        faults.checkpoint("scoring")  # kill tests (uarbench/faults.py)
        return atomic_write_json(out_dir / METRICS_FILE, self.to_dict()), stats


@dataclass(frozen=True)
class ScoringJob:
    """The raw texts of one scoring job, paired by study id, before any convention."""

    ids: list[str]
    predictions: list[str]
    references: list[str]
    dataset: Dataset | None
    reference_source: str          # "dataset" | "file": the signature's ref: field
    inputs: dict
    common_ids: bool = False       # ids were intersected (--common-ids)


def scoring_job(*, predictions: Mapping[str, str] | str | Path,
                references: Mapping[str, str] | str | Path | None = None,
                dataset: str | Dataset | None = None, split: str = "test",
                data_root: str | Path | None = None, columns: ColumnChoice = ColumnChoice(),
                order_from: str | Path | None = None, skip_empty_references: bool = False,
                common_ids: bool = False) -> ScoringJob:
    """Read predictions and references and pair them by study id (module docstring of
    :mod:`uarbench.report_files` for the files; references: ``references`` if given, else the
    predictions file's reference column when there is no ``dataset``, else the dataset's split).
    """
    ds: Dataset | None = None
    inputs: dict = {"split": split if dataset is not None or order_from is not None else None}
    if dataset is not None:
        ds = dataset if isinstance(dataset, Dataset) else load_dataset(
            dataset, data_root, image_check="none", synth_config=default_synth_config())
        inputs.update(dataset=ds.name, dataset_sha256=ds.content_hash)
        if not ds.spec.generated:      # a generated build lives in a cache: its hash names it
            inputs["data_root"] = str(ds.root)
    order = None
    if order_from is not None:
        order = split_order(order_from, split)
        inputs["order_from"] = str(order_from)
    refs: dict[str, str] | None = None
    if isinstance(predictions, Mapping):
        preds = {str(k): v for k, v in predictions.items()}
    else:
        texts = read_report_texts(predictions, None if isinstance(references, Mapping)
                                  else references, columns=columns, order=order,
                                  order_source=None if order_from is None else str(order_from),
                                  want_references=ds is None,
                                  skip_empty_references=skip_empty_references)
        preds, refs = texts.predictions, texts.references
        inputs.update(texts.info)
    if isinstance(references, Mapping):
        refs = {str(k): v for k, v in references.items()}
    if refs is not None:
        source = "file"
        empty = [k for k, v in refs.items() if not isinstance(v, str) or not v.strip()]
        if empty:
            raise UarbenchError(f"{len(empty)} empty reference(s) (first: {', '.join(empty[:5])}).",
                                file=inputs.get("references"),
                                fix="remove them or restore the text.")
    elif ds is not None:
        source = "dataset"
        refs = {s.id: s.report for s in ds.split(split)}
    else:
        raise UarbenchError("nothing to score against: no references.",
                            file=inputs.get("predictions"),
                            fix="pass --dataset NAME [--data-root R], --references FILE, or a "
                                "predictions file with a reference column (--ref-col).")
    ids = _paired_ids(preds, refs, inputs, common_ids)
    if common_ids:
        inputs["common_ids"] = {"scored": len(ids), "predictions": len(preds),
                                "references": len(refs)}
    return ScoringJob(ids, [preds[i] for i in ids], [refs[i] for i in ids], ds, source, inputs,
                      common_ids)


def evaluate(*, predictions: Mapping[str, str] | str | Path | None = None,
             references: Mapping[str, str] | str | Path | None = None,
             dataset: str | Dataset | None = None, split: str = "test",
             data_root: str | Path | None = None, convention: str = DEFAULT_CONVENTION,
             cleaning: str | None = None, metrics: Sequence[str] | None = None,
             out_dir: str | Path | None = None, labeler: str | None = "rules",
             labeler_kwargs: Mapping[str, object] | None = None,
             ce_conventions: Sequence[CEConvention] | None = None,
             bootstrap: int = 1000, confidence: float = 0.95,
             bootstrap_seed: int = 0, radgraph_model: str | Path | None = None,
             radgraph_model_type: str = "radgraph", columns: ColumnChoice = ColumnChoice(),
             order_from: str | Path | None = None, skip_empty_references: bool = False,
             common_ids: bool = False, job: "ScoringJob | None" = None) -> Evaluation:
    """Score predictions; write metrics.json + per-report statistics to ``out_dir`` if given.

    Texts: a :class:`ScoringJob` already read (``job``), else see :func:`scoring_job` (``predictions`` / ``references`` are mappings or files,
    ``dataset`` a registered name or a loaded :class:`Dataset` whose ``split`` gives the
    references). ``convention``: a registered scoring convention (:mod:`uarbench.conventions`)
    applied to both sides, ``cleaning`` its cleaner where it has one. ``labeler``: a registered
    labeler name for clinical efficacy (None: no CE), built with ``labeler_kwargs``;
    ``ce_conventions``: default :func:`default_ce_conventions`. ``bootstrap``: resamples for the
    percentile CI of every number (0: no CIs), at ``confidence``, seeded with
    ``bootstrap_seed``. ``radgraph_model``: a local RadGraph model folder (``radgraph`` package
    format) for RadGraph F1; without one RadGraph is reported as "unavailable: <reason>".
    """
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise UarbenchError(f"bootstrap must be a number of resamples >= 0, got {bootstrap!r}.",
                            fix="use 1000 (the default) or 0 for no confidence intervals.")
    if not 0 < confidence < 1:
        raise UarbenchError(f"confidence must be between 0 and 1, got {confidence!r}.",
                            fix="use 0.95 for a 95% interval.")
    if job is None:
        job = scoring_job(predictions=predictions, references=references, dataset=dataset,
                          split=split, data_root=data_root, columns=columns,
                          order_from=order_from, skip_empty_references=skip_empty_references,
                          common_ids=common_ids)
    conv = make_convention(convention, dataset=job.dataset, cleaning=cleaning)
    inputs = {**job.inputs, "convention": conv.name, "cleaning": getattr(conv, "cleaning", None)}
    if out_dir is not None:
        inputs = _relative_to(inputs, Path(out_dir))
    ids = job.ids
    signature_base = job_signature_base(conv, job)
    reason = conv.unavailable_reason()
    if reason is None:
        try:
            preds, ref_list = conv.prepare(job.predictions), conv.prepare_references(job.references)
        except MetricUnavailable as e:
            reason = f"unavailable: {e}"
    if reason is not None:   # no strings to score: every number says why
        results = _all_unavailable(reason, len(ids), metrics, labeler, ce_conventions,
                                   signature_base)
        evaluation = Evaluation(results, pd.DataFrame(index=pd.Index(ids, name="id")), inputs)
        if out_dir is not None:
            evaluation.write(out_dir)
        return evaluation
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
    intervals: dict[str, tuple[float, float]] = {}
    ci_sigs: dict[str, str] = {}
    if bootstrap > 0:
        with phase("bootstrap"):
            intervals, ci_sigs = _intervals(families, per_report, bootstrap, confidence,
                                            bootstrap_seed)
    evaluation = Evaluation(results, per_report, inputs, intervals, ci_sigs, labels)
    if out_dir is not None:
        evaluation.write(out_dir)
    return evaluation


def _relative_to(inputs: dict, folder: Path) -> dict:
    """Input files inside the output folder by their name there (a run's predictions.jsonl), so
    that metrics.json does not depend on where the folder is."""
    out = dict(inputs)
    for key in ("predictions", "references"):
        value = out.get(key)
        if isinstance(value, str):
            try:
                out[key] = str(Path(value).resolve().relative_to(folder.resolve()))
            except ValueError:
                pass
    return out


def input_notes(inputs: Mapping) -> list[str]:
    lines = []
    cols = inputs.get("columns")
    if cols:
        lines.append("read columns: " + ", ".join(f"{k} = {v}" for k, v in cols.items()))
    if inputs.get("dataset") and "references" not in inputs:
        lines.append(f"references: {inputs['dataset']} / {inputs.get('split')} (raw reports)"
                     + (f"; the file's column {inputs['unused_reference_column']!r} is not used "
                        "(drop --dataset, or pass the file as --references, to score against "
                        "it)" if inputs.get("unused_reference_column") else ""))
    skipped = inputs.get("skipped_empty_references")
    if skipped:
        lines.append(f"left out {len(skipped)} row(s) with an empty reference "
                     f"(--skip-empty-references): {', '.join(skipped[:5])}"
                     + (" ..." if len(skipped) > 5 else ""))
    common = inputs.get("common_ids")
    if common:
        lines.append(f"--common-ids: scored the {common['scored']} ids shared by "
                     f"{common['predictions']} predictions and {common['references']} references")
    return lines


def job_signature_base(conv: Convention, job: ScoringJob) -> dict[str, str]:
    """The signature fields every number of a job shares: convention, reference source, ids."""
    base = dict(conv.signature_fields())
    base["ref"] = job.reference_source
    if job.common_ids:
        base["ids"] = "common"
    return base


CONVENTIONS_FILE = "all_conventions.json"


@dataclass(frozen=True)
class ConventionTable:
    """Every NLG metric of one predictions file under every convention (``--all-conventions``)."""

    metrics: tuple[str, ...]
    conventions: tuple[str, ...]
    values: dict[str, dict[str, float | None]]      # convention -> metric -> value
    signatures: dict[str, dict[str, str]]           # convention -> metric -> signature
    unavailable: dict[str, str]                     # convention -> reason
    inputs: dict

    def spread(self, metric: str) -> float | None:
        """max - min of ``metric`` over the conventions that scored it."""
        vals = [v[metric] for v in self.values.values() if v.get(metric) is not None]
        return max(vals) - min(vals) if len(vals) > 1 else None

    def markdown(self, digits: int = 4) -> str:
        def f(x: float | None) -> str:
            return "—" if x is None else f"{x:.{digits}f}"
        rows = [[m, *(f(self.values[c].get(m)) for c in self.conventions), f(self.spread(m))]
                for m in self.metrics]
        text = tabulate(rows, headers=["metric", *self.conventions, "spread (max - min)"],
                        tablefmt="github", disable_numparse=True)
        n, i = self.inputs.get("n"), self.inputs
        source = (f"{i.get('dataset')} / {i.get('split')} (raw reports)"
                  if i.get("reference_source") == "dataset" else str(i.get("references")))
        notes = [f"n = {n} reports; references: {source}; predictions: {i.get('predictions')}."]
        notes += [f"{c}: {why}" for c, why in self.unavailable.items()]
        return text + "\n\n" + "\n".join(notes)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "metrics": list(self.metrics),
                "conventions": {c: {"values": self.values[c], "signatures": self.signatures[c]}
                                for c in self.conventions},
                "unavailable": self.unavailable,
                "spread": {m: self.spread(m) for m in self.metrics},
                "inputs": self.inputs, "provenance": provenance()}

    def to_json(self) -> str:
        import json
        return json.dumps(self.to_dict(), indent=2)

    def write(self, out_dir: str | Path) -> Path:
        return atomic_write_json(Path(out_dir) / CONVENTIONS_FILE, self.to_dict())


def convention_table(*, cleaning: str | None = None, metrics: Sequence[str] | None = None,
                     conventions: Sequence[str] | None = None, **job_args) -> ConventionTable:
    """Score one job's NLG metrics under each convention (default: every registered one).

    ``job_args``: :func:`scoring_job` arguments. A convention that cannot run here (``ptb``
    without Java, ``r2gen_compat`` without a dataset) is listed with its reason."""
    from uarbench.conventions import CONVENTIONS, ORDER
    job = scoring_job(**job_args)
    names = list(conventions or [*ORDER, *(n for n in CONVENTIONS.names() if n not in ORDER)])
    values: dict[str, dict[str, float | None]] = {}
    sigs: dict[str, dict[str, str]] = {}
    unavailable: dict[str, str] = {}
    metric_names: list[str] = []
    for name in names:
        try:
            conv = make_convention(name, dataset=job.dataset, cleaning=cleaning)
        except UarbenchError as e:
            unavailable[name] = f"unavailable: {e.problem}"
            continue
        reason = conv.unavailable_reason()
        if reason is None:
            try:
                preds = conv.prepare(job.predictions)
                refs = conv.prepare_references(job.references)
            except MetricUnavailable as e:
                reason = f"unavailable: {e}"
        if reason is not None:
            unavailable[name] = reason
            continue
        results, _ = score_nlg(preds, refs, families=metrics,
                               signature_base=job_signature_base(conv, job))
        values[name] = {m: r.value for m, r in results.items()}
        sigs[name] = {m: r.signature for m, r in results.items()}
        for why in dict.fromkeys(r.unavailable for r in results.values() if r.unavailable):
            missing = [m for m, r in results.items() if r.unavailable == why]
            unavailable[f"{name} ({', '.join(missing)})"] = why
        metric_names += [m for m in results if m not in metric_names]
    inputs = {**job.inputs, "n": len(job.ids), "reference_source": job.reference_source}
    return ConventionTable(tuple(metric_names), tuple(values), values, sigs, unavailable, inputs)


def _all_unavailable(reason: str, n: int, metrics: Sequence[str] | None, labeler: str | None,
                     ce_conventions: Sequence[CEConvention] | None,
                     signature_base: dict) -> dict[str, MetricResult]:
    from uarbench.metrics.nlg import NLG_FAMILIES
    from uarbench.metrics.radgraph import RadGraphAnnotator, RadGraphF1
    results: dict[str, MetricResult] = {}
    families = [NLG_METRICS.get(f)() for f in (metrics or NLG_FAMILIES)]
    families.append(RadGraphF1(RadGraphAnnotator(None, "radgraph")))
    for family in families:
        for name in family.names:
            results[name] = MetricResult(name, None, family.signature(name, n, signature_base),
                                         family.higher_is_better, unavailable=reason)
    if labeler is not None:
        results.update(unavailable_ce(reason, n, labeler_version=labeler,
                                      conventions=ce_conventions, signature_base=signature_base))
    return results


def _scored_nlg_families(per_report: pd.DataFrame) -> list[MetricFamily]:
    """The NLG families whose statistics are in ``per_report`` (available ones)."""
    names = dict.fromkeys(c.split(".", 1)[0] for c in per_report.columns)
    return [NLG_METRICS.get(name)() for name in names]


def _make_labeler(name: str, kwargs: Mapping[str, object] | None) -> tuple[Labeler | None, str]:
    """The labeler, or None and the reason it is missing (built-ins are lazy registry entries:
    a module that cannot be imported here makes its labeler unavailable, not a crash)."""
    if name not in LABELERS:
        known = ", ".join(LABELERS.names()) or "none"
        return None, f"unavailable: labeler {name!r} is not registered (known: {known})"
    try:
        cls = LABELERS.get(name)
    except ImportError as e:
        return None, f"unavailable: labeler {name!r}: its module cannot be imported ({e})"
    labeler = cls(**dict(kwargs or {}))
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
        with phase("labelling"):
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
    from uarbench.metrics.radgraph import RadGraphAnnotator, RadGraphF1
    family = RadGraphF1(RadGraphAnnotator(model, model_type))
    n = len(preds)
    reason = family.unavailable_reason()
    stats = None
    if reason is None:
        try:
            with phase("metric:RadGraph"):
                stats = family.stats(preds, refs)  # (n, 4)
        except MetricUnavailable as e:
            reason = f"unavailable: {e}"
    if stats is None:
        reason = reason if reason.startswith("unavailable") else f"unavailable: {reason}"
        return {name: MetricResult(name, None, family.signature(name, n, signature_base),
                                   unavailable=reason) for name in family.names}, None, family
    values = family.score_from_stats(stats)
    results = {name: MetricResult(name, values[name], family.signature(name, n, signature_base))
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


def _paired_ids(preds: Mapping[str, str], refs: Mapping[str, str], inputs: dict,
                common_ids: bool) -> list[str]:
    """The study ids to score, in reference order: every reference id must have a prediction and
    every prediction a reference, unless ``common_ids`` (then the ids both have)."""
    missing = [i for i in refs if i not in preds]
    extra = [i for i in preds if i not in refs]
    if common_ids:
        ids = [i for i in refs if i in preds]
        if not ids:
            raise UarbenchError("predictions and references have no study id in common.",
                                file=inputs.get("predictions"),
                                fix="check --dataset / --split and the id column (--id-col).")
        return ids
    if missing or extra:
        refs_from = inputs.get("references") or (
            f"{inputs.get('dataset')} / {inputs.get('split')}" if inputs.get("dataset") else None)
        parts = [f"{len(preds)} prediction ids, {len(refs)} reference ids"
                 + (f" (references: {refs_from})" if refs_from else "")
                 + f", {len(refs) - len(missing)} in common"]
        if missing:
            parts.append(f"{len(missing)} reference id(s) without a prediction (first: "
                         f"{', '.join(missing[:5])})")
        if extra:
            parts.append(f"{len(extra)} prediction id(s) without a reference (first: "
                         f"{', '.join(extra[:5])})")
        raise UarbenchError("; ".join(parts) + ".", file=inputs.get("predictions"),
                            fix="predict every study of the split (check --dataset / --split / "
                                "--id-col), or pass --common-ids to score the ids both have "
                                "(the signature then says ids:common).")
    return list(refs)
