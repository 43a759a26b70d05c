r"""Labelling architectures by really training them on the tasks of a meta-database.

For each task, architectures are drawn deterministically from (task, seed) -- uniformly, or
stratified by a cheap proxy (parameter count) -- and each is trained with a
:class:`~d2a.nets.Recipe` on the task's training images and tested on its held-out images.

**Images.** The database keeps features, not images: labelling re-derives a task's raw
images from its source's stored spec (:meth:`d2a.datasets.ImageSource.spec`: a folder, an
``.npz`` file, digits, rendered glyphs), at the database's image size, normalised with the
source's stored channel statistics. The held-out split of each class is a fixed seeded
permutation per (task, class), so every architecture of a task sees the same split.

**Shards and resumption.** The (task, architecture) work list is dealt round-robin to
``num_shards`` shards (``shard=(i, N)``, or ``RANK``/``WORLD_SIZE`` under ``torchrun``).
Each shard writes its own small database file (:func:`shard_path`), atomically rewritten
after every result, so a killed run loses at most the training in progress; the same call
skips what that file or the main database already holds. :func:`d2a.pipeline.merge.merge` combines the
shards into the main database without duplicates.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from d2a.datasets.source import ImageSet, source_from_spec
from d2a.datasets.tasks import Task
from d2a.db.database import MetaDatabase, ResultRow
from d2a.utils.atomic import PathLike
from d2a.utils.lock import file_lock
from d2a.utils.progress import ProgressLog
from d2a.features.extractor import images_to_tensor

SAMPLERS = ('uniform', 'stratified')
#: Spaces whose architectures :func:`label` can train (:func:`d2a.nets.build_network`).
TRAINABLE_SPACES = ('nb201', 'mbv3')


def _stable_seed(*parts: Any) -> int:
    digest = hashlib.sha256('\x1f'.join(map(str, parts)).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'little')


def label_recipe(recipe: Any, test_fraction: float = 0.25,
                 max_images_per_class: Optional[int] = None) -> Tuple[str, Dict[str, Any]]:
    r"""``(recipe_id, fields)`` under which labelled results are stored.

    The id hashes the recipe's fields except its seed (the seed is a result column) and the
    data protocol (held-out fraction, images per class). ``fields`` is
    ``{'recipe': Recipe fields without seed, 'data': {...}}``;
    ``Recipe.from_dict(fields['recipe'])`` rebuilds the recipe.
    """
    fields = {k: v for k, v in recipe.to_dict().items() if k != 'seed'}
    data = {'test_fraction': float(test_fraction), 'max_images_per_class': max_images_per_class}
    body = {'recipe': fields, 'data': data}
    key = json.dumps({k: v for k, v in fields.items() if k != 'name'} | {'data': data},
                     sort_keys=True)
    return f"{recipe.name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}", body


def sample_architectures(space: Any, task: str, num: int, seed: int = 0,
                         sampler: str = 'uniform', proxy_config: Optional[Dict[str, int]] = None
                         ) -> List[str]:
    r"""``num`` architectures for a task, the same for the same (task, seed).

    Architectures are distinct up to the space's canonical key (isomorphic cells are trained
    once). ``'stratified'`` draws a pool of ``8 * num`` candidates, sorts it by parameter
    count (a cheap proxy of capacity, computed with ``proxy_config`` = ``C``, ``N``,
    ``in_channels``, ``num_classes``) and takes one at random from each of ``num`` equal
    bins, so that small and large cells are all represented.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    rng = random.Random(_stable_seed('archs', task, seed, sampler))
    pool_size = num if sampler == 'uniform' else 8 * num
    chosen: Dict[str, str] = {}
    for _ in range(100 * max(pool_size, 1)):
        if len(chosen) >= pool_size:
            break
        arch = space.sample(1, rng)[0]
        chosen.setdefault(space.canonical_key(arch), arch)
    pool = list(chosen.values())
    if sampler == 'uniform' or len(pool) <= num:
        return pool[:num]
    from d2a.graphs.nb201 import NB201CostModel
    cost = NB201CostModel(**{'C': 8, 'N': 1, 'in_channels': 3, 'num_classes': 10,
                             **(proxy_config or {})})
    pool.sort(key=lambda a: (cost.params(a), a))
    bins = np.array_split(np.arange(len(pool)), num)
    return [pool[int(rng.choice(list(b)))] for b in bins]


