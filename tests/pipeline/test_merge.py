import numpy as np
import pytest

from d2a.datasets.tasks import Task
from d2a.db import MetaDatabase, ResultRow
from d2a.pipeline.merge import merge

ARCH = '|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|'


def _shard(path, rows, dim=4):
    with MetaDatabase.create(path, 'raw_pixels', dim, {}, 8) as db:
        db.add_tasks([Task('t0', 'src', ['a', 'b']), Task('t1', 'src', ['a', 'b', 'c'])])
        db.add_recipe('r1', {'recipe': {'epochs': 1}, 'data': {}})
        db.add_results(rows)
    return path


def test_merge_without_duplicates(db_path, tmp_path):
    s0 = _shard(tmp_path / 's0.h5', [ResultRow('t0', ARCH, 10.0, 'r1', 0, 1),
                                     ResultRow('t1', ARCH, 11.0, 'r1', 0, 1)])
    s1 = _shard(tmp_path / 's1.h5', [ResultRow('t1', ARCH, 99.0, 'r1', 0, 1),  # duplicate key
                                     ResultRow('t1', ARCH, 12.0, 'r1', 1, 1)])
    counts = merge(db_path, [s0, s1])
    assert counts['results'] == 3
    assert merge(db_path, [s0, s1])['results'] == 0  # idempotent
    with MetaDatabase.open(db_path) as db:
        r = db.results(task='t1')
        assert sorted(r.accuracy.tolist()) == [11.0, 12.0, 20.0]
        assert db.classes('src') == ['a', 'b', 'c']  # features kept


def test_merge_into_new_file(db_path, tmp_path):
    out = tmp_path / 'merged.h5'
    merge(out, [db_path])
    with MetaDatabase.open(out) as db, MetaDatabase.open(db_path) as src:
        assert db.info()['num_results'] == src.info()['num_results']
        assert np.array_equal(db.features('src', 'a'), src.features('src', 'a'))
        assert db.latency('gpu') == src.latency('gpu')
        assert db.attrs['feature_config'] == src.attrs['feature_config']


def test_merge_conflicts_leave_output_untouched(db_path, tmp_path):
    other = tmp_path / 'other.h5'
    with MetaDatabase.create(other, 'small_cnn', 3) as db:
        db.add_source('src2')
        db.add_class_features('src2', 'a', np.zeros((2, 3)))
    before = db_path.read_bytes()
    with pytest.raises(ValueError, match="features come from 'small_cnn' \\(dim 3\\)"):
        merge(db_path, [other])
    assert db_path.read_bytes() == before
    clash = tmp_path / 'clash.h5'
    with MetaDatabase.create(clash) as db:
        db.add_task(Task('t0', 'src', ['c']))
    with pytest.raises(ValueError, match="task 't0' already exists with another definition"):
        merge(db_path, [clash])
    assert db_path.read_bytes() == before


def test_pair_splits_are_stored_and_merged(db_path, tmp_path):
    ARCH_A, ARCH_B = ARCH, ARCH.replace('skip_connect~0', 'nor_conv_3x3~0')
    with MetaDatabase.open(db_path, 'a') as db:
        assert db.add_pair_split('val', [('t0', ARCH_A), ('t1', ARCH_B), ('t0', ARCH_A)]) == 2
        assert db.add_pair_split('val', [('t1', ARCH_B), ('t0', ARCH_A)]) == 0  # the same
        with pytest.raises(ValueError, match="pair split 'val' already exists with other"):
            db.add_pair_split('val', [('t0', ARCH_B)])
        with pytest.raises(ValueError, match="names unknown task 'nope'"):
            db.add_pair_split('other', [('nope', ARCH_A)])
        assert db.info()['pair_splits'] == {'val': 2}
    out = tmp_path / 'merged.h5'
    assert merge(out, [db_path])['pair_splits'] == 1
    with MetaDatabase.open(out) as db:
        assert db.pair_splits() == ['val'] and db.pair_split('val') == [('t0', ARCH_A),
                                                                        ('t1', ARCH_B)]
        with pytest.raises(ValueError, match="no pair split 'x' .pair splits: val"):
            db.pair_split('x')
