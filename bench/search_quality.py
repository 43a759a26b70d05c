r"""Search quality on the held-out tasks of a meta-database: how good is the top-1 architecture
each method picks, and how many architectures did it have to train on the task to pick it?

Methods (``docs/embedded.md``):

- ``d2a``: generate ``--num-candidates`` cells and rank them with the predictor
  (:func:`d2a.search.search`, the default ``d2a search``; no training on the task);
- ``d2a-all``: the predictor ranking every unique NB201 cell (``d2a search --all``; NB201
  only: the MobileNetV3 space is too large);
- ``transfer``: the best-on-average cell of the meta-training tasks (the highest mean
  accuracy among the cells labelled on at least half of them -- the build's anchor cells);
- ``naswot``: the NASWOT zero-cost score (:func:`d2a.zero_cost.naswot_network`, on a
  minibatch of the task's training images and the recipe's untrained network), top-1 among
  ``--num-candidates`` uniformly drawn architectures;
- ``largest``: the architecture with the most parameters (NB201: every edge a 3x3
  convolution; MobileNetV3: every stage 4 layers of kernel 7, expand 6);
- ``random``: one labelled cell drawn at random (expected percentile 50);
- ``random-best-of-K``: the best of ``--random-k`` labelled cells drawn at random (``K``
  trainings on the task).

The *true* accuracy of a pick is the mean over seeds of its labels on the task (the build
labels every held-out cell with three seeds) or, when the cell is not labelled, the mean of
training it with the task's recipe once per ``--label-seeds`` seed through
:func:`d2a.nets.fit.train_and_evaluate`; trained results are cached in
``<json>.trained.json`` (or ``--cache``) so that a rerun trains nothing twice. The percentile
is the share of the task's labelled cells (seed-averaged) below the pick, ties counting half;
the regret is the best labelled cell's accuracy minus the pick's, in points. Mean ± std are
over (held-out task, seed) pairs.

The predictor is also scored on the labelled cells themselves: per task the Spearman
correlation of its predicted ranking with the seed-averaged truth (``within-task``), and the
*dataset sensitivity*: the median cross-task Spearman of its predicted rankings of the cells
common to the held-out tasks, next to the same figure of the true rankings (a predictor
that ignores the dataset scores 1.0). ``--space mbv3`` runs the same protocol on the shipped
MobileNetV3 database and checkpoints. Example::

    .venv/bin/python bench/search_quality.py --seeds 0 1 2 \
        --json bench/results/search_quality.json --plot bench/results/search_quality.png
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402
import torch  # noqa: E402

METHODS = ('d2a', 'd2a-all', 'transfer', 'naswot', 'largest', 'random', 'random-best-of-K')

#: The architecture with the most parameters and FLOPs of each space: the NB201 cell with
#: every edge a 3x3 convolution; the MobileNetV3 config with every stage 4 layers of kernel 7
#: and expand ratio 6.
LARGEST = {
    'nb201': '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|'
             'nor_conv_3x3~2|',
    'mbv3': '|'.join(['d4:' + ','.join(['k7e6'] * 4)] * 5),
}


def percentile(acc: float, labelled: np.ndarray) -> float:
    r"""Share (percent) of ``labelled`` accuracies below ``acc``, ties counting half."""
    labelled = np.asarray(labelled, dtype=np.float64)
    if labelled.size == 0:
        raise ValueError('percentile needs at least one labelled accuracy')
    # Means over seeds computed in another order differ in the last bits: equal within 1e-9.
    tie = np.isclose(labelled, acc, rtol=0.0, atol=1e-9)
    below = float(((labelled < acc) & ~tie).sum()) + 0.5 * float(tie.sum())
    return 100.0 * below / labelled.size


def transfer_cell(db: Any, recipe_id: str) -> Tuple[str, float, int]:
    r"""``(cell, mean accuracy, tasks)``: the best-on-average cell of the meta-training tasks
    among the cells labelled on at least half of them (or on the most tasks, if none is)."""
    names = {t.name for t in db.tasks('meta-train')}
    if not names:
        raise ValueError(f'{db.path}: no meta-training task')
    per_arch: Dict[str, Dict[str, List[float]]] = {}
    r = db.results(recipe=recipe_id)
    for task, arch, acc in zip(r.task, r.arch, r.accuracy):
        if str(task) in names:
            per_arch.setdefault(str(arch), {}).setdefault(str(task), []).append(float(acc))
    if not per_arch:
        raise ValueError(f'{db.path}: no meta-training result of recipe {recipe_id!r}')
    counts = {a: len(t) for a, t in per_arch.items()}
    need = min(max(1, (len(names) + 1) // 2), max(counts.values()))
    means = {a: float(np.mean([np.mean(v) for v in t.values()]))
             for a, t in per_arch.items() if counts[a] >= need}
    best = max(sorted(means), key=lambda a: means[a])
    return best, means[best], counts[best]


class TrueAccuracy:
    r"""The true accuracy of a cell on a held-out task: the mean of its labels over seeds,
    else the mean of training it once per seed of ``seeds`` (cached)."""

    def __init__(self, db: Any, recipe: Any, recipe_id: str, data: Dict[str, Any],
                 seeds: Sequence[int], cache_path: Optional[Path], device: str = 'cpu',
                 space: str = 'nb201') -> None:
        from d2a.graphs import get_space
        from d2a.pipeline.label import TaskImages
        self.db, self.recipe, self.recipe_id, self.seeds = db, recipe, recipe_id, list(seeds)
        self.space = get_space(space)
        self.images = TaskImages(db, data.get('test_fraction', 0.25),
                                 data.get('max_images_per_class'))
        self.cache_path = cache_path
        self.cache: Dict[str, float] = {}
        if cache_path is not None and cache_path.exists():
            self.cache = json.loads(cache_path.read_text())
        self.device = device
        self.labelled: Dict[str, Tuple[Dict[str, float], np.ndarray, List[str]]] = {}
        self.trained = 0

    def task(self, name: str) -> Tuple[Dict[str, float], np.ndarray, List[str]]:
        r"""``(canonical key -> accuracy, accuracies, cells)`` labelled on a task, each the
        mean over the seeds it was labelled with."""
        if name not in self.labelled:
            archs, acc = self.db.task_results(name, recipe=self.recipe_id)
            if not archs:
                raise ValueError(f'{self.db.path}: held-out task {name!r} has no labelled cell '
                                 f'of recipe {self.recipe_id!r}')
            keyed = {self.space.canonical_key(a): float(v) for a, v in zip(archs, acc)}
            self.labelled[name] = (keyed, np.asarray(acc, dtype=np.float64), list(archs))
        return self.labelled[name]

    def __call__(self, task_name: str, arch: str) -> Tuple[float, bool]:
        r"""``(accuracy, labelled)`` of ``arch`` on a task."""
        keyed, _, _ = self.task(task_name)
        key = self.space.canonical_key(arch)
        if key in keyed:
            return keyed[key], True
        return float(np.mean([self._trained(task_name, key, arch, s) for s in self.seeds])), False

    def _trained(self, task_name: str, key: str, arch: str, seed: int) -> float:
        import dataclasses
        cache_key = f'{task_name}|{key}|{self.recipe_id}|{seed}'
        if cache_key not in self.cache:
            from d2a.nets.fit import train_and_evaluate
            task = self.db.task(task_name)
            train_x, train_y, test_x, test_y = self.images.split(task)
            res = train_and_evaluate(arch, train_x, train_y, test_x, test_y,
                                     dataclasses.replace(self.recipe, seed=seed),
                                     device=self.device,
                                     num_classes=len(self.db.task_classes(task)[1]))
            self.cache[cache_key] = float(res.accuracy)
            self.trained += 1
            if self.cache_path is not None:
                _common.write_json(str(self.cache_path), self.cache)
        return self.cache[cache_key]


def naswot_pick(task_name: str, truth: TrueAccuracy, num: int, seed: int,
                batch_size: int) -> str:
    r"""The best NASWOT-scored cell among ``num`` distinct cells drawn uniformly."""
    from d2a.pipeline.label import sample_architectures
    from d2a.zero_cost import naswot_network
    task = truth.db.task(task_name)
    train_x, _, _, _ = truth.images.split(task)
    gen = torch.Generator().manual_seed(seed)
    x = train_x[torch.randperm(train_x.size(0), generator=gen)[:batch_size]]
    archs = sample_architectures(truth.space, f'naswot-{task_name}', num, seed)
    n_cls = len(truth.db.task_classes(task)[1])
    scores = [naswot_network(a, truth.recipe, x, n_cls, seed, truth.device) for a in archs]
    return archs[int(np.argmax(scores))]


def predictor_agreement(models: Any, db_path: Path, tasks: Sequence[str],
                        truth: TrueAccuracy, num_resamples: int, device: str) -> Dict[str, Any]:
    r"""Within-task Spearman of the predictor's ranking of each task's labelled cells, and
    the median cross-task Spearman of predicted and of true rankings of the common cells."""
    import itertools

    from d2a.metrics import spearman
    from d2a.search import dataset_features, rank_candidates
    predicted: Dict[str, Dict[str, float]] = {}
    true: Dict[str, Dict[str, float]] = {}
    within: Dict[str, float] = {}
    for name in tasks:
        keyed, acc, archs = truth.task(name)
        data = dataset_features((str(db_path), name), models)
        mean, _ = rank_candidates(models.predictor, truth.space, archs, data, models.num_sample,
                                  num_resamples, np.random.default_rng(0), device)
        keys = [truth.space.canonical_key(a) for a in archs]
        predicted[name] = dict(zip(keys, mean))
        true[name] = dict(zip(keys, acc.tolist()))
        within[name] = spearman(mean, acc) if len(archs) > 2 else float('nan')
    common = sorted(set.intersection(*(set(v) for v in true.values()))) if true else []
    cross_pred, cross_true = [], []
    if len(common) > 2:
        for a, b in itertools.combinations(tasks, 2):
            cross_pred.append(spearman([predicted[a][k] for k in common],
                                       [predicted[b][k] for k in common]))
            cross_true.append(spearman([true[a][k] for k in common],
                                       [true[b][k] for k in common]))
    med = (lambda v: float(np.nanmedian(v)) if len(v) else None)
    return {'within_task_spearman': within, 'common_cells': len(common),
            'cross_task_spearman_predicted': med(cross_pred),
            'cross_task_spearman_true': med(cross_true)}


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    from tqdm.auto import tqdm

    from d2a.db import MetaDatabase
    from d2a.pipeline.embedded import read_split
    from d2a.nets.recipe import Recipe
    from d2a.search import load_models, search

    _common.resolve_database(args)
    db_path = Path(args.db)
    if not db_path.is_file():
        raise FileNotFoundError(f'meta-database {db_path} does not exist (build it with '
                                'd2a embedded, see docs/embedded.md)')
    db = MetaDatabase.open(db_path)
    split = read_split(db)
    recipes = db.recipes()
    recipe_id = args.recipe or split.get('recipe') or (next(iter(recipes)) if len(recipes) == 1
                                                       else None)
    if recipe_id not in recipes:
        raise ValueError(f'{db_path}: pick a recipe with --recipe (recipes: '
                         f"{', '.join(recipes) or 'none'})")
    fields = recipes[recipe_id]
    label_seeds = list(args.label_seeds or split.get('held_out_seeds') or [0])
    recipe = Recipe.from_dict({**fields['recipe'], 'seed': label_seeds[0]})
    cache = Path(args.cache) if args.cache else (
        Path(args.json).with_suffix('.trained.json') if args.json else None)
    models = load_models(args.checkpoint, args.device)
    truth = TrueAccuracy(db, recipe, recipe_id, fields.get('data', {}), label_seeds, cache,
                         args.device, models.space)
    exhaustive = models.space == 'nb201'  # the other space is too large to rank whole
    tasks = [t.name for t in db.tasks('meta-test')]
    if not tasks:
        raise ValueError(f'{db_path}: no held-out (meta-test) task')
    best_transfer, transfer_mean, transfer_tasks = transfer_cell(db, recipe_id)

    rows: List[Dict[str, Any]] = []
    pbar = tqdm(total=len(tasks) * len(args.seeds), desc='search quality',
                disable=not sys.stderr.isatty())
    for seed in args.seeds:
        for name in tasks:
            _, labelled, labelled_archs = truth.task(name)
            picks: Dict[str, Tuple[str, int, int]] = {}   # method -> (cell, trained, scored)
            t0 = time.perf_counter()
            res = search((str(db_path), name), args.checkpoint, num_candidates=args.num_candidates,
                         top_k=1, device=args.device, seed=seed)
            picks['d2a'] = (res.best.arch, 0, res.num_evaluated)
            d2a_time = time.perf_counter() - t0
            all_time = None
            if exhaustive:
                t0 = time.perf_counter()
                res_all = search((str(db_path), name), args.checkpoint, top_k=1,
                                 device=args.device, seed=seed, exhaustive=True,
                                 num_resamples=args.num_resamples)
                picks['d2a-all'] = (res_all.best.arch, 0, res_all.num_evaluated)
                all_time = time.perf_counter() - t0
            picks['transfer'] = (best_transfer, 0, 0)
            n_naswot = args.naswot_candidates or res.num_evaluated
            picks['naswot'] = (naswot_pick(name, truth, n_naswot, seed, args.naswot_batch),
                               0, n_naswot)
            picks['largest'] = (LARGEST[models.space], 0, 0)
            rng = random.Random(f'random-{name}-{seed}')
            picks['random'] = (rng.choice(labelled_archs), 0, 0)
            k = min(args.random_k, len(labelled_archs))
            sample = rng.sample(labelled_archs, k)
            picks['random-best-of-K'] = (max(sample, key=lambda a: truth(name, a)[0]), k, k)
            for method, (arch, trained, scored) in picks.items():
                acc, was_labelled = truth(name, arch)
                rows.append({'task': name, 'seed': seed, 'method': method, 'arch': arch,
                             'accuracy': acc, 'percentile': percentile(acc, labelled),
                             'regret': float(labelled.max()) - acc,
                             'labelled': was_labelled, 'trained_on_task': trained,
                             'scored': scored, 'task_best': float(labelled.max()),
                             'task_mean': float(labelled.mean()),
                             'num_labelled': int(labelled.size)})
            rows[-len(picks)]['search_seconds'] = d2a_time
            if all_time is not None:
                rows[-len(picks) + 1]['search_seconds'] = all_time
            pbar.update(1)
    pbar.close()
    agreement = predictor_agreement(models, db_path, tasks, truth, args.num_resamples,
                                    args.device)
    db.close()
    return {'db': str(db_path), 'checkpoint': str(args.checkpoint or models.directory),
            'space': models.space,
            'recipe': recipe_id, 'split': split, 'tasks': tasks, 'seeds': list(args.seeds),
            'label_seeds': label_seeds, 'num_candidates': args.num_candidates,
            'random_k': args.random_k,
            'transfer_cell': {'arch': best_transfer, 'meta_train_mean': transfer_mean,
                              'meta_train_tasks': transfer_tasks},
            'predictor': agreement, 'trained_now': truth.trained,
            'summary': summarize(rows), 'per_task': per_task(rows), 'rows': rows}


def per_task(rows: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    r"""Per task and method: the mean percentile over seeds."""
    out: Dict[str, Dict[str, float]] = {}
    for r in rows:
        out.setdefault(r['task'], {}).setdefault(r['method'], []).append(r['percentile'])
    return {t: {m: float(np.mean(v)) for m, v in d.items()} for t, d in out.items()}


def summarize(rows: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    r"""Per method: mean and std over (task, seed) of accuracy, percentile and the counts."""
    out: Dict[str, Dict[str, float]] = {}
    for method in METHODS:
        sel = [r for r in rows if r['method'] == method]
        if not sel:
            continue
        stat = {}
        for key in ('accuracy', 'percentile', 'regret', 'trained_on_task', 'scored'):
            vals = np.asarray([r[key] for r in sel], dtype=np.float64)
            stat[key] = float(vals.mean())
            stat[f'{key}_std'] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        stat['n'] = len(sel)
        out[method] = stat
    return out


def format_summary(result: Dict[str, Any], markdown: bool = False) -> str:
    header = ['method', 'top-1 accuracy (%)', 'percentile', 'regret (points)',
              'trained on task', 'cells scored']
    rows = []
    for method, s in result['summary'].items():
        name = method.replace('K', str(result['random_k']))
        rows.append([name, f"{s['accuracy']:.2f} ± {s['accuracy_std']:.2f}",
                     f"{s['percentile']:.1f} ± {s['percentile_std']:.1f}",
                     f"{s['regret']:.2f} ± {s['regret_std']:.2f}",
                     f"{s['trained_on_task']:g}", f"{s['scored']:,.0f}"])
    n_tasks, n_seeds = len(result['tasks']), len(result['seeds'])
    transfer = result['transfer_cell']
    out = [f"{n_tasks} held-out task(s) x {n_seeds} seed(s), recipe {result['recipe']}, truth = "
           f"mean over label seeds {result['label_seeds']}, mean ± std over (task, seed)",
           _common.format_table(header, rows, markdown)]
    methods = [m for m in ('d2a', 'd2a-all', 'transfer', 'naswot', 'random-best-of-K')
               if m in result['summary']]
    pred = result.get('predictor', {})
    within = pred.get('within_task_spearman', {})
    task_rows = [[t] + [f"{result['per_task'][t][m]:.1f}" for m in methods]
                 + [f"{within[t]:.2f}" if t in within else '']
                 for t in result['tasks']]
    out.append('mean percentile per task over seeds, and the predictor\'s within-task Spearman '
               'on the labelled cells')
    out.append(_common.format_table(
        ['task'] + [m.replace('K', str(result['random_k'])) for m in methods] + ['spearman'],
        task_rows, markdown))
    for m in ('d2a', 'd2a-all'):
        if m in result['per_task'][result['tasks'][0]]:
            wins = sum(result['per_task'][t][m] > result['per_task'][t]['transfer']
                       for t in result['tasks'])
            ties = sum(result['per_task'][t][m] == result['per_task'][t]['transfer']
                       for t in result['tasks'])
            out.append(f'{m} ahead of the transfer cell on {wins} of {n_tasks} task(s) '
                       f'({ties} tie(s))')
    if pred.get('cross_task_spearman_predicted') is not None:
        out.append(f"dataset sensitivity over {pred['common_cells']} common cells: median "
                   f"cross-task Spearman predicted {pred['cross_task_spearman_predicted']:.2f}, "
                   f"true {pred['cross_task_spearman_true']:.2f}")
    out.append(f"transfer cell {transfer['arch']} (mean {transfer['meta_train_mean']:.2f} % on "
               f"{transfer['meta_train_tasks']} meta-training tasks); {result['trained_now']} "
               'training(s) run here')
    return '\n'.join(out)


def main(argv: Optional[List[str]] = None) -> int:
    p = _common.database_parser(__doc__)
    p.add_argument('--label-seeds', type=int, nargs='+', default=None,
                   help='seeds an unlabelled pick is trained with, its truth being the mean '
                        '(default: the seeds of the held-out labels)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='method seeds')
    p.add_argument('--num-candidates', type=int, default=500,
                   help='cells d2a generates; NASWOT scores as many')
    p.add_argument('--num-resamples', type=int, default=5,
                   help='dataset draws the predictor averages over')
    p.add_argument('--naswot-batch', type=int, default=64, help='images of the NASWOT minibatch')
    p.add_argument('--naswot-candidates', type=int, default=None,
                   help='architectures NASWOT scores (default: as many as d2a scores)')
    p.add_argument('--random-k', type=int, default=10, help='K of random-best-of-K')
    p.add_argument('--cache', default=None,
                   help='JSON of cells trained here (default: <json>.trained.json)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--device', default='cpu', help='torch device of search and training')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    p.add_argument('--json', default=None, help='write the results to this JSON file')
    p.add_argument('--plot', default=None,
                   help='draw the percentile of every pick per task to this PNG file')
    args = p.parse_args(argv)
    _common.setup_threads(args.threads)
    result = evaluate(args)
    result['machine'] = _common.machine_info(args.threads)
    print(format_summary(result, args.markdown))
    _common.write_json(args.json, result)
    if args.plot:
        from d2a.plot import plot_search_quality
        methods = [m.replace('K', str(args.random_k)) for m in METHODS
                   if m in result['summary']]
        rows = [dict(r, method=r['method'].replace('K', str(args.random_k)))
                for r in result['rows']]
        plot_search_quality(rows, args.plot, methods,
                            f"top-1 pick per held-out task, {len(result['seeds'])} seed(s), "
                            f"{args.num_candidates} candidates")
    return 0


if __name__ == '__main__':
    sys.exit(main())
