import numpy as np
import pytest
import torch

from d2a.datasets import DigitsSource, NpzSource
from d2a.db import MetaDatabase
from d2a.pipeline.build import build_database, source_features_like_db
from d2a.features import image_features, load_extractor_from_db


@pytest.fixture
def npz_source(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 6, 6, 3), dtype=np.uint8)
    labels = np.repeat(['cat', 'dog', 'eel', 'fox'], 10)
    path = tmp_path / 'pets.npz'
    np.savez(path, x=images, y=labels)
    return NpzSource(str(path), images='x', labels='y')


@pytest.mark.parametrize('extractor,config', [('raw_pixels', {'in_channels': 3, 'size': 2}),
                                              ('small_cnn', {'hidden_channels': 4,
                                                             'out_channels': 6,
                                                             'num_layers': 2})])
def test_build(tmp_path, npz_source, extractor, config):
    torch.manual_seed(0)
    path = tmp_path / 'db.h5'
    summary = build_database(path, [npz_source, DigitsSource()], extractor, config,
                             image_size=8, meta_test=['digits'], num_tasks=3,
                             classes_per_task=(2, 3), pretrain_epochs=1)
    assert summary['tasks'] == 4
    with MetaDatabase.open(path) as db:
        assert db.sources() == ['pets', 'digits']
        assert db.classes('pets') == ['cat', 'dog', 'eel', 'fox']
        assert [t.name for t in db.tasks('meta-test')] == ['digits']
        assert all(2 <= len(t.classes) <= 3 for t in db.tasks('meta-train'))
        info = db.source_info('pets')
        assert info['spec']['kind'] == 'npz' and len(info['mean']) == 3
        # the stored extractor reproduces the stored features from the raw images
        ex = load_extractor_from_db(db)
        images = npz_source.load(8)
        feats = image_features(ex, images.class_images('dog'), info['mean'], info['std'])
        np.testing.assert_allclose(feats, db.features('pets', 'dog'), rtol=1e-4, atol=1e-5)
    # ... and so does the one call a search makes for a new dataset
    new = source_features_like_db(path, f'npz:{npz_source.path},images=x,labels=y', device='cpu')
    assert list(new) == ['cat', 'dog', 'eel', 'fox']
    with MetaDatabase.open(path) as db:
        for cls, feats in new.items():
            np.testing.assert_allclose(feats, db.features('pets', cls), rtol=1e-4, atol=1e-5)


def test_build_rejects_duplicate_names_and_unknown_meta_test(tmp_path):
    with pytest.raises(ValueError, match='source names must differ'):
        build_database(tmp_path / 'x.h5', [DigitsSource(), DigitsSource()], 'raw_pixels')
    with pytest.raises(ValueError, match="meta-test source 'cifar'"):
        build_database(tmp_path / 'x.h5', [DigitsSource()], 'raw_pixels', meta_test=['cifar'])
    assert not (tmp_path / 'x.h5').exists()


def test_build_prints_plain_progress_lines(tmp_path, npz_source, capsys):
    torch.manual_seed(0)
    build_database(tmp_path / 'db.h5', [npz_source, DigitsSource()], 'small_cnn',
                   {'hidden_channels': 4, 'out_channels': 6, 'num_layers': 2}, image_size=8,
                   pretrain_epochs=2, log_interval=0.0)
    lines = capsys.readouterr().err.splitlines()
    heads = [line.split(' (')[0] for line in lines]
    assert heads == ['db build: load: 0/2 sources', 'db build: load: 1/2 sources',
                     'db build: load: 2/2 sources', 'pretrain small_cnn: 0/2 epochs',
                     'pretrain small_cnn: 1/2 epochs', 'pretrain small_cnn: 2/2 epochs',
                     'db build: features: 0/1,837 images', 'db build: features: 40/1,837 images',
                     'db build: features: 1,837/1,837 images']
    assert all(' elapsed, ETA ' in line for line in lines)
    # No lines by default (and none with bars).
    build_database(tmp_path / 'quiet.h5', [npz_source], 'raw_pixels',
                   {'in_channels': 3, 'size': 2}, image_size=8)
    assert capsys.readouterr().err == ''
