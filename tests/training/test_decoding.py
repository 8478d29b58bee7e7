"""Greedy and beam decoding (uarbench.training.decoding) against fake models whose log-probs are
set by hand, a plain per-row reference beam search, and a tiny real UAR model."""
from __future__ import annotations

import math

import pytest
import torch

from uarbench.errors import UarbenchError
from uarbench.training.decoding import (Decodable, DecodeConfig, beam_search,
                                        block_repeated_ngrams, decode, greedy_search)

PAD, BOS, EOS = 0, 1, 2
A, B, C, D, E = 3, 4, 5, 6, 7
V = 8
IDS = dict(bos_id=BOS, eos_id=EOS, pad_id=PAD)


class MarkovModel:
    """A fake model: a row of kind k draws its next token from tables[k, last token] (log-probs).
    ``encode`` takes the kinds (B,) and hides them in memory (B, 1, 1). Every call checks the
    decoding contract (prefixes start with bos, carry no pad or eos, one row per memory row)."""

    def __init__(self, tables: torch.Tensor) -> None:
        self.tables = tables  # (kinds, V, V)
        self.calls: list[tuple[int, int]] = []

    def encode(self, kinds: torch.Tensor) -> torch.Tensor:
        return kinds.float()[:, None, None]

    def decode_step(self, memory, memory_mask, prefix_ids):
        assert prefix_ids.dtype == torch.long and prefix_ids.shape[0] == memory.shape[0]
        assert (prefix_ids[:, 0] == BOS).all()
        assert not ((prefix_ids[:, 1:] == PAD) | (prefix_ids[:, 1:] == EOS)).any()
        self.calls.append(tuple(prefix_ids.shape))
        kinds = memory[:, 0, 0].long()
        if memory_mask is not None:  # the tests' masks say "kind is odd": they must travel along
            assert torch.equal(memory_mask[:, 0], kinds % 2 == 1)
        return self.tables[kinds, prefix_ids[:, -1]]


def markov(rules: dict[int, dict[int, float]]) -> torch.Tensor:
    """(V, V) log-probs: row `last` gives the listed probabilities and spreads what is left evenly
    over the other word tokens and eos; pad and bos get almost nothing."""
    probs = torch.zeros(V, V)
    for last in range(V):
        given = rules.get(last, {})
        rest = [v for v in range(EOS, V) if v not in given]
        left = 1.0 - sum(given.values())
        for v in range(V):
            probs[last, v] = given.get(v, left / len(rest) if v in rest else 0.0)
    probs[:, [PAD, BOS]] = 1e-9
    return (probs / probs.sum(-1, keepdim=True)).log()


def random_tables(kinds: int, vocab: int = V, seed: int = 0) -> torch.Tensor:
    """Random chains; kind k gets an eos bonus that grows with k, so rows end at different times."""
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(kinds, vocab, vocab, generator=g)
    logits[:, :, [PAD, BOS]] = -30.0
    logits[:, :, EOS] += torch.linspace(-3.0, 1.5, kinds)[:, None]
    return logits.log_softmax(-1)


def repeated_ngrams(seq: list[int], n: int = 3) -> list[tuple[int, ...]]:
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return sorted({g for g in grams if grams.count(g) > 1})


def run(model, kinds, **kw) -> list[list[int]]:
    return decode(model, torch.as_tensor(kinds), DecodeConfig(**kw), **IDS)


# --- config ---
def test_config_defaults_are_r2gen_and_validated():
    cfg = DecodeConfig()
    assert (cfg.method, cfg.beam_size, cfg.max_len, cfg.block_ngram, cfg.length_penalty) == \
        ("beam", 3, 59, 3, 0.0)
    for bad in (dict(method="sample"), dict(beam_size=0), dict(max_len=-1), dict(block_ngram=-1),
                dict(length_penalty=math.nan)):
        with pytest.raises(UarbenchError):
            DecodeConfig(**bad)
    with pytest.raises(Exception):
        cfg.beam_size = 5  # frozen


# --- greedy ---
CHAIN = markov({BOS: {A: 0.6}, A: {B: 0.7}, B: {EOS: 0.8}, C: {D: 0.9}, D: {EOS: 0.5, E: 0.2}})


