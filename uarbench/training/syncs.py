"""Counting host syncs: the calls that make Python wait for a tensor's value (``item``,
``tolist``, ``bool`` / ``float`` / ``int`` of a tensor, ``numpy``). On a GPU each one stalls the
launch queue until the device catches up; a training step should make none. Used by
``benchmarks/bench_train.py`` and the step tests. Hand-written: torch's
``torch.cuda.set_sync_debug_mode`` reports only CUDA syncs, and we count on the CPU too.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch

METHODS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextmanager
def count_host_syncs() -> Iterator[Counter]:
    """Within the block, count each call of :data:`METHODS` on any tensor (the Counter maps a
    method name to its calls). Not thread-safe: it patches ``torch.Tensor``."""
    calls: Counter = Counter()
    saved = {name: getattr(torch.Tensor, name) for name in METHODS}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            calls[name] += 1
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in saved.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)
