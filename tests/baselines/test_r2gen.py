"""R2Gen: the trainable-model contract (forward, decoding, Trainer, checkpoints, padding and
causality) and its two parts, the relational memory and memory-driven conditional layer norm.

The ``check_*`` helpers test the contract for any R2Gen-lineage model; test_r2gencmn.py reuses them.
"""
from __future__ import annotations

import pytest
import torch

from baselines.r2gen import ConditionalLayerNorm, R2GenConfig, R2GenModel, RelationalMemory
from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.errors import UarbenchError
from uarbench.models import MODELS
from uarbench.training.config import TrainConfig
from uarbench.training.data import split_tensors
from uarbench.training.decoding import DecodeConfig, decode
from uarbench.training.trainer import Trainer

# d 32, 2 layers, 16 px crops -> one ResNet patch per view, 2 visual tokens
TINY = dict(d_model=32, n_heads=2, d_ff=64, n_layers=2, dropout=0.0, vocab_size=20,
            max_seq_length=12, image_size=16, crop_size=16, cnn_arch="resnet18")


def tiny_r2gen(**overrides) -> R2GenConfig:
    return R2GenConfig(**{**TINY, "rm_heads": 2, **overrides})


def tiny_batch(cfg, B: int = 4, T: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    """bos + words + eos, row b shortened by b pad tokens; random images."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    ids[:, 0] = cfg.bos_id
    for b in range(B):
        ids[b, T - b - 1] = cfg.eos_id
        ids[b, T - b:] = cfg.pad_id
    images = torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, generator=g)
    return {"ids": ids, "images": images}


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(batch)["logits"]


# --- contract checks shared with test_r2gencmn.py ------------------------------------------------------
def check_forward(model_cls, cfg) -> None:
    torch.manual_seed(0)
    model = model_cls(cfg)
    batch = tiny_batch(cfg)
    out = model(batch)
    assert set(out) == {"loss", "ce", "global_", "mask", "logits"}
    assert out["logits"].shape == (4, 9, cfg.vocab_size)
    assert torch.isfinite(out["loss"]) and out["loss"].item() > 0
    assert out["global_"].item() == 0 and out["mask"].item() == 0
    torch.testing.assert_close(out["loss"], out["ce"])
    out["loss"].backward()
    assert model.cnn.resnet.conv1.weight.grad is not None  # the loss reaches the visual extractor
    assert model.encode(batch["images"]).shape == (4, cfg.n_visual_tokens, cfg.d_model)
    assert model.uses_image_tokens(cfg) is False and model.training_stages() == (1,) and model.config_class is type(cfg)
    side = {id(p) for p in model.image_side_parameters()}
    assert id(model.cnn.resnet.conv1.weight) in side and id(model.head.weight) not in side
    with pytest.raises(KeyError, match="images"):
        model({"ids": batch["ids"]})
    with pytest.raises(ValueError, match="float"):
        model.encode(batch["ids"])


def check_overfits(model_cls, cfg) -> None:
    torch.manual_seed(0)
    model = model_cls(cfg).train()
    model.cnn.resnet.requires_grad_(False)  # the ResNet's 11M weights would make this slow
    batch = tiny_batch(cfg, seed=1)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(20):
        out = model(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        losses.append(out["ce"].item())
    assert losses[-1] < 0.3 * losses[0], losses


def check_decoding(model_cls, cfg) -> None:
    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    images = tiny_batch(cfg)["images"]
    for dcfg in (DecodeConfig(method="greedy", max_len=8), DecodeConfig(beam_size=3, max_len=8)):
        seqs = decode(model, images, dcfg, bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
        assert len(seqs) == 4
        for s in seqs:
            assert len(s) <= 8 and all(0 <= t < cfg.vocab_size and t != cfg.eos_id for t in s)


def check_decode_step_matches_teacher_forcing(model_cls, cfg) -> None:
    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    batch = tiny_batch(cfg)
    full = logits(model, batch)
    with torch.no_grad():
        memory = model.encode(batch["images"])
        for t in (1, 4, 9):
            step = model.decode_step(memory[:1], None, batch["ids"][:1, :t])
            torch.testing.assert_close(step, full[:1, t - 1].log_softmax(-1), atol=1e-5, rtol=1e-5)


def check_checkpoint_round_trip(model_cls, cfg) -> None:
    torch.manual_seed(0)
    model = model_cls(cfg)
    with torch.no_grad():  # move every weight off its init so the state dict has to carry it
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ckpt = model.to_checkpoint()
    restored = model_cls.from_checkpoint(ckpt)
    assert restored.cfg == cfg and type(restored) is model_cls
    batch = tiny_batch(cfg)
    assert torch.equal(logits(restored, batch), logits(model, batch))


def check_padding_invariance(model_cls, cfg) -> None:
    """Appending pad tokens (a longer batch) leaves the logits of every real position and the
    loss unchanged."""
    torch.manual_seed(0)
    model = model_cls(cfg)
    batch = tiny_batch(cfg, T=8)
    longer = dict(batch, ids=torch.cat([batch["ids"], torch.full((4, 3), cfg.pad_id)], dim=1))
    short, long = logits(model, batch), logits(model, longer)
    real = (batch["ids"] != cfg.pad_id)[:, :-1]  # input positions holding real tokens
    torch.testing.assert_close(long[:, :7][real], short[real], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and pad targets carry no loss
        torch.testing.assert_close(model(longer)["ce"], model(batch)["ce"], atol=1e-5, rtol=1e-5)


def check_causality(model_cls, cfg) -> None:
    """The logits at position t read tokens <= t only: rewriting tokens > t changes none of them."""
    torch.manual_seed(0)
    model = model_cls(cfg)
    batch = tiny_batch(cfg, B=2, T=10)
    batch["ids"][:, -1] = cfg.eos_id  # no padding: every position is real
    base = logits(model, batch)
    for k in (1, 4, 7):
        other = batch["ids"].clone()
        other[:, k:] = torch.randint(3, cfg.vocab_size, other[:, k:].shape)
        changed = logits(model, dict(batch, ids=other))
        torch.testing.assert_close(changed[:, :k], base[:, :k], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(changed[:, k], base[:, k])  # position k does read token k


def check_trainer(model_cls, cfg, tmp_path) -> None:
    """The project's Trainer trains the model on a tiny synth-cxr and selects a checkpoint."""
    root = generate_synth(tmp_path / "synth", SynthConfig(n_train=8, n_val=3, n_test=3, size=64,
                                                          seed=3), progress=False)
    dataset = load_dataset("synth-cxr", root)
    words = dataset.tokenizer
    cfg = cfg.replace(vocab_size=len(words), max_seq_length=words.max_seq_length,
                      image_size=72, crop_size=64)
    train = split_tensors(dataset, "train", words, cfg.image_size)
    val = split_tensors(dataset, "val", words, cfg.crop_size)
    torch.manual_seed(0)
    model = model_cls(cfg)
    tcfg = TrainConfig.cpu_small(epochs_stage1=2, batch_size=8, threads=1, device="cpu",
                                 select_decode=DecodeConfig(method="greedy", max_len=6))
    trainer = Trainer(model, tcfg, words, lambda x: {"images": x}, tmp_path / "run")
    assert trainer.stages == (1,)
    best = trainer.fit(train, val, cfg.crop_size)
    assert best["stage"] == 1 and best["epoch"] in (0, 1)
    rows = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert sum('"ce"' in r for r in rows) == 2 and sum("val_bleu4" in r for r in rows) == 2
    texts = trainer.predict(val, DecodeConfig(beam_size=2, max_len=6))
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


# --- R2Gen ---------------------------------------------------------------------------------------------
def test_presets_and_config_round_trip():
    paper = R2GenConfig.paper()
    assert (paper.d_model, paper.d_ff, paper.n_heads, paper.n_layers, paper.rm_slots) == (512, 512, 8, 3, 3)
    assert paper.cnn_arch == "resnet101" and paper.cnn_grid == 7 and paper.n_visual_tokens == 98
    small = R2GenConfig.cpu_small(vocab_size=50)
    assert small.d_model == 128 and small.crop_size == 64 and small.vocab_size == 50
    assert R2GenConfig.from_dict(small.to_dict()) == small
    with pytest.raises(UarbenchError, match="n_heads"):
        R2GenConfig(d_model=30, n_heads=8)
    with pytest.raises(UarbenchError, match="unknown R2GenConfig fields"):
        R2GenConfig.from_dict({**small.to_dict(), "topk": 3})
    with pytest.raises(UarbenchError, match="vocab_size"):
        R2GenModel(R2GenConfig.cpu_small())
    assert MODELS.get("r2gen") is R2GenModel


def test_forward_shapes_loss_and_contract():
    check_forward(R2GenModel, tiny_r2gen())


def test_loss_falls_when_overfitting_four_examples():
    check_overfits(R2GenModel, tiny_r2gen())


def test_greedy_and_beam_decoding_give_valid_ids():
    check_decoding(R2GenModel, tiny_r2gen())


def test_decode_step_matches_teacher_forcing():
    check_decode_step_matches_teacher_forcing(R2GenModel, tiny_r2gen())


def test_checkpoint_round_trip_gives_identical_logits():
    check_checkpoint_round_trip(R2GenModel, tiny_r2gen())


def test_appended_padding_changes_no_real_logit():
    check_padding_invariance(R2GenModel, tiny_r2gen())


def test_logits_do_not_read_future_tokens():
    check_causality(R2GenModel, tiny_r2gen())


def test_trainer_trains_r2gen(tmp_path):
    check_trainer(R2GenModel, tiny_r2gen(), tmp_path)


def test_relational_memory_is_causal_gated_and_starts_from_unit_slots():
    torch.manual_seed(0)
    rm = RelationalMemory(n_slots=3, d_model=8, n_heads=2).eval()
    torch.testing.assert_close(rm.initial, torch.eye(3, 8))
    x = torch.randn(2, 5, 8)
    out = rm(x)
    assert out.shape == (2, 5, 3 * 8)
    y = x.clone()
    y[:, 3:] = torch.randn(2, 2, 8)
    torch.testing.assert_close(rm(y)[:, :3], out[:, :3])      # rows before t = 3 unchanged
    assert not torch.allclose(rm(y)[:, 3], out[:, 3])         # row 3 reads input 3
    # the gates: with the input gate shut and the forget gate open the memory is carried over
    with torch.no_grad():
        rm.W.weight.zero_()
        rm.U.weight.zero_()
        rm.W.bias[:8].fill_(-1e4)   # input gate -> 0
        rm.W.bias[8:].fill_(1e4)    # forget gate -> 1
    torch.testing.assert_close(rm(x), torch.eye(3, 8).flatten().expand(2, 5, 24))


def test_mcln_shifts_and_scales_by_the_memory():
    torch.manual_seed(0)
    norm = ConditionalLayerNorm(d_model=6, memory_dim=12)
    x, m = torch.randn(2, 4, 6), torch.randn(2, 4, 12)
    plain = torch.nn.functional.layer_norm(x, (6,), eps=1e-6)
    assert not torch.allclose(norm(x, m), norm(x, 2 * m))     # the memory moves gamma and beta
    with torch.no_grad():  # MLP outputs zero: MCLN is the plain layer norm with gamma, beta
        for mlp in (norm.mlp_gamma, norm.mlp_beta):
            mlp[-1].weight.zero_()
            mlp[-1].bias.zero_()
        norm.gamma.fill_(2.0)
        norm.beta.fill_(0.5)
    torch.testing.assert_close(norm(x, m), 2.0 * plain + 0.5)


def test_memory_conditions_every_decoder_norm():
    """R2Gen's decoder is memory-driven: a different relational memory changes the logits."""
    torch.manual_seed(0)
    cfg = tiny_r2gen()
    model = R2GenModel(cfg)
    batch = tiny_batch(cfg)
    before = logits(model, batch)
    with torch.no_grad():
        model.rm.W.bias.add_(1.0)
    assert not torch.allclose(logits(model, batch), before)
    assert len([m for m in model.modules() if isinstance(m, ConditionalLayerNorm)]) == 3 * cfg.n_layers
