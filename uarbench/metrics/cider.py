"""CIDEr-D (Vedantam et al., CVPR 2015) exactly as pycocoevalcap 1.2's ``CiderScorer`` computes it.

Per report and n-gram order (1..4): tf-idf vectors with weight ``tf * (log N - log max(1, df))``
(df = number of references of the scored corpus containing the n-gram, N = number of reports),
the clipped dot product ``sum min(h, r) * r`` divided by both norms, times the Gaussian length
penalty ``e ** (-(delta ** 2) / (2 * 6 ** 2))``; the mean over the four orders, times 10, is the
report's CIDEr and the corpus score is the mean over reports.

pycocoevalcap quirk reproduced on purpose: the length used in ``delta`` is the sum of the
*bigram* term frequencies (``if n == 1: length += term_freq`` with ``n = len(ngram) - 1``),
i.e. ``max(0, words - 1)``, not the number of words.

Every floating-point operation is done in pycocoevalcap's order (sums in the dict order of the
n-grams, ``pow(x, 2)`` through libm like numpy's scalar power, ``np.e ** x`` rather than
``exp``), so the numbers are bit-identical, not merely close.

Resampling: the statistic is the per-report CIDEr, whose document frequencies come from the
full reference set given to ``stats``; the score of a resample is the mean of its rows, i.e. df
stays fixed at the full-set value (signature ``df:corpus``). pycocoevalcap run on a subset would
recompute df (and log N) from that subset instead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from uarbench.metrics.base import NLG_METRICS, MetricFamily
from uarbench.metrics.ngrams import count_ngrams

MAX_N = 4
SIGMA = 6.0


def _log_df(df: np.ndarray) -> np.ndarray:
    """``np.log(max(1.0, df))`` evaluated per distinct value exactly as pycocoevalcap does."""
    values, inverse = np.unique(df, return_inverse=True)
    logs = np.array([np.log(max(1.0, float(v))) for v in values.tolist()], dtype=np.float64)
    return logs[inverse]


def _square(x: np.ndarray) -> np.ndarray:
    # pycocoevalcap: pow(np.float64, 2) -> libm pow(), which differs from x * x in the last bit
    # for ~0.1% of values; np.float_power calls the same libm pow.
    return np.float_power(x, 2.0)


def _sum_by_report(report: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    # bincount adds in input order, starting from 0.0 (float even when there is no input)
    return np.bincount(report, weights=values, minlength=n).astype(np.float64, copy=False)


def cider_per_report(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """(n,) CIDEr-D of each report, document frequencies from all of ``references``."""
    counts = count_ngrams(predictions, references, MAX_N)
    n = counts.n_reports
    ref_len = np.log(float(n))                       # pycocoevalcap's self.ref_len
    # Gaussian length penalty on delta of the bigram counts (the quirk, see module docstring)
    delta = np.maximum(0, counts.hyp_len - 1) - np.maximum(0, counts.ref_len - 1)
    d_values, d_inverse = np.unique(delta, return_inverse=True)
    penalty = np.array([np.e ** (-(float(d) ** 2) / (2 * SIGMA ** 2)) for d in d_values.tolist()],
                       dtype=np.float64)[d_inverse]
    per_order = np.zeros((n, MAX_N), dtype=np.float64)            # (n, orders)
    for k, o in enumerate(counts.orders):
        idf_h = ref_len - _log_df(o.hyp_df)
        w_h = o.hyp_count.astype(np.float64) * idf_h               # hypothesis tf-idf
        w_hr = o.hyp_ref_count.astype(np.float64) * idf_h          # reference weight, same n-gram
        w_r = o.ref_count.astype(np.float64) * (ref_len - _log_df(o.ref_df))
        # sums in input order, which is pycocoevalcap's dict order
        norm_h = np.sqrt(_sum_by_report(o.hyp_report, _square(w_h), n))
        norm_r = np.sqrt(_sum_by_report(o.ref_report, _square(w_r), n))
        val = _sum_by_report(o.hyp_report, np.minimum(w_h, w_hr) * w_hr, n)
        both = (norm_h != 0) & (norm_r != 0)
        val[both] /= norm_h[both] * norm_r[both]
        per_order[:, k] = val * penalty
    # np.mean over the 4 orders (sequential sum, same as pycocoevalcap's np.mean(score)),
    # "/= len(refs)" with one reference is exact, then * 10
    return np.mean(per_order, axis=1) * 10.0


@NLG_METRICS.register("CIDEr")
class CiderD(MetricFamily):
    family = "CIDEr"
    names = ("CIDEr",)
    stat_names = ("cider",)
    impl = "uarbench-fast=pycocoevalcap-1.2"
    signature_fields = (("df", "corpus"),)

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        # pycocoevalcap fails (max() of an empty df table) when no reference has a word; here
        # every report then scores 0.0, since no n-gram can match.
        return cider_per_report(predictions, references)[:, None]

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[1] != 1 or len(stats) == 0:
            raise ValueError(f"CIDEr needs a non-empty (n, 1) statistics matrix, "
                             f"got shape {stats.shape}")
        return {"CIDEr": float(np.mean(np.ascontiguousarray(stats[:, 0])))}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """The mean of per-report CIDEr-D over each row set, with the document frequencies of
        the full test set (recomputing them per resample is not done: ``df:full-test``)."""
        return {"CIDEr": np.atleast_2d(sums)[:, 0] / n}

    def resampling_fields(self) -> tuple[tuple[str, str], ...]:
        return (("df", "full-test"),)
