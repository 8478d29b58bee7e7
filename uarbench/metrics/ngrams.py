"""Vectorised corpus tokenisation and n-gram counting shared by BLEU, CIDEr-D and ROUGE-L.

pycocoevalcap builds a Python dict of n-gram tuples per sentence (``precook``). Here the whole
corpus is counted at once with numpy: words become integer ids, the n-grams of order k become
integer codes over the concatenated corpus (windows never cross a report boundary), and one sort
per order groups equal (n-gram, report, side) keys. Matching a hypothesis n-gram with the same
n-gram of its reference, and the document frequency of an n-gram over the references, are then
read off neighbouring groups of that sort.

Distinct n-grams are returned in pycocoevalcap's dict order (order of first occurrence inside
the sentence) so that floating-point sums over them (CIDEr's norms and dot products) are carried
out in the same order as pycocoevalcap and give bit-identical results.

Identical texts are split and encoded once (model outputs repeat a lot). Results are cached on
the input strings (a small LRU cache), so BLEU, CIDEr and ROUGE-L on the same inputs tokenise
once and BLEU and CIDEr count the n-grams once; :func:`clear_cache` empties the cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Sequence

import numpy as np

_INT64_SAFE = 2**62


@dataclass(frozen=True)
class Tokens:
    """Token ids of a list of documents, concatenated; ``lengths[d]`` tokens per document."""

    ids: np.ndarray        # (T,) int64, 0 <= id < vocab_size
    lengths: np.ndarray    # (D,) int64
    vocab_size: int


@dataclass(frozen=True)
class OrderCounts:
    """Distinct n-grams of one order, per report, each side in first-occurrence order.

    ``hyp_*`` arrays have one entry per distinct n-gram of a hypothesis, ``ref_*`` one per
    distinct n-gram of a reference; reports appear in increasing order.
    """

    hyp_report: np.ndarray     # report index
    hyp_count: np.ndarray      # count of the n-gram in the hypothesis
    hyp_ref_count: np.ndarray  # count of the same n-gram in that report's reference (0: absent)
    hyp_df: np.ndarray         # number of references of the corpus that contain the n-gram
    ref_report: np.ndarray
    ref_count: np.ndarray
    ref_df: np.ndarray


@dataclass(frozen=True)
class NgramCounts:
    n_reports: int
    hyp_len: np.ndarray        # (n,) int64 number of tokens (``str.split()``) per hypothesis
    ref_len: np.ndarray        # (n,) int64 per reference
    orders: tuple[OrderCounts, ...]  # orders[k - 1] holds the k-grams


def clear_cache() -> None:
    """Forget cached tokenisations and counts (benchmarks call this between timings)."""
    _unique_tokens.cache_clear()
    _tokenize_cached.cache_clear()
    _count_cached.cache_clear()


def tokenize(texts: Sequence[str], sep: str | None = None) -> Tokens:
    """Token ids of ``text.split(sep)`` for every text (one vocabulary for all texts)."""
    return _tokenize_cached(tuple(texts), sep)


def count_ngrams(predictions: Sequence[str], references: Sequence[str],
                 max_n: int = 4) -> NgramCounts:
    """n-gram statistics of order 1..max_n of paired hypotheses and references."""
    return _count_cached(tuple(predictions), tuple(references), max_n)


# --------------------------------------------------------------------------- tokenisation

@dataclass(frozen=True)
class _UniqueTokens:
    """Tokens of the distinct texts; documents point at their distinct text."""

    ids: np.ndarray        # token ids of the distinct texts, concatenated
    starts: np.ndarray     # (U,) offset of each distinct text in ``ids``
    lengths: np.ndarray    # (U,)
    doc_text: np.ndarray   # (D,) index of each document's distinct text
    texts: tuple[str, ...]
    vocab: dict


def _encode(token_lists: list[list[str]], vocab: dict) -> np.ndarray:
    flat = list(chain.from_iterable(token_lists))
    for word in dict.fromkeys(flat):          # new words get the next ids, in order
        vocab.setdefault(word, len(vocab))
    return np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))


@lru_cache(maxsize=4)
def _unique_tokens(texts: tuple[str, ...]) -> _UniqueTokens:
    index: dict[str, int] = {}
    doc_text = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64,
                           count=len(texts))
    uniq = tuple(index)
    token_lists = [t.split() for t in uniq]
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(uniq))
    vocab: dict[str, int] = {}
    ids = _encode(token_lists, vocab)
    return _UniqueTokens(ids, np.cumsum(lengths) - lengths, lengths, doc_text, uniq, vocab)


def _single_space_safe(text: str) -> bool:
    """True when ``text.split(" ") == text.split()``: non-empty, single spaces, no other blanks.

    Every character ``str.split()`` treats as whitespace is in Unicode category Cc or Z*, which
    ``isprintable`` rejects (except the ASCII space itself).
    """
    return (bool(text) and text.isprintable() and text[0] != " " and text[-1] != " "
            and "  " not in text)


@lru_cache(maxsize=4)
def _tokenize_cached(texts: tuple[str, ...], sep: str | None) -> Tokens:
    u = _unique_tokens(texts)
    ids, starts, lengths = u.ids, u.starts, u.lengths
    vocab_size = len(u.vocab)
    if sep is not None:
        # Re-tokenise only the distinct texts whose split(sep) differs from split();
        # their new ids are appended after the shared ones.
        redo = [i for i, t in enumerate(u.texts)
                if not (sep == " " and _single_space_safe(t))]
        if redo:
            vocab = dict(u.vocab)
            token_lists = [u.texts[i].split(sep) for i in redo]
            extra = _encode(token_lists, vocab)
            extra_len = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(redo))
            starts = starts.copy()
            lengths = lengths.copy()
            starts[redo] = len(ids) + np.cumsum(extra_len) - extra_len
            lengths[redo] = extra_len
            ids = np.concatenate([ids, extra])
            vocab_size = len(vocab)
    doc_len = lengths[u.doc_text]
    doc_start = np.cumsum(doc_len) - doc_len
    # token p of document d is ids[starts[text(d)] + (p - doc_start[d])]
    shift = np.repeat(starts[u.doc_text] - doc_start, doc_len)
    doc_ids = ids[shift + np.arange(int(doc_len.sum()), dtype=np.int64)]
    return Tokens(doc_ids, doc_len, vocab_size)


# --------------------------------------------------------------------------- n-gram counts

def _empty_order() -> OrderCounts:
    e = np.zeros(0, dtype=np.int64)
    return OrderCounts(e, e, e, e, e, e, e)


@lru_cache(maxsize=2)
def _count_cached(preds: tuple[str, ...], refs: tuple[str, ...], max_n: int) -> NgramCounts:
    n = len(preds)
    if len(refs) != n:
        raise ValueError(f"{n} predictions but {len(refs)} references")
    tok = tokenize(preds + refs)
    ids, lens = tok.ids, tok.lengths
    n_tok = len(ids)
    doc = np.repeat(np.arange(2 * n, dtype=np.int64), lens)        # (T,) document of a token
    doc_start = np.cumsum(lens) - lens
    left = lens[doc] - (np.arange(n_tok, dtype=np.int64) - doc_start[doc])  # tokens from here on
    report = np.where(doc >= n, doc - n, doc)                       # (T,) report of a token
    side = (doc >= n).astype(np.int64)                              # 0 hypothesis, 1 reference

    orders = []
    dense = ids                      # dense id of the (k-1)-gram starting at each position
    width = max(tok.vocab_size, 1)   # number of distinct (k-1)-grams (upper bound)
    for k in range(1, max_n + 1):
        win = np.flatnonzero(left >= k)                             # (W,) window starts
        if len(win) == 0:
            orders.append(_empty_order())
            continue
        if k == 1:
            code, n_codes = ids[win], tok.vocab_size
        else:
            # code of a k-gram: (dense id of its (k-1)-gram prefix, last word)
            code = dense[win] * tok.vocab_size + ids[win + k - 1]
            n_codes = width * tok.vocab_size
        if n_codes * 2 * n >= _INT64_SAFE:                          # keep keys inside int64
            _, code = np.unique(code, return_inverse=True)
            n_codes = int(code.max()) + 1
        key = (code * n + report[win]) * 2 + side[win]              # sorts by n-gram, report, side
        idx_bits = max(1, (len(win) - 1).bit_length())
        if (n_codes * 2 * n) << idx_bits < _INT64_SAFE:
            # one plain sort of (key, window index) packed in an int64 is much faster than
            # argsort; within a group the first row is then the first occurrence
            packed = (key << idx_bits) | np.arange(len(win), dtype=np.int64)
            packed.sort()
            perm = packed & ((1 << idx_bits) - 1)
            sk = packed >> idx_bits
            stable = True
        else:
            perm = np.argsort(key)
            sk = key[perm]
            stable = False
        new = np.empty(len(sk), dtype=bool)
        new[0] = True
        np.not_equal(sk[1:], sk[:-1], out=new[1:])
        gstart = np.flatnonzero(new)                                # (G,) first row of each group
        count = np.diff(np.append(gstart, len(sk)))
        gkey = sk[gstart]
        gside = gkey & 1
        gcode = (gkey >> 1) // n
        grep = (gkey >> 1) - gcode * n
        # runs of equal n-gram code: dense ids for the next order, document frequency
        new_code = np.empty(len(gkey), dtype=bool)
        new_code[0] = True
        np.not_equal(gcode[1:], gcode[:-1], out=new_code[1:])
        gdense = np.cumsum(new_code) - 1
        df = np.add.reduceat(gside, np.flatnonzero(new_code))[gdense]
        # a hypothesis group followed by the reference group of the same n-gram and report
        ref_count = np.zeros(len(gkey), dtype=np.int64)
        hit = np.flatnonzero((gside[:-1] == 0) & (gkey[1:] == gkey[:-1] + 1))
        ref_count[hit] = count[hit + 1]
        # groups in first-occurrence order (pycocoevalcap's dict order): window indices grow
        # with the corpus position, so a group's first occurrence is its smallest index
        first = perm[gstart] if stable else np.minimum.reduceat(perm, gstart)
        slot = np.full(len(win), -1, dtype=np.int64)
        slot[first] = np.arange(len(gkey))
        order = slot[slot >= 0]       # hypotheses come first: their documents come first
        n_hyp = int(len(gkey) - gside.sum())
        h, r = order[:n_hyp], order[n_hyp:]
        orders.append(OrderCounts(grep[h], count[h], ref_count[h], df[h],
                                  grep[r], count[r], df[r]))
        if k < max_n:
            dense = np.empty(n_tok, dtype=np.int64)
            dense[win[perm]] = np.repeat(gdense, count)
            width = int(gdense[-1]) + 1
    return NgramCounts(n, lens[:n].copy(), lens[n:].copy(), tuple(orders))
