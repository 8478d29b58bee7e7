"""R2GenCMN: the trainable-model contract (shared checks from test_r2gen.py) and its cross-modal
memory: top-k attention that gives weight to exactly k slots, responses added on both sides."""
from __future__ import annotations

import math

import pytest
import torch

from baselines.r2gencmn import R2GenCMNConfig, R2GenCMNModel, TopKMemoryAttention
from test_r2gen import (TINY, check_causality, check_checkpoint_round_trip,
                        check_decode_step_matches_teacher_forcing, check_decoding, check_forward,
                        check_overfits, check_padding_invariance, check_trainer, logits, tiny_batch)
from uarbench.errors import UarbenchError
from uarbench.models import MODELS


def tiny_cmn(**overrides) -> R2GenCMNConfig:
    return R2GenCMNConfig(**{**TINY, "memory_size": 24, "topk": 4, **overrides})


def test_presets_and_config_round_trip():
    paper = R2GenCMNConfig.paper()
    assert (paper.memory_size, paper.d_model, paper.topk, paper.n_heads) == (2048, 512, 32, 8)
    assert paper.cnn_arch == "resnet101" and paper.n_visual_tokens == 98
    small = R2GenCMNConfig.cpu_small(vocab_size=50)
    assert small.d_model == 128 and small.memory_size < paper.memory_size
    assert R2GenCMNConfig.from_dict(small.to_dict()) == small
    with pytest.raises(UarbenchError, match="topk"):
        R2GenCMNConfig(memory_size=16, topk=32)
    assert MODELS.get("r2gencmn") is R2GenCMNModel


def test_topk_attention_weights_exactly_k_slots_per_query():
    torch.manual_seed(0)
    attn = TopKMemoryAttention(d_model=16, n_heads=4, topk=5)
    query, memory = torch.randn(2, 7, 16), torch.randn(40, 16)
    w = attn.weights(query, memory)  # (B, H, T, N)
    assert w.shape == (2, 4, 7, 40)
    assert ((w > 0).sum(dim=-1) == 5).all()  # exactly k slots per query and head
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(2, 4, 7))
    # the k kept slots are the k highest scores, weighted by the softmax over those scores only
    q = attn.q_proj(query).view(2, 7, 4, 4).transpose(1, 2)
    k = attn.k_proj(memory).view(40, 4, 4).transpose(0, 1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(4)
    top, idx = scores.topk(5, dim=-1)
    torch.testing.assert_close(w.gather(-1, idx), top.softmax(-1))
    # the response is the weighted sum of the projected memory: a full softmax gives another one
    v = attn.v_proj(memory).view(40, 4, 4).transpose(0, 1)
    expect = attn.out_proj((w @ v).transpose(1, 2).reshape(2, 7, 16))
    torch.testing.assert_close(attn(query, memory), expect)
    full = attn.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, 16))
    assert not torch.allclose(attn(query, memory), full)


def test_topk_equal_to_memory_size_is_full_softmax_attention():
    torch.manual_seed(0)
    attn = TopKMemoryAttention(d_model=8, n_heads=2, topk=6)
    w = attn.weights(torch.randn(1, 3, 8), torch.randn(6, 8))
    assert (w > 0).all()


def test_memory_responses_reach_both_the_image_and_the_text_side():
    torch.manual_seed(0)
    cfg = tiny_cmn()
    model = R2GenCMNModel(cfg).eval()
    batch = tiny_batch(cfg)
    with torch.no_grad():
        visual = model.encode(batch["images"])
        text = model.hidden(visual, None, batch["ids"], None)
        model.memory.add_(torch.randn_like(model.memory))   # another memory matrix
        assert not torch.allclose(model.encode(batch["images"]), visual)             # image side
        assert not torch.allclose(model.hidden(visual, None, batch["ids"], None), text)  # text side
        model.cmn.out_proj.weight.zero_()
        model.cmn.out_proj.bias.zero_()                     # responses 0: features pass unchanged
        x = torch.randn(2, 3, cfg.d_model)
        torch.testing.assert_close(model.respond(x), x)
    assert model.memory.shape == (cfg.memory_size, cfg.d_model)


def test_forward_shapes_loss_and_contract():
    check_forward(R2GenCMNModel, tiny_cmn())


def test_loss_falls_when_overfitting_four_examples():
    check_overfits(R2GenCMNModel, tiny_cmn())


def test_greedy_and_beam_decoding_give_valid_ids():
    check_decoding(R2GenCMNModel, tiny_cmn())


def test_decode_step_matches_teacher_forcing():
    check_decode_step_matches_teacher_forcing(R2GenCMNModel, tiny_cmn())


def test_checkpoint_round_trip_gives_identical_logits():
    check_checkpoint_round_trip(R2GenCMNModel, tiny_cmn())


def test_appended_padding_changes_no_real_logit():
    check_padding_invariance(R2GenCMNModel, tiny_cmn())


def test_logits_do_not_read_future_tokens():
    check_causality(R2GenCMNModel, tiny_cmn())


def test_trainer_trains_r2gencmn(tmp_path):
    check_trainer(R2GenCMNModel, tiny_cmn(), tmp_path)


def test_memory_matrix_is_trained():
    torch.manual_seed(0)
    cfg = tiny_cmn()
    model = R2GenCMNModel(cfg)
    batch = tiny_batch(cfg)
    model(batch)["loss"].backward()
    assert model.memory.grad is not None and model.memory.grad.abs().sum() > 0
    assert logits(model, batch).shape == (4, 9, cfg.vocab_size)
