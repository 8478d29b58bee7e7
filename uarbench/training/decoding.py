"""Autoregressive decoding of reports: greedy search and batched beam search.

Any model that exposes the two-method contract of :class:`Decodable` can be decoded here (UAR
and the baselines)::

    memory = model.encode(inputs)                                  # (B, L, d)
    logp   = model.decode_step(memory, memory_mask, prefix_ids)    # (B, vocab) for token t+1

``prefix_ids`` (B, t) always start with bos and are never padded: a row (or, in beam search, a
whole input row) that has finished leaves the batch, so every prefix in a call has the same
length. The special ids and the length limit are passed explicitly, so nothing here depends on a
model's config.

Decoding follows the R2Gen lineage (Chen et al., EMNLP 2020; its beam search comes from
ruotianluo's ImageCaptioning.pytorch), which UAR reports with: beam size 3 and trigram blocking.

* Scores are sums of token log-probabilities. ``length_penalty`` alpha rescales the score of a
  completed hypothesis of n tokens (eos included) to ``sum / n ** alpha`` when hypotheses are
  compared; alpha 0 (the default) keeps the raw sum, as R2Gen does (its ``length_penalty`` is
  empty), and alpha 1 is R2Gen's ``avg`` option. Live beams are always ranked by the raw sum.
* Step 1 expands only the first beam of each row (all K start identical as [bos]).
* Each step keeps the top K of the K x vocab candidates of a row. A candidate that ends in eos is
  finished: it is set aside and its slot expands nothing further, so the next step refills the K
  slots from the surviving beams (as R2Gen's ``beam_step``).
* At ``max_len`` the unfinished beams join the finished ones (truncated, no eos) and the best
  score wins, as in R2Gen. A row stops earlier once its best finished score can no longer be
  beaten by any continuation of its live beams; log-probabilities are <= 0, so scores only fall
  and this early stop returns exactly what running to ``max_len`` would (ties go to the earlier
  hypothesis, as R2Gen's stable sort does).
* n-gram blocking (``block_ngram`` n, 3 = trigrams, 0 = off): a token that would complete an
  n-gram already present in the hypothesis gets log-probability -inf. R2Gen's
  ``block_trigrams`` does this in greedy decoding too, and so does :func:`greedy_search` here.
  Blocking is vectorised over all hypotheses (a scatter of the matching n-gram continuations).

A model may also offer incremental decoding, which both searches then use (``incremental=True``,
the default): ``cache = model.start_decoding(memory, memory_mask)`` once, then
``model.decode_next(cache, prefix_ids)`` feeds only the newest token, and ``cache.select(index)``
follows the search when hypotheses are reordered, copied or dropped. It returns what
``decode_step`` would, up to float rounding, without recomputing the prefix at every step.

Everything runs under ``torch.no_grad()`` on the device of the memory; putting the model in eval
mode is the caller's job. ``max_len`` counts new tokens after bos (59 for IU-Xray's 60-token
reports), so the model must accept prefixes of up to ``max_len`` tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from uarbench.configs import FrozenConfig
from uarbench.errors import UarbenchError

__all__ = ["Decodable", "DecodeConfig", "decode", "greedy_search", "beam_search"]


@runtime_checkable
class Decodable(Protocol):
    """What decoding needs from a model (UAR and the baselines)."""

    def encode(self, inputs: Tensor) -> Tensor:
        """inputs -> memory (B, L, d)."""
        ...

    def decode_step(self, memory: Tensor, memory_mask: Tensor | None, prefix_ids: Tensor) -> Tensor:
        """memory (B, L, d), memory_mask (B, L) bool or None, prefix_ids (B, t) starting with bos
        -> log-probabilities (B, vocab) of the next token."""
        ...


@dataclass(frozen=True)
class DecodeConfig(FrozenConfig):
    """How to decode. The defaults are R2Gen's test-time setting used by UAR.

    method:         "beam" or "greedy".
    beam_size:      K, the number of live hypotheses per input row (beam only).
    max_len:        the most new tokens after bos (eos included if it is produced).
    block_ngram:    n of n-gram blocking; 3 = trigram blocking, 0 = off.
    length_penalty: alpha; a finished hypothesis of n tokens scores sum(log p) / n ** alpha.
                    0 = the raw sum of log-probabilities, as R2Gen.
    """
    method: Literal["beam", "greedy"] = "beam"
    beam_size: int = 3
    max_len: int = 59
    block_ngram: int = 3
    length_penalty: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.method not in ("beam", "greedy"):
            problems.append(f"method {self.method!r} not in ('beam', 'greedy')")
        if self.beam_size < 1:
            problems.append(f"beam_size {self.beam_size} must be >= 1")
        if self.max_len < 0:
            problems.append(f"max_len {self.max_len} must be >= 0")
        if self.block_ngram < 0:
            problems.append(f"block_ngram {self.block_ngram} must be >= 0 (0 = off)")
        if not math.isfinite(self.length_penalty):
            problems.append(f"length_penalty {self.length_penalty} must be finite")
        if problems:
            raise UarbenchError("invalid DecodeConfig: " + "; ".join(problems) + ".",
                                fix="correct the fields named above.")


@torch.no_grad()
def decode(model: Decodable, inputs: Tensor, cfg: DecodeConfig, *,
           bos_id: int, eos_id: int, pad_id: int) -> list[list[int]]:
    """Encode ``inputs`` and decode every row -> one list of token ids per row: the tokens after
    bos, eos removed (a row that hits ``cfg.max_len`` without eos keeps all its tokens)."""
    memory = model.encode(inputs)
    if cfg.method == "greedy":
        return greedy_search(model, memory, None, max_len=cfg.max_len, bos_id=bos_id,
                             eos_id=eos_id, pad_id=pad_id, block_ngram=cfg.block_ngram)
    return beam_search(model, memory, None, beam_size=cfg.beam_size, max_len=cfg.max_len,
                       bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, block_ngram=cfg.block_ngram,
                       length_penalty=cfg.length_penalty)


def block_repeated_ngrams(seqs: Tensor, logp: Tensor, n: int) -> Tensor:
    """-> ``logp`` (N, vocab) with -inf where token v would complete an n-gram that already
    occurs in hypothesis ``seqs[h]`` (N, t) (n = 3: trigram blocking). ``logp`` itself is never
    modified: it may be a model's own buffer."""
    N, t = seqs.shape
    starts = t - n + 1  # earlier n-grams start at 0 .. t-n (the last one may overlap the context)
    if n < 1 or starts < 1:
        return logp
    match = torch.ones(N, starts, dtype=torch.bool, device=seqs.device)
    for j in range(n - 1):  # an earlier (n-1)-gram equal to the current context, token by token
        match &= seqs[:, j:j + starts] == seqs[:, t - n + 1 + j, None]
    # scatter_add, not scatter: a token can follow several earlier contexts, matched or not
    hits = torch.zeros(logp.shape, dtype=torch.int32, device=logp.device)
    hits.scatter_add_(1, seqs[:, n - 1:], match.to(torch.int32))
    return logp.masked_fill(hits > 0, float("-inf"))


