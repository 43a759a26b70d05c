r"""Raw image sources and task sampling (``d2a.datasets``): the ground floor, below the
meta-database.

Names are resolved on first use, so that reading the glyph scripts or the task type does
not load the image code.
"""
from d2a.utils.lazy import lazy_exports

_EXPORTS = {
    'open_source': 'd2a.datasets.source', 'ImageSet': 'd2a.datasets.source',
    'ImageSource': 'd2a.datasets.source', 'list_sources': 'd2a.datasets.source',
    'parse_source': 'd2a.datasets.source', 'register_source': 'd2a.datasets.source',
    'source_from_spec': 'd2a.datasets.source', 'ImageFolder': 'd2a.datasets.folder',
    'NpzSource': 'd2a.datasets.npz', 'DigitsSource': 'd2a.datasets.digits',
    'TorchvisionSource': 'd2a.datasets.vision', 'SCRIPTS': 'd2a.datasets.glyph_scripts',
    'GlyphSource': 'd2a.datasets.glyphs', 'script_fonts': 'd2a.datasets.glyphs',
    'Task': 'd2a.datasets.tasks', 'sample_tasks': 'd2a.datasets.tasks',
    'whole_source_task': 'd2a.datasets.tasks', 'split_per_class': 'd2a.datasets.tasks',
    'PhotoPatchSource': 'd2a.datasets.photos',
    'PHOTOS': 'd2a.datasets.photos', 'PHOTO_SETS': 'd2a.datasets.photos',
    'PatternSource': 'd2a.datasets.patterns', 'FAMILIES': 'd2a.datasets.patterns',
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
