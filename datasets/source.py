r"""Raw image sources of the meta-database, and the registry that rebuilds them from a spec.

A source is a labelled image collection (a folder, an ``.npz`` file, scikit-learn's digits,
a torchvision dataset, rendered glyphs). Every source can describe itself as a small JSON
*spec* (:meth:`ImageSource.spec`) from which :func:`source_from_spec` rebuilds it; the
meta-database stores that spec, so labelling re-derives a task's raw images instead of
storing them.

On the command line a source is written ``kind:argument,key=value,...``
(:func:`parse_source`), e.g. ``glyphs:greek_lower,images_per_class=80``,
``folder:/data/flowers``, ``npz:faces.npz,images=x,labels=y`` or ``digits``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Type

import numpy as np

from d2a.utils.registry import Registry


@dataclass
class ImageSet:
    r"""Images of one source, resized to one size.

    Args:
        images (numpy.ndarray): ``[num_images, height, width, channels]`` ``uint8``.
        labels (numpy.ndarray): ``[num_images]`` class ids into :attr:`classes`.
        classes (list of str): class names, in id order.
    """
    images: np.ndarray
    labels: np.ndarray
    classes: List[str]

    def class_images(self, cls: str) -> np.ndarray:
        r"""``[n, H, W, C]`` images of class ``cls`` in source order."""
        if cls not in self.classes:
            raise ValueError(f'class {cls!r} is not in this image set '
                             f'(classes: {", ".join(self.classes[:10])}'
                             f'{", ..." if len(self.classes) > 10 else ""})')
        return self.images[self.labels == self.classes.index(cls)]

    @property
    def num_channels(self) -> int:
        return int(self.images.shape[-1])

    def require_classes(self, name: str, min_classes: int = 2, min_per_class: int = 2,
                        purpose: str = 'a search') -> None:
        r"""Raises :class:`ValueError` for a set too small to mean anything: fewer than
        ``min_classes`` classes, or a class (named) with fewer than ``min_per_class``
        images. ``name`` names the dataset and ``purpose`` what needs the images."""
        check_class_counts(name, self.classes, np.bincount(self.labels,
                                                           minlength=len(self.classes)),
                           min_classes, min_per_class, purpose)


class ImageSource(ABC):
    r"""A labelled image collection that can be rebuilt from :meth:`spec`."""
    kind: str = ''
    #: Constructor parameter the bare argument of :func:`parse_source` goes to.
    positional: str = ''

    @property
    @abstractmethod
    def name(self) -> str:
        r"""Default source name in a meta-database."""

    @abstractmethod
    def load(self, image_size: Optional[int] = None) -> ImageSet:
        r"""Reads every image, resized to ``image_size`` x ``image_size`` (native size when
        ``None``; all images must then have one size)."""

    @abstractmethod
    def spec(self) -> Dict[str, Any]:
        r"""JSON-able description from which :func:`source_from_spec` rebuilds the source."""

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.spec().items() if k != 'kind')
        return f'{self.__class__.__name__}({args})'


def _import_sources() -> None:
    from d2a.datasets import (digits, folder, glyphs, npz, patterns, photos,  # noqa: F401
                              vision)  # (registers them)


#: The source classes by kind.
SOURCES: Registry[Type[ImageSource]] = Registry('source kind', key=lambda cls: cls.kind,
                                                populate=_import_sources)


def register_source(cls: Type[ImageSource]) -> Type[ImageSource]:
    r"""Class decorator adding a source kind to :func:`source_from_spec`."""
    return SOURCES.register()(cls)


def list_sources() -> List[str]:
    return SOURCES.names()


def source_from_spec(spec: Dict[str, Any]) -> ImageSource:
    r"""Rebuilds a source from the dict :meth:`ImageSource.spec` returned."""
    spec = dict(spec)
    kind = spec.pop('kind', None)
    if kind not in SOURCES:
        raise ValueError(f"unknown source kind {kind!r} in spec (known: {', '.join(list_sources())})")
    try:
        return SOURCES.get(kind)(**spec)
    except TypeError as e:
        raise ValueError(f'invalid spec for a {kind!r} source: {e}') from None


def parse_source(text: str) -> ImageSource:
    r"""Parses ``kind[:argument][,key=value]...`` (see the module docstring).

    The argument goes to the source's first constructor parameter; values are parsed as
    ``int``, ``float``, ``true``/``false`` when they look like one.
    """
    kind, _, rest = text.partition(':')
    parts = [p for p in rest.split(',')] if rest else []
    spec: Dict[str, Any] = {'kind': kind.strip()}
    if spec['kind'] not in SOURCES:
        raise ValueError(f"source {text!r}: unknown kind {spec['kind']!r} "
                         f"(known: {', '.join(list_sources())})")
    cls = SOURCES.get(spec['kind'])
    for i, part in enumerate(parts):
        key, eq, value = part.partition('=')
        if not eq:
            if i > 0:
                raise ValueError(f"source {text!r}: {part!r} must be 'key=value'")
            spec[cls.positional] = part
        else:
            spec[key.strip()] = _parse_value(value.strip())
    return source_from_spec(spec)


def open_source(dataset: Any) -> ImageSource:
    r"""The :class:`~d2a.datasets.ImageSource` of an image folder, an ``.npz`` file, a
    source spec such as ``'digits'`` or ``'glyphs:greek_lower'`` (see
    :func:`~d2a.datasets.parse_source`), or a source given as is."""
    from pathlib import Path

    # Imported here: both modules build on this one.
    from d2a.datasets.folder import ImageFolder
    from d2a.datasets.npz import NpzSource
    if isinstance(dataset, ImageSource):
        return dataset
    path = Path(dataset)
    if path.is_dir():
        return ImageFolder(str(path))
    if path.is_file() and path.suffix == '.npz':
        return NpzSource(str(path))
    if path.exists():
        raise ValueError(f'dataset {path} must be an image folder (one sub-folder per class) '
                         'or an .npz file with images and labels arrays')
    text = str(dataset)
    if text.partition(':')[0] in list_sources():
        return parse_source(text)
    raise FileNotFoundError(f'dataset {path} does not exist (give an image folder, an .npz '
                            f"file or a source spec: {', '.join(list_sources())})")


def _parse_value(value: str) -> Any:
    if value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def check_rendering(images_per_class: int, image_size: int, noise: float = 0.0) -> None:
    r"""Raises :class:`ValueError` naming the argument when a rendered source's sizes or
    pixel noise are out of range (shared by the glyph, photo and pattern sources)."""
    if images_per_class < 1:
        raise ValueError(f'images_per_class must be >= 1, got {images_per_class}')
    if image_size < 4:
        raise ValueError(f'image_size must be >= 4, got {image_size}')
    if noise < 0:
        raise ValueError(f'noise must be >= 0, got {noise}')


def resize_images(images: np.ndarray, image_size: Optional[int]) -> np.ndarray:
    r"""Resizes ``[n, H, W, C]`` ``uint8`` images to ``image_size`` squared (bilinear)."""
    if image_size is None or images.shape[1:3] == (image_size, image_size):
        return images
    from PIL import Image
    out = np.empty((len(images), image_size, image_size, images.shape[-1]), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        pil = pil.resize((image_size, image_size), Image.BILINEAR)
        out[i] = np.asarray(pil).reshape(image_size, image_size, -1)
    return out


def check_class_counts(name: str, classes: Sequence[str], counts: Sequence[int],
                       min_classes: int = 2, min_per_class: int = 2,
                       purpose: str = 'a search') -> None:
    r"""Raises :class:`ValueError` when dataset ``name`` has fewer than ``min_classes``
    classes or a class with fewer than ``min_per_class`` images (``counts[i]`` images of
    ``classes[i]``), naming the first such class."""
    if len(classes) < min_classes:
        raise ValueError(f'dataset {name} has {len(classes)} class'
                         f"{'' if len(classes) == 1 else 'es'}: {purpose} needs at least "
                         f'{min_classes} (one class makes every architecture look perfect)')
    small = [(c, int(n)) for c, n in zip(classes, counts) if n < min_per_class]
    if small:
        cls, n = small[0]
        raise ValueError(f'dataset {name}: class {cls!r} has {n} image{"" if n == 1 else "s"} '
                         f'({len(small)} class{"" if len(small) == 1 else "es"} below '
                         f'{min_per_class}): {purpose} needs at least {min_per_class} per class')


def to_uint8_images(images: np.ndarray, field: str) -> np.ndarray:
    r"""Brings an array of images into ``[n, H, W, C]`` ``uint8``.

    Accepts ``[n, H, W]`` (grey), ``[n, H, W, C]`` or ``[n, C, H, W]`` with ``C`` in 1/3;
    floats in ``[0, 1]`` or ``[0, 255]``. ``field`` names the array in error messages.
    """
    images = np.asarray(images)
    if images.ndim == 2:  # flattened square images, as in scikit-learn's digits
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f'{field}: flat images of {images.shape[1]} values are not square')
        images = images.reshape(-1, side, side)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f'{field}: images must be [n, H, W], [n, H, W, C] or [n, C, H, W], '
                         f'got shape {list(images.shape)}')
    if images.shape[-1] not in (1, 3) and images.shape[1] in (1, 3):
        images = images.transpose(0, 2, 3, 1)
    if images.shape[-1] not in (1, 3):
        raise ValueError(f'{field}: images need 1 or 3 channels, got shape {list(images.shape)}')
    if images.dtype != np.uint8:
        images = images.astype(np.float64)
        bad = ~np.isfinite(images)
        if bad.any():
            first = int(np.flatnonzero(bad.reshape(len(images), -1).any(1))[0])
            raise ValueError(f'{field}: {int(bad.sum())} pixel values are NaN or infinite '
                             f'(first in image {first})')
        if images.size and images.max() <= 1.0:
            images = images * 255.0
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(images)


def labels_to_classes(labels: Sequence[Any], field: str,
                      class_names: Optional[Sequence[str]] = None) -> tuple:
    r"""``(ids, classes)``: dense class ids ``[n]`` and class names for arbitrary labels."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f'{field}: labels must be one-dimensional, got shape {list(labels.shape)}')
    values, ids = np.unique(labels, return_inverse=True)
    if class_names is not None:
        if np.issubdtype(values.dtype, np.integer) and len(values) and \
                (values.min() < 0 or values.max() >= len(class_names)):
            raise ValueError(f'{field}: label {values.max()} has no name among '
                             f'{len(class_names)} class names')
        classes = [str(class_names[int(v)]) for v in values]
    else:
        classes = [str(v) for v in values]
    return ids.astype(np.int64), classes

