import math

import numpy as np
import pytest

from d2a.training.correlation import pearson, spearman


@pytest.mark.parametrize('seed', [0, 1])
def test_matches_scipy(seed):
    stats = pytest.importorskip('scipy.stats')
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, 30).astype(float)  # many ties
    y = x + rng.normal(size=30)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])


def test_degenerate_inputs():
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='one length'):
        pearson([1, 2], [1, 2, 3])
