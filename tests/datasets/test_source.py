import importlib.util

import numpy as np
import pytest
from PIL import Image

from d2a.datasets import (DigitsSource, ImageFolder, NpzSource, TorchvisionSource, list_sources,
                          parse_source, source_from_spec)
from d2a.datasets.source import to_uint8_images


def _folder(root, classes=('a', 'b'), n=3, size=(5, 5)):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full(size + (3,), 40 * i, dtype=np.uint8)).save(root / c / f'{i}.png')
    return root


def test_image_folder(tmp_path):
    root = _folder(tmp_path / 'imgs')
    (root / 'a' / 'notes.txt').write_text('not an image')
    (root / 'b' / 'broken.jpg').write_bytes(b'\xff\xd8\xff truncated')
    src = ImageFolder(str(root))
    with pytest.warns(UserWarning, match='skipped 2 unreadable'):
        data = src.load(4)
    assert data.images.shape == (6, 4, 4, 3) and data.classes == ['a', 'b']
    assert len(src.skipped) == 2 and src.name == 'imgs'
    assert source_from_spec(src.spec()).root == src.root
    with pytest.raises(ValueError, match='cannot read image .*notes.txt'):
        ImageFolder(str(root), strict=True).load(4)
    grey = ImageFolder(str(root), grayscale=True)
    with pytest.warns(UserWarning):
        assert grey.load(None).images.shape == (6, 5, 5, 1)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing'):
        ImageFolder(str(tmp_path / 'missing')).load()
    (tmp_path / 'flat').mkdir()
    with pytest.raises(ValueError, match='no class sub-folders'):
        ImageFolder(str(tmp_path / 'flat')).load()
    root = _folder(tmp_path / 'imgs')
    (root / 'empty').mkdir()
    with pytest.raises(ValueError, match="class folder .*empty has no readable image"):
        ImageFolder(str(root)).load()
    mixed = _folder(tmp_path / 'mixed', ('a',), size=(5, 5))
    Image.fromarray(np.zeros((7, 7, 3), dtype=np.uint8)).save(mixed / 'a' / 'big.png')
    with pytest.raises(ValueError, match='several sizes'):
        ImageFolder(str(mixed)).load(None)


@pytest.mark.parametrize('layout', ['nhw', 'nhwc', 'nchw', 'float'])
def test_npz(tmp_path, layout):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
    arr = {'nhw': x, 'nhwc': x[..., None], 'nchw': x[:, None], 'float': x / 255.0}[layout]
    np.savez(tmp_path / 'd.npz', images=arr, labels=np.array([2, 0, 2, 0, 1, 1]),
             names=np.array(['zero', 'one', 'two']))
    data = NpzSource(str(tmp_path / 'd.npz'), class_names='names').load()
    assert data.images.shape == (6, 4, 4, 1)
    assert np.array_equal(data.images[..., 0], x)
    assert data.classes == ['zero', 'one', 'two'] and data.labels.tolist() == [2, 0, 2, 0, 1, 1]
    assert data.class_images('two').shape == (2, 4, 4, 1)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / 'd.npz', x=np.zeros((3, 4, 4)), y=np.zeros(2))
    with pytest.raises(ValueError, match="no array named 'images'"):
        NpzSource(str(tmp_path / 'd.npz')).load()
    with pytest.raises(ValueError, match='3 images but 2 labels'):
        NpzSource(str(tmp_path / 'd.npz'), images='x', labels='y').load()
    (tmp_path / 'bad.npz').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='bad.npz is not a readable .npz'):
        NpzSource(str(tmp_path / 'bad.npz')).load()
    with pytest.raises(ValueError, match='1 or 3 channels'):
        to_uint8_images(np.zeros((2, 4, 4, 5)), 'field')


def test_digits_and_parse():
    data = DigitsSource().load(12)
    assert data.images.shape == (1797, 12, 12, 1) and data.images.max() == 255
    src = parse_source('glyphs:digits,images_per_class=2,rotation=0')
    assert src.images_per_class == 2 and src.rotation == 0.0
    assert parse_source('digits').name == 'digits'
    with pytest.raises(ValueError, match="unknown kind 'zip'"):
        parse_source('zip:x')
    with pytest.raises(ValueError, match="must be 'key=value'"):
        parse_source('glyphs:digits,oops')
    with pytest.raises(ValueError, match="invalid spec for a 'digits' source"):
        source_from_spec({'kind': 'digits', 'colour': 1})
    assert {'folder', 'npz', 'digits', 'glyphs', 'torchvision'} <= set(list_sources())


@pytest.mark.skipif(importlib.util.find_spec('torchvision') is not None,
                    reason='torchvision is installed')
def test_torchvision_optional(tmp_path):
    with pytest.raises(ValueError, match='needs torchvision'):
        TorchvisionSource('CIFAR10', str(tmp_path)).load()
