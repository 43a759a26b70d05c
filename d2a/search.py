r"""Search: generate architectures for a new dataset and rank them (MetaD2A's meta-test).

For a dataset (an image folder, an ``.npz`` file or a task of a meta-database):

1. **features** -- extract one feature vector per image with the feature extractor the
   checkpoints were trained with;
2. **encoding** -- draw ``num_sample`` vectors per class and encode the dataset;
3. **generation** -- sample graphs from the generator in batches until ``num_candidates``
   unique (by canonical key) valid architectures that satisfy the constraints exist;
4. **ranking** -- score each with the predictor, averaged over several re-samplings of the
   dataset, and return the ``top_k``.

:func:`search` is the Python API; ``d2a search`` prints the same :class:`SearchResult`.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from d2a.utils.atomic import atomic_write
from d2a.cost import LatencyTable

DatasetInput = Union[str, Path, Tuple[Union[str, Path], str], Any]

#: The package's shipped checkpoints (``generator.pt`` and ``predictor.pt``).
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parent / 'checkpoints'


# ----------------------------------------------------------------------------- results
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


# ----------------------------------------------------------------------------- constraints
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
    cost_model: Optional[Any] = None

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


# ----------------------------------------------------------------------------- generation
@dataclass
class GenerationStats:
    r"""Counts of :func:`collect_candidates`."""
    num_generated: int = 0
    num_valid: int = 0
    num_batches: int = 0
    rejected: Dict[str, int] = field(default_factory=lambda: {'params': 0, 'flops': 0,
                                                              'latency': 0})
    stopped_early: bool = False


def collect_candidates(sample: Callable[[int], Sequence[Optional[str]]], space,
                       num_candidates: int, constraints: Optional[Constraints] = None,
                       batch_size: int = 100, patience: int = 20,
                       progress: bool = False) -> Tuple[List[str], GenerationStats]:
    r"""Calls ``sample(batch_size)`` until ``num_candidates`` unique valid architectures
    satisfy ``constraints``.

    Args:
        sample (callable): returns a batch of architecture strings, ``None`` for invalid
            graphs.
        space (SearchSpace): gives the canonical keys.
        num_candidates (int): how many unique candidates to collect.
        constraints (Constraints, optional): limits checked for each new architecture.
        batch_size (int): graphs per call.
        patience (int): stop after this many consecutive batches without a new candidate.
        progress (bool): show a progress bar.

    Returns:
        The candidates (first string seen per canonical key) and the counts. Fewer than
        ``num_candidates`` are returned when ``patience`` runs out
        (:attr:`GenerationStats.stopped_early`).
    """
    from tqdm.auto import tqdm

    if num_candidates < 1:
        raise ValueError(f'num_candidates must be >= 1, got {num_candidates}')
    if batch_size < 1 or patience < 1:
        raise ValueError(f'batch_size and patience must be >= 1, got {batch_size} and {patience}')
    stats = GenerationStats()
    seen: Dict[str, Optional[str]] = {}  # canonical key -> violation (None: accepted)
    out: List[str] = []
    stall = 0
    with tqdm(total=num_candidates, desc='generate', unit='arch', disable=not progress,
              leave=False) as bar:
        while len(out) < num_candidates:
            archs = sample(batch_size)
            stats.num_batches += 1
            stats.num_generated += len(archs)
            stats.num_valid += sum(a is not None for a in archs)
            before = len(out)
            for arch in archs:
                if arch is None:
                    continue
                key = space.canonical_key(arch)
                if key in seen:
                    continue
                why = constraints.violation(arch) if constraints is not None else None
                seen[key] = why
                if why is not None:
                    stats.rejected[why] += 1
                    continue
                out.append(arch)
                if len(out) == num_candidates:
                    break
            bar.update(len(out) - before)
            stall = 0 if len(out) > before else stall + 1
            if stall >= patience:
                stats.stopped_early = True
                break
    return out, stats


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


# ----------------------------------------------------------------------------- models
@dataclass
class LoadedModels:
    r"""The generator and predictor of a checkpoint folder, ready for search."""
    generator: torch.nn.Module
    predictor: torch.nn.Module
    space: str
    feature_extractor: Dict[str, Any]
    num_sample: int
    directory: Path


def resolve_checkpoint_dir(checkpoint_dir: Optional[Union[str, Path]] = None) -> Path:
    r"""The checkpoint folder to use (the shipped one by default); raises
    :class:`FileNotFoundError` telling how to get one when it lacks a model."""
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else DEFAULT_CHECKPOINT_DIR
    missing = [k for k in ('generator', 'predictor') if not (directory / f'{k}.pt').is_file()]
    if missing:
        what = 'the shipped checkpoint folder' if checkpoint_dir is None else 'checkpoint folder'
        raise FileNotFoundError(
            f"{what} {directory} has no {' and no '.join(f'{k}.pt' for k in missing)}: pass "
            '--checkpoint DIR (checkpoint_dir=...) of a trained run, or train one with '
            "'d2a train generator --db DB.h5 --out DIR' and "
            "'d2a train predictor --db DB.h5 --out DIR'")
    return directory


def load_models(checkpoint_dir: Optional[Union[str, Path]] = None,
                device: Union[str, torch.device] = 'cpu') -> LoadedModels:
    r"""Loads ``generator.pt`` and ``predictor.pt`` of a checkpoint folder and checks that
    they belong together (same search space and feature extractor)."""
    from d2a.registry import load_model
    directory = resolve_checkpoint_dir(checkpoint_dir)
    models, ckpts = {}, {}
    for kind in ('generator', 'predictor'):
        loaded = load_model(directory, kind, device=device)
        models[kind], ckpts[kind] = loaded.model, loaded.checkpoint
    gen, pred = ckpts['generator'], ckpts['predictor']
    if gen.space != pred.space:
        raise ValueError(f'checkpoints in {directory} disagree: the generator is for space '
                         f'{gen.space!r}, the predictor for {pred.space!r}')
    for key in ('name', 'dim', 'config'):
        if gen.feature_extractor.get(key) != pred.feature_extractor.get(key):
            raise ValueError(f'checkpoints in {directory} were trained on different features: '
                             f'generator {key}={gen.feature_extractor.get(key)!r}, predictor '
                             f'{key}={pred.feature_extractor.get(key)!r}')
    return LoadedModels(generator=models['generator'], predictor=models['predictor'],
                        space=gen.space, feature_extractor=dict(gen.feature_extractor),
                        num_sample=int(pred.train_config.get('num_sample', 20)),
                        directory=directory)


# ----------------------------------------------------------------------------- datasets
@dataclass
class DatasetFeatures:
    r"""Per-class feature arrays of the dataset searched for.

    Attributes:
        name (str): the dataset's name.
        features (list of numpy.ndarray): ``[n_c, dim]`` per class.
        classes (list of str): class names.
        num_channels (int): image channels (3 when the features came from a database).
    """
    name: str
    features: List[Any]
    classes: List[str]
    num_channels: int = 3

    def draw(self, num_sample: int, rng) -> Tensor:
        r"""``[num_classes, num_sample, dim]``: ``num_sample`` vectors per class (with
        replacement only for a class that has fewer)."""
        import numpy as np
        out = []
        for f in self.features:
            idx = rng.choice(len(f), size=num_sample, replace=len(f) < num_sample)
            out.append(torch.from_numpy(np.ascontiguousarray(f[idx], dtype=np.float32)))
        return torch.stack(out)


def _load_extractor(models: LoadedModels):
    from d2a.features import create_extractor, load_extractor_file
    info = models.feature_extractor
    path = models.directory / 'extractor.pt'
    if path.is_file():
        extractor = load_extractor_file(path)
    else:
        if not info.get('name'):
            raise ValueError(f'the checkpoints in {models.directory} were trained on imported '
                             'features with no known extractor: search a task of a '
                             'meta-database instead (dataset=(DB, TASK))')
        extractor = create_extractor(info['name'], **(info.get('config') or {}))
        if any(True for _ in extractor.parameters()):
            raise FileNotFoundError(f'{path} is missing: the weights of feature extractor '
                                    f"{info['name']!r} that the checkpoints were trained with")
    if extractor.name != info.get('name') or extractor.out_channels != info.get('dim'):
        raise ValueError(f'{path}: feature extractor {extractor.name!r} gives '
                         f"{extractor.out_channels}-d features, the checkpoints expect "
                         f"{info.get('name')!r} with {info.get('dim')}-d features")
    return extractor


def dataset_features(dataset: DatasetInput, models: LoadedModels,
                     device: Union[str, torch.device] = 'cpu',
                     progress: bool = False) -> DatasetFeatures:
    r"""Features of ``dataset``: an image folder, an ``.npz`` file (``images`` and
    ``labels`` arrays), a source spec or :class:`~d2a.datasets.ImageSource` (see
    :func:`~d2a.datasets.open_source`), or ``(database path, task name)``."""
    dim = models.feature_extractor.get('dim')
    if isinstance(dataset, tuple):
        if len(dataset) != 2:
            raise ValueError(f'a database dataset is (db path, task name), got {dataset!r}')
        from d2a.db import MetaDatabase
        db_path, task = dataset
        with MetaDatabase.open(db_path) as db:
            name = models.feature_extractor.get('name')
            if db.feature_dim != dim or db.feature_extractor_name != name:
                raise ValueError(f'{db_path} holds {db.feature_dim}-d features of extractor '
                                 f'{db.feature_extractor_name!r}; the checkpoints in '
                                 f'{models.directory} expect {dim}-d features of {name!r}')
            source, classes = db.task_classes(task)
            feats = [db.features(source, c) for c in classes]
        return DatasetFeatures(f'{Path(db_path).name}:{task}', feats, list(classes))
    from d2a.datasets import open_source
    from d2a.features import image_features
    source = open_source(dataset)
    extractor = _load_extractor(models)
    images = source.load(image_size=models.feature_extractor.get('image_size'))
    feats = image_features(extractor, images.images, device=device, progress=progress)
    per_class = [feats[images.labels == i] for i in range(len(images.classes))]
    empty = [c for c, f in zip(images.classes, per_class) if len(f) == 0]
    if empty:
        raise ValueError(f'dataset {source.name}: class {empty[0]!r} has no image')
    return DatasetFeatures(source.name, per_class, list(images.classes), images.num_channels)


# ----------------------------------------------------------------------------- search
def search(dataset: DatasetInput, checkpoint_dir: Optional[Union[str, Path]] = None,
           num_candidates: int = 500, top_k: int = 5, batch_size: Optional[int] = None,
           num_resamples: int = 5, max_params: Optional[float] = None,
           max_flops: Optional[float] = None, max_latency: Optional[float] = None,
           latency_table: Optional[Union[str, Path]] = None,
           latency_device: Optional[str] = None, patience: int = 20,
           device: Optional[str] = 'auto', seed: int = 0,
           progress: bool = False) -> SearchResult:
    r"""Generates and ranks architectures for ``dataset`` (see the module docstring).

    Args:
        dataset: an image folder, an ``.npz`` file, a source spec (``'digits'``,
            ``'glyphs:greek_lower'``, see :func:`~d2a.datasets.parse_source`), or
            ``(meta-database path, task name)``.
        checkpoint_dir (str or Path, optional): folder with ``generator.pt`` and
            ``predictor.pt`` (default: the package's shipped checkpoints).
        num_candidates (int): unique valid candidates to generate and score (MetaD2A: 500
            for CIFAR, 50 for others).
        top_k (int): candidates returned.
        batch_size (int, optional): graphs generated per batch (default:
            ``num_candidates`` clipped to 100..1000; larger batches amortise the dataset
            encoding and the decoder's per-step overhead).
        num_resamples (int): dataset draws the predictor's scores are averaged over.
        max_params (float, optional), max_flops (float, optional): limits of the NB201
            network (C=16, N=5) of a candidate, as counts.
        max_latency (float, optional): limit in ms, looked up in ``latency_table`` (CSV,
            ``arch`` column and one column per device) for ``latency_device``.
        patience (int): give up after this many batches that bring no new candidate.
        device (str, optional): ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``.
        seed (int): seeds the dataset draws and the sampling.
        progress (bool): progress bars.

    Raises :class:`FileNotFoundError` for a missing checkpoint or dataset and
    :class:`ValueError` for bad input or constraints no candidate satisfies.
    """
    import numpy as np

    from d2a.graphs import get_space
    from d2a.device import resolve_device
    if top_k < 1 or num_resamples < 1:
        raise ValueError(f'top_k and num_resamples must be >= 1, got {top_k} and {num_resamples}')
    if (latency_table is None) != (latency_device is None):
        raise ValueError('a latency table and a device name go together '
                         '(--latency-table CSV --device-latency NAME)')
    dev = resolve_device(device)
    t_start = time.perf_counter()
    models = load_models(checkpoint_dir, dev)
    space = get_space(models.space)
    table = LatencyTable(latency_table, latency_device, space=space.name) \
        if latency_table is not None else None

    t0 = time.perf_counter()
    data = dataset_features(dataset, models, dev, progress)
    timing = {'features': time.perf_counter() - t0, 'encoding': 0.0, 'generation': 0.0,
              'ranking': 0.0}
    cost = space.cost_model(num_classes=len(data.classes), in_channels=data.num_channels)
    if cost is None and (max_params is not None or max_flops is not None):
        raise ValueError(f'max_params/max_flops are not available for the {space.name} space '
                         '(no cost model)')
    constraints = Constraints(max_params, max_flops, max_latency,
                              table if max_latency is not None else None, cost)
    constraints.check_feasible()

    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=dev).manual_seed(seed)
    generator = models.generator

    @torch.no_grad()
    def sample(n: int) -> List[Optional[str]]:
        t = time.perf_counter()
        x = data.draw(models.num_sample, rng).to(dev)
        mu, logvar = generator.encode(x)
        if dev.type == 'cuda':  # kernels run asynchronously: wait before reading the clock
            torch.cuda.synchronize(dev)
        timing['encoding'] += time.perf_counter() - t
        t = time.perf_counter()
        mu, logvar = mu.expand(n, -1), logvar.expand(n, -1)
        eps = torch.randn(mu.shape, generator=gen, device=dev, dtype=mu.dtype)
        node_type, adj = generator.decoder.sample(mu + eps * torch.exp(0.5 * logvar),
                                                  generator=gen)
        archs = space.from_dense_batch(node_type, adj)
        timing['generation'] += time.perf_counter() - t
        return archs

    if batch_size is None:
        batch_size = min(max(num_candidates, 100), 1000)
    archs, stats = collect_candidates(sample, space, num_candidates, constraints, batch_size,
                                      patience, progress)
    message = None
    if not archs:
        why = ', '.join(f'{k} {v:,}' for k, v in stats.rejected.items() if v)
        raise ValueError(f'no candidate satisfies the constraints after {stats.num_generated:,} '
                         f'generated graphs ({stats.num_valid:,} valid'
                         f'{f"; rejected by {why}" if why else ""}): relax '
                         + ', '.join(f'{k}={v}' for k, v in constraints.active.items()))
    if len(archs) < num_candidates:
        message = (f'only {len(archs):,} unique valid candidates satisfy the constraints after '
                   f'{stats.num_generated:,} generated graphs ({patience} batches without a new '
                   f'one); asked for {num_candidates:,}')
        warnings.warn(message)

    t0 = time.perf_counter()
    mean, std = rank_candidates(models.predictor, space, archs, data, models.num_sample,
                                num_resamples, rng, dev)
    timing['ranking'] = time.perf_counter() - t0
    order = sorted(range(len(archs)), key=lambda i: -mean[i])[:top_k]
    candidates = [Candidate(rank=r + 1, arch=archs[i], predicted_accuracy=float(mean[i]),
                            predicted_std=float(std[i]),
                            params=cost.params(archs[i]) if cost is not None else None,
                            flops=cost.flops(archs[i]) if cost is not None else None,
                            latency_ms=table.latency(archs[i]) if table is not None else None)
                  for r, i in enumerate(order)]
    timing['total'] = time.perf_counter() - t_start
    return SearchResult(dataset=data.name, candidates=candidates,
                        num_generated=stats.num_generated, num_valid=stats.num_valid,
                        num_evaluated=len(archs), rejected=dict(stats.rejected), timing=timing,
                        space=space.name, checkpoint=str(models.directory),
                        constraints=constraints.active, message=message)


@torch.no_grad()
def rank_candidates(predictor: torch.nn.Module, space, archs: Sequence[str],
                    data: DatasetFeatures, num_sample: int, num_resamples: int, rng,
                    device: Union[str, torch.device] = 'cpu',
                    chunk: int = 1024) -> Tuple[List[float], List[float]]:
    r"""The predictor's mean and standard deviation over ``num_resamples`` dataset draws
    for each architecture."""
    from d2a.graphs.dense import archs_to_dense, dense_to_batch
    node_type, adj = archs_to_dense(space, archs)
    # The graphs do not change between draws: encode them once, then only the dataset.
    h = torch.cat([predictor.graph_encoder(dense_to_batch(node_type[s:s + chunk].to(device),
                                                          adj[s:s + chunk].to(device)))
                   for s in range(0, len(archs), chunk)])
    draws = []
    for _ in range(num_resamples):
        x = data.draw(num_sample, rng).to(device)
        d = predictor.encode_dataset(x)
        draws.append(predictor.forward_head(h, d).float().cpu())
    stacked = torch.stack(draws)
    std = stacked.std(0, unbiased=False) if num_resamples > 1 else torch.zeros(len(archs))
    return stacked.mean(0).tolist(), std.tolist()
