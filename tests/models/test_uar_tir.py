import math

import torch

from uarbench.models.uar.model import UARModel
from uarbench.models.uar.tir import TIR, TIRMask
from uar_helpers import make_cfg, make_batch  # noqa: F401 (pytest fixtures)


def test_bias_and_mask_loss_eq11_eq12():
    m = TIRMask(6, 4, k=1000.0)
    with torch.no_grad():
        m.M.copy_(torch.randn(6, 4))
    torch.testing.assert_close(m.bias(3, 2), 1000.0 * torch.sigmoid(m.M[:3, :2]))
    expected = sum(1 - 1 / (1 + math.exp(-float(v))) for v in m.M.detach().flatten().tolist())
    assert math.isclose(m.mask_loss().item(), expected, rel_tol=1e-5)


def test_init_is_zero_and_loss_is_half_per_entry():
    tir = TIR(3, 10, 8, 1000.0)
    assert all((m.M == 0).all() for m in tir.masks)
    assert tir.mask_loss().item() == 3 * 10 * 8 * 0.5  # summed over layers
    assert torch.allclose(tir.biases(2, 8)[0], torch.full((2, 8), 500.0))


def record_cross_biases(model: UARModel) -> list:
    seen = []
    for layer in model.decoder.layers:
        layer.cross_attn.register_forward_pre_hook(
            lambda mod, args, kwargs: seen.append(kwargs.get("logit_bias")), with_kwargs=True)
    return seen


def test_decoder_cross_attention_gets_eq11_bias_only_when_active(make_cfg, make_batch):
    cfg = make_cfg()
    model = UARModel(cfg).eval()
    batch = make_batch(cfg)
    with torch.no_grad():
        for m in model.tir.masks:
            m.M.normal_()
    seen = record_cross_biases(model)
    model(batch)  # stage 1: no mask in use
    assert seen == [None] * cfg.n_layers
    seen.clear()
    model.set_stage(2)
    model(batch)
    T, L = batch["ids"].shape[1] - 1, cfg.n_visual_tokens
    for bias, mask in zip(seen, model.tir.masks, strict=True):
        torch.testing.assert_close(bias, cfg.tir_k * torch.sigmoid(mask.M[:T, :L]))


def test_stage1_masks_get_no_gradient_stage2_does(make_cfg, make_batch):
    cfg = make_cfg()
    batch = make_batch(cfg)
    model = UARModel(cfg)
    model(batch)["loss"].backward()
    assert all(m.M.grad is None for m in model.tir.masks)
    model.zero_grad(set_to_none=True)
    model.set_stage(2)
    out = model(batch)
    assert out["mask"].item() == cfg.n_layers * cfg.max_seq_length * cfg.n_visual_tokens * 0.5
    out["loss"].backward()
    assert all(m.M.grad is not None and m.M.grad.abs().sum() > 0 for m in model.tir.masks)


def test_two_stage_off_uses_masks_from_the_start(make_cfg, make_batch):
    """Ablation row (f): one stage with (l1, l2, l3) = (1, 1, 1)."""
    cfg = make_cfg(two_stage=False)
    model = UARModel(cfg)
    assert model.stage == 1 and model.tir_active
    out = model(make_batch(cfg))
    assert out["mask"].item() > 0
    out["loss"].backward()
    assert all(m.M.grad is not None for m in model.tir.masks)
