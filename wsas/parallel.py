"""Data parallelism under ``torchrun``: one process per device, gradients averaged."""

from __future__ import annotations

import os

import torch


def init_distributed() -> tuple[int, int]:
    """``(rank, world size)``; under ``torchrun`` joins the process group (NCCL on GPUs, gloo on
    CPUs)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def average_gradients(params) -> None:
    """Data parallelism: average each gradient over the processes (DistributedDataParallel's
    update)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world
