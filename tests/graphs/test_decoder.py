import itertools

import pytest
import torch

from d2a.graphs import DAGDecoder, archs_to_dense, get_space

NB201_ARCHS = [
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|',
    '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
    '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|',
]


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
@pytest.mark.parametrize('constrained', [True, False])
def test_shapes_and_validity(space_name, constrained):
    torch.manual_seed(0)
    space = get_space(space_name)
    dec = DAGDecoder.from_space(space, 8, 16, constrained=constrained)
    node_type, adj = archs_to_dense(space, space.sample(3))
    z = torch.randn(3, 8)
    ll = dec.log_likelihood(z, node_type, adj)
    assert ll.shape == (3, ) and (ll <= 0).all()
    ll.sum().backward()
    for greedy in (False, True):
        t, a = dec.sample(torch.randn(50, 8), greedy=greedy)
        assert t.shape == (50, space.max_nodes) and a.shape == (50, space.max_nodes, space.max_nodes)
        assert not a.tril().any() and (t[:, 0] == 0).all() and (t[:, -1] == 1).all()
        if constrained:  # valid by construction
            assert all(s is not None for s in space.from_dense_batch(t, a))
    assert 'constrained' in repr(dec)


def test_log_likelihood_is_normalised():
    # Under the NB201 rules the decoder models the 5^6 op choices: probabilities sum to 1.
    torch.manual_seed(0)
    space = get_space('nb201')
    dec = DAGDecoder.from_space(space, 4, 8)
    ops = torch.tensor(list(itertools.product(range(2, 7), repeat=6)))
    node_type = torch.cat([torch.zeros(len(ops), 1, dtype=torch.long), ops,
                           torch.ones(len(ops), 1, dtype=torch.long)], 1)
    adj = dec.forced.expand(len(ops), -1, -1)
    assert space.from_dense(node_type[1234].tolist(), adj[0]) is not None
    with torch.no_grad():
        ll = dec.log_likelihood(torch.randn(1, 4).expand(len(ops), -1), node_type, adj)
    assert abs(float(ll.exp().sum()) - 1.0) < 1e-4


def test_sampling_follows_log_likelihood():
    torch.manual_seed(0)
    space = get_space('nb201')
    dec = DAGDecoder.from_space(space, 4, 8)
    with torch.no_grad():
        dec.type_mlp[2].weight.mul_(20.0)  # peaked distributions
    z = torch.randn(1, 4)
    t, a = dec.sample(z.expand(20000, -1), generator=torch.Generator().manual_seed(0))
    archs = space.from_dense_batch(t, a)
    top = max(set(archs), key=archs.count)
    nt, adj = archs_to_dense(space, [top])
    with torch.no_grad():
        p = float(dec.log_likelihood(z, nt, adj).exp())
    assert p > 0.05
    assert abs(archs.count(top) / len(archs) - p) < 0.02


@pytest.mark.parametrize('constrained', [True, False])
def test_overfit_three_graphs_greedy(constrained):
    # Edges are learned too when unconstrained; greedy decoding must return the targets.
    torch.manual_seed(0)
    space = get_space('nb201')
    dec = DAGDecoder.from_space(space, 8, 32, constrained=constrained)
    node_type, adj = archs_to_dense(space, NB201_ARCHS)
    z = torch.randn(3, 8)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    for _ in range(150):
        loss = -dec.log_likelihood(z, node_type, adj).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t, a = dec.sample(z, greedy=True)
    assert torch.equal(t, node_type) and torch.equal(a, adj)
    assert space.from_dense_batch(t, a) == NB201_ARCHS


def test_constraint_errors():
    space = get_space('nb201')
    dec = DAGDecoder.from_space(space, 4, 8)
    node_type, adj = archs_to_dense(space, NB201_ARCHS[:1])
    z = torch.randn(1, 4)
    bad = adj.clone()
    bad[0, 0, 7] = True
    with pytest.raises(ValueError, match='disallowed edge 0 -> 7'):
        dec.log_likelihood(z, node_type, bad)
    bad = adj.clone()
    bad[0, 0, 1] = False
    with pytest.raises(ValueError, match='missing a required edge 0 -> 1'):
        dec.log_likelihood(z, node_type, bad)
    wrong = node_type.clone()
    wrong[0, 3] = 1
    with pytest.raises(ValueError, match='node 3 has type 1'):
        dec.log_likelihood(z, wrong, adj)
    with pytest.raises(ValueError, match="latent 'z'"):
        dec.sample(torch.randn(2, 5))
    with pytest.raises(ValueError, match='node types'):
        DAGDecoder(4, 8, 6, 8, space=space)


def test_mbv3_depth_rule_in_training():
    space = get_space('mbv3')
    dec = DAGDecoder.from_space(space, 4, 8)
    node_type, adj = archs_to_dense(space, space.sample(1))
    node_type[0, 2] = 2 + 9 * ((int(node_type[0, 1]) - 2) // 9 + 1) % 27  # other depth
    with pytest.raises(ValueError, match='node 2'):
        dec.log_likelihood(torch.randn(1, 4), node_type, adj)
    free = DAGDecoder.from_space(space, 4, 8, constrained=False)
    assert torch.isfinite(free.log_likelihood(torch.randn(1, 4), node_type, adj)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
def test_cuda(space_name):
    space = get_space(space_name)
    dec = DAGDecoder.from_space(space, 8, 16, constrained=False).cuda()
    node_type, adj = archs_to_dense(space, space.sample(3))
    z = torch.randn(3, 8, device='cuda')
    assert dec.log_likelihood(z, node_type.cuda(), adj.cuda()).is_cuda
    t, a = dec.sample(z)
    assert t.is_cuda and dense_to_batch(t, a).edge_index.is_cuda
