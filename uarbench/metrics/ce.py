"""Clinical efficacy (CE): precision, recall and F1 of the CheXpert labels of generated reports
against the labels of their reference reports, under an explicit convention.

Hand-written arithmetic, because the library that defines it (scikit-learn's
``precision_recall_fscore_support``) takes label arrays, not per-report sufficient statistics, so
it cannot score thousands of resamples at once. The numbers equal scikit-learn's with
``zero_division=0`` (tested against it on random labels and on resampled rows):

- micro: P = sum TP / sum(TP + FP), R = sum TP / sum(TP + FN), F1 = 2 TP / (2 TP + FP + FN),
  all summed over reports and observations;
- macro: the same per observation, then the plain mean over the observations;
- weighted: the per-observation values averaged with weights = support (TP + FN); when no
  observation has a positive reference, the plain mean (as scikit-learn's ``_nanaverage``);
- example (scikit-learn's ``samples``): the same per report over its observations, then the
  mean over reports.
A division by zero gives 0 (scikit-learn's ``zero_division=0``).

No single convention exists in the literature (see docs/EVALUATION.md), so each is a
:class:`CEConvention` (label set, what uncertain and blank labels count as, averaging) recorded
in the signature, e.g. ``CE-F1|labeler:rules-v2(phrases:2,hedges:probable)|unc:0|blank:0|labels:14|avg:macro|n:590|...``.

Per-report statistics (one row per report, shared by every averaging of one binarisation): TP,
FP, FN, TN of each observation of the label set after binarisation, then the report's own
precision, recall and F1 (needed for example-based averaging). Every score is a function of the
column sums and the number of rows (:meth:`ClinicalEfficacy.score_from_sums`), so any subset or
resample of rows is scored exactly (of the sums of the columns the averaging reads:
:meth:`ClinicalEfficacy.summable_stats`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from uarbench.data.chexpert import FIVE, OBSERVATIONS
from uarbench.labeling.base import Labeler
from uarbench.metrics.base import MetricFamily, MetricResult
from uarbench.metrics.signature import Signature

AVERAGES = ("micro", "macro", "weighted", "example")
STAT_KINDS = ("tp", "fp", "fn", "tn")
EXAMPLE_STATS = ("example.p", "example.r", "example.f1")
IMPL = "uarbench=sklearn-prf(zero_division:0)"


def _slug(observation: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", observation.lower()).strip("_")


@dataclass(frozen=True)
class CEConvention:
    """How label vectors become one CE number; every field goes into the signature.

    ``labels``: 14 (all CheXpert observations) or 5 (:data:`FIVE`); ``uncertain``: what an
    uncertain (-1) label counts as, 0 (R2Gen) or 1 (ifcc); ``blank``: what a blank (not
    mentioned) label counts as, 0; ``average``: micro, macro, weighted or example.
    """

    labels: int = 14
    uncertain: int = 0
    blank: int = 0
    average: str = "macro"

    def __post_init__(self) -> None:
        if self.labels not in (14, 5):
            raise ValueError(f"CE label set must be 14 or 5 observations, got {self.labels!r}")
        if self.uncertain not in (0, 1):
            raise ValueError(f"uncertain labels map to 0 or 1, got {self.uncertain!r}")
        if self.blank != 0:
            raise ValueError(f"blank (not mentioned) labels map to 0, got {self.blank!r}")
        if self.average not in AVERAGES:
            raise ValueError(f"CE average must be one of {', '.join(AVERAGES)}, "
                             f"got {self.average!r}")

    @property
    def observations(self) -> tuple[str, ...]:
        """The label set, in OBSERVATIONS order."""
        keep = set(OBSERVATIONS if self.labels == 14 else FIVE)
        return tuple(o for o in OBSERVATIONS if o in keep)

    @property
    def key(self) -> str:
        """Short name used in metric names, e.g. ``macro-14-unc0``."""
        return f"{self.average}-{self.labels}-unc{self.uncertain}"

    @property
    def binarisation(self) -> str:
        """What the per-report statistics depend on (not the averaging), e.g. ``14-unc0-blank0``."""
        return f"{self.labels}-unc{self.uncertain}-blank{self.blank}"

    @classmethod
    def from_key(cls, key: str) -> "CEConvention":
        """Inverse of :attr:`key`: ``"macro-14-unc0"`` -> CEConvention(14, 0, 0, "macro")."""
        m = re.fullmatch(r"([a-z]+)-(\d+)-unc(\d)", key)
        if m is None:
            raise ValueError(f"not a CE convention key: {key!r} (expected e.g. 'macro-14-unc0')")
        return cls(labels=int(m[2]), uncertain=int(m[3]), average=m[1])

    def signature_fields(self) -> tuple[tuple[str, str], ...]:
        return (("unc", str(self.uncertain)), ("blank", str(self.blank)),
                ("labels", str(self.labels)), ("avg", self.average))


def default_ce_conventions() -> tuple[CEConvention, ...]:
    """The default report: R2Gen style, ifcc style (5 and 14) and example-based 14."""
    return (CEConvention(labels=14, uncertain=0, average="macro"),     # R2Gen / R2GenCMN paper
            CEConvention(labels=5, uncertain=1, average="micro"),      # ifcc, RadEval
            CEConvention(labels=14, uncertain=1, average="micro"),     # ifcc, RadEval
            CEConvention(labels=14, uncertain=0, average="example"))   # RGRG, cvt2distilgpt2


def check_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """Validate an (n, 14) label matrix of 1 / 0 / -1 / NaN; returns it as float64."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[1] != len(OBSERVATIONS):
        raise ValueError(f"{what} labels must be an (n_reports, {len(OBSERVATIONS)}) matrix with "
                         f"columns in OBSERVATIONS order, got shape {labels.shape}")
    bad = ~np.isnan(labels) & ~np.isin(labels, (1.0, 0.0, -1.0))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what} labels: report {r}, {OBSERVATIONS[c]!r} is "
                         f"{float(labels[r, c])!r}; allowed are 1 (positive), 0 (negative), "
                         f"-1 (uncertain), NaN (blank)")
    return labels


