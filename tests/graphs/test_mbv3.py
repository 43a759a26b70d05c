import random

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

from d2a.graphs.mbv3 import (
    BASE_WIDTHS,
    MBV3Space,
    NUM_NODES,
    OFA_STRIDES,
    STAGE_SE,
    canonical_key,
    check_config,
    config_to_arch,
    count_flops,
    count_params,
    layer_type,
    layout_strides,
    make_divisible,
    parse_arch,
    sample_config,
    type_to_layer,
)
from d2a.graphs.space import data_to_dense

MAX = {'ks': [7] * 20, 'e': [6] * 20, 'd': [4] * 5}
MIN = {'ks': [3] * 20, 'e': [3] * 20, 'd': [2] * 5}


@pytest.fixture(scope='module')
def space():
    return MBV3Space()


def test_layer_types_cover_vocabulary(space):
    types = {layer_type(d, k, e) for d in (2, 3, 4) for k in (3, 5, 7) for e in (3, 4, 6)}
    assert types == set(range(2, 29))
    assert space.num_node_types == 29
    # MetaD2A's numbering: 2 + 9 * depth_id + 3 * kernel_id + expand_id.
    assert layer_type(2, 3, 3) == 2 and layer_type(3, 5, 4) == 15 and layer_type(4, 7, 6) == 28
    for t in range(2, 29):
        assert layer_type(*type_to_layer(t)) == t
        assert space.node_types[t] == 'd{}_k{}_e{}'.format(*type_to_layer(t))


def test_round_trips(space):
    rng = random.Random(0)
    for _ in range(200):
        cfg = sample_config(rng)
        arch = config_to_arch(cfg)
        assert parse_arch(arch) == cfg
        data = space.to_data(arch)
        assert data.num_nodes == NUM_NODES
        assert data.node_type[0] == 0 and data.node_type[-1] == 1
        assert space.from_data(data) == arch
        assert space.to_data(cfg).node_type.tolist() == data.node_type.tolist()
        assert space.from_config(space.to_config(arch)) == arch


def test_chain_graph_and_batching(space):
    archs = space.sample(4, random.Random(1))
    datas = [space.to_data(a) for a in archs]
    for data in datas:
        _, adj = data_to_dense(data)
        assert not adj.tril().any()
        assert adj.sum() == NUM_NODES - 1
        assert torch.equal(adj.diagonal(1), torch.ones(NUM_NODES - 1, dtype=torch.long))
    batch = Batch.from_data_list(datas)
    for i, arch in enumerate(archs):
        assert space.from_data(batch.get_example(i)) == arch


def test_canonical_key_ignores_skipped_layers():
    cfg = {'ks': [3] * 20, 'e': [4] * 20, 'd': [2, 3, 4, 2, 2]}
    other = {'ks': list(cfg['ks']), 'e': list(cfg['e']), 'd': list(cfg['d'])}
    other['ks'][2] = 7   # stage 0, layer 2: skipped at depth 2
    other['e'][7] = 6    # stage 1, layer 3: skipped at depth 3
    assert config_to_arch(cfg) != config_to_arch(other)
    assert canonical_key(cfg) == canonical_key(other)
    assert canonical_key(cfg).startswith('d2:k3e4,k3e4,-,-|d3:k3e4,k3e4,k3e4,-|')
    used = {'ks': list(cfg['ks']), 'e': list(cfg['e']), 'd': list(cfg['d'])}
    used['ks'][1] = 5    # stage 0, layer 1: runs
    assert canonical_key(used) != canonical_key(cfg)
    assert count_flops(cfg) == count_flops(other)
    assert count_params(cfg) == count_params(other)


@pytest.mark.parametrize('arch, match', [
    ('d4:k3e3,k3e3,k3e3,k3e3', '5 stages'),
    ('|'.join(['d4:k3e3,k3e3,k3e3'] * 5), 'stage 0 needs 4 layers'),
    ('|'.join(['4:k3e3,k3e3,k3e3,k3e3'] * 5), "stage 0 .* must look like 'd<depth>:"),
    ('|'.join(['d4:k3e3,k3e3,k3x3,k3e3'] * 5), "layer 2 'k3x3' must look like"),
    ('|'.join(['d5:k3e3,k3e3,k3e3,k3e3'] * 5), "'d' at stage 0 must be one of"),
    ('|'.join(['d4:k3e3,k9e3,k3e3,k3e3'] * 5), "'ks' at layer 1 must be one of"),
    ('|'.join(['d4:k3e3,k3e3,k3e3,k3e5'] * 5), "'e' at layer 3 must be one of"),
    ('|'.join(['dx:k3e3,k3e3,k3e3,k3e3'] * 5), "depth of stage 0 'x' is not a number"),
    (None, 'must be a string'),
])
def test_bad_strings(arch, match):
    with pytest.raises(ValueError, match=match):
        parse_arch(arch)


