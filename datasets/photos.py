r"""Patches of the sample photographs that installed packages ship: a photographic source
that needs no download.

scikit-image, scikit-learn and matplotlib each ship a few real photographs (a cat, an
astronaut, a rocket, a galaxy field, a retina, coins, grass, bricks, ...). Each photograph
is one class; an image of the class is a square patch cut from it at a random position and
scale, optionally flipped, and resized -- so a task asks "which scene is this patch from",
with the colour, texture and frequency statistics of real photographs.

Photographs are read as files from the packages' folders (nothing is imported from
scikit-image); :data:`PHOTOS` lists them, :data:`PHOTO_SETS` names disjoint groups of them
(meta-training and held-out sources must not share a photograph). Patches are seeded per
(seed, photograph), so a class's images do not depend on which other classes are drawn.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from d2a.datasets.source import ImageSet, ImageSource, check_rendering, register_source

#: Photograph name -> (package, path inside the package). All are real photographs or
#: micrographs except ``page`` and ``text`` (scanned / photographed text).
PHOTOS: Dict[str, Tuple[str, str]] = {
    # colour
    'astronaut': ('skimage', 'data/astronaut.png'),
    'chelsea': ('skimage', 'data/chelsea.png'),
    'coffee': ('skimage', 'data/coffee.png'),
    'hubble': ('skimage', 'data/hubble_deep_field.jpg'),
    'ihc': ('skimage', 'data/ihc.png'),
    'retina': ('skimage', 'data/retina.jpg'),
    'rocket': ('skimage', 'data/rocket.jpg'),
    'motorcycle': ('skimage', 'data/motorcycle_left.png'),
    'china': ('sklearn', 'datasets/images/china.jpg'),
    'flower': ('sklearn', 'datasets/images/flower.jpg'),
    'hopper': ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
    'present': ('matplotlib', 'mpl-data/sample_data/Minduka_Present_Blue_Pack.png'),
    # grey
    'camera': ('skimage', 'data/camera.png'),
    'moon': ('skimage', 'data/moon.png'),
    'coins': ('skimage', 'data/coins.png'),
    'page': ('skimage', 'data/page.png'),
    'text': ('skimage', 'data/text.png'),
    'cell': ('skimage', 'data/cell.png'),
    'clock': ('skimage', 'data/clock_motion.png'),
    'brick': ('skimage', 'data/brick.png'),
    'grass': ('skimage', 'data/grass.png'),
    'gravel': ('skimage', 'data/gravel.png'),
    'microaneurysms': ('skimage', 'data/microaneurysms.png'),
}

#: Named, disjoint groups of photographs (``photos=`` takes a set name or ``a+b+...``).
PHOTO_SETS: Dict[str, Tuple[str, ...]] = {
    'colour_a': ('astronaut', 'chelsea', 'coffee', 'hubble', 'ihc', 'rocket', 'china',
                 'present'),
    'colour_b': ('retina', 'motorcycle', 'flower', 'hopper'),
    'grey_a': ('camera', 'moon', 'coins', 'page', 'brick', 'grass', 'gravel', 'cell'),
    'grey_b': ('text', 'clock', 'microaneurysms'),
}


def package_dir(package: str) -> str:
    r"""The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        extra = {'skimage': 'scikit-image', 'sklearn': 'scikit-learn'}.get(package, package)
        raise ValueError(f'photographs of package {package!r} need it installed '
                         f'(pip install {extra})')
    return list(spec.submodule_search_locations)[0]


