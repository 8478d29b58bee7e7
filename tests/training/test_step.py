"""The training step of issue 13: no host sync inside a step (loss terms are read one step late),
a diverged loss is still caught (one step late, before any checkpoint), ``compile`` trains the
same model, and DDP looks for unused parameters only in a stage that leaves some unused."""
from __future__ import annotations

import pytest
import torch

from uarbench.data.tokenizer import WordTokenizer
from uarbench.models.uar import UARConfig, UARModel
from uarbench.models.uar.config import VQConfig
from uarbench.training.config import TrainConfig
from uarbench.training.syncs import count_host_syncs
from uarbench.training.trainer import (LOSS_TERMS, LaggedScalars, Trainer, TrainingDiverged,
                                       check_finite, stage_leaves_parameters_unused)

CFG = UARConfig.cpu_small(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=1, basis_size=64,
                          codebook_size=32, vocab_size=30, max_seq_length=12,
                          vq=VQConfig(hidden=8, embed_dim=8, steps=5))


def _trainer(tmp_path, model, **train):
    tok = WordTokenizer.build(["a b c"], threshold=1, max_seq_length=CFG.max_seq_length)
    return Trainer(model, TrainConfig.cpu_small(threads=1, device="cpu", **train), tok,
                   image_input=lambda x: {"image_tokens": x}, out_dir=tmp_path)


def _batch(seed=0, B=4):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, CFG.codebook_size, (B, CFG.n_views, CFG.token_grid, CFG.token_grid),
                           generator=g)
    ids = torch.randint(3, CFG.vocab_size, (B, 10), generator=g)
    ids[:, 0] = CFG.bos_id
    return tokens, ids


@pytest.mark.parametrize("stage", [1, 2])
def test_a_training_step_makes_no_host_sync(tmp_path, stage):
    torch.manual_seed(0)
    model = UARModel(CFG)
    model.set_stage(stage)
    trainer = _trainer(tmp_path, model)
    opt, _ = trainer._optimiser()
    images, ids = _batch()
    trainer._step(opt, images, ids)  # warm-up (lazy optimiser state)
    with count_host_syncs() as calls:
        terms = trainer._step(opt, images, ids)
    assert sum(calls.values()) == 0, dict(calls)
    assert terms.shape == (len(LOSS_TERMS),)
    # the counter does count: reading the terms is a sync
    with count_host_syncs() as calls:
        terms.tolist()
    assert calls["tolist"] == 1


def test_lagged_values_arrive_one_step_late_and_flush_returns_the_last():
    lag = LaggedScalars(("a", "b"))
    assert lag.push({"step": 1}, torch.tensor([1.0, 2.0])) is None
    assert lag.push({"step": 2}, torch.tensor([3.0, 4.0])) == ({"step": 1}, {"a": 1.0, "b": 2.0})
    assert lag.flush() == ({"step": 2}, {"a": 3.0, "b": 4.0})
    assert lag.flush() is None


def test_a_non_finite_term_names_its_step():
    check_finite({"ce": 1.0}, 3)
    with pytest.raises(TrainingDiverged, match=r"'mask' is inf at step 7"):
        check_finite({"ce": 1.0, "mask": float("inf")}, 7)


def test_compiled_step_trains_like_the_eager_step(tmp_path, monkeypatch):
    # dynamo traces the real model; aot_eager skips inductor's C++ code generation, which takes
    # minutes on 2 cores (the option itself compiles with torch's default backend)
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m: compile_(m, backend="aot_eager"))
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = UARModel(CFG)
        trainer = _trainer(tmp_path / str(compiled), model, compile=compiled)
        opt, _ = trainer._optimiser()
        losses[compiled] = [trainer._step(opt, *_batch(seed)).tolist() for seed in range(3)]
    assert trainer._forward is not model  # the compiled wrapper was used
    torch.testing.assert_close(torch.tensor(losses[True]), torch.tensor(losses[False]),
                               rtol=1e-4, atol=1e-5)


def test_only_stage_one_of_a_two_stage_model_leaves_parameters_unused():
    two = UARModel(CFG)
    assert stage_leaves_parameters_unused(two, 1)
    assert not stage_leaves_parameters_unused(two, 2)
    assert not stage_leaves_parameters_unused(UARModel(CFG.replace(two_stage=False)), 1)  # row f
    assert not stage_leaves_parameters_unused(UARModel(CFG.replace(tir=False)), 1)  # row e


def test_the_eval_batch_size_follows_the_device():
    cfg = TrainConfig.paper(eval_batch_size=8, eval_batch_size_gpu=96)
    assert cfg.eval_batch_size_on("cuda") == 96 and cfg.eval_batch_size_on("cpu") == 8
    with pytest.raises(Exception, match="eval_batch_size_gpu"):
        TrainConfig(eval_batch_size_gpu=0)
