r"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer builds its file under a temporary name in the target's folder
(:func:`temp_path`) and moves it into place with :func:`atomic_replace` (``fsync``, then
:func:`os.replace`, a rename on one file system). :func:`atomic_write` and
:func:`atomic_path` wrap the two for writers of a whole file; the meta-database's
transactions (:class:`~d2a.db.MetaDatabase`) call them directly.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

#: A file-system path as d2a's functions accept it.
PathLike = Union[str, 'os.PathLike[str]']


def _umask_mode() -> int:
    # mkstemp creates 0600 files; give the final file the mode a plain open() would.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path: PathLike, suffix: str = '.tmp') -> Path:
    r"""A new, empty temporary file next to ``path`` (its folder is created when missing),
    with the permissions a plain :func:`open` would give ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    return Path(tmp)


def fsync_file(path: PathLike) -> None:
    r"""Flushes ``path``'s contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(tmp: PathLike, path: PathLike) -> None:
    r"""Moves the finished temporary file ``tmp`` onto ``path``: its contents are flushed to
    the disk first, so that ``path`` never names a half-written file, even after a crash."""
    fsync_file(tmp)
    os.replace(tmp, path)


def _discard(tmp: PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'w', encoding: str = 'utf-8') -> Iterator[IO]:
    r"""Opens a temporary file next to ``path`` and moves it onto ``path`` on success.

    The temporary file lives in the same folder so that :func:`os.replace` is a rename on
    one file system; on error it is removed and ``path`` is left untouched.

    Args:
        path (str or os.PathLike): the file to write; its folder is created when missing.
        mode (str): ``'w'`` (text) or ``'wb'`` (binary).
        encoding (str): text encoding in text mode.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    tmp = temp_path(path)
    try:
        with open(tmp, mode, **({} if 'b' in mode else {'encoding': encoding})) as f:
            yield f
        atomic_replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    r"""Yields a temporary path next to ``path`` for writers that want a file name
    (``torch.save``, ``savefig``, ``torch.export.save``); moved onto ``path`` on success."""
    path = Path(path)
    tmp = temp_path(path, suffix=path.suffix or '.tmp')
    try:
        yield tmp
        atomic_replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
