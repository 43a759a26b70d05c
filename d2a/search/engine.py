r"""Search: generate architectures for a new dataset and rank them (MetaD2A's meta-test).

For a dataset (an image folder, an ``.npz`` file or a task of a meta-database):

1. **features** -- extract one feature vector per image with the feature extractor the
   checkpoints were trained with (:mod:`d2a.search.features`);
2. **encoding** -- draw ``num_sample`` vectors per class and encode the dataset;
3. **generation** -- sample graphs from the generator in batches until ``num_candidates``
   unique (by canonical key) valid architectures that satisfy the constraints exist
   (:mod:`d2a.search.candidates`, :mod:`d2a.search.constraints`);
4. **ranking** -- score each with the predictor, averaged over several re-samplings of the
   dataset, and return the ``top_k`` (:mod:`d2a.search.ranking`);
5. **refinement** (with ``budget=K``) -- really train up to ``K`` of the ranked candidates
   on the dataset, each chosen from the measurements so far (:mod:`d2a.search.refine`).

With ``guidance=S`` the generation is steered by the predictor
(:mod:`d2a.search.guidance`). With ``exhaustive=True`` step 3 is skipped: every unique
architecture of a finite space is ranked.

:func:`search` is the Python API; ``d2a search`` prints the same
:class:`~d2a.search.results.SearchResult`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from d2a.search.candidates import collect_candidates
from d2a.search.constraints import Constraints, LatencyTable
from d2a.search.features import DatasetInput, dataset_features
from d2a.search.ranking import encode_graphs, rank_embeddings, space_embeddings
from d2a.search.results import Candidate, SearchResult
from d2a.utils.paths import DEFAULT_CHECKPOINT_DIR, default_checkpoint_dir, default_database


#: The most architectures :func:`search` ranks with ``exhaustive=True`` (NB201 has 15,625).
MAX_EXHAUSTIVE = 10 ** 6


@dataclass
class LoadedModels:
    r"""The generator and predictor of a checkpoint folder, ready for search."""
    generator: torch.nn.Module
    predictor: torch.nn.Module
    space: str
    feature_extractor: Dict[str, Any]
    num_sample: int
    directory: Path
    #: The predictor checkpoint's training configuration (its database and recipe).
    train_config: Dict[str, Any] = field(default_factory=dict)


def resolve_checkpoint_dir(checkpoint_dir: Optional[Union[str, Path]] = None,
                           space: Optional[str] = None) -> Path:
    r"""The checkpoint folder to use (by default the shipped one of ``space``, NB201's
    when ``space`` is ``None``); raises :class:`FileNotFoundError` telling how to get one
    when it lacks a model."""
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else \
        default_checkpoint_dir(space or 'nb201')
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
                device: Union[str, torch.device] = 'cpu',
                space: Optional[str] = None) -> LoadedModels:
    r"""Loads ``generator.pt`` and ``predictor.pt`` of a checkpoint folder (default: the
    shipped one of ``space``) and checks that they belong together (same search space and
    feature extractor) and, when ``space`` is given, that they are of that space."""
    from d2a.registry import load_model
    directory = resolve_checkpoint_dir(checkpoint_dir, space)
    models, ckpts = {}, {}
    for kind in ('generator', 'predictor'):
        loaded = load_model(directory, kind, device=device)
        models[kind], ckpts[kind] = loaded.model, loaded.checkpoint
    gen, pred = ckpts['generator'], ckpts['predictor']
    if gen.space != pred.space:
        raise ValueError(f'checkpoints in {directory} disagree: the generator is for space '
                         f'{gen.space!r}, the predictor for {pred.space!r}')
    if space is not None and gen.space != space:
        raise ValueError(f'checkpoints in {directory} are for space {gen.space!r}, not '
                         f'{space!r}: drop --space or pass checkpoints of {space!r}')
    for key in ('name', 'dim', 'config', 'weights_sha256'):
        if key == 'weights_sha256' and None in (gen.feature_extractor.get(key),
                                                pred.feature_extractor.get(key)):
            continue  # checkpoints written before d2a recorded the weights' hash
        if gen.feature_extractor.get(key) != pred.feature_extractor.get(key):
            raise ValueError(f'checkpoints in {directory} were trained on different features: '
                             f'generator {key}={gen.feature_extractor.get(key)!r}, predictor '
                             f'{key}={pred.feature_extractor.get(key)!r}')
    return LoadedModels(generator=models['generator'], predictor=models['predictor'],
                        space=gen.space, feature_extractor=dict(gen.feature_extractor),
                        num_sample=int(pred.train_config.get('num_sample', 20)),
                        directory=directory, train_config=dict(pred.train_config))


def search(dataset: DatasetInput, checkpoint_dir: Optional[Union[str, Path]] = None,
           num_candidates: int = 500, top_k: int = 5, batch_size: Optional[int] = None,
           num_resamples: int = 5, max_params: Optional[float] = None,
           max_flops: Optional[float] = None, max_latency: Optional[float] = None,
           latency_table: Optional[Union[str, Path]] = None,
           latency_device: Optional[str] = None, patience: int = 20,
           device: Optional[str] = 'auto', seed: int = 0,
           progress: bool = False, exhaustive: bool = False, guidance: float = 0.0,
           budget: int = 0, recipe: Any = None,
           trainer: Optional[Callable[[str], float]] = None,
           cache: Optional[Union[str, Path]] = None, acquisition: str = 'ucb',
           train_device: Optional[str] = None, space: Optional[str] = None,
           image_size: Optional[int] = None,
           width_mult: Optional[float] = None) -> SearchResult:
    r"""Generates and ranks architectures for ``dataset`` (see the module docstring).

    Args:
        dataset: an image folder, an ``.npz`` file, a source spec (``'digits'``,
            ``'glyphs:greek_lower'``, see :func:`~d2a.datasets.parse_source`), or
            ``(meta-database path, task name)``.
        checkpoint_dir (str or Path, optional): folder with ``generator.pt`` and
            ``predictor.pt`` (default: the package's shipped checkpoints of ``space``).
        num_candidates (int): unique valid candidates to generate and score (MetaD2A: 500
            for CIFAR, 50 for others).
        top_k (int): candidates returned.
        batch_size (int, optional): graphs generated per batch (default:
            ``num_candidates`` clipped to 100..1000; larger batches amortise the dataset
            encoding and the decoder's per-step overhead).
        num_resamples (int): dataset draws the predictor's scores are averaged over.
        max_params (float, optional), max_flops (float, optional): limits of a candidate's
            network, as counts: for NB201 the network with C=16, N=5 (32x32 images); for
            MobileNetV3 the network of ``width_mult`` at ``image_size``.
        max_latency (float, optional): limit in ms, looked up in ``latency_table`` (CSV,
            ``arch`` column and one column per device) for ``latency_device``.
        patience (int): give up after this many batches that bring no new candidate.
        device (str, optional): ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``.
        seed (int): seeds the dataset draws and the sampling.
        progress (bool): progress bars.
        exhaustive (bool): score every unique architecture of a finite space (NB201's
            6,466) with the predictor instead of generating candidates; the graph vectors
            are computed once per predictor and cached in the checkpoint folder.
        guidance (float): strength :math:`S` of the predictor guidance of generation
            (:class:`~d2a.search.guidance.GuidedSampler`; 0: the generator's posterior
            alone).
        budget (int): really train up to this many candidates on ``dataset`` after the
            ranking (0: none); see :func:`~d2a.search.refine.refine`.
        recipe: how to train them (see :func:`~d2a.search.refine.resolve_recipe`; default:
            the recipe of the checkpoints' meta-database).
        trainer (callable, optional): ``trainer(arch) -> accuracy`` to use instead of
            training with ``recipe`` (e.g. a benchmark table's lookup).
        cache (str or Path, optional): JSON file of the measurements; a rerun reads the
            cells measured before from it and trains nothing twice.
        acquisition (str): how the next cell is chosen: ``'ucb'`` (default), ``'ei'``
            or ``'ranking'``.
        train_device (str, optional): where candidates are trained (default: ``device``).
        space (str, optional): the search space (``'nb201'`` or ``'mbv3'``): chooses the
            shipped checkpoints, and is checked against ``checkpoint_dir``'s (default: the
            checkpoints' space, NB201 for the shipped ones).
        image_size (int, optional), width_mult (float, optional): MobileNetV3 only: input
            side and width multiplier of the network that the parameter and FLOP counts
            (and limits) refer to (default: those of the recipe the checkpoints were
            meta-trained on, e.g. 12 and 0.25 for the shipped ones; OFA's ImageNet network
            is ``image_size=224, width_mult=1.0``).

    Raises :class:`FileNotFoundError` for a missing checkpoint or dataset and
    :class:`ValueError` for bad input or constraints no candidate satisfies.
    """
    import numpy as np

    from d2a.graphs import get_space
    from d2a.device import resolve_device
    from d2a.search.refine import ACQUISITIONS
    if top_k < 1 or num_resamples < 1:
        raise ValueError(f'top_k and num_resamples must be >= 1, got {top_k} and {num_resamples}')
    if budget < 0 or guidance < 0:
        raise ValueError(f'budget and guidance must be >= 0, got {budget} and {guidance}')
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {', '.join(ACQUISITIONS)}, "
                         f'got {acquisition!r}')
    if exhaustive and guidance:
        raise ValueError('guidance steers generation, and exhaustive ranking (--all) '
                         'generates nothing: use one or the other')
    if (latency_table is None) != (latency_device is None):
        raise ValueError('a latency table and a device name go together '
                         '(--latency-table CSV --device-latency NAME)')
    dev = resolve_device(device)
    t_start = time.perf_counter()
    models = load_models(checkpoint_dir, dev, space)
    space = get_space(models.space)
    sizes = _network_sizes(models, image_size, width_mult)
    table = LatencyTable(latency_table, latency_device, space=space.name) \
        if latency_table is not None else None

    t0 = time.perf_counter()
    data = dataset_features(dataset, models, dev)
    timing = {'features': time.perf_counter() - t0, 'encoding': 0.0, 'generation': 0.0,
              'ranking': 0.0}
    cost = space.cost_model(num_classes=len(data.classes), in_channels=data.num_channels,
                            **sizes)
    if cost is None and (max_params is not None or max_flops is not None):
        raise ValueError(f'max_params/max_flops are not available for the {space.name} space '
                         '(no cost model)')
    constraints = Constraints(max_params, max_flops, max_latency,
                              table if max_latency is not None else None, cost)
    constraints.check_feasible()

    refine_with = None
    if budget:
        refine_with = _refinement_setup(dataset, models, recipe, trainer, cache,
                                        train_device if train_device is not None else dev)
    rng = np.random.default_rng(seed)
    network = dict(sizes, in_channels=data.num_channels, num_classes=len(data.classes))
    if exhaustive:
        result, pool = _search_all(models, space, data, constraints, table, cost, top_k,
                                   num_resamples, rng, dev, timing, t_start)
        result.network = network
        return _refined(result, pool, refine_with, budget, acquisition, space, progress,
                        t_start)
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

    sampler = sample
    guided = None
    if guidance > 0:
        from d2a.search.guidance import GuidedSampler
        guided = GuidedSampler(generator, models.predictor, space,
                               lambda: data.draw(models.num_sample, rng).to(dev), guidance,
                               generator_rng=gen)

        def sampler(n: int) -> List[Optional[str]]:
            t = time.perf_counter()
            archs = guided(n)
            timing['generation'] += time.perf_counter() - t
            return archs

    if batch_size is None:
        batch_size = min(max(num_candidates, 100), 1000) if guided is None else 100
    archs, stats = collect_candidates(sampler, space, num_candidates, constraints, batch_size,
                                      patience, progress)
    if guided is not None:  # every graph decoded, also those the re-weighting dropped
        stats.num_generated, stats.num_valid = guided.num_generated, guided.num_valid
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
    h = encode_graphs(models.predictor, space, archs, dev)
    mean, std = rank_embeddings(models.predictor, h, data, models.num_sample, num_resamples,
                                rng, dev)
    timing['ranking'] = time.perf_counter() - t0
    candidates = _top(archs, mean, std, top_k, cost, table, space)
    timing['total'] = time.perf_counter() - t_start
    result = SearchResult(dataset=data.name, candidates=candidates,
                          num_generated=stats.num_generated, num_valid=stats.num_valid,
                          num_evaluated=len(archs), rejected=dict(stats.rejected),
                          timing=timing, space=space.name, checkpoint=str(models.directory),
                          constraints=constraints.active, message=message,
                          guidance=float(guidance), network=network)
    return _refined(result, (archs, mean, h), refine_with, budget, acquisition, space,
                    progress, t_start)


def _network_sizes(models: LoadedModels, image_size: Optional[int],
                   width_mult: Optional[float]) -> Dict[str, Any]:
    # Sizes of the network the cost model counts, beyond the dataset's channels and classes.
    if models.space != 'mbv3':
        if image_size is not None or width_mult is not None:
            raise ValueError(f'image_size and width_mult size MobileNetV3 networks; the '
                             f'checkpoints are for space {models.space!r}')
        return {}
    for name, value in (('image_size', image_size), ('width_mult', width_mult)):
        if value is not None and not value > 0:
            raise ValueError(f'{name} must be positive, got {value!r}')
    if image_size is None or width_mult is None:
        from d2a.search.refine import resolve_recipe
        try:
            r, _ = resolve_recipe(None, models.train_config, [default_database('mbv3')])
        except (ValueError, FileNotFoundError, OSError):
            raise ValueError(
                f"the recipe the checkpoints in {models.directory} were meta-trained on "
                f"({models.train_config.get('recipe')!r}) is in none of their databases: "
                'give the network size the counts refer to (--image-size, --width-mult)'
                ) from None
        image_size = r.image_size if image_size is None else image_size
        width_mult = r.width_mult if width_mult is None else width_mult
        if image_size is None:
            raise ValueError(f'recipe {r.name!r} keeps the images at their size: give '
                             '--image-size for the parameter and FLOP counts')
    return {'image_size': int(image_size), 'width_mult': float(width_mult)}


def _refinement_setup(dataset: DatasetInput, models: LoadedModels, recipe: Any,
                      trainer: Optional[Callable[[str], float]],
                      cache: Optional[Union[str, Path]], device: Any) -> Tuple[Any, Any, Dict]:
    # (trainer, cache, recipe fields), built before the search so bad input fails early.
    from d2a.pipeline.label import TRAINABLE_SPACES
    from d2a.search.refine import MeasurementCache, RecipeTrainer, resolve_recipe
    fields: Dict[str, Any] = {}
    if trainer is None:
        if models.space not in TRAINABLE_SPACES:
            raise ValueError(f'training candidates with a recipe needs a trainable network; '
                             f'space {models.space!r} has none (supported: '
                             f"{', '.join(map(repr, TRAINABLE_SPACES))}): pass a "
                             'trainer(arch) -> accuracy')
        r, protocol = resolve_recipe(recipe, models.train_config,
                                     [default_database(models.space)])
        if r.space != models.space:
            raise ValueError(f'recipe {r.name!r} trains {r.space} networks; the candidates '
                             f"are of space {models.space!r}"
                             f"{' (try --recipe mbv3-mini)' if models.space == 'mbv3' else ''}")
        trainer = RecipeTrainer(dataset, r, protocol['test_fraction'],
                                protocol['max_images_per_class'], device=device)
        fields = dict(r.to_dict(), recipe_id=r.recipe_id, **protocol)
    elif recipe is not None:
        raise ValueError('give a recipe or a trainer, not both')
    return trainer, MeasurementCache(cache), fields


def _refined(result: SearchResult, pool: Tuple[List[str], List[float], Any], refine_with,
             budget: int, acquisition: str, space, progress: bool,
             t_start: float) -> SearchResult:
    if refine_with is None:
        return result
    from d2a.search.refine import refine
    trainer, cache, fields = refine_with
    archs, mean, h = pool
    t0 = time.perf_counter()
    result.refinement = refine(archs, mean, h, trainer, budget, acquisition=acquisition,
                               cache=cache, space=space, progress=progress, recipe=fields)
    result.timing['refinement'] = time.perf_counter() - t0
    result.timing['total'] = time.perf_counter() - t_start
    return result


def _top(archs: List[str], mean: List[float], std: List[float], top_k: int, cost,
         table, space) -> List[Candidate]:
    order = sorted(range(len(archs)), key=lambda i: -mean[i])[:top_k]
    to_config = getattr(space, 'to_config', None)
    return [Candidate(rank=r + 1, arch=archs[i], predicted_accuracy=float(mean[i]),
                      predicted_std=float(std[i]),
                      params=cost.params(archs[i]) if cost is not None else None,
                      flops=cost.flops(archs[i]) if cost is not None else None,
                      latency_ms=table.latency(archs[i]) if table is not None else None,
                      config=to_config(archs[i]) if to_config is not None else None)
            for r, i in enumerate(order)]


def _search_all(models: LoadedModels, space, data, constraints: Constraints, table, cost,
                top_k: int, num_resamples: int, rng, dev: torch.device,
                timing: Dict[str, float], t_start: float) -> Tuple[SearchResult, Tuple]:
    # Every unique architecture of a finite space, scored from cached graph vectors.
    try:
        size = space.size
    except TypeError:
        size = None
    if size is None or size > MAX_EXHAUSTIVE:
        raise ValueError(f'the {space.name} space is too large to rank every architecture'
                         f"{f' ({size:.2g} strings)' if size else ''}: generate candidates "
                         'instead (without --all)')
    t0 = time.perf_counter()
    archs, h = space_embeddings(models.predictor, space, models.directory, dev)
    rejected = {'params': 0, 'flops': 0, 'latency': 0}
    keep = []
    for i, arch in enumerate(archs):
        why = constraints.violation(arch)
        if why is None:
            keep.append(i)
        else:
            rejected[why] += 1
    if not keep:
        raise ValueError(f'no architecture of the {space.name} space satisfies the constraints: '
                         'relax ' + ', '.join(f'{k}={v}' for k, v in constraints.active.items()))
    timing['encoding'] += time.perf_counter() - t0
    t0 = time.perf_counter()
    chosen = [archs[i] for i in keep]
    mean, std = rank_embeddings(models.predictor, h[keep], data, models.num_sample,
                                num_resamples, rng, dev)
    timing['ranking'] = time.perf_counter() - t0
    candidates = _top(chosen, mean, std, top_k, cost, table, space)
    timing['total'] = time.perf_counter() - t_start
    result = SearchResult(dataset=data.name, candidates=candidates, num_generated=0,
                          num_valid=0, num_evaluated=len(chosen), rejected=rejected,
                          timing=timing, space=space.name, checkpoint=str(models.directory),
                          constraints=constraints.active, exhaustive=True)
    return result, (chosen, mean, h[keep])
