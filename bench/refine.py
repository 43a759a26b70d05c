r"""Budgeted refinement on a labelled meta-database used as a lookup table: how good is the
best cell each method finds with K trainings on a held-out task?

For every meta-test task of ``--db``, the candidate pool is the cells labelled on that task,
and a "training" is a lookup of the cell's seed-averaged label (the mean over the seeds the
database stores for that task and cell). Methods, each given K trainings:

- ``d2a+refine``: the predictor ranks the pool zero-shot (:func:`d2a.search.rank_embeddings`
  on the task's features, one set of dataset draws per seed); :func:`d2a.search.refine`
  trains its top-1, then picks each next cell by ``--acquisition`` on a surrogate of the
  residuals;
- ``d2a-top-K``: the predictor's K best cells trained in order (no surrogate);
- ``random``: the best of K cells drawn at random;
- ``transfer+random``: the transfer cell -- of the pool's cells labelled on at least two
  meta-training tasks, the one with the best mean meta-training label -- plus K - 1 random
  cells;
- ``naswot``: the K cells with the best NASWOT score (:func:`d2a.zero_cost.naswot_network` on a
  minibatch of the task's training images, the recipe's untrained network), all trained.

A pick's *percentile* is the share of the pool's cells with a lower label (ties count
half), its *regret* the gap to the pool's best label (points). ``wins`` counts the tasks on
which a method's mean over seeds beats best-of-10 random. Randomised methods (and the
predictor's dataset draws) are repeated for every ``--seeds`` value; NASWOT for the first
``--naswot-seeds`` of them. Example (about a minute on 2 cores)::

    .venv/bin/python bench/refine.py --json bench/results/refine.json \
        --plot bench/results/refine.png
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402

from search_quality import percentile  # noqa: E402

METHODS = ('d2a+refine', 'd2a-top-K', 'random', 'transfer+random', 'naswot')
#: The reference of the targets and of ``wins``: the best of this many random cells.
REFERENCE_K = 10


class Lookup:
    r"""A trainer for :func:`d2a.search.refine` that looks the seed-averaged label up."""

    def __init__(self, table: Dict[str, float], name: str) -> None:
        self.table = table
        self.cache_key = f'lookup|{name}'
        self.calls = 0

    def __call__(self, arch: str) -> float:
        self.calls += 1
        return self.table[arch]


def task_pool(db: Any, task: str, recipe_id: str, space: Any) -> Dict[str, float]:
    r"""Cell -> seed-averaged label of the cells labelled on ``task`` (one cell per
    isomorphism class: labels of isomorphic cells are averaged)."""
    archs, acc = db.task_results(task, recipe=recipe_id, average_seeds=False)
    by_key: Dict[str, List[float]] = {}
    first: Dict[str, str] = {}
    for a, v in zip(archs, acc):
        k = space.canonical_key(a)
        first.setdefault(k, a)
        by_key.setdefault(k, []).append(float(v))
    if not by_key:
        raise ValueError(f'{db.path}: task {task!r} has no labelled cell of recipe {recipe_id!r}')
    return {first[k]: float(np.mean(v)) for k, v in by_key.items()}


def meta_train_means(db: Any, recipe_id: str, space: Any) -> Dict[str, Tuple[float, int]]:
    r"""Canonical key -> (mean over meta-training tasks of the task's seed mean, tasks)."""
    names = {t.name for t in db.tasks('meta-train')}
    per: Dict[str, Dict[str, List[float]]] = {}
    r = db.results(recipe=recipe_id)
    for t, a, v in zip(r.task, r.arch, r.accuracy):
        if str(t) in names:
            per.setdefault(space.canonical_key(str(a)), {}).setdefault(str(t), []).append(float(v))
    return {k: (float(np.mean([np.mean(v) for v in d.values()])), len(d)) for k, d in per.items()}


def transfer_pick(pool: Sequence[str], means: Dict[str, Tuple[float, int]], space: Any,
                  min_tasks: int = 2) -> Optional[str]:
    r"""The pool's cell with the best mean meta-training label among those labelled on at
    least ``min_tasks`` meta-training tasks (``None`` when no cell is)."""
    scored = [(means[space.canonical_key(a)][0], a) for a in pool
              if means.get(space.canonical_key(a), (0.0, 0))[1] >= min_tasks]
    return max(scored)[1] if scored else None


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from d2a.db import MetaDatabase
    from d2a.graphs import get_space
    from d2a.nets.recipe import Recipe
    from d2a.pipeline.embedded import read_split
    from d2a.pipeline.label import TaskImages
    from d2a.search import dataset_features, load_models, refine
    from d2a.search.ranking import encode_graphs, rank_embeddings
    from d2a.zero_cost import naswot_network

    db_path = Path(args.db)
    if not db_path.is_file():
        raise FileNotFoundError(f'meta-database {db_path} does not exist')
    models = load_models(args.checkpoint, args.device)
    space = get_space(models.space)
    db = MetaDatabase.open(db_path)
    recipes = db.recipes()
    recipe_id = args.recipe or read_split(db).get('recipe') or (
        next(iter(recipes)) if len(recipes) == 1 else None)
    if recipe_id not in recipes:
        raise ValueError(f'{db_path}: pick a recipe with --recipe (recipes: '
                         f"{', '.join(recipes) or 'none'})")
    fields = recipes[recipe_id]
    recipe = Recipe.from_dict(fields.get('recipe', fields))
    data_protocol = fields.get('data', {})
    images = TaskImages(db, data_protocol.get('test_fraction', 0.25),
                        data_protocol.get('max_images_per_class'))
    tasks = [t.name for t in db.tasks(args.split)][:args.max_tasks]
    if not tasks:
        raise ValueError(f'{db_path}: no {args.split} task')
    means = meta_train_means(db, recipe_id, space)
    budgets = sorted(set(args.budgets) | {REFERENCE_K})  # best-of-10 random is the reference
    rows: List[Dict[str, Any]] = []
    timing = {'d2a': 0.0, 'naswot': 0.0}
    for name in tasks:
        table = task_pool(db, name, recipe_id, space)
        pool = list(table)
        labels = np.asarray([table[a] for a in pool])
        best_label = float(labels.max())
        t0 = time.perf_counter()
        data = dataset_features((str(db_path), name), models, args.device)
        h = encode_graphs(models.predictor, space, pool, args.device)
        timing['d2a'] += time.perf_counter() - t0
        transfer = transfer_pick(pool, means, space)
        naswot_scores: Dict[int, np.ndarray] = {}
        t0 = time.perf_counter()
        task = db.task(name)
        train_x = images.split(task)[0] if args.naswot_seeds else None
        n_cls = len(db.task_classes(task)[1])
        for seed in args.seeds[:args.naswot_seeds]:
            gen = torch.Generator().manual_seed(seed)
            x = train_x[torch.randperm(train_x.size(0), generator=gen)[:args.naswot_batch]]
            naswot_scores[seed] = np.asarray([naswot_network(a, recipe, x, n_cls,
                                                           seed, args.device) for a in pool])
        timing['naswot'] += time.perf_counter() - t0

        def record(method: str, k: int, seed: int, picked: Sequence[str]) -> None:
            acc = max(table[a] for a in picked)
            rows.append({'task': name, 'seed': seed, 'method': method, 'K': k,
                         'accuracy': acc, 'percentile': percentile(acc, labels),
                         'regret': best_label - acc, 'trainings': len(set(picked)),
                         'pool': len(pool), 'task_best': best_label})

        for seed in args.seeds:
            t0 = time.perf_counter()
            pred, _ = rank_embeddings(models.predictor, h, data, models.num_sample,
                                      args.num_resamples, np.random.default_rng(seed),
                                      args.device)
            order = list(np.argsort(-np.asarray(pred), kind='stable'))
            for k in budgets:
                trainer = Lookup(table, name)
                res = refine(pool, pred, h, trainer, k, acquisition=args.acquisition,
                             beta=args.beta, noise=args.noise, space=space)
                assert trainer.calls == res.num_measured <= k
                record('d2a+refine', k, seed, [m.arch for m in res.measurements])
                record('d2a-top-K', k, seed, [pool[i] for i in order[:k]])
            timing['d2a'] += time.perf_counter() - t0
            for k in budgets:
                rng = random.Random(f'refine-bench|{name}|{seed}|{k}')
                record('random', k, seed, rng.sample(pool, min(k, len(pool))))
                if transfer is not None:
                    rest = [a for a in pool if a != transfer]
                    record('transfer+random', k, seed,
                           [transfer] + rng.sample(rest, min(k - 1, len(rest))))
                if seed in naswot_scores:
                    top = np.argsort(-naswot_scores[seed], kind='stable')[:k]
                    record('naswot', k, seed, [pool[i] for i in top])
    db.close()
    return {'db': str(db_path), 'checkpoint': str(models.directory), 'recipe': recipe_id,
            'split': args.split, 'tasks': tasks, 'seeds': list(args.seeds), 'budgets': list(args.budgets),
            'acquisition': args.acquisition, 'beta': args.beta, 'noise': args.noise,
            'naswot_seeds': list(args.seeds[:args.naswot_seeds]), 'timing': timing,
            'summary': summarize(rows, args.budgets), 'rows': rows}


def summarize(rows: Sequence[Dict[str, Any]], budgets: Sequence[int]) -> Dict[str, Any]:
    r"""Per ``method@K``: mean percentile, regret and trainings over (task, seed); per-task
    means; wins over best-of-10 random per task; the issue's targets."""
    out: Dict[str, Any] = {}
    tasks = list(dict.fromkeys(r['task'] for r in rows))

    def per_task(method: str, k: int) -> Dict[str, float]:
        return {t: float(np.mean([r['percentile'] for r in rows if r['task'] == t
                                  and r['method'] == method and r['K'] == k]))
                for t in tasks if any(r['task'] == t and r['method'] == method and r['K'] == k
                                      for r in rows)}

    reference = per_task('random', REFERENCE_K)
    for k in budgets:
        for method in METHODS:
            sel = [r for r in rows if r['method'] == method and r['K'] == k]
            if not sel:
                continue
            tmeans = per_task(method, k)
            stat = {key: float(np.mean([r[key] for r in sel]))
                    for key in ('percentile', 'regret', 'trainings', 'accuracy')}
            stat['percentile_std'] = float(np.std([r['percentile'] for r in sel], ddof=1)) \
                if len(sel) > 1 else 0.0
            stat['per_task_percentile'] = tmeans
            stat['wins_vs_random10'] = sum(tmeans[t] > reference[t] for t in tmeans
                                           if t in reference)
            stat['tasks'] = len(tmeans)
            stat['n'] = len(sel)
            out[f'{method}@{k}'] = stat
    targets = {}
    for k in budgets:
        s = out.get(f'd2a+refine@{k}')
        if s is None:
            continue
        ref = float(np.mean(list(reference.values()))) if reference else float('nan')
        targets[f'K={k}'] = {'mean_percentile': s['percentile'],
                             'random10_mean_percentile': ref,
                             'ahead_of_random10_on_average': s['percentile'] > ref,
                             'wins_vs_random10': s['wins_vs_random10'], 'tasks': s['tasks']}
    out['targets'] = targets
    return out


def format_summary(result: Dict[str, Any], markdown: bool = False) -> str:
    header = ['method', 'K', 'percentile', 'regret (pts)', 'trainings', 'wins vs random-10']
    rows = []
    for key, s in result['summary'].items():
        if key == 'targets':
            continue
        method, k = key.rsplit('@', 1)
        rows.append([method.replace('K', k), k, f"{s['percentile']:.1f} ± {s['percentile_std']:.1f}",
                     f"{s['regret']:.2f}", f"{s['trainings']:.1f}",
                     f"{s['wins_vs_random10']}/{s['tasks']}"])
    t = result['timing']
    return (f"{len(result['tasks'])} {result['split']} task(s) x {len(result['seeds'])} seed(s), "
            f"recipe {result['recipe']}, acquisition {result['acquisition']}; mean ± std over "
            '(task, seed)\n' + _common.format_table(header, rows, markdown)
            + f"\ntime: d2a {t['d2a']:.1f}s, NASWOT {t['naswot']:.1f}s")


def main(argv: Optional[List[str]] = None) -> int:
    p = _common.database_parser(__doc__, 'the labelled meta-database')
    p.add_argument('--split', default='meta-test', choices=('meta-test', 'meta-train'),
                   help='tasks to run on (meta-train: to choose settings without looking at '
                        'the held-out tasks; the predictor was trained on those)')
    p.add_argument('--max-tasks', type=int, default=None, help='only the first tasks')
    p.add_argument('--budgets', type=int, nargs='+', default=[3, 10], help='values of K')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4],
                   help='seeds of the randomised methods and of the dataset draws')
    p.add_argument('--naswot-seeds', type=int, default=1,
                   help='how many of --seeds NASWOT is repeated for (each scores the pool)')
    p.add_argument('--naswot-batch', type=int, default=64, help='images of the NASWOT minibatch')
    p.add_argument('--acquisition', default='ucb', choices=('ucb', 'ei', 'ranking'))
    p.add_argument('--beta', type=float, default=1.0, help='UCB weight of the uncertainty')
    p.add_argument('--noise', type=float, default=0.1,
                   help="surrogate's measurement noise, fraction of the predictions' spread")
    p.add_argument('--num-resamples', type=int, default=5, help='dataset draws per ranking')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--device', default='cpu', help='torch device')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    p.add_argument('--json', default=None, help='write the results to this JSON file')
    p.add_argument('--plot', default=None, help='per-task percentile plot (PNG)')
    args = p.parse_args(argv)
    for k in args.budgets:
        if k < 1:
            raise SystemExit(f'--budgets must be >= 1, got {k}')
    result = _common.run_and_report(args, evaluate, format_summary)
    if args.plot:
        from d2a.plot import plot_search_quality
        plotted = [dict(r, method=f"{r['method'].replace('K', str(r['K']))}@{r['K']}")
                   for r in result['rows'] if r['K'] in args.budgets]
        methods = [f"{m.replace('K', str(k))}@{k}" for k in args.budgets for m in METHODS]
        plot_search_quality(plotted, args.plot, [m for m in methods
                                                 if any(r['method'] == m for r in plotted)],
                            f"best of K trainings per held-out task, {len(result['seeds'])} "
                            'seed(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
