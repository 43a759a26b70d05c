r"""Importers of published results into a meta-database (``d2a db import``).

* :mod:`d2a.pipeline.importers.nb201` -- NAS-Bench-201 accuracy tables, HELP latency tables,
  the official benchmark files through their APIs;
* :mod:`d2a.pipeline.importers.metad2a` -- MetaD2A's preprocessed ``.pt`` files, read without
  python-igraph and without executing arbitrary pickles.
"""
