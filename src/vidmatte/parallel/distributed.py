"""Process-group set-up for ``torchrun``, read when training starts (never at import).

Without a launcher (no ``WORLD_SIZE`` in the environment, or 1) training runs in one process and
no process group is created. Under ``torchrun`` each process joins the group with gloo on CPU or
NCCL on CUDA, one GPU per local rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from vidmatte.errors import VidmatteError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the run.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this machine (its GPU index on CUDA).
        device: the device this process trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0, the process that alone logs and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA (the local rank's GPU) when available, else CPU; ``cpu`` and ``cuda`` are forced."""
    if preference not in ("auto", "cpu", "cuda"):
        raise VidmatteError(f"device must be auto, cpu or cuda, got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise VidmatteError("device cuda requested but no CUDA device is available")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Read the ``torchrun`` environment and join the process group if there is more than one process.

    Args:
        device: as :func:`pick_device`.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, chosen)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (a no-op in a single process)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every process (a no-op in a single process)."""
    if context.distributed:
        dist.barrier()


def gather_objects(context: DistributedContext, value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_over_ranks(context: DistributedContext, values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of a tensor over all ranks (the tensor itself in a single process)."""
    if not context.distributed:
        return values
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / context.world_size


def broadcast_buffers(context: DistributedContext, module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank.

    DistributedDataParallel broadcasts them before each forward pass, so after the last pass each
    rank holds the statistics of its own batch; this makes the replicas identical again.
    """
    if not context.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
