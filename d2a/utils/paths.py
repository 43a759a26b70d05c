r"""Where d2a's package data lives: the embedded default built by ``d2a embedded``
(``docs/embedded.md``)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

#: The installed package folder (``d2a/``).
PACKAGE_DIR: Path = Path(__file__).resolve().parent.parent
#: File name of the shipped mini meta-database.
DB_NAME: str = 'mini_nb201.h5'
#: The shipped mini meta-database.
DEFAULT_DATABASE: Path = PACKAGE_DIR / 'data' / DB_NAME
#: The shipped checkpoints: ``generator.pt``, ``predictor.pt`` and ``extractor.pt``.
DEFAULT_CHECKPOINT_DIR: Path = PACKAGE_DIR / 'checkpoints'
#: The files of a checkpoint folder that ``d2a search`` reads.
CHECKPOINT_FILES = ('generator.pt', 'predictor.pt', 'extractor.pt')
#: File names of the shipped mini meta-databases, by search space.
DB_NAMES = {'nb201': DB_NAME, 'mbv3': 'mini_mbv3.h5'}
#: Sub-folders of :data:`DEFAULT_CHECKPOINT_DIR` holding a space's shipped checkpoints
#: (NB201's are the folder itself).
_CHECKPOINT_SUBDIRS = {'nb201': '', 'mbv3': 'mbv3'}


def _known_space(space: str) -> str:
    if space not in DB_NAMES:
        raise ValueError(f"no shipped database or checkpoints for space {space!r} "
                         f"(shipped: {', '.join(map(repr, DB_NAMES))})")
    return space


def database_name(space: str = 'nb201') -> str:
    r"""File name of the shipped mini meta-database of ``space``."""
    return DB_NAMES[_known_space(space)]


def default_database(space: str = 'nb201') -> Path:
    r"""The shipped mini meta-database of ``space`` (``d2a/data/mini_<space>.h5``)."""
    return PACKAGE_DIR / 'data' / database_name(space)


def checkpoint_subdir(space: str = 'nb201') -> str:
    r"""Where ``space``'s shipped checkpoints lie below ``d2a/checkpoints/`` (``''``: there)."""
    return _CHECKPOINT_SUBDIRS[_known_space(space)]


def default_checkpoint_dir(space: str = 'nb201') -> Path:
    r"""The shipped checkpoint folder of ``space``: ``d2a/checkpoints/`` for NB201,
    ``d2a/checkpoints/mbv3/`` for MobileNetV3."""
    sub = checkpoint_subdir(space)
    return DEFAULT_CHECKPOINT_DIR / sub if sub else DEFAULT_CHECKPOINT_DIR


def checkpoint_path(directory: Union[str, Path], kind: str, last: bool = False) -> Path:
    r"""``<directory>/<kind>.pt`` (the best model of a run) or, with ``last``,
    ``<directory>/<kind>.last.pt`` (the resumable state of its last finished epoch)."""
    return Path(directory) / (f'{kind}.last.pt' if last else f'{kind}.pt')
