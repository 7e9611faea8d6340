"""Process-group plumbing for `torchrun --nproc_per_node N -m tinycats train ...`.

Without torchrun's environment (WORLD_SIZE unset) everything here is a no-op for one process.
NCCL on CUDA, gloo on the CPU. The trainer treats --batch-size as global, so a recipe means the
same thing on 1 GPU or 8; each process takes its contiguous slice of every global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> Context:
    """Join the process group torchrun describes, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Context(rank, world, local)


def teardown(ctx: Context) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def mean(ctx: Context, values: torch.Tensor) -> torch.Tensor:
    """Average a tensor over processes (identity for one)."""
    if ctx.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= ctx.world_size
    return values


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        dist.barrier()
