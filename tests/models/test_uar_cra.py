import math

import pytest
import torch

from uarbench.models.uar.cra import (CRA, AddFusion, DualGate, NoFusion, OrthonormalBasis,
                                     global_alignment_loss, identical_rows, masked_mean)
from uar_helpers import make_cfg  # noqa: F401 (pytest fixtures)


def test_orthogonal_basis_has_orthonormal_columns():
    b = OrthonormalBasis(2048, 512, "orthogonal", seed=0).basis
    assert b.shape == (2048, 512)
    torch.testing.assert_close(b.T @ b, torch.eye(512), atol=1e-4, rtol=0)


def test_basis_is_seeded_fixed_and_eq6_affine():
    a, b = OrthonormalBasis(64, 16, seed=3), OrthonormalBasis(64, 16, seed=3)
    assert torch.equal(a.basis, b.basis)
    assert not torch.equal(a.basis, OrthonormalBasis(64, 16, seed=4).basis)
    assert "basis" in dict(a.named_buffers()) and "basis" not in dict(a.named_parameters())
    torch.testing.assert_close(a(), a.basis)  # gamma = 1, beta = 0 at init
    with torch.no_grad():
        a.gamma.fill_(2.0)
        a.beta.fill_(0.5)
    torch.testing.assert_close(a(), 2.0 * a.basis + 0.5)


def test_short_basis_has_orthonormal_rows():
    b = OrthonormalBasis(8, 16, "orthogonal").basis
    torch.testing.assert_close(b @ b.T, torch.eye(8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_random_bases_match_the_orthonormal_scale(kind):
    b = OrthonormalBasis(2048, 64, kind, seed=0).basis
    assert b.shape == (2048, 64)
    assert math.isclose(b.var().item(), 1 / 2048, rel_tol=0.05)
    assert (b.T @ b - torch.eye(64)).abs().max() > 0.05  # not orthonormal


def test_dual_gate_equals_hand_computation_eq9():
    gate = DualGate(2)
    W = {"i1": [[0.1, -0.2], [0.3, 0.4]], "i2": [[0.5, 0.0], [-0.1, 0.2]],
         "f1": [[-0.3, 0.1], [0.2, 0.0]], "f2": [[0.0, 0.6], [0.1, -0.4]]}
    with torch.no_grad():  # nn.Linear computes x @ weight.T, so weight = W^T for "X W"
        gate.gate_i.w1.weight.copy_(torch.tensor(W["i1"]).T)
        gate.gate_i.w2.weight.copy_(torch.tensor(W["i2"]).T)
        gate.gate_f.w1.weight.copy_(torch.tensor(W["f1"]).T)
        gate.gate_f.w2.weight.copy_(torch.tensor(W["f2"]).T)
    e, f = [1.0, -2.0], [0.5, 0.25]

    def sig(z):
        return 1 / (1 + math.exp(-z))

    def xw(x, w, j):
        return sum(x[r] * w[r][j] for r in range(2))

    expected = []
    for j in range(2):
        g_i = sig(xw(e, W["i1"], j) + xw(f, W["i2"], j))
        g_f = sig(xw(e, W["f1"], j) + xw(f, W["f2"], j))
        expected.append(g_i * math.tanh(e[j] + f[j]) + g_f * e[j] + f[j])
    got = gate(torch.tensor([e]), torch.tensor([f]))
    torch.testing.assert_close(got, torch.tensor([expected]))


def test_fusion_variants():
    e, f = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    torch.testing.assert_close(NoFusion(4)(e, f), f)
    torch.testing.assert_close(AddFusion(4)(e, f), e + f)
    assert not list(NoFusion(4).parameters()) and not list(AddFusion(4).parameters())


def test_cra_is_per_token_and_uses_the_basis(make_cfg):
    cra = CRA(make_cfg(fusion="none"))
    e = torch.randn(2, 5, 32)
    out = cra(e)
    assert out.shape == e.shape
    torch.testing.assert_close(cra(e[:, :3]), out[:, :3])  # no mixing across tokens: causal-safe
    with torch.no_grad():
        cra.basis.beta.add_(1.0)
    assert not torch.allclose(cra(e), out)


def test_global_loss_zero_when_positives_beat_negatives_by_the_margin():
    fi = torch.eye(3)[:, None, :]  # (B=3, L=1, d=3): orthogonal images
    loss = global_alignment_loss(fi, fi.clone(), None, None, margin=0.2)
    assert loss.item() == 0.0  # cos(pos) = 1, cos(neg) = 0, 1 - 0 > 0.2


def test_global_loss_hand_value_with_hardest_negatives():
    fi = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # images along the axes
    fr = torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]]])  # report 0 at 45 degrees
    c = 1 / math.sqrt(2)
    # S = [[c, 0], [c, 1]]: image 0 -> pos c, neg 0; image 1 -> pos 1, neg c
    # report 0 -> pos c, hardest image c; report 1 -> pos 1, hardest image 0
    a = 0.2
    terms = [max(0, a - c + 0) + max(0, a - c + c), max(0, a - 1 + c) + max(0, a - 1 + 0)]
    got = global_alignment_loss(fi, fr, None, None, margin=a)
    assert math.isclose(got.item(), sum(terms) / 2, rel_tol=1e-6)
    assert got.item() > 0


