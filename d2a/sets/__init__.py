r"""Dataset (set-of-sets) encoders."""
from d2a.sets.encoders import SET_ENCODERS, DeepSetsEncoder, HierarchicalSetEncoder, pad_datasets

__all__ = ['HierarchicalSetEncoder', 'DeepSetsEncoder', 'SET_ENCODERS', 'pad_datasets']
