import pytest
import torch

from uarbench.errors import UarbenchError
from uarbench.models.uar.model import UARModel
from uar_helpers import make_cfg, make_batch  # noqa: F401 (pytest fixtures)


def twin(model: UARModel, cfg) -> UARModel:
    """A model under ``cfg`` carrying every weight it shares with ``model``; the fixed basis
    buffer is not a weight but a product of ``cfg.basis``, so it stays ``cfg``'s own."""
    other = UARModel(cfg)
    own = other.state_dict()
    shared = {k: v for k, v in model.state_dict().items()
              if k in own and own[k].shape == v.shape and k != "cra.basis.basis"}
    other.load_state_dict(shared, strict=False)
    return other.eval()


def run(model: UARModel, batch) -> dict:
    with torch.no_grad():
        return model.eval()(batch)


def test_forward_backward_and_outputs(make_cfg, make_batch):
    cfg = make_cfg()
    model = UARModel(cfg)
    batch = make_batch(cfg)
    out = model(batch)
    assert set(out) == {"loss", "ce", "global_", "mask", "logits"}
    assert out["logits"].shape == (4, 9, cfg.vocab_size)
    expected = cfg.l1 * out["ce"] + cfg.l2 * out["global_"] + cfg.l3 * out["mask"]
    torch.testing.assert_close(out["loss"], expected)
    out["loss"].backward()
    assert model.lsu.image.tokens.weight.grad is not None
    assert model.cra.basis.gamma.grad is not None and model.cra.basis.beta.grad is not None


