"""A small VQ-VAE (van den Oord et al. 2017): the offline stand-in for the DALL-E dVAE that
gives UAR its discrete visual tokens (paper §3.2; docs/spec.md §2 `learned` backend).

Like the dVAE it downsamples by 8, so a 112 px view becomes 14 x 14 tokens. Plain VQ with a
straight-through gradient, codebook loss and commitment loss; unused codes are re-seeded from
encoder outputs during training (see ``VectorQuantizer.restart``) so a small dataset still uses
most of the codebook.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class VectorQuantizer(nn.Module):
    def __init__(self, codebook_size: int, dim: int, commitment: float) -> None:
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, dim)
        nn.init.uniform_(self.codebook.weight, -1 / codebook_size, 1 / codebook_size)
        self.commitment = commitment

    def nearest(self, z: Tensor) -> Tensor:
        """z (N, dim) -> index of the closest code (N,) by squared Euclidean distance."""
        c = self.codebook.weight
        dist = z.pow(2).sum(1, keepdim=True) - 2 * z @ c.T + c.pow(2).sum(1)  # (N, K)
        return dist.argmin(dim=1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z (B, dim, h, w) -> (quantised z with straight-through gradient, ids (B, h, w), loss)."""
        B, D, h, w = z.shape
        ids = self.nearest(z.permute(0, 2, 3, 1).reshape(-1, D)).view(B, h, w)
        q = self.codebook(ids).permute(0, 3, 1, 2)  # (B, dim, h, w)
        # codebook loss moves codes to the encoder outputs; commitment keeps the encoder near them
        loss = F.mse_loss(q, z.detach()) + self.commitment * F.mse_loss(z, q.detach())
        return z + (q - z).detach(), ids, loss

    @torch.no_grad()
    def restart(self, dead: Tensor, candidates: Tensor) -> None:
        """Move the codes flagged in ``dead`` (K,) bool onto random rows of ``candidates`` (N, dim):
        a code nothing maps to gets no gradient and would stay dead forever."""
        n = int(dead.sum())
        if n:
            pick = torch.randint(len(candidates), (n,)).to(candidates.device)  # CPU RNG: seeded by fit
            self.codebook.weight[dead] = candidates[pick]


class VQVAE(nn.Module):
    """(N, 1, H, W) in [0, 1] <-> ids (N, H/8, W/8)."""

    def __init__(self, codebook_size: int, hidden: int, embed_dim: int, commitment: float) -> None:
        super().__init__()
        h = hidden
        self.encoder = nn.Sequential(  # three stride-2 convs: downsampling 8
            nn.Conv2d(1, h, 4, 2, 1), nn.ReLU(), nn.Conv2d(h, h, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(h, h, 4, 2, 1), nn.ReLU(), nn.Conv2d(h, h, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(h, embed_dim, 1))
        self.quantizer = VectorQuantizer(codebook_size, embed_dim, commitment)
        self.decoder = nn.Sequential(
            nn.Conv2d(embed_dim, h, 3, 1, 1), nn.ReLU(), nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(h, 1, 4, 2, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (reconstruction, ids, vq loss, encoder output z (N, dim, h, w))."""
        z = self.encoder(x)
        q, ids, vq_loss = self.quantizer(z)
        return self.decoder(q), ids, vq_loss, z

    def encode(self, x: Tensor) -> Tensor:
        z = self.encoder(x)
        B, D, h, w = z.shape
        return self.quantizer.nearest(z.permute(0, 2, 3, 1).reshape(-1, D)).view(B, h, w)