def shard_from_env() -> Tuple[int, int]:
    r"""``(rank, world_size)`` from ``torchrun``'s ``RANK``/``WORLD_SIZE`` (``(0, 1)`` if unset)."""
    try:
        rank = int(os.environ.get('RANK', 0))
        world = int(os.environ.get('WORLD_SIZE', 1))
    except ValueError:
        raise ValueError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE="
                         f"{os.environ.get('WORLD_SIZE')!r} are not integers") from None
    return check_shard((rank, world))


def check_shard(shard: Tuple[int, int]) -> Tuple[int, int]:
    i, n = int(shard[0]), int(shard[1])
    if n < 1 or not 0 <= i < n:
        raise ValueError(f'shard must be i/N with 0 <= i < N, got {i}/{n}')
    return i, n


def shard_path(db_path: PathLike, shard: Tuple[int, int]) -> Path:
    r"""``<db>.label-<i>of<N>.h5`` next to the database."""
    p = Path(db_path)
    return p.with_name(f'{p.stem}.label-{shard[0]}of{shard[1]}.h5')


class TaskImages:
    r"""Re-derives and splits the raw images of tasks (sources read once, then cached)."""

    def __init__(self, db: MetaDatabase, test_fraction: float = 0.25,
                 max_images_per_class: Optional[int] = None) -> None:
        if not 0 < test_fraction < 1:
            raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
        self.db = db
        self.test_fraction = test_fraction
        self.max_images_per_class = max_images_per_class
        self._sets: Dict[str, ImageSet] = {}

    def images(self, source: str) -> ImageSet:
        if source not in self._sets:
            info = self.db.source_info(source)
            if info['spec'] is None:
                raise ValueError(f'{self.db.path}: source {source!r} has no raw-image spec '
                                 '(imported features cannot be labelled by training)')
            self._sets[source] = source_from_spec(info['spec']).load(self.db.image_size)
        return self._sets[source]

    def split(self, task: Task) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""``(train_x, train_y, test_x, test_y)``: normalised ``[n, C, H, W]`` images and
        labels ``0 .. num_classes - 1`` in the task's class order."""
        source, classes = self.db.task_classes(task)
        data = self.images(source)
        info = self.db.source_info(source)
        parts: Dict[str, List[np.ndarray]] = {'trx': [], 'try': [], 'tex': [], 'tey': []}
        for label, cls in enumerate(classes):
            imgs = data.class_images(cls)
            rng = np.random.default_rng(_stable_seed('split', task.name, cls))
            perm = rng.permutation(len(imgs))
            if self.max_images_per_class:
                perm = perm[:self.max_images_per_class]
            n_test = int(round(self.test_fraction * len(perm)))
            if n_test < 1 or n_test >= len(perm):
                raise ValueError(f'task {task.name!r}: class {cls!r} has {len(perm)} images, '
                                 'too few for a training and a held-out split')
            parts['tex'].append(imgs[perm[:n_test]])
            parts['tey'].append(np.full(n_test, label))
            parts['trx'].append(imgs[perm[n_test:]])
            parts['try'].append(np.full(len(perm) - n_test, label))

        def tensor(key: str) -> torch.Tensor:
            return images_to_tensor(np.concatenate(parts[key]), info['mean'], info['std'])

        return (tensor('trx'), torch.from_numpy(np.concatenate(parts['try'])).long(),
                tensor('tex'), torch.from_numpy(np.concatenate(parts['tey'])).long())