def test_ce_ignores_padding(make_cfg, make_batch):
    cfg = make_cfg()
    model = UARModel(cfg).eval()
    batch = make_batch(cfg)
    junk = dict(batch, ids=batch["ids"].masked_fill(~batch["mask"], 7))  # pad ids overwritten
    torch.testing.assert_close(run(model, junk)["ce"], run(model, batch)["ce"])


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(make_cfg, make_batch):
    torch.manual_seed(0)
    cfg = make_cfg()
    model = UARModel(cfg)
    model.set_stage(2)
    batch = make_batch(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(batch)
    losses = []
    for _ in range(15):
        out = model(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        losses.append((out["ce"].item(), out["mask"].item(), out["loss"].item()))
    assert losses[-1][0] < 0.7 * first["ce"].item()
    assert losses[-1][1] < first["mask"].item() and losses[-1][2] < first["loss"].item()


def test_cra_global_loss_switch_changes_only_the_total(make_cfg, make_batch):
    cfg = make_cfg()
    on = UARModel(cfg)
    off = twin(on, cfg.replace(cra_global_loss=False))
    batch = make_batch(cfg)
    a, b = run(on, batch), run(off, batch)
    torch.testing.assert_close(a["ce"], b["ce"])
    torch.testing.assert_close(a["logits"], b["logits"])
    assert a["global_"].item() > 0 and b["global_"].item() == 0
    assert a["loss"].item() != b["loss"].item()


@pytest.mark.parametrize("fusion", ["none", "add"])
def test_fusion_switch_changes_outputs(make_cfg, make_batch, fusion):
    cfg = make_cfg()
    gated = UARModel(cfg)
    other = twin(gated, cfg.replace(fusion=fusion))
    assert not any(k.startswith("cra.fuse.") for k in other.state_dict())
    batch = make_batch(cfg)
    assert not torch.allclose(run(gated, batch)["logits"], run(other, batch)["logits"])


def test_basis_switch_changes_only_the_basis(make_cfg, make_batch):
    cfg = make_cfg()
    ortho = UARModel(cfg)
    normal = twin(ortho, cfg.replace(basis="normal"))
    diff = [k for k, v in ortho.state_dict().items() if not torch.equal(v, normal.state_dict()[k])]
    assert diff == ["cra.basis.basis"]
    batch = make_batch(cfg)
    assert not torch.allclose(run(ortho, batch)["logits"], run(normal, batch)["logits"])


def test_without_cra_integration_f_equals_e(make_cfg, make_batch):
    cfg = make_cfg(cra_integration=False)
    model = UARModel(cfg)
    assert model.cra is None and not any(k.startswith("cra.") for k in model.state_dict())
    e = torch.randn(2, 3, cfg.d_model)
    assert model.align(e) is e
    out = run(model, make_batch(cfg))
    assert out["global_"].item() > 0  # row (c): L_Global on pooled E(I), E(R)
    with_cra = twin(model, make_cfg())
    assert not torch.allclose(run(with_cra, make_batch(cfg))["logits"], out["logits"])


def test_tir_switch_and_stages(make_cfg, make_batch):
    cfg = make_cfg()
    with_tir = UARModel(cfg).eval()
    no_tir = twin(with_tir, cfg.replace(tir=False))
    batch = make_batch(cfg)
    assert no_tir.tir is None
    torch.testing.assert_close(run(with_tir, batch)["logits"], run(no_tir, batch)["logits"])  # stage 1
    with_tir.set_stage(2)  # masks at init: a constant bias, the same softmax
    torch.testing.assert_close(run(with_tir, batch)["logits"], run(no_tir, batch)["logits"],
                               atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        for m in with_tir.tir.masks:
            m.M.normal_(std=0.05)
    refined = run(with_tir, batch)
    assert not torch.allclose(refined["logits"], run(no_tir, batch)["logits"], atol=1e-3)
    assert refined["mask"].item() > 0 and run(no_tir, batch)["mask"].item() == 0
    with pytest.raises(ValueError):
        with_tir.set_stage(3)


def test_base_path_uses_the_cnn_and_no_token_table(make_cfg, make_batch):
    cfg = make_cfg(lsu=False, crop_size=64, image_size=64)
    model = UARModel(cfg)
    assert model.lsu.image is None and model.cnn is not None
    assert not any(k.startswith("lsu.image") for k in model.state_dict())
    batch = make_batch(cfg)
    out = model(batch)
    out["loss"].backward()
    assert model.cnn.resnet.conv1.weight.grad is not None
    assert model.encode(batch["images"]).shape == (4, cfg.n_visual_tokens, cfg.d_model)
    with pytest.raises(KeyError, match="images"):
        model({k: v for k, v in batch.items() if k != "images"})
    with pytest.raises(ValueError, match="float"):
        model.encode(batch["image_tokens"])


def test_decode_step_agrees_with_teacher_forcing(make_cfg, make_batch):
    cfg = make_cfg()
    model = UARModel(cfg).eval()
    model.set_stage(2)
    with torch.no_grad():
        for m in model.tir.masks:
            m.M.normal_(std=0.05)
    batch = make_batch(cfg)
    with torch.no_grad():
        logits = model(batch)["logits"]
        memory = model.encode(batch["image_tokens"])
        assert memory.shape == (4, cfg.n_visual_tokens, cfg.d_model)
        for t in (1, 4, 9):
            step = model.decode_step(memory[:1], None, batch["ids"][:1, :t])
            torch.testing.assert_close(step, logits[:1, t - 1].log_softmax(-1), atol=1e-4, rtol=1e-4)


def test_greedy_stops_and_pads_after_eos(make_cfg, make_batch):
    cfg = make_cfg()
    model = UARModel(cfg).eval()
    with torch.no_grad():  # make eos the only sensible word after three steps
        model.head.bias.zero_()
    out = model.greedy(make_batch(cfg)["image_tokens"], max_len=5)
    assert out.shape[0] == 4 and out.shape[1] <= 5 and out.dtype == torch.long
    for row in out.tolist():
        if cfg.eos_id in row:
            assert all(t == cfg.pad_id for t in row[row.index(cfg.eos_id) + 1:])


def test_checkpoint_round_trip(make_cfg, make_batch):
    cfg = make_cfg(fusion="add")
    model = UARModel(cfg)
    model.set_stage(2)
    restored = UARModel.from_checkpoint(model.to_checkpoint())
    assert restored.cfg == cfg and restored.stage == 2
    batch = make_batch(cfg)
    torch.testing.assert_close(run(restored, batch)["loss"], run(model, batch)["loss"])


def test_unset_vocab_fails_loudly(make_cfg):
    with pytest.raises(UarbenchError, match="vocab_size"):
        UARModel(make_cfg(vocab_size=0))


def test_image_side_parameters(make_cfg):
    model = UARModel(make_cfg())
    ids = {id(p) for p in model.image_side_parameters()}
    assert id(model.lsu.image.tokens.weight) in ids and id(model.lsu.text.words.weight) not in ids
    base = UARModel(make_cfg(lsu=False))
    assert id(base.cnn.resnet.conv1.weight) in {id(p) for p in base.image_side_parameters()}
