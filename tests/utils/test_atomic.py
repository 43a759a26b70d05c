import os
import stat

import pytest

from d2a.utils.atomic import atomic_path, atomic_replace, atomic_write, temp_path


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith('.')]


def test_atomic_write_replaces_on_success_only(tmp_path):
    path = tmp_path / 'sub' / 'a.txt'
    with atomic_write(path) as f:
        f.write('one')
    assert path.read_text() == 'one'
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write('two')
            raise RuntimeError('interrupted')
    assert path.read_text() == 'one' and _leftovers(path.parent) == []
    with atomic_write(path, 'wb') as f:
        f.write(b'\x00\x01')
    assert path.read_bytes() == b'\x00\x01'
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_write(path, 'a'):
            pass


def test_atomic_path_and_replace(tmp_path):
    path = tmp_path / 'model.pt'
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == '.pt' and tmp.exists()
        tmp.write_bytes(b'weights')
    assert path.read_bytes() == b'weights' and _leftovers(tmp_path) == []
    tmp = temp_path(path)
    tmp.write_text('new')
    atomic_replace(tmp, path)
    assert path.read_text() == 'new' and not tmp.exists()


def test_files_get_the_mode_of_a_plain_open(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / 'f.txt') as f:
            f.write('x')
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / 'f.txt').stat().st_mode) == 0o644
