"""CRA, the Cross-modal Representation Aligner (paper §3.3).

Image and text embeddings are both re-expressed over one shared, learnable set of basis vectors
(Eqs. 6-7), fused back with their input through a dual gate (Eqs. 8-9), and pulled together at
the report level by a triplet loss with hardest in-batch negatives (Eq. 10). One CRA instance
serves both modalities: sharing the weights is what puts them in a common space.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.models.layers import MultiHeadAttention
from uarbench.models.uar.config import UARConfig


class OrthonormalBasis(nn.Module):
    """B^ = gamma (.) B + beta (Eq. 6), B a fixed (size, d) buffer, gamma and beta trained.

    ``orthogonal``: QR of a seeded Gaussian matrix (what Gram-Schmidt computes). With size > d the
    d columns are orthonormal (B^T B = I_d); 2048 rows of dimension 512 cannot all be.
    ``normal`` / ``uniform`` (Table 3 variants): random with the same per-entry variance 1/size
    as an orthonormal column, so only orthogonality differs between the variants, not scale.
    """

    def __init__(self, size: int, d_model: int, kind: str = "orthogonal", seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        if kind == "orthogonal":  # factor the tall orientation: its thin side is orthonormal
            a = torch.randn(size, d_model, generator=g)
            basis = torch.linalg.qr(a).Q if size >= d_model else torch.linalg.qr(a.T).Q.T
        elif kind == "normal":
            basis = torch.randn(size, d_model, generator=g) / math.sqrt(size)
        elif kind == "uniform":  # U(-c, c) has variance c^2 / 3 = 1 / size
            basis = (torch.rand(size, d_model, generator=g) * 2 - 1) * math.sqrt(3 / size)
        else:
            raise ValueError(f"unknown basis {kind!r}: orthogonal, uniform or normal")
        self.register_buffer("basis", basis.contiguous())  # fixed, stored with the checkpoint
        self.gamma = nn.Parameter(torch.ones(size, d_model))
        self.beta = nn.Parameter(torch.zeros(size, d_model))

    def forward(self) -> Tensor:
        return self.gamma * self.basis + self.beta  # (size, d)


class Gate(nn.Module):
    """G(X, Y) = sigmoid(X W1 + Y W2) (Eq. 8; no bias term, as written)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, d_model, bias=False)
        self.w2 = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.sigmoid(self.w1(x) + self.w2(y))


class DualGate(nn.Module):
    """F = G_I(E, F~) (.) tanh(E + F~) + G_F(E, F~) (.) E + F~ (Eq. 9): G_I admits the new
    aligned information, G_F keeps part of the original embedding; separate weights per gate."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.gate_i, self.gate_f = Gate(d_model), Gate(d_model)

    def forward(self, e: Tensor, f: Tensor) -> Tensor:
        return self.gate_i(e, f) * torch.tanh(e + f) + self.gate_f(e, f) * e + f


class NoFusion(nn.Module):
    """Table 4 'none': F = F~."""

    def __init__(self, d_model: int) -> None:
        super().__init__()

    def forward(self, e: Tensor, f: Tensor) -> Tensor:
        return f


class AddFusion(nn.Module):
    """Table 4 'add': F = E + F~."""

    def __init__(self, d_model: int) -> None:
        super().__init__()

    def forward(self, e: Tensor, f: Tensor) -> Tensor:
        return e + f


FUSIONS: dict[str, type[nn.Module]] = {"dual_gate": DualGate, "none": NoFusion, "add": AddFusion}


class CRA(nn.Module):
    """E (B, N, d) -> F (B, N, d): F~ = MHA(query=E, key=B^, value=B^) (Eq. 7), then fusion.
    Each token is projected on its own (keys are the basis, never other tokens), so applying
    CRA to a report prefix keeps the decoder causal. The basis' keys and values do not depend
    on the input: :meth:`basis_kv` computes them once per forward pass (shared by the image and
    the report) or once per decoding (not per token), and :meth:`forward` takes them."""

    def __init__(self, cfg: UARConfig) -> None:
        super().__init__()
        self.basis = OrthonormalBasis(cfg.basis_size, cfg.d_model, cfg.basis, cfg.basis_seed)
        # docs/spec.md §3: dropout on F~, not on the (B*(L+T)) x 2048 attention weights
        self.attn = MultiHeadAttention(cfg.d_model, cfg.cra_heads, 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fuse = FUSIONS[cfg.fusion](cfg.d_model)

    def basis_kv(self) -> tuple[Tensor, Tensor]:
        """Per-head K, V of B^ (1, H, size, hd): one projection, shared by the batch."""
        b = self.basis()[None]  # (1, size, d)
        return self.attn.project_kv(b, b)

    def forward(self, e: Tensor, kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        k, v = self.basis_kv() if kv is None else kv
        f_tilde = self.dropout(self.attn.attend(e, k, v))  # (B, N, d), Eq. 7
        return self.fuse(e, f_tilde)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """x (B, N, d), mask (B, N) bool (True = real token) or None -> (B, d)."""
    if mask is None:
        return x.mean(dim=1)
    m = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def global_alignment_loss(fi: Tensor, fr: Tensor, img_mask: Tensor | None, txt_mask: Tensor | None,
                          margin: float, same_report: Tensor | None = None,
                          negatives: str = "hardest") -> Tensor:
    """L_Global (Eq. 10): triplet hinge on cosine similarity with the hardest in-batch negative,
    image -> report and report -> image, averaged over the batch.

    fi (B, L, d), fr (B, T, d) are mean-pooled over their real tokens. ``same_report`` (B, B)
    bool marks pairs whose reports are identical: such a pair is not a negative [decision: a
    duplicate report (common for normal studies) as the "hardest negative" makes the hinge
    unsatisfiable, and the loss then pulls every pooled feature together (measured: L_Global
    stuck at 2 * margin on synth-cxr)]. An anchor with no negative contributes 0; a batch of
    one has no negatives, so the loss is 0 there (and carries no gradient).
    """
    B = fi.shape[0]
    if B < 2:
        return fi.new_zeros(())
    img = F.normalize(masked_mean(fi, img_mask), dim=-1)
    txt = F.normalize(masked_mean(fr, txt_mask), dim=-1)
    s = img @ txt.T  # (B, B): s[i, j] = cos(image i, report j)
    pos = s.diagonal()
    not_neg = torch.eye(B, dtype=torch.bool, device=s.device)
    if same_report is not None:
        not_neg = not_neg | same_report
    neg = s.masked_fill(not_neg, float("-inf"))
    if negatives == "all":  # VSE0 (Faghri et al. 2018): mean hinge over every negative
        valid = (~not_neg).float()
        n = valid.sum(1).clamp(min=1)
        r = (F.relu(margin - pos[:, None] + neg) * valid).sum(1) / n  # relu(-inf) = 0
        i = (F.relu(margin - pos[None, :] + neg) * valid).sum(0) / n
        return (r + i).mean()
    hardest_report = neg.max(dim=1).values  # for image b: max over reports j != b
    hardest_image = neg.max(dim=0).values  # for report b: max over images i != b
    # relu(margin - pos + (-inf)) = 0: an anchor without negatives adds nothing
    return (F.relu(margin - pos + hardest_report) + F.relu(margin - pos + hardest_image)).mean()


def identical_rows(ids: Tensor) -> Tensor:
    """(B, T) token ids -> (B, B) bool, True where two reports are the same sequence."""
    return (ids[:, None, :] == ids[None, :, :]).all(dim=-1)
