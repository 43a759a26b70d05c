r"""Measured latency of architectures: :class:`LatencyTable`, latency per architecture on one
device, from a CSV table (HELP's ``latency_ms.csv`` format: ``index, arch, <device>, ...``,
milliseconds). Parameters and FLOPs come from the search space
(:meth:`~d2a.graphs.SearchSpace.cost_model`).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union


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
