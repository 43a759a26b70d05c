r"""Character-classification datasets rendered from the fonts shipped inside matplotlib.

One dataset per script (:data:`SCRIPTS`): each character is a class, each image the
character drawn in a font of matplotlib's ``mpl-data/fonts/ttf`` folder that covers the
whole script, with a random size, rotation, position and stroke weight, plus pixel noise --
an Omniglot-style source of many real tasks that needs no download.

Rendering is seeded per (seed, script, character), so a class's images do not depend on
which other classes are rendered; the same arguments give the same bytes on every machine
with the same matplotlib fonts and Pillow version. ``docs/datasets.md`` lists the scripts,
their classes and fonts.
"""
from __future__ import annotations

import functools
import os
import unicodedata
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from d2a.datasets.glyph_scripts import SCRIPTS
from d2a.datasets.source import ImageSet, ImageSource, check_rendering, register_source

# Text fonts of matplotlib's wheel. Left out: the Display fonts (a few glyphs), STIX
# size/non-Unicode variants (private code points), cmex/cmsy/cmmi (their charmaps map
# ASCII to symbols) and LastResort (draws placeholder boxes).
_FONT_FILES = (
    'DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf', 'DejaVuSans-BoldOblique.ttf',
    'DejaVuSansMono.ttf', 'DejaVuSansMono-Bold.ttf', 'DejaVuSansMono-Oblique.ttf',
    'DejaVuSansMono-BoldOblique.ttf',
    'DejaVuSerif.ttf', 'DejaVuSerif-Bold.ttf', 'DejaVuSerif-Italic.ttf', 'DejaVuSerif-BoldItalic.ttf',
    'STIXGeneral.ttf', 'STIXGeneralBol.ttf', 'STIXGeneralItalic.ttf', 'STIXGeneralBolIta.ttf',
    'cmr10.ttf', 'cmb10.ttf', 'cmss10.ttf', 'cmti10.ttf', 'cmtt10.ttf',
)


def font_dir() -> str:
    r"""matplotlib's bundled TrueType folder."""
    import matplotlib
    return os.path.join(matplotlib.get_data_path(), 'fonts', 'ttf')


@functools.lru_cache(maxsize=None)
def script_fonts(script: str) -> Tuple[str, ...]:
    r"""File names of the bundled fonts that cover every character of ``script``."""
    from matplotlib.ft2font import FT2Font
    codes = _script_codes(script)
    fonts = []
    for fname in _FONT_FILES:
        path = os.path.join(font_dir(), fname)
        if os.path.isfile(path) and all(c in FT2Font(path).get_charmap() for c in codes):
            fonts.append(fname)
    return tuple(fonts)


def _script_codes(script: str) -> Tuple[int, ...]:
    if script not in SCRIPTS:
        raise ValueError(f"unknown glyph script {script!r} (known: {', '.join(SCRIPTS)})")
    return SCRIPTS[script]


def class_name(code: int) -> str:
    r"""A class's name: the character's Unicode name in snake case (``greek_small_letter_alpha``)."""
    return unicodedata.name(chr(code), f'u{code:04x}').lower().replace(' ', '_').replace('-', '_')


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont
    return ImageFont.truetype(path, size)


