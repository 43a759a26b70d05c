r"""A tiny meta-database and tiny trained checkpoints shared by the training, search, plot
and command-line tests (imported by path: the tests folders are not packages)."""
from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch

NUM_CLASSES = 6
IMAGE_SIZE = 8
GENERATOR_ARGS = dict(hidden_channels=8, latent_channels=8, num_heads=2, num_blocks=1)
PREDICTOR_ARGS = dict(hidden_channels=8, graph_hidden_channels=8, out_channels=8,
                      mlp_channels=8, num_heads=2, num_blocks=1)
#: Options of a quick run (the rest are TrainConfig defaults).
QUICK = dict(epochs=1, batch_size=4, num_sample=3, top_k=2, val_fraction=0.34, val_samples=4,
             val_resamples=2, progress=False, device='cpu')


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    # The test machine is small and shared: one intra-op thread is faster for tiny models.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def class_images(seed: int, num_classes: int = NUM_CLASSES, per_class: int = 6,
                 size: int = IMAGE_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    r"""``[n, size, size, 3]`` uint8 images: a random pattern per class plus noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(num_classes):
        base = rng.integers(0, 256, size=(size, size, 3))
        for _ in range(per_class):
            noisy = base + rng.normal(0, 20, size=base.shape)
            images.append(np.clip(noisy, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.asarray(labels)


def write_image_folder(root: Path, seed: int = 1, num_classes: int = 3,
                       per_class: int = 4, size: int = 12) -> Path:
    from PIL import Image
    images, labels = class_images(seed, num_classes, per_class, size)
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / f'class{label}'
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f'{i}.png')
    return root


def build_db(path: Path, num_tasks: int = 6, num_archs: int = 6, seed: int = 0,
             pixel_size: int = 2) -> Path:
    r"""Raw-pixel features of :func:`class_images`, ``num_tasks`` 3-class tasks and
    accuracies that depend on the cell (convolutions help) plus task noise."""
    from d2a.datasets import Task
    from d2a.db import MetaDatabase, ResultRow
    from d2a.features import create_extractor, image_features
    from d2a.graphs import get_space
    rng = np.random.default_rng(seed)
    extractor = create_extractor('raw_pixels', in_channels=3, size=pixel_size)
    images, labels = class_images(seed)
    feats = image_features(extractor, images)
    archs = get_space('nb201').sample(num_archs, random.Random(seed))
    with MetaDatabase.create(path, image_size=IMAGE_SIZE) as db:
        db.set_feature_extractor('raw_pixels', extractor.out_channels, extractor.config())
        db.add_source('shapes')
        for c in range(NUM_CLASSES):
            db.add_class_features('shapes', f'c{c}', feats[labels == c])
        tasks = [Task(f't{i}', 'shapes',
                      [f'c{j}' for j in sorted(rng.choice(NUM_CLASSES, 3, replace=False))])
                 for i in range(num_tasks)]
        tasks.append(Task('test0', 'shapes', ['c0', 'c1', 'c2', 'c3'], 'meta-test'))
        db.add_tasks(tasks)
        db.add_recipe('quick', {'epochs': 1})
        rows = [ResultRow(t.name, a, 20.0 + 10.0 * a.count('conv') + float(rng.normal(0, 2)),
                          'quick') for t in tasks[:num_tasks] for a in archs]
        db.add_results(rows)
    return path


def train_config(kind: str, db: Path, out: Path, **overrides):
    from d2a.training.trainer import TrainConfig
    args = dict(GENERATOR_ARGS if kind == 'generator' else PREDICTOR_ARGS)
    args.update(overrides.pop('model_args', {}))
    return TrainConfig(kind=kind, db=str(db), out=str(out), model_args=args,
                       **{**QUICK, **overrides})


def train_both(db: Path, out: Path, **overrides) -> Dict[str, Dict]:
    from d2a.training.trainer import train
    with one_thread():
        return {kind: train(train_config(kind, db, out, **overrides))
                for kind in ('generator', 'predictor')}


def cli_train_args(kind: str, db: Path, out: Path) -> List[str]:
    args = GENERATOR_ARGS if kind == 'generator' else PREDICTOR_ARGS
    flags = ['train', kind, '--db', str(db), '--out', str(out), '--device', 'cpu',
             '--no-progress']
    for key, value in QUICK.items():
        if key not in ('progress', 'device'):
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags + ['--model-args'] + [f'{k}={v}' for k, v in args.items()]
