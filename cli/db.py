r"""``d2a db``: build, label, import, merge and inspect meta-databases."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from d2a.cli.main import CLIError

class _Formatter(argparse.RawDescriptionHelpFormatter):
    r"""Keeps the descriptions' line breaks and shows the options' defaults."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ''
        if action.default not in (None, False, argparse.SUPPRESS) and '(default' not in text \
                and action.option_strings:
            text += ' (default: %(default)s)'
        return text


_IMPORT_KINDS = ('nb201-accuracy', 'help-latency', 'metad2a-bylabel', 'metad2a-tasks',
                 'metad2a-pairs', 'metad2a-split', 'metad2a-nasbench201', 'nb201-api')


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('db', help='build, label, import, merge and inspect meta-databases',
                       description='The meta-database (HDF5) holds per-class image features of '
                                   'source datasets, tasks (class subsets), architectures and '
                                   'their measured accuracies. See docs/database.md.')
    dsub = p.add_subparsers(dest='db_command', metavar='DB_COMMAND')
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    _add_build(dsub)
    _add_label(dsub)
    _add_import(dsub)
    _add_merge(dsub)
    _add_info(dsub)
    _add_check(dsub)


# ---------------------------------------------------------------------------- build
def _add_build(dsub: argparse._SubParsersAction) -> None:
    from d2a.datasets.glyph_scripts import SCRIPTS
    p = dsub.add_parser(
        'build', help='extract features of raw image sources into a new database',
        formatter_class=_Formatter,
        description='Load each source, resize its images, normalise them by the source\'s own '
                    'channel mean/std, extract features and define tasks.\n\n'
                    'Sources are written KIND[:ARG][,key=value...]:\n'
                    '  glyphs:greek_lower,images_per_class=80   rendered characters\n'
                    '  folder:/data/flowers                     one sub-folder per class\n'
                    '  npz:faces.npz,images=x,labels=y          NumPy arrays\n'
                    '  digits                                   scikit-learn digits\n'
                    '  torchvision:CIFAR10,root=/data           torchvision (already downloaded)\n'
                    'Glyph scripts: ' + ', '.join(SCRIPTS) + ' (docs/datasets.md).')
    p.add_argument('output', help='database file to create (.h5)')
    p.add_argument('--source', action='append', required=True, metavar='SPEC',
                   help='a raw source (repeatable)')
    p.add_argument('--meta-test', action='append', default=[], metavar='NAME',
                   help='source kept for meta-testing: one whole-source meta-test task, not used '
                        'to pre-train the extractor (repeatable)')
    p.add_argument('--extractor', default='small_cnn',
                   help='feature extractor: small_cnn (pre-trained here), raw_pixels, '
                        'resnet18_imagenet (needs torchvision and local weights)')
    p.add_argument('--extractor-config', action='append', default=[], metavar='KEY=VALUE',
                   help='extractor option, e.g. out_channels=128 (repeatable)')
    p.add_argument('--extractor-weights', default=None, metavar='FILE',
                   help='weights of the extractor (a saved extractor or state dict; for '
                        'resnet18_imagenet a torchvision state dict)')
    p.add_argument('--image-size', type=int, default=32, help='images are resized to this size')
    p.add_argument('--tasks-per-source', type=int, default=0,
                   help='meta-training tasks sampled per non-meta-test source (0: one '
                        'whole-source task each)')
    p.add_argument('--classes-per-task', default='5', metavar='K or LO-HI',
                   help='classes per sampled task, fixed or an inclusive range')
    p.add_argument('--pretrain-epochs', type=int, default=10,
                   help='epochs of the small CNN\'s pre-training')
    p.add_argument('--batch-size', type=int, default=256, help='images per extractor batch')
    p.add_argument('--seed', type=int, default=0, help='seed of pre-training and task sampling')
    p.add_argument('--device', default=None, help='torch device (default: CUDA when available, else CPU)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    _add_progress_options(p, 'sources loaded, pre-training epochs, images')
    p.set_defaults(func=run_build)


def _add_progress_options(p: argparse.ArgumentParser, counts: str) -> None:
    p.add_argument('--progress', action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(),
                   help='progress bars (default: on when stderr is a terminal)')
    p.add_argument('--log-interval', type=float, default=30.0, metavar='SECONDS',
                   help=f'without bars, print a plain progress line ({counts}, rate, ETA) at '
                        'most this often')


def _key_values(items: List[str], flag: str) -> Dict[str, Any]:
    from d2a.datasets.source import _parse_value
    out: Dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition('=')
        if not eq or not key:
            raise CLIError(f'{flag} {item!r} must be KEY=VALUE')
        out[key.strip()] = _parse_value(value.strip())
    return out


def _classes_per_task(text: str) -> Any:
    try:
        if '-' in text:
            lo, hi = (int(v) for v in text.split('-', 1))
            return (lo, hi)
        return int(text)
    except ValueError:
        raise CLIError(f'--classes-per-task must be K or LO-HI, got {text!r}') from None


def run_build(args: argparse.Namespace) -> int:
    from d2a.datasets.source import parse_source
    from d2a.pipeline.build import build_database
    sources = [parse_source(s) for s in args.source]
    summary = build_database(
        args.output, sources, args.extractor, _key_values(args.extractor_config, '--extractor-config'),
        args.extractor_weights, args.image_size, args.meta_test, args.tasks_per_source,
        _classes_per_task(args.classes_per_task), args.pretrain_epochs, args.seed,
        args.batch_size, args.device, args.overwrite, progress=args.progress,
        log_interval=args.log_interval)
    print(f"wrote {args.output}: {len(summary['sources'])} source(s), {summary['tasks']} task(s), "
          f"{summary['extractor']} features of dim {summary['feature_dim']}")
    return 0


# ---------------------------------------------------------------------------- label
def _add_label(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        'label', formatter_class=_Formatter, help='train sampled architectures on tasks and record their accuracy',
        description='For each task, sample architectures (deterministic per task and seed), '
                    'train each with the recipe on the task\'s training images and record the '
                    'test accuracy on its held-out images. Results go to a shard file next to '
                    'the database (DB.label-IofN.h5), rewritten atomically after every '
                    'architecture: re-running the same command after an interruption '
                    'continues where it stopped. With one shard the results are merged into '
                    'the database at the end; with --shard i/N or under torchrun (RANK, '
                    'WORLD_SIZE) each process takes every N-th item and `d2a db merge` '
                    'combines the shard files.')
    p.add_argument('db', help='the meta-database')
    p.add_argument('--space', default='nb201', help='search space of the architectures')
    p.add_argument('--archs-per-task', type=int, default=10, help='architectures per task')
    p.add_argument('--tasks', nargs='+', default=None, metavar='TASK',
                   help='task names (default: every task of --split)')
    p.add_argument('--split', default='meta-train', choices=('meta-train', 'meta-test'),
                   help='split whose tasks are labelled when --tasks is not given')
    p.add_argument('--sampler', default='uniform', choices=('uniform', 'stratified'),
                   help='uniform, or stratified by parameter count')
    p.add_argument('--seed', type=int, default=0, help='seed of the sample and of training')
    p.add_argument('--shard', default=None, metavar='I/N', help='do shard I of N (0-based)')
    p.add_argument('--out', default=None, help='shard results file (default DB.label-IofN.h5)')
    p.add_argument('--no-merge', action='store_true',
                   help='keep the results in the shard file even with one shard')
    p.add_argument('--device', default=None, help='torch device (default: CUDA when available, else CPU)')
    p.add_argument('--recipe', default=None,
                   choices=('reduced', 'mini', 'nb201', 'mbv3-mini', 'custom'),
                   help='preset training recipe, adjusted by the flags below (default: reduced '
                        'for nb201, mbv3-mini for mbv3)')
    p.add_argument('--recipe-name', default=None, help='name of the recipe (prefix of its id)')
    p.add_argument('--channels', type=int, default=None, help='C: channels of the first stage (default: the preset\'s)')
    p.add_argument('--cells', type=int, default=None, help='N: cells per stage (default: the preset\'s)')
    p.add_argument('--width-mult', type=float, default=None,
                   help='width multiplier of MobileNetV3 networks (--space mbv3; default: the '
                        'preset\'s, 0.25 for mbv3-mini)')
    p.add_argument('--epochs', type=int, default=None, help='training epochs (default: the preset\'s)')
    p.add_argument('--batch-size', type=int, default=None, help='training batch size (default: the preset\'s)')
    p.add_argument('--lr', type=float, default=None, help='peak learning rate (default: the preset\'s)')
    p.add_argument('--weight-decay', type=float, default=None, help='weight decay (default: the preset\'s)')
    p.add_argument('--train-image-size', type=int, default=None,
                   help='resize images to this size for training (default: the database\'s)')
    p.add_argument('--augment', action='store_true', default=None,
                   help='random crop and flip while training')
    p.add_argument('--test-fraction', type=float, default=0.25,
                   help='held-out fraction of each class\'s images')
    p.add_argument('--max-images-per-class', type=int, default=None,
                   help='use at most this many images per class')
    _add_progress_options(p, 'cells trained')
    p.set_defaults(func=run_label)


def parse_shard(text: Optional[str]) -> Optional[Tuple[int, int]]:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError:
        raise CLIError(f'--shard must be I/N, got {text!r}') from None
    from d2a.pipeline.label import check_shard
    return check_shard((i, n))


def recipe_from_args(args: argparse.Namespace) -> Any:
    import dataclasses

    from d2a.nets.recipe import Recipe
    space = getattr(args, 'space', 'nb201')
    preset = args.recipe or ('mbv3-mini' if space == 'mbv3' else 'reduced')
    base = {'reduced': Recipe.reduced, 'mini': Recipe.mini, 'nb201': Recipe.nb201,
            'mbv3-mini': Recipe.mbv3_mini, 'custom': Recipe}[preset]()
    if space != 'nb201' and (args.channels is not None or args.cells is not None):
        raise CLIError('--channels and --cells size NB201 networks; they do not apply to '
                       f'--space {space}')
    width = getattr(args, 'width_mult', None)
    if width is not None and base.space != 'mbv3':
        raise CLIError(f'--width-mult sizes MobileNetV3 networks; recipe {preset!r} trains '
                       f'{base.space} networks')
    if width is not None and not width > 0:
        raise CLIError(f'--width-mult must be positive, got {width}')
    changes = {'name': args.recipe_name, 'C': args.channels, 'N': args.cells,
               'epochs': args.epochs, 'batch_size': args.batch_size, 'lr': args.lr,
               'weight_decay': args.weight_decay, 'image_size': args.train_image_size,
               'augment': args.augment, 'width_mult': width}
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def run_label(args: argparse.Namespace) -> int:
    from d2a.pipeline.label import label, shard_from_env
    from d2a.pipeline.merge import merge
    from d2a.pipeline.label import shard_path
    from d2a.utils.lock import file_lock
    shard = parse_shard(args.shard)
    effective = shard or shard_from_env()
    out = Path(args.out) if args.out else shard_path(args.db, effective)
    # Held through the merge, so that a second run cannot start between labelling and the
    # removal of the shard file.
    with file_lock(out, f'd2a db label (shard {effective[0]}/{effective[1]})'):
        label(args.db, args.space, args.tasks, args.archs_per_task, recipe_from_args(args),
              args.sampler, args.seed, effective, args.device, out, args.test_fraction,
              args.max_images_per_class, args.split, progress=args.progress,
              log_interval=args.log_interval)
        if effective[1] == 1 and not args.no_merge:
            counts = merge(args.db, [out])
            os.unlink(out)
    if effective[1] == 1 and not args.no_merge:
        print(f"labelled: {counts['results']} new result(s) merged into {args.db}")
    else:
        print(f'labelled shard {effective[0]}/{effective[1]}: results in {out} '
              f'(combine with: d2a db merge {args.db} {Path(out).parent}/*.label-*of*.h5)')
    return 0


# ---------------------------------------------------------------------------- import
def _add_import(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        'import', help='import published tables or MetaD2A files into a database',
        formatter_class=_Formatter,
        description='Import into DB (created when missing):\n'
                    '  nb201-accuracy       CSV index,arch,<dataset>... (test accuracy %)\n'
                    '  help-latency         CSV index,arch,<device>... (HELP latency, ms)\n'
                    '  metad2a-bylabel      <name>bylabel.pt features (--source NAME)\n'
                    '  metad2a-tasks        meta_train_task_lst.pt (--source, --class-base)\n'
                    '  metad2a-pairs        meta_train_tasks_predictor.pt / _generator.pt\n'
                    '  metad2a-split        meta_train_tasks_predictor_idx.pt (--pairs FILE): '
                    'its validation pairs\n'
                    '  metad2a-nasbench201  nasbench201.pt (--datasets)\n'
                    '  nb201-api            official NATS-Bench / NAS-Bench-201 file '
                    '(--datasets, --api)\n'
                    'MetaD2A files are read with a restricted unpickler (no python-igraph, '
                    'no arbitrary code).')
    p.add_argument('db', help='the meta-database (created when missing)')
    p.add_argument('kind', choices=_IMPORT_KINDS, help='what FILE is')
    p.add_argument('file', help='the file to import')
    p.add_argument('--datasets', nargs='+', default=None,
                   help='dataset columns to import (accuracy tables; default all of a CSV)')
    p.add_argument('--devices', nargs='+', default=None, help='latency columns (default all)')
    p.add_argument('--source', default='imgnet32',
                   help='source name of imported features / of the task classes')
    p.add_argument('--class-base', type=int, default=1,
                   help='class id of the first class in a MetaD2A task list')
    p.add_argument('--prefix', default='metad2a-',
                   help='MetaD2A task i is named PREFIX<i>')
    p.add_argument('--split', default=None, choices=('meta-train', 'meta-test'),
                   help='split of the tasks created (default: meta-train for MetaD2A task '
                        'lists, meta-test for benchmark datasets)')
    p.add_argument('--api', default='nats_bench', choices=('nats_bench', 'nas_201_api'),
                   help='package reading an nb201-api file')
    p.add_argument('--recipe', default=None, metavar='NAME',
                   help='recipe id of imported metad2a-pairs results (default: metad2a); a '
                        'second pairs file from another protocol needs its own')
    p.add_argument('--pairs', default=None, metavar='FILE',
                   help='metad2a-split: the pairs file the permutation indexes')
    p.add_argument('--num-val', type=int, default=400,
                   help='metad2a-split: leading entries of the permutation held out')
    p.add_argument('--name', default='metad2a-val',
                   help='metad2a-split: name of the pair split (d2a train predictor '
                        '--val-pairs NAME)')
    p.add_argument('--duplicates', default='error', choices=('error', 'first', 'mean'),
                   help='a (task, architecture) pair a metad2a-pairs file lists twice: refuse '
                        'the file, keep the first copy, or store the mean')
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from d2a.db.database import MetaDatabase
    from d2a.pipeline.importers import metad2a, nb201
    db = MetaDatabase.open(args.db, 'a') if Path(args.db).exists() else MetaDatabase.create(args.db)
    bench_split = args.split or 'meta-test'
    with db:
        if args.kind == 'nb201-accuracy':
            n, what = nb201.import_nb201_accuracy(db, args.file, args.datasets, bench_split), 'results'
        elif args.kind == 'help-latency':
            n, what = nb201.import_help_latency(db, args.file, args.devices), 'latency rows'
        elif args.kind == 'metad2a-bylabel':
            n, what = metad2a.import_bylabel(db, args.file, args.source), 'classes'
        elif args.kind == 'metad2a-tasks':
            n, what = metad2a.import_task_list(db, args.file, args.source, args.class_base,
                                               args.prefix, args.split or 'meta-train'), 'tasks'
        elif args.kind == 'metad2a-pairs':
            counts = metad2a.import_pairs(db, args.file, args.prefix,
                                          args.recipe or metad2a.METAD2A_RECIPE, args.duplicates)
            n, what = counts['added'], 'results'
            if counts['duplicates']:
                rule = {'first': 'kept the first copy', 'mean': 'stored the mean'}[args.duplicates]
                what += (f" ({counts['duplicates']} pair(s) listed more than once: {rule}, "
                         f'--duplicates {args.duplicates})')
            if counts['stored']:
                what += f" ({counts['stored']} pair(s) already in the database kept as stored)"
        elif args.kind == 'metad2a-split':
            if not args.pairs:
                raise CLIError('import metad2a-split needs --pairs (the pairs file it indexes)')
            n = metad2a.import_pair_split(db, args.file, args.pairs, args.name, args.num_val,
                                          args.prefix)
            what = f'validation pairs (pair split {args.name!r})'
        else:
            if not args.datasets:
                raise CLIError(f'import {args.kind} needs --datasets')
            if args.kind == 'metad2a-nasbench201':
                n = metad2a.import_nasbench201(db, args.file, args.datasets, bench_split)
            else:
                n = nb201.import_nb201_api(db, args.file, args.datasets, args.api,
                                           split=bench_split, progress=sys.stderr.isatty())
            what = 'results'
    print(f'imported {n} {what} from {args.file} into {args.db}')
    return 0


# ---------------------------------------------------------------------------- merge
def _add_merge(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        'merge', formatter_class=_Formatter, help='combine databases (e.g. labelling shards) without duplicates',
        description='Add everything of the inputs that OUTPUT lacks (sources, tasks, '
                    'recipes, results, latencies); OUTPUT is created when missing and '
                    'rewritten atomically. A result is identified by (task, architecture, '
                    'recipe, seed, epochs); the first copy wins.')
    p.add_argument('output', help='database to merge into')
    p.add_argument('inputs', nargs='+', help='databases to merge from')
    p.add_argument('--delete-inputs', action='store_true',
                   help='delete the input files after a successful merge')
    p.set_defaults(func=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    from d2a.pipeline.merge import merge
    counts = merge(args.output, args.inputs)
    if args.delete_inputs:
        for path in args.inputs:
            if Path(path).resolve() != Path(args.output).resolve():
                os.unlink(path)
    print(f"merged {len(args.inputs)} file(s) into {args.output}: added {counts['results']} "
          f"result(s), {counts['tasks']} task(s), {counts['classes']} class(es), "
          f"{counts['latency']} latency row(s)")
    return 0


# ---------------------------------------------------------------------------- info
def _add_info(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser('info', help='summarise a database', formatter_class=_Formatter,
                        description='Counts of sources, classes, tasks, architectures and '
                                    'results, and the accuracy range of each task.')
    p.add_argument('db', help='the meta-database')
    p.add_argument('--max-tasks', type=int, default=20, help='tasks listed (0: all)')
    p.add_argument('--json', action='store_true', help='print the summary as JSON')
    p.set_defaults(func=run_info)


def format_info(info: Dict[str, Any], max_tasks: int = 20) -> str:
    r"""The human-readable summary printed by ``d2a db info``."""
    lines = [f"meta-database  {info['path']}  (schema {info['schema_version']}, "
             f"d2a {info['d2a_version']}, created {info['created']})"]
    ex = info['feature_extractor'] or 'none'
    lines.append(f"features       {ex}, dim {info['feature_dim']}, images "
                 f"{info['image_size']}x{info['image_size']}")
    src = info['sources']
    n_cls = sum(s['classes'] for s in src.values())
    n_img = sum(s['images'] for s in src.values())
    lines.append(f'sources        {len(src)} ({n_cls:,} classes, {n_img:,} images)')
    for name, s in src.items():
        lines.append(f"  {name:<28} {s['classes']:>6,} classes {s['images']:>9,} images")
    nt = info['num_tasks']
    lines.append(f"tasks          {nt['meta-train']:,} meta-train, {nt['meta-test']:,} meta-test")
    lines.append(f"architectures  {info['num_architectures']:,}")
    lines.append(f"results        {info['num_results']:,}"
                 + (f"  (recipes: {', '.join(info['recipes'])})" if info['recipes'] else ''))
    devices = info['devices']
    lines.append('latency        ' + (f"{len(devices)} device(s): {', '.join(devices[:6])}"
                                      f"{', ...' if len(devices) > 6 else ''}" if devices else 'none'))
    splits = info.get('pair_splits') or {}
    if splits:
        lines.append('pair splits    ' + ', '.join(f'{n} ({c:,} pairs)' for n, c in splits.items()))
    tasks = list(info['tasks'].items())
    if tasks:
        shown = tasks if max_tasks <= 0 else tasks[:max_tasks]
        width = max(12, max(len(n) for n, _ in shown))
        lines.append('')
        lines.append(f"{'task':<{width}}  {'split':<10} {'classes':>7} {'results':>8} "
                     f"{'acc min':>8} {'mean':>7} {'max':>7}")
        for name, t in shown:
            acc = (f"{t['acc_min']:>8.2f} {t['acc_mean']:>7.2f} {t['acc_max']:>7.2f}"
                   if t['results'] else f"{'-':>8} {'-':>7} {'-':>7}")
            classes = t['classes'] or 'all'
            lines.append(f"{name:<{width}}  {t['split']:<10} {classes:>7} {t['results']:>8,} {acc}")
        if len(shown) < len(tasks):
            lines.append(f'... {len(tasks) - len(shown):,} more task(s) (--max-tasks 0 lists all)')
    return '\n'.join(lines)


def run_info(args: argparse.Namespace) -> int:
    from d2a.db.database import MetaDatabase
    with MetaDatabase.open(args.db) as db:
        info = db.info()
    print(json.dumps(info, indent=1) if args.json else format_info(info, args.max_tasks))
    return 0


# ---------------------------------------------------------------------------- check
def _add_check(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser('check', help='read every dataset of a database, verifying checksums',
                        formatter_class=_Formatter,
                        description='Read every dataset of DB, verifying the fletcher32 '
                                    'checksums d2a writes and the decompression of every '
                                    'chunk; name the first damaged dataset. `d2a train` runs '
                                    'the fast form (--no-features) before it starts.')
    p.add_argument('db', help='the meta-database')
    p.add_argument('--features', action=argparse.BooleanOptionalAction, default=True,
                   help='read the feature arrays too (the bulk of the file)')
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from d2a.db import check_file
    counts = check_file(args.db, features=args.features)
    note = (f", {counts['unchecked']:,} written without a checksum (read and decompressed "
            'only)' if counts['unchecked'] else '')
    print(f"{args.db}: ok, {counts['datasets']:,} datasets read "
          f"({counts['bytes'] / 2 ** 20:.1f} MiB){note}")
    return 0
