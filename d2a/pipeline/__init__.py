r"""Everything that writes rows into a meta-database (:mod:`d2a.db` only stores them).

* :mod:`d2a.pipeline.build` -- raw image sources -> features -> tasks (``d2a db build``);
* :mod:`d2a.pipeline.label` -- architectures trained on tasks (``d2a db label``);
* :mod:`d2a.pipeline.importers` -- published tables and MetaD2A's files (``d2a db import``);
* :mod:`d2a.pipeline.merge` -- shards and imports combined without duplicates
  (``d2a db merge``);
* :mod:`d2a.pipeline.embedded` -- the shipped mini database and checkpoints, built end to
  end (``d2a embedded``).

Imports run one way: :mod:`d2a.datasets` and :mod:`d2a.db` below, never the models' training
(the embedded build runs ``d2a train`` as child processes).
"""
from d2a.utils.lazy import lazy_exports

_EXPORTS = {
    'build_database': 'd2a.pipeline.build', 'load_source': 'd2a.pipeline.build',
    'source_features_like_db': 'd2a.pipeline.build', 'label': 'd2a.pipeline.label',
    'merge': 'd2a.pipeline.merge', 'copy_into': 'd2a.pipeline.merge',
    'Build': 'd2a.pipeline.embedded', 'SCALES': 'd2a.pipeline.embedded',
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
