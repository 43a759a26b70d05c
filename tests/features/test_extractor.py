import importlib.util

import numpy as np
import pytest
import torch

from d2a.features import (channel_stats, create_extractor, extract_features, extractor_to_bytes,
                          image_features, images_to_tensor, list_extractors, load_extractor,
                          load_extractor_file, pretrain_small_cnn, save_extractor)

CONFIGS = [('small_cnn', {'in_channels': 3, 'hidden_channels': 4, 'out_channels': 8,
                          'num_layers': 3}, 8),
           ('small_cnn', {'in_channels': 1, 'hidden_channels': 2, 'out_channels': 5,
                          'num_layers': 1}, 5),
           ('raw_pixels', {'in_channels': 3, 'size': 2}, 12)]


def test_registry():
    assert {'small_cnn', 'raw_pixels', 'resnet18_imagenet'} <= set(list_extractors())
    with pytest.raises(ValueError, match="unknown feature extractor 'vgg'"):
        create_extractor('vgg')
    with pytest.raises(ValueError, match="invalid configuration for feature extractor 'raw_pixels'"):
        create_extractor('raw_pixels', depth=3)


@pytest.mark.parametrize('name,config,dim', CONFIGS)
def test_shapes_and_round_trip(tmp_path, name, config, dim):
    torch.manual_seed(0)
    ex = create_extractor(name, **config).eval()
    assert ex.out_channels == dim and 'in_channels=' in repr(ex)
    x = torch.randn(5, config['in_channels'], 8, 8)
    out = extract_features(ex, x, batch_size=2, device='cpu')
    assert out.shape == (5, dim) and out.dtype == np.float32
    # The same weights on other batches (2 images above, all 5 here): float32 results may
    # differ by rounding (a few 1e-9 on some machines), which a relative tolerance alone
    # rejects for features near zero.
    again = load_extractor(name, ex.config(), extractor_to_bytes(ex))
    np.testing.assert_allclose(extract_features(again, x, device='cpu'), out, rtol=1e-6,
                               atol=1e-6)
    save_extractor(ex, tmp_path / 'ex.pt')
    loaded = load_extractor_file(tmp_path / 'ex.pt')
    np.testing.assert_allclose(extract_features(loaded, x, device='cpu'), out, rtol=1e-6,
                               atol=1e-6)
    with pytest.raises(ValueError, match='channels'):
        extract_features(ex, torch.randn(2, config['in_channels'] + 1, 8, 8))


def test_bad_weights(tmp_path):
    ex = create_extractor('small_cnn', hidden_channels=2, out_channels=4, num_layers=2)
    with pytest.raises(ValueError, match="do not fit feature extractor 'small_cnn'"):
        load_extractor('small_cnn', {'hidden_channels': 2, 'out_channels': 6, 'num_layers': 2},
                       extractor_to_bytes(ex))
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        load_extractor('small_cnn', {}, tmp_path / 'missing.pt')
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'junk')
    with pytest.raises(ValueError, match='junk.pt'):
        load_extractor_file(junk)


@pytest.mark.skipif(importlib.util.find_spec('torchvision') is not None,
                    reason='torchvision is installed')
def test_resnet_needs_torchvision():
    with pytest.raises(ValueError, match='needs torchvision'):
        create_extractor('resnet18_imagenet')


@pytest.mark.skipif(importlib.util.find_spec('torchvision') is None, reason='needs torchvision')
def test_resnet_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match='no ImageNet ResNet-18 weights'):
        create_extractor('resnet18_imagenet')


def test_images_to_tensor_channels():
    grey = np.full((2, 4, 4, 1), 255, dtype=np.uint8)
    mean, std = channel_stats(grey)
    assert mean == [1.0] and std == [1.0]  # constant images: std falls back to 1
    x = images_to_tensor(grey, [0.5], [0.25], in_channels=3)
    assert x.shape == (2, 3, 4, 4) and torch.allclose(x, torch.full_like(x, 2.0))
    rgb = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    assert images_to_tensor(rgb, [0, 0, 0], [1, 1, 1], in_channels=1).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match='3 channels but the statistics have 1'):
        images_to_tensor(rgb, [0.5], [0.2])


def test_image_features_normalises_per_dataset():
    ex = create_extractor('raw_pixels', in_channels=1, size=1)
    images = np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1) * 50
    feats = image_features(ex, images, device='cpu')
    assert abs(feats.mean()) < 1e-5 and abs(feats.std() - 1) < 1e-4


def test_pretrain_small_cnn_is_seeded():
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(12, 1, 8, 8, generator=g), torch.arange(12) % 3),
            (torch.randn(8, 1, 8, 8, generator=g), torch.arange(8) % 2)]
    kw = dict(in_channels=1, hidden_channels=2, out_channels=4, num_layers=2, epochs=2,
              batch_size=8, seed=3, device='cpu')
    a, b = pretrain_small_cnn(data, **kw), pretrain_small_cnn(data, **kw)
    assert not a.training
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(ValueError, match='at least one source'):
        pretrain_small_cnn([])
