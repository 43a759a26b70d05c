import pytest

from d2a.utils.paths import (DEFAULT_CHECKPOINT_DIR, DEFAULT_DATABASE, PACKAGE_DIR,
                             database_name, default_checkpoint_dir, default_database)


def test_every_shipped_space_has_its_database_and_checkpoint_folder():
    assert default_database() == DEFAULT_DATABASE == default_database('nb201')
    assert default_checkpoint_dir('nb201') == DEFAULT_CHECKPOINT_DIR
    assert default_database('mbv3') == PACKAGE_DIR / 'data' / 'mini_mbv3.h5'
    assert default_checkpoint_dir('mbv3') == DEFAULT_CHECKPOINT_DIR / 'mbv3'
    assert database_name('mbv3') == 'mini_mbv3.h5'


def test_unknown_space_names_the_shipped_ones():
    with pytest.raises(ValueError, match="space 'darts'.*'nb201', 'mbv3'"):
        default_checkpoint_dir('darts')
