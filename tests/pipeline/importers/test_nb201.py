import re
from pathlib import Path

import pytest

from d2a.benchmark import read_table
from d2a.pipeline.importers.nb201 import NB201_RECIPE, import_help_latency, import_nb201_accuracy
from d2a.db import MetaDatabase

A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
B = '|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|'
SHARED = Path(__file__).resolve().parents[4] / 'shared' / 'data' / 'nb201'


def test_accuracy_and_latency(tmp_path):
    acc = tmp_path / 'accuracy.csv'
    acc.write_text(f'index,arch,cifar10,cifar100\n0,{A},94.1,73.0\n1,{B},80.5,50.25\n')
    lat = tmp_path / 'latency_ms.csv'
    lat.write_text(f'index,arch,gpu_1,pixel3\n0,{A},1.5,20\n1,{B},0.5,7\n')
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        assert import_nb201_accuracy(db, acc) == 4
        assert import_nb201_accuracy(db, acc) == 0  # no duplicates
        assert import_help_latency(db, lat, ['pixel3']) == 2
        archs, accs = db.task_results('cifar100')
        assert dict(zip(archs, accs.tolist())) == {A: 73.0, B: 50.25}
        assert db.task('cifar10').split == 'meta-test'
        assert db.latency('pixel3') == {A: 20.0, B: 7.0}
        assert set(db.results().recipe) == {NB201_RECIPE}
        with pytest.raises(ValueError, match="no column 'svhn'"):
            import_nb201_accuracy(db, acc, ['svhn'])


def test_bad_tables(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text(f'index,arch,cifar10\n0,{A},n/a\n')
    with pytest.raises(ValueError, match="bad.csv, line 2, column 'cifar10': 'n/a'"):
        read_table(bad, 'accuracy')
    bad.write_text('index,cifar10\n0,1\n')
    with pytest.raises(ValueError, match="no 'arch' column"):
        read_table(bad, 'accuracy')
    bad.write_text('index,arch,cifar10\n0,|bogus|,1.0\n')
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        with pytest.raises(ValueError, match=re.escape("'|bogus|' is not in space 'nb201'")):
            import_nb201_accuracy(db, bad)
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / 'none.csv', 'accuracy')


@pytest.mark.skipif(not (SHARED / 'accuracy.csv').is_file(), reason='shared NB201 data absent')
def test_shared_tables(tmp_path):
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        assert import_nb201_accuracy(db, SHARED / 'accuracy.csv', ['cifar10']) == 15625
        assert import_help_latency(db, SHARED / 'latency_ms.csv', ['raspi4']) == 15625
        _, accs = db.task_results('cifar10')
        assert abs(float(accs.max()) - 94.373) < 0.01


@pytest.mark.parametrize('importer,row_a,expected', [
    (import_nb201_accuracy, '94.1,', 3), (import_help_latency, ',20', 3)])
def test_empty_cells_are_missing_values(tmp_path, importer, row_a, expected):
    table = tmp_path / 'table.csv'
    table.write_text(f'index,arch,c1,c2\n0,{A},{row_a}\n1,{B},80.5,50.25\n')
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        assert importer(db, table) == expected
