r"""Distributed training under ``torchrun``: process group, device and rank helpers.

``torchrun --nproc-per-node N -m d2a.cli.main train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :func:`setup` then joins the process group (NCCL on CUDA, gloo on CPU) and
gives each process its device. Without those variables everything runs in one process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from d2a.device import resolve_device


@dataclass
class DistInfo:
    r"""Where this process stands: ``rank`` of ``world_size`` on ``device``."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: Optional[str] = 'auto') -> DistInfo:
    r"""Joins the process group when launched by ``torchrun`` and picks the device."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    dev = resolve_device(device, local_rank)
    info = DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)
    if world_size > 1 and not dist.is_initialized():
        backend = 'nccl' if dev.type == 'cuda' else 'gloo'
        if dev.type == 'cuda':
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        info.initialized_here = True
    elif world_size > 1:
        info.rank, info.world_size = dist.get_rank(), dist.get_world_size()
    return info


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    r"""Sums a tensor over all processes (a no-op in one process)."""
    if info.distributed:
        values = values.to(info.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
