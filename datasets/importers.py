r"""Importers of published NAS-Bench-201 tables into a meta-database.

* the accuracy table ``index,arch,<dataset>,...`` (one row per cell, one column per dataset,
  e.g. NATS-Bench's 200-epoch seed-averaged test accuracies): :func:`import_nb201_accuracy`;
* HELP's latency table ``index,arch,<device>,...`` in milliseconds: :func:`import_help_latency`;
* the official ``nats_bench`` / ``nas_201_api`` benchmark files through their own APIs when
  installed: :func:`import_nb201_api`.

Each dataset column becomes a task named after the column, over the source of the same
name with an empty class list (meaning "every class of that source"), so that the task
gains features as soon as a source of that name is added.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from d2a.datasets.tasks import Task
from d2a.db.database import MetaDatabase, PathLike, ResultRow

#: Recipe id of the NB201 benchmark's own training (200 epochs, seed-averaged).
NB201_RECIPE = 'nb201-benchmark'


def _nb201_recipe_fields() -> Dict[str, object]:
    return {'recipe': {'name': 'nb201', 'C': 16, 'N': 5, 'epochs': 200, 'batch_size': 256,
                       'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 5e-4,
                       'schedule': 'cosine', 'image_size': 32, 'augment': True},
            'data': {'origin': 'NAS-Bench-201 / NATS-Bench', 'seed_averaged': True}}


def read_table(path: PathLike, what: str) -> Tuple[List[str], List[str], Dict[str, List[float]]]:
    r"""``(archs, columns, values)`` of a CSV with an ``arch`` column and numeric columns
    (an ``index`` column is ignored).

    Raises :class:`ValueError` naming the file, line and column of a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} file {path} does not exist')
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f'{path} is empty') from None
        if 'arch' not in header:
            raise ValueError(f"{path}: no 'arch' column (header: {', '.join(header)})")
        a = header.index('arch')
        columns = [(i, h) for i, h in enumerate(header) if i != a and h != 'index']
        archs: List[str] = []
        values: Dict[str, List[float]] = {h: [] for _, h in columns}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f'{path}, line {line}: {len(row)} fields, header has {len(header)}')
            archs.append(row[a])
            for i, h in columns:
                try:
                    values[h].append(float(row[i]))
                except ValueError:
                    raise ValueError(f'{path}, line {line}, column {h!r}: {row[i]!r} is not a '
                                     'number') from None
    return archs, [h for _, h in columns], values


def _benchmark_tasks(db: MetaDatabase, datasets: Sequence[str], split: str) -> None:
    have = set(t.name for t in db.tasks())
    db.add_tasks([Task(d, d, [], split) for d in datasets if d not in have])


def import_nb201_accuracy(db: MetaDatabase, path: PathLike,
                          datasets: Optional[Sequence[str]] = None,
                          split: str = 'meta-test') -> int:
    r"""Imports an NB201 accuracy table (``index,arch,<dataset>...``) as results of recipe
    :data:`NB201_RECIPE` (seed ``-1``: seed-averaged, 200 epochs).

    Args:
        datasets (list of str, optional): columns to import (default: all).
        split (str): split of the tasks created for the datasets.

    Returns the number of result rows added.
    """
    archs, columns, values = read_table(path, 'NB201 accuracy')
    datasets = list(datasets) if datasets is not None else columns
    for d in datasets:
        if d not in values:
            raise ValueError(f"{path}: no column {d!r} (columns: {', '.join(columns)})")
    _benchmark_tasks(db, datasets, split)
    db.add_recipe(NB201_RECIPE, _nb201_recipe_fields())
    rows = [ResultRow(d, arch, acc, NB201_RECIPE, -1, 200)
            for d in datasets for arch, acc in zip(archs, values[d])]
    return db.add_results(rows)


def import_help_latency(db: MetaDatabase, path: PathLike,
                        devices: Optional[Sequence[str]] = None) -> int:
    r"""Imports HELP's latency table (``index,arch,<device>...``, milliseconds).

    Returns the number of latency rows added.
    """
    archs, columns, values = read_table(path, 'latency')
    devices = list(devices) if devices is not None else columns
    added = 0
    for d in devices:
        if d not in values:
            raise ValueError(f"{path}: no device column {d!r} (columns: {', '.join(columns)})")
        added += db.add_latency(d, archs, values[d])
    return added


def import_nb201_api(db: MetaDatabase, path: PathLike, datasets: Sequence[str],
                     api: str = 'nats_bench', hp: str = '200', split: str = 'meta-test',
                     progress: bool = False) -> int:
    r"""Imports test accuracies of every cell from the official benchmark file through its
    API (``api='nats_bench'``, topology search space, or ``'nas_201_api'``); needs that
    package installed.

    Returns the number of result rows added.
    """
    from tqdm.auto import tqdm

    from d2a.graphs.nb201 import NUM_ARCHS
    if api == 'nats_bench':
        try:
            from nats_bench import create
        except ImportError:
            raise ValueError("importing with api='nats_bench' needs the nats_bench package") from None
        bench = create(str(path), 'tss', fast_mode=True, verbose=False)
    elif api == 'nas_201_api':
        try:
            from nas_201_api import NASBench201API
        except ImportError:
            raise ValueError("importing with api='nas_201_api' needs the nas_201_api package") \
                from None
        bench = NASBench201API(str(path), verbose=False)
    else:
        raise ValueError(f"api must be 'nats_bench' or 'nas_201_api', got {api!r}")
    _benchmark_tasks(db, datasets, split)
    db.add_recipe(NB201_RECIPE, _nb201_recipe_fields())
    rows = []
    for i in tqdm(range(NUM_ARCHS), desc=f'import {api}', disable=not progress):
        arch = bench.arch(i)
        for d in datasets:
            info = bench.get_more_info(i, d, hp=hp, is_random=False)
            rows.append(ResultRow(d, arch, float(info['test-accuracy']), NB201_RECIPE, -1, int(hp)))
    return db.add_results(rows)
