r"""Search spaces as PyG graphs, DAG encoders, the autoregressive decoder and the graph VAE
core -- reusable by other NAS code.

* spaces: :class:`SearchSpace` and its registry (:func:`get_space`), :class:`NB201Space`,
  :class:`MBV3Space`, each with its cost model (:meth:`SearchSpace.cost_model`);
* :mod:`d2a.graphs.dense` -- strings <-> dense ``(node_type, adj)`` <-> PyG batches;
* :mod:`d2a.graphs.encoders` -- :class:`DAGGRUEncoder`, :class:`GINEncoder`
  (:data:`GRAPH_ENCODERS` by name);
* :mod:`d2a.graphs.decoder` -- :class:`DAGDecoder`;
* :mod:`d2a.graphs.vae` -- :class:`GraphVAE`: posterior heads, reparametrisation, KL.
"""
from d2a.graphs.space import SearchSpace, get_space, list_spaces, register_space
from d2a.graphs.nb201 import NB201Space
from d2a.graphs.mbv3 import MBV3Space
from d2a.graphs.dense import archs_to_dense, batch_to_dense, dense_to_batch
from d2a.graphs.encoders import GRAPH_ENCODERS, DAGGRUEncoder, GINEncoder, topological_levels
from d2a.graphs.decoder import DAGDecoder
from d2a.graphs.vae import GraphVAE, kl_divergence, sample_latent

__all__ = ['SearchSpace', 'get_space', 'list_spaces', 'register_space', 'NB201Space',
           'MBV3Space', 'archs_to_dense', 'batch_to_dense', 'dense_to_batch', 'GRAPH_ENCODERS',
           'DAGGRUEncoder', 'GINEncoder', 'topological_levels', 'DAGDecoder', 'GraphVAE',
           'kl_divergence', 'sample_latent']
