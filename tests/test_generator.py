import pytest
import torch

from d2a.generator import SetToGraphVAE
from d2a.graphs import get_space
from d2a.metrics import validity, vae_reconstruction_accuracy
from d2a.sets import pad_datasets

NB201_ARCHS = [
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|',
    '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
    '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|',
    '|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|',
]


def _model(space='nb201', **kwargs):
    return SetToGraphVAE(12, 16, 8, space=space, num_heads=2, **kwargs)


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
@pytest.mark.parametrize('set_encoder', ['set_transformer', 'deepsets'])
def test_forward_and_sample_shapes(space_name, set_encoder):
    torch.manual_seed(0)
    model = _model(space_name, set_encoder=set_encoder)
    space = get_space(space_name)
    node_type, adj = model.dense_targets(space.sample(2))
    x, mask = pad_datasets([torch.randn(3, 4, 12), torch.randn(2, 4, 12)])
    out = model(x, node_type, adj, class_mask=mask)
    assert set(out) == {'loss', 'recon', 'kl'}
    assert torch.allclose(out['loss'], out['recon'] + model.beta * out['kl'])
    out['loss'].backward()
    mu, logvar = model.encode(x, mask)
    assert mu.shape == logvar.shape == (2, 8)
    t, a = model.sample(torch.randn(3, 4, 12), 5)
    n = space.max_nodes
    assert t.shape == (5, n) and a.shape == (5, n, n)
    t, a = model.sample(x, 3, class_mask=mask, greedy=True)
    assert t.shape == (6, n)
    batch = model.sample_batch(x[0], 4)
    assert batch.num_graphs == 4 and batch.node_type.numel() == 4 * n
    archs = model.sample_archs(x[0], 4)
    assert len(archs) == 4 and all(a is not None for a in archs)  # constrained decoding
    assert "space='" in repr(model)


def test_bad_inputs():
    model = _model()
    node_type, adj = model.dense_targets(NB201_ARCHS[:2])
    with pytest.raises(ValueError, match='one dataset per graph'):
        model(torch.randn(3, 3, 4, 12), node_type, adj)
    with pytest.raises(ValueError, match='num_samples'):
        model.sample(torch.randn(3, 4, 12), 0)
    with pytest.raises(ValueError, match='set_encoder'):
        _model(set_encoder='mlp')


@pytest.mark.parametrize('constrained', [True, False])
def test_tiny_vae_learns(constrained):
    # Four (dataset, graph) pairs: the loss falls, decoding stays valid and the posterior
    # means decode to their graphs.
    torch.manual_seed(0)
    model = _model(constrained=constrained)
    x = torch.randn(4, 3, 5, 12) + 2 * torch.randn(4, 1, 1, 12)
    node_type, adj = model.dense_targets(NB201_ARCHS)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        loss = model(x, node_type, adj)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert sum(losses[-10:]) < 0.1 * sum(losses[:10])
    model.eval()
    gen = torch.Generator().manual_seed(0)
    samples = model.sample(x, 25, generator=gen)
    if constrained:
        assert validity('nb201', samples) == 1.0
    else:
        assert validity('nb201', samples) > 0.9
    assert vae_reconstruction_accuracy(model, x, NB201_ARCHS) == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda():
    model = _model().cuda()
    node_type, adj = model.dense_targets(NB201_ARCHS[:2])
    x = torch.randn(2, 3, 4, 12, device='cuda')
    assert model(x, node_type.cuda(), adj.cuda())['loss'].is_cuda
    t, a = model.sample(x[0], 3)
    assert t.is_cuda and a.is_cuda