def test_greedy_picks_argmax_stops_at_eos_and_drops_finished_rows():
    tables = torch.stack([CHAIN, markov({BOS: {C: 0.9}, C: {D: 0.9}, D: {E: 0.6}, E: {EOS: 0.9}})])
    model = MarkovModel(tables)
    out = run(model, [0, 1, 0], method="greedy", max_len=10, block_ngram=0)
    assert out == [[A, B], [C, D, E], [A, B]]
    # rows 0 and 2 emit eos at step 3 and leave the batch: prefixes never hold pad
    assert model.calls == [(3, 1), (3, 2), (3, 3), (1, 4)]


def test_max_len_is_respected():
    cycle = torch.stack([markov({BOS: {A: 0.9}, A: {B: 0.9}, B: {A: 0.9}})])
    for method in ("greedy", "beam"):
        model = MarkovModel(cycle)
        out = run(model, [0, 0], method=method, max_len=5, block_ngram=0)
        assert out == [[A, B, A, B, A]] * 2
        assert max(t for _, t in model.calls) == 5  # the longest prefix: bos + 4 tokens
        assert run(MarkovModel(cycle), [0], method=method, max_len=0) == [[]]


# --- beam ---
# greedy takes A (0.5) and then has only weak endings; B (0.4) ends at once with 0.9
TRAP = markov({BOS: {A: 0.5, B: 0.4}, A: {C: 0.35, D: 0.3}, B: {EOS: 0.9}, C: {EOS: 0.6},
               D: {EOS: 0.55}})


def test_beam_finds_the_sequence_greedy_misses():
    model = MarkovModel(TRAP[None])
    assert run(model, [0], method="greedy", block_ngram=0) == [[A, C]]  # p = .5 * .35 * .6 = .105
    for k in (2, 3, 4):
        assert run(model, [0], method="beam", beam_size=k, block_ngram=0) == [[B]]  # p = .36


def test_length_penalty_prefers_the_long_confident_report():
    # [B]: .55 * .99, log -0.61, per token -0.30; [A C D E]: .35 * .99^3 * .97, log -1.11, per
    # token -0.22. After step 2 the live A C (log -1.06) is below [B] in raw sum but not in mean:
    # a correct early stop must bound it by -1.06 / max_len, not by -1.06 / 3
    tables = markov({BOS: {B: 0.55, A: 0.35}, B: {EOS: 0.99}, A: {C: 0.99}, C: {D: 0.99},
                     D: {E: 0.99}, E: {EOS: 0.97}})[None]
    assert run(MarkovModel(tables), [0], beam_size=2, max_len=8) == [[B]]
    assert run(MarkovModel(tables), [0], beam_size=2, max_len=8, length_penalty=1.0) == [[A, C, D, E]]


def test_beam_is_one_call_per_step_over_all_hypotheses():
    model = MarkovModel(TRAP[None].repeat(2, 1, 1))
    assert run(model, [0, 1], beam_size=3, max_len=10, block_ngram=0) == [[B], [B]]
    # step 1: 2 rows x 3 beams of [bos]; step 2 finds [B eos] (.36) and no live beam scores above
    # it (the best, A C, is .175), so both rows stop after two calls
    assert model.calls == [(6, 1), (6, 2)]


def test_beam_size_one_equals_greedy():
    tables = random_tables(6)
    kinds = list(range(6))
    for block in (0, 3):
        greedy = run(MarkovModel(tables), kinds, method="greedy", max_len=12, block_ngram=block)
        beam1 = run(MarkovModel(tables), kinds, method="beam", beam_size=1, max_len=12,
                    block_ngram=block)
        assert beam1 == greedy
    assert len({len(s) for s in greedy}) > 2  # rows of several lengths, some hit max_len


def test_batched_beam_equals_each_row_alone():
    tables = random_tables(6, seed=1)
    kinds = [0, 3, 5, 1, 4, 2, 5]
    for kw in (dict(), dict(block_ngram=0, length_penalty=1.0)):
        together = run(MarkovModel(tables), kinds, beam_size=3, max_len=15, **kw)
        alone = [run(MarkovModel(tables), [k], beam_size=3, max_len=15, **kw)[0] for k in kinds]
        assert together == alone


def test_memory_mask_follows_its_rows():
    tables = random_tables(6, seed=4)
    kinds = torch.tensor([0, 3, 5, 1, 4, 2])
    mask = (kinds % 2 == 1)[:, None].repeat(1, 4)  # (B, L) with L = 4
    memory = MarkovModel(tables).encode(kinds)
    for search, kw in ((greedy_search, dict(block_ngram=3)), (beam_search, dict(beam_size=3))):
        with_mask = search(MarkovModel(tables), memory, mask, max_len=12, **IDS, **kw)
        assert with_mask == search(MarkovModel(tables), memory, None, max_len=12, **IDS, **kw)