def binarize(labels: np.ndarray, convention: CEConvention) -> np.ndarray:
    """(n, 14) labels -> (n, L) 0/1 int matrix over the convention's label set."""
    labels = check_labels(labels, "CE")
    cols = [OBSERVATIONS.index(o) for o in convention.observations]
    x = labels[:, cols]                                               # (n, L)
    out = np.where(np.isnan(x), convention.blank, x)
    out = np.where(out == -1, convention.uncertain, out)
    return out.astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


class ClinicalEfficacy(MetricFamily):
    """CE-P, CE-R, CE-F1 under one :class:`CEConvention`.

    ``stats`` labels texts with ``labeler`` (given at construction); ``stats_from_labels`` takes
    label matrices directly.
    """

    family = "CE"
    impl = IMPL

    def __init__(self, convention: CEConvention | None = None,
                 labeler: Labeler | None = None) -> None:
        self.convention = convention or CEConvention()
        self.labeler = labeler
        slugs = [_slug(o) for o in self.convention.observations]
        self.stat_names = tuple(f"{s}.{kind}" for kind in STAT_KINDS for s in slugs) + EXAMPLE_STATS
        key = self.convention.key
        self.names = (f"CE-P[{key}]", f"CE-R[{key}]", f"CE-F1[{key}]")
        self.signature_fields = self.convention.signature_fields()

    @property
    def n_labels(self) -> int:
        return len(self.convention.observations)

    def unavailable_reason(self) -> str | None:
        if self.labeler is None:
            return None
        return self.labeler.unavailable_reason()

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        if self.labeler is None:
            raise ValueError("CE from text needs a labeler: ClinicalEfficacy(convention, labeler)"
                             " (or call stats_from_labels with label matrices)")
        return self.stats_from_labels(self.labeler.label(list(predictions)),
                                      self.labeler.label(list(references)))

    def stats_from_labels(self, pred_labels: np.ndarray, ref_labels: np.ndarray) -> np.ndarray:
        """(n, 4 L + 3) per-report statistics from two (n, 14) label matrices."""
        pred = binarize(check_labels(pred_labels, "prediction"), self.convention)   # (n, L)
        ref = binarize(check_labels(ref_labels, "reference"), self.convention)      # (n, L)
        if pred.shape != ref.shape:
            raise ValueError(f"{len(pred)} prediction label rows but {len(ref)} reference rows")
        tp, fp = pred & ref, pred & (1 - ref)
        fn, tn = (1 - pred) & ref, (1 - pred) & (1 - ref)
        # the report's own precision / recall / F1 over its observations (example-based)
        t, p_, r_ = tp.sum(1), pred.sum(1), ref.sum(1)
        example = np.column_stack([_divide(t, p_), _divide(t, r_), _divide(2 * t, r_ + p_)])
        return np.hstack([tp, fp, fn, tn, example]).astype(np.float64)   # (n, 4 L + 3)

    def summable_stats(self, stats: np.ndarray) -> np.ndarray:
        """What this convention's averaging reads of the statistics (fewer columns to resample):
        micro the report's TP, FP, FN summed over the observations, example its own P, R, F1,
        macro and weighted the per-observation TP, FP, FN (TN is never needed). Counts are
        integers, so regrouping their sums changes no bit."""
        stats = np.asarray(stats, dtype=np.float64)
        L = self.n_labels
        avg = self.convention.average
        if avg == "example":
            return stats[:, 4 * L:4 * L + 3]
        if avg == "micro":
            return np.column_stack([stats[:, j * L:(j + 1) * L].sum(axis=1) for j in range(3)])
        return stats[:, :3 * L]

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """Scores of R row sets from the column sums (R, k') of their :meth:`summable_stats`
        rows and row count n: (R,) each."""
        sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
        L = self.n_labels
        avg = self.convention.average
        if avg == "example":
            p, r, f = (sums[:, j] / n for j in range(3))
        elif avg == "micro":
            t, pred, true = sums[:, 0], sums[:, 0] + sums[:, 1], sums[:, 0] + sums[:, 2]
            p, r, f = _divide(t, pred), _divide(t, true), _divide(2 * t, true + pred)
        else:
            tp, fp, fn = sums[:, :L], sums[:, L:2 * L], sums[:, 2 * L:3 * L]   # (R, L) each
            pc, rc = _divide(tp, tp + fp), _divide(tp, tp + fn)              # (R, L)
            fc = _divide(2 * tp, (tp + fn) + (tp + fp))
            if avg == "macro":
                p, r, f = pc.mean(1), rc.mean(1), fc.mean(1)
            else:  # weighted by support; all-zero support -> plain mean (sklearn)
                w = tp + fn
                tot = w.sum(1, keepdims=True)
                w = np.where(tot > 0, w, 1.0)
                p, r, f = ((x * w).sum(1) / w.sum(1) for x in (pc, rc, fc))
        return dict(zip(self.names, (p, r, f)))

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[1] != len(self.stat_names) or len(stats) == 0:
            raise ValueError(f"CE needs a non-empty (n, {len(self.stat_names)}) statistics "
                             f"matrix, got shape {stats.shape}")
        scores = self.score_from_sums(self.summable_stats(stats).sum(axis=0)[None, :],
                                      len(stats))
        return {k: float(v[0]) for k, v in scores.items()}

    def signature(self, name: str, n: int, base, labeler: str = "") -> str:
        """``CE-F1|labeler:...|unc:...|...``: the labeler and the CE convention first."""
        metric = name.split("[", 1)[0]                                    # "CE-F1"
        fields = (("labeler", labeler), *self.signature_fields,
                  *((str(k), str(v)) for k, v in base.items()),
                  ("n", str(n)), ("impl", self.impl), ("version", self.version))
        return str(Signature(metric, fields))

    def columns(self) -> list[str]:
        """Column names of this family's statistics in per_report_stats.csv."""
        return [f"CE.{self.convention.binarisation}.{s}" for s in self.stat_names]


