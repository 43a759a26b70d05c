import numpy as np
import pytest
import torch

from d2a.graphs import archs_to_dense, dense_to_batch, get_space
from d2a.predictor import MetaPredictor

NB201_ARCHS = [
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|',
    '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
    '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|',
    '|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|',
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|',
]
ACCS = [93.7, 85.9, 10.0, 88.1, 94.2]


def _batch(space, archs):
    return dense_to_batch(*archs_to_dense(space, archs))


def _model(space='nb201', **kwargs):
    return MetaPredictor(12, 8, 16, 8, 32, space=space, num_heads=2, **kwargs)


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
@pytest.mark.parametrize('graph_encoder', ['dag_gru', 'gin'])
def test_shapes(space_name, graph_encoder):
    torch.manual_seed(0)
    space = get_space(space_name)
    model = _model(space_name, graph_encoder=graph_encoder)
    batch = _batch(space, space.sample(3))
    assert model(torch.randn(3, 2, 4, 12), batch).shape == (3, )
    one = model(torch.randn(2, 4, 12), batch)  # one dataset for every graph
    assert one.shape == (3, )
    mask = torch.tensor([[True, True, False]] * 3)
    assert model(torch.randn(3, 3, 4, 12), batch, class_mask=mask).shape == (3, )
    graph_only = _model(space_name, graph_encoder=graph_encoder, use_dataset=False)
    assert graph_only.set_encoder is None
    assert graph_only(None, batch).shape == (3, )
    assert 'use_dataset' in repr(model)


def test_target_standardisation():
    model = _model()
    model.set_target_stats(torch.tensor(ACCS))
    assert {'y_mean', 'y_std'} <= set(model.state_dict())
    y = torch.tensor(ACCS)
    assert torch.allclose(model.unstandardize(model.standardize(y)), y)
    batch = _batch(get_space('nb201'), NB201_ARCHS)
    x = torch.randn(2, 4, 12)
    raw = model(x, batch, standardized=True)
    assert torch.allclose(model(x, batch), raw * y.std() + y.mean(), atol=1e-4)
    with pytest.raises(ValueError, match='finite'):
        model.set_target_stats([float('nan')])


