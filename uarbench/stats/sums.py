"""Scores of many resamples at once, from column sums of per-report statistics.

A resample (bootstrap draw or randomization trial) changes which rows of the statistics matrix
are scored. For every family in uarbench the score of a set of rows is a function of the column
sums of those rows and their number, so thousands of resamples are scored from one matrix
product (counts (B, n) @ stats (n, k)) plus a vectorised ``score_from_sums(sums (R, k), n)``.

Per family (verified against ``score_from_stats`` on the resampled rows in tests/stats):
- a family with a ``score_from_sums(sums, n)`` method uses it (CE, :mod:`uarbench.metrics.ce`);
- BLEU: summed clipped matches, guesses and lengths -> pycocoevalcap's formula, vectorised;
- ROUGE-L, CIDEr: means of per-report scores -> column sum / n. CIDEr's per-report scores use
  document frequencies of the full test set's references, so a resample keeps those df fixed
  (signature ``df:full-test``); recomputing df per resample is not done;
- METEOR: the jar's corpus score aggregates summed statistics, so each row of sums, sent as one
  segment of one ``EVAL`` request, scores one resample;
- any other family: when its score is invariant to collapsing the rows into one row of sums
  (checked on the data), ``score_from_stats`` on each 1-row sum; else ``None`` and the caller
  recomputes ``score_from_stats`` on the resampled rows (exact, slow).

Hand-written: no library scores resamples from sufficient statistics for these metrics.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from uarbench.metrics.base import MetricFamily
from uarbench.registry import Registry

SumScorer = Callable[[MetricFamily, np.ndarray, int], dict[str, np.ndarray]]
SUM_SCORERS: Registry[SumScorer] = Registry("sum scorer")

_METEOR_ROWS = 2000   # resamples per EVAL request to the METEOR jar


@SUM_SCORERS.register("BLEU")
def _bleu(family: MetricFamily, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
    from uarbench.metrics.bleu import _SMALL, _TINY, MAX_N
    tot = np.rint(sums)                               # integer counts, as pycocoevalcap sums ints
    testlen, reflen = tot[:, 0], tot[:, 1]
    guess, correct = tot[:, 2:2 + MAX_N], tot[:, 2 + MAX_N:2 + 2 * MAX_N]
    bleu = np.ones(len(tot))
    out = []
    for k in range(MAX_N):                            # same order of operations as BleuScorer
        bleu = bleu * ((correct[:, k] + _TINY) / (guess[:, k] + _SMALL))
        out.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return {name: b * penalty for name, b in zip(family.names, out)}


def _mean_of_first(family: MetricFamily, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
    return {family.names[0]: sums[:, 0] / n}


SUM_SCORERS.register("ROUGE-L")(_mean_of_first)   # column 0: the report's ROUGE-L F
SUM_SCORERS.register("CIDEr")(_mean_of_first)     # column 0: the report's CIDEr-D, df fixed


@SUM_SCORERS.register("METEOR")
def _meteor(family: MetricFamily, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
    parts = [family.segment_and_corpus(sums[lo:lo + _METEOR_ROWS])[0]  # type: ignore[attr-defined]
             for lo in range(0, len(sums), _METEOR_ROWS)]
    return {family.names[0]: np.concatenate(parts)}


def _one_row_sums(family: MetricFamily, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
    rows = [family.score_from_stats(s[None, :]) for s in sums]
    return {name: np.array([r[name] for r in rows], dtype=np.float64) for name in family.names}


def sum_scorer(family: MetricFamily, stats: np.ndarray) -> SumScorer | None:
    """How to score resamples of ``family`` from sums, or None when it cannot be done."""
    method = getattr(family, "score_from_sums", None)
    if callable(method):
        return lambda fam, sums, n: method(sums, n)
    if family.family in SUM_SCORERS:
        return SUM_SCORERS.get(family.family)
    full = family.score_from_stats(stats)
    collapsed = family.score_from_stats(stats.sum(axis=0, keepdims=True))
    same = all(np.isclose(full[k], collapsed[k], rtol=1e-12, atol=1e-12) for k in family.names)
    return _one_row_sums if same else None


def resampling_fields(family: MetricFamily) -> tuple[tuple[str, str], ...]:
    """Signature fields saying how a resample is scored (CIDEr: df from the full test set)."""
    if any(k == "df" for k, _ in family.signature_fields):
        return (("df", "full-test"),)
    return ()
