"""The contract every registered trainable model keeps (UAR and each ablation switch, Base,
R2Gen, R2GenCMN), tested once for all: teacher forcing is causal (a position's logits never see
later words), padding changes nothing for the real positions, incremental decoding equals
recomputing the prefix, and a checkpoint reloads to the same outputs."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from uarbench.models import MODELS
from uarbench.models.uar.config import VQConfig
from uarbench.training.decoding import greedy_search

TINY = dict(d_model=32, n_heads=2, cra_heads=2, rm_heads=2, d_ff=64, n_layers=1, dropout=0.0,
            vocab_size=20, max_seq_length=12, image_size=64, crop_size=64, basis_size=64,
            codebook_size=32, memory_size=64, topk=8, vq=VQConfig(hidden=8, embed_dim=8))
TRAINABLE = [n for n in MODELS.names() if hasattr(MODELS.get(n), "config_class")]
CASES = [(n, {}) for n in TRAINABLE] + [("uar", {"two_stage": False}), ("uar", {"lsu": False})]


def build(name: str, extra: dict):
    cls = MODELS.get(name)
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    cfg = cls.config_class.cpu_small(**{k: v for k, v in {**TINY, **extra}.items() if k in fields})
    torch.manual_seed(0)
    model = cls(cfg).eval()
    if hasattr(model, "set_stage"):
        model.set_stage(2 if getattr(cfg, "two_stage", False) else 1)
    return cls, cfg, model


def inputs(cls, cfg, B: int = 3):
    g = torch.Generator().manual_seed(1)
    if cls.uses_image_tokens(cfg):
        grid = cfg.crop_size // cfg.token_downsample
        return {"image_tokens": torch.randint(0, cfg.codebook_size, (B, cfg.n_views, grid, grid),
                                              generator=g)}
    return {"images": torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, generator=g)}


def ids_batch(cfg, B: int = 3, T: int = 9, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    ids[:, 0] = cfg.bos_id
    return ids


@pytest.fixture(params=CASES, ids=lambda c: c[0] + "".join(f"-{k}={v}" for k, v in c[1].items()))
def case(request):
    return build(*request.param)


def test_the_registry_lists_every_trainable_model():
    assert set(TRAINABLE) == {"uar", "base", "r2gen", "r2gencmn"}


@torch.no_grad()
def test_teacher_forcing_is_causal(case):
    cls, cfg, model = case
    x, ids = inputs(cls, cfg), ids_batch(cfg)
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 1 - 3) % (cfg.vocab_size - 3) + 3   # other later words
    a = model({**x, "ids": ids})["logits"]
    b = model({**x, "ids": changed})["logits"]
    # logits[:, t] predict word t+1 from words <= t: positions before 5 never see the change
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@torch.no_grad()
def test_padding_changes_nothing_for_real_positions(case):
    cls, cfg, model = case
    x, ids = inputs(cls, cfg), ids_batch(cfg, T=7)
    padded = torch.cat([ids, torch.full((ids.shape[0], 3), cfg.pad_id)], dim=1)
    a = model({**x, "ids": ids, "mask": ids != cfg.pad_id})["logits"]
    b = model({**x, "ids": padded, "mask": padded != cfg.pad_id})["logits"]
    torch.testing.assert_close(a, b[:, :a.shape[1]], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_incremental_decoding_equals_recomputing_the_prefix(case):
    cls, cfg, model = case
    memory = model.encode(next(iter(inputs(cls, cfg).values())))
    kw = dict(max_len=cfg.max_seq_length - 1, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
              pad_id=cfg.pad_id, block_ngram=3)
    assert greedy_search(model, memory, **kw) == greedy_search(model, memory, incremental=False,
                                                               **kw)


@torch.no_grad()
def test_a_checkpoint_reloads_to_the_same_outputs(case):
    cls, cfg, model = case
    batch = {**inputs(cls, cfg), "ids": ids_batch(cfg)}
    again = cls.from_checkpoint(model.to_checkpoint()).eval()
    assert again.cfg == model.cfg
    torch.testing.assert_close(model(batch)["logits"], again(batch)["logits"], rtol=0, atol=0)