class _Stepper:
    """One search's calls into the model: incremental where the model offers it."""

    def __init__(self, model: Decodable, memory: Tensor, memory_mask: Tensor | None,
                 incremental: bool, group: int = 1) -> None:
        """``memory`` has one row per input; ``group`` hypotheses (beams) decode each input."""
        self.model = model
        use = incremental and hasattr(model, "start_decoding") and hasattr(model, "decode_next")
        self.cache = model.start_decoding(memory, memory_mask, group=group) if use else None

    def logp(self, memory: Tensor, memory_mask: Tensor | None, seqs: Tensor) -> Tensor:
        if self.cache is None:
            return self.model.decode_step(memory, memory_mask, seqs).float()
        return self.model.decode_next(self.cache, seqs).float()

    def select(self, index: Tensor) -> None:
        """Hypothesis i now continues old hypothesis index[i] (index (N,) long)."""
        if self.cache is not None:
            self.cache.select(index)


def _check_args(memory: Tensor, memory_mask: Tensor | None, max_len: int) -> None:
    if memory.dim() < 1:
        raise ValueError(f"memory must have a batch dimension, got shape {tuple(memory.shape)}")
    if memory_mask is not None and memory_mask.shape[0] != memory.shape[0]:
        raise ValueError(f"memory_mask has {memory_mask.shape[0]} rows, memory {memory.shape[0]}")
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")


