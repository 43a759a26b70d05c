import numpy as np
import pytest

from d2a.datasets import SCRIPTS, GlyphSource, script_fonts


@pytest.mark.parametrize('script', list(SCRIPTS))
def test_every_script_has_fonts(script):
    fonts = script_fonts(script)
    assert len(fonts) >= 4  # Hebrew is covered by the four DejaVu Sans faces only
    assert len(set(GlyphSource(script).classes)) == len(SCRIPTS[script])


def test_render_is_seeded_and_per_class():
    a = GlyphSource('greek_lower', images_per_class=3, image_size=12, max_classes=3).load()
    b = GlyphSource('greek_lower', images_per_class=3, image_size=12, max_classes=2).load()
    assert a.images.shape == (9, 12, 12, 1) and a.classes[0] == 'greek_small_letter_alpha'
    # a class's images do not depend on which other classes are rendered
    assert np.array_equal(a.images[:6], b.images)
    c = GlyphSource('greek_lower', images_per_class=3, image_size=12, max_classes=2, seed=1).load()
    assert not np.array_equal(b.images, c.images)
    assert a.images[..., 0].mean() > 5  # glyphs are drawn, not blank


def test_resize_and_errors():
    src = GlyphSource('digits', images_per_class=2, image_size=16, noise=0.0)
    assert src.load(8).images.shape == (20, 8, 8, 1)
    with pytest.raises(ValueError, match="unknown glyph script 'klingon'"):
        GlyphSource('klingon')
    with pytest.raises(ValueError, match="glyph font 'Comic.ttf'"):
        GlyphSource('digits', fonts='Comic.ttf').load()
    one_font = GlyphSource('digits', images_per_class=2, fonts='DejaVuSans.ttf')
    assert one_font.font_files() == ['DejaVuSans.ttf']
