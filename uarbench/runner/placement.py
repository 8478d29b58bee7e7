"""Where a local suite's tasks run: one job per visible GPU by default.

On a machine with GPUs (``--device cuda``, or ``auto`` where torch sees one), a local suite starts
``jobs_per_gpu`` x (visible GPUs) workers. Each trained run and each tokenizer fit gets one GPU
through ``CUDA_VISIBLE_DEVICES`` (slot k -> the k-th visible GPU, round-robin), so inside the run
``cuda`` means its own GPU and DDP-free code needs no device index. Floors (constant,
nn_retrieval) do not need a GPU: their workers see none. Workers are fresh processes per task
there, because a process keeps the GPUs it saw when CUDA started. Without GPUs nothing changes:
``--jobs`` workers (default: benchmark.toml's ``[runner] jobs``, else the core count).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from uarbench.errors import UarbenchError

GPU_ENV = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Placement:
    """``gpus``: the visible GPU ids (as CUDA_VISIBLE_DEVICES names them), () on a CPU suite."""
    gpus: tuple[str, ...] = ()
    jobs_per_gpu: int = 1

    @property
    def on_gpus(self) -> bool:
        return bool(self.gpus)

    @property
    def workers(self) -> int:
        return len(self.gpus) * self.jobs_per_gpu

    def gpu_of(self, slot: int) -> str:
        """The GPU of worker slot ``slot`` (round-robin over the visible GPUs)."""
        return self.gpus[slot % len(self.gpus)]

    def environment(self, slot: int, needs_gpu: bool) -> dict[str, str]:
        """Variables to set in the worker before the task runs ({} on a CPU suite)."""
        if not self.on_gpus:
            return {}
        return {GPU_ENV: self.gpu_of(slot) if needs_gpu else ""}


def visible_gpus(count: int) -> tuple[str, ...]:
    """The ids of the ``count`` GPUs torch sees: CUDA_VISIBLE_DEVICES's entries, else 0..n-1."""
    listed = [s.strip() for s in os.environ.get(GPU_ENV, "").split(",") if s.strip()]
    return tuple(listed[:count]) if listed else tuple(str(i) for i in range(count))


def plan_placement(device: str, jobs_per_gpu: int | None = None) -> Placement:
    """The placement of a local suite run with ``--device device``; ``jobs_per_gpu`` is
    ``--jobs`` on a GPU suite (default 1)."""
    if device == "cpu":
        return Placement()
    count = torch.cuda.device_count()
    if count == 0:
        if device == "cuda":
            raise UarbenchError("--device cuda but torch sees no GPU.",
                                fix="use --device cpu (or auto), or check the CUDA install.")
        return Placement()
    if jobs_per_gpu is not None and jobs_per_gpu < 1:
        raise UarbenchError(f"--jobs {jobs_per_gpu}: need at least 1 job per GPU.",
                            fix="pass --jobs 1 or more.")
    return Placement(visible_gpus(count), jobs_per_gpu or 1)


@dataclass(frozen=True)
class Placed:
    """``do(task, slot)`` run with the slot's environment (picklable: workers receive it)."""
    do: Callable
    placement: Placement
    needs_gpu: Callable

    def __call__(self, task, slot: int):
        os.environ.update(self.placement.environment(slot, self.needs_gpu(task)))
        return self.do(task, slot)
