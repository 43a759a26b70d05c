r"""Seed noise, spread between configs and CPU cost of a MobileNetV3 recipe.

Trains a few OFA configs, from the smallest to the largest, with several seeds each on one
glyph task (``--classes`` characters of ``--script``, ``--images-per-class`` rendered at
``--image-size``, a quarter held out per class, images normalised by the training part's
channel statistics) and prints, per config, its parameters and MACs (the space's cost
model), the accuracy of each seed, mean ± std and the CPU seconds (``time.process_time``)
per network. Example::

    nice -n 19 .venv/bin/python bench/mbv3_recipe.py --threads 1 --seeds 0 1 \
        --json bench/results/mbv3_recipe.json
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

#: From the smallest config to the largest (every layer alike, or one random config).
CONFIGS = {
    'min (d2 k3 e3)': {'ks': [3] * 20, 'e': [3] * 20, 'd': [2] * 5},
    'random (seed 0)': None,
    'mid (d3 k5 e4)': {'ks': [5] * 20, 'e': [4] * 20, 'd': [3] * 5},
    'max (d4 k7 e6)': {'ks': [7] * 20, 'e': [6] * 20, 'd': [4] * 5},
}


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--script', default='greek_lower')
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--images-per-class', type=int, default=64)
    p.add_argument('--image-size', type=int, default=12)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    _common.setup_threads(args.threads)

    import random
    import dataclasses

    import numpy as np
    import torch

    from d2a.datasets import GlyphSource
    from d2a.datasets.tasks import split_per_class
    from d2a.features import channel_stats, images_to_tensor
    from d2a.graphs import get_space
    from d2a.graphs.mbv3 import config_to_arch, sample_config
    from d2a.nets import Recipe, train_and_evaluate

    recipe = Recipe.mbv3_mini()
    images = GlyphSource(args.script, images_per_class=args.images_per_class,
                         image_size=args.image_size, max_classes=args.classes).load()
    train_idx, test_idx = split_per_class(images.labels, 0.25, 0)
    mean, std = channel_stats(images.images[train_idx])
    x = images_to_tensor(images.images, mean, std)
    y = torch.from_numpy(np.asarray(images.labels)).long()
    cost = get_space('mbv3').cost_model(image_size=recipe.image_size or args.image_size,
                                         in_channels=int(x.size(1)),
                                         num_classes=len(images.classes),
                                         width_mult=recipe.width_mult)
    info = _common.machine_info(args.threads)
    print(_common.describe_machine(info))
    print(f'task: {len(images.classes)} classes of {args.script}, {len(train_idx)} training / '
          f'{len(test_idx)} test images of {args.image_size}x{args.image_size}; recipe '
          f'{recipe.recipe_id} {recipe}')
    rows, out = [], {'machine': info, 'recipe': recipe.to_dict(), 'configs': {}}
    for name in args.configs:
        cfg = CONFIGS[name] or sample_config(random.Random(0))
        arch = config_to_arch(cfg)
        accs, cpu = [], []
        for seed in args.seeds:
            start = time.process_time()
            res = train_and_evaluate(arch, x[train_idx], y[train_idx], x[test_idx], y[test_idx],
                                     dataclasses.replace(recipe, seed=seed), device='cpu',
                                     num_classes=len(images.classes))
            cpu.append(time.process_time() - start)
            accs.append(res.accuracy)
            print(f'  {name} seed {seed}: {res.accuracy:.1f}% (train {res.train_accuracy:.1f}%), '
                  f'{cpu[-1]:.1f} CPU s', flush=True)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out['configs'][name] = {'arch': arch, 'params': cost.params(arch),
                                'macs': cost.flops(arch), 'accuracy': accs, 'cpu_s': cpu}
        _common.write_json(args.json, out)
        rows.append([name, f'{cost.params(arch):,}', f'{cost.flops(arch) / 1e6:.2f}M',
                     ', '.join(f'{a:.1f}' for a in accs),
                     f'{statistics.fmean(accs):.1f} ± {std:.1f}',
                     f'{min(cpu):.1f}-{max(cpu):.1f}'])
    print(_common.format_table(['config', 'params', 'MACs', 'accuracy per seed', 'mean ± std',
                                'CPU s / net'], rows, markdown=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
