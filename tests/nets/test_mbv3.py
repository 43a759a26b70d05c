import dataclasses
import random

import pytest
import torch
from torch import nn

from d2a.graphs import get_space
from d2a.graphs.mbv3 import OFA_STRIDES, config_to_arch, layout_strides, sample_config
from d2a.nets import (
    MBV3Network,
    NB201Network,
    Recipe,
    build_network,
    measure_macs,
    train_and_evaluate,
)
from d2a.nets.mbv3 import MBConv, SqueezeExcite

MIN = {'ks': [3] * 20, 'e': [3] * 20, 'd': [2] * 5}
MAX = {'ks': [7] * 20, 'e': [6] * 20, 'd': [4] * 5}
TINY = Recipe(name='tiny-mbv3', space='mbv3', width_mult=0.1, epochs=1, batch_size=16,
              image_size=8)


def _params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize('seed, width_mult, image_size, in_channels, num_classes', [
    (0, 1.0, 224, 3, 1000), (1, 0.25, 12, 1, 10), (2, 0.5, 16, 3, 7), (3, 1.2, 37, 2, 5),
    (4, 0.1, 5, 1, 2),
])
def test_counts_agree_with_the_cost_model(seed, width_mult, image_size, in_channels,
                                          num_classes):
    cfg = sample_config(random.Random(seed))
    net = MBV3Network(cfg, width_mult, image_size, in_channels, num_classes)
    cost = get_space('mbv3').cost_model(image_size=image_size, in_channels=in_channels,
                                        num_classes=num_classes, width_mult=width_mult)
    assert _params(net) == cost.params(config_to_arch(cfg))
    assert measure_macs(net, image_size) == cost.flops(config_to_arch(cfg))
    assert net.strides == layout_strides(image_size) == cost.strides


def test_ofa_strides_and_known_sizes():
    # OFA's MobileNetV3-Large w1.0 at 224: its largest sub-network has about 7.7 M
    # parameters; the network runs at OFA's strides there (224 -> 7x7 before pooling).
    net = MBV3Network(MAX)
    assert net.strides == OFA_STRIDES
    assert 7.6e6 < _params(net) < 7.7e6
    seen = []
    net.final_expand.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net.eval()(torch.zeros(1, 3, 224, 224))
    assert seen == [torch.Size([1, 960, 7, 7])]
    small = MBV3Network(MAX, image_size=224, strides=(1,) * 7)
    assert measure_macs(small, 8) == get_space('mbv3').cost_model(
        image_size=8, strides=(1,) * 7).flops(config_to_arch(MAX))


@pytest.mark.parametrize('image_size, side', [(12, 3), (16, 4), (32, 4)])
def test_small_images_keep_a_spatial_map(image_size, side):
    net = MBV3Network(MIN, 0.25, image_size, 1, 10).eval()
    seen = []
    net.final_expand.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    out = net(torch.randn(2, 1, image_size, image_size))
    assert out.shape == (2, 10) and seen == [side]


def test_depth_and_blocks():
    cfg = sample_config(random.Random(7))
    cfg['d'] = [2, 3, 4, 2, 3]
    net = MBV3Network(cfg, 1.0, 12, 1, 10)
    assert len(net.blocks) == sum(cfg['d'])
    blocks = list(net.blocks)
    # Layer j of stage s is config layer 4 s + j; skipped layers are not built.
    assert [b.kernel_size for b in blocks[:2]] == cfg['ks'][:2]
    assert [b.expand_ratio for b in blocks[2:5]] == cfg['e'][4:7]
    assert [b.se for b in blocks] == [False] * 2 + [True] * 3 + [False] * 4 + [True] * 5
    assert [b.act for b in blocks] == ['relu'] * 5 + ['h_swish'] * 9
    # Residuals where stride 1 and widths agree: every layer but each stage's first (at
    # width 1.0; at 0.25 stages 0 and 1 are both 8 wide and stage 1's first layer adds).
    assert [b.residual for b in blocks[:5]] == [False, True, False, True, True]
    assert MBV3Network(cfg, 0.25, 12, 1, 10).blocks[0].residual
    assert net.first_block.residual and net.first_block.inverted_bottleneck is None
    # The string of skipped layers does not matter for the network.
    other = {k: list(v) for k, v in cfg.items()}
    other['ks'][19] = 3 if cfg['ks'][19] != 3 else 5
    assert _params(MBV3Network(other, 1.0, 12, 1, 10)) == _params(net)


