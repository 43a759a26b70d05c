r"""Tasks of the meta-database: class subsets of one source.

A task never copies images or features; it names its source and its classes. Meta-training
tasks are seeded random class subsets (MetaD2A: 20 ImageNet-32 classes each); a meta-test
task is usually a whole source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

SPLITS = ('meta-train', 'meta-test')


@dataclass
class Task:
    r"""A classification task over classes of one source.

    Args:
        name (str): unique name in a database.
        source (str): source the classes belong to.
        classes (list of str): class names of the task, in label order.
        split (str): ``'meta-train'`` or ``'meta-test'``.
    """
    name: str
    source: str
    classes: List[str] = field(default_factory=list)
    split: str = 'meta-train'

    def __post_init__(self) -> None:
        check_split(self.split, f'task {self.name!r}')
        if not self.name or '/' in self.name:
            raise ValueError(f"task name {self.name!r} must be non-empty and without '/'")
        self.classes = [str(c) for c in self.classes]
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f'task {self.name!r} lists a class twice')

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def check_split(split: str, where: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}, got {split!r}")


def sample_tasks(source: str, classes: Sequence[str], num_tasks: int,
                 num_classes: Union[int, Tuple[int, int]], seed: int = 0,
                 split: str = 'meta-train', prefix: Optional[str] = None) -> List[Task]:
    r"""Draws ``num_tasks`` seeded class subsets of one source.

    Args:
        source (str): the source name.
        classes (list of str): the source's classes.
        num_tasks (int): number of tasks.
        num_classes (int or tuple): classes per task, or an inclusive ``(low, high)`` range
            drawn per task.
        seed (int): the same seed gives the same tasks.
        split (str): split of the tasks.
        prefix (str, optional): task names are ``<prefix><i>`` (default ``<source>-``).

    Raises :class:`ValueError` when a task would need more classes than the source has.
    """
    check_split(split, 'sample_tasks')
    low, high = (num_classes, num_classes) if isinstance(num_classes, int) else num_classes
    if not 2 <= low <= high:
        raise ValueError(f'classes per task must satisfy 2 <= low <= high, got {num_classes}')
    if high > len(classes):
        raise ValueError(f'source {source!r} has {len(classes)} classes, fewer than the '
                         f'{high} a task may need')
    if num_tasks < 0:
        raise ValueError(f'num_tasks must be >= 0, got {num_tasks}')
    rng = np.random.default_rng([seed, _stable_id(source)])
    prefix = f'{source}-' if prefix is None else prefix
    width = max(3, len(str(num_tasks - 1)))
    tasks = []
    for i in range(num_tasks):
        k = int(rng.integers(low, high + 1))
        chosen = sorted(rng.choice(len(classes), size=k, replace=False).tolist())
        tasks.append(Task(f'{prefix}{i:0{width}d}', source, [classes[j] for j in chosen], split))
    return tasks


def whole_source_task(source: str, classes: Sequence[str], split: str = 'meta-test',
                      name: Optional[str] = None) -> Task:
    r"""One task holding every class of a source (the usual meta-test task)."""
    return Task(name or source, source, list(classes), split)


def split_per_class(labels: np.ndarray, test_fraction: float, seed: int,
                    max_per_class: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    r"""Seeded ``(train, test)`` image indices with ``test_fraction`` of every class (at
    least one image on each side), each sorted; ``max_per_class`` keeps at most that many
    images of a class (a seeded choice) before splitting."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
    if max_per_class is not None and max_per_class < 2:
        raise ValueError(f'max_per_class must be >= 2, got {max_per_class}')
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))[:max_per_class]
        if len(idx) < 2:
            raise ValueError(f'class {c} has {len(idx)} image: a train/test split needs at '
                             'least 2 per class')
        k = min(len(idx) - 1, max(1, int(round(test_fraction * len(idx)))))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _stable_id(text: str) -> int:
    import zlib
    return zlib.crc32(text.encode('utf-8'))
