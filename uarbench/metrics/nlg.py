"""The NLG metrics of every report-generation paper table: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D.

All four families give the same numbers as pycocoevalcap 1.2 called with
``gts={i: [reference]}, res={i: [prediction]}`` (no PTB tokenizer); BLEU, ROUGE-L and CIDEr-D
are fast re-implementations tested against it, METEOR runs pycocoevalcap's own jar. Each family
also returns its per-report sufficient statistics so that significance tests can resample rows
without re-tokenising (see ``uarbench.metrics.base``).
"""
from __future__ import annotations

import importlib.metadata
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from uarbench.metrics import bleu, cider, meteor, rouge  # noqa: F401  (register the families)
from uarbench.metrics.base import NLG_METRICS, MetricResult, MetricUnavailable
from uarbench.timing import phase

NLG_FAMILIES = ("BLEU", "METEOR", "ROUGE-L", "CIDEr")


def validate_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Raise ValueError unless both are equally long, non-empty sequences of strings."""
    for what, seq in (("predictions", predictions), ("references", references)):
        if isinstance(seq, (str, bytes)):
            raise ValueError(f"{what} must be a list of strings, one per report, not a single "
                             f"{type(seq).__name__}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references: "
                         f"they must pair up one to one (one reference per study)")
    if len(predictions) == 0:
        raise ValueError("no reports to score: predictions and references are empty")
    for what, seq in (("prediction", predictions), ("reference", references)):
        for i, text in enumerate(seq):
            if not isinstance(text, str):
                raise ValueError(f"{what} {i} is a {type(text).__name__}, not a string")


def score_nlg(predictions: Sequence[str], references: Sequence[str], *,
              families: Iterable[str] | None = None,
              signature_base: dict) -> tuple[dict[str, MetricResult], pd.DataFrame]:
    """Corpus scores and per-report statistics of the NLG metric families.

    Returns one :class:`MetricResult` per metric name (BLEU-1..4, METEOR, ROUGE-L, CIDEr), with
    ``value=None`` and the reason for a family that cannot run here, and a DataFrame with one row
    per report and one column per statistic, named ``<family>.<statistic>``.
    """
    validate_pairs(predictions, references)
    predictions, references = list(predictions), list(references)
    n = len(predictions)
    results: dict[str, MetricResult] = {}
    columns: dict[str, np.ndarray] = {}
    if isinstance(families, str):
        families = (families,)
    for fam_name in (NLG_FAMILIES if families is None else tuple(families)):
        family = NLG_METRICS.get(fam_name)()
        reason = family.unavailable_reason()
        if reason is None:
            try:
                with phase(f"metric:{family.family}"):
                    stats = family.stats(predictions, references)
                    scores = family.score_from_stats(stats)
            except MetricUnavailable as e:  # e.g. the METEOR JVM died: keep the other numbers
                reason = f"unavailable: {e}"
        if reason is not None:
            for name in family.names:
                results[name] = MetricResult(name, None, family.signature(name, n, signature_base),
                                             family.higher_is_better, unavailable=reason)
            continue
        for name in family.names:
            results[name] = MetricResult(name, float(scores[name]),
                                         family.signature(name, n, signature_base),
                                         family.higher_is_better)
        for j, stat in enumerate(family.stat_names):
            columns[f"{family.family}.{stat}"] = stats[:, j]
    return results, pd.DataFrame(columns, index=pd.RangeIndex(n))


def metric_versions() -> dict[str, str]:
    """Versions of what produces the NLG numbers, for ``uarbench --version``."""
    try:
        coco = importlib.metadata.version("pycocoevalcap")
    except importlib.metadata.PackageNotFoundError:
        coco = "not installed"
    return {
        "pycocoevalcap": coco,
        "meteor": "1.5" if meteor.jar_path() is not None else f"not found ({meteor.JAR_NAME})",
        "java": meteor.java_version(),
    }