def test_bad_configs():
    with pytest.raises(ValueError, match="no key 'd'"):
        check_config({'ks': [3] * 20, 'e': [3] * 20})
    with pytest.raises(ValueError, match="'ks' needs 20 values, got 19"):
        check_config({'ks': [3] * 19, 'e': [3] * 20, 'd': [2] * 5})
    with pytest.raises(ValueError, match='must be a dict'):
        check_config([3] * 45)


def _dense(space, cfg=MAX):
    return data_to_dense(space.to_data(cfg))


def test_bad_graph_depth_mismatch(space):
    t, a = _dense(space)
    t[6] = layer_type(2, 7, 6)  # layer 5 = stage 1, layer 1
    with pytest.raises(ValueError, match='layer 5 .* depth 2 but stage 1 has depth 4'):
        space.from_dense(t.tolist(), a)
    assert space.check(space.to_data(MAX)) is None


def test_bad_graphs(space):
    t, a = _dense(space)
    with pytest.raises(ValueError, match='has 22 nodes, got 21'):
        space.from_dense(t.tolist()[:21], a[:21, :21])
    bad = t.clone()
    bad[4] = 0
    with pytest.raises(ValueError, match=r'node 4 \(layer 3\) must be a layer type'):
        space.from_dense(bad.tolist(), a)
    bad = t.clone()
    bad[0] = 5
    with pytest.raises(ValueError, match='node 0 must be START'):
        space.from_dense(bad.tolist(), a)
    cyc = a.clone()
    cyc[3, 2] = 1
    with pytest.raises(ValueError, match='edge 3 -> 2 goes backwards'):
        space.from_dense(t.tolist(), cyc)
    missing = a.clone()
    missing[10, 11] = 0
    with pytest.raises(ValueError, match='chain edge 10 -> 11 is missing'):
        space.from_dense(t.tolist(), missing)
    extra = a.clone()
    extra[0, 5] = 1
    with pytest.raises(ValueError, match='edge 0 -> 5 is not a chain edge'):
        space.from_dense(t.tolist(), extra)


def test_allowed_types_sampler_is_always_valid(space):
    gen = torch.Generator().manual_seed(0)
    batch = 256
    prefix = torch.zeros(batch, 0, dtype=torch.long)
    for _ in range(NUM_NODES):
        mask = space.allowed_types(prefix)
        assert mask.shape == (batch, 29) and mask.any(1).all()
        probs = mask.float() / mask.sum(1, keepdim=True)
        nxt = torch.multinomial(probs, 1, generator=gen)
        prefix = torch.cat([prefix, nxt], dim=1)
    adj = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.long)
    adj[torch.arange(NUM_NODES - 1), torch.arange(1, NUM_NODES)] = 1
    archs = space.from_dense_batch(prefix, adj.expand(batch, -1, -1))
    assert all(a is not None for a in archs)
    assert len({parse_arch(a)['d'][0] for a in archs}) == 3  # all depths get drawn
    with pytest.raises(ValueError, match='beyond the 22 nodes'):
        space.allowed_types(prefix)


def test_allowed_types_repeat_stage_depth(space):
    prefix = torch.tensor([[0, layer_type(3, 5, 4)], [0, layer_type(2, 3, 3)]])
    mask = space.allowed_types(prefix)
    assert mask[0].nonzero().view(-1).tolist() == list(range(11, 20))
    assert mask[1].nonzero().view(-1).tolist() == list(range(2, 11))
    # The first layer of the next stage is free again.
    prefix = torch.tensor([[0] + [layer_type(3, 5, 4)] * 4])
    assert space.allowed_types(prefix)[0].nonzero().view(-1).tolist() == list(range(2, 29))