def test_forward_backward_and_features():
    torch.manual_seed(0)
    net = MBV3Network(config_to_arch(MAX), 0.25, 12, 3, 6, dropout=0.1)
    x = torch.randn(3, 3, 12, 12)
    out = net(x)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    assert net.forward_features(x).shape == (3, net.out_channels) and net.out_channels == 320
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert repr(net).startswith("MBV3Network('d4:k7e6,") and 'width_mult=0.25' in repr(net)


def test_blocks():
    se = SqueezeExcite(32)
    assert se.reduce.out_channels == 8 and repr(se) == 'SqueezeExcite(32, reduction=4)'
    x = torch.randn(2, 32, 5, 5)
    assert se(x).shape == x.shape
    block = MBConv(8, 16, kernel_size=5, expand_ratio=3, stride=2, act='h_swish', se=True)
    assert block(torch.randn(2, 8, 7, 7)).shape == (2, 16, 4, 4)
    assert block.mid_channels == 24 and not block.residual
    with pytest.raises(ValueError, match="'kernel_size' must be a positive odd integer"):
        MBConv(8, 8, kernel_size=4)
    with pytest.raises(ValueError, match="activation must be one of"):
        MBConv(8, 8, act='gelu')


def test_reset_parameters():
    torch.manual_seed(0)
    net = MBV3Network(MIN, 0.25, 12, 1, 4)
    for p in net.parameters():
        nn.init.constant_(p, 3.0)
    net.reset_parameters()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)
    assert not (net.classifier.weight == 3.0).any() and not net.classifier.bias.any()
    conv = net.first_conv[0].weight
    # OFA's he_fout: std sqrt(2 / (k * k * out_channels)).
    assert abs(conv.std().item() - (2 / (9 * conv.size(0))) ** 0.5) < 0.15


def test_bad_network_input():
    with pytest.raises(ValueError, match="'ks' at layer 0 must be one of"):
        MBV3Network({'ks': [4] * 20, 'e': [3] * 20, 'd': [2] * 5})
    with pytest.raises(ValueError, match='must have 5 stages'):
        MBV3Network('|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|')
    with pytest.raises(ValueError, match="'width_mult' must be positive"):
        MBV3Network(MIN, width_mult=0)
    with pytest.raises(ValueError, match="'image_size' must be a positive integer"):
        MBV3Network(MIN, image_size=0)
    with pytest.raises(ValueError, match="'dropout' must be in"):
        MBV3Network(MIN, dropout=1.0)
    with pytest.raises(ValueError, match='strides must be 7 values'):
        MBV3Network(MIN, strides=(2, 2))
    with pytest.raises(ValueError, match=r'expected images \[batch, 1, H, W\]'):
        MBV3Network(MIN, 0.25, 12, 1, 3)(torch.randn(2, 3, 12, 12))


# ----------------------------------------------------------------------------- recipe and loop
def test_build_network_per_space():
    nb = build_network('|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|',
                       Recipe(C=4, N=1), in_channels=1, num_classes=3)
    assert isinstance(nb, NB201Network) and (nb.C, nb.N, nb.num_classes) == (4, 1, 3)
    mb = build_network(config_to_arch(MIN), Recipe.mbv3_mini(), in_channels=1, num_classes=10)
    assert isinstance(mb, MBV3Network)
    assert (mb.width_mult, mb.image_size, mb.num_classes) == (0.25, 12, 10)
    # Without a recipe image size the images' own size chooses the strides.
    free = dataclasses.replace(Recipe.mbv3_mini(), image_size=None)
    assert build_network(config_to_arch(MIN), free, 1, 10, image_size=32).strides == \
        layout_strides(32)
    with pytest.raises(ValueError, match='needs an image size'):
        build_network(config_to_arch(MIN), free, 1, 10)
    with pytest.raises(ValueError, match='must have 5 stages'):
        build_network('|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|',
                      Recipe.mbv3_mini())