def render_glyph(char: str, font_path: str, image_size: int, rng: np.random.Generator,
                 scale: Tuple[float, float] = (0.55, 0.85), rotation: float = 10.0,
                 shift: float = 0.1, stroke: float = 0.3, noise: float = 0.05,
                 oversample: int = 4) -> np.ndarray:
    r"""Draws one character as a ``[image_size, image_size]`` ``uint8`` grey image
    (white glyph on black).

    Args:
        scale (tuple): range of the glyph height as a fraction of the image.
        rotation (float): maximum rotation in degrees (uniform in ``[-r, r]``).
        shift (float): maximum shift of the centre as a fraction of the image.
        stroke (float): probability of a thicker or thinner stroke (half each).
        noise (float): standard deviation of the Gaussian pixel noise (image range 1).
        oversample (int): drawing resolution factor before the anti-aliased downscale.
    """
    from PIL import Image, ImageDraw, ImageFilter
    big = image_size * oversample
    size = max(4, int(big * rng.uniform(*scale)))
    font = _font(font_path, size)
    canvas = Image.new('L', (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    cx = big / 2 + rng.uniform(-shift, shift) * big
    cy = big / 2 + rng.uniform(-shift, shift) * big
    draw.text((cx - (left + right) / 2, cy - (top + bottom) / 2), char, fill=255, font=font)
    canvas = canvas.rotate(rng.uniform(-rotation, rotation), resample=Image.BILINEAR)
    u = rng.uniform()
    width = 2 * max(1, oversample // 2) + 1
    if u < stroke / 2:
        canvas = canvas.filter(ImageFilter.MaxFilter(width))
    elif u < stroke:
        canvas = canvas.filter(ImageFilter.MinFilter(3))
    img = np.asarray(canvas.resize((image_size, image_size), Image.BOX), dtype=np.float64) / 255.0
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


@register_source
class GlyphSource(ImageSource):
    r"""Rendered characters of one script, one class per character.

    Args:
        script (str): a key of :data:`SCRIPTS`.
        images_per_class (int): images rendered per character.
        image_size (int): side of the rendered images (before any resize of :meth:`load`).
        rotation (float): maximum rotation in degrees.
        noise (float): pixel noise standard deviation (image range 1).
        scale_min (float), scale_max (float): glyph height range, fraction of the image.
        shift (float): maximum shift of the glyph centre, fraction of the image.
        stroke (float): probability of a changed stroke weight.
        seed (int): rendering seed.
        fonts (str, optional): ``'+'``-separated font file names to use instead of every
            bundled font covering the script.
        max_classes (int, optional): keep only the first characters of the script.
        name (str, optional): source name (default: ``glyphs_<script>``).
    """
    kind = 'glyphs'
    positional = 'script'

    def __init__(self, script: str, images_per_class: int = 80, image_size: int = 32,
                 rotation: float = 10.0, noise: float = 0.05, scale_min: float = 0.55,
                 scale_max: float = 0.85, shift: float = 0.1, stroke: float = 0.3,
                 seed: int = 0, fonts: Optional[str] = None, max_classes: Optional[int] = None,
                 name: Optional[str] = None) -> None:
        _script_codes(script)
        check_rendering(images_per_class, image_size, noise)
        self.script = script
        self.images_per_class = int(images_per_class)
        self.image_size = int(image_size)
        self.rotation = float(rotation)
        self.noise = float(noise)
        self.scale = (float(scale_min), float(scale_max))
        self.shift = float(shift)
        self.stroke = float(stroke)
        self.seed = int(seed)
        self.fonts = fonts
        self.max_classes = max_classes
        self._name = name

    @property
    def name(self) -> str:
        return self._name or f'glyphs_{self.script}'

    def codes(self) -> Tuple[int, ...]:
        codes = _script_codes(self.script)
        return codes[:self.max_classes] if self.max_classes else codes

    def font_files(self) -> List[str]:
        if self.fonts:
            names = self.fonts.split('+')
            for f in names:
                if not os.path.isfile(os.path.join(font_dir(), f)):
                    raise ValueError(f'glyph font {f!r} is not in {font_dir()}')
            return names
        fonts = list(script_fonts(self.script))
        if not fonts:
            raise ValueError(f'no bundled font covers the glyph script {self.script!r}')
        return fonts

    @property
    def classes(self) -> List[str]:
        return [class_name(c) for c in self.codes()]

    def render_class(self, code: int) -> np.ndarray:
        r"""``[images_per_class, S, S]`` images of one character."""
        rng = np.random.default_rng([self.seed, zlib.crc32(self.script.encode()), code])
        paths = [os.path.join(font_dir(), f) for f in self.font_files()]
        out = np.empty((self.images_per_class, self.image_size, self.image_size), dtype=np.uint8)
        # Cycle through the fonts so that every class sees each font equally often.
        offset = int(rng.integers(len(paths)))
        for i in range(self.images_per_class):
            path = paths[(offset + i) % len(paths)]
            out[i] = render_glyph(chr(code), path, self.image_size, rng, scale=self.scale,
                                  rotation=self.rotation, shift=self.shift, stroke=self.stroke,
                                  noise=self.noise)
        return out

    def load(self, image_size: Optional[int] = None) -> ImageSet:
        from d2a.datasets.source import resize_images
        codes = self.codes()
        images = np.concatenate([self.render_class(c) for c in codes])[..., None]
        labels = np.repeat(np.arange(len(codes), dtype=np.int64), self.images_per_class)
        return ImageSet(resize_images(images, image_size), labels, self.classes)

    def spec(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'script': self.script,
                'images_per_class': self.images_per_class, 'image_size': self.image_size,
                'rotation': self.rotation, 'noise': self.noise, 'scale_min': self.scale[0],
                'scale_max': self.scale[1], 'shift': self.shift, 'stroke': self.stroke,
                'seed': self.seed, 'fonts': self.fonts, 'max_classes': self.max_classes,
                'name': self._name}


def list_scripts() -> Sequence[str]:
    return list(SCRIPTS)
