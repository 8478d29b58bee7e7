"""Batches to the device as uint8, float there (uarbench/training/data.py): on the CPU the
batches are the ones the loader always gave; elsewhere the copy is uint8 and the float is made
on the device."""
from __future__ import annotations

import pytest
import torch

from uarbench.training.data import (SplitTensors, eval_batches, random_crop, to_device_unit,
                                    to_unit, train_batches)


def _split(n=7, size=12) -> SplitTensors:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 2, size, size, generator=g) * 255).byte()
    tokens = torch.randint(4, 20, (n, 5), generator=g)
    return SplitTensors([f"s{i}" for i in range(n)], images, tokens, ["x"] * n)


def test_cpu_is_to_unit():
    x = _split().images[:3]
    want = to_unit(x)
    for device in (None, "cpu", torch.device("cpu")):
        got = to_device_unit(x, device)
        assert got.dtype == torch.float32 and got.shape == (3, 2, 1, 12, 12)
        assert torch.equal(got, want)
    assert float(want.max()) <= 1.0 and torch.equal(want[0, 1, 0], x[0, 1].float() / 255)


def test_another_device_gets_uint8_and_makes_the_float_there(monkeypatch):
    """The copy that leaves the host is the uint8 batch (4x fewer bytes); the meta device
    stands in for a GPU (no data, but dtypes and shapes are real)."""
    moved = []
    real_to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        moved.append(self.dtype)
        return real_to(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "to", spy)
    got = to_device_unit(_split().images[:3], "meta")
    assert got.device.type == "meta" and got.dtype == torch.float32
    assert got.shape == (3, 2, 1, 12, 12) and moved[0] == torch.uint8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_copy_is_pinned_async_and_equal():
    x = _split().images[:3]
    got = to_device_unit(x, "cuda")
    assert got.is_cuda and torch.equal(got.cpu(), to_unit(x))


def test_train_batches_on_cpu_are_todays_batches():
    data = _split()
    ours = list(train_batches(data, 3, 8, torch.Generator().manual_seed(4), device="cpu"))
    gen = torch.Generator().manual_seed(4)          # what the loader did before `device`
    order = torch.randperm(len(data.ids), generator=gen)
    for (idx, images, tokens), start in zip(ours, range(0, len(order), 3)):
        want_idx = order[start:start + 3]
        assert torch.equal(idx, want_idx) and torch.equal(tokens, data.tokens[want_idx])
        assert torch.equal(images, to_unit(random_crop(data.images[want_idx], 8, gen)))
    default = list(train_batches(data, 3, 8, torch.Generator().manual_seed(4)))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(ours, default))


def test_eval_batches_on_a_device_and_token_ids_pass_through():
    data = _split()
    batches = list(eval_batches(data, 4, device="meta"))
    assert [len(i) for i, _ in batches] == [4, 3]
    assert all(b.device.type == "meta" and b.dtype == torch.float32 for _, b in batches)
    ids = torch.randint(0, 30, (7, 2, 3, 3), dtype=torch.int16)
    tokens = SplitTensors(data.ids, ids, data.tokens, data.references)
    got = torch.cat([b for _, b in eval_batches(tokens, 4, device="cpu")])
    assert got.dtype == torch.long and torch.equal(got, ids.long())
