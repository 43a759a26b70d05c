import pytest
import torch
from torch_geometric.data import Batch, Data

from d2a.graphs import DAGGRUEncoder, GINEncoder, archs_to_dense, dense_to_batch, get_space
from d2a.graphs.encoders import topological_levels

ENCODERS = {
    'dag_gru': lambda t: DAGGRUEncoder(t, 16, 8),
    'dag_gru_fwd': lambda t: DAGGRUEncoder(t, 16, 8, bidirectional=False),
    'gin': lambda t: GINEncoder(t, 16, 8, num_layers=2),
    'gin_mean': lambda t: GINEncoder(t, 16, 8, bidirectional=False, pool='mean'),
}

NB201_A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
NB201_B = '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'


def _batch(space, archs):
    return Batch.from_data_list([space.to_data(a) for a in archs])


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
@pytest.mark.parametrize('name', list(ENCODERS))
def test_shapes_and_graph_order(space_name, name):
    torch.manual_seed(0)
    space = get_space(space_name)
    archs = space.sample(5)
    enc = ENCODERS[name](space.num_node_types)
    out = enc(_batch(space, archs))
    assert out.shape == (5, 8)
    perm = [3, 0, 4, 1, 2]
    assert torch.allclose(enc(_batch(space, [archs[i] for i in perm])), out[perm], atol=1e-5)
    # The vectorised dense-to-batch path gives the same result as from_data_list.
    assert torch.allclose(enc(dense_to_batch(*archs_to_dense(space, archs))), out, atol=1e-5)
    out.sum().backward()
    assert str(enc).startswith(enc.__class__.__name__)


@pytest.mark.parametrize('name', list(ENCODERS))
def test_node_relabelling_invariance(name):
    # Reordering the op nodes of an NB201 graph (START first, END last) relabels the same DAG.
    torch.manual_seed(0)
    space = get_space('nb201')
    enc = ENCODERS[name](space.num_node_types)
    data = space.to_data(NB201_A)
    perm = torch.tensor([0, 3, 1, 6, 2, 5, 4, 7])  # new position -> old node
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(8)
    moved = Data(node_type=data.node_type[perm], edge_index=inv[data.edge_index], num_nodes=8)
    a = enc(Batch.from_data_list([data, space.to_data(NB201_B)]))
    b = enc(Batch.from_data_list([moved, space.to_data(NB201_B)]))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a[0], a[1], atol=1e-5)


def test_topological_levels():
    edge_index = torch.tensor([[0, 0, 1, 2, 5], [1, 2, 3, 3, 6]])
    assert topological_levels(edge_index, 7).tolist() == [0, 1, 1, 2, 0, 0, 1]
    with pytest.raises(ValueError, match='cycle'):
        topological_levels(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)
    with pytest.raises(ValueError, match='self-loop'):
        topological_levels(torch.tensor([[1], [1]]), 3)


def test_bad_node_type():
    enc = DAGGRUEncoder(7, 16, 8)
    data = Data(node_type=torch.tensor([0, 9, 1]), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match='node_type'):
        enc(Batch.from_data_list([data]))
    with pytest.raises(ValueError, match="'pool'"):
        GINEncoder(7, pool='max')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('name', list(ENCODERS))
def test_cuda(name):
    space = get_space('nb201')
    enc = ENCODERS[name](space.num_node_types).cuda()
    out = enc(_batch(space, [NB201_A, NB201_B]).cuda())
    assert out.is_cuda and out.shape == (2, 8)


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
def test_dag_gru_writes_states_in_place_only_without_autograd(space_name):
    torch.manual_seed(0)
    space = get_space(space_name)
    enc = DAGGRUEncoder(space.num_node_types, 16, 8)
    batch = dense_to_batch(*archs_to_dense(space, space.sample(6)))
    with_grad = enc(batch)
    with_grad.sum().backward()  # the out-of-place path keeps what backward needs
    with torch.no_grad():
        assert torch.equal(enc(batch), with_grad.detach())
