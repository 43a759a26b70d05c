import math

import numpy as np
import pytest
import torch

from d2a.graphs import archs_to_dense, get_space
from d2a.metrics import (generation_metrics, novelty, pearson, reconstruction_accuracy, spearman,
                         uniqueness, validity)

A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
B = '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
# Two cells computing zero: isomorphic (same canonical key), different strings.
Z1 = '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'
Z2 = '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|'


def test_canonical_pair_is_isomorphic():
    space = get_space('nb201')
    assert space.canonical_key(Z1) == space.canonical_key(Z2) != space.canonical_key(A)


def test_validity_uniqueness_novelty():
    generated = [A, A, B, Z1, Z2, None, None, None]
    assert validity('nb201', generated) == 5 / 8
    assert uniqueness('nb201', generated) == 3 / 5
    assert novelty('nb201', generated, [B, Z2]) == 2 / 5
    m = generation_metrics('nb201', generated, train_archs=[B])
    assert m == {'num_generated': 8, 'num_valid': 5, 'num_unique': 3, 'validity': 5 / 8,
                 'uniqueness': 3 / 5, 'novelty': 4 / 5}
    assert uniqueness('nb201', [None]) == 0.0 and 'novelty' not in generation_metrics('nb201', [A])
    with pytest.raises(ValueError, match='empty'):
        validity('nb201', [])


def test_dense_input():
    space = get_space('nb201')
    node_type, adj = archs_to_dense(space, [A, B, Z1])
    adj[2, 0, 7] = True  # not an NB201 edge: invalid
    assert validity(space, (node_type, adj)) == 2 / 3
    assert reconstruction_accuracy(space, [A, B, Z1], (node_type, adj)) == 2 / 3


def test_reconstruction_accuracy():
    assert reconstruction_accuracy('nb201', [A, Z1, B], [A, Z2, None]) == 2 / 3
    with pytest.raises(ValueError, match='targets'):
        reconstruction_accuracy('nb201', [A], [A, B])


def test_mbv3_keys():
    space = get_space('mbv3')
    arch = space.sample(1)[0]
    assert validity(space, [arch, None]) == 0.5 and uniqueness(space, [arch, arch]) == 0.5
    t, a = archs_to_dense(space, [arch])
    assert reconstruction_accuracy(space, [arch], (t, a)) == 1.0
    assert torch.equal(t[0, [0, -1]], torch.tensor([0, 1]))


@pytest.mark.parametrize('seed', [0, 1])
def test_correlations_match_scipy(seed):
    stats = pytest.importorskip('scipy.stats')
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, 30).astype(float)  # many ties
    y = x + rng.normal(size=30)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])


def test_correlations_of_degenerate_inputs():
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='one length'):
        pearson([1, 2], [1, 2, 3])
