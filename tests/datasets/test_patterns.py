import numpy as np
import pytest

from d2a.datasets import parse_source, source_from_spec
from d2a.datasets.patterns import FAMILIES, PatternSource


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_family_renders_distinct_classes(family):
    src = PatternSource(family, images_per_class=6, image_size=12, noise=0.0)
    data = src.load()
    n = len(FAMILIES[family][0])
    assert data.images.shape == (6 * n, 12, 12, src.num_channels)
    assert data.classes == list(FAMILIES[family][0])
    means = np.stack([data.class_images(c).astype(float).mean(0) for c in data.classes])
    assert data.images.std() > 10  # not blank
    # classes differ (their mean images or their pixel statistics)
    stats = np.stack([np.r_[m.ravel(), data.class_images(c).std()] for m, c in
                      zip(means, data.classes)])
    assert len({tuple(np.round(s, 1)) for s in stats}) == n


def test_seeded_per_class_and_round_trip():
    a = PatternSource('shapes', images_per_class=3, image_size=10)
    b = source_from_spec(a.spec())
    assert np.array_equal(a.load().images, b.load().images)
    assert np.array_equal(a.render_class(2), a.load().class_images('triangle'))
    c = PatternSource('shapes', images_per_class=3, image_size=10, seed=3)
    assert not np.array_equal(a.render_class(2), c.render_class(2))
    assert parse_source('patterns:hue,image_size=8').num_channels == 3
    assert PatternSource('shapes', grayscale=True).num_channels == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown pattern family 'plaid'"):
        PatternSource('plaid')
    with pytest.raises(ValueError, match="'hue' is defined by colour"):
        PatternSource('hue', grayscale=True)
    with pytest.raises(ValueError, match='noise'):
        PatternSource('dots', noise=-1)
