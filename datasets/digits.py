r"""scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, 10 classes)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from d2a.datasets.source import ImageSet, ImageSource, register_source, resize_images


@register_source
class DigitsSource(ImageSource):
    r"""The UCI optical digits as shipped with scikit-learn (no download).

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
        from sklearn.datasets import load_digits
        bunch = load_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
        return ImageSet(resize_images(images, image_size), bunch.target.astype(np.int64),
                        [str(c) for c in range(10)])

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'name': self._name}
