"""Corpus BLEU-1..4 (Papineni et al., ACL 2002) exactly as pycocoevalcap 1.2 computes it.

pycocoevalcap's ``BleuScorer.compute_score(option="closest")`` sums clipped n-gram matches,
n-gram guesses and lengths over the corpus, then multiplies the modified precisions with two
smoothing constants (``small`` in the denominators, ``tiny`` in the numerators) and applies the
brevity penalty to the corpus lengths. With one reference per report the "closest" reference
length is that reference's length. The per-report statistics here are those sums' terms, so a
score from any resample of rows equals pycocoevalcap run on those reports.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from uarbench.metrics.base import NLG_METRICS, MetricFamily
from uarbench.metrics.ngrams import count_ngrams

MAX_N = 4
_SMALL = 1e-9   # pycocoevalcap: added to every denominator
_TINY = 1e-15   # pycocoevalcap: added to every numerator, "so that if guess is 0 still return 0"


@NLG_METRICS.register("BLEU")
class Bleu(MetricFamily):
    family = "BLEU"
    names = tuple(f"BLEU-{k}" for k in range(1, MAX_N + 1))
    stat_names = ("testlen", "reflen",
                  *(f"guess_{k}" for k in range(1, MAX_N + 1)),
                  *(f"correct_{k}" for k in range(1, MAX_N + 1)))
    impl = "uarbench-fast=pycocoevalcap-1.2"

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        counts = count_ngrams(predictions, references, MAX_N)
        n = counts.n_reports
        out = np.zeros((n, len(self.stat_names)), dtype=np.float64)  # (n, 2 + 2 * MAX_N)
        out[:, 0] = counts.hyp_len
        out[:, 1] = counts.ref_len
        for k in range(1, MAX_N + 1):
            out[:, 1 + k] = np.maximum(0, counts.hyp_len - k + 1)
            o = counts.orders[k - 1]
            clipped = np.minimum(o.hyp_count, o.hyp_ref_count)
            # integer counts: any summation order is exact
            out[:, 1 + MAX_N + k] = np.bincount(o.hyp_report, weights=clipped, minlength=n)
        return out

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[1] != len(self.stat_names) or len(stats) == 0:
            raise ValueError(f"BLEU needs a non-empty (n, {len(self.stat_names)}) statistics "
                             f"matrix, got shape {stats.shape}")
        scores = self.score_from_sums(stats.sum(axis=0)[None, :], len(stats))
        return {name: float(v[0]) for name, v in scores.items()}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """BleuScorer.compute_score's corpus formula (the only copy of it here) on summed
        clipped matches, guesses and lengths, for R row sets at once: the same IEEE operations
        in the same order as pycocoevalcap's Python floats (``math.exp``, not numpy's, for the
        brevity penalty), so a corpus score is bit-identical to pycocoevalcap's."""
        tot = np.rint(np.atleast_2d(sums))   # integer counts, as pycocoevalcap sums ints
        testlen, reflen = tot[:, 0], tot[:, 1]
        guess, correct = tot[:, 2:2 + MAX_N], tot[:, 2 + MAX_N:2 + 2 * MAX_N]
        bleu = np.ones(len(tot))
        out = []
        for k in range(MAX_N):
            bleu = bleu * ((correct[:, k] + _TINY) / (guess[:, k] + _SMALL))
            out.append(bleu ** (1.0 / (k + 1)))
        ratio = (testlen + _TINY) / (reflen + _SMALL)
        # math.exp once per distinct ratio (resamples repeat a few thousand length sums)
        uniq, where = np.unique(ratio, return_inverse=True)
        penalty = np.array([math.exp(1 - 1 / r) if r < 1 else 1.0 for r in uniq.tolist()])
        return {name: b * penalty[where.reshape(-1)] for name, b in zip(self.names, out)}
