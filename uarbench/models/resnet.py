"""ResNet (He et al. 2016) with torchvision's parameter names, and the patch encoder of the
paper's Base model (UAR §4.3 "Base"; R2Gen's visual extractor).

torchvision cannot be imported beside the CPU torch here, and ImageNet weights cannot be
downloaded at run time, so the network is written in the project with the exact names of
``torchvision.models.resnet{18,34,50,101}`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ``fc``, ...): a state dict a user saved from torchvision loads with
:func:`load_resnet_weights`. Without a file the network starts from random initialisation.
Bottleneck blocks stride in ``conv2`` (torchvision's "ResNet v1.5").
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.errors import UarbenchError


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(c_in, width, stride), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv3x3(width, width), nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv3x3(width, width, stride), nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    def __init__(self, arch: str = "resnet101", num_classes: int = 1000, width: int = 64) -> None:
        """``width``: channels of the stem and first stage (torchvision: 64; stages double it).
        Only width 64 loads torchvision weights; narrower nets are for CPU presets."""
        super().__init__()
        if arch not in ARCHS:
            raise UarbenchError(f"unknown ResNet {arch!r}.", fix=f"use one of {sorted(ARCHS)}.")
        block, counts = ARCHS[arch]
        self.arch, self.c_in, self.width = arch, width, width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, width, counts[0], stride=1)
        self.layer2 = self._stage(block, 2 * width, counts[1], stride=2)
        self.layer3 = self._stage(block, 4 * width, counts[2], stride=2)
        self.layer4 = self._stage(block, 8 * width, counts[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        self.out_channels = 8 * width * block.expansion
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block: type[nn.Module], width: int, count: int, stride: int) -> nn.Sequential:
        c_out = width * block.expansion
        downsample = None
        if stride != 1 or self.c_in != c_out:  # the identity path must match shape
            downsample = nn.Sequential(nn.Conv2d(self.c_in, c_out, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(c_out))
        blocks = [block(self.c_in, width, stride, downsample)]
        self.c_in = c_out
        blocks += [block(c_out, width) for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def feature_map(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> last conv features (B, C, ceil(H/32), ceil(W/32))."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def patch_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, h*w, C): one vector per spatial patch (R2Gen's att_feats)."""
        return self.feature_map(x).flatten(2).transpose(1, 2)  # (B, h*w, C)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.feature_map(x)), 1))


def load_resnet_weights(model: ResNet, path: str | Path) -> None:
    """Load a torchvision-format state dict file (``torch.save(m.state_dict(), path)``)."""
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("ResNet weights file not found.", file=path,
                            fix="pass the path of a torchvision state-dict file, or none for random init.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise UarbenchError(
            f"not a {model.arch} state dict: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}, shape mismatches {wrong[:3]}.",
            file=path, fix=f"save torchvision.models.{model.arch}().state_dict() (not the whole "
                           f"model){'' if model.width == 64 else '; torchvision weights need cnn_width 64'}.")
    model.load_state_dict(state)


class CNNPatchEncoder(nn.Module):
    """The Base path's E(I) (lsu = False): ResNet patch features of each view, projected to d,
    plus a view embedding, concatenated over views -> (B, V*h*w, d)."""

    # ImageNet statistics: torchvision weights expect inputs normalised with them
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, arch: str, d_model: int, n_views: int, dropout: float = 0.1,
                 weights: str | Path | None = None, width: int = 64) -> None:
        super().__init__()
        self.resnet = ResNet(arch, width=width)
        if weights is not None:
            load_resnet_weights(self.resnet, weights)
        self.proj = nn.Linear(self.resnet.out_channels, d_model)
        self.view = nn.Embedding(n_views, d_model)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, V, 1, H, W) in [0, 1] -> (B, V*h*w, d)."""
        B, V, C, H, W = images.shape
        x = images.reshape(B * V, C, H, W).expand(-1, 3, -1, -1)  # (B*V, 3, H, W): grey to RGB
        patches = self.proj(self.resnet.patch_features((x - self.mean) / self.std))  # (B*V, P, d)
        patches = patches.view(B, V, -1, patches.shape[-1])  # (B, V, P, d)
        patches = patches + self.view.weight[:V, None, :]  # (V, 1, d) broadcast over patches
        return self.dropout(patches.flatten(1, 2))  # (B, V*P, d)
