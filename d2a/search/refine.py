r"""Budgeted refinement: spend a stated number of real trainings on the dataset searched for
to turn the zero-shot ranking into a *measured* best (``d2a search --budget K``).

The pool is the ranked candidates of a search (generated, or every cell with ``--all``).
The first cell trained is the zero-shot top-1. Every next one is chosen from what has been
measured so far by a surrogate, :class:`ResidualGP`: a Gaussian process on the residuals
``measured - predicted`` over the predictor's graph vectors, so the meta-predictor is the
prior mean and the measurements correct it locally (similar cells get similar
corrections) and globally (an offset and a slope for a dataset on which the predictor is
off in level or in spread). An acquisition rule picks the unmeasured cell with the highest
upper confidence bound (``'ucb'``, mean + 1 standard deviation by default) or expected
improvement (``'ei'``); ``'ranking'`` trains the zero-shot ranking in order, without a
surrogate. The defaults (UCB, ``beta=1``, ``noise=0.1``) were chosen with
``bench/refine.py --split meta-train`` on the shipped database's meta-training tasks.

A *trainer* is any callable ``trainer(arch) -> accuracy`` (percent); :class:`RecipeTrainer`
trains the network of an architecture (NB201 or MobileNetV3, as the recipe says) with a
:class:`~d2a.nets.Recipe` on a held-out split of the dataset. :class:`MeasurementCache`
keeps every measurement in a JSON file (atomically rewritten after each one), keyed by what
the trainer measures on (its ``cache_key``), so a rerun trains nothing twice; the choice of
the next cell is deterministic, so a rerun after Ctrl-C follows the same path and reads the
first cells from the file.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from d2a.search.results import Measurement, Refinement
from d2a.utils.atomic import PathLike, atomic_write

ACQUISITIONS = ('ucb', 'ei', 'ranking')
#: Recipes known by name (``--recipe nb201``): classmethods of :class:`~d2a.nets.Recipe`
#: (``mbv3-mini``: :meth:`~d2a.nets.Recipe.mbv3_mini`).
NAMED_RECIPES = ('nb201', 'reduced', 'mini', 'mbv3-mini')
CACHE_FORMAT = 'd2a-measurements'


# ----------------------------------------------------------------------------- surrogate
class ResidualGP:
    r"""A Gaussian process on ``measured - predicted`` accuracy over a pool of candidates.

    The residual's prior covariance of candidates :math:`i, j` is

    .. math::
        k(i, j) = c^2 + \tau^2 (p_i - \bar p)(p_j - \bar p)
                  + s^2 \exp\left(-\lVert h_i - h_j \rVert^2 / 2\ell^2\right)
                  + \sigma_n^2 [i = j]

    with :math:`p` the predicted accuracies, :math:`h` the standardised graph vectors: an
    unknown offset (:math:`c = 10\sigma`), a slope correction (:math:`\tau`), a smooth
    correction over similar graphs, and measurement noise. :math:`\sigma` is the spread of
    the predictions over the pool (of the measurements, once two are larger); :math:`s`
    and :math:`\ell` are chosen by the marginal likelihood of the measurements on a small
    grid (:math:`\ell` relative to the median distance between graph vectors).

    Args:
        embeddings (array): graph vectors of the pool ``[P, F]``.
        predicted (array): predicted accuracies ``[P]``.
        noise (float): measurement noise :math:`\sigma_n` as a fraction of :math:`\sigma`.
            (default: :obj:`0.1`)
        slope_std (float): :math:`\tau`. (default: :obj:`0.5`)
        length_scales (sequence of float): grid of :math:`\ell` / median distance.
        signal_scales (sequence of float): grid of :math:`s / \sigma`.

    Shapes:
        - **fit:** indices ``[n]``, measured accuracies ``[n]``
        - **predict:** -> mean and standard deviation of the accuracy ``[P]`` each
    """
    def __init__(self, embeddings: Any, predicted: Any, noise: float = 0.1,
                 slope_std: float = 0.5, length_scales: Sequence[float] = (0.5, 1.0, 2.0),
                 signal_scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0)) -> None:
        x = np.asarray(embeddings.detach().cpu() if hasattr(embeddings, 'detach')
                       else embeddings, dtype=np.float64)
        p = np.asarray(predicted, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[0] != p.size or p.size == 0:
            raise ValueError(f'embeddings must be [P, F] with P = {p.size} predictions, '
                             f'got {list(x.shape)}')
        if not noise > 0 or slope_std < 0:
            raise ValueError(f'noise must be > 0 and slope_std >= 0, got {noise} and '
                             f'{slope_std}')
        self.x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
        self.p = p
        self.pc = p - p.mean()
        self.noise = float(noise)
        self.slope_std = float(slope_std)
        self.length_scales = tuple(float(v) for v in length_scales)
        self.signal_scales = tuple(float(v) for v in signal_scales)
        sub = self.x[np.random.default_rng(0).permutation(len(self.x))[:512]]
        d = np.sqrt(_sq_dist(sub, sub))
        positive = d[d > 0]
        self.median_distance = float(np.median(positive)) if positive.size else 1.0
        self.prediction_scale = max(float(p.std()), 1e-3)
        self.idx = np.zeros(0, dtype=np.int64)
        self.y = np.zeros(0)
        self.hyper: Dict[str, float] = {}

    def _cov(self, a: np.ndarray, b: np.ndarray, scale: float, s: float, ell: float) -> np.ndarray:
        rbf = np.exp(-_sq_dist(self.x[a], self.x[b]) / (2.0 * ell * ell))
        return ((10.0 * scale) ** 2 + self.slope_std ** 2 * np.outer(self.pc[a], self.pc[b])
                + s * s * rbf)

    def fit(self, idx: Sequence[int], y: Sequence[float]) -> 'ResidualGP':
        r"""Conditions on measured accuracies ``y`` of pool members ``idx``."""
        self.idx = np.asarray(idx, dtype=np.int64)
        self.y = np.asarray(y, dtype=np.float64)
        if self.idx.size != self.y.size or self.idx.size == 0:
            raise ValueError(f'fit needs as many indices as measurements (>= 1), got '
                             f'{self.idx.size} and {self.y.size}')
        scale = self.prediction_scale
        if self.y.size >= 2:
            scale = max(scale, float(self.y.std()))
        r = self.y - self.p[self.idx]
        best = None
        for ls in self.length_scales:
            for ss in self.signal_scales:
                ell, s = ls * self.median_distance, ss * scale
                k = self._cov(self.idx, self.idx, scale, s, ell)
                k[np.diag_indices_from(k)] += (self.noise * scale) ** 2
                chol = np.linalg.cholesky(k)
                alpha = _chol_solve(chol, r)
                # log marginal likelihood up to a constant
                lml = -0.5 * float(r @ alpha) - float(np.log(np.diag(chol)).sum())
                if best is None or lml > best[0]:
                    best = (lml, ell, s, chol, alpha)
        _, ell, s, self._chol, self._alpha = best
        self.hyper = {'scale': scale, 'signal': s, 'length': ell,
                      'noise': self.noise * scale, 'log_marginal_likelihood': best[0]}
        return self

    def predict(self) -> Tuple[np.ndarray, np.ndarray]:
        r"""Posterior mean and standard deviation of every pool member's accuracy (the
        noise-free value)."""
        if not self.hyper:
            return self.p.copy(), np.full(self.p.size, np.inf)
        h = self.hyper
        everyone = np.arange(self.p.size)
        ks = self._cov(everyone, self.idx, h['scale'], h['signal'], h['length'])
        mean = self.p + ks @ self._alpha
        v = np.linalg.solve(self._chol, ks.T)
        prior = (10.0 * h['scale']) ** 2 + self.slope_std ** 2 * self.pc ** 2 + h['signal'] ** 2
        var = np.maximum(prior - (v * v).sum(0), 1e-12)
        return mean, np.sqrt(var)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.p.size}, noise={self.noise}, '
                f'slope_std={self.slope_std}, measured={self.idx.size})')


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _chol_solve(chol: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.linalg.solve(chol.T, np.linalg.solve(chol, r))


def acquisition_scores(rule: str, mean: np.ndarray, std: np.ndarray, best: float,
                       beta: float = 1.0) -> np.ndarray:
    r"""Scores of an acquisition rule (higher is picked first): ``'ei'`` the expected
    improvement over ``best``, ``'ucb'`` ``mean + beta * std``."""
    if rule == 'ucb':
        return mean + beta * std
    if rule == 'ei':
        from math import erf, sqrt
        z = (mean - best) / np.maximum(std, 1e-12)
        cdf = 0.5 * (1.0 + np.vectorize(erf)(z / sqrt(2.0)))
        pdf = np.exp(-0.5 * z * z) / sqrt(2.0 * np.pi)
        return (mean - best) * cdf + std * pdf
    raise ValueError(f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {rule!r}")


# ----------------------------------------------------------------------------- cache
class MeasurementCache:
    r"""Measured accuracies in a JSON file, keyed by ``(trainer key, cell key)``.

    The file holds ``{"format": "d2a-measurements", "version": 1, "entries": {key:
    {"arch", "accuracy", "wall_time", "trainer"}}}``; it is rewritten atomically after
    every :meth:`put`, so an interrupted run keeps all finished measurements.

    Args:
        path (str or Path, optional): the file (``None``: kept in memory only).
    """
    def __init__(self, path: Optional[PathLike] = None) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: Dict[str, Dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            try:
                payload = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                raise ValueError(f'measurement cache {self.path} is not readable JSON ({e}): '
                                 'move it away or pass another cache file') from None
            if not isinstance(payload, dict) or payload.get('format') != CACHE_FORMAT \
                    or not isinstance(payload.get('entries'), dict):
                raise ValueError(f"measurement cache {self.path} is not a d2a measurement "
                                 f"file (field 'format' must be {CACHE_FORMAT!r} with an "
                                 "'entries' object)")
            self.entries = payload['entries']

    @staticmethod
    def key(trainer_key: str, cell_key: str) -> str:
        return f'{trainer_key}|{cell_key}'

    def get(self, trainer_key: str, cell_key: str) -> Optional[Dict[str, Any]]:
        return self.entries.get(self.key(trainer_key, cell_key))

    def put(self, trainer_key: str, cell_key: str, record: Dict[str, Any]) -> None:
        self.entries[self.key(trainer_key, cell_key)] = dict(record, trainer=trainer_key)
        if self.path is not None:
            with atomic_write(self.path) as f:
                f.write(json.dumps({'format': CACHE_FORMAT, 'version': 1,
                                    'entries': self.entries}, indent=1) + '\n')

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({str(self.path) if self.path else None!r}, ' \
               f'{len(self)} measurements)'


def cache_path_for(output: PathLike) -> Path:
    r"""The measurement cache next to an output file: ``<output stem>.measurements.json``."""
    out = Path(output)
    return out.with_name(f'{out.stem}.measurements.json')


# ----------------------------------------------------------------------------- trainers
def resolve_recipe(recipe: Any = None, train_config: Optional[Dict[str, Any]] = None,
                   databases: Sequence[PathLike] = ()) -> Tuple[Any, Dict[str, Any]]:
    r"""``(Recipe, data protocol)`` to train candidates with.

    Args:
        recipe: a :class:`~d2a.nets.Recipe`; a name in :data:`NAMED_RECIPES`; a JSON file of
            Recipe fields (or ``{"recipe": {...}, "data": {...}}`` as a meta-database
            stores them); a recipe id of one of ``databases``; or ``None``: the recipe the
            checkpoints were meta-trained on (``train_config['recipe']`` of the
            predictor's checkpoint, looked up in its database).
        train_config (dict, optional): the predictor checkpoint's training configuration.
        databases (sequence of paths): meta-databases to look a recipe id up in, after
            ``train_config['db']``.

    The data protocol is ``{'test_fraction', 'max_images_per_class'}`` (defaults 0.25 and
    ``None``); a database recipe brings its own.
    """
    from d2a.nets.recipe import Recipe
    protocol = {'test_fraction': 0.25, 'max_images_per_class': None}
    if isinstance(recipe, Recipe):
        return recipe, protocol
    if recipe is not None and not isinstance(recipe, (str, Path)):
        raise ValueError(f'recipe must be a Recipe, a name, a JSON file or a recipe id, got '
                         f'{type(recipe).__name__}')
    if recipe in NAMED_RECIPES:
        return getattr(Recipe, str(recipe).replace('-', '_'))(), protocol
    if recipe is not None and Path(recipe).suffix == '.json':
        path = Path(recipe)
        if not path.is_file():
            raise FileNotFoundError(f'recipe file {path} does not exist')
        try:
            fields = json.loads(path.read_text())
        except ValueError as e:
            raise ValueError(f'recipe file {path} is not valid JSON: {e}') from None
        return _recipe_from_fields(fields, protocol, str(path))
    config = train_config or {}
    wanted = str(recipe) if recipe is not None else config.get('recipe')
    candidates = [Path(config['db'])] if config.get('db') else []
    candidates += [Path(d) for d in databases]
    from d2a.db import MetaDatabase
    for db_path in candidates:
        if not db_path.is_file():
            continue
        with MetaDatabase.open(db_path) as db:
            recipes = db.recipes()
        if wanted is None and len(recipes) == 1:
            wanted = next(iter(recipes))
        if wanted in recipes:
            return _recipe_from_fields(recipes[wanted], protocol, f'{db_path}:{wanted}')
    if recipe is not None:
        raise ValueError(f'unknown recipe {recipe!r}: give one of {", ".join(NAMED_RECIPES)}, '
                         'a JSON file of Recipe fields, or a recipe id of the checkpoints\' '
                         'meta-database')
    where = config.get('db') or 'an unknown meta-database'
    raise ValueError(f"the checkpoints were meta-trained on recipe {wanted!r} of {where}, "
                     f"which is not found here: choose one with --recipe "
                     f"({', '.join(NAMED_RECIPES)} or a JSON file of Recipe fields)")


def _recipe_from_fields(fields: Any, protocol: Dict[str, Any], where: str):
    from d2a.nets.recipe import Recipe
    if not isinstance(fields, dict):
        raise ValueError(f'recipe {where}: expected an object of Recipe fields, got '
                         f'{type(fields).__name__}')
    data = dict(protocol)
    if 'recipe' in fields:
        data.update({k: v for k, v in (fields.get('data') or {}).items() if k in data})
        fields = fields['recipe']
    try:
        return Recipe.from_dict(dict(fields)), data
    except (TypeError, ValueError) as e:
        raise ValueError(f'recipe {where}: {e}') from None


class RecipeTrainer:
    r"""Trains candidates with a recipe on a held-out split of a dataset: a trainer for
    :func:`refine`.

    The images are split per class (``test_fraction``, at most ``max_images_per_class``,
    seeded by ``split_seed``), normalised with the training part's channel statistics,
    and each call trains the network of an architecture (of the recipe's space) on the
    training part
    (:func:`~d2a.nets.fit.train_and_evaluate`) and returns its accuracy on the held-out
    part. A meta-database task ``(db path, task)`` is split exactly as ``d2a db label``
    splits it. :attr:`cache_key` names the dataset (a hash of the split images), the recipe
    and its seed.

    Args:
        dataset: an image folder, an ``.npz`` file, a source spec, an
            :class:`~d2a.datasets.ImageSource` or ``(meta-database path, task name)``.
        recipe (Recipe): the training recipe.
        test_fraction (float): held-out fraction of each class. (default: :obj:`0.25`)
        max_images_per_class (int, optional): images per class used.
        device (str or torch.device, optional): where to train (default: CUDA when
            available).
        split_seed (int): seed of the split. (default: :obj:`0`)
    """
    def __init__(self, dataset: Any, recipe: Any, test_fraction: float = 0.25,
                 max_images_per_class: Optional[int] = None, device: Any = None,
                 split_seed: int = 0) -> None:
        import torch

        self.recipe = recipe
        self.device = device
        if isinstance(dataset, tuple):
            from d2a.db import MetaDatabase
            from d2a.pipeline.label import TaskImages
            db_path, task = dataset
            with MetaDatabase.open(db_path) as db:
                t = db.task(task)
                self.num_classes = len(db.task_classes(t)[1])
                split = TaskImages(db, test_fraction, max_images_per_class).split(t)
            self.name = f'{Path(db_path).name}:{task}'
        else:
            from d2a.datasets import open_source
            from d2a.datasets.tasks import split_per_class
            from d2a.features import channel_stats, images_to_tensor
            source = open_source(dataset)
            images = source.load(image_size=recipe.image_size)
            train, test = split_per_class(images.labels, test_fraction, split_seed,
                                          max_images_per_class)
            mean, std = channel_stats(images.images[train])
            x = images_to_tensor(images.images, mean, std)
            y = torch.from_numpy(np.asarray(images.labels)).long()
            split = (x[train], y[train], x[test], y[test])
            self.num_classes = len(images.classes)
            self.name = source.name
        self.train_x, self.train_y, self.test_x, self.test_y = split
        digest = hashlib.sha1()
        for t in split:
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        self.cache_key = f'{self.name}|{digest.hexdigest()[:16]}|{recipe.recipe_id}|' \
                         f'seed{recipe.seed}'

    def __call__(self, arch: str) -> float:
        from d2a.nets.fit import train_and_evaluate
        res = train_and_evaluate(arch, self.train_x, self.train_y, self.test_x, self.test_y,
                                 self.recipe, device=self.device, num_classes=self.num_classes)
        return float(res.accuracy)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.name!r}, {self.recipe.recipe_id}, '
                f'{len(self.train_y)} training / {len(self.test_y)} held-out images)')


# ----------------------------------------------------------------------------- the loop
def refine(archs: Sequence[str], predicted: Sequence[float], embeddings: Any,
           trainer: Callable[[str], float], budget: int, acquisition: str = 'ucb',
           beta: float = 1.0, noise: float = 0.1, cache: Optional[MeasurementCache] = None,
           space: Any = None, progress: bool = False,
           recipe: Optional[Dict[str, Any]] = None) -> Refinement:
    r"""Measures up to ``budget`` candidates of a ranked pool, each chosen from the
    measurements so far (see the module docstring).

    Args:
        archs (sequence of str): the pool (distinct cells).
        predicted (sequence of float): their predicted accuracies ``[P]``.
        embeddings (array): their graph vectors ``[P, F]`` (the predictor's graph encoder).
        trainer (callable): ``trainer(arch) -> accuracy`` in percent; its ``cache_key``
            attribute (a string naming what it measures on) is needed with ``cache``.
        budget (int): most cells measured (cached ones count, training none).
        acquisition (str): ``'ucb'``, ``'ei'`` or ``'ranking'``.
        beta (float): the UCB weight of the uncertainty.
        noise (float): measurement noise of :class:`ResidualGP` (fraction of the spread).
        cache (MeasurementCache, optional): where measurements are read and kept.
        space (SearchSpace, optional): gives canonical keys for the cache (default: the
            architecture string).
        progress (bool): a progress bar with the best measured accuracy so far.
        recipe (dict, optional): the recipe's fields, recorded in the result.

    Ctrl-C stops the loop after the measurements finished so far; the result then has
    :attr:`~d2a.search.results.Refinement.interrupted` set.
    """
    from tqdm.auto import tqdm

    if budget < 1:
        raise ValueError(f'budget must be >= 1, got {budget}')
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {', '.join(ACQUISITIONS)}, "
                         f'got {acquisition!r}')
    pred = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if len(archs) != pred.size or pred.size == 0:
        raise ValueError(f'{len(archs)} candidates with {pred.size} predictions')
    trainer_key = getattr(trainer, 'cache_key', None)
    if cache is not None and cache.path is not None and not isinstance(trainer_key, str):
        raise ValueError('a measurement cache file needs the trainer to name what it '
                         "measures on: give it a 'cache_key' string attribute")
    gp = ResidualGP(embeddings, pred, noise=noise) if acquisition != 'ranking' else None
    order = np.argsort(-pred, kind='stable')
    budget = min(int(budget), pred.size)
    measured: List[int] = []
    values: List[float] = []
    out: List[Measurement] = []
    interrupted = False
    bar = tqdm(total=budget, desc='refine', unit='cell', disable=not progress, leave=False)
    try:
        while len(measured) < budget:
            step = len(measured)
            if gp is None or step == 0:
                i = int(next(j for j in order if j not in measured))
                mu, sd, score = float(pred[i]), float('nan'), float('nan')
            else:
                mean, std = gp.fit(measured, values).predict()
                scores = acquisition_scores(acquisition, mean, std, max(values), beta)
                scores[measured] = -np.inf
                i = int(np.argmax(scores))
                mu, sd, score = float(mean[i]), float(std[i]), float(scores[i])
            arch = archs[i]
            cell_key = space.canonical_key(arch) if space is not None else arch
            hit = cache.get(trainer_key, cell_key) if cache is not None and trainer_key \
                else None
            if hit is not None:
                acc, wall = float(hit['accuracy']), float(hit.get('wall_time', 0.0))
            else:
                t0 = time.perf_counter()
                acc = float(trainer(arch))
                wall = time.perf_counter() - t0
                if not np.isfinite(acc):
                    raise ValueError(f'the trainer returned accuracy {acc} for {arch}')
                if cache is not None and trainer_key:
                    cache.put(trainer_key, cell_key, {'arch': arch, 'accuracy': acc,
                                                      'wall_time': wall})
            measured.append(i)
            values.append(acc)
            out.append(Measurement(step=step + 1, arch=arch, predicted_accuracy=float(pred[i]),
                                   measured_accuracy=acc, expected_accuracy=mu,
                                   expected_std=sd, acquisition=score,
                                   cached=hit is not None, wall_time=wall))
            bar.update(1)
            bar.set_postfix(best=f'{max(values):.2f}', last=f'{acc:.2f}')
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return Refinement(budget=budget, acquisition=acquisition, measurements=out,
                      num_trained=sum(not m.cached for m in out),
                      num_cached=sum(m.cached for m in out), pool_size=int(pred.size),
                      interrupted=interrupted, recipe=dict(recipe or {}),
                      trainer=trainer_key or repr(trainer),
                      cache=str(cache.path) if cache is not None and cache.path else None)