def photo_path(name: str) -> str:
    r"""The file of photograph ``name`` (raises :class:`ValueError` naming the known ones)."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photograph {name!r} (known: {', '.join(PHOTOS)})")
    package, rel = PHOTOS[name]
    path = os.path.join(package_dir(package), rel)
    if not os.path.isfile(path):
        raise ValueError(f'photograph {name!r}: {path} is missing from the installed {package}')
    return path


@functools.lru_cache(maxsize=32)
def load_photo(name: str, grayscale: bool = False) -> np.ndarray:
    r"""``[H, W, C]`` ``uint8`` pixels of a photograph (``C`` = 1 grey or 3 RGB)."""
    from PIL import Image
    with Image.open(photo_path(name)) as img:
        arr = np.asarray(img.convert('L' if grayscale else 'RGB'), dtype=np.uint8)
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    arr.setflags(write=False)
    return arr


def parse_photos(photos: str) -> Tuple[str, ...]:
    r"""The photographs of ``'a+b+...'``, where each part is a photograph or a set name
    (:data:`PHOTO_SETS`)."""
    names: List[str] = []
    for part in (p for p in str(photos).split('+') if p):
        if part in PHOTO_SETS:
            names.extend(PHOTO_SETS[part])
        elif part in PHOTOS:
            names.append(part)
        else:
            raise ValueError(f"unknown photograph or photo set {part!r} (sets: "
                             f"{', '.join(PHOTO_SETS)}; photographs: {', '.join(PHOTOS)})")
    if not names:
        raise ValueError('photos must name photo sets or photographs joined by "+"')
    if len(set(names)) != len(names):
        raise ValueError(f'photos {photos!r} names a photograph twice')
    return tuple(names)


@register_source
class PhotoPatchSource(ImageSource):
    r"""Patches of sample photographs, one class per photograph.

    Args:
        photos (str): a key of :data:`PHOTO_SETS` or photograph names joined by ``+``.
        images_per_class (int): patches cut per photograph.
        image_size (int): side of the patches after resizing.
        scale_min (float), scale_max (float): patch side as a fraction of the
            photograph's shorter side, drawn uniformly per patch.
        grayscale (bool): grey patches (one channel) instead of RGB.
        flip (bool): flip half the patches horizontally.
        noise (float): standard deviation of Gaussian pixel noise (image range 1).
        seed (int): patch seed.
        name (str, optional): source name (default: ``photos_<photos>``).
    """
    kind = 'photos'
    positional = 'photos'

    def __init__(self, photos: str = 'colour_a', images_per_class: int = 64,
                 image_size: int = 32, scale_min: float = 0.1, scale_max: float = 0.3,
                 grayscale: bool = False, flip: bool = True, noise: float = 0.0,
                 seed: int = 0, name: Optional[str] = None) -> None:
        self.photo_names = parse_photos(photos)
        check_rendering(images_per_class, image_size, noise)
        if not 0 < scale_min <= scale_max <= 1:
            raise ValueError(f'patch scales must satisfy 0 < scale_min <= scale_max <= 1, '
                             f'got {scale_min} and {scale_max}')
        self.photos = photos
        self.images_per_class = int(images_per_class)
        self.image_size = int(image_size)
        self.scale = (float(scale_min), float(scale_max))
        self.grayscale = bool(grayscale)
        self.flip = bool(flip)
        self.noise = float(noise)
        self.seed = int(seed)
        self._name = name

    @property
    def name(self) -> str:
        return self._name or f'photos_{self.photos.replace("+", "_")}'

    @property
    def classes(self) -> List[str]:
        return list(self.photo_names)

    def render_class(self, photo: str) -> np.ndarray:
        r"""``[images_per_class, S, S, C]`` patches of one photograph."""
        from PIL import Image
        pixels = load_photo(photo, self.grayscale)
        h, w = pixels.shape[:2]
        rng = np.random.default_rng([self.seed, zlib.crc32(photo.encode())])
        s = self.image_size
        out = np.empty((self.images_per_class, s, s, pixels.shape[2]), dtype=np.uint8)
        for i in range(self.images_per_class):
            side = max(s // 2, int(round(rng.uniform(*self.scale) * min(h, w))))
            side = min(side, h, w)
            top = int(rng.integers(0, h - side + 1))
            left = int(rng.integers(0, w - side + 1))
            patch = pixels[top:top + side, left:left + side]
            if self.flip and rng.uniform() < 0.5:
                patch = patch[:, ::-1]
            pil = Image.fromarray(np.ascontiguousarray(patch[..., 0] if patch.shape[2] == 1
                                                       else patch))
            img = np.asarray(pil.resize((s, s), Image.BOX), dtype=np.float64)
            if self.noise > 0:
                img = img + rng.normal(0.0, 255.0 * self.noise, img.shape)
            out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8).reshape(s, s, -1)
        return out

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        from d2a.datasets.source import resize_images
        images = np.concatenate([self.render_class(p) for p in self.photo_names])
        labels = np.repeat(np.arange(len(self.photo_names), dtype=np.int64),
                           self.images_per_class)
        return ImageSet(resize_images(images, image_size), labels, self.classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'photos': self.photos,
                'images_per_class': self.images_per_class, 'image_size': self.image_size,
                'scale_min': self.scale[0], 'scale_max': self.scale[1],
                'grayscale': self.grayscale, 'flip': self.flip, 'noise': self.noise,
                'seed': self.seed, 'name': self._name}