def work_items(db: MetaDatabase, tasks: Sequence[str], space: Any, archs_per_task: int,
               seed: int, sampler: str, recipe: Any) -> List[Tuple[str, str]]:
    r"""The full, ordered (task, architecture) list of a labelling run (every shard computes
    the same list)."""
    items = []
    for name in tasks:
        t = db.task(name)
        proxy = {'C': recipe.C, 'N': recipe.N, 'num_classes': max(2, len(t.classes)),
                 'in_channels': max(1, db.source_info(t.source)['num_channels'] or 3)} \
            if sampler == 'stratified' and t.source in db.sources() else None
        for arch in sample_architectures(space, name, archs_per_task, seed, sampler, proxy):
            items.append((name, arch))
    return items


def _done_keys(path: Path, recipe_id: str, epochs: int) -> set:
    if not path.exists():
        return set()
    with MetaDatabase.open(path) as db:
        r = db.results(recipe=recipe_id)
        return {(str(t), str(a), int(s)) for t, a, s, e in zip(r.task, r.arch, r.seed, r.epochs)
                if int(e) == epochs}


def label(db: Union[PathLike, MetaDatabase], space: Union[str, Any], tasks: Optional[Sequence[str]],
          archs_per_task: int, recipe: Any, sampler: str = 'uniform', seed: int = 0,
          shard: Optional[Tuple[int, int]] = None,
          device: Optional[Union[str, torch.device]] = None, out: Optional[PathLike] = None,
          test_fraction: float = 0.25, max_images_per_class: Optional[int] = None,
          split: Optional[str] = 'meta-train', progress: bool = False,
          log_interval: Optional[float] = None,
          train_seeds: Optional[Sequence[int]] = None) -> Path:
    r"""Trains sampled architectures on tasks of a meta-database and records their accuracy.

    Args:
        db (str or MetaDatabase): the database holding the tasks (read only here).
        space (str or SearchSpace): search space of the architectures (``'nb201'`` or
            ``'mbv3'``; the recipe must train networks of that space).
        tasks (list of str, optional): task names (default: every task of ``split``).
        archs_per_task (int): architectures per task.
        recipe (Recipe): training recipe (its seed is replaced by ``seed``).
        sampler (str): ``'uniform'`` or ``'stratified'``.
        seed (int): seed of the architecture sample and (without ``train_seeds``) of
            training.
        shard (tuple, optional): ``(i, N)``: do every N-th work item starting at i
            (default: from ``RANK``/``WORLD_SIZE``, else ``(0, 1)``).
        device (str or torch.device, optional): default CUDA when available (under
            ``torchrun``, ``cuda:LOCAL_RANK``).
        out (str, optional): the shard's results file (default :func:`shard_path`).
        test_fraction (float): held-out fraction of each class's images.
        max_images_per_class (int, optional): use at most this many images per class.
        split (str, optional): split whose tasks are labelled when ``tasks`` is ``None``.
        progress (bool): show a progress bar.
        log_interval (float, optional): without a bar, print a plain progress line to
            stderr at most this often (seconds), for logs of long unattended runs.
        train_seeds (list of int, optional): train every sampled architecture once per
            seed (the sample itself stays the one of ``seed``); default ``[seed]``.

    Returns:
        The path of the shard's results file (a meta-database without features).
    """
    from d2a.graphs import get_space

    db_path = Path(db.path if isinstance(db, MetaDatabase) else db)
    sp = get_space(space) if isinstance(space, str) else space
    if sp.name not in TRAINABLE_SPACES:
        raise ValueError(f"labelling by training needs a trainable network; space {sp.name!r} "
                         f"has none (supported: {', '.join(map(repr, TRAINABLE_SPACES))})")
    recipe_space = getattr(recipe, 'space', 'nb201')
    if recipe_space != sp.name:
        raise ValueError(f'recipe {recipe.name!r} trains {recipe_space} networks but the '
                         f'architectures are of space {sp.name!r} (for mbv3: '
                         '--recipe mbv3-mini, Recipe.mbv3_mini())')
    if sampler == 'stratified' and sp.name != 'nb201':
        raise ValueError(f"sampler 'stratified' sorts by NB201 parameter counts; use "
                         f"'uniform' for space {sp.name!r}")
    shard = check_shard(shard) if shard is not None else shard_from_env()
    if device is None and torch.cuda.is_available() and 'LOCAL_RANK' in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if archs_per_task < 1:
        raise ValueError(f'archs_per_task must be >= 1, got {archs_per_task}')
    recipe_id, recipe_fields = label_recipe(recipe, test_fraction, max_images_per_class)
    seeds = [int(seed)] if train_seeds is None else [int(v) for v in train_seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'train_seeds must be distinct and non-empty, got {train_seeds}')
    out = Path(out) if out is not None else shard_path(db_path, shard)
    # Two runs of one shard would each train every cell; the second is refused at once.
    with file_lock(out, f'd2a db label (shard {shard[0]}/{shard[1]})'):
        return _label_shard(db_path, out, sp, tasks, split, seeds, archs_per_task, seed,
                            sampler, recipe, recipe_id, recipe_fields, shard, test_fraction,
                            max_images_per_class, device, progress, log_interval)


