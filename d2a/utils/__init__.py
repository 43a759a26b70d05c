r"""The ground layer of d2a: helpers that import neither torch nor NumPy.

* :mod:`d2a.utils.atomic` -- atomic file writes (``atomic_write``, ``atomic_path``,
  ``atomic_replace``) and the one ``PathLike`` type;
* :mod:`d2a.utils.registry` -- :class:`~d2a.utils.registry.Registry`, the name -> object
  table behind search spaces, feature extractors, image sources, set and graph encoders and
  named models;
* :mod:`d2a.utils.paths` -- where the package data lives (shipped database, checkpoints).
"""
