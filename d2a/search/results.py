r"""What a search returns: ranked :class:`Candidate` architectures in a :class:`SearchResult`,
printed as a table (``d2a search``) or written as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from d2a.utils.atomic import atomic_write


@dataclass
class Candidate:
    r"""A ranked architecture.

    Attributes:
        rank (int): 1 for the best predicted accuracy.
        arch (str): the architecture string.
        predicted_accuracy (float): the predictor's accuracy, averaged over re-samplings.
        predicted_std (float): its standard deviation over the re-samplings.
        params (int, optional): parameters of the network (when the space has a cost model).
        flops (int, optional): multiply-accumulates of one image.
        latency_ms (float, optional): latency on the given device (when a table is given).
    """
    rank: int
    arch: str
    predicted_accuracy: float
    predicted_std: float = 0.0
    params: Optional[int] = None
    flops: Optional[int] = None
    latency_ms: Optional[float] = None


@dataclass
class SearchResult:
    r"""What :func:`search` returns.

    Attributes:
        dataset (str): the dataset searched for.
        candidates (list of Candidate): the ``top_k`` ranked candidates.
        num_generated (int): graphs sampled from the generator.
        num_valid (int): valid graphs among them.
        num_evaluated (int): unique valid candidates satisfying the constraints, all scored
            by the predictor.
        rejected (dict): candidates rejected per constraint (unique architectures).
        timing (dict): seconds spent in ``features``, ``encoding``, ``generation``,
            ``ranking`` and ``total``.
        space (str): the search space.
        checkpoint (str): the checkpoint folder.
        constraints (dict): the constraints applied.
        message (str, optional): a note, e.g. when fewer candidates than asked exist.
        exhaustive (bool): every unique architecture of the space was scored (no
            generation).
    """
    dataset: str
    candidates: List[Candidate]
    num_generated: int
    num_valid: int
    num_evaluated: int
    rejected: Dict[str, int] = field(default_factory=dict)
    timing: Dict[str, float] = field(default_factory=dict)
    space: str = 'nb201'
    checkpoint: str = ''
    constraints: Dict[str, Any] = field(default_factory=dict)
    message: Optional[str] = None
    exhaustive: bool = False

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self, path: Optional[Union[str, Path]] = None) -> str:
        r"""The result as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with atomic_write(path) as f:
                f.write(text + '\n')
        return text

    def to_table(self) -> str:
        r"""A readable table of the candidates followed by the counts and timing."""
        has_lat = any(c.latency_ms is not None for c in self.candidates)
        has_cost = any(c.params is not None for c in self.candidates)
        header = ['rank', 'predicted acc', 'architecture']
        if has_cost:
            header[2:2] = ['params (M)', 'FLOPs (M)']
        if has_lat:
            header.insert(len(header) - 1, 'latency (ms)')
        rows = []
        for c in self.candidates:
            row = [str(c.rank), f'{c.predicted_accuracy:.2f} ± {c.predicted_std:.2f}']
            if has_cost:
                row += [_fmt_m(c.params), _fmt_m(c.flops)]
            if has_lat:
                row.append('-' if c.latency_ms is None else f'{c.latency_ms:.3f}')
            row.append(c.arch)
            rows.append(row)
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(header)]
        lines = [f'd2a search: {self.dataset} ({self.space})',
                 '  '.join(h.ljust(w) for h, w in zip(header, widths)),
                 '  '.join('-' * w for w in widths)]
        lines += ['  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        lines.append('')
        if self.exhaustive:
            lines.append(f'ranked all {self.num_evaluated:,} unique architectures of the space '
                         'that satisfy the constraints (no generation)')
        else:
            lines.append(f'generated {self.num_generated:,} graphs, {self.num_valid:,} valid, '
                         f'{self.num_evaluated:,} unique candidates scored')
        if any(self.rejected.values()):
            lines.append('rejected by constraints: ' + ', '.join(
                f'{k} {v:,}' for k, v in self.rejected.items() if v))
        t = self.timing
        lines.append('time: ' + ', '.join(f'{k} {t[k]:.2f}s' for k in
                                           ('features', 'encoding', 'generation', 'ranking',
                                            'total') if k in t))
        if self.message:
            lines.append(f'note: {self.message}')
        return '\n'.join(lines)


def _fmt_m(value: Optional[int]) -> str:
    return '-' if value is None else f'{value / 1e6:.3f}'
