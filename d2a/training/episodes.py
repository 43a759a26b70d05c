r"""Episodes of meta-training, sampled from a meta-database as MetaD2A does.

An *item* is a (task, architecture, accuracy) triple. For every item of a batch the task's
dataset is re-drawn: ``num_sample`` feature vectors per class (fresh each epoch), so the
models see many views of each task. The generator learns from each task's best
architectures (the ``top_k`` by accuracy); the predictor from every labelled pair.
Training and validation tasks are disjoint (a seeded split of the meta-training tasks), or,
with a stored pair split, validation uses those (task, architecture) pairs and training the
others, as MetaD2A's predictor does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from torch import Tensor

from d2a.checkpoint import KINDS
from d2a.sets.encoders import pad_datasets


VAL_BY = ('task', 'source')


@dataclass
class TaskData:
    r"""One task's labelled architectures.

    Attributes:
        name (str): the task name; source (str): its source dataset; split (str): ``'train'``
        or ``'val'``.
        archs (list of str): architectures measured on it, best first.
        accs (list of float): their accuracies (mean over seeds).
    """
    name: str
    source: str
    split: str
    archs: List[str]
    accs: List[float]


@dataclass
class EpisodeBatch:
    r"""A batch of items with their freshly sampled datasets.

    Attributes:
        x (torch.Tensor): ``[G, C_max, num_sample, dim]`` features of the ``G`` dataset
            draws (one per item, or one per task when draws are shared).
        class_mask (torch.Tensor): ``[G, C_max]``.
        archs (list of str): ``B`` architectures.
        y (torch.Tensor): ``[B]`` accuracies.
        tasks (list of str): ``B`` task names.
        group (torch.Tensor): ``[B]`` long, the draw of ``x`` each item belongs to.
        stats (torch.Tensor): ``[B, 2]`` mean and standard deviation of the accuracies
            labelled on each item's task (to standardise within the task).
    """
    x: Tensor
    class_mask: Tensor
    archs: List[str]
    y: Tensor
    tasks: List[str]
    group: Tensor
    stats: Tensor


class MetaTrainData:
    r"""The meta-training view of a :class:`~d2a.db.MetaDatabase`.

    Args:
        db (MetaDatabase): an open database (kept open for feature reads).
        space (str): the search space whose architectures are used.
        num_sample (int): feature vectors per class in an episode (MetaD2A: 20).
        val_fraction (float): fraction of the meta-training tasks held out for validation
            (at least one when there are two or more tasks and the fraction is positive).
        val_by (str): ``'task'`` (a seeded share of the tasks) or ``'source'`` (a seeded
            share of the source datasets, all of whose tasks are held out: validation then
            measures generalisation to new sources, as the held-out tasks do).
        top_k (int): generator targets per task (its best architectures).
        recipe (str, optional): use only results of this training recipe; required when
            the database holds several.
        seed (int): seeds the split.
        val_pairs (set of tuple, optional): (task, architecture) pairs to validate on
            instead of held-out tasks (MetaD2A's pair-level split); a task then has a
            training part and a validation part, and ``val_fraction`` and ``val_by`` are
            not used.

    Raises :class:`ValueError` naming the database when it holds no usable task.
    """
    def __init__(self, db, space: str = 'nb201', num_sample: int = 20,
                 val_fraction: float = 0.1, top_k: int = 5, recipe: Optional[str] = None,
                 seed: int = 0, val_by: str = 'task',
                 val_pairs: Optional[Set[Tuple[str, str]]] = None) -> None:
        if num_sample < 1 or top_k < 1:
            raise ValueError(f'num_sample and top_k must be >= 1, got {num_sample} and {top_k}')
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction}')
        self.db = db
        self.space = space
        self.num_sample = num_sample
        self.top_k = top_k
        self.feature_dim = int(db.feature_dim)
        recipes = sorted(db.recipes())
        if recipe is None and len(recipes) > 1:
            raise ValueError(f"meta-database {db.path} holds results of several training recipes "
                             f"({', '.join(recipes)}): choose one with --recipe")
        if recipe is not None and recipe not in recipes:
            raise ValueError(f"meta-database {db.path} has no recipe {recipe!r} "
                             f"(recipes: {', '.join(recipes) or 'none'})")
        self.recipe = recipe
        tasks = []
        for task in db.tasks('meta-train'):
            archs, accs = self._task_results(task.name)
            if archs:
                tasks.append((task, archs, accs))
        if not tasks:
            raise ValueError(f"meta-database {db.path} has no meta-train task with results in the "
                             f"'{space}' space{f' for recipe {recipe!r}' if recipe else ''}")
        if val_by not in VAL_BY:
            raise ValueError(f"val_by must be one of {', '.join(VAL_BY)}, got {val_by!r}")
        if val_pairs is not None:
            parts = []
            for task, archs, accs in tasks:
                for split in ('train', 'val'):
                    keep = [i for i, a in enumerate(archs)
                            if ((task.name, a) in val_pairs) == (split == 'val')]
                    if keep:
                        parts.append((task, split, [archs[i] for i in keep],
                                      [accs[i] for i in keep]))
            if not any(split == 'val' for _, split, _, _ in parts):
                raise ValueError(f'meta-database {db.path}: none of the {len(val_pairs):,} '
                                 'validation pairs is a labelled meta-train pair'
                                 f"{f' of recipe {recipe!r}' if recipe else ''}")
        else:
            # The units split: tasks, or sources (each with all its tasks).
            units = ([[i] for i in range(len(tasks))] if val_by == 'task' else
                     [[i for i, (t, _, _) in enumerate(tasks) if t.source == s]
                      for s in dict.fromkeys(t.source for t, _, _ in tasks)])
            order = np.random.default_rng(seed).permutation(len(units))
            num_val = 0
            if val_fraction > 0 and len(units) >= 2:
                num_val = min(len(units) - 1, max(1, int(round(val_fraction * len(units)))))
            val_ids = {i for u in order[:num_val].tolist() for i in units[u]}
            parts = [(task, 'val' if i in val_ids else 'train', archs, accs)
                     for i, (task, archs, accs) in enumerate(tasks)]
        self.tasks: List[TaskData] = []
        for task, split, archs, accs in parts:
            best = np.argsort(-np.asarray(accs), kind='stable')
            self.tasks.append(TaskData(task.name, task.source, split,
                                       [archs[j] for j in best], [float(accs[j]) for j in best]))
        # A task's accuracy statistics (and its entry here) come from its training part
        # when it has one.
        self._by_name: Dict[str, TaskData] = {}
        for t in sorted(self.tasks, key=lambda t: t.split != 'train'):
            self._by_name.setdefault(t.name, t)
        self._stats = {n: (float(np.mean(t.accs)), float(np.std(t.accs)) or 1.0)
                       for n, t in self._by_name.items()}
        for t in self.tasks:  # fail now, not mid-epoch, when a class is too small
            _, classes = db.task_classes(t.name)
            source = t.source
            small = [c for c in classes if db.num_images(source, c) < num_sample]
            if small:
                raise ValueError(f'task {t.name!r}: class {small[0]!r} of source {source!r} has '
                                 f'{db.num_images(source, small[0])} images, fewer than '
                                 f'num_sample={num_sample} (lower --num-sample)')

    def _task_results(self, task: str) -> Tuple[List[str], List[float]]:
        r = self.db.results(task=task, recipe=self.recipe, space=self.space)
        sums: Dict[str, List[float]] = {}
        for a, acc in zip(r.arch, r.accuracy):
            sums.setdefault(str(a), []).append(float(acc))
        return list(sums), [float(np.mean(v)) for v in sums.values()]

    def split_tasks(self, split: str) -> List[TaskData]:
        return [t for t in self.tasks if t.split == split]

    def items(self, kind: str, split: str) -> List[Tuple[str, str, float]]:
        r"""``(task, arch, accuracy)`` items of a split: the ``top_k`` best per task for the
        generator, every pair for the predictor."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        out = []
        for t in self.split_tasks(split):
            n = min(self.top_k, len(t.archs)) if kind == 'generator' else len(t.archs)
            out.extend((t.name, a, acc) for a, acc in zip(t.archs[:n], t.accs[:n]))
        return out

    def sample_dataset(self, task: str, rng: np.random.Generator) -> Tensor:
        r"""``[num_classes, num_sample, dim]`` features of one fresh episode of ``task``."""
        return torch.from_numpy(self.db.task_features(task, self.num_sample, rng))

    def task_stats(self, task: str) -> Tuple[float, float]:
        r"""Mean and standard deviation (1 when zero) of a task's labelled accuracies."""
        return self._stats[task]

    def make_batch(self, items: Sequence[Tuple[str, str, float]], rng: np.random.Generator,
                   share: bool = False) -> EpisodeBatch:
        r"""Samples datasets for the items and stacks them (classes padded, see
        :func:`~d2a.sets.encoders.pad_datasets`): one draw per item, or with ``share`` one
        draw per task of the batch, shared by its items (so that a ranking loss compares
        architectures on one view of the dataset)."""
        tasks = [t for t, _, _ in items]
        keys = list(dict.fromkeys(tasks)) if share else list(range(len(items)))
        index = {k: i for i, k in enumerate(keys)}
        x, class_mask = pad_datasets([self.sample_dataset(k if share else tasks[k], rng)
                                      for k in keys])
        group = torch.tensor([index[t] if share else i for i, t in enumerate(tasks)],
                             dtype=torch.long)
        return EpisodeBatch(x=x, class_mask=class_mask, archs=[a for _, a, _ in items],
                            y=torch.tensor([acc for _, _, acc in items], dtype=torch.float),
                            tasks=tasks, group=group,
                            stats=torch.tensor([self._stats[t] for t in tasks],
                                               dtype=torch.float))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({str(self.db.path)!r}, space={self.space!r}, '
                f"train_tasks={len(self.split_tasks('train'))}, "
                f"val_tasks={len(self.split_tasks('val'))}, num_sample={self.num_sample})")


def grouped_batches(items: Sequence[Tuple[str, str, float]], batch_size: int,
                    group_size: int, epoch: int, seed: int, rank: int = 0,
                    world_size: int = 1) -> List[List]:
    r"""This rank's batches of one epoch, made of groups of ``group_size`` items of one task.

    Each task's items are shuffled and cut into groups (the last one may be smaller); the
    groups are shuffled and packed ``batch_size // group_size`` to a batch; batches are dealt
    round-robin to the ranks, padded by repetition so that every rank gets as many. Seeded
    by ``(seed, epoch)``, the same on every rank.
    """
    if group_size < 1:
        raise ValueError(f'group_size must be >= 1, got {group_size}')
    rng = np.random.default_rng([seed, epoch])
    by_task: Dict[str, List] = {}
    for item in items:
        by_task.setdefault(item[0], []).append(item)
    groups = []
    for task_items in by_task.values():
        order = rng.permutation(len(task_items))
        groups += [[task_items[i] for i in order[s:s + group_size]]
                   for s in range(0, len(order), group_size)]
    groups = [groups[i] for i in rng.permutation(len(groups))]
    per_batch = max(1, batch_size // group_size)
    batches = [sum(groups[s:s + per_batch], []) for s in range(0, len(groups), per_batch)]
    if not batches:
        return []
    total = math.ceil(len(batches) / world_size) * world_size
    batches += batches[:total - len(batches)]
    return batches[rank::world_size]


def epoch_batches(items: Sequence, batch_size: int, epoch: int, seed: int, rank: int = 0,
                  world_size: int = 1, shuffle: bool = True) -> List[List]:
    r"""This rank's batches of one epoch.

    Items are shuffled with a generator seeded by ``(seed, epoch)`` (the same order on every
    rank), padded by repeating the first items so that every rank gets the same number, and
    dealt round-robin as :class:`torch.utils.data.DistributedSampler` does.
    """
    n = len(items)
    if n == 0:
        return []
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    per_rank = math.ceil(n / world_size)
    total = per_rank * world_size
    order = np.concatenate([order, order[:total - n]]) if total > n else order
    mine = order[rank:total:world_size]
    return [[items[i] for i in mine[s:s + batch_size]] for s in range(0, len(mine), batch_size)]