class _Finished:
    """The ids each input row decodes to, kept on the device until the search ends (so a step
    never waits to copy them): ``tokens`` (B, max_len), ``length`` (B,), -1 = none yet."""

    def __init__(self, B: int, max_len: int, pad_id: int, device: torch.device) -> None:
        self.tokens = torch.full((B, max(max_len, 1)), pad_id, dtype=torch.long, device=device)
        self.length = torch.full((B,), -1, dtype=torch.long, device=device)

    def put(self, rows: Tensor, take: Tensor, ids: Tensor) -> None:
        """Rows ``rows[take]`` now decode to ``ids`` (R, n) (other rows keep theirs)."""
        n = ids.shape[1]
        self.tokens[rows, :n] = torch.where(take[:, None], ids, self.tokens[rows, :n])
        self.length[rows] = torch.where(take, n, self.length[rows])

    def to_lists(self) -> list[list[int]]:
        """One transfer at the end -> per row its ids."""
        tokens, lengths = self.tokens.tolist(), self.length.tolist()
        return [t[:n] for t, n in zip(tokens, lengths, strict=True)]


def _kept(flags: list[bool], device: torch.device) -> Tensor:
    """Indices of the False entries of ``flags`` (already on the host: no sync)."""
    return torch.tensor([i for i, f in enumerate(flags) if not f], dtype=torch.long,
                        device=device)


@torch.no_grad()
def greedy_search(model: Decodable, memory: Tensor, memory_mask: Tensor | None = None, *,
                  max_len: int, bos_id: int, eos_id: int, pad_id: int,
                  block_ngram: int = 0, incremental: bool = True) -> list[list[int]]:
    """Batched argmax decoding -> per row the ids after bos, eos removed. A row leaves the batch
    when it emits eos, so prefixes are never padded (``pad_id`` is part of the shared signature;
    decoding never inserts it). One host sync per step (which rows ended)."""
    _check_args(memory, memory_mask, max_len)
    B, device = memory.shape[0], memory.device
    found = _Finished(B, max_len, pad_id, device)
    rows = torch.arange(B, device=device)  # original row of each live row
    seqs = torch.full((B, 1), bos_id, dtype=torch.long, device=device)
    steps = _Stepper(model, memory, memory_mask, incremental)
    for _ in range(max_len):
        if rows.numel() == 0:
            break
        logp = steps.logp(memory, memory_mask, seqs)
        if block_ngram:
            logp = block_repeated_ngrams(seqs, logp, block_ngram)
        nxt = logp.argmax(dim=-1)
        seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        ended = nxt == eos_id
        found.put(rows, ended, seqs[:, 1:-1])
        flags = ended.tolist()  # the step's one host sync
        if any(flags):
            keep = _kept(flags, device)
            rows, seqs, memory = rows[keep], seqs[keep], memory[keep]
            memory_mask = None if memory_mask is None else memory_mask[keep]
            steps.select(keep)
    if rows.numel():  # reached max_len without eos
        found.put(rows, torch.ones_like(rows, dtype=torch.bool), seqs[:, 1:])
    return found.to_lists()


