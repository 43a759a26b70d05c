r"""scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, 10 classes)."""
from __future__ import annotations

import gzip
import importlib.util
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from d2a.datasets.source import ImageSet, ImageSource, register_source, resize_images


@register_source
class DigitsSource(ImageSource):
    r"""The UCI optical digits as shipped with scikit-learn (no download; read with
    :func:`read_digits`).

    Pixel values ``0..16`` are scaled to ``0..255``.
    """
    kind = 'digits'
    positional = 'name'

    def __init__(self, name: Optional[str] = None) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name or 'digits'

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        pixels, target = read_digits()
        images = np.rint(pixels * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
        return ImageSet(resize_images(images, image_size), target.astype(np.int64),
                        [str(c) for c in range(10)])

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'name': self._name}


def read_digits() -> Tuple[np.ndarray, np.ndarray]:
    r"""``(images [1797, 8, 8] float64 in 0..16, labels [1797] int)``: what
    :func:`sklearn.datasets.load_digits` returns as ``images`` and ``target``, read from the
    ``digits.csv.gz`` file scikit-learn ships without importing scikit-learn (which takes
    longer than reading the file); scikit-learn's loader when the file is not found."""
    spec = importlib.util.find_spec('sklearn')
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = os.path.join(root, 'datasets', 'data', 'digits.csv.gz')
        if os.path.isfile(path):
            with gzip.open(path, mode='rt', encoding='utf-8') as f:
                data = np.loadtxt(f, delimiter=',')
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.images, bunch.target
