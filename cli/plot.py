r"""``d2a plot``: pictures of a training run, saved as PNG files."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('plot', help='plot training curves, predictions, dataset embeddings',
                       description='Draw pictures of a training run as PNG files.')
    what = p.add_subparsers(dest='what', metavar='PLOT')
    c = what.add_parser('curves', help='losses, validation metrics and learning rate per epoch',
                        description='Training curves from a metrics log '
                                    '(<run>/<kind>.metrics.jsonl).')
    c.add_argument('--log', required=True, metavar='JSONL', help='the metrics log')
    c.add_argument('--out', required=True, metavar='PNG')
    c.set_defaults(func=run_curves)
    r = what.add_parser('predictions', help='predicted vs true accuracy on validation tasks',
                        description='Scatter of predicted against true accuracy of the best '
                                    "predictor's validation pairs (<run>/predictor.val.json).")
    r.add_argument('--run', required=True, metavar='DIR', help='the predictor run folder')
    r.add_argument('--out', required=True, metavar='PNG')
    r.set_defaults(func=run_predictions)
    e = what.add_parser('embedding', help='PCA map of the tasks\' dataset vectors',
                        description="PCA of the set encoder's vectors of a meta-database's "
                                    'tasks, coloured by source or split.')
    e.add_argument('--checkpoint', required=True, metavar='DIR_OR_FILE')
    e.add_argument('--db', required=True, metavar='DB.h5')
    e.add_argument('--out', required=True, metavar='PNG')
    e.add_argument('--kind', choices=('predictor', 'generator'), default='predictor',
                   help='whose set encoder (default: predictor)')
    e.add_argument('--color', choices=('source', 'split'), default='split',
                   help='colour by source dataset or by train/val/meta-test (default: split)')
    e.add_argument('--seed', type=int, default=0)
    e.set_defaults(func=run_embedding)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_curves(args: argparse.Namespace) -> int:
    from d2a.plot import plot_training_curves
    print(f'wrote {plot_training_curves(args.log, args.out)}')
    return 0


def run_predictions(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from d2a.plot import plot_predictions
    path = Path(args.run) / 'predictor.val.json'
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist: train a predictor with validation '
                                'tasks (--val-fraction > 0) into this folder first')
    data = json.loads(path.read_text(encoding='utf-8'))
    preds = data.get('predictions') or []
    if not preds:
        raise ValueError(f'{path} holds no predictions')
    out = plot_predictions([p['true'] for p in preds], [p['pred'] for p in preds], args.out,
                           groups=[p['task'] for p in preds],
                           title=f"validation tasks, best predictor (epoch {data.get('epoch')})")
    print(f'wrote {out}')
    return 0


def run_embedding(args: argparse.Namespace) -> int:
    from d2a.plot import embed_tasks, plot_embedding
    emb = embed_tasks(args.checkpoint, args.db, kind=args.kind, seed=args.seed)
    labels = emb['sources'] if args.color == 'source' else emb['splits']
    out = plot_embedding(emb['vectors'], labels, args.out, names=emb['names'],
                         title=f'{args.kind} dataset embeddings (PCA)')
    print(f'wrote {out}')
    return 0
