r"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, 'os.PathLike[str]']


def _umask_mode() -> int:
    # mkstemp creates 0600 files; give the final file the mode a plain open() would.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': encoding})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    r"""Yields a temporary path next to ``path`` for writers that want a file name
    (``torch.save``, ``savefig``, ``torch.jit.save``); moved onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=path.suffix or '.tmp',
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
