import numpy as np
import pytest
import torch

from d2a.datasets.tasks import Task
from d2a.db import MetaDatabase, ResultRow


@pytest.fixture(autouse=True)
def one_thread():
    # Tests use tiny tensors: extra intra-op threads only add contention on small machines.
    num = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num)


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
