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

import math
from typing import Dict, List, Optional, Sequence, Tuple

from d2a.benchmark import read_table
from d2a.datasets.tasks import Task
from d2a.db.database import MetaDatabase, ResultRow
from d2a.nets.recipe import Recipe
from d2a.utils.atomic import PathLike

#: Recipe id of the NB201 benchmark's own training (200 epochs, seed-averaged).
NB201_RECIPE = 'nb201-benchmark'


def _nb201_recipe_fields() -> Dict[str, object]:
    # The benchmark's own protocol, seed-averaged (the seed is a result column: -1).
    recipe = {k: v for k, v in Recipe.nb201().to_dict().items() if k != 'seed'}
    return {'recipe': recipe, 'data': {'origin': 'NAS-Bench-201 / NATS-Bench',
                                       'seed_averaged': True}}


def _columns(path: PathLike, what: str, names: Optional[Sequence[str]]
             ) -> Tuple[List[str], Dict[str, List[float]]]:
    # The architectures and the chosen columns (all by default) of a benchmark table.
    archs, columns, table = read_table(path, what)
    names = list(names) if names is not None else columns
    for n in names:
        if n not in columns:
            raise ValueError(f"{path}: no column {n!r} (columns: {', '.join(columns)})")
    return archs, {n: table[:, columns.index(n)].tolist() for n in names}


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
    archs, values = _columns(path, 'NB201 accuracy table', datasets)
    _benchmark_tasks(db, list(values), split)
    db.add_recipe(NB201_RECIPE, _nb201_recipe_fields())
    rows = [ResultRow(d, arch, acc, NB201_RECIPE, -1, 200)
            for d, column in values.items() for arch, acc in zip(archs, column)
            if not math.isnan(acc)]
    return db.add_results(rows)


def import_help_latency(db: MetaDatabase, path: PathLike,
                        devices: Optional[Sequence[str]] = None) -> int:
    r"""Imports HELP's latency table (``index,arch,<device>...``, milliseconds).

    Returns the number of latency rows added.
    """
    archs, values = _columns(path, 'latency table', devices)
    added = 0
    for d, column in values.items():
        known = [(a, ms) for a, ms in zip(archs, column) if not math.isnan(ms)]
        added += db.add_latency(d, [a for a, _ in known], [ms for _, ms in known])
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
