r"""Limits a candidate must satisfy: parameters and FLOPs (from the search space's cost model,
:meth:`~d2a.graphs.SearchSpace.cost_model`) and latency on one device (:class:`LatencyTable`,
from a benchmark CSV table such as HELP's ``latency_ms.csv``: ``index, arch, <device>, ...``,
milliseconds)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

if TYPE_CHECKING:
    from d2a.graphs.space import CostModel


@dataclass
class Constraints:
    r"""Limits a candidate must satisfy.

    Args:
        max_params (float, optional): most parameters (a count, e.g. ``1e6``).
        max_flops (float, optional): most multiply-accumulates per image.
        max_latency (float, optional): most milliseconds in :attr:`latency_table`.
        latency_table (LatencyTable, optional): latency per architecture on one device;
            required with ``max_latency``. Architectures missing from it fail a latency
            limit.
        cost_model (CostModel, optional): parameters and FLOPs (the search space's
            :meth:`~d2a.graphs.SearchSpace.cost_model`); required with
            ``max_params`` or ``max_flops``.
    """
    max_params: Optional[float] = None
    max_flops: Optional[float] = None
    max_latency: Optional[float] = None
    latency_table: Optional[LatencyTable] = None
    cost_model: Optional[CostModel] = None

    def __post_init__(self) -> None:
        for name in ('max_params', 'max_flops', 'max_latency'):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if self.max_latency is not None and self.latency_table is None:
            raise ValueError('max_latency needs a latency table and a device '
                             '(--latency-table CSV --device-latency NAME)')
        if (self.max_params is not None or self.max_flops is not None) and self.cost_model is None:
            raise ValueError('max_params/max_flops need a cost model; the search space has none')

    @property
    def active(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {k: getattr(self, k) for k in ('max_params', 'max_flops',
                                                              'max_latency')
                               if getattr(self, k) is not None}
        if self.latency_table is not None:
            out['latency_device'] = self.latency_table.device
        return out

    def violation(self, arch: str) -> Optional[str]:
        r"""``None`` when ``arch`` satisfies every limit, else the name of the first one
        it breaks (``'params'``, ``'flops'`` or ``'latency'``)."""
        if self.max_params is not None and self.cost_model.params(arch) > self.max_params:
            return 'params'
        if self.max_flops is not None and self.cost_model.flops(arch) > self.max_flops:
            return 'flops'
        if self.max_latency is not None:
            lat = self.latency_table.latency(arch)
            if lat is None or lat > self.max_latency:
                return 'latency'
        return None

    def check_feasible(self) -> None:
        r"""Raises :class:`ValueError` when a limit is below the smallest value any
        architecture reaches (limits that only conflict together are found by the search,
        which then gives up after ``patience`` batches)."""
        parts = []
        if self.max_params is not None and self.max_params < self.cost_model.min_params():
            parts.append(f'max_params={self.max_params:,.0f} (smallest network: '
                         f'{self.cost_model.min_params():,})')
        if self.max_flops is not None and self.max_flops < self.cost_model.min_flops():
            parts.append(f'max_flops={self.max_flops:,.0f} (smallest network: '
                         f'{self.cost_model.min_flops():,})')
        if self.max_latency is not None:
            fastest = self.latency_table.min_latency()
            if fastest is None or self.max_latency < fastest:
                parts.append(f'max_latency={self.max_latency:g} ms on {self.latency_table.device} '
                             f'(fastest in {self.latency_table.path.name}: '
                             f'{"no entry" if fastest is None else f"{fastest:g} ms"})')
        if parts:
            raise ValueError('no architecture satisfies the constraints: ' + '; '.join(parts))


def parse_count(text: Union[str, float, int]) -> float:
    r"""Parses counts like ``1.5M``, ``200k``, ``3e6`` or ``1G``."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    scale = {'k': 1e3, 'm': 1e6, 'g': 1e9}.get(s[-1:].lower(), 1.0)
    if scale != 1.0:
        s = s[:-1]
    try:
        return float(s) * scale
    except ValueError:
        raise ValueError(f'{text!r} is not a count (examples: 1500000, 1.5M, 200k)') from None


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
