r"""Search spaces as PyG graphs, DAG encoders and the autoregressive decoder."""
from d2a.graphs.space import SearchSpace, get_space, list_spaces, register_space
from d2a.graphs.nb201 import NB201Space

__all__ = ['SearchSpace', 'get_space', 'list_spaces', 'register_space', 'NB201Space']

from d2a.graphs.encoders import DAGGRUEncoder, GINEncoder, topological_levels  # noqa: E402
from d2a.graphs.decoder import (  # noqa: E402
    DAGDecoder, archs_to_dense, batch_to_dense, dense_to_batch)

__all__ += ['DAGGRUEncoder', 'GINEncoder', 'topological_levels', 'DAGDecoder',
            'archs_to_dense', 'batch_to_dense', 'dense_to_batch']
