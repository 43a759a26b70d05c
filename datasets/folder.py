r"""An image folder: one sub-folder per class, images read with Pillow.

Unreadable files are **skipped and counted**, not fatal: real collections carry thumbnails,
``.DS_Store`` files and the odd truncated JPEG, and one of them should not stop a build of
hundreds of classes. The count and the first names are kept in :attr:`ImageFolder.skipped`
and reported as a warning; ``strict=True`` raises instead, naming the file. A class folder
left without any readable image is always an error naming the folder.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from d2a.datasets.source import ImageSet, ImageSource, register_source


@register_source
class ImageFolder(ImageSource):
    r"""Images in ``root/<class>/<file>``, one sub-folder per class (sorted by name).

    Args:
        root (str): the folder.
        name (str, optional): source name (default: the folder's name).
        grayscale (bool): read images as one grey channel instead of RGB.
        strict (bool): raise on an unreadable file instead of skipping it.
    """
    kind = 'folder'
    positional = 'root'

    def __init__(self, root: str, name: Optional[str] = None, grayscale: bool = False,
                 strict: bool = False) -> None:
        self.root = str(Path(root).expanduser().resolve())
        self._name = name
        self.grayscale = bool(grayscale)
        self.strict = bool(strict)
        #: Files skipped by the last :meth:`load` (paths).
        self.skipped: List[str] = []

    @property
    def name(self) -> str:
        return self._name or Path(self.root).name

    def class_folders(self) -> List[Path]:
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(f'image folder {root} does not exist')
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
        if not folders:
            raise ValueError(f'image folder {root} has no class sub-folders '
                             '(expected root/<class>/<image files>)')
        return folders

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        from PIL import Image, UnidentifiedImageError
        mode = 'L' if self.grayscale else 'RGB'
        images, labels, classes = [], [], []
        self.skipped = []
        for folder in self.class_folders():
            count = 0
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                try:
                    with Image.open(path) as img:
                        img = img.convert(mode)
                        if image_size is not None:
                            img = img.resize((image_size, image_size), Image.BILINEAR)
                        arr = np.asarray(img, dtype=np.uint8)
                except (UnidentifiedImageError, OSError, ValueError) as e:
                    if self.strict:
                        raise ValueError(f'cannot read image {path}: {e}') from None
                    self.skipped.append(str(path))
                    continue
                images.append(arr.reshape(arr.shape[0], arr.shape[1], -1))
                labels.append(len(classes))
                count += 1
            if count == 0:
                raise ValueError(f'class folder {folder} has no readable image')
            classes.append(folder.name)
        if self.skipped:
            warnings.warn(f'image folder {self.root}: skipped {len(self.skipped)} unreadable '
                          f'file(s), e.g. {", ".join(os.path.basename(p) for p in self.skipped[:3])}')
        shapes = {a.shape for a in images}
        if len(shapes) > 1:
            raise ValueError(f'image folder {self.root} holds images of several sizes '
                             f'({", ".join(map(str, sorted(shapes)[:3]))}): pass an image size')
        return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'root': self.root, 'name': self._name,
                'grayscale': self.grayscale, 'strict': self.strict}

