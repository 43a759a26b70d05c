import random

import pytest

from d2a.graphs import get_space
from d2a.graphs.nb201 import NB201CostModel, index_to_arch
from d2a.search import Constraints, LatencyTable, collect_candidates, parse_count

SPACE = get_space('nb201')


def test_constraints_reject_and_check_feasibility():
    cost = NB201CostModel(num_classes=3)
    limit = 400_000
    c = Constraints(max_params=limit, cost_model=cost)
    archs, stats = collect_candidates(lambda n: SPACE.sample(n, random.Random(len(str(n)))),
                                      SPACE, 20, c, batch_size=50, patience=5)
    assert all(cost.params(a) <= limit for a in archs)
    with pytest.raises(ValueError, match='max_params=1,000 .smallest network: '):
        Constraints(max_params=1_000, cost_model=cost).check_feasible()
    Constraints(max_params=cost.min_params(), cost_model=cost).check_feasible()
    with pytest.raises(ValueError, match='needs a latency table'):
        Constraints(max_latency=3.0)
    with pytest.raises(ValueError, match='positive'):
        Constraints(max_flops=-1, cost_model=cost)


@pytest.mark.parametrize('text,value', [('1.5M', 1.5e6), ('200k', 2e5), ('3e6', 3e6), (7, 7.0)])
def test_parse_count(text, value):
    assert parse_count(text) == value


def test_latency_table(tmp_path):
    path = tmp_path / 'lat.csv'
    path.write_text(f'index,arch,gpu,cpu\n0,{index_to_arch(0)},1.5,20\n1,{index_to_arch(1)},2.5,\n')
    table = LatencyTable(path, 'gpu')
    assert table.latency(index_to_arch(1)) == 2.5 and table.devices == ['gpu', 'cpu']
    assert LatencyTable(path, 'cpu').latency(index_to_arch(1)) is None
    assert table.latency(index_to_arch(2)) is None
    with pytest.raises(ValueError, match="no device 'tpu' .*gpu, cpu"):
        LatencyTable(path, 'tpu')
    with pytest.raises(FileNotFoundError):
        LatencyTable(tmp_path / 'none.csv', 'gpu')


def test_latency_table_of_garbage_rows_is_refused(tmp_path):
    path = tmp_path / 'lat.csv'
    path.write_text('index,arch,pixel3\n0,garbage,1.0\n1,|none~0|,2.0\n')
    with pytest.raises(ValueError, match='none of its 2 rows holds a nb201 architecture'):
        LatencyTable(path, 'pixel3')