def test_size(space):
    assert space.size == 3 ** 5 * 9 ** 20
    assert space.num_networks == (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5
    with pytest.raises(TypeError):
        next(space.enumerate())


def test_sample_is_reproducible(space):
    assert space.sample(3, random.Random(5)) == space.sample(3, random.Random(5))


# ----------------------------------------------------------------------------- size
def _mbconv(c_in, c_out, k, e, stride, se):
    mid = make_divisible(round(c_in * e)) if e != 1 else c_in
    layers = []
    if e != 1:
        layers += [nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid)]
    layers += [nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), nn.BatchNorm2d(mid)]
    if se:  # a squeeze branch at 1x1 (its output is not multiplied back: only sizes matter)
        sq = make_divisible(mid // 4)
        layers += [_SE(nn.Sequential(nn.Conv2d(mid, sq, 1), nn.Conv2d(sq, mid, 1)))]
    layers += [nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
    return layers


class _SE(nn.Module):
    def __init__(self, fc):
        super().__init__()
        self.fc = fc

    def forward(self, x):
        self.fc(x.mean((2, 3), keepdim=True))
        return x


def _reference_net(cfg, width_mult, num_classes, strides):
    w = [make_divisible(c * width_mult) for c in BASE_WIDTHS]
    layers = [nn.Conv2d(3, w[0], 3, strides[0], 1, bias=False), nn.BatchNorm2d(w[0])]
    layers += _mbconv(w[0], w[1], 3, 1, strides[1], False)
    c = w[1]
    for s in range(5):
        for j in range(cfg['d'][s]):
            i = 4 * s + j
            layers += _mbconv(c, w[2 + s], cfg['ks'][i], cfg['e'][i],
                              strides[2 + s] if j == 0 else 1, STAGE_SE[s])
            c = w[2 + s]
    layers += [nn.Conv2d(c, w[7], 1, bias=False), nn.BatchNorm2d(w[7]), nn.AdaptiveAvgPool2d(1),
               nn.Conv2d(w[7], w[8], 1, bias=False), nn.Flatten(), nn.Linear(w[8], num_classes)]
    return nn.Sequential(*layers)


def _reference_macs(net, image_size):
    total = [0]

    def conv(m, inp, out):
        total[0] += m.weight.numel() * out[0, 0].numel()

    def linear(m, inp, out):
        total[0] += m.weight.numel()

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear)
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, image_size, image_size))
    return total[0]


@pytest.mark.parametrize('seed, width_mult, image_size, num_classes, ofa', [
    (0, 1.0, 64, 1000, True), (1, 1.2, 48, 10, True), (2, 1.0, 37, 100, True),
    (3, 0.25, 12, 10, False), (4, 0.5, 16, 7, False), (5, 1.0, 224, 1000, False),
])
def test_counts_match_a_built_network(seed, width_mult, image_size, num_classes, ofa):
    cfg = sample_config(random.Random(seed))
    strides = OFA_STRIDES if ofa else layout_strides(image_size)
    net = _reference_net(cfg, width_mult, num_classes, strides)
    assert count_params(cfg, num_classes, width_mult) == sum(p.numel() for p in net.parameters())
    assert count_flops(cfg, image_size, num_classes, width_mult,
                       strides=OFA_STRIDES if ofa else None) == _reference_macs(net, image_size)


@pytest.mark.parametrize('image_size, strides, last', [
    (224, OFA_STRIDES, 7), (65, OFA_STRIDES, 3), (64, (1, 1, 2, 2, 2, 1, 2), 4),
    (32, (1, 1, 1, 2, 2, 1, 2), 4), (16, (1, 1, 1, 1, 2, 1, 2), 4),
    (12, (1, 1, 1, 1, 2, 1, 2), 3), (8, (1, 1, 1, 1, 1, 1, 2), 4), (4, (1,) * 7, 4),
    (1, (1,) * 7, 1),
])
def test_layout_strides(image_size, strides, last):
    assert layout_strides(image_size) == strides
    side = image_size
    for s in strides:
        side = (side - 1) // s + 1
    assert side == last


def test_layout_strides_bad_input():
    with pytest.raises(ValueError, match='image_size must be a positive integer, got 0'):
        layout_strides(0)
    with pytest.raises(ValueError, match=r'strides must be 7 values of 1 or 2'):
        count_flops(MAX, strides=(2, 1, 2))
    with pytest.raises(ValueError, match=r'got \[3, 1, 1, 1, 1, 1, 1\]'):
        count_flops(MAX, strides=(3, 1, 1, 1, 1, 1, 1))


def test_counts_of_extremes():
    # The largest OFA MobileNetV3 (w1.0) sub-network: about 7.7 M parameters.
    assert 7.6e6 < count_params(MAX) < 7.7e6
    assert 5.5e8 < count_flops(MAX) < 5.8e8
    assert count_params(MIN) < count_params(MAX)
    assert count_flops(MIN, 128) < count_flops(MIN)


@pytest.mark.parametrize('key, values', [('ks', (3, 5, 7)), ('e', (3, 4, 6)), ('d', (2, 3, 4))])
def test_counts_monotone(key, values):
    base = sample_config(random.Random(3))
    params, flops = [], []
    for v in values:
        cfg = {k: list(x) for k, x in base.items()}
        cfg[key] = [v] * len(cfg[key])
        params.append(count_params(cfg))
        flops.append(count_flops(cfg))
    assert all(p > 0 for p in params)
    assert params == sorted(set(params)) and flops == sorted(set(flops))


def test_count_bad_input():
    with pytest.raises(ValueError, match='image_size must be positive'):
        count_flops(MAX, image_size=0)
    with pytest.raises(ValueError, match="'ks' at layer 0"):
        count_params({'ks': [4] * 20, 'e': [3] * 20, 'd': [2] * 5})
