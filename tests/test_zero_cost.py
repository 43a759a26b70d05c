import math

import numpy as np
import pytest
import torch
from torch import nn

from d2a.zero_cost import naswot_nb201, naswot_score

CONV = ('|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+'
        '|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|')
ZERO = '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'


def _identity_relu_net() -> nn.Module:
    lin = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3))
    return nn.Sequential(lin, nn.ReLU())


def test_naswot_score_matches_hamming_kernel_by_hand():
    x = torch.tensor([[1., -1., 1.], [1., 1., -1.], [-1., -1., -1.]])
    codes = (x > 0).numpy().astype(float)
    n_a = codes.shape[1]
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    expected = np.linalg.slogdet(n_a - hamming)[1]
    assert naswot_score(_identity_relu_net(), x) == pytest.approx(expected)
    # K = [[3,1,1],[1,3,1],[1,1,3]]: det 20.
    assert naswot_score(_identity_relu_net(), x) == pytest.approx(math.log(20))


def test_naswot_score_sums_over_every_relu():
    x = torch.tensor([[1., -1., 1.], [1., 1., -1.], [-1., -1., -1.]])
    twice = nn.Sequential(_identity_relu_net(), nn.ReLU())
    # The second ReLU sees the same signs (non-negative inputs: zeros are inactive).
    assert naswot_score(twice, x) == pytest.approx(3 * math.log(2) + math.log(20))


def test_identical_codes_give_minus_infinity():
    x = torch.tensor([[1., 2., 3.], [2., 1., 3.]])  # same sign pattern
    assert naswot_score(_identity_relu_net(), x) == -math.inf


@pytest.mark.parametrize('bad', [torch.zeros(1, 3), torch.zeros(3)])
def test_naswot_score_needs_a_minibatch(bad):
    with pytest.raises(ValueError, match='minibatch'):
        naswot_score(_identity_relu_net(), bad)


def test_naswot_score_needs_relus():
    with pytest.raises(ValueError, match='no nn.ReLU or nn.Hardswish'):
        naswot_score(nn.Linear(3, 3), torch.randn(4, 3))


def test_naswot_nb201_is_seeded_and_ranks_a_conv_cell_above_the_empty_cell():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    state = torch.random.get_rng_state()
    a = naswot_nb201(CONV, x, C=4, N=1, num_classes=3, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a == naswot_nb201(CONV, x, C=4, N=1, num_classes=3, seed=1)
    assert math.isfinite(a)
    assert a > naswot_nb201(ZERO, x, C=4, N=1, num_classes=3, seed=1)


def test_naswot_nb201_rejects_flat_images():
    with pytest.raises(ValueError, match='batch, channels'):
        naswot_nb201(CONV, torch.randn(4, 64))


def test_naswot_score_counts_hardswish_units_like_relu_units():
    lin = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3))
    x = torch.tensor([[1., -1., 1.], [1., 1., -1.], [-1., -1., -1.]])
    assert naswot_score(nn.Sequential(lin, nn.Hardswish()), x) == pytest.approx(math.log(20))


def test_naswot_network_scores_nb201_and_mbv3_networks_of_a_recipe():
    from d2a.graphs import get_space
    from d2a.nets import Recipe
    from d2a.zero_cost import naswot_network
    torch.manual_seed(0)
    x = torch.randn(12, 1, 8, 8)
    nb201 = Recipe(name='t', C=4, N=1)
    assert naswot_network(CONV, nb201, x, 3, seed=1) == \
        pytest.approx(naswot_nb201(CONV, x, C=4, N=1, num_classes=3, seed=1))
    mbv3 = Recipe(name='m', space='mbv3', width_mult=0.1, image_size=8)
    arch = get_space('mbv3').sample(1, __import__('random').Random(0))[0]
    state = torch.random.get_rng_state()
    a = naswot_network(arch, mbv3, x, 3, seed=2)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG untouched
    assert math.isfinite(a) and a == naswot_network(arch, mbv3, x, 3, seed=2)
    with pytest.raises(ValueError, match='batch, channels'):
        naswot_network(arch, mbv3, torch.randn(4, 8), 3)
