r"""Images and labels stored as NumPy arrays in an ``.npz`` file."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from d2a.datasets.source import (ImageSet, ImageSource, labels_to_classes, register_source,
                                 resize_images, to_uint8_images)


@register_source
class NpzSource(ImageSource):
    r"""An ``.npz`` file holding an image array and a label array.

    Images may be ``[n, H, W]``, ``[n, H, W, C]`` or ``[n, C, H, W]``, ``uint8`` or floats in
    ``[0, 1]``; labels any 1-D array of class values (ints or strings).

    Args:
        path (str): the ``.npz`` file.
        images (str): key of the image array.
        labels (str): key of the label array.
        class_names (str, optional): key of an array naming integer labels.
        name (str, optional): source name (default: the file's stem).
    """
    kind = 'npz'
    positional = 'path'

    def __init__(self, path: str, images: str = 'images', labels: str = 'labels',
                 class_names: Optional[str] = None, name: Optional[str] = None) -> None:
        self.path = str(Path(path).expanduser().resolve())
        self.images_key = images
        self.labels_key = labels
        self.class_names_key = class_names
        self._name = name

    @property
    def name(self) -> str:
        return self._name or Path(self.path).stem

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f'.npz file {path} does not exist')
        try:
            data = np.load(path, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ValueError(f'{path} is not a readable .npz file: {e}') from None
        with data:
            keys = list(data.keys())
            for key in (self.images_key, self.labels_key, self.class_names_key):
                if key is not None and key not in keys:
                    raise ValueError(f"{path}: no array named {key!r} (arrays: {', '.join(keys)})")
            images = to_uint8_images(data[self.images_key], f'{path}[{self.images_key!r}]')
            names = data[self.class_names_key] if self.class_names_key else None
            ids, classes = labels_to_classes(data[self.labels_key],
                                             f'{path}[{self.labels_key!r}]', names)
        if len(ids) != len(images):
            raise ValueError(f'{path}: {len(images)} images but {len(ids)} labels')
        return ImageSet(resize_images(images, image_size), ids, classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'path': self.path, 'images': self.images_key,
                'labels': self.labels_key, 'class_names': self.class_names_key,
                'name': self._name}
