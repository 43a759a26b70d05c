r"""``d2a search``: generate and rank architectures for a dataset; with ``--budget K``, then
really train up to K of them on it and report the best measured one."""
from __future__ import annotations

import argparse
import sys

from d2a.cli.main import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('search', help='find good architectures for a dataset',
                       description='Generate candidate architectures for a dataset with a '
                                   'meta-trained generator, rank them with the meta-predictor '
                                   'and print the best ones.')
    p.add_argument('--dataset', required=True, metavar='PATH',
                   help='an image folder (one sub-folder per class), an .npz file (images, '
                        "labels), a source spec (e.g. 'digits', 'glyphs:greek_lower') or a "
                        'meta-database (.h5, with --task)')
    p.add_argument('--task', default=None, help='task of the meta-database given as --dataset')
    p.add_argument('--space', choices=('nb201', 'mbv3'), default=None,
                   help="search space: nb201 (NAS-Bench-201 cells) or mbv3 (Once-for-All "
                        "MobileNetV3 configs); picks d2a's shipped checkpoints of that space "
                        "(default: the --checkpoint's space, nb201 for the shipped ones)")
    p.add_argument('--checkpoint', default=None, metavar='DIR',
                   help="folder with generator.pt and predictor.pt (default: d2a's shipped "
                        'checkpoints of --space)')
    p.add_argument('--num-candidates', type=int, default=500,
                   help='unique valid candidates to generate and score (default: 500)')
    p.add_argument('--top-k', type=int, default=5, help='candidates to show (default: 5)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='graphs generated per batch (default: --num-candidates clipped to '
                        '100..1000)')
    p.add_argument('--num-resamples', type=int, default=5,
                   help='dataset draws the predicted accuracy is averaged over (default: 5)')
    p.add_argument('--patience', type=int, default=20,
                   help='give up after this many batches without a new candidate (default: 20)')
    p.add_argument('--all', dest='exhaustive', action='store_true',
                   help='score every unique architecture of a small space (NB201: 6,466) '
                        'instead of generating candidates; graph vectors are cached next to '
                        'the checkpoint')
    p.add_argument('--guidance', type=float, default=0.0, metavar='S',
                   help='steer generation with the predictor: strength S >= 0 of the '
                        'latent-space cross-entropy method (default: 0, off; try 1-3)')
    r = p.add_argument_group('refinement (real training on the dataset)')
    r.add_argument('--budget', type=int, default=0, metavar='K',
                   help='after ranking, really train up to K candidates on the dataset, '
                        'each chosen from the measurements so far (default: 0, none)')
    r.add_argument('--recipe', default=None, metavar='SPEC',
                   help="how to train them: 'nb201', 'reduced', 'mini', 'mbv3-mini', a JSON "
                        'file of recipe fields, or a recipe id of the meta-database (default: the '
                        'recipe the checkpoints were meta-trained on)')
    r.add_argument('--acquisition', choices=('ucb', 'ei', 'ranking'), default='ucb',
                   help='how the next cell is chosen: upper confidence bound or expected '
                        'improvement of a surrogate on the residuals, or the zero-shot '
                        'ranking in order (default: ucb)')
    r.add_argument('--cache', default=None, metavar='FILE',
                   help='JSON file of the measurements, read and extended so a rerun trains '
                        'nothing twice (default: next to --json, <OUT stem>.measurements.json)')
    r.add_argument('--train-device', default=None,
                   help='where candidates are trained (default: --device)')
    g = p.add_argument_group('constraints')
    g.add_argument('--max-params', default=None, metavar='N',
                   help='most parameters of the network, e.g. 1.2M (nb201: the network with '
                        'C=16, N=5; mbv3: at --width-mult and --image-size)')
    g.add_argument('--max-flops', default=None, metavar='N',
                   help='most multiply-accumulates per image, e.g. 150M')
    g.add_argument('--max-latency', type=float, default=None, metavar='MS',
                   help='most milliseconds on --device-latency (needs --latency-table)')
    g.add_argument('--latency-table', default=None, metavar='CSV',
                   help='latency table: arch column and one column per device (ms)')
    g.add_argument('--device-latency', default=None, metavar='NAME',
                   help='the device column of the latency table')
    g.add_argument('--image-size', type=int, default=None, metavar='PX',
                   help='mbv3: input side of the network the counts and limits refer to '
                        "(default: the meta-training recipe's, 12 for the shipped "
                        "checkpoints; OFA's ImageNet setting is 224)")
    g.add_argument('--width-mult', type=float, default=None, metavar='W',
                   help='mbv3: width multiplier of that network (default: the recipe\'s, '
                        '0.25 for the shipped checkpoints; OFA: 1.0)')
    p.add_argument('--json', default=None, metavar='OUT', help='also write the result as JSON')
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda' (default: auto)")
    p.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    p.add_argument('--progress', action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(),
                   help='progress bars (default: on when stderr is a terminal)')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from d2a.search import cache_path_for, parse_count, search
    dataset = args.dataset
    if Path(dataset).suffix in ('.h5', '.hdf5'):
        if not args.task:
            raise CLIError(f'--dataset {dataset} is a meta-database: name one of its tasks '
                           'with --task')
        dataset = (dataset, args.task)
    elif args.task:
        raise CLIError('--task goes with a meta-database (.h5) given as --dataset')
    if args.max_latency is not None and not (args.latency_table and args.device_latency):
        raise CLIError('--max-latency needs --latency-table CSV and --device-latency NAME')
    if args.budget < 0 or args.guidance < 0:
        raise CLIError(f'--budget and --guidance must be >= 0, got {args.budget} and '
                       f'{args.guidance}')
    cache = args.cache
    if args.budget and cache is None:
        if not args.json:
            raise CLIError('--budget trains on the dataset: give --json OUT (measurements are '
                           'cached next to it) or --cache FILE, so that a rerun trains '
                           'nothing twice')
        cache = str(cache_path_for(args.json))
    elif not args.budget and (args.recipe or args.cache or args.train_device):
        raise CLIError('--recipe, --cache and --train-device go with --budget K')
    result = search(dataset, checkpoint_dir=args.checkpoint, num_candidates=args.num_candidates,
                    top_k=args.top_k, batch_size=args.batch_size,
                    num_resamples=args.num_resamples,
                    max_params=parse_count(args.max_params) if args.max_params else None,
                    max_flops=parse_count(args.max_flops) if args.max_flops else None,
                    max_latency=args.max_latency, latency_table=args.latency_table,
                    latency_device=args.device_latency, patience=args.patience,
                    exhaustive=args.exhaustive, guidance=args.guidance, budget=args.budget,
                    recipe=args.recipe, cache=cache, acquisition=args.acquisition,
                    train_device=args.train_device, space=args.space,
                    image_size=args.image_size, width_mult=args.width_mult,
                    device=args.device, seed=args.seed, progress=args.progress)
    print(result.to_table())
    if args.json:
        result.to_json(args.json)
        print(f'wrote {args.json}')
    # 130: the usual status of a run stopped by Ctrl-C (what was measured is kept).
    return 130 if result.refinement is not None and result.refinement.interrupted else 0