# --- a plain reference: R2Gen's beam rules one row at a time, run to max_len, no early stop ---
def reference_beam(table: torch.Tensor, K: int, max_len: int, block: int, alpha: float):
    logp = table.tolist()
    live = [(0.0, [BOS])]  # step 1 expands the single [bos]
    done = []  # (penalised score, tokens after bos)
    for n in range(1, max_len + 1):
        cands = []
        for score, seq in live:
            banned = set()
            if block and len(seq) >= block:
                ctx = seq[len(seq) - block + 1:]
                banned = {seq[i + block - 1] for i in range(len(seq) - block + 1)
                          if seq[i:i + block - 1] == ctx}
            cands += [(score + lp, seq + [v]) for v, lp in enumerate(logp[seq[-1]]) if v not in banned]
        cands.sort(key=lambda c: -c[0])
        top = cands[:K]
        done += [(s / n ** alpha, seq[1:-1]) for s, seq in top if seq[-1] == EOS]
        live = [(s, seq) for s, seq in top if seq[-1] != EOS]
        if not live:
            break
    done += [(s / max_len ** alpha, seq[1:]) for s, seq in live if len(seq) == max_len + 1]
    return max(done, key=lambda d: d[0])[1]  # max keeps the first of equal scores


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5])
@pytest.mark.parametrize("block", [0, 3])
def test_beam_matches_reference_and_early_stop_is_exact(alpha, block):
    tables = random_tables(8, vocab=10, seed=2)
    # these rows' top candidates are hardly ever eos, so they run to max_len: the end of search
    tables[:3, :, EOS] -= 4.0
    tables = tables.log_softmax(-1)
    kinds = list(range(8))
    got = decode(MarkovModel(tables), torch.tensor(kinds),
                 DecodeConfig(beam_size=3, max_len=9, block_ngram=block, length_penalty=alpha), **IDS)
    assert got == [reference_beam(tables[k], 3, 9, block, alpha) for k in kinds]


# --- n-gram blocking ---
CYCLE = markov({BOS: {A: 0.9}, A: {B: 0.8, C: 0.1}, B: {A: 0.8, C: 0.1}, C: {EOS: 0.9}})


def test_trigram_blocking_prevents_repeats():
    model = MarkovModel(CYCLE[None])
    for method in ("greedy", "beam"):
        free = run(model, [0], method=method, max_len=8, block_ngram=0)[0]
        assert free == [A, B, A, B, A, B, A, B] and repeated_ngrams(free)
    # [bos] A B A B, then A would repeat (A, B, A): the next best, C, ends the report
    assert run(model, [0], method="greedy", max_len=8)[0] == [A, B, A, B, C]
    tables = random_tables(5, seed=3)
    tables[:, :, EOS] -= 5.0  # long outputs: without blocking these chains repeat themselves
    tables = tables.log_softmax(-1)
    for method in ("greedy", "beam"):
        blocked = run(MarkovModel(tables), list(range(5)), method=method, max_len=30)
        free = run(MarkovModel(tables), list(range(5)), method=method, max_len=30, block_ngram=0)
        assert all(not repeated_ngrams([BOS] + s) for s in blocked)
        assert any(repeated_ngrams(s) for s in free)


def test_block_repeated_ngrams_masks_only_completions():
    seqs = torch.tensor([[BOS, A, B, C, A, B],    # (A, B) seen before C: C is banned
                         [BOS, A, A, A, A, A],    # (A, A, A) seen: A banned
                         [BOS, A, B, C, D, E]])   # no repeated context
    logp = block_repeated_ngrams(seqs, torch.zeros(3, V), 3)
    assert torch.isinf(logp).nonzero().tolist() == [[0, C], [1, A]]
    bigram = block_repeated_ngrams(seqs, torch.zeros(3, V), 2)  # after B: C; after A: A
    assert torch.isinf(bigram).nonzero().tolist() == [[0, C], [1, A]]
    short = block_repeated_ngrams(seqs[:, :2], torch.zeros(3, V), 3)
    assert not torch.isinf(short).any()


