import pytest

from d2a.cost import LatencyTable
from d2a.graphs.nb201 import index_to_arch


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
