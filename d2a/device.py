r"""The device a command runs on: ``'auto'`` (CUDA when available, else CPU), ``'cpu'``,
``'cuda'`` or ``'cuda:N'``."""
from __future__ import annotations

from typing import Optional

import torch


def resolve_device(device: Optional[str] = 'auto', local_rank: int = 0) -> torch.device:
    r"""``'auto'`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``;
    under ``torchrun`` a bare ``'cuda'`` becomes this process's GPU."""
    name = 'auto' if device in (None, '') else str(device)
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r} (use 'auto', 'cpu', 'cuda' or 'cuda:N')") \
            from None
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device!r} asked for, but CUDA is not available here')
        if dev.index is None:
            dev = torch.device('cuda', local_rank % torch.cuda.device_count())
    return dev
