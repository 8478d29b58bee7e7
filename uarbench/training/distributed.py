"""Data-parallel process groups for a run launched by ``torchrun`` (several GPUs, or CPU processes
with gloo): who this process is, and the few collectives the trainer needs.

``torchrun --nproc_per_node N -m uarbench train ...`` starts N copies of the command and tells each
its place through the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
:func:`init_distributed` reads it and joins the process group (NCCL on CUDA, gloo on CPU); when
the variables are absent it is a no-op and returns a world of one, so the same code runs
unchanged without ``torchrun``. Every helper below is also a no-op in a world of one.

Hand-written: ``torch.distributed`` provides the primitives; the run-level conventions (rank 0
validates, writes and scores; the others wait for its files) are this project's.
"""
from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Iterator

import torch
from torch import Tensor
import torch.distributed as dist

from uarbench.errors import UarbenchError

# rank 0 validates (every epoch) and decodes the test split (at the end) while the other ranks
# wait in a collective: the default timeouts (10-30 min) are too short for a large test split
DEFAULT_TIMEOUT = timedelta(hours=3)
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a data-parallel run; the default is a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that validates, logs, writes checkpoints and scores."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device | str, timeout: timedelta = DEFAULT_TIMEOUT) -> DistInfo:
    """Join the process group torchrun describes in the environment (or the one already
    initialised in this process); without WORLD_SIZE > 1, a world of one on ``device``.

    On CUDA each process takes GPU ``LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
    """
    device = torch.device(device)
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return DistInfo(device=device)
        missing = [v for v in TORCHRUN_VARS if v not in os.environ]
        if missing:
            raise UarbenchError(f"WORLD_SIZE is {world} but {', '.join(missing)} is not set.",
                                fix="launch with torchrun --nproc_per_node N -m uarbench ..., "
                                    "or unset WORLD_SIZE for a single process.")
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if world <= 1:
        return DistInfo(device=device)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UarbenchError(f"LOCAL_RANK {local_rank} but torch sees "
                                f"{torch.cuda.device_count()} GPU(s) on this node.",
                                fix="set --nproc_per_node to at most the number of GPUs.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout,
                                device_id=device if device.type == "cuda" else None)
        atexit.register(_close)
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=device)


def _close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here (e.g. until rank 0's checkpoint is on disk)."""
    if info.parallel:
        dist.barrier(device_ids=[info.local_rank] if info.device.type == "cuda" else None)


def all_reduce_sum_tensor(values: Tensor, info: DistInfo) -> Tensor:
    """Sum a device tensor over the ranks in place, without a host sync (the values themselves
    in a world of one)."""
    if info.parallel:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_from_main(value: float, info: DistInfo) -> float:
    """Rank 0's ``value`` on every rank, so that decisions taken from it agree everywhere."""
    if not info.parallel:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.broadcast(t, src=0)
    return float(t.item())


@contextmanager
def main_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fits and caches something); the others run it after,
    when they can read what rank 0 wrote."""
    if not info.is_main:
        barrier(info)
    yield
    if info.is_main:
        barrier(info)
