r"""Raw image sources and task sampling (``d2a.datasets``): the ground floor, below the
meta-database."""
from d2a.datasets.source import (ImageSet, ImageSource, list_sources, open_source, parse_source,
                                 register_source, source_from_spec)
from d2a.datasets.folder import ImageFolder
from d2a.datasets.npz import NpzSource
from d2a.datasets.digits import DigitsSource
from d2a.datasets.vision import TorchvisionSource
from d2a.datasets.glyphs import SCRIPTS, GlyphSource, script_fonts
from d2a.datasets.tasks import Task, sample_tasks, whole_source_task

__all__ = [
    'open_source',
    'ImageSet', 'ImageSource', 'list_sources', 'parse_source', 'register_source',
    'source_from_spec', 'ImageFolder', 'NpzSource', 'DigitsSource', 'TorchvisionSource',
    'SCRIPTS', 'GlyphSource', 'script_fonts', 'Task', 'sample_tasks', 'whole_source_task',
]
