from pathlib import Path

import pytest

from d2a.benchmark import BenchmarkTable, evaluate_arch
from d2a.graphs.nb201 import index_to_arch

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'nb201' / 'accuracy.csv'


@pytest.fixture
def table(tmp_path) -> Path:
    rows = [(0, 90.0, 70.0), (1, 93.0, 60.0), (2, 93.0, 65.0), (3, 80.0, '')]
    lines = ['index,arch,cifar10,cifar100']
    for i, a, b in rows:
        lines.append(f'{i},{index_to_arch(i)},{a},{b}')
    path = tmp_path / 'bench.csv'
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize('index,dataset,rank,percentile', [
    (1, 'cifar10', 1, 100.0),   # tied best: both rank 1
    (2, 'cifar10', 1, 100.0),
    (0, 'cifar10', 3, 50.0),
    (3, 'cifar10', 4, 25.0),
    (0, 'cifar100', 1, 100.0),  # the empty value is left out of the column
    (1, 'cifar100', 3, 100 / 3),
])
def test_rank_and_percentile(table, index, dataset, rank, percentile):
    r = evaluate_arch(index_to_arch(index), table, dataset)
    assert r.rank == rank
    assert r.percentile == pytest.approx(percentile)
    assert r.num_archs == (4 if dataset == 'cifar10' else 3)
    assert 'rank' in r.to_table() and '"accuracy"' in r.to_json()


def test_errors_name_what_is_wrong(table, tmp_path):
    t = BenchmarkTable(table)
    with pytest.raises(ValueError, match="no column 'cifar' .*cifar10, cifar100"):
        t.evaluate(index_to_arch(0), 'cifar')
    with pytest.raises(ValueError, match='is not in benchmark table'):
        t.evaluate(index_to_arch(10), 'cifar10')
    with pytest.raises(ValueError, match='unknown op'):
        t.evaluate('|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|', 'cifar10')
    with pytest.raises(ValueError, match="has no 'cifar100' value"):
        t.evaluate(index_to_arch(3), 'cifar100')
    with pytest.raises(FileNotFoundError):
        BenchmarkTable(tmp_path / 'missing.csv')
    bad = tmp_path / 'bad.csv'
    bad.write_text('index,name,acc\n0,x,1\n')
    with pytest.raises(ValueError, match="'arch' column"):
        BenchmarkTable(bad)


def test_garbage_and_repeated_rows_are_reported_not_ranked(table, tmp_path):
    path = tmp_path / 'dirty.csv'
    path.write_text(table.read_text() + 'x,|garbage|,99.0,99.0\n'
                    + f'y,{index_to_arch(0)},99.5,1.0\n' + '\n' + 'z,not-a-cell,98.0,1.0\n')
    with pytest.warns(UserWarning) as caught:
        r = evaluate_arch(index_to_arch(1), path, 'cifar10')
    messages = [str(w.message) for w in caught]
    assert any('skipped 2 rows whose arch is not a nb201 string (first: line 6' in m
               for m in messages)
    assert any('skipped 1 repeated architecture (first: line 7 repeats line 2)' in m
               for m in messages)
    # Neither the garbage rows nor the later copy of cell 0 (99.5) are counted.
    assert (r.rank, r.num_archs, r.best_accuracy) == (1, 4, 93.0)
    only = tmp_path / 'only_garbage.csv'
    only.write_text('index,arch,gpu\n0,abc,1.0\n1,def,2.0\n')
    with pytest.raises(ValueError, match='none of its 2 rows holds a nb201 architecture '
                                         r'\(line 2: .*abc'):
        BenchmarkTable(only)


@pytest.mark.skipif(not SHARED.is_file(), reason='NB201 accuracy table not available')
def test_real_nb201_table():
    t = BenchmarkTable(SHARED)
    assert len(t) == 15625
    best = t.column('cifar10').argmax()
    r = t.evaluate(t.archs[best], 'cifar10')
    assert r.rank == 1 and r.accuracy == pytest.approx(94.373, abs=1e-3)
