import json
import shutil

import h5py
import numpy as np
import pytest

from d2a.datasets.tasks import Task
from d2a.db import SCHEMA_VERSION, MetaDatabase, ResultRow, validate_file

ARCH_A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
ARCH_B = '|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|'


def test_round_trip(db_path):
    with MetaDatabase.open(db_path) as db:
        assert db.sources() == ['src']
        assert db.classes('src') == ['a', 'b', 'c']
        assert db.features('src', 'b').shape == (5, 4)
        assert [t.name for t in db.tasks()] == ['t0', 't1', 'test']
        assert [t.name for t in db.tasks('meta-test')] == ['test']
        assert db.task('t1').classes == ['a', 'b', 'c']
        assert db.task_classes('test') == ('src', ['a', 'b', 'c'])
        assert db.architectures() == [ARCH_A, ARCH_B]
        r = db.results(task='t0')
        assert len(r) == 3 and list(r.seed) == [0, 1, 0]
        assert db.latency('gpu') == {ARCH_A: 1.5, ARCH_B: 2.5}
        assert db.recipes() == {'r1': {'recipe': {'epochs': 1}, 'data': {}}}
        attrs = db.attrs
        assert attrs['schema_version'] == SCHEMA_VERSION
        assert attrs['feature_config'] == {'in_channels': 1, 'size': 2}
        assert attrs['image_size'] == 8 and attrs['feature_extractor'] == 'raw_pixels'
        info = db.info()
        assert info['num_results'] == 4 and info['num_architectures'] == 2
        assert info['tasks']['t0']['acc_max'] == 60.0
        assert info['sources']['src'] == {'classes': 3, 'images': 14}


def test_plain_h5py_layout(db_path):
    with h5py.File(db_path, 'r') as f:
        assert f.attrs['format'] == 'd2a-metadatabase'
        assert f['sources/src/a'].shape == (6, 4)
        assert json.loads(f['sources/src'].attrs['spec'])['kind'] == 'digits'
        ptr = f['tasks/class_ptr'][()]
        assert list(f['tasks/classes'].asstr()[ptr[1]:ptr[2]]) == ['a', 'b', 'c']
        archs = f['archs/arch'].asstr()[()]
        assert archs[f['results/arch'][2]] == ARCH_B
        assert f['results/accuracy'].maxshape == (None,)
        assert list(f['latency/gpu/ms'][()]) == [1.5, 2.5]


def test_task_features_and_results(db_path):
    with MetaDatabase.open(db_path) as db:
        x = db.task_features('t0', 4, np.random.default_rng(0))
        assert x.shape == (2, 4, 4) and x.dtype == np.float32
        again = db.task_features('t0', 4, np.random.default_rng(0))
        assert np.array_equal(x, again)
        # sampled rows are rows of the class
        rows = {tuple(r) for r in db.features('src', 'a')}
        assert all(tuple(r) in rows for r in x[0])
        with pytest.raises(ValueError, match="class 'c'.*3 images.*num_sample=4"):
            db.task_features('t1', 4)
        assert db.task_features('t1', 4, replace=True).shape == (3, 4, 4)
        archs, accs = db.task_results('t0')
        assert dict(zip(archs, accs.tolist())) == {ARCH_A: 55.0, ARCH_B: 30.0}
        archs, accs = db.task_results('t0', average_seeds=False)
        assert len(archs) == 3


def test_duplicates_and_unknowns(db_path):
    with MetaDatabase.open(db_path, 'a') as db:
        assert db.add_results([ResultRow('t0', ARCH_A, 99.0, 'r1', 0, 1)]) == 0
        assert db.add_results([ResultRow('t0', ARCH_A, 99.0, 'r1', 2, 1)]) == 1
        with pytest.raises(ValueError, match="unknown task 'nope'"):
            db.add_results([ResultRow('nope', ARCH_A, 1.0, 'r1')])
        with pytest.raises(ValueError, match="unknown recipe 'r9'"):
            db.add_results([ResultRow('t0', ARCH_A, 1.0, 'r9')])
        with pytest.raises(ValueError, match='not in space'):
            db.add_architectures(['|bad~0|'])
        with pytest.raises(ValueError, match="task 't0' already exists"):
            db.add_task(Task('t0', 'src', ['a', 'c']))
        with pytest.raises(ValueError, match="no class 'zz'"):
            db.add_task(Task('t9', 'src', ['a', 'zz']))
        with pytest.raises(ValueError, match="recipe 'r1' already exists"):
            db.add_recipe('r1', {'other': 1})
        with pytest.raises(ValueError, match="class name 'x/y'"):
            db.add_class_features('src', 'x/y', np.zeros((1, 4)))
    with MetaDatabase.open(db_path) as db:
        assert db.num_results == 5