# --- a tiny real UAR model ---
def _uar_greedy(model, tokens):
    eos = model.cfg.eos_id
    with torch.no_grad():
        rows = model.greedy(tokens).tolist()  # eos included, pad after it
    return [row[:row.index(eos)] if eos in row else row for row in rows]


@pytest.fixture(scope="module")
def uar():
    """cpu_small UAR at its init, with the eos bias raised until greedy rows end at several
    lengths (the first such bias on a 0.025 grid; at bias 0 every row runs to max_len)."""
    from uarbench.models.uar.config import UARConfig
    from uarbench.models.uar.model import UARModel
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = UARConfig.cpu_small(vocab_size=30, max_seq_length=12, n_views=2)
    model = UARModel(cfg).eval()
    tokens = torch.randint(0, cfg.codebook_size, (8, 2, 8, 8),
                           generator=torch.Generator().manual_seed(0))
    for step in range(40):
        with torch.no_grad():
            model.head.bias[cfg.eos_id] = 0.025 * step
        if len({len(s) for s in _uar_greedy(model, tokens)}) >= 3:
            break
    torch.set_num_threads(before)
    return model, tokens


def test_uar_greedy_equals_model_greedy(uar):
    model, tokens = uar
    cfg = model.cfg
    assert isinstance(model, Decodable)
    expected = _uar_greedy(model, tokens)
    assert len({len(s) for s in expected}) >= 3  # rows leave the batch at different steps
    got = decode(model, tokens, DecodeConfig(method="greedy", max_len=cfg.max_seq_length - 1,
                                             block_ngram=0),
                 bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
    assert got == expected


def test_uar_beam_returns_valid_ids(uar):
    model, tokens = uar
    cfg = model.cfg
    out = decode(model, tokens, DecodeConfig(max_len=cfg.max_seq_length - 1),
                 bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
    assert len(out) == tokens.shape[0]
    for seq in out:
        assert len(seq) <= cfg.max_seq_length - 1 and cfg.eos_id not in seq
        assert all(isinstance(t, int) and 0 <= t < cfg.vocab_size for t in seq)
        assert not repeated_ngrams([cfg.bos_id] + seq)


@pytest.mark.parametrize("overrides, stage", [
    ({}, 2),                                           # LSU, CRA, TIR bias in use
    ({"lsu": False, "tir": False, "cra_integration": False}, 1),  # the Base path
    ({"norm_first": False, "fusion": "add"}, 1),       # post-norm layers
])
def test_incremental_step_equals_recomputing_the_prefix(overrides, stage):
    from uarbench.models.uar.config import UARConfig
    from uarbench.models.uar.model import UARModel
    torch.manual_seed(0)
    cfg = UARConfig(**{**dict(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=2,
                              dropout=0.0, vocab_size=20, max_seq_length=12, image_size=16,
                              crop_size=16, basis_size=64, codebook_size=32, cnn_arch="resnet18"),
                       **overrides})
    model = UARModel(cfg).eval()
    model.set_stage(stage)
    if model.tir is not None:  # a mask that is not constant, so each row of Eq. 11 matters
        for m in model.tir.masks:
            torch.nn.init.normal_(m.M, std=2.0)
    inputs = (torch.randint(0, cfg.codebook_size, (3, 2, cfg.token_grid, cfg.token_grid)) if cfg.lsu
              else torch.rand(3, 2, 1, cfg.crop_size, cfg.crop_size))
    ids = torch.randint(3, cfg.vocab_size, (3, cfg.max_seq_length))
    ids[:, 0] = cfg.bos_id
    with torch.no_grad():
        memory = model.encode(inputs)
        mask = torch.ones(memory.shape[:2], dtype=torch.bool)
        mask[1, -3:] = False  # some visual tokens of row 1 are padding
        cache = model.start_decoding(memory, mask)
        for t in range(1, cfg.max_seq_length + 1):
            full = model.decode_step(memory, mask, ids[:, :t])
            step = model.decode_next(cache, ids[:, :t])
            torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="the cache holds"):
            model.decode_next(cache, ids[:, :2])


@pytest.mark.parametrize("K", [1, 3])
def test_searches_with_the_cache_equal_the_searches_without(uar, K):
    model, tokens = uar
    cfg = model.cfg
    with torch.no_grad():
        memory = model.encode(tokens)
    kw = dict(max_len=cfg.max_seq_length - 1, bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
    cached = beam_search(model, memory, beam_size=K, block_ngram=3, **kw)
    plain = beam_search(model, memory, beam_size=K, block_ngram=3, incremental=False, **kw)
    assert cached == plain and len({len(s) for s in plain}) >= 2  # rows left at different steps
    assert greedy_search(model, memory, **kw) == greedy_search(model, memory, incremental=False, **kw)


class _CheckedCache:
    """Wraps a UAR model: every cached step is compared with recomputing the whole prefix on the
    memory rows the search says each hypothesis continues (so a wrong select() shows)."""

    def __init__(self, model):
        self.model, self.steps = model, 0

    def encode(self, x):
        return self.model.encode(x)

    def decode_step(self, memory, memory_mask, prefix_ids):
        return self.model.decode_step(memory, memory_mask, prefix_ids)

    def start_decoding(self, memory, memory_mask, group=1):
        cache = self.model.start_decoding(memory, memory_mask, group=group)
        assert cache.group == group
        # the cache holds one memory row per input, the check one per hypothesis
        self.memory, select = memory.repeat_interleave(group, dim=0), cache.select

        def tracked(index):
            select(index)
            self.memory = self.memory.index_select(0, index)
        cache.select = tracked
        return cache

    def decode_next(self, cache, prefix_ids):
        got = self.model.decode_next(cache, prefix_ids)
        torch.testing.assert_close(got, self.model.decode_step(self.memory, None, prefix_ids),
                                   rtol=1e-5, atol=1e-5)
        self.steps += 1
        return got


def test_beam_search_keeps_each_hypothesis_cache_with_its_prefix(uar):
    model, tokens = uar
    cfg = model.cfg
    checked = _CheckedCache(model)
    with torch.no_grad():
        memory = model.encode(tokens)
        words = model.lsu.text.words.weight.clone()
        model.lsu.text.words.weight.mul_(40)  # outputs that depend strongly on the prefix
        try:
            out = beam_search(checked, memory, beam_size=3, block_ngram=3,
                              max_len=cfg.max_seq_length - 1, bos_id=cfg.bos_id,
                              eos_id=cfg.eos_id, pad_id=cfg.pad_id)
        finally:
            model.lsu.text.words.weight.copy_(words)
    assert checked.steps > 1 and len(out) == tokens.shape[0]


def test_a_grouped_cache_shares_memory_and_refuses_to_split_a_group(uar):
    """With beams sharing one memory row, reordering within an input leaves the memory alone,
    dropping an input drops its row, and a select() that splits a group is refused."""
    model, tokens = uar
    with torch.no_grad():
        memory = model.encode(tokens)
        cache = model.start_decoding(memory, None, group=3)
        mem_k = cache.layers[0]["mem_k"]
        assert mem_k.shape[0] == tokens.shape[0] and cache.layers[0]["k"].shape[0] == 3 * tokens.shape[0]
        cache.select(torch.tensor([2, 0, 1, 3, 3, 5] + list(range(6, 3 * tokens.shape[0]))))
        assert cache.layers[0]["mem_k"] is mem_k
        cache.select(torch.arange(3, 3 * tokens.shape[0]))  # input 0 is done
        assert torch.equal(cache.layers[0]["mem_k"], mem_k[1:])
        with pytest.raises(ValueError, match="blocks of 3"):
            cache.select(torch.tensor([0, 1, 3] + list(range(3, cache.layers[0]["k"].shape[0]))))


@pytest.mark.parametrize("method", ["beam", "greedy"])
def test_a_decoding_step_waits_for_the_device_at_most_once(method):
    """Issue 13: the search keeps its bookkeeping on the device; the host reads one small
    tensor per step (which rows stop), plus the results once at the end."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from test_model_contract import build, inputs
    from uarbench.training.syncs import count_host_syncs
    cls, cfg, model = build("uar", {"two_stage": False})
    with torch.no_grad():
        memory = model.encode(next(iter(inputs(cls, cfg, B=5).values())))
    max_len = 10
    kw = dict(max_len=max_len, bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
    with count_host_syncs() as calls:
        if method == "beam":
            out = beam_search(model, memory, beam_size=3, block_ngram=3, **kw)
        else:
            out = greedy_search(model, memory, **kw)
    assert len(out) == 5
    assert sum(calls.values()) <= max_len + 2, dict(calls)  # one per step + the final read
