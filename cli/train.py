r"""``d2a train generator|predictor``: meta-train a model on a meta-database.

Every option can also be set in a YAML file given with ``--config`` (keys are the long flag
names); flags on the command line override it. The effective configuration is saved as
``<out>/<kind>.config.yaml``. Under ``torchrun`` the run is distributed::

    torchrun --nproc-per-node 4 -m d2a.cli.main train predictor --db db.h5 --out run/
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

import yaml

from d2a.cli.main import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('train', help='meta-train the generator or the predictor',
                       description='Meta-train the generator (set-to-graph VAE) or the '
                                   'meta-performance predictor on a meta-database.')
    kinds = p.add_subparsers(dest='kind', metavar='KIND')
    for kind, text in (('generator', 'the set-to-graph VAE that generates architectures'),
                       ('predictor', 'the predictor that ranks them')):
        k = kinds.add_parser(kind, help=f'train {text}', description=f'Meta-train {text}.')
        add_train_options(k)
        k.set_defaults(func=run, kind=kind)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def add_train_options(p: argparse.ArgumentParser) -> None:
    r"""The options of :class:`~d2a.training.config.TrainConfig` as flags (and YAML keys)."""
    from d2a.config import enable_config
    from d2a.training.config import TrainConfig
    fields = TrainConfig.__dataclass_fields__

    def default(name: str) -> Any:
        return fields[name].default

    g = p.add_argument_group('data and output')
    g.add_argument('--db', default=None, metavar='DB.h5', help='the meta-database')
    g.add_argument('--out', default=None, metavar='DIR', help='output folder')
    g.add_argument('--recipe', default=None,
                   help='use the results of this labelling recipe (needed when the database '
                        'holds several)')
    g.add_argument('--space', default=default('space'), help='search space')
    g = p.add_argument_group('model')
    g.add_argument('--model', default=None,
                   help='registry name (default: metad2a_<space>_<kind>)')
    g.add_argument('--model-args', nargs='*', default=[], metavar='KEY=VALUE',
                   help='override model sizes, e.g. hidden_channels=32 graph_encoder=gin')
    g = p.add_argument_group('optimisation (MetaD2A defaults)')
    g.add_argument('--epochs', type=int, default=default('epochs'))
    g.add_argument('--batch-size', type=int, default=default('batch_size'),
                   help='items per step over all processes')
    g.add_argument('--lr', type=float, default=default('lr'), help='Adam learning rate')
    g.add_argument('--weight-decay', type=float, default=default('weight_decay'))
    g.add_argument('--lr-factor', type=float, default=default('lr_factor'),
                   help='ReduceLROnPlateau factor')
    g.add_argument('--lr-patience', type=int, default=default('lr_patience'),
                   help='ReduceLROnPlateau patience (epochs)')
    g.add_argument('--grad-clip', type=float, default=default('grad_clip'),
                   help='gradient norm clip (0: off)')
    g.add_argument('--max-steps', type=int, default=None,
                   help='stop each epoch after this many steps (quick runs)')
    g.add_argument('--seed', type=int, default=default('seed'))
    g = p.add_argument_group('episodes and validation')
    g.add_argument('--num-sample', type=int, default=default('num_sample'),
                   help='feature vectors per class in an episode')
    g.add_argument('--top-k', type=int, default=default('top_k'),
                   help="generator targets per task (the task's best architectures)")
    g.add_argument('--val-fraction', type=float, default=default('val_fraction'),
                   help='meta-training tasks (or sources, see --val-by) held out for validation')
    g.add_argument('--val-by', choices=('task', 'source'), default=default('val_by'),
                   help='hold out tasks, or whole source datasets with all their tasks')
    g.add_argument('--val-pairs', default=None, metavar='NAME',
                   help='predictor: validate on this pair split of the database (MetaD2A\'s, '
                        'from d2a db import DB metad2a-split) instead of held-out tasks')
    g.add_argument('--rank-weight', type=float, default=default('rank_weight'),
                   help='predictor: weight of a listwise ranking loss within each task')
    g.add_argument('--group-size', type=int, default=default('group_size'),
                   help="predictor: a task's architectures per batch group, sharing one "
                        'dataset draw')
    g.add_argument('--level-weight', type=float, default=default('level_weight'),
                   help="predictor with target=task: weight of the task mean/spread loss")
    g.add_argument('--val-samples', type=int, default=default('val_samples'),
                   help='graphs generated per validation task (validity, uniqueness)')
    g.add_argument('--val-resamples', type=int, default=default('val_resamples'),
                   help='dataset draws averaged by the predictor in validation')
    g = p.add_argument_group('hardware')
    g.add_argument('--device', default=default('device'),
                   help="'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'")
    g.add_argument('--amp', action=argparse.BooleanOptionalAction, default=default('amp'),
                   help='bf16 autocast on CUDA')
    g.add_argument('--compile', action=argparse.BooleanOptionalAction,
                   default=default('compile'), help='torch.compile the model')
    g.add_argument('--progress', action=argparse.BooleanOptionalAction,
                   default=default('progress') and sys.stderr.isatty(),
                   help='progress bars (default: on when stderr is a terminal)')
    g = p.add_argument_group('run control')
    g.add_argument('--resume', action='store_true',
                   help='continue the interrupted run in --out (its saved configuration is '
                        'the base; flags override, e.g. more --epochs)')
    g.add_argument('--overwrite', action='store_true',
                   help='start afresh even if --out holds a run of this kind')
    enable_config(p, exclude=('resume', 'overwrite'))


def parse_model_args(values: List[Any]) -> Dict[str, Any]:
    r"""``['key=value', ...]`` (values read as YAML scalars) or mappings, merged."""
    out: Dict[str, Any] = {}
    for item in values or []:
        if isinstance(item, dict):
            out.update(item)
            continue
        key, eq, value = str(item).partition('=')
        if not eq or not key:
            raise CLIError(f'--model-args expects KEY=VALUE, got {item!r}')
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CLIError(f'--model-args {item!r}: cannot read the value') from None
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from d2a.config import load_config, resolve_config
    from d2a.training.config import TrainConfig
    from d2a.training.trainer import train
    values = resolve_config(args)
    if args.resume:
        if not values.get('out'):
            raise CLIError('--resume needs --out (the folder of the run to continue)')
        saved = Path(values['out']) / f'{args.kind}.config.yaml'
        if not saved.is_file():
            raise FileNotFoundError(f'cannot resume: {saved} does not exist')
        values = resolve_config(args, overrides=load_config(saved))
    for key in ('db', 'out'):
        if not values.get(key):
            raise CLIError(f'--{key} is required (on the command line or in --config)')
    # Absolute paths, so that the saved configuration works from any folder.
    values['db'] = str(Path(values['db']).expanduser().resolve())
    values['out'] = str(Path(values['out']).expanduser().resolve())
    values['model_args'] = parse_model_args(values.get('model_args'))
    config = TrainConfig.from_dict({'kind': args.kind, **values})
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary['rank'] == 0:
        print(f"best epoch {summary['best_epoch']} (score {summary['best_score']:.4f}); "
              f'checkpoints in {config.out}')
    return 0
