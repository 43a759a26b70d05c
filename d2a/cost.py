r"""Costs of architectures: parameters, FLOPs and measured latency.

* :class:`NB201CostModel` -- parameters and multiply-accumulates ("FLOPs", NAS-Bench-201's
  convention) of the NB201 network of a cell. The cost of a network is the cost of its
  fixed parts plus, per cell edge, the cost of the op on it, so five networks (all edges
  ``none``, and all edges one op) give every cell's cost exactly, without building 15,625
  networks.
* :class:`LatencyTable` -- latency per architecture on one device, from a CSV table
  (HELP's ``latency_ms.csv`` format: ``index, arch, <device>, ...``, milliseconds).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from d2a.graphs.nb201 import NUM_EDGES, OPS, format_arch, parse_arch


class NB201CostModel:
    r"""Parameters and FLOPs of :class:`~d2a.nets.NB201Network` for any cell.

    Args:
        C (int): channels of the first stage. (default: :obj:`16`)
        N (int): cells per stage. (default: :obj:`5`)
        image_size (int): input side for FLOPs. (default: :obj:`32`)
        in_channels (int): image channels. (default: :obj:`3`)
        num_classes (int): classifier outputs. (default: :obj:`10`)
    """
    def __init__(self, C: int = 16, N: int = 5, image_size: int = 32, in_channels: int = 3,
                 num_classes: int = 10) -> None:
        self.C, self.N, self.image_size = C, N, image_size
        self.in_channels, self.num_classes = in_channels, num_classes
        self._base, self._per_edge = _tables(C, N, image_size, in_channels, num_classes)

    def params(self, arch: str) -> int:
        r"""Number of parameters of the network of ``arch``."""
        return self._base[0] + sum(self._per_edge[op][0] for op in parse_arch(arch))

    def flops(self, arch: str) -> int:
        r"""Multiply-accumulates of one image through the network of ``arch``."""
        return self._base[1] + sum(self._per_edge[op][1] for op in parse_arch(arch))

    def min_params(self) -> int:
        r"""The fewest parameters of any cell's network."""
        return self._base[0] + NUM_EDGES * min(p for p, _ in self._per_edge.values())

    def min_flops(self) -> int:
        r"""The fewest FLOPs of any cell's network."""
        return self._base[1] + NUM_EDGES * min(f for _, f in self._per_edge.values())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(C={self.C}, N={self.N}, '
                f'image_size={self.image_size}, num_classes={self.num_classes})')


@functools.lru_cache(maxsize=16)
def _tables(C: int, N: int, image_size: int, in_channels: int,
            num_classes: int) -> Tuple[Tuple[int, int], Dict[str, Tuple[int, int]]]:
    from d2a.nets.nb201 import count_flops, count_params

    def cost(op: str) -> Tuple[int, int]:
        arch = format_arch([op] * NUM_EDGES)
        # On the meta device the networks have shapes but no memory or initialisation.
        with torch.device('meta'):
            return (count_params(arch, C, N, in_channels, num_classes),
                    count_flops(arch, C, N, image_size, in_channels, num_classes))

    base = cost('none')
    per_edge = {}
    for op in OPS:
        p, f = cost(op)
        # Each of the 6 edges of every cell carries the op: the increase is 6x one edge's.
        per_edge[op] = ((p - base[0]) // NUM_EDGES, (f - base[1]) // NUM_EDGES)
    return base, per_edge


class LatencyTable:
    r"""Latency in milliseconds of architectures on one device, from a CSV table.

    Args:
        path (str or Path): CSV with an ``arch`` column and one column per device.
        device (str): the device column.
        space (str): the search space of the ``arch`` column.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` naming the
    known devices for an unknown one.
    """
    def __init__(self, path: Union[str, Path], device: str, space: str = 'nb201') -> None:
        from d2a.benchmark import BenchmarkTable
        self.path = Path(path)
        self.device = device
        table = BenchmarkTable(path, space=space)
        if device not in table.columns:
            raise ValueError(f"latency table {self.path} has no device {device!r} "
                             f"(devices: {', '.join(table.columns)})")
        self._table = table

    def min_latency(self) -> Optional[float]:
        r"""The smallest latency in the table for this device, ``None`` if it has none."""
        import numpy as np
        column = self._table.column(self.device)
        column = column[~np.isnan(column)]
        return float(column.min()) if column.size else None

    @property
    def devices(self) -> List[str]:
        return list(self._table.columns)

    def latency(self, arch: str) -> Optional[float]:
        r"""Latency of ``arch`` in ms, ``None`` if the table has no value for it."""
        return self._table.value(arch, self.device)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({str(self.path)!r}, device={self.device!r})'
