"""The frozen image tokenizers of LSU (paper §3.2; docs/spec.md §2): an image becomes a grid of
discrete token ids, fitted or loaded once, then frozen and run outside the model. Two backends
share :class:`ImageTokenizer`:

* :class:`DalleTokenizer` - the paper's choice, OpenAI's DALL-E dVAE encoder
  (:mod:`~uarbench.models.tokenizers.dalle_encoder`), loaded from a file the user supplies (its
  weights cannot be downloaded here);
* :class:`LearnedVQTokenizer` - the offline default, a small VQ-VAE
  (:mod:`~uarbench.models.tokenizers.vqvae`) fitted on the training split's images only, then
  frozen.

:func:`build_tokenizer` picks the backend a UARConfig names.
"""
from __future__ import annotations

import hashlib
import io
import pickle
from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_bytes
from uarbench.models.tokenizers.dalle_encoder import DalleEncoder
from uarbench.models.tokenizers.vqvae import VQVAE
from uarbench.models.uar.config import UARConfig, VQConfig


class ImageTokenizer(nn.Module, ABC):
    """Frozen map from views (B, V, 1, H, W) in [0, 1] to token ids (B, V, H/8, W/8)."""

    downsample = 8

    @property
    @abstractmethod
    def codebook_size(self) -> int: ...

    @property
    @abstractmethod
    def checkpoint_hash(self) -> str:
        """sha256 of the weights file, recorded in the run so a score names its tokenizer."""

    @abstractmethod
    def _encode_views(self, x: Tensor) -> Tensor:
        """(N, 1, H, W) -> (N, h, w) long."""

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        if images.dim() != 5 or images.shape[2] != 1:
            raise ValueError(f"images must be (B, V, 1, H, W), got {tuple(images.shape)}")
        B, V, _, H, W = images.shape
        if H % self.downsample or W % self.downsample:
            raise ValueError(f"image size {H}x{W} must be a multiple of {self.downsample}")
        ids = self._encode_views(images.flatten(0, 1))  # (B*V, h, w)
        return ids.view(B, V, *ids.shape[-2:])  # (B, V, h, w)

    def freeze(self) -> "ImageTokenizer":
        # the paper keeps the dVAE fixed: no gradient reaches it, no dropout/BN updates
        return self.requires_grad_(False).eval()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LearnedVQTokenizer(ImageTokenizer):
    """A VQ-VAE trained with :meth:`fit` on the training images, then frozen."""

    FORMAT = "uarbench.learned_vq/3"  # 2: pixel standardisation stored; 3: per-view normalisation

    def __init__(self, codebook_size: int, vq: VQConfig = VQConfig()) -> None:
        super().__init__()
        self.vq, self._codebook_size, self._hash = vq, codebook_size, None
        # a placeholder until fit() (fresh, seeded) or load(): built without touching the
        # global RNG, so a run draws the same model initialisation whether its tokenizer was
        # fitted now or read from the cache
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.net = VQVAE(codebook_size, vq.hidden, vq.embed_dim, vq.commitment)
        # [decision] the VQ-VAE sees each pixel minus the training split's mean view, divided by
        # the residual's std: radiographs share most of their anatomy, and on raw pixels a small
        # VQ-VAE collapses to a handful of codes that encode the mean image (measured on synth-cxr:
        # 9 codes, identical tokens for every study), i.e. tokens that say nothing about findings.
        # [decision] Before that, each view is normalised to zero mean and unit std on its own:
        # exposure, gamma and contrast differ between studies, and without this the codes spend
        # their bits on brightness. Measured on synth-cxr (cpu-small, 1024 codes; val AUROC of a
        # logistic regression on position x code one-hots): No Finding 0.80 -> 0.85,
        # consolidation 0.67 -> 0.89, atelectasis 0.59 -> 0.70, effusion 0.52 -> 0.70
        self.register_buffer("pixel_mean", torch.zeros(1, 1, 1, 1))
        self.register_buffer("pixel_scale", torch.ones(()))
        self.freeze()

    @property
    def codebook_size(self) -> int:
        return self._codebook_size

    @property
    def checkpoint_hash(self) -> str:
        if self._hash is None:
            raise UarbenchError("the learned tokenizer has no checkpoint hash yet.",
                                fix="save(path) it after fit(), or load(path) a saved one.")
        return self._hash

    @staticmethod
    def _per_view(x: Tensor) -> Tensor:
        """(N, 1, H, W) -> each view at zero mean and unit std."""
        mean = x.mean(dim=(-2, -1), keepdim=True)
        return (x - mean) / x.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)

    def _standardise(self, x: Tensor) -> Tensor:
        """Views normalised by :meth:`_per_view` -> minus the mean view, over the residual std."""
        mean = self.pixel_mean
        if mean.shape[-2:] != x.shape[-2:] and mean.shape[-1] > 1:
            mean = F.interpolate(mean, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (x - mean) / self.pixel_scale

    def _encode_views(self, x: Tensor) -> Tensor:
        return self.net.encode(self._standardise(self._per_view(x)))

    def fit(self, images: Iterable[Tensor], *, steps: int | None = None, lr: float | None = None,
            seed: int = 0) -> list[float]:
        """Train from a fresh initialisation seeded by ``seed`` (so images, config and seed fix
        the result) on batches of shape (..., 1, H, W) in [0, 1], read once and cycled. Returns the reconstruction MSE of every step; leaves the tokenizer frozen."""
        steps = self.vq.steps if steps is None else steps
        lr = self.vq.lr if lr is None else lr
        device = next(self.net.parameters()).device  # train where the caller put the tokenizer
        views = [self._per_view(x.reshape(-1, 1, *x.shape[-2:]).to(device, torch.float32))
                 for x in images]
        if not views:
            raise UarbenchError("no training images to fit the tokenizer on.",
                                fix="pass a list of (..., 1, H, W) tensors.")
        n = sum(len(v) for v in views)
        self.pixel_mean = (sum(v.sum(0, keepdim=True) for v in views) / n)  # (1, 1, H, W)
        self.pixel_scale = torch.sqrt(sum(((v - self.pixel_mean) ** 2).sum() for v in views)
                                      / (n * views[0][0].numel())).clamp_min(1e-6)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = VQVAE(self.codebook_size, self.vq.hidden, self.vq.embed_dim,
                             self.vq.commitment).to(device).train()
            opt = torch.optim.Adam(self.net.parameters(), lr=lr)
            used = torch.zeros(self.codebook_size, dtype=torch.bool, device=device)
            history = []
            for step, x in zip(range(steps), _cycle(views)):
                x = self._standardise(x)  # (N, 1, H, W)
                recon, ids, vq_loss, z = self.net(x)
                rec = F.mse_loss(recon, x)
                opt.zero_grad(set_to_none=True)
                (rec + vq_loss).backward()
                opt.step()
                history.append(rec.item())
                used[ids.flatten()] = True
                if self.vq.restart_every and step % self.vq.restart_every == 0:
                    # step 0 doubles as a data-dependent initialisation of the codebook
                    self.net.quantizer.restart(~used, z.detach().permute(0, 2, 3, 1).flatten(0, 2))
                    used.zero_()
        self._hash = None
        self.freeze()
        return history

    def save(self, path: str | Path) -> str:
        """Write weights + config atomically; returns (and remembers) the file's sha256."""
        buf = io.BytesIO()
        torch.save({"format": self.FORMAT, "codebook_size": self.codebook_size,
                    "vq": asdict(self.vq), "state_dict": self.net.state_dict(),
                    "pixel_mean": self.pixel_mean, "pixel_scale": self.pixel_scale}, buf)
        atomic_write_bytes(path, buf.getvalue())
        self._hash = _sha256(buf.getvalue())
        return self._hash

    @classmethod
    def load(cls, path: str | Path) -> "LearnedVQTokenizer":
        data = Path(path).read_bytes()
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != cls.FORMAT:
            raise UarbenchError(f"not a learned-tokenizer checkpoint (format {cls.FORMAT}).",
                                file=path, fix="point at a file written by LearnedVQTokenizer.save.")
        tok = cls(ckpt["codebook_size"], VQConfig(**ckpt["vq"]))
        tok.net.load_state_dict(ckpt["state_dict"])
        tok.pixel_mean, tok.pixel_scale = ckpt["pixel_mean"], ckpt["pixel_scale"]
        tok._hash = _sha256(data)
        return tok.freeze()


def _cycle(batches: list[Tensor]) -> Iterator[Tensor]:
    while True:
        yield from batches


class DalleTokenizer(ImageTokenizer):
    """The DALL-E dVAE encoder: pixels x -> 0.8 x + 0.1 (the package's map_pixels, eps 0.1),
    grey repeated to RGB, tokens = argmax over the 8192 logits (paper §3.2)."""

    def __init__(self, path: str | Path | None) -> None:
        super().__init__()
        if path is None:
            raise UarbenchError("unavailable: DALL-E dVAE encoder weights not given "
                                "(pass --dalle-encoder PATH)")
        path = Path(path)
        if not path.is_file():
            raise UarbenchError("DALL-E dVAE encoder file not found.", file=path,
                                fix="pass the path of a state dict saved from dall_e's Encoder.")
        data = path.read_bytes()
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise UarbenchError("not a plain state dict (the released encoder.pkl is a pickled module).",
                                file=path, fix='convert it once: torch.save(dall_e.load_model('
                                '"encoder.pkl").state_dict(), "dalle_encoder.pt").') from None
        needed = ("blocks.input.w", "blocks.output.conv.w")
        if not isinstance(state, dict) or any(k not in state for k in needed):
            raise UarbenchError(f"not a DALL-E encoder state dict (no {' / '.join(needed)}).",
                                file=path, fix="save dall_e's Encoder.state_dict().")
        self.encoder = DalleEncoder(**DalleEncoder.sizes_from_state_dict(state))
        self.encoder.load_state_dict(state)
        self._hash = _sha256(data)
        self.freeze()

    @property
    def codebook_size(self) -> int:
        return self.encoder.vocab_size

    @property
    def checkpoint_hash(self) -> str:
        return self._hash

    def _encode_views(self, x: Tensor) -> Tensor:
        x = (0.8 * x + 0.1).expand(-1, self.encoder.input_channels, -1, -1)  # (N, 3, H, W)
        return self.encoder(x).argmax(dim=1)  # (N, h, w)


def build_tokenizer(cfg: UARConfig) -> ImageTokenizer:
    """The backend ``cfg.tokenizer`` names; the `learned` one still needs fit() or load()."""
    if cfg.tokenizer == "learned":
        return LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
    tok = DalleTokenizer(cfg.dalle_encoder)
    if tok.codebook_size != cfg.codebook_size:
        raise UarbenchError(f"the DALL-E encoder has {tok.codebook_size} codes but codebook_size "
                            f"is {cfg.codebook_size}.", file=cfg.dalle_encoder,
                            fix=f"set codebook_size = {tok.codebook_size}.")
    return tok
