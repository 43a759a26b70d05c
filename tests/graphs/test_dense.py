import pytest
import torch
from torch_geometric.data import Batch

from d2a.graphs import archs_to_dense, batch_to_dense, dense_to_batch, get_space

NB201_ARCH = '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
def test_dense_round_trip(space_name):
    space = get_space(space_name)
    archs = space.sample(4)
    node_type, adj = archs_to_dense(space, archs)
    n = space.max_nodes
    assert node_type.shape == (4, n) and adj.shape == (4, n, n) and adj.dtype == torch.bool
    assert not adj.tril().any()  # topological order
    batch = dense_to_batch(node_type, adj)
    assert batch.num_graphs == 4 and batch.num_nodes == 4 * n
    for a, data in zip(archs, batch.to_data_list()):
        assert space.from_data(data) == a
    nt2, adj2 = batch_to_dense(Batch.from_data_list([space.to_data(a) for a in archs]), n)
    assert torch.equal(nt2, node_type) and torch.equal(adj2, adj)
    assert space.from_dense_batch(node_type, adj) == archs


def test_dense_errors():
    space = get_space('nb201')
    with pytest.raises(ValueError, match="architecture 1 \\('bad'\\)"):
        archs_to_dense(space, [NB201_ARCH, 'bad'])
    with pytest.raises(ValueError, match='graph 0 of the batch has 8 nodes'):
        batch_to_dense(Batch.from_data_list([space.to_data(NB201_ARCH)]), 9)
    with pytest.raises(ValueError, match='dense graphs'):
        dense_to_batch(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, 7))
