r"""What a search returns: ranked :class:`Candidate` architectures in a :class:`SearchResult`,
printed as a table (``d2a search``) or written as JSON; with a training budget, the
:class:`Measurement` s of its :class:`Refinement`."""
from __future__ import annotations

import json
import math
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
        config (dict, optional): MobileNetV3 only: OFA's config, ``{'ks': [20 ints],
            'e': [20 ints], 'd': [5 ints]}`` (kernel sizes and expand ratios of the 20
            layers, depths of the 5 stages; layers beyond a stage's depth are not built).
    """
    rank: int
    arch: str
    predicted_accuracy: float
    predicted_std: float = 0.0
    params: Optional[int] = None
    flops: Optional[int] = None
    latency_ms: Optional[float] = None
    config: Optional[Dict[str, List[int]]] = None


@dataclass
class Measurement:
    r"""One candidate trained during refinement.

    Attributes:
        step (int): 1 for the first cell measured.
        arch (str): the architecture string.
        predicted_accuracy (float): the meta-predictor's zero-shot accuracy.
        measured_accuracy (float): the accuracy the trainer measured (percent).
        expected_accuracy (float): the surrogate's expected accuracy when the cell was
            picked (the prediction for the first pick).
        expected_std (float): the surrogate's uncertainty then (NaN for the first pick).
        acquisition (float): the acquisition score it was picked with (NaN for the first).
        cached (bool): read from the measurement cache instead of trained.
        wall_time (float): seconds of its training (when it was trained).
    """
    step: int
    arch: str
    predicted_accuracy: float
    measured_accuracy: float
    expected_accuracy: float = float('nan')
    expected_std: float = float('nan')
    acquisition: float = float('nan')
    cached: bool = False
    wall_time: float = 0.0


@dataclass
class Refinement:
    r"""The measurements of a budgeted refinement (:func:`~d2a.search.refine.refine`).

    Attributes:
        budget (int): most cells measured.
        acquisition (str): the rule that chose each next cell.
        measurements (list of Measurement): in the order measured.
        num_trained (int): cells trained in this run.
        num_cached (int): cells read from the cache (trained by an earlier run).
        pool_size (int): candidates the cells were chosen from.
        interrupted (bool): stopped by Ctrl-C before the budget was spent.
        recipe (dict): fields of the training recipe (when trained with one).
        trainer (str): what the trainer measures on (its cache key).
        cache (str, optional): the measurement cache file.
    """
    budget: int
    acquisition: str
    measurements: List[Measurement]
    num_trained: int = 0
    num_cached: int = 0
    pool_size: int = 0
    interrupted: bool = False
    recipe: Dict[str, Any] = field(default_factory=dict)
    trainer: str = ''
    cache: Optional[str] = None

    @property
    def best(self) -> Measurement:
        r"""The measurement with the highest measured accuracy (the earliest on ties)."""
        if not self.measurements:
            raise ValueError('no cell was measured')
        return max(self.measurements, key=lambda m: (m.measured_accuracy, -m.step))

    @property
    def num_measured(self) -> int:
        return len(self.measurements)

    def to_dict(self) -> Dict[str, Any]:
        r"""Plain data for JSON (NaN, for the first pick's surrogate values, becomes
        ``None``)."""
        d = asdict(self)
        d['measurements'] = [_no_nan(m) for m in d['measurements']]
        d['num_measured'] = self.num_measured
        d['best'] = _no_nan(asdict(self.best)) if self.measurements else None
        return d

    def to_table(self) -> str:
        r"""The measurements, best measured first, then the counts."""
        rows = [[str(m.step), f'{m.predicted_accuracy:.2f}', f'{m.measured_accuracy:.2f}',
                 'cache' if m.cached else f'{m.wall_time:.1f}s', m.arch]
                for m in sorted(self.measurements, key=lambda m: (-m.measured_accuracy,
                                                                  m.step))]
        header = ['step', 'predicted', 'measured', 'trained', 'architecture']
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(header)]
        lines = [f'refinement: {self.num_measured} of budget {self.budget} measured '
                 f'({self.num_trained} trained now, {self.num_cached} from the cache), '
                 f'chosen by {self.acquisition} among {self.pool_size:,} candidates',
                 '  '.join(h.ljust(w) for h, w in zip(header, widths)),
                 '  '.join('-' * w for w in widths)]
        lines += ['  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        if self.measurements:
            b = self.best
            lines.append(f'best measured: {b.measured_accuracy:.2f} % (predicted '
                         f'{b.predicted_accuracy:.2f} %, step {b.step}) {b.arch}')
        if self.interrupted:
            lines.append('note: interrupted; rerun the same command to continue (measured '
                         'cells are read from the cache)')
        if self.cache:
            lines.append(f'measurements cached in {self.cache}')
        return '\n'.join(lines)


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
        guidance (float): strength of the predictor guidance of generation (0: none).
        refinement (Refinement, optional): the cells trained with a budget.
        network (dict): sizes of the network that ``params`` and ``flops`` count besides
            its architecture (``in_channels``, ``num_classes``; for MobileNetV3 also
            ``image_size`` and ``width_mult``).
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
    guidance: float = 0.0
    refinement: Optional[Refinement] = None
    network: Dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Candidate:
        r"""The zero-shot top-1 candidate (see :attr:`best_measured` after refinement)."""
        return self.candidates[0]

    @property
    def best_measured(self) -> Optional[Measurement]:
        r"""The best measured cell of the refinement (``None`` without one)."""
        if self.refinement is None or not self.refinement.measurements:
            return None
        return self.refinement.best

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        if self.refinement is not None:
            d['refinement'] = self.refinement.to_dict()
        return d

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
        configs = [c for c in self.candidates if c.config is not None]
        if configs:
            lines += ['', 'OFA configs (ks: kernel per layer, e: expand ratio per layer, '
                          'd: depth per stage):']
            lines += [f"{c.rank:>4}  ks={c.config['ks']}\n      e={c.config['e']}\n"
                      f"      d={c.config['d']}" for c in configs]
        lines.append('')
        if has_cost and 'width_mult' in self.network:
            n = self.network
            lines.append(f"params and FLOPs of the MobileNetV3 at width {n['width_mult']:g}, "
                         f"{n['image_size']}x{n['image_size']} input, {n['in_channels']} "
                         f"channel(s), {n['num_classes']} classes")
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
        if self.guidance:
            lines.append(f'generation guided by the predictor (strength {self.guidance:g})')
        if self.message:
            lines.append(f'note: {self.message}')
        if self.refinement is not None:
            lines += ['', self.refinement.to_table()]
        return '\n'.join(lines)


def _no_nan(record: Dict[str, Any]) -> Dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def _fmt_m(value: Optional[int]) -> str:
    return '-' if value is None else f'{value / 1e6:.3f}'