def _label_shard(db_path: Path, out: Path, sp: Any, tasks: Optional[Sequence[str]],
                 split: Optional[str], seeds: List[int], archs_per_task: int, seed: int,
                 sampler: str, recipe: Any, recipe_id: str, recipe_fields: Dict[str, Any],
                 shard: Tuple[int, int], test_fraction: float,
                 max_images_per_class: Optional[int],
                 device: Optional[Union[str, torch.device]], progress: bool,
                 log_interval: Optional[float]) -> Path:
    from tqdm.auto import tqdm

    from d2a.nets.fit import train_and_evaluate
    with MetaDatabase.open(db_path) as main:
        names = list(tasks) if tasks is not None else [t.name for t in main.tasks(split)]
        if not names:
            raise ValueError(f'{db_path}: no tasks to label (split {split!r})')
        # Seeds outermost: a partial run has whole seeds of every cell, not all seeds of a few.
        items = [(t, a, s) for s in seeds
                 for t, a in work_items(main, names, sp, archs_per_task, seed, sampler, recipe)]
        mine = items[shard[0]::shard[1]]
        done = _done_keys(db_path, recipe_id, recipe.epochs) | \
            _done_keys(out, recipe_id, recipe.epochs)
        attrs = main.attrs
        with (MetaDatabase.open(out, 'a') if out.exists() else
              MetaDatabase.create(out, attrs['feature_extractor'] or None,
                                  attrs['feature_dim'] or None, attrs['feature_config'],
                                  attrs['image_size'])) as s:
            s.add_tasks([main.task(n) for n in dict.fromkeys(t for t, _, _ in mine)])
            s.add_recipe(recipe_id, recipe_fields)
        loader = TaskImages(main, test_fraction, max_images_per_class)
        todo = [item for item in mine if item not in done]
        desc = f'label {shard[0]}/{shard[1]}'
        log = ProgressLog(desc, len(todo), 'cells', None if progress else log_interval)
        for i, (task_name, arch, train_seed) in enumerate(tqdm(todo, desc=desc,
                                                              disable=not progress)):
            log.update(i)
            task = main.task(task_name)
            train_x, train_y, test_x, test_y = loader.split(task)
            res = train_and_evaluate(arch, train_x, train_y, test_x, test_y,
                                     dataclasses.replace(recipe, seed=train_seed), device=device,
                                     num_classes=len(main.task_classes(task)[1]))
            row = ResultRow(task_name, arch, float(res.accuracy), recipe_id, train_seed,
                            int(res.epochs), float(res.wall_time), sp.name)
            with MetaDatabase.open(out, 'a') as s:
                s.add_results([row])
    return out
