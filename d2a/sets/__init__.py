r"""Dataset (set-of-sets) encoders."""
from d2a.sets.encoders import (DeepSetsEncoder, HierarchicalSetEncoder, make_set_encoder,
                               pad_datasets)

__all__ = ['HierarchicalSetEncoder', 'DeepSetsEncoder', 'make_set_encoder', 'pad_datasets']
