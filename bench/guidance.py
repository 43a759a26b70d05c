r"""Predictor-guided generation against plain sampling of the generator, at an equal number of
candidates, on the held-out tasks of a meta-database.

For every meta-test task of ``--db``, every seed and every strength of ``--strengths``
(0 is the unguided generator), :func:`d2a.search.search` generates ``--num-candidates``
unique valid cells (``guidance=S``, :class:`d2a.search.GuidedSampler`) and scores them
with the predictor. Reported per strength, mean over (task, seed):

- ``mean pred`` / ``best pred``: the predicted accuracy of the candidates (averaged over
  ``--num-resamples`` dataset draws), mean and maximum;
- ``validity``: valid graphs per graph decoded;
- ``uniqueness``: unique candidates per valid graph decoded -- for the unguided generator
  how often it repeats itself, for the guided one also the share its re-weighting keeps
  (it decodes 4 graphs per candidate); graphs are decoded in batches of ``--batch-size``
  candidates and a run stops after the batch that completes ``--num-candidates``;
- ``mean true`` (``labelled``): the seed-averaged label of the candidates the database has
  labelled on the task, and how many of them are (the guided sampler optimises the
  predictor, so the predicted figures favour it by construction; this one does not).

Example (about a minute on 2 cores)::

    .venv/bin/python bench/guidance.py --json bench/results/guidance.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    from d2a.db import MetaDatabase
    from d2a.graphs import get_space
    from d2a.pipeline.embedded import read_split
    from d2a.search import search

    space = get_space('nb201')
    db_path = Path(args.db)
    if not db_path.is_file():
        raise FileNotFoundError(f'meta-database {db_path} does not exist')
    with MetaDatabase.open(db_path) as db:
        recipe_id = args.recipe or read_split(db).get('recipe')
        tasks = [t.name for t in db.tasks('meta-test')][:args.max_tasks]
        labels = {}
        for name in tasks:
            archs, acc = db.task_results(name, recipe=recipe_id)
            labels[name] = {space.canonical_key(a): float(v) for a, v in zip(archs, acc)}
    if not tasks:
        raise ValueError(f'{db_path}: no held-out (meta-test) task')
    rows: List[Dict[str, Any]] = []
    for name in tasks:
        for seed in args.seeds:
            for strength in args.strengths:
                t0 = time.perf_counter()
                res = search((str(db_path), name), args.checkpoint,
                             num_candidates=args.num_candidates, top_k=args.num_candidates,
                             num_resamples=args.num_resamples, guidance=strength,
                             batch_size=args.batch_size,
                             device=args.device, seed=seed)
                seconds = time.perf_counter() - t0
                pred = np.asarray([c.predicted_accuracy for c in res.candidates])
                true = [labels[name][k] for k in (space.canonical_key(c.arch)
                                                  for c in res.candidates) if k in labels[name]]
                rows.append({'task': name, 'seed': seed, 'strength': strength,
                             'candidates': len(pred), 'mean_pred': float(pred.mean()),
                             'best_pred': float(pred.max()),
                             'validity': res.num_valid / max(res.num_generated, 1),
                             'uniqueness': res.num_evaluated / max(res.num_valid, 1),
                             'mean_true': float(np.mean(true)) if true else None,
                             'labelled': len(true), 'generated': res.num_generated,
                             'seconds': seconds})
    return {'db': str(db_path), 'checkpoint': args.checkpoint, 'recipe': recipe_id,
            'tasks': tasks, 'seeds': list(args.seeds), 'strengths': list(args.strengths),
            'num_candidates': args.num_candidates, 'batch_size': args.batch_size,
            'summary': summarize(rows), 'rows': rows}


def summarize(rows: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    r"""Per strength, means over (task, seed); ``mean_true`` over the rows with labels,
    weighted by their number of labelled candidates."""
    out: Dict[str, Dict[str, float]] = {}
    for s in dict.fromkeys(r['strength'] for r in rows):
        sel = [r for r in rows if r['strength'] == s]
        stat = {k: float(np.mean([r[k] for r in sel]))
                for k in ('mean_pred', 'best_pred', 'validity', 'uniqueness', 'generated',
                          'seconds', 'candidates')}
        lab = [r for r in sel if r['labelled']]
        n = sum(r['labelled'] for r in lab)
        stat['mean_true'] = float(sum(r['mean_true'] * r['labelled'] for r in lab) / n) \
            if n else float('nan')
        stat['labelled'] = float(n) / len(sel)
        out[f'{s:g}'] = stat
    return out


def format_summary(result: Dict[str, Any], markdown: bool = False) -> str:
    header = ['guidance S', 'mean pred', 'best pred', 'validity', 'uniqueness', 'mean true',
              'labelled / run', 'graphs generated', 's / run']
    rows = [[s, f"{v['mean_pred']:.2f}", f"{v['best_pred']:.2f}", f"{v['validity']:.3f}",
             f"{v['uniqueness']:.3f}", f"{v['mean_true']:.2f}", f"{v['labelled']:.1f}",
             f"{v['generated']:.0f}", f"{v['seconds']:.2f}"]
            for s, v in result['summary'].items()]
    return (f"{len(result['tasks'])} held-out task(s) x {len(result['seeds'])} seed(s), "
            f"{result['num_candidates']} unique candidates per run\n"
            + _common.format_table(header, rows, markdown))


def main(argv: Optional[List[str]] = None) -> int:
    p = _common.database_parser(__doc__)
    p.add_argument('--strengths', type=float, nargs='+', default=[0.0, 1.0, 2.0, 4.0],
                   help='guidance strengths (0: unguided)')
    p.add_argument('--num-candidates', type=int, default=100, help='unique candidates per run')
    p.add_argument('--batch-size', type=int, default=20,
                   help='candidates per generated batch (the guided sampler decodes 4x)')
    p.add_argument('--num-resamples', type=int, default=5, help='dataset draws per score')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='search seeds')
    p.add_argument('--max-tasks', type=int, default=None, help='only the first tasks')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--device', default='cpu', help='torch device')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    p.add_argument('--json', default=None, help='write the results to this JSON file')
    _common.run_and_report(p.parse_args(argv), evaluate, format_summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
