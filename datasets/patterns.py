r"""Procedural image families: textures, gratings, colours and shapes drawn from formulas.

Each family (:data:`FAMILIES`) is a classification problem whose classes differ in one
kind of image statistic, while everything else is drawn at random per image:

* ``orientation`` -- sinusoidal gratings, the class is the orientation (8 classes,
  22.5 degrees apart); frequency, phase and contrast vary;
* ``frequency`` -- gratings at a random orientation, the class is the spatial-frequency
  band (6 classes);
* ``spectrum`` -- random-phase noise with a power spectrum :math:`1/f^\beta`, the class is
  :math:`\beta` (6 classes from 0 to 2.5): texture "roughness";
* ``hue`` -- smooth random colour fields whose mean hue is the class (8 classes); needs
  colour, the spatial pattern is noise;
* ``shapes`` -- one filled shape (disc, square, triangle, cross, ring, bar, diamond, star)
  at a random position, size, rotation and colour on a random background (8 classes);
* ``dots`` -- random dots, the class is the number of dots and their size (6 classes).

Images are drawn at 2x resolution and downscaled (anti-aliased), then noised. Drawing is
seeded per (seed, family, class), so a class's images do not depend on the other classes.
These families ask different things of a network -- orientation and shape need spatial
filters, hue needs only per-pixel colour, roughness sits in between -- so which cell works
best differs between them.
"""
from __future__ import annotations

import colorsys
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from d2a.datasets.source import ImageSet, ImageSource, check_rendering, register_source

Renderer = Callable[[int, np.random.Generator, int], np.ndarray]


def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size) + 0.5) / size - 0.5
    return np.meshgrid(c, c, indexing='ij')


def _grating(theta: float, freq: float, phase: float, size: int) -> np.ndarray:
    y, x = _grid(size)
    return np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)) + phase)


