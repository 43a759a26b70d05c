r"""Advisory locks that keep two processes from doing the same long job on one file.

:func:`file_lock` holds an exclusive lock on a hidden ``.<name>.lock`` file next to the
file it guards, for as long as the ``with`` block runs, and refuses at once (no waiting)
when another process holds it, naming that process. The operating system drops the lock
when its holder exits, even after ``kill -9``; the lock file itself stays and is harmless.
Within one process the lock is re-entrant. On systems without :mod:`fcntl` (Windows) it
does nothing.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

from d2a.utils.atomic import PathLike

#: Locks this process holds: resolved lock path -> (open file, nesting depth).
_HELD: Dict[str, Tuple[object, int]] = {}


class FileLocked(RuntimeError):
    r"""Another process holds the lock of a file (see :func:`file_lock`)."""


def lock_path(path: PathLike) -> Path:
    r"""The lock file guarding ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f'.{path.name}.lock')


@contextlib.contextmanager
def file_lock(path: PathLike, what: str = 'file') -> Iterator[None]:
    r"""Holds the exclusive lock of ``path`` for the ``with`` block.

    Args:
        path (str or os.PathLike): the file guarded (it need not exist).
        what (str): what holds the lock, for the message (e.g. ``'labelling'``).

    Raises :class:`FileLocked` naming the holder's process id when another process holds
    the lock.
    """
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system
        yield
        return
    lock = lock_path(path)
    key = str(lock.resolve())
    if key in _HELD:
        f, depth = _HELD[key]
        _HELD[key] = (f, depth + 1)
        try:
            yield
        finally:
            f, depth = _HELD[key]
            _HELD[key] = (f, depth - 1)
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or 'unknown'
        f.close()
        raise FileLocked(f'{path} is in use by another process ({holder}): wait for it to '
                         f'finish or stop it; two runs of {what} on one file would each do '
                         'all the work') from None
    f.seek(0)
    f.truncate()
    f.write(f'pid {os.getpid()}, since {time.strftime("%Y-%m-%d %H:%M:%S")}')
    f.flush()
    _HELD[key] = (f, 1)
    try:
        yield
    finally:
        _HELD.pop(key)
        f.close()  # closing the file releases the lock
