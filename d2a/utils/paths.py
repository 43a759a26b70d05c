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


def checkpoint_path(directory: Union[str, Path], kind: str, last: bool = False) -> Path:
    r"""``<directory>/<kind>.pt`` (the best model of a run) or, with ``last``,
    ``<directory>/<kind>.last.pt`` (the resumable state of its last finished epoch)."""
    return Path(directory) / (f'{kind}.last.pt' if last else f'{kind}.pt')
