import numpy as np
import pytest

from d2a.datasets import parse_source, source_from_spec
from d2a.datasets.photos import PHOTO_SETS, PHOTOS, PhotoPatchSource, load_photo

pytest.importorskip('skimage')  # the photographs are files of scikit-image's wheel


def test_photo_sets_are_disjoint_and_known():
    seen = set()
    for name, photos in PHOTO_SETS.items():
        assert set(photos) <= set(PHOTOS), name
        assert not seen & set(photos), f'{name} shares a photograph with another set'
        seen |= set(photos)


@pytest.mark.parametrize('name', sorted(PHOTOS))
def test_every_photo_loads(name):
    rgb, grey = load_photo(name), load_photo(name, grayscale=True)
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
    assert grey.shape == rgb.shape[:2] + (1,)
    assert min(rgb.shape[:2]) >= 100 and rgb.std() > 5  # a real picture, not blank


def test_patches_are_seeded_per_class():
    a = PhotoPatchSource('chelsea+coffee', images_per_class=4, image_size=10).load()
    b = PhotoPatchSource('coffee', images_per_class=4, image_size=10).load()
    assert a.images.shape == (8, 10, 10, 3) and a.classes == ['chelsea', 'coffee']
    assert np.array_equal(a.class_images('coffee'), b.images)  # independent of other classes
    c = PhotoPatchSource('coffee', images_per_class=4, image_size=10, seed=1).load()
    assert not np.array_equal(b.images, c.images)
    g = PhotoPatchSource('coffee', images_per_class=2, image_size=10, grayscale=True).load()
    assert g.num_channels == 1


def test_spec_round_trip_and_parse():
    src = parse_source('photos:grey_a,images_per_class=3,image_size=8,scale_max=0.5')
    assert src.name == 'photos_grey_a' and len(src.classes) == len(PHOTO_SETS['grey_a'])
    again = source_from_spec(src.spec())
    assert np.array_equal(src.load().images, again.load().images)


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="unknown photograph or photo set 'mona_lisa'"):
        PhotoPatchSource('coffee+mona_lisa')
    with pytest.raises(ValueError, match='twice'):
        PhotoPatchSource('coffee+coffee')
    with pytest.raises(ValueError, match='scale_min <= scale_max'):
        PhotoPatchSource('coffee', scale_min=0.5, scale_max=0.2)
