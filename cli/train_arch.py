r"""``d2a train-arch``: train a chosen NB201 cell from scratch on a dataset.

The images are split per class into training and test parts (``--test-fraction``),
normalised with the training part's channel statistics, and the NB201 network of the cell
is trained with the recipe of :class:`d2a.nets.Recipe` (NB201 protocol by default; every
setting is a flag). The output folder receives ``model_state.pt`` (the ``nn.Module`` state
dict with the architecture, recipe, classes and normalisation), ``model.pt2`` (an exported
program with a dynamic batch size: ``torch.export.load(path).module()(images)`` runs it
without d2a) and ``result.json``.
"""
from __future__ import annotations

import argparse
import sys

from d2a.cli.main import CLIError

def add_parser(sub: argparse._SubParsersAction) -> None:
    from d2a.nets.recipe import SCHEDULES, Recipe
    nb201 = Recipe.nb201()
    p = sub.add_parser('train-arch', help='train a chosen cell from scratch',
                       description='Train the NB201 network of a cell on an image dataset with '
                                   'the NB201 recipe and report its test accuracy.')
    p.add_argument('--arch', required=True, help='NB201 cell string')
    p.add_argument('--dataset', required=True, metavar='PATH',
                   help='an image folder (one sub-folder per class), an .npz file or a '
                        "source spec such as 'digits' or 'glyphs:greek_lower'")
    p.add_argument('--out', required=True, metavar='DIR', help='output folder')
    p.add_argument('--test-fraction', type=float, default=0.2,
                   help='images per class held out for testing (default: 0.2)')
    g = p.add_argument_group('recipe (NB201 protocol defaults)')
    g.add_argument('--channels', '--C', dest='C', type=int, default=nb201.C,
                   help=f'C: first-stage channels ({nb201.C})')
    g.add_argument('--cells', '--N', dest='N', type=int, default=nb201.N,
                   help=f'N: cells per stage ({nb201.N})')
    g.add_argument('--epochs', type=int, default=nb201.epochs, help=f'({nb201.epochs})')
    g.add_argument('--batch-size', type=int, default=nb201.batch_size,
                   help=f'({nb201.batch_size})')
    g.add_argument('--lr', type=float, default=nb201.lr, help=f'SGD learning rate ({nb201.lr})')
    g.add_argument('--momentum', type=float, default=nb201.momentum, help=f'({nb201.momentum})')
    g.add_argument('--nesterov', action=argparse.BooleanOptionalAction, default=nb201.nesterov)
    g.add_argument('--weight-decay', type=float, default=nb201.weight_decay,
                   help=f'({nb201.weight_decay})')
    g.add_argument('--schedule', choices=SCHEDULES, default=nb201.schedule,
                   help=f'({nb201.schedule})')
    g.add_argument('--image-size', type=int, default=nb201.image_size,
                   help=f'resize images to this side ({nb201.image_size})')
    g.add_argument('--augment', action=argparse.BooleanOptionalAction, default=nb201.augment,
                   help='random crop and horizontal flip (off for data where flips change '
                        'the class)')
    g.add_argument('--seed', type=int, default=0, help='(0)')
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda' (default: auto)")
    p.add_argument('--progress', action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch

    from d2a.utils.atomic import atomic_path, atomic_write
    from d2a.datasets import open_source
    from d2a.datasets.tasks import split_per_class
    from d2a.features import channel_stats, images_to_tensor
    from d2a.graphs.nb201 import parse_arch
    from d2a.nets.fit import train_and_evaluate
    from d2a.nets.recipe import Recipe
    from d2a.device import resolve_device

    parse_arch(args.arch)
    if not 0.0 < args.test_fraction < 1.0:
        raise CLIError(f'--test-fraction must be in (0, 1), got {args.test_fraction}')
    source = open_source(args.dataset)
    recipe = Recipe(name='train-arch', C=args.C, N=args.N, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                    nesterov=args.nesterov, weight_decay=args.weight_decay,
                    schedule=args.schedule, image_size=args.image_size, augment=args.augment,
                    seed=args.seed)
    images = source.load(image_size=args.image_size)
    images.require_classes(source.name, purpose='training and testing a classifier')
    train_idx, test_idx = split_per_class(images.labels, args.test_fraction, args.seed)
    mean, std = channel_stats(images.images[train_idx])
    x = images_to_tensor(images.images, mean, std)
    y = torch.from_numpy(images.labels)
    device = resolve_device(args.device)
    print(f'training {args.arch} on {source.name}: {len(images.classes)} classes, '
          f'{len(train_idx)} training / {len(test_idx)} test images, {recipe.epochs} epochs, '
          f'device {device}')
    result = train_and_evaluate(args.arch, x[train_idx], y[train_idx], x[test_idx], y[test_idx],
                                recipe, device=device, progress=args.progress,
                                num_classes=len(images.classes))
    out = Path(args.out)
    model = result.model.cpu().eval()
    with atomic_path(out / 'model_state.pt') as tmp:
        torch.save({'arch': args.arch, 'recipe': recipe.to_dict(), 'classes': images.classes,
                    'mean': mean, 'std': std, 'in_channels': int(x.size(1)),
                    'state_dict': model.state_dict()}, tmp)
    # torch.export (TorchScript is deprecated): a graph with a dynamic batch size.
    program = torch.export.export(model, (x[:2].float(),),
                                  dynamic_shapes=({0: torch.export.Dim('batch', min=1)},))
    with atomic_path(out / 'model.pt2') as tmp:
        torch.export.save(program, tmp)
    report = {'arch': args.arch, 'dataset': str(args.dataset), 'test_accuracy': result.accuracy,
              'train_accuracy': result.train_accuracy, 'train_loss': result.train_loss,
              'num_params': result.num_params, 'epochs': result.epochs,
              'recipe_id': result.recipe_id, 'wall_time': result.wall_time,
              'classes': images.classes}
    with atomic_write(out / 'result.json') as f:
        json.dump(report, f, indent=2)
    print(f'test accuracy {result.accuracy:.2f}% (train {result.train_accuracy:.2f}%), '
          f'{result.num_params:,} parameters, {result.wall_time:.1f}s')
    print(f'saved {out / "model_state.pt"}, {out / "model.pt2"}, {out / "result.json"}')
    return 0
