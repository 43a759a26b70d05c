import pytest
import torch

from d2a.graphs import SearchSpace, get_space, list_spaces
from d2a.graphs.mbv3 import MBV3Space
from d2a.graphs.nb201 import NB201Space
from d2a.graphs.space import data_to_dense, dense_to_edge_index


def test_list_spaces():
    assert list_spaces() == ['mbv3', 'nb201']


@pytest.mark.parametrize('name, cls, max_nodes, num_types', [
    ('nb201', NB201Space, 8, 7),
    ('mbv3', MBV3Space, 22, 29),
])
def test_get_space(name, cls, max_nodes, num_types):
    space = get_space(name)
    assert isinstance(space, cls) and isinstance(space, SearchSpace)
    assert space.name == name
    assert space.max_nodes == max_nodes
    assert space.num_node_types == num_types
    assert space.node_types[:2] == ('START', 'END')
    assert name in repr(space)


def test_unknown_space():
    with pytest.raises(ValueError, match="unknown search space 'darts'.*mbv3, nb201"):
        get_space('darts')


def test_dense_to_edge_index():
    adj = torch.tensor([[0, 1, 1, 0],
                        [0, 0, 0, 1],
                        [0, 0, 0, 1],
                        [0, 0, 0, 0]])
    edge_index = dense_to_edge_index(adj)
    # Sorted by target, then source.
    assert edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 3, 3]]
    assert dense_to_edge_index(torch.zeros(3, 3, dtype=torch.long)).shape == (2, 0)


@pytest.mark.parametrize('name', ['nb201', 'mbv3'])
def test_dense_round_trip(name):
    space = get_space(name)
    arch = space.sample(1)[0]
    node_type, adj = data_to_dense(space.to_data(arch))
    assert torch.equal(dense_to_edge_index(adj), space.to_data(arch).edge_index)
    assert space.from_dense(node_type.tolist(), adj) == arch


def test_data_to_dense_bad_edges():
    data = get_space('nb201').to_data(get_space('nb201').sample(1)[0])
    data.edge_index = torch.tensor([[0], [8]])
    with pytest.raises(ValueError, match='outside 0..7'):
        data_to_dense(data)
    del data.node_type
    with pytest.raises(ValueError, match="no 'node_type'"):
        data_to_dense(data)


@pytest.mark.parametrize('name', ['nb201', 'mbv3'])
def test_edge_mask_is_upper_triangular(name):
    space = get_space(name)
    forced, free = space.edge_mask()
    assert forced.shape == free.shape == (space.max_nodes, space.max_nodes)
    assert not (forced | free).tril().any()
    assert not (forced & free).any()
