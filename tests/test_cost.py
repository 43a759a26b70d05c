import random

import pytest

from d2a.cost import LatencyTable, NB201CostModel
from d2a.graphs import get_space
from d2a.graphs.nb201 import index_to_arch
from d2a.nets.nb201 import count_flops, count_params


@pytest.mark.parametrize('C,N,num_classes', [(4, 1, 3), (8, 2, 10)])
def test_additive_costs_match_the_network(C, N, num_classes):
    model = NB201CostModel(C=C, N=N, image_size=16, num_classes=num_classes)
    for arch in get_space('nb201').sample(3, random.Random(C)):
        assert model.params(arch) == count_params(arch, C, N, 3, num_classes)
        assert model.flops(arch) == count_flops(arch, C, N, 16, 3, num_classes)


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