def ce_family_of(metric: str) -> ClinicalEfficacy | None:
    """The family of a CE metric name such as ``CE-F1[macro-14-unc0]``; None for other names."""
    m = re.fullmatch(r"CE-(?:P|R|F1)\[(.+)\]", metric)
    return None if m is None else ClinicalEfficacy(CEConvention.from_key(m[1]))


def ce_signature(family: ClinicalEfficacy, name: str, n: int, *, labeler_version: str,
                 signature_base: dict) -> str:
    return family.signature(name, n, signature_base, labeler=labeler_version)


def ce_families(conventions: Sequence[CEConvention] | None = None,
                labeler: Labeler | None = None) -> list[ClinicalEfficacy]:
    convs = default_ce_conventions() if conventions is None else tuple(conventions)
    if len({c.key for c in convs}) != len(convs):
        raise ValueError("CE conventions must be distinct")
    return [ClinicalEfficacy(c, labeler) for c in convs]


def score_ce(pred_labels: np.ndarray, ref_labels: np.ndarray, *, labeler_version: str,
             conventions: Sequence[CEConvention] | None = None,
             signature_base: dict) -> tuple[dict[str, MetricResult], pd.DataFrame]:
    """CE scores under each convention and the per-report statistics, as ``score_nlg`` does.

    ``pred_labels`` / ``ref_labels``: (n, 14) label matrices (columns OBSERVATIONS). Returns one
    :class:`MetricResult` per metric name (``CE-P[key]``, ``CE-R[key]``, ``CE-F1[key]`` per
    convention) and a DataFrame with one row per report and columns
    ``CE.<binarisation>.<statistic>`` (conventions sharing a binarisation share columns).
    """
    pred = check_labels(pred_labels, "prediction")
    ref = check_labels(ref_labels, "reference")
    if len(pred) != len(ref):
        raise ValueError(f"{len(pred)} prediction label rows but {len(ref)} reference rows")
    if len(pred) == 0:
        raise ValueError("no reports to score: the label matrices are empty")
    n = len(pred)
    results: dict[str, MetricResult] = {}
    columns: dict[str, np.ndarray] = {}
    for family in ce_families(conventions):
        stats = family.stats_from_labels(pred, ref)
        for name, value in family.score_from_stats(stats).items():
            results[name] = MetricResult(name, value, ce_signature(
                family, name, n, labeler_version=labeler_version, signature_base=signature_base))
        for j, col in enumerate(family.columns()):
            columns[col] = stats[:, j]
    return results, pd.DataFrame(columns, index=pd.RangeIndex(n))


def unavailable_ce(reason: str, n: int, *, labeler_version: str,
                   conventions: Sequence[CEConvention] | None = None,
                   signature_base: dict) -> dict[str, MetricResult]:
    """CE results with ``value=None`` and the reason (labeler missing or not runnable)."""
    return {name: MetricResult(name, None, ce_signature(family, name, n,
                                                        labeler_version=labeler_version,
                                                        signature_base=signature_base),
                               unavailable=reason)
            for family in ce_families(conventions) for name in family.names}


def stats_from_frame(family: ClinicalEfficacy, per_report: pd.DataFrame) -> np.ndarray:
    """The family's (n, k) statistics matrix back from a per-report DataFrame."""
    return per_report[family.columns()].to_numpy(dtype=np.float64)
