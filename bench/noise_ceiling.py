r"""The noise ceiling of a meta-database: do its datasets differ by more than seed noise?

For every task whose cells are labelled with two or more training seeds (the build's
held-out tasks: one common set of cells, three seeds each), the seeds are split in two
halves in every way and the half-means compared:

- ``within-task reliability``: Spearman correlation of the two halves' rankings of the
  task's cells (how far a ranking can be trusted), and its Spearman-Brown estimate for the
  mean over all seeds;
- ``seed std``: the median over cells of the standard deviation over seeds (points);
- ``cross-task``: for every pair of tasks, the Spearman correlation of their seed-averaged
  rankings of the common cells (1: the datasets agree on every cell), and the reliability of
  their *differences* -- the correlation, over cells, of ``z(task A) - z(task B)`` measured on
  one half of the seeds with the same difference measured on the other half. Differences
  between datasets are real when that reliability is clearly above zero.

The same cross-task Spearman is reported over the anchor cells of the meta-training tasks
(one seed each). Example::

    .venv/bin/python bench/noise_ceiling.py --db build/mini_nb201.h5 \
        --json bench/results/noise_ceiling.json
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import numpy as np  # noqa: E402

from d2a.metrics import spearman  # noqa: E402


def _z(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / (sd if sd > 0 else 1.0)


def seed_table(db: Any, task: str, recipe: Optional[str], space: Any
               ) -> Tuple[List[str], List[int], np.ndarray]:
    r"""``(cells, seeds, acc [cells, seeds])`` of the cells labelled with every seed of a task
    (cells up to isomorphism; other cells are left out)."""
    r = db.results(task=task, recipe=recipe)
    table: Dict[str, Dict[int, float]] = {}
    names: Dict[str, str] = {}
    for arch, seed, acc in zip(r.arch, r.seed, r.accuracy):
        key = space.canonical_key(str(arch))
        names.setdefault(key, str(arch))
        table.setdefault(key, {})[int(seed)] = float(acc)
    seeds = sorted({s for v in table.values() for s in v})
    keys = [k for k in table if all(s in table[k] for s in seeds)]
    acc = np.asarray([[table[k][s] for s in seeds] for k in keys], dtype=np.float64)
    return [names[k] for k in keys], seeds, acc.reshape(len(keys), len(seeds))


def halves(n: int) -> List[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    r"""Every split of ``n`` seeds into two non-empty halves (sizes as equal as possible),
    each split once."""
    out, seen = [], set()
    for size in range(1, n // 2 + 1):
        for first in itertools.combinations(range(n), size):
            second = tuple(i for i in range(n) if i not in first)
            key = frozenset([first, second])
            if key not in seen and abs(len(first) - len(second)) <= 1:
                seen.add(key)
                out.append((first, second))
    return out


def measure(db: Any, recipe: Optional[str]) -> Dict[str, Any]:
    from d2a.graphs import get_space
    spaces = sorted({str(v) for v in db.results(recipe=recipe).space})
    if len(spaces) > 1:
        raise ValueError(f'{db.path}: results of several spaces ({", ".join(spaces)}): '
                         'choose one recipe with --recipe')
    space = get_space(spaces[0] if spaces else 'nb201')
    per_task: Dict[str, Dict[str, Any]] = {}
    tables: Dict[str, Tuple[List[str], np.ndarray]] = {}
    for task in db.tasks():
        cells, seeds, acc = seed_table(db, task.name, recipe, space)
        if len(seeds) < 2 or len(cells) < 3:
            continue
        rel = [spearman(acc[:, list(a)].mean(1), acc[:, list(b)].mean(1))
               for a, b in halves(len(seeds))]
        r = float(np.nanmean(rel))
        full = acc.mean(1)
        top = np.sort(full)[::-1][:max(1, int(round(0.05 * len(full))))]
        per_task[task.name] = {
            'split': task.split, 'cells': len(cells), 'seeds': seeds,
            'within_task_reliability': r,
            'reliability_all_seeds': float(2 * r / (1 + r)) if r > -1 else float('nan'),
            'seed_std_median': float(np.median(acc.std(1, ddof=1))),
            'top5pct_width': float(top[0] - top[-1]), 'best': float(full.max()),
            'mean': float(full.mean())}
        tables[task.name] = (cells, acc)
    pairs = []
    names = sorted(tables)
    for a, b in itertools.combinations(names, 2):
        ka = {space.canonical_key(c): i for i, c in enumerate(tables[a][0])}
        kb = {space.canonical_key(c): i for i, c in enumerate(tables[b][0])}
        common = sorted(set(ka) & set(kb))
        na, nb = tables[a][1].shape[1], tables[b][1].shape[1]
        if len(common) < 3 or na != nb:
            continue
        xa = tables[a][1][[ka[k] for k in common]]
        xb = tables[b][1][[kb[k] for k in common]]
        diff_rel = [float(np.corrcoef(_z(xa[:, list(h1)].mean(1)) - _z(xb[:, list(h1)].mean(1)),
                                      _z(xa[:, list(h2)].mean(1)) - _z(xb[:, list(h2)].mean(1))
                                      )[0, 1]) for h1, h2 in halves(na)]
        pairs.append({'tasks': [a, b], 'cells': len(common),
                      'spearman': spearman(xa.mean(1), xb.mean(1)),
                      'difference_reliability': float(np.nanmean(diff_rel))})
    anchors = anchor_agreement(db, recipe, space)
    return {'tasks': per_task, 'pairs': pairs, 'anchors': anchors,
            'summary': {
                'within_task_reliability_median': _median(
                    [t['within_task_reliability'] for t in per_task.values()]),
                'seed_std_median': _median([t['seed_std_median'] for t in per_task.values()]),
                'cross_task_spearman_median': _median([p['spearman'] for p in pairs]),
                'difference_reliability_median': _median(
                    [p['difference_reliability'] for p in pairs]),
                'anchor_cross_task_spearman_median': anchors.get('spearman_median')}}


def anchor_agreement(db: Any, recipe: Optional[str], space: Any) -> Dict[str, Any]:
    r"""Cross-task Spearman of the meta-training tasks over the cells labelled on all of them
    (the anchors), and how many different cells are best on some task."""
    per_task: Dict[str, Dict[str, float]] = {}
    for task in db.tasks('meta-train'):
        archs, acc = db.task_results(task.name, recipe=recipe)
        per_task[task.name] = {space.canonical_key(a): float(v) for a, v in zip(archs, acc)}
    if len(per_task) < 2:
        return {}
    common = sorted(set.intersection(*(set(v) for v in per_task.values())))
    if len(common) < 3:
        return {'cells': len(common)}
    mat = np.asarray([[per_task[t][k] for k in common] for t in sorted(per_task)])
    rhos = [spearman(mat[i], mat[j]) for i, j in itertools.combinations(range(len(mat)), 2)]
    return {'cells': len(common), 'tasks': len(mat), 'spearman_median': _median(rhos),
            'spearman_min': float(np.nanmin(rhos)),
            'distinct_best': int(len(set(mat.argmax(1).tolist())))}


def _median(values: Sequence[float]) -> Optional[float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else None


def format_result(result: Dict[str, Any], markdown: bool = False) -> str:
    rows = [[name, t['split'], str(t['cells']), str(len(t['seeds'])),
             f"{t['within_task_reliability']:.2f}", f"{t['reliability_all_seeds']:.2f}",
             f"{t['seed_std_median']:.2f}", f"{t['top5pct_width']:.2f}"]
            for name, t in result['tasks'].items()]
    out = [_common.format_table(['task', 'split', 'cells', 'seeds', 'split-half rho',
                                 'all-seed rel.', 'seed std', 'top-5% width'], rows, markdown)]
    s = result['summary']

    def f(v: Optional[float]) -> str:
        return 'n/a' if v is None else f'{v:.2f}'
    out.append(f"cross-task Spearman (seed-averaged, {len(result['pairs'])} task pairs): median "
               f"{f(s['cross_task_spearman_median'])}; reliability of cross-task differences: "
               f"median {f(s['difference_reliability_median'])}")
    a = result['anchors']
    if a.get('tasks'):
        out.append(f"meta-training anchors ({a['cells']} cells x {a['tasks']} tasks): cross-task "
                   f"Spearman median {f(a['spearman_median'])}, min {f(a['spearman_min'])}; "
                   f"{a['distinct_best']} different cells best on some task")
    return '\n'.join(out)


def main(argv: Optional[List[str]] = None) -> int:
    from d2a.utils.paths import DEFAULT_DATABASE
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--db', default=str(DEFAULT_DATABASE), help='the meta-database')
    p.add_argument('--recipe', default=None, help='labelling recipe id (default: all rows)')
    p.add_argument('--markdown', action='store_true', help='print Markdown tables')
    p.add_argument('--json', default=None, help='write the results to this JSON file')
    args = p.parse_args(argv)
    from d2a.db import MetaDatabase
    if not Path(args.db).is_file():
        raise SystemExit(f'noise_ceiling: meta-database {args.db} does not exist')
    with MetaDatabase.open(args.db) as db:
        result = measure(db, args.recipe)
    result['db'] = args.db
    print(format_result(result, args.markdown))
    _common.write_json(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
