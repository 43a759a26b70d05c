import dataclasses

import pytest
import torch

from d2a.graphs.nb201 import format_arch
from d2a.nets import NB201Network, Recipe, count_flops, count_params, evaluate, train_and_evaluate

ALL_3X3 = format_arch(['nor_conv_3x3'] * 6)
ALL_NONE = format_arch(['none'] * 6)
CELLS = [
    ALL_3X3,
    ALL_NONE,
    format_arch(['skip_connect'] * 6),
    format_arch(['avg_pool_3x3', 'nor_conv_1x1', 'none', 'skip_connect', 'nor_conv_3x3', 'none']),
    # Node 3 reads only node 1, which is cut off from the input.
    format_arch(['none', 'none', 'none', 'none', 'nor_conv_3x3', 'none']),
]
TINY = Recipe(name='tiny', C=4, N=1, epochs=1, batch_size=16)


@pytest.mark.parametrize('arch', CELLS)
def test_forward(arch):
    torch.manual_seed(0)
    net = NB201Network(arch, C=4, N=1, in_channels=1, num_classes=7)
    x = torch.randn(3, 1, 9, 9)
    out = net(x)
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()
    assert net.forward_features(x).shape == (3, 16)
    out.sum().backward()  # every cell is trainable, zero cells included


def test_zero_cell_output_is_input_independent():
    torch.manual_seed(0)
    net = NB201Network(ALL_NONE, C=4, N=1).eval()
    out = net(torch.randn(2, 3, 8, 8))
    assert torch.allclose(out[0], out[1])


def test_known_parameter_count():
    # NAS-Bench-201 reports 1.531546 MB for the all-3x3 cell on CIFAR-10.
    assert count_params(ALL_3X3) == 1_531_546
    net = NB201Network(ALL_3X3)
    assert sum(p.numel() for p in net.parameters()) == 1_531_546
    assert repr(net).startswith("NB201Network('|nor_conv_3x3~0|")


def test_counts_order_cells():
    assert count_params(ALL_NONE) < count_params(CELLS[3]) < count_params(ALL_3X3)
    assert count_flops(ALL_NONE) < count_flops(CELLS[3]) < count_flops(ALL_3X3)
    # About 220 M multiply-accumulates for the all-3x3 network on 32x32 images.
    assert 215e6 < count_flops(ALL_3X3) < 225e6
    assert count_flops(ALL_3X3, image_size=16) < count_flops(ALL_3X3)


def test_bad_network_input():
    with pytest.raises(ValueError, match="unknown op 'conv'"):
        NB201Network('|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|')
    with pytest.raises(ValueError, match="'C' must be a positive integer"):
        NB201Network(ALL_3X3, C=0)
    with pytest.raises(ValueError, match=r'expected images \[batch, 3, H, W\]'):
        NB201Network(ALL_3X3, C=4, N=1)(torch.randn(2, 1, 8, 8))


def _tiny_data(n=48, classes=3):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def test_train_and_evaluate():
    x, y = _tiny_data()
    res = train_and_evaluate(ALL_3X3, x[:32], y[:32], x[32:], y[32:], TINY)
    assert 0.0 <= res.accuracy <= 100.0 and 0.0 <= res.train_accuracy <= 100.0
    assert res.epochs == 1 and res.recipe_id == TINY.recipe_id
    assert res.num_params == sum(p.numel() for p in res.model.parameters())
    assert not res.model.training
    assert evaluate(res.model, x[32:], y[32:]) == res.accuracy


@pytest.mark.parametrize('augment', [False, True])
def test_train_is_deterministic(augment):
    x, y = _tiny_data()
    recipe = dataclasses.replace(TINY, epochs=2, augment=augment, image_size=10)
    a = train_and_evaluate(CELLS[3], x[:32], y[:32], x[32:], y[32:], recipe)
    torch.manual_seed(123)  # the global RNG must not matter
    b = train_and_evaluate(CELLS[3], x[:32], y[:32], x[32:], y[32:], recipe)
    assert (a.accuracy, a.train_accuracy, a.train_loss) == (b.accuracy, b.train_accuracy, b.train_loss)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_recipe_id():
    assert Recipe.nb201().recipe_id == Recipe.nb201().recipe_id
    assert Recipe.nb201().recipe_id.startswith('nb201-')
    assert Recipe.nb201(seed=1).recipe_id != Recipe.nb201().recipe_id
    assert Recipe.from_dict(Recipe.reduced().to_dict()) == Recipe.reduced()
    nb = Recipe.nb201()
    assert (nb.C, nb.N, nb.epochs, nb.batch_size, nb.lr, nb.nesterov) == (16, 5, 200, 256, 0.1, True)
    # The hash ignores the readable name only.
    assert dataclasses.replace(nb, name='x').recipe_id[2:] == nb.recipe_id[6:]


def test_bad_recipe_and_data():
    with pytest.raises(ValueError, match="'epochs' must be a positive integer"):
        Recipe(epochs=0)
    with pytest.raises(ValueError, match="'schedule' must be one of"):
        Recipe(schedule='step')
    with pytest.raises(ValueError, match='unknown recipe field'):
        Recipe.from_dict({'epochs': 3, 'lr_max': 1.0})
    x, y = _tiny_data()
    with pytest.raises(ValueError, match='training images must be a tensor'):
        train_and_evaluate(ALL_3X3, x[:, 0], y, x, y, TINY)
    with pytest.raises(ValueError, match=r'training labels must be a tensor \[48\]'):
        train_and_evaluate(ALL_3X3, x, y[:5], x, y, TINY)
    with pytest.raises(ValueError, match='test label 4 is out of range for 3 classes'):
        train_and_evaluate(ALL_3X3, x, y, x, y + 2, TINY, num_classes=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_train_on_cuda():
    x, y = _tiny_data()
    res = train_and_evaluate(ALL_3X3, x[:32], y[:32], x[32:], y[32:], TINY, device='cuda')
    assert next(res.model.parameters()).is_cuda
    assert 0.0 <= res.accuracy <= 100.0


def test_augment_crop_and_flip():
    from d2a.nets.fit import _augment
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float).view(2, 2, 5, 5)
    centre = torch.tensor([4, 4])
    out = _augment(x, torch.tensor([False, True]), centre, centre)
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], x[1].flip(2))
    # Shifting by the full padding leaves one original corner pixel.
    out = _augment(x, torch.tensor([False, False]), torch.tensor([0, 8]), torch.tensor([0, 8]))
    assert out[0, :, 4, 4].tolist() == x[0, :, 0, 0].tolist() and out[0].count_nonzero() <= 2
    assert out[1, :, 0, 0].tolist() == x[1, :, 4, 4].tolist()


def test_reset_parameters():
    torch.manual_seed(0)
    net = NB201Network(ALL_3X3, C=4, N=1)
    before = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.reset_parameters()
    bn = net.lastact[0]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert not torch.equal(net.classifier.weight, before[-2] + 1.0)
