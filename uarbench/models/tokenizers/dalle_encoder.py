"""The DALL-E dVAE encoder architecture (Ramesh et al. 2021), the paper's image tokenizer (§3.2).

Written from the published description of OpenAI's ``dall_e`` package so that a state dict saved
from the real encoder loads here unchanged. Its parameter names, which this module keeps:

    blocks.input.{w,b}                                  7x7 conv, 3 -> n_hid
    blocks.group_{g}.block_{i}.id_path.{w,b}            1x1 conv, only where n_in != n_out
    blocks.group_{g}.block_{i}.res_path.conv_{1..4}.{w,b}
    blocks.output.conv.{w,b}                            1x1 conv, 8*n_hid -> vocab_size

(the package's Conv2d names its parameters ``w`` and ``b``, not ``weight`` and ``bias``).
Groups 1-3 end in a 2x2 max-pool, so a 112 px image gives a 14 x 14 grid of 8192-way logits.
The real weights are distributed as a pickled module (``encoder.pkl``); convert it once, where the
``dall_e`` package is installed, with
``torch.save(dall_e.load_model("encoder.pkl").state_dict(), "dalle_encoder.pt")``.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class DalleConv2d(nn.Module):
    """A 'same'-padded square conv with parameters named ``w`` (out, in, k, k) and ``b``."""

    def __init__(self, n_in: int, n_out: int, kw: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw) / math.sqrt(n_in * kw * kw))
        self.b = nn.Parameter(torch.zeros(n_out))
        self.pad = (kw - 1) // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x.float(), self.w, self.b, padding=self.pad)


class DalleEncoderBlock(nn.Module):
    """id_path(x) + post_gain * res_path(x); post_gain = 1 / n_layers^2 keeps the residual sum
    of n_layers blocks near unit scale at initialisation."""

    def __init__(self, n_in: int, n_out: int, n_layers: int) -> None:
        super().__init__()
        n_hid = n_out // 4
        self.post_gain = 1 / n_layers ** 2
        self.id_path = DalleConv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        self.res_path = nn.Sequential(OrderedDict([
            ("relu_1", nn.ReLU()), ("conv_1", DalleConv2d(n_in, n_hid, 3)),
            ("relu_2", nn.ReLU()), ("conv_2", DalleConv2d(n_hid, n_hid, 3)),
            ("relu_3", nn.ReLU()), ("conv_3", DalleConv2d(n_hid, n_hid, 3)),
            ("relu_4", nn.ReLU()), ("conv_4", DalleConv2d(n_hid, n_out, 1))]))

    def forward(self, x: Tensor) -> Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


class DalleEncoder(nn.Module):
    """Image (B, input_channels, H, W) -> logits (B, vocab_size, H/8, W/8). Defaults are the
    released encoder's sizes; smaller ``n_hid`` only serves tests."""

    def __init__(self, group_count: int = 4, n_hid: int = 256, n_blk_per_group: int = 2,
                 input_channels: int = 3, vocab_size: int = 8192) -> None:
        super().__init__()
        self.input_channels, self.vocab_size = input_channels, vocab_size
        n_layers = group_count * n_blk_per_group
        widths = [n_hid] + [2 ** g * n_hid for g in range(group_count)]  # group g: widths[g] -> widths[g+1]
        blocks: list[tuple[str, nn.Module]] = [("input", DalleConv2d(input_channels, n_hid, 7))]
        for g in range(group_count):
            group = [(f"block_{i + 1}", DalleEncoderBlock(widths[g] if i == 0 else widths[g + 1],
                                                          widths[g + 1], n_layers))
                     for i in range(n_blk_per_group)]
            if g < group_count - 1:  # every group but the last halves the resolution
                group.append(("pool", nn.MaxPool2d(kernel_size=2)))
            blocks.append((f"group_{g + 1}", nn.Sequential(OrderedDict(group))))
        blocks.append(("output", nn.Sequential(OrderedDict([
            ("relu", nn.ReLU()), ("conv", DalleConv2d(widths[-1], vocab_size, 1))]))))
        self.blocks = nn.Sequential(OrderedDict(blocks))

    @staticmethod
    def sizes_from_state_dict(state: dict[str, Tensor]) -> dict[str, int]:
        """Constructor arguments read off a state dict's names and shapes, so a file with any
        of the architecture's sizes loads without the caller repeating them."""
        groups = {k.split(".")[1] for k in state if k.startswith("blocks.group_")}
        blocks = {k.split(".")[2] for k in state if k.startswith("blocks.group_1.")}
        n_hid, input_channels = state["blocks.input.w"].shape[:2]
        return dict(group_count=len(groups), n_hid=int(n_hid),
                    n_blk_per_group=len(blocks - {"pool"}), input_channels=int(input_channels),
                    vocab_size=int(state["blocks.output.conv.w"].shape[0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)
