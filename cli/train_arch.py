r"""``d2a train-arch``: train a chosen architecture from scratch on a dataset.

The images are split per class into training and test parts (``--test-fraction``),
normalised with the training part's channel statistics, and the network of the
architecture (``--space nb201``: the NB201 network of a cell; ``--space mbv3``: the
MobileNetV3 of an OFA config, :class:`d2a.nets.MBV3Network`) is trained with the recipe of
:class:`d2a.nets.Recipe` (NB201 protocol by default; every setting is a flag). The output
folder receives ``model_state.pt`` (the ``nn.Module`` state dict with the architecture,
recipe, classes and normalisation), ``model.pt2`` (an exported program with a dynamic batch
size: ``torch.export.load(path).module()(images)`` runs it without d2a) and
``result.json`` (for ``mbv3`` with the OFA config ``{'ks', 'e', 'd'}``).
"""
from __future__ import annotations

import argparse
import sys

from d2a.cli.main import CLIError

def add_parser(sub: argparse._SubParsersAction) -> None:
    from d2a.nets.recipe import SCHEDULES, Recipe
    nb201 = Recipe.nb201()
    p = sub.add_parser('train-arch', help='train a chosen architecture from scratch',
                       description='Train the network of an architecture (an NB201 cell or a '
                                   'MobileNetV3 config) on an image dataset with the NB201 '
                                   'recipe and report its test accuracy.')
    p.add_argument('--space', choices=('nb201', 'mbv3'), default='nb201',
                   help='search space of --arch (default: nb201)')
    p.add_argument('--arch', required=True,
                   help="NB201 cell string; for --space mbv3 a MobileNetV3 string "
                        "('d4:k3e3,...|...') or an OFA config as JSON "
                        '(\'{"ks": [20 ints], "e": [20 ints], "d": [5 ints]}\')')
    p.add_argument('--dataset', required=True, metavar='PATH',
                   help='an image folder (one sub-folder per class), an .npz file or a '
                        "source spec such as 'digits' or 'glyphs:greek_lower'")
    p.add_argument('--out', required=True, metavar='DIR', help='output folder')
    p.add_argument('--test-fraction', type=float, default=0.2,
                   help='images per class held out for testing (default: 0.2)')
    g = p.add_argument_group('recipe (NB201 protocol defaults)')
    g.add_argument('--channels', '--C', dest='C', type=int, default=None,
                   help=f'C: first-stage channels, nb201 only ({nb201.C})')
    g.add_argument('--cells', '--N', dest='N', type=int, default=None,
                   help=f'N: cells per stage, nb201 only ({nb201.N})')
    g.add_argument('--width-mult', type=float, default=None,
                   help='MobileNetV3 width multiplier, mbv3 only (1.0)')
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
                   help=f'resize images to this side ({nb201.image_size}); for mbv3 it also '
                        'chooses the strides (fewer downsamplings below 65 pixels)')
    g.add_argument('--augment', action=argparse.BooleanOptionalAction, default=nb201.augment,
                   help='random crop and horizontal flip (off for data where flips change '
                        'the class)')
    g.add_argument('--seed', type=int, default=0, help='(0)')
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda' (default: auto)")
    p.add_argument('--progress', action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.set_defaults(func=run)


def _parse_arch(space: str, text: str) -> str:
    r"""The architecture string of ``--arch`` (for mbv3 also an OFA config in JSON)."""
    import json

    if space == 'nb201':
        from d2a.graphs.nb201 import parse_arch
        parse_arch(text)
        return text
    from d2a.graphs.mbv3 import config_to_arch, parse_arch
    if text.lstrip().startswith('{'):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise CLIError(f'--arch is not valid JSON: {e}') from None
        return config_to_arch(config)
    parse_arch(text)
    return text


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch

    from d2a.utils.atomic import atomic_path, atomic_write
    from d2a.datasets import open_source
    from d2a.datasets.tasks import split_per_class
    from d2a.features import channel_stats, images_to_tensor
    from d2a.nets.fit import train_and_evaluate
    from d2a.nets.recipe import Recipe
    from d2a.device import resolve_device

    arch = _parse_arch(args.space, args.arch)
    if not 0.0 < args.test_fraction < 1.0:
        raise CLIError(f'--test-fraction must be in (0, 1), got {args.test_fraction}')
    if args.space == 'mbv3' and (args.C is not None or args.N is not None):
        raise CLIError('--channels/--cells size NB201 networks; --space mbv3 uses --width-mult')
    if args.space == 'nb201' and args.width_mult is not None:
        raise CLIError('--width-mult sizes MobileNetV3 networks: use it with --space mbv3')
    nb201 = Recipe.nb201()
    sizes = (dict(space='mbv3', width_mult=1.0 if args.width_mult is None else args.width_mult)
             if args.space == 'mbv3' else
             dict(C=nb201.C if args.C is None else args.C,
                  N=nb201.N if args.N is None else args.N))
    recipe = Recipe(name='train-arch', epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                    weight_decay=args.weight_decay, schedule=args.schedule,
                    image_size=args.image_size, augment=args.augment, seed=args.seed, **sizes)
    source = open_source(args.dataset)
    images = source.load(image_size=args.image_size)
    images.require_classes(source.name, purpose='training and testing a classifier')
    train_idx, test_idx = split_per_class(images.labels, args.test_fraction, args.seed)
    mean, std = channel_stats(images.images[train_idx])
    x = images_to_tensor(images.images, mean, std)
    y = torch.from_numpy(images.labels)
    device = resolve_device(args.device)
    described = {'arch': arch, 'space': args.space}
    if args.space == 'mbv3':
        from d2a.graphs.mbv3 import parse_arch
        described['config'] = parse_arch(arch)
        print(f"OFA config: {json.dumps(described['config'], separators=(',', ':'))}")
    print(f'training {arch} on {source.name}: {len(images.classes)} classes, '
          f'{len(train_idx)} training / {len(test_idx)} test images, {recipe.epochs} epochs, '
          f'device {device}')
    result = train_and_evaluate(arch, x[train_idx], y[train_idx], x[test_idx], y[test_idx],
                                recipe, device=device, progress=args.progress,
                                num_classes=len(images.classes))
    out = Path(args.out)
    model = result.model.cpu().eval()
    if args.space == 'mbv3':
        described['strides'] = list(model.strides)
    with atomic_path(out / 'model_state.pt') as tmp:
        torch.save(dict(described, recipe=recipe.to_dict(), classes=images.classes, mean=mean,
                        std=std, in_channels=int(x.size(1)), state_dict=model.state_dict()),
                   tmp)
    # torch.export (TorchScript is deprecated): a graph with a dynamic batch size.
    program = torch.export.export(model, (x[:2].float(),),
                                  dynamic_shapes=({0: torch.export.Dim('batch', min=1)},))
    with atomic_path(out / 'model.pt2') as tmp:
        torch.export.save(program, tmp)
    report = dict(described, dataset=str(args.dataset), test_accuracy=result.accuracy,
                  train_accuracy=result.train_accuracy, train_loss=result.train_loss,
                  num_params=result.num_params, epochs=result.epochs,
                  recipe_id=result.recipe_id, recipe=recipe.to_dict(),
                  wall_time=result.wall_time, classes=images.classes)
    with atomic_write(out / 'result.json') as f:
        json.dump(report, f, indent=2)
    print(f'test accuracy {result.accuracy:.2f}% (train {result.train_accuracy:.2f}%), '
          f'{result.num_params:,} parameters, {result.wall_time:.1f}s')
    print(f'saved {out / "model_state.pt"}, {out / "model.pt2"}, {out / "result.json"}')
    return 0