def _orientation(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    theta = np.pi * k / 8 + rng.normal(0, np.pi / 64)
    img = _grating(theta, rng.uniform(2.0, 4.0), rng.uniform(0, 2 * np.pi), size)
    return 0.5 + 0.5 * rng.uniform(0.4, 1.0) * img


_FREQ_BANDS = ((0.7, 1.1), (1.3, 1.8), (2.0, 2.6), (2.8, 3.4), (3.6, 4.2), (4.4, 5.0))


def _frequency(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    lo, hi = _FREQ_BANDS[k]
    img = _grating(rng.uniform(0, np.pi), rng.uniform(lo, hi), rng.uniform(0, 2 * np.pi), size)
    return 0.5 + 0.5 * rng.uniform(0.4, 1.0) * img


def _power_noise(beta: float, rng: np.random.Generator, size: int) -> np.ndarray:
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    phase = rng.uniform(0, 2 * np.pi, (size, size))
    img = np.real(np.fft.ifft2(amp * np.exp(1j * phase)))
    img = (img - img.mean()) / (img.std() + 1e-8)
    return 0.5 + 0.18 * img


def _spectrum(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    return _power_noise(0.5 * k + rng.uniform(-0.1, 0.1), rng, size)


def _hue(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    field = _power_noise(2.0, rng, size)  # smooth luminance pattern around 0.5
    hue = (k / 8 + rng.normal(0, 0.02)) % 1.0
    sat = rng.uniform(0.4, 0.9)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
    value = np.clip(0.3 + 0.8 * (field - 0.5) + rng.uniform(0.2, 0.5), 0, 1)
    return np.stack([value * r, value * g, value * b], axis=-1)


_SHAPES = ('disc', 'square', 'triangle', 'cross', 'ring', 'bar', 'diamond', 'star')


def _shape_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    r = rng.uniform(0.28, 0.42)
    cy, cx = rng.uniform(-0.48 + r, 0.48 - r, 2)
    a = rng.uniform(0, 2 * np.pi)
    u = (x - cx) * np.cos(a) + (y - cy) * np.sin(a)
    v = -(x - cx) * np.sin(a) + (y - cy) * np.cos(a)
    d = np.sqrt(u ** 2 + v ** 2)
    if kind == 'disc':
        return d < r
    if kind == 'square':
        return (np.abs(u) < r * 0.8) & (np.abs(v) < r * 0.8)
    if kind == 'triangle':
        return (v > -r * 0.6) & (v < r * 0.9 - 1.7 * np.abs(u))
    if kind == 'cross':
        return ((np.abs(u) < r * 0.3) | (np.abs(v) < r * 0.3)) & (np.maximum(np.abs(u), np.abs(v)) < r)
    if kind == 'ring':
        return (d < r) & (d > r * 0.55)
    if kind == 'bar':
        return (np.abs(u) < r * 1.1) & (np.abs(v) < r * 0.3)
    if kind == 'diamond':
        return np.abs(u) + np.abs(v) < r
    # star: five points
    ang = np.arctan2(v, u)
    return d < r * (0.55 + 0.45 * np.cos(5 * ang) ** 2)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.3, 1.0),
                                          rng.uniform(0.4, 1.0)))


def _shapes(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    mask = _shape_mask(_SHAPES[k], size, rng)
    fg, bg = _colour(rng), _colour(rng)
    while np.abs(fg - bg).sum() < 0.6:  # keep the shape visible
        bg = _colour(rng)
    return np.where(mask[..., None], fg, bg)


_DOTS = ((3, 0.09), (6, 0.07), (12, 0.05), (3, 0.045), (8, 0.035), (20, 0.025))


def _dots(k: int, rng: np.random.Generator, size: int) -> np.ndarray:
    count, radius = _DOTS[k]
    y, x = _grid(size)
    img = np.zeros((size, size))
    for _ in range(count + int(rng.integers(-1, 2))):
        cy, cx = rng.uniform(-0.45, 0.45, 2)
        rad = radius * rng.uniform(0.8, 1.25)
        img = np.maximum(img, ((x - cx) ** 2 + (y - cy) ** 2 < rad ** 2).astype(float))
    return 0.15 + 0.7 * img


#: Family name -> (class names, renderer, colour).
FAMILIES: Dict[str, Tuple[Tuple[str, ...], Renderer, bool]] = {
    'orientation': (tuple(f'deg{int(22.5 * k * 10) // 10:03d}' for k in range(8)), _orientation, False),
    'frequency': (tuple(f'band{k}' for k in range(len(_FREQ_BANDS))), _frequency, False),
    'spectrum': (tuple(f'beta{5 * k:02d}' for k in range(6)), _spectrum, False),
    'hue': (tuple(f'hue{45 * k:03d}' for k in range(8)), _hue, True),
    'shapes': (_SHAPES, _shapes, True),
    'dots': (tuple(f'n{n}_r{int(r * 1000):02d}' for n, r in _DOTS), _dots, False),
}


@register_source
class PatternSource(ImageSource):
    r"""A procedural image family (see the module docstring), one class per family class.

    Args:
        family (str): a key of :data:`FAMILIES`.
        images_per_class (int): images drawn per class.
        image_size (int): side of the images.
        noise (float): standard deviation of Gaussian pixel noise (image range 1).
        grayscale (bool): average colour families to one grey channel (``hue`` then loses
            its class information -- refused).
        seed (int): drawing seed.
        name (str, optional): source name (default: ``patterns_<family>``).
    """
    kind = 'patterns'
    positional = 'family'

    def __init__(self, family: str = 'orientation', images_per_class: int = 64,
                 image_size: int = 32, noise: float = 0.05, grayscale: bool = False,
                 seed: int = 0, name: Optional[str] = None) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown pattern family {family!r} (known: {', '.join(FAMILIES)})")
        check_rendering(images_per_class, image_size, noise)
        if grayscale and family == 'hue':
            raise ValueError("pattern family 'hue' is defined by colour: grayscale=True "
                             'would erase its classes')
        self.family = family
        self.images_per_class = int(images_per_class)
        self.image_size = int(image_size)
        self.noise = float(noise)
        self.grayscale = bool(grayscale)
        self.seed = int(seed)
        self._name = name

    @property
    def name(self) -> str:
        return self._name or f'patterns_{self.family}'

    @property
    def classes(self) -> List[str]:
        return list(FAMILIES[self.family][0])

    @property
    def num_channels(self) -> int:
        return 3 if FAMILIES[self.family][2] and not self.grayscale else 1

    def render_class(self, k: int) -> np.ndarray:
        r"""``[images_per_class, S, S, C]`` images of class ``k``."""
        from PIL import Image
        _, render, colour = FAMILIES[self.family]
        rng = np.random.default_rng([self.seed, zlib.crc32(self.family.encode()), k])
        s, big = self.image_size, 2 * self.image_size
        out = np.empty((self.images_per_class, s, s, self.num_channels), dtype=np.uint8)
        for i in range(self.images_per_class):
            img = np.clip(render(k, rng, big), 0.0, 1.0)
            if img.ndim == 2:
                img = img[..., None]
            if self.grayscale and img.shape[-1] == 3:
                img = img.mean(-1, keepdims=True)
            small = np.stack([np.asarray(Image.fromarray(img[..., c].astype(np.float32), 'F')
                                         .resize((s, s), Image.BOX)) for c in range(img.shape[-1])],
                             axis=-1)
            if self.noise > 0:
                small = small + rng.normal(0.0, self.noise, small.shape)
            out[i] = np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)
        return out

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        from d2a.datasets.source import resize_images
        n = len(self.classes)
        images = np.concatenate([self.render_class(k) for k in range(n)])
        labels = np.repeat(np.arange(n, dtype=np.int64), self.images_per_class)
        return ImageSet(resize_images(images, image_size), labels, self.classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'family': self.family,
                'images_per_class': self.images_per_class, 'image_size': self.image_size,
                'noise': self.noise, 'grayscale': self.grayscale, 'seed': self.seed,
                'name': self._name}
