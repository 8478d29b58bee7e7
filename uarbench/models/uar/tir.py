"""TIR, the Text-to-Image Refiner (paper §3.4).

Each decoder layer's cross-attention gets a learnable mask M (text positions x visual tokens):
A = (Q K^T + k * sigmoid(M)) / sqrt(d) (Eq. 11), with k = 1000 so a learned mask can all but
switch an image token off for a text position. L_Mask = sum_ij (1 - sigmoid(M_ij)) (Eq. 12)
pulls the mask towards 1 everywhere, so only positions that CE really wants suppressed stay low.

[spec decisions] one M per decoder layer, shared across heads, sized max_seq_len x L and
sliced to the current T; init 0 (sigmoid 0.5 everywhere, a constant bias that leaves the
softmax unchanged at the start of stage 2); d is the per-head dimension.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


class TIRMask(nn.Module):
    def __init__(self, max_seq_len: int, n_visual: int, k: float = 1000.0) -> None:
        super().__init__()
        self.M = nn.Parameter(torch.zeros(max_seq_len, n_visual))
        self.k = k

    def bias(self, T: int, L: int) -> Tensor:
        """k * sigmoid(M[:T, :L]) (T, L), added to every head's Q K^T before scaling (Eq. 11)."""
        if T > self.M.shape[0] or L > self.M.shape[1]:
            raise ValueError(f"TIR mask is {tuple(self.M.shape)}, asked for ({T}, {L}): "
                             "raise max_seq_length or check the number of visual tokens")
        return self.k * torch.sigmoid(self.M[:T, :L])

    def mask_loss(self) -> Tensor:
        """Eq. 12 over the whole M: positions beyond the current T are trained towards 1 too."""
        return (1 - torch.sigmoid(self.M)).sum()


class TIR(nn.Module):
    """The masks of all decoder layers."""

    def __init__(self, n_layers: int, max_seq_len: int, n_visual: int, k: float) -> None:
        super().__init__()
        self.masks = nn.ModuleList(TIRMask(max_seq_len, n_visual, k) for _ in range(n_layers))

    def biases(self, T: int, L: int) -> list[Tensor]:
        return [m.bias(T, L) for m in self.masks]

    def mask_loss(self) -> Tensor:
        """L_Mask summed over layers (each layer's M is one mask of Eq. 12). Its raw value is
        large (0.5 * max_seq_len * L per layer at init): log it separately."""
        return torch.stack([m.mask_loss() for m in self.masks]).sum()
