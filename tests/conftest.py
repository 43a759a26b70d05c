import contextlib
import importlib
import random
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest
import torch

from d2a.datasets.tasks import Task
from d2a.db import MetaDatabase, ResultRow


@pytest.fixture(autouse=True)
def one_thread():
    # Tests use tiny tensors: extra intra-op threads only add contention on small machines.
    with _threads(1):
        yield


# ----------------------------------------------------------------------------- a small database
# Two NB201 cells (test_database.py checks results against the same strings).
ARCH_A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
ARCH_B = '|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|'


def fill(db: MetaDatabase, dim: int = 4, seed: int = 0) -> None:
    r"""Two sources, three tasks, two recipes' worth of results and a latency table."""
    rng = np.random.default_rng(seed)
    db.add_source('src', {'kind': 'digits', 'name': None}, [0.5], [0.25], 1)
    for c, n in (('a', 6), ('b', 5), ('c', 3)):
        db.add_class_features('src', c, rng.normal(size=(n, dim)))
    db.add_tasks([Task('t0', 'src', ['a', 'b']), Task('t1', 'src', ['a', 'b', 'c']),
                  Task('test', 'src', [], 'meta-test')])
    db.add_recipe('r1', {'recipe': {'epochs': 1}, 'data': {}})
    db.add_results([ResultRow('t0', ARCH_A, 50.0, 'r1', 0, 1, 0.5),
                    ResultRow('t0', ARCH_A, 60.0, 'r1', 1, 1, 0.5),
                    ResultRow('t0', ARCH_B, 30.0, 'r1', 0, 1, 0.4),
                    ResultRow('t1', ARCH_B, 20.0, 'r1', 0, 1, 0.4)])
    db.add_latency('gpu', [ARCH_A, ARCH_B], [1.5, 2.5])


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / 'meta.h5'
    with MetaDatabase.create(path, 'raw_pixels', 4, {'in_channels': 1, 'size': 2}, 8) as db:
        fill(db)
    return path


# ----------------------------------------------------------------------------- tiny models
class Tiny:
    r"""A tiny meta-database and tiny trained checkpoints for the training, search, plot and
    command-line tests (the :func:`tiny` fixture; :func:`tiny_db` and :func:`tiny_run` are
    built once per session)."""
    NUM_CLASSES = 6
    IMAGE_SIZE = 8
    GENERATOR_ARGS = dict(hidden_channels=8, latent_channels=8, num_heads=2, num_blocks=1)
    PREDICTOR_ARGS = dict(hidden_channels=8, graph_hidden_channels=8, out_channels=8,
                          mlp_channels=8, num_heads=2, num_blocks=1)
    #: Options of a quick run (the rest are TrainConfig defaults).
    QUICK = dict(epochs=1, batch_size=4, num_sample=3, top_k=2, val_fraction=0.34,
                 val_samples=4, val_resamples=2, progress=False, device='cpu')

    @classmethod
    def class_images(cls, seed: int, num_classes: int = NUM_CLASSES, per_class: int = 6,
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

    @classmethod
    def write_image_folder(cls, root: Path, seed: int = 1, num_classes: int = 3,
                           per_class: int = 4, size: int = 12) -> Path:
        from PIL import Image
        images, labels = cls.class_images(seed, num_classes, per_class, size)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = root / f'class{label}'
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f'{i}.png')
        return root

    @classmethod
    def build_db(cls, path: Path, num_tasks: int = 6, num_archs: int = 6, seed: int = 0,
                 pixel_size: int = 2) -> Path:
        r"""Raw-pixel features of :meth:`class_images`, ``num_tasks`` 3-class tasks and
        accuracies that depend on the cell (convolutions help) plus task noise."""
        from d2a.features import create_extractor, image_features
        from d2a.graphs import get_space
        rng = np.random.default_rng(seed)
        extractor = create_extractor('raw_pixels', in_channels=3, size=pixel_size)
        images, labels = cls.class_images(seed)
        feats = image_features(extractor, images)
        archs = get_space('nb201').sample(num_archs, random.Random(seed))
        with MetaDatabase.create(path, image_size=cls.IMAGE_SIZE) as db:
            db.set_feature_extractor('raw_pixels', extractor.out_channels, extractor.config())
            db.add_source('shapes')
            for c in range(cls.NUM_CLASSES):
                db.add_class_features('shapes', f'c{c}', feats[labels == c])
            tasks = [Task(f't{i}', 'shapes',
                          [f'c{j}' for j in sorted(rng.choice(cls.NUM_CLASSES, 3, replace=False))])
                     for i in range(num_tasks)]
            tasks.append(Task('test0', 'shapes', ['c0', 'c1', 'c2', 'c3'], 'meta-test'))
            db.add_tasks(tasks)
            db.add_recipe('quick', {'epochs': 1})
            rows = [ResultRow(t.name, a, 20.0 + 10.0 * a.count('conv') + float(rng.normal(0, 2)),
                              'quick') for t in tasks[:num_tasks] for a in archs]
            db.add_results(rows)
        return path

    @classmethod
    def train_config(cls, kind: str, db: Path, out: Path, **overrides):
        from d2a.training.config import TrainConfig
        args = dict(cls.GENERATOR_ARGS if kind == 'generator' else cls.PREDICTOR_ARGS)
        args.update(overrides.pop('model_args', {}))
        return TrainConfig(kind=kind, db=str(db), out=str(out), model_args=args,
                           **{**cls.QUICK, **overrides})

    @classmethod
    def train_both(cls, db: Path, out: Path, **overrides) -> Dict[str, Dict]:
        from d2a.training.trainer import train
        with _threads(1):
            return {kind: train(cls.train_config(kind, db, out, **overrides))
                    for kind in ('generator', 'predictor')}

    @classmethod
    def cli_train_args(cls, kind: str, db: Path, out: Path) -> List[str]:
        args = cls.GENERATOR_ARGS if kind == 'generator' else cls.PREDICTOR_ARGS
        flags = ['train', kind, '--db', str(db), '--out', str(out), '--device', 'cpu',
                 '--no-progress']
        for key, value in cls.QUICK.items():
            if key not in ('progress', 'device'):
                flags += [f"--{key.replace('_', '-')}", str(value)]
        return flags + ['--model-args'] + [f'{k}={v}' for k, v in args.items()]


@contextlib.contextmanager
def _threads(num: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope='session')
def tiny() -> Tiny:
    return Tiny()


@pytest.fixture(scope='session')
def tiny_db(tmp_path_factory) -> Path:
    r"""A tiny meta-database (read it, do not change it)."""
    return Tiny.build_db(tmp_path_factory.mktemp('tiny_db') / 'tiny.h5')


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory, tiny_db) -> Dict[str, Path]:
    r"""``{'db', 'ckpt', 'folder', 'root'}``: checkpoints trained for one epoch on
    :func:`tiny_db` and an image folder to search for (read them, do not change them)."""
    root = tmp_path_factory.mktemp('tiny_run')
    Tiny.train_both(tiny_db, root / 'ckpt')
    return {'db': tiny_db, 'ckpt': root / 'ckpt', 'root': root,
            'folder': Tiny.write_image_folder(root / 'images')}


# ----------------------------------------------------------------------------- bench scripts
BENCH = Path(__file__).resolve().parent.parent / 'bench'


@pytest.fixture
def bench(monkeypatch):
    r"""Imports a script of ``bench/`` by name (``bench/`` is on ``sys.path`` for the test)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module
