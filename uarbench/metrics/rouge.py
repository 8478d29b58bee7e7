"""ROUGE-L (Lin, 2004) exactly as pycocoevalcap 1.2's ``Rouge`` computes it.

Per report: tokens are ``text.split(" ")`` (so ``""`` is one empty token and double spaces make
empty tokens, as in pycocoevalcap), LCS length by dynamic programming in pycocoevalcap, here by
the bit-parallel algorithm of Allison & Dix (1986) / Hyyrö (2004), then
``P = lcs / len(c)``, ``R = lcs / len(r)``, ``F = (1 + b^2) P R / (R + b^2 P)`` with b = 1.2
(0 when P or R is 0). The corpus score is ``np.mean`` of the per-report F.

Bit-parallel LCS: for the shorter-or-equal side ``a`` (m <= 63 tokens) keep a bit vector S of
m bits, all ones at the start; for each token c of the other side, with M = the positions of c
in ``a``: ``U = S & M; S = (S + U) | (S - U)``. The LCS length is the number of zero bits of S.
All pairs with a side of <= 63 tokens (and the other <= 1024) run together as numpy uint64
vectors, one step per token of the other side; the remaining pairs use Python integers as
unbounded bit vectors.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from uarbench.metrics.base import NLG_METRICS, MetricFamily
from uarbench.metrics.ngrams import tokenize

BETA = 1.2
_WORD = 63      # longest bit side handled with uint64 bit vectors
_MAX_STEPS = 1024  # longer other side: Python ints (bounds the (steps, pairs) match matrix)
_CHUNK = 8192   # pairs per vectorised batch


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):          # numpy >= 2.0
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return table[x.view(np.uint8)].reshape(len(x), 8).sum(axis=1)


def _lcs_python(a: np.ndarray, b: np.ndarray) -> int:
    """LCS length of two id sequences with Python ints as bit vectors."""
    masks: dict[int, int] = {}
    for j, tok in enumerate(a.tolist()):
        masks[tok] = masks.get(tok, 0) | (1 << j)
    full = (1 << len(a)) - 1
    s = full
    get = masks.get
    for tok in b.tolist():
        u = s & get(tok, 0)
        s = (s + u) | (s - u)
    return len(a) - (s & full).bit_count()


def _lcs_uint64(ids: np.ndarray, a_start: np.ndarray, a_len: np.ndarray, b_start: np.ndarray,
                b_len: np.ndarray, vocab_size: int) -> np.ndarray:
    """LCS lengths of many pairs at once; every ``a_len`` <= 63. Returns (p,) int64."""
    p = len(a_len)
    out = np.zeros(p, dtype=np.int64)
    if p == 0:
        return out
    # match masks: for each (pair, token of a) the bits of its positions in a
    a_pair = np.repeat(np.arange(p, dtype=np.int64), a_len)
    a_pos = np.arange(len(a_pair), dtype=np.int64) - np.repeat(np.cumsum(a_len) - a_len, a_len)
    a_tok = ids[np.repeat(a_start, a_len) + a_pos]
    key = a_pair * vocab_size + a_tok
    perm = np.argsort(key)
    sk = key[perm]
    if len(sk):
        new = np.empty(len(sk), dtype=bool)
        new[0] = True
        np.not_equal(sk[1:], sk[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ukey = sk[starts]
        umask = np.bitwise_or.reduceat(np.left_shift(np.uint64(1), a_pos[perm].astype(np.uint64)),
                                       starts)
    else:
        ukey = np.zeros(0, dtype=np.int64)
        umask = np.zeros(0, dtype=np.uint64)
    # b's tokens, pairs sorted by decreasing len(b) so that step t works on a prefix
    by_len = np.argsort(-b_len, kind="stable")
    bl = b_len[by_len]
    steps = int(bl[0]) if p else 0
    b_pair = np.repeat(np.arange(p, dtype=np.int64), bl)           # position in by_len order
    b_pos = np.arange(len(b_pair), dtype=np.int64) - np.repeat(np.cumsum(bl) - bl, bl)
    b_tok = ids[np.repeat(b_start[by_len], bl) + b_pos]
    b_key = by_len[b_pair] * vocab_size + b_tok
    idx = np.searchsorted(ukey, b_key)
    found = idx < len(ukey)
    found[found] = ukey[idx[found]] == b_key[found]
    match = np.zeros((steps, p), dtype=np.uint64)                  # (token step, pair)
    match[b_pos[found], b_pair[found]] = umask[idx[found]]
    # number of pairs with len(b) > t, for every step t
    n_longer = p - np.searchsorted(bl[::-1], np.arange(1, steps + 1), side="left")
    s = np.full(p, np.iinfo(np.uint64).max, dtype=np.uint64)
    u = np.empty(p, dtype=np.uint64)
    t1 = np.empty(p, dtype=np.uint64)
    for t in range(steps):
        q = int(n_longer[t])
        sv, uv, tv = s[:q], u[:q], t1[:q]
        np.bitwise_and(sv, match[t, :q], out=uv)
        np.subtract(sv, uv, out=tv)
        np.add(sv, uv, out=sv)
        np.bitwise_or(sv, tv, out=sv)
    al = a_len[by_len].astype(np.uint64)
    low = np.left_shift(np.uint64(1), al) - np.uint64(1)
    zeros = al.astype(np.int64) - _popcount(s & low)
    out[by_len] = zeros
    return out


def lcs_lengths(cand: Sequence[str], refs: Sequence[str]) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """LCS length, candidate length and reference length (tokens ``split(" ")``) per pair."""
    n = len(cand)
    tok = tokenize(tuple(cand) + tuple(refs), " ")
    lens = tok.lengths
    starts = np.cumsum(lens) - lens
    c_len, r_len = lens[:n], lens[n:]
    c_start, r_start = starts[:n], starts[n:]
    # the bit side is the reference when it fits in a word, else the candidate if it does
    ref_bits = r_len <= _WORD
    cand_bits = ~ref_bits & (c_len <= _WORD)
    a_start = np.where(ref_bits, r_start, c_start)
    a_len = np.where(ref_bits, r_len, c_len)
    b_start = np.where(ref_bits, c_start, r_start)
    b_len = np.where(ref_bits, c_len, r_len)
    vectorised = (ref_bits | cand_bits) & (b_len <= _MAX_STEPS)
    lcs = np.zeros(n, dtype=np.int64)
    fast = np.flatnonzero(vectorised)
    for lo in range(0, len(fast), _CHUNK):
        f = fast[lo:lo + _CHUNK]
        lcs[f] = _lcs_uint64(tok.ids, a_start[f], a_len[f], b_start[f], b_len[f],
                             max(tok.vocab_size, 1))
    for i in np.flatnonzero(~vectorised).tolist():
        lcs[i] = _lcs_python(tok.ids[r_start[i]:r_start[i] + r_len[i]],
                             tok.ids[c_start[i]:c_start[i] + c_len[i]])
    return lcs, c_len.copy(), r_len.copy()


def rouge_l_from_lcs(lcs: np.ndarray, c_len: np.ndarray, r_len: np.ndarray) -> np.ndarray:
    """pycocoevalcap's F-measure, same operations in the same order, per report."""
    prec = lcs / c_len.astype(np.float64)
    rec = lcs / r_len.astype(np.float64)
    b2 = BETA ** 2
    score = np.zeros(len(lcs), dtype=np.float64)
    ok = (prec != 0) & (rec != 0)
    score[ok] = ((1 + b2) * prec[ok] * rec[ok]) / (rec[ok] + b2 * prec[ok])
    return score


@NLG_METRICS.register("ROUGE-L")
class RougeL(MetricFamily):
    family = "ROUGE-L"
    names = ("ROUGE-L",)
    stat_names = ("rouge_l", "lcs", "len_c", "len_r")
    impl = "uarbench-fast=pycocoevalcap-1.2"

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        lcs, c_len, r_len = lcs_lengths(predictions, references)
        return np.column_stack([rouge_l_from_lcs(lcs, c_len, r_len), lcs, c_len, r_len]
                               ).astype(np.float64)

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[1] != len(self.stat_names) or len(stats) == 0:
            raise ValueError(f"ROUGE-L needs a non-empty (n, {len(self.stat_names)}) statistics "
                             f"matrix, got shape {stats.shape}")
        return {"ROUGE-L": float(np.mean(np.ascontiguousarray(stats[:, 0])))}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """The mean of per-report ROUGE-L F (column 0) over each row set."""
        return {"ROUGE-L": np.atleast_2d(sums)[:, 0] / n}
