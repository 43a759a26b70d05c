import numpy as np
import torch

from d2a.features import channel_stats, create_extractor, image_features, images_to_tensor
from d2a.search import DatasetFeatures, ImageFeatures


def _images(seed=0, per_class=(7, 3, 12)):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    images = rng.integers(0, 256, size=(len(labels), 6, 6, 1), dtype=np.uint8)
    return images, rng.permutation(labels)


def test_lazy_features_draw_like_precomputed_ones():
    torch.manual_seed(0)
    extractor = create_extractor('small_cnn', in_channels=1, hidden_channels=4,
                                 out_channels=5, num_layers=2).eval()
    images, labels = _images()
    mean, std = channel_stats(images)
    eager = image_features(extractor, images, device='cpu')
    full = DatasetFeatures('d', [eager[labels == c] for c in range(3)], ['a', 'b', 'c'], 1)
    lazy = ImageFeatures('d', images_to_tensor(images, mean, std, 1), labels, ['a', 'b', 'c'],
                         1, extractor)
    assert lazy.class_sizes() == full.class_sizes() == [7, 3, 12]
    assert not any(d.any() for d in lazy._done)  # nothing extracted before a draw
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for num_sample in (4, 5):  # class 'b' has fewer: drawn with replacement
        a, b = full.draw(num_sample, rng_a), lazy.draw(num_sample, rng_b)
        assert a.shape == b.shape == (3, num_sample, 5)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert 0 < sum(d.sum() for d in lazy._done) < len(labels)
    assert rng_a.random() == rng_b.random()  # the same random numbers were used
    lazy.complete()
    for f, g in zip(lazy.features, full.features):
        np.testing.assert_allclose(f, g, rtol=0, atol=1e-6)
