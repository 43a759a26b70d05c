r"""The scripts of the glyph datasets (:mod:`d2a.datasets.glyphs`): script name -> code points
of its classes. Plain data, so that the command line lists the scripts without loading the
image code."""
from typing import Dict, Tuple

# Math operators and relations that DejaVu and STIX fonts draw as distinct shapes.
_MATH = (0x2200, 0x2202, 0x2203, 0x2205, 0x2207, 0x2208, 0x2209, 0x220F, 0x2211, 0x221A,
         0x221E, 0x2227, 0x2228, 0x2229, 0x222A, 0x222B, 0x2248, 0x2260, 0x2261, 0x2264,
         0x2265, 0x2282, 0x2283, 0x2295, 0x2297)

#: Script name -> code points of its classes.
SCRIPTS: Dict[str, Tuple[int, ...]] = {
    'latin_upper': tuple(range(0x41, 0x5B)),
    'latin_lower': tuple(range(0x61, 0x7B)),
    'greek_upper': tuple(c for c in range(0x391, 0x3AA) if c != 0x3A2),
    'greek_lower': tuple(c for c in range(0x3B1, 0x3CA) if c != 0x3C2),
    'cyrillic_upper': tuple(range(0x410, 0x430)),
    'cyrillic_lower': tuple(range(0x430, 0x450)),
    'armenian_upper': tuple(range(0x531, 0x557)),
    'armenian_lower': tuple(range(0x561, 0x587)),
    'georgian': tuple(range(0x10D0, 0x10F1)),
    'hebrew': tuple(range(0x5D0, 0x5EB)),
    'digits': tuple(range(0x30, 0x3A)),
    'math': _MATH,
    'arrows': tuple(range(0x2190, 0x21A0)),
}
