r"""Search spaces as PyG graphs, DAG encoders and the autoregressive decoder."""
from d2a.graphs.space import SearchSpace, get_space, list_spaces, register_space
from d2a.graphs.nb201 import NB201Space

__all__ = ['SearchSpace', 'get_space', 'list_spaces', 'register_space', 'NB201Space']