def test_recipe_space_fields_keep_nb201_ids():
    # Ids stored before 'space' and 'width_mult' existed (the shipped database's is
    # mini-5cd4ca2a under its label protocol) must not change.
    assert 'space' not in Recipe.mini().to_dict() and 'width_mult' not in Recipe.mini().to_dict()
    assert Recipe.from_dict(Recipe.mini().to_dict()) == Recipe.mini()
    assert Recipe.nb201().recipe_id == 'nb201-' + Recipe.nb201().recipe_id[6:]
    mb = Recipe.mbv3_mini()
    assert mb.to_dict()['space'] == 'mbv3' and mb.to_dict()['width_mult'] == 0.25
    assert Recipe.from_dict(mb.to_dict()) == mb
    assert mb.recipe_id != dataclasses.replace(mb, width_mult=0.5).recipe_id
    with pytest.raises(ValueError, match="recipe field 'space' must be one of"):
        Recipe(space='darts')
    with pytest.raises(ValueError, match="recipe field 'width_mult' must be a positive number"):
        Recipe(space='mbv3', width_mult=0)


def test_nb201_recipe_ids_are_unchanged():
    # Hashes computed before the MobileNetV3 fields were added.
    assert Recipe.mini().recipe_id == 'mini-' + _old_digest(Recipe.mini())
    assert Recipe.reduced(seed=3).recipe_id == 'reduced-' + _old_digest(Recipe.reduced(seed=3))


def _old_digest(recipe):
    import hashlib
    import json
    fields = {k: v for k, v in dataclasses.asdict(recipe).items()
              if k not in ('name', 'space', 'width_mult')}
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def _tiny_data(n=48, classes=3, size=8):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, size, size, generator=gen), torch.randint(0, classes, (n,),
                                                                       generator=gen)


def test_train_and_evaluate_mbv3():
    x, y = _tiny_data()
    arch = config_to_arch(sample_config(random.Random(1)))
    res = train_and_evaluate(arch, x[:32], y[:32], x[32:], y[32:], TINY)
    assert isinstance(res.model, MBV3Network) and not res.model.training
    assert res.model.strides == layout_strides(8)
    assert 0.0 <= res.accuracy <= 100.0 and res.recipe_id == TINY.recipe_id
    assert res.num_params == _params(res.model)
    torch.manual_seed(5)  # the global RNG must not matter
    again = train_and_evaluate(arch, x[:32], y[:32], x[32:], y[32:], TINY)
    assert (again.accuracy, again.train_loss) == (res.accuracy, res.train_loss)
    for p, q in zip(res.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


def test_training_fits_an_easy_task():
    # Two classes told apart by the sign of the mean pixel: a few epochs must fit them.
    # (Test accuracy is not asserted: after 24 steps BatchNorm's running statistics,
    # which eval mode uses, still lag behind the weights.)
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(64, 1, 8, 8, generator=gen) * 0.3 + (y.float() * 2 - 1).view(-1, 1, 1, 1)
    recipe = dataclasses.replace(TINY, width_mult=0.25, epochs=8, lr=0.05)
    res = train_and_evaluate(config_to_arch(MIN), x[:48], y[:48], x[48:], y[48:], recipe)
    assert res.train_accuracy >= 90.0 and res.train_loss < 0.3


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_mbv3_on_cuda():
    x, y = _tiny_data()
    res = train_and_evaluate(config_to_arch(MIN), x[:32], y[:32], x[32:], y[32:], TINY,
                             device='cuda')
    assert next(res.model.parameters()).is_cuda
    assert isinstance(res.model, nn.Module) and 0.0 <= res.accuracy <= 100.0