def test_overfits_a_few_points():
    torch.manual_seed(0)
    space = get_space('nb201')
    model = _model()
    batch = _batch(space, NB201_ARCHS)
    x = torch.randn(5, 3, 4, 12)
    y = torch.tensor(ACCS)
    model.set_target_stats(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model.loss(x, batch, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.01
    assert torch.allclose(model(x, batch), y, atol=1.0)


@pytest.mark.parametrize('graph_encoder', ['dag_gru', 'gin'])
def test_fit_query(graph_encoder):
    model = _model(graph_encoder=graph_encoder, use_dataset=False)
    loss = model.fit(NB201_ARCHS, ACCS, epochs=60, batch_size=4, lr=3e-3)
    assert loss < 0.05
    pred = model.query(NB201_ARCHS)
    assert isinstance(pred, np.ndarray) and pred.shape == (5, )
    assert np.abs(pred - np.array(ACCS)).max() < 0.3 * np.std(ACCS, ddof=1)
    # Deterministic for a seed.
    again = _model(graph_encoder=graph_encoder, use_dataset=False)
    again.fit(NB201_ARCHS, ACCS, epochs=60, batch_size=4, lr=3e-3)
    assert np.allclose(again.query(NB201_ARCHS), pred, atol=1e-4)


def test_pretrain_then_fit():
    model = _model(use_dataset=False, graph_encoder='gin')
    space = get_space('nb201')
    loss = model.pretrain(space.sample(64), epochs=2, batch_size=32)
    assert np.isfinite(loss)
    model.fit(NB201_ARCHS, ACCS, epochs=5, pretrain_archs=space.sample(32), pretrain_epochs=1)
    assert model.query(NB201_ARCHS[:2]).shape == (2, )


def test_bad_inputs():
    batch = _batch(get_space('nb201'), NB201_ARCHS[:2])
    with pytest.raises(ValueError, match='use_dataset=True'):
        _model()(None, batch)
    with pytest.raises(ValueError, match='graph-only'):
        _model().fit(NB201_ARCHS, ACCS)
    with pytest.raises(ValueError, match='one dataset per graph'):
        _model()(torch.randn(3, 2, 4, 12), batch)
    with pytest.raises(ValueError, match='accuracies'):
        _model(use_dataset=False).fit(NB201_ARCHS, ACCS[:2])
    with pytest.raises(ValueError, match='graph_encoder'):
        _model(graph_encoder='gat')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda():
    model = _model().cuda()
    batch = _batch(get_space('nb201'), NB201_ARCHS[:2]).cuda()
    assert model(torch.randn(2, 4, 12, device='cuda'), batch).is_cuda
    graph_only = _model(use_dataset=False).cuda()
    graph_only.fit(NB201_ARCHS, ACCS, epochs=2)
    assert graph_only.query(NB201_ARCHS).shape == (5, )


def test_dataset_statistics_see_class_count_and_separability():
    from d2a.predictor import NUM_STATISTICS, dataset_statistics
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 1, 6, generator=gen) * 4
    separable = centres + 0.1 * torch.randn(5, 10, 6, generator=gen)
    mixed = torch.randn(5, 10, 6, generator=gen)
    s = dataset_statistics(torch.stack([separable, mixed]))
    assert s.shape == (2, NUM_STATISTICS)
    assert torch.allclose(s[:, 0], torch.log(torch.tensor(5.0)))
    assert s[0, 1] > 0.95 and s[1, 1] < 0.6  # nearest-class-mean accuracy
    assert s[0, 2] > s[1, 2] + 3  # between / within variance
    # padded classes are ignored
    padded = torch.cat([separable, torch.zeros(2, 10, 6)])[None]
    mask = torch.tensor([[True] * 5 + [False] * 2])
    assert torch.allclose(dataset_statistics(padded, mask), s[:1], atol=1e-5)


def test_residual_head_starts_as_the_dataset_independent_prior():
    torch.manual_seed(0)
    model = _model(head='residual', descriptors=True)
    batch = _batch(get_space('nb201'), NB201_ARCHS)
    a, b = model(torch.randn(2, 4, 12), batch), model(torch.randn(3, 4, 12) * 5, batch)
    assert torch.allclose(a, b)  # the residual is zero at initialisation
    with torch.no_grad():
        model.lin_residual.weight.normal_()
    a, b = model(torch.randn(2, 4, 12), batch), model(torch.randn(3, 4, 12) * 5, batch)
    assert not torch.allclose(a, b)
    assert 'lin_residual.weight' in model.state_dict() and "head='residual'" in repr(model)


def test_task_target_predicts_level_and_spread():
    torch.manual_seed(0)
    model = _model(target='task')
    model.set_target_stats(torch.tensor(ACCS))
    batch = _batch(get_space('nb201'), NB201_ARCHS)
    x = torch.randn(2, 4, 12)
    h = model.graph_encoder(batch)
    d = model.encode_dataset(x)
    z = model(x, batch, standardized=True)
    mean, log_std = model.level(d)[0]
    expected = model.unstandardize(mean) + model.y_std * log_std.exp() * z
    assert torch.allclose(model(x, batch), expected, atol=1e-5)
    assert torch.allclose(model.forward_head(h, d, standardized=True), z)
    with pytest.raises(ValueError, match="target='task'"):
        _model().level(d)
    with pytest.raises(ValueError, match="'head' must be one of"):
        _model(head='bilinear')
    with pytest.raises(ValueError, match='graph-only'):
        _model(use_dataset=False, head='residual')


@pytest.mark.parametrize('options', [{}, {'head': 'residual'}, {'target': 'task'},
                                     {'head': 'residual', 'target': 'task', 'descriptors': True}])
def test_prepared_graphs_score_like_the_head(options):
    torch.manual_seed(0)
    model = _model(**options).eval()
    if model.lin_residual is not None:
        with torch.no_grad():
            model.lin_residual.weight.normal_()
    model.set_target_stats(torch.tensor(ACCS))
    h = model.graph_encoder(_batch(get_space('nb201'), NB201_ARCHS))
    d = model.encode_dataset(torch.randn(3, 4, 12))
    prepared = model.prepare_graphs(h)
    for standardized in (False, True):
        assert torch.allclose(model.forward_prepared(prepared, d, standardized),
                              model.forward_head(h, d, standardized), atol=1e-5)