@torch.no_grad()
def beam_search(model: Decodable, memory: Tensor, memory_mask: Tensor | None = None, *,
                beam_size: int = 3, max_len: int, bos_id: int, eos_id: int, pad_id: int,
                block_ngram: int = 3, length_penalty: float = 0.0,
                incremental: bool = True) -> list[list[int]]:
    """Beam search batched over rows and beams (one ``decode_step`` call of R*K hypotheses per
    step, R = rows still searching) -> per row the best hypothesis after bos, eos removed.
    See the module docstring for the rules. Prefixes hold neither pad nor eos: finished rows
    leave the batch and an empty beam slot carries a copy of a live prefix of its row.

    The bookkeeping stays on the device: the best finished hypothesis of each row is kept in a
    tensor, and a step's reorderings (beam parents, refilled empty slots, rows that stop) are
    composed into one ``select`` of the decoding cache. The host waits once per step, to learn
    which rows stop (a row that stops with nothing finished nor live costs one more read)."""
    _check_args(memory, memory_mask, max_len)
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    K, B, device = beam_size, memory.shape[0], memory.device
    neg_inf = float("-inf")
    alpha = float(length_penalty)
    if max_len == 0 or B == 0:
        return [[] for _ in range(B)]

    found = _Finished(B, max_len, pad_id, device)
    best = torch.full((B,), neg_inf, device=device)  # best finished (length-penalised) score
    rows = torch.arange(B, device=device)  # original row of each row still searching
    seqs = torch.full((B * K, 1), bos_id, dtype=torch.long, device=device)
    scores = torch.full((B, K), neg_inf, device=device)  # raw sums; -inf = empty slot
    scores[:, 0] = 0.0  # step 1 expands only the first (all beams are [bos])
    # hypothesis h = row * K + beam; an incremental cache keeps one memory row per input, the
    # full-recompute path needs the memory once per hypothesis
    steps = _Stepper(model, memory, memory_mask, incremental, group=K)
    mem = mmask = None
    if steps.cache is None:
        mem = memory.repeat_interleave(K, dim=0)  # (R*K, L, d)
        mmask = None if memory_mask is None else memory_mask.repeat_interleave(K, dim=0)

    for n in range(1, max_len + 1):  # n = tokens after bos once this step is taken
        R = rows.numel()
        ar = torch.arange(R, device=device)
        logp = steps.logp(mem, mmask, seqs)  # (R*K, V)
        if block_ngram:
            logp = block_repeated_ngrams(seqs, logp, block_ngram)
        V = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(R, K * V)
        top, idx = cand.topk(K, dim=1)  # (R, K), best first
        parent = (idx // V + ar[:, None] * K).reshape(-1)  # (R*K,) old hypothesis of each
        token = idx % V
        seqs = torch.cat([seqs[parent], token.reshape(-1, 1)], dim=1)  # (R*K, n+1)

        # finished hypotheses are set aside: the best per row, if it beats the row's best
        ended = (token == eos_id) & (top > neg_inf)
        fin = (top / n ** alpha).masked_fill(~ended, neg_inf)
        fin_best, fin_k = fin.max(dim=1)
        better = fin_best > best[rows]  # strict: ties keep the earlier hypothesis
        found.put(rows, better, seqs.view(R, K, n + 1)[ar, fin_k, 1:-1])
        best[rows] = torch.where(better, fin_best, best[rows])
        scores = top.masked_fill(token == eos_id, neg_inf)  # finished or -inf: empty slots

        if n == max_len:
            break
        # an empty slot (-inf) expands nothing, but it still takes part in the next batched call:
        # give it a copy of its row's best live prefix, so no prefix ever holds eos
        empty = torch.isinf(scores)
        donor_k = scores.argmax(dim=1)  # (R,)
        seqs = seqs.view(R, K, n + 1)
        seqs = torch.where(empty[..., None], seqs[ar, donor_k][:, None], seqs).view(R * K, n + 1)
        slot = torch.arange(R * K, device=device).view(R, K)
        refill = torch.where(empty, (ar * K + donor_k)[:, None], slot).reshape(-1)
        order = parent[refill]  # the cache follows parents, then refills, in one select
        # no continuation can beat the best finished: scores only fall (log p <= 0) and the
        # penalised score of a live sum s is at most s / max(m ** alpha) over lengths m > n
        live_best = scores.max(dim=1).values
        bound = live_best / max((n + 1) ** alpha, max_len ** alpha)
        done = best[rows] >= bound
        flags = torch.stack([done, done & (found.length[rows] < 0)]).tolist()  # the one sync
        if any(flags[0]):
            for i, stuck in enumerate(flags[1]):
                if stuck:  # nothing finished and nothing live (all -inf): take beam 0
                    ids = [t for t in seqs[i * K, 1:].tolist() if t != eos_id]
                    found.put(rows[i:i + 1], torch.ones(1, dtype=torch.bool, device=device),
                              torch.tensor([ids], dtype=torch.long, device=device).view(1, -1))
            keep = _kept(flags[0], device)
            rows, scores = rows[keep], scores[keep]
            hyp_keep = (keep[:, None] * K + torch.arange(K, device=device)).reshape(-1)
            seqs = seqs[hyp_keep]
            mem = None if mem is None else mem[hyp_keep]
            mmask = None if mmask is None else mmask[hyp_keep]
            order = order[hyp_keep]
        steps.select(order)
        if rows.numel() == 0:
            break

    # rows still searching at max_len: truncated beams compete with the finished ones
    if rows.numel():
        live_best, live_k = (scores / max_len ** alpha).max(dim=1)
        take = (found.length[rows] < 0) | (live_best > best[rows])
        found.put(rows, take, seqs.view(rows.numel(), K, -1)[torch.arange(rows.numel(),
                                                                           device=device),
                                                              live_k, 1:])
    return found.to_lists()