def test_mismatched_dims_keep_data(db_path):
    before = db_path.read_bytes()
    with pytest.raises(ValueError, match="class 'd' of source 'src' have dim 3.*feature_dim is 4"):
        with MetaDatabase.open(db_path, 'a') as db:
            db.add_class_features('src', 'd', np.zeros((2, 3)))
    assert db_path.read_bytes() == before  # the failed session changed nothing
    with MetaDatabase.open(db_path) as db:
        assert db.classes('src') == ['a', 'b', 'c']


def test_exception_discards_all_changes(db_path):
    with pytest.raises(RuntimeError):
        with MetaDatabase.open(db_path, 'a') as db:
            db.add_task(Task('t9', 'src', ['a']))
            raise RuntimeError('stop')
    with MetaDatabase.open(db_path) as db:
        assert 't9' not in [t.name for t in db.tasks()]
    assert not [p for p in db_path.parent.iterdir() if p.name.endswith('.tmp')]


def test_commit_makes_changes_visible(db_path):
    db = MetaDatabase.open(db_path, 'a')
    db.add_task(Task('t9', 'src', ['a']))
    with MetaDatabase.open(db_path) as reader:
        assert 't9' not in [t.name for t in reader.tasks()]
    db.commit()
    with MetaDatabase.open(db_path) as reader:
        assert 't9' in [t.name for t in reader.tasks()]
    db.close()


def test_create_refuses_existing(db_path):
    with pytest.raises(FileExistsError, match='already exists'):
        MetaDatabase.create(db_path)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MetaDatabase.open(db_path.parent / 'missing.h5')


@pytest.mark.parametrize('cut', [0.5, 0.9])
def test_truncated_file(db_path, tmp_path, cut):
    bad = tmp_path / 'bad.h5'
    data = db_path.read_bytes()
    bad.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(ValueError, match='bad.h5'):
        MetaDatabase.open(bad)


def test_garbage_and_foreign_files(tmp_path):
    junk = tmp_path / 'junk.h5'
    junk.write_bytes(b'not an hdf5 file at all')
    with pytest.raises(ValueError, match='junk.h5 is not a readable HDF5 file'):
        validate_file(junk)
    other = tmp_path / 'other.h5'
    with h5py.File(other, 'w') as f:
        f['x'] = 1
    with pytest.raises(ValueError, match="not a d2a meta-database"):
        MetaDatabase.open(other)


def test_other_schema_version(db_path, tmp_path):
    copy = tmp_path / 'v99.h5'
    shutil.copy(db_path, copy)
    with h5py.File(copy, 'a') as f:
        f.attrs['schema_version'] = 99
    with pytest.raises(ValueError, match='v99.h5: schema_version is 99'):
        MetaDatabase.open(copy, 'a')
    with h5py.File(copy, 'a') as f:
        f.attrs['schema_version'] = SCHEMA_VERSION
        f['results/seed'].resize((2,))
    with pytest.raises(ValueError, match='columns of /results differ'):
        MetaDatabase.open(copy)


def test_read_only(db_path):
    with MetaDatabase.open(db_path) as db:
        with pytest.raises(ValueError, match='read-only'):
            db.add_recipe('r2', {})


def test_latency_unknown_device(db_path):
    with MetaDatabase.open(db_path) as db:
        with pytest.raises(ValueError, match="no latency table for device 'cpu'.*gpu"):
            db.latency('cpu')


def _damage(path, dataset, out):
    # Overwrites bytes in the middle of the first stored chunk of ``dataset``.
    import h5py
    with h5py.File(path, 'r') as f:
        info = f[dataset].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    middle = info.byte_offset + info.size // 2
    data[middle:middle + 4] = bytes(b ^ 0x5A for b in data[middle:middle + 4])
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize('dataset', ['results/accuracy', 'sources/src/a', 'tasks/class_ptr'])
def test_damaged_bytes_inside_a_dataset_are_named(db_path, tmp_path, dataset):
    from d2a.db import check_file
    counts = check_file(db_path)
    assert counts['datasets'] > 10 and counts['unchecked'] == 0
    bad = _damage(db_path, dataset, tmp_path / 'bad.h5')
    with pytest.raises(ValueError, match=f'dataset /{dataset} is damaged'):
        check_file(bad)
    if dataset.startswith('sources/'):
        check_file(bad, features=False)  # the fast form leaves features to their reads
        with MetaDatabase.open(bad) as db, \
                pytest.raises(ValueError, match=f'dataset /{dataset} is damaged'):
            db.features('src', 'a')
    else:
        with pytest.raises(ValueError, match=f'dataset /{dataset} is damaged'):
            check_file(bad, features=False)
