r"""Dense graphs: the converters between architecture strings, dense tensors and PyG batches.

Dense form of ``B`` graphs with ``n`` nodes each (nodes in topological order):
``node_type`` ``[B, n]`` (long) and ``adj`` ``[B, n, n]`` (bool, strictly upper-triangular,
``adj[b, j, i]`` is the edge ``j -> i``) -- what :class:`~d2a.graphs.DAGDecoder` produces and
what :meth:`SearchSpace.from_dense_batch` reads; :func:`dense_to_batch` turns it into the
:class:`~torch_geometric.data.Batch` the graph encoders take.
"""
from __future__ import annotations

import functools
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_adj, to_dense_batch

from d2a.graphs.space import SearchSpace, data_to_dense, get_space


def resolve_space(space: Union[str, SearchSpace]) -> SearchSpace:
    r"""``space`` itself, or the registered space of that name."""
    return get_space(space) if isinstance(space, str) else space


@functools.lru_cache(maxsize=65536)
def _dense_one(space_name: str, arch: str) -> Tuple[Tensor, Tensor]:
    node_type, adj = data_to_dense(get_space(space_name).to_data(arch))
    return node_type, adj.bool()


def archs_to_dense(space: Union[str, SearchSpace], archs: Sequence[str]) -> Tuple[Tensor, Tensor]:
    r"""Dense targets ``(node_type [B, n], adj [B, n, n])`` of architecture strings.

    Conversions are cached per ``(space, string)``, so repeated epochs over the same
    architectures cost a dictionary look-up and a stack. Raises :class:`ValueError` naming
    the string at fault.
    """
    space = resolve_space(space)
    if len(archs) == 0:
        n = space.max_nodes
        return torch.zeros(0, n, dtype=torch.long), torch.zeros(0, n, n, dtype=torch.bool)
    # Only registered spaces are cached by name (a custom subclass may convert differently).
    try:
        cacheable = type(space) is type(get_space(space.name))
    except ValueError:
        cacheable = False
    types, adjs = [], []
    for k, arch in enumerate(archs):
        try:
            if cacheable:
                t, a = _dense_one(space.name, arch)
            else:
                t, a = data_to_dense(space.to_data(arch))
        except ValueError as e:
            raise ValueError(f'architecture {k} ({arch!r}): {e}') from None
        if t.numel() != space.max_nodes:
            raise ValueError(f'architecture {k} ({arch!r}) has {t.numel()} nodes, the '
                             f"'{space.name}' decoder needs {space.max_nodes}")
        types.append(t)
        adjs.append(a.bool())
    return torch.stack(types), torch.stack(adjs)


def dense_to_batch(node_type: Tensor, adj: Tensor) -> Batch:
    r"""A :class:`~torch_geometric.data.Batch` of dense graphs, built without a per-graph loop.

    The result behaves like :meth:`Batch.from_data_list` of graphs with ``node_type``,
    ``edge_index`` (sorted by source, then target) and ``num_nodes``.

    Shapes:
        - **input:** ``node_type`` ``[B, n]``, ``adj`` ``[B, n, n]``
        - **output:** a batch with ``B * n`` nodes
    """
    if node_type.dim() != 2 or adj.shape != (*node_type.shape, node_type.size(1)):
        raise ValueError(f"dense graphs need 'node_type' [B, n] and 'adj' [B, n, n], got "
                         f'{list(node_type.shape)} and {list(adj.shape)}')
    num_graphs, n = node_type.shape
    device = node_type.device
    b, src, dst = adj.nonzero(as_tuple=True)
    edge_index = torch.stack([b * n + src, b * n + dst])
    ptr = torch.arange(num_graphs + 1, device=device) * n
    edge_ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=device)
    edge_ptr[1:] = torch.bincount(b, minlength=num_graphs).cumsum(0)
    batch = Batch(node_type=node_type.reshape(-1).long(), edge_index=edge_index,
                  batch=torch.arange(num_graphs, device=device).repeat_interleave(n), ptr=ptr)
    batch.num_nodes = num_graphs * n
    batch._store._num_nodes = [n] * num_graphs
    batch._num_graphs = num_graphs
    batch._slice_dict = {'node_type': ptr.cpu(), 'edge_index': edge_ptr.cpu()}
    batch._inc_dict = {'node_type': torch.zeros(num_graphs, dtype=torch.long),
                       'edge_index': ptr[:-1].cpu()}
    return batch


def batch_to_dense(batch: Batch, max_nodes: int) -> Tuple[Tensor, Tensor]:
    r"""Dense ``(node_type [B, max_nodes], adj [B, max_nodes, max_nodes])`` of a batch whose
    graphs all have exactly ``max_nodes`` nodes (raises :class:`ValueError` otherwise)."""
    vec = getattr(batch, 'batch', None)
    if vec is None:
        vec = batch.node_type.new_zeros(batch.node_type.numel())
    num_graphs = int(batch.num_graphs)
    node_type, mask = to_dense_batch(batch.node_type.long(), vec, max_num_nodes=max_nodes,
                                     batch_size=num_graphs)
    counts = torch.bincount(vec, minlength=num_graphs)
    bad = (counts != max_nodes).nonzero().view(-1)
    if bad.numel() > 0:  # to_dense_batch would silently drop or pad nodes
        g = int(bad[0])
        raise ValueError(f'graph {g} of the batch has {int(counts[g])} nodes, '
                         f'expected {max_nodes}')
    adj = to_dense_adj(batch.edge_index, vec, max_num_nodes=max_nodes,
                       batch_size=num_graphs).bool()
    return node_type, adj
