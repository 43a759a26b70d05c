r"""Search: generate and rank architectures for a new dataset (``d2a search``).

* :mod:`d2a.search.results` -- :class:`Candidate`, :class:`SearchResult` (table, JSON),
  :class:`Measurement`, :class:`Refinement`;
* :mod:`d2a.search.constraints` -- :class:`Constraints`, :func:`parse_count`,
  :class:`LatencyTable`;
* :mod:`d2a.search.candidates` -- :func:`collect_candidates`, :class:`GenerationStats`;
* :mod:`d2a.search.features` -- :class:`DatasetFeatures`, :class:`ImageFeatures`,
  :func:`dataset_features`;
* :mod:`d2a.search.ranking` -- :func:`rank_candidates`;
* :mod:`d2a.search.guidance` -- :class:`GuidedSampler`, predictor-guided generation;
* :mod:`d2a.search.refine` -- :func:`refine`, :class:`ResidualGP`, :class:`RecipeTrainer`,
  :class:`MeasurementCache`: budgeted refinement by real training;
* :mod:`d2a.search.engine` -- :func:`search`, the orchestration, and :func:`load_models`
  (a module named like the function would hide it: ``import d2a.search.search`` would give
  the function).
"""
from d2a.search.candidates import GenerationStats, collect_candidates
from d2a.search.constraints import Constraints, LatencyTable, parse_count
from d2a.search.features import DatasetFeatures, ImageFeatures, dataset_features
from d2a.search.ranking import rank_candidates
from d2a.search.results import Candidate, Measurement, Refinement, SearchResult
from d2a.search.guidance import GuidedSampler
from d2a.search.refine import (MeasurementCache, RecipeTrainer, ResidualGP, cache_path_for,
                               refine, resolve_recipe)
from d2a.search.engine import (DEFAULT_CHECKPOINT_DIR, LoadedModels, load_models,
                               resolve_checkpoint_dir, search)

__all__ = ['search', 'SearchResult', 'Candidate', 'Constraints', 'LatencyTable', 'parse_count',
           'GenerationStats', 'collect_candidates', 'DatasetFeatures', 'ImageFeatures',
           'dataset_features',
           'rank_candidates', 'LoadedModels', 'load_models', 'resolve_checkpoint_dir',
           'DEFAULT_CHECKPOINT_DIR', 'Measurement', 'Refinement', 'GuidedSampler',
           'MeasurementCache', 'RecipeTrainer', 'ResidualGP', 'cache_path_for', 'refine',
           'resolve_recipe']