def test_global_loss_masks_padding_and_handles_batch_of_one():
    x = torch.tensor([[[1.0, 0.0], [0.0, 9.0]]])
    torch.testing.assert_close(masked_mean(x, torch.tensor([[True, False]])), torch.tensor([[1.0, 0.0]]))
    assert global_alignment_loss(torch.randn(1, 4, 8), torch.randn(1, 3, 8), None, None, 0.2).item() == 0.0
    fr = torch.randn(2, 3, 8)
    padded = torch.cat([fr, torch.randn(2, 2, 8) * 100], dim=1)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 2, dtype=torch.bool)
    fi = torch.randn(2, 4, 8)
    torch.testing.assert_close(global_alignment_loss(fi, padded, None, mask, 0.2),
                               global_alignment_loss(fi, fr, None, None, 0.2))


def test_identical_reports_are_not_negatives():
    ids = torch.tensor([[1, 5, 6, 2], [1, 5, 6, 2], [1, 7, 2, 0]])
    same = identical_rows(ids)
    assert same.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    # images 0 and 1 share a report: with it counted as a negative the hinge cannot be met
    fi = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    fr = fi.clone()
    assert global_alignment_loss(fi, fr, None, None, 0.2).item() > 0
    assert global_alignment_loss(fi, fr, None, None, 0.2, same).item() == 0.0
    # an anchor whose only other reports are duplicates has no negative and adds nothing
    assert global_alignment_loss(fi[:2], fr[:2], None, None, 0.2, same[:2, :2]).item() == 0.0


def test_all_negatives_variant_is_the_mean_hinge_by_hand():
    torch.manual_seed(0)
    fi, fr = torch.randn(4, 3, 5), torch.randn(4, 2, 5)
    img = torch.nn.functional.normalize(fi.mean(1), dim=-1)
    txt = torch.nn.functional.normalize(fr.mean(1), dim=-1)
    s, a, B = img @ txt.T, 0.2, 4
    want = 0.0
    for b in range(B):
        others = [j for j in range(B) if j != b]
        want += sum(max(0.0, a - s[b, b].item() + s[b, j].item()) for j in others) / 3
        want += sum(max(0.0, a - s[b, b].item() + s[j, b].item()) for j in others) / 3
    got = global_alignment_loss(fi, fr, None, None, a, negatives="all")
    assert math.isclose(got.item(), want / B, rel_tol=1e-5)
    hardest = global_alignment_loss(fi, fr, None, None, a)
    assert hardest.item() >= got.item()  # the hardest negative bounds the mean from above
