"""Sanity floor ``nn_retrieval``: the cleaned report of the most similar training study, by cosine
similarity of image features (docs/spec.md §9). A generator that does not beat it writes no more
than the closest training report would.

Features (``features=``):

* ``"pixels"`` (default, needs nothing): each view resized to 32 x 32 by the project's image loader
  (:func:`uarbench.training.data.load_views`, Pillow's bilinear filter, which averages over the
  whole source footprint when it shrinks, i.e. antialiased), scaled to [0, 1], standardised per
  pixel with the training split's mean and population sd (a pixel with sd < 1e-6 keeps sd 1), views
  concatenated: V * 32 * 32 numbers per study.
* ``"resnet"``: global-average-pooled last-stage features of a ResNet
  (:mod:`uarbench.models.resnet`, ImageNet normalisation, grey copied to RGB) for each view resized
  to ``size`` (default 224), views concatenated: V * C numbers. The network must come from a
  user-supplied torchvision-format weights file (``weights=``): random weights would make a floor
  that only looks like image retrieval, so there is no default and no random initialisation.

Ties in similarity go to the earliest training study in split order. :meth:`describe` returns
what a run records (feature kind, sizes, the weights file and its sha256). Hand-written: a few
lines of torch, no library needed; the training bank is held in memory (MIMIC-CXR: ~1 GB of
float32 pixel features, ~2 GB of ResNet-101 features).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from uarbench.data.datasets import Dataset
from uarbench.data.r2gen import Study
from uarbench.errors import UarbenchError
from uarbench.models import register_model
from uarbench.models.resnet import CNNPatchEncoder, ResNet, load_resnet_weights
from uarbench.models.config import ResNetArch
from uarbench.provenance import file_sha256
from uarbench.training.data import load_views, to_unit

FeatureKind = Literal["pixels", "resnet"]
DEFAULT_SIZE: dict[str, int] = {"pixels": 32, "resnet": 224}
MIN_SD = 1e-6


@register_model("nn_retrieval")
class NearestNeighbourReport:
    def __init__(self, features: FeatureKind = "pixels", *, weights: str | Path | None = None,
                 arch: ResNetArch = "resnet101", size: int | None = None,
                 batch_size: int = 64) -> None:
        if features not in DEFAULT_SIZE:
            raise UarbenchError(f"unknown nn_retrieval features {features!r}.",
                                fix=f"use one of {sorted(DEFAULT_SIZE)}.")
        if features == "pixels" and weights is not None:
            raise UarbenchError("a weights file was given with features='pixels', which uses none.",
                                file=weights, fix="pass features='resnet' or drop weights.")
        if features == "resnet" and weights is None:
            raise UarbenchError(
                "nn_retrieval with features='resnet' needs a ResNet weights file: random weights "
                "would give features that only pretend to describe the images.",
                fix=f"pass weights=<torchvision {arch} state-dict file> (and arch=), "
                    "or use features='pixels'.")
        self.features = features
        self.size = DEFAULT_SIZE[features] if size is None else int(size)
        self.batch_size = batch_size
        self.arch = arch if features == "resnet" else None
        self.weights = None if weights is None else Path(weights)
        self.resnet: ResNet | None = None
        if self.weights is not None:
            self.resnet = ResNet(arch)
            load_resnet_weights(self.resnet, self.weights)  # names the file and the fix on error
            self.resnet.eval()
        self.mean: Tensor | None = None  # (D,) per-pixel standardisation (pixels only)
        self.sd: Tensor | None = None
        self.bank: Tensor | None = None  # (N, D) unit-length training features
        self.train_ids: list[str] = []
        self.reports: list[str] = []

    # --- features ---
    @torch.no_grad()
    def _raw(self, studies: list[Study]) -> Tensor:
        """(N, D) features of the studies, before standardisation and normalisation."""
        out = []
        for start in range(0, len(studies), self.batch_size):
            chunk = studies[start:start + self.batch_size]
            views = to_unit(torch.from_numpy(np.stack([load_views(s, self.size) for s in chunk])))
            out.append(views.flatten(1) if self.resnet is None else self._pooled(views))
        return torch.cat(out) if out else torch.zeros(0, 0)

    def _pooled(self, views: Tensor) -> Tensor:
        """views (B, V, 1, S, S) in [0, 1] -> (B, V*C) average-pooled ResNet features."""
        B, V = views.shape[:2]
        x = views.flatten(0, 1).expand(-1, 3, -1, -1)  # (B*V, 3, S, S): grey to RGB
        mean = torch.tensor(CNNPatchEncoder.MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CNNPatchEncoder.STD).view(1, 3, 1, 1)
        fmap = self.resnet.feature_map((x - mean) / std)  # (B*V, C, h, w)
        return fmap.mean(dim=(2, 3)).view(B, -1)  # (B, V*C)

    def _embed(self, studies: list[Study]) -> Tensor:
        x = self._raw(studies)
        if self.mean is not None:
            x = (x - self.mean) / self.sd
        return F.normalize(x, dim=1)  # unit rows: a dot product is the cosine

    # --- the floor ---
    def fit(self, dataset: Dataset) -> "NearestNeighbourReport":
        studies = list(dataset.split("train"))
        if not studies:
            raise UarbenchError("the training split is empty.", file=dataset.annotation.path,
                                fix="nn_retrieval retrieves training reports: give it some.")
        self.mean = self.sd = None
        raw = self._raw(studies)
        if self.features == "pixels":
            self.mean = raw.mean(dim=0)
            sd = raw.std(dim=0, correction=0)
            self.sd = torch.where(sd < MIN_SD, torch.ones_like(sd), sd)
            raw = (raw - self.mean) / self.sd
        self.bank = F.normalize(raw, dim=1)
        self.train_ids = [s.id for s in studies]
        self.reports = [dataset.clean(s.report) for s in studies]
        return self

    @torch.no_grad()
    def nearest(self, studies: Iterable[Study]) -> dict[str, tuple[str, float]]:
        """-> {study id: (id of the nearest training study, cosine similarity)}."""
        if self.bank is None:
            raise RuntimeError("call fit() before predict()")
        studies = list(studies)
        out: dict[str, tuple[str, float]] = {}
        for start in range(0, len(studies), self.batch_size):
            chunk = studies[start:start + self.batch_size]
            q = self._embed(chunk)  # (B, D)
            if q.shape[1] != self.bank.shape[1]:
                raise UarbenchError(
                    f"query studies give {q.shape[1]} features, the training bank has "
                    f"{self.bank.shape[1]}.", record=chunk[0].id,
                    fix="query studies with as many views as the training studies.")
            best, idx = (q @ self.bank.T).max(dim=1)  # (B,): first maximum = earliest study
            for s, j, c in zip(chunk, idx.tolist(), best.tolist()):
                out[s.id] = (self.train_ids[j], c)
        return out

    def predict(self, studies: Iterable[Study]) -> dict[str, str]:
        index = {i: k for k, i in enumerate(self.train_ids)}
        return {sid: self.reports[index[tid]] for sid, (tid, _) in self.nearest(studies).items()}

    def describe(self) -> dict:
        """What a run records: everything that can change the floor's predictions."""
        return {
            "model": "nn_retrieval", "features": self.features, "size": self.size,
            "similarity": "cosine", "ties": "earliest training study",
            "standardise": "per-pixel train mean/sd" if self.features == "pixels" else "none",
            "arch": self.arch, "weights": None if self.weights is None else str(self.weights),
            "weights_sha256": None if self.weights is None else file_sha256(self.weights),
            "n_train": len(self.train_ids) if self.bank is not None else None,
        }
