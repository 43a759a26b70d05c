import random

import pytest

from d2a.graphs import get_space
from d2a.graphs.mbv3 import MBV3CostModel, count_flops as mbv3_flops, count_params as mbv3_params
from d2a.graphs.nb201 import NB201CostModel, format_arch
from d2a.nets.nb201 import count_flops, count_params


@pytest.mark.parametrize('C,N,image_size,in_channels,num_classes', [
    (4, 1, 16, 3, 3), (8, 2, 16, 3, 10), (16, 5, 32, 3, 10), (8, 1, 12, 1, 15), (3, 2, 7, 2, 4),
    (2, 1, 1, 1, 2)])
def test_closed_form_costs_match_the_network(C, N, image_size, in_channels, num_classes):
    model = NB201CostModel(C, N, image_size, in_channels, num_classes)
    archs = get_space('nb201').sample(12, random.Random(C * N + image_size))
    archs.append('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|')
    for arch in archs:
        assert model.params(arch) == count_params(arch, C, N, in_channels, num_classes)
        assert model.flops(arch) == count_flops(arch, C, N, image_size, in_channels, num_classes)
    space = get_space('nb201')
    every = list(space.enumerate())
    assert model.min_params() == min(model.params(a) for a in every)
    assert model.min_flops() == min(model.flops(a) for a in every)


def test_space_cost_models():
    nb201 = get_space('nb201').cost_model(num_classes=3)
    assert (nb201.C, nb201.N, nb201.image_size, nb201.num_classes) == (16, 5, 32, 3)
    assert get_space('nb201').cost_model(num_classes=3) is nb201  # cached per size
    arch = format_arch(['nor_conv_3x3'] * 6)
    assert get_space('nb201').cost_model().params(arch) == 1_531_546  # as README.md says
    mbv3 = get_space('mbv3').cost_model(in_channels=1, num_classes=10)
    archs = get_space('mbv3').sample(20, random.Random(0))
    for arch in archs:
        assert mbv3.params(arch) >= mbv3.min_params() and mbv3.flops(arch) >= mbv3.min_flops()
    assert MBV3CostModel().params(archs[0]) == mbv3_params(archs[0])
    assert MBV3CostModel(160).flops(archs[0]) == mbv3_flops(archs[0], image_size=160)
    with pytest.raises(ValueError, match="'C' must be a positive integer"):
        NB201CostModel(C=0)
