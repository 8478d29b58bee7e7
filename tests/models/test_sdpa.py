"""The fused attention path (``F.scaled_dot_product_attention``) computes what the explicit
reference computes: outputs and gradients (TIR's masks included) equal to 1e-5 in fp32, for each
kind of attention the models use (encoder with and without a key mask, the decoder's causal
self-attention with padding, cross-attention with Eq. 11's bias, CRA's basis shared by the batch,
beam-grouped decoding) and for every registered trainable model end to end."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from test_model_contract import CASES, build, ids_batch, inputs
from uarbench.models.layers import MultiHeadAttention, use_attention

TOL = 1e-5


def _pair(d: int = 32, h: int = 4):
    torch.manual_seed(0)
    ref = MultiHeadAttention(d, h)
    fused = copy.deepcopy(ref)
    ref.sdpa, fused.sdpa = False, True
    return ref, fused


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = max(1.0, a.abs().max().item())
    assert (a - b).abs().max().item() <= TOL * scale, (a - b).abs().max().item()


def _outputs_and_grads(mha, query, key, bias_param=None, **kw):
    mha.zero_grad()
    if bias_param is not None:
        bias_param.grad = None
        kw["logit_bias"] = 1000.0 * torch.sigmoid(bias_param)
    y = mha(query, key, key, **kw)
    weights = torch.linspace(-1, 1, y.numel()).view_as(y)  # a loss whose gradient is not flat
    (y * weights).sum().backward()
    grads = [p.grad.clone() for p in mha.parameters()]
    if bias_param is not None:
        grads.append(bias_param.grad.clone())
    return y.detach(), grads


CALLS = {
    "self": dict(T=7, S=7, kw={}),
    "self-key-mask": dict(T=7, S=7, kw={"key_mask": True}),
    "causal": dict(T=7, S=7, kw={"causal": True}),
    "causal-padded": dict(T=7, S=7, kw={"causal": True, "key_mask": True}),
    "cross": dict(T=5, S=11, kw={}),
    "cross-tir-bias": dict(T=5, S=11, kw={"bias": True}),
    "cross-tir-bias-key-mask": dict(T=5, S=11, kw={"bias": True, "key_mask": True}),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_sdpa_equals_the_explicit_reference(name):
    spec = CALLS[name]
    ref, fused = _pair()
    g = torch.Generator().manual_seed(3)
    B, T, S = 3, spec["T"], spec["S"]
    q = torch.randn(B, T, 32, generator=g)
    k = q if T == S and name.startswith(("self", "causal")) else torch.randn(B, S, 32, generator=g)
    kw = {}
    if spec["kw"].get("causal"):
        kw["causal"] = True
    if spec["kw"].get("key_mask"):
        lengths = torch.tensor([S, S - 2, 3])
        kw["key_mask"] = torch.arange(S)[None, :] < lengths[:, None]
    bias = (torch.randn(T, S, generator=g) * 0.5).requires_grad_(True) \
        if spec["kw"].get("bias") else None
    y_ref, g_ref = _outputs_and_grads(ref, q, k, bias, **kw)
    y_new, g_new = _outputs_and_grads(fused, q, k, bias, **kw)
    _close(y_ref, y_new)
    assert len(g_ref) == len(g_new)
    for a, b in zip(g_ref, g_new, strict=True):
        _close(a, b)
    if bias is not None:  # the TIR mask's gradient is real, not zero, and equal
        assert g_ref[-1].abs().max() > 1e-3


def test_shared_keys_are_read_once_and_equal():
    """CRA: K, V of the basis (1, H, S, hd) shared by a batch of B queries."""
    ref, fused = _pair()
    g = torch.Generator().manual_seed(4)
    e, basis = torch.randn(4, 6, 32, generator=g), torch.randn(1, 40, 32, generator=g)
    for mha in (ref, fused):
        mha.zero_grad()
    ys = []
    for mha in (ref, fused):
        k, v = mha.project_kv(basis, basis)
        y = mha.attend(e, k, v)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        ys.append(y.detach())
    _close(*ys)
    for a, b in zip(ref.parameters(), fused.parameters(), strict=True):
        _close(a.grad, b.grad)


def test_grouped_decoding_step_equals_the_reference():
    ref, fused = _pair()
    g = torch.Generator().manual_seed(5)
    memory = torch.randn(2, 9, 32, generator=g)
    query = torch.randn(2 * 3, 1, 32, generator=g)  # 3 beams per memory row
    bias = torch.randn(1, 9, generator=g)
    with torch.no_grad():
        out = [m.attend(query, *m.project_kv(memory, memory), logit_bias=bias, group=3)
               for m in (ref, fused)]
    _close(*out)


def test_a_fully_masked_row_stays_finite():
    _, fused = _pair()
    q = torch.randn(2, 3, 32)
    y = fused(q, q, q, key_mask=torch.zeros(2, 3, dtype=torch.bool), causal=True)
    assert torch.isfinite(y).all()


@pytest.fixture(params=CASES, ids=lambda c: c[0] + "".join(f"-{k}={v}" for k, v in c[1].items()))
def case(request):
    return build(*request.param)


def test_every_model_trains_and_decodes_the_same_under_both_paths(case):
    cls, cfg, model = case
    model.train()  # dropout is 0 in the tiny configs: train mode only switches the code paths
    twin = copy.deepcopy(model)
    use_attention(model, "explicit")
    use_attention(twin, "sdpa")
    ids = ids_batch(cfg)
    ids[1, 6:] = cfg.pad_id  # a padded report
    batch = {**inputs(cls, cfg), "ids": ids}
    results = []
    for m in (model, twin):
        m.zero_grad()
        out = m(batch)
        out["loss"].backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        results.append((out["logits"].detach(), out["loss"].item(), grads))
    (l_ref, loss_ref, g_ref), (l_new, loss_new, g_new) = results
    real = ids[:, 1:] != cfg.pad_id
    _close(l_ref[real], l_new[real])
    assert math.isclose(loss_ref, loss_new, rel_tol=TOL, abs_tol=TOL)
    assert g_ref.keys() == g_new.keys()
    for name in g_ref:
        _close(g_ref[name], g_new[name])
    if getattr(model, "tir_active", False):
        assert any(n.startswith("tir.") for n in g_ref)


def test_the_attention_setting_reaches_every_attention_module():
    cls, cfg, model = build("uar", {})
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    assert modules and all(m.sdpa for m in modules)  # the config's default
    explicit = cls(cfg.replace(attention="explicit"))
    assert not any(m.sdpa for m in explicit.modules() if isinstance(m, MultiHeadAttention))
    with pytest.raises(ValueError):
        use_attention(model, "flash")
