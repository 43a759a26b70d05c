r"""torchvision datasets already on disk (optional: needs ``torchvision``; never downloads)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from d2a.datasets.source import (ImageSet, ImageSource, labels_to_classes, register_source,
                                 resize_images, to_uint8_images)


@register_source
class TorchvisionSource(ImageSource):
    r"""A torchvision dataset class (e.g. ``CIFAR10``, ``MNIST``, ``SVHN``) read from ``root``.

    Args:
        dataset (str): class name in :mod:`torchvision.datasets`.
        root (str): folder holding the already downloaded files.
        train (bool): the training split (``split='train'`` for datasets that take a split).
        name (str, optional): source name (default: the dataset name in lower case).
    """
    kind = 'torchvision'
    positional = 'dataset'

    def __init__(self, dataset: str, root: str = '.', train: bool = True,
                 name: Optional[str] = None) -> None:
        self.dataset = dataset
        self.root = str(Path(root).expanduser().resolve())
        self.train = bool(train)
        self._name = name

    @property
    def name(self) -> str:
        return self._name or self.dataset.lower()

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        try:
            import torchvision.datasets as tvd
        except ImportError:
            raise ValueError(f"source torchvision:{self.dataset} needs torchvision "
                             "(pip install 'd2a[vision]')") from None
        cls = getattr(tvd, self.dataset, None)
        if cls is None:
            raise ValueError(f'torchvision.datasets has no dataset {self.dataset!r}')
        try:
            try:
                ds = cls(self.root, train=self.train, download=False)
            except TypeError:
                ds = cls(self.root, split='train' if self.train else 'test', download=False)
        except RuntimeError as e:  # torchvision's "Dataset not found" message
            raise FileNotFoundError(f'torchvision {self.dataset} not found under {self.root}: {e}') \
                from None
        field = f'torchvision {self.dataset}'
        data = getattr(ds, 'data', None)
        targets = getattr(ds, 'targets', getattr(ds, 'labels', None))
        if data is None or targets is None:  # datasets without in-memory arrays
            pairs = [ds[i] for i in range(len(ds))]
            data = np.stack([np.asarray(img) for img, _ in pairs])
            targets = [t for _, t in pairs]
        images = to_uint8_images(np.asarray(data), field)
        ids, classes = labels_to_classes(np.asarray(targets), field, getattr(ds, 'classes', None))
        return ImageSet(resize_images(images, image_size), ids, classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'dataset': self.dataset, 'root': self.root,
                'train': self.train, 'name': self._name}
