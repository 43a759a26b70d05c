r"""Graph encoders for architecture DAGs: a :class:`~torch_geometric.data.Batch` with
``node_type`` ``[N]``, ``edge_index`` ``[2, E]`` and ``batch`` ``[N]`` -> ``[num_graphs, out]``.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding, GRUCell, Linear, Module, ModuleList, Sequential, ReLU
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv, global_add_pool, global_mean_pool
from torch_geometric.utils import scatter

from d2a.utils.registry import Registry

#: Graph encoder classes by name, each built as ``cls(num_node_types, hidden_channels,
#: out_channels)``.
GRAPH_ENCODERS: Registry[type] = Registry('graph encoder')


def _graph_inputs(batch: Batch, num_node_types: int) -> Tuple[Tensor, Tensor, Tensor, int]:
    node_type = getattr(batch, 'node_type', None)
    if node_type is None:
        raise ValueError("graph batch has no 'node_type' attribute")
    node_type = node_type.view(-1).long()
    if node_type.numel() > 0 and (int(node_type.min()) < 0 or int(node_type.max()) >= num_node_types):
        raise ValueError(f"'node_type' must be in 0..{num_node_types - 1}, got values in "
                         f'{int(node_type.min())}..{int(node_type.max())}')
    edge_index = batch.edge_index
    vec = getattr(batch, 'batch', None)
    if vec is None:
        vec = node_type.new_zeros(node_type.numel())
    num_graphs = int(batch.num_graphs) if hasattr(batch, 'num_graphs') else int(vec.max()) + 1
    return node_type, edge_index, vec, num_graphs


def topological_levels(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""Longest-path depth of every node of a DAG (sources are level 0).

    Computed by relaxation over all edges at once, so graphs of a batch share the work.
    Raises :class:`ValueError` when the edges contain a cycle.
    """
    level = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    if edge_index.numel() == 0:
        return level
    src, dst = edge_index
    if bool((src == dst).any()):
        raise ValueError('edge_index has a self-loop: architecture graphs must be acyclic')
    for _ in range(num_nodes):
        new = scatter(level[src] + 1, dst, dim=0, dim_size=num_nodes, reduce='max')
        new = torch.maximum(new, level)
        if torch.equal(new, level):
            return level
        level = new
    raise ValueError('edge_index has a cycle: architecture graphs must be acyclic')


def _first_last(vec: Tensor, num_graphs: int) -> Tuple[Tensor, Tensor]:
    # Index of the first and last node of every graph (nodes of a graph are contiguous).
    count = scatter(torch.ones_like(vec), vec, dim=0, dim_size=num_graphs, reduce='sum')
    if bool((count == 0).any()):
        raise ValueError('graph batch contains a graph without nodes')
    ptr = torch.cat([count.new_zeros(1), count.cumsum(0)])
    return ptr[:-1], ptr[1:] - 1


@GRAPH_ENCODERS.register('dag_gru')
class DAGGRUEncoder(Module):
    r"""The bidirectional DAG-GRU encoder of D-VAE (`"D-VAE: A Variational Autoencoder for
    Directed Acyclic Graphs" <https://arxiv.org/abs/1904.11088>`_), as used by MetaD2A's
    predictor.

    Node states are computed in topological order: a node's state is a GRU update of its
    one-hot type with the gated sum :math:`\sum_u \sigma(W_g h_u) \odot W_m h_u` of its
    predecessors' states. The forward pass follows the edges; the reverse pass (separate
    weights) follows them backwards. The graph vector is read from the last node's forward
    state (END) and the first node's reverse state (START). Propagation runs one topological
    level at a time over the whole batch.

    Args:
        num_node_types (int): Number of node types.
        hidden_channels (int): Node-state size (MetaD2A: 512).
        out_channels (int): Size of the graph vector (MetaD2A: 56).
        bidirectional (bool, optional): Add the reverse pass. (default: :obj:`True`)

    Shapes:
        - **input:** a :class:`~torch_geometric.data.Batch` with ``node_type`` ``[N]``,
          ``edge_index`` ``[2, E]``, ``batch`` ``[N]``; nodes of each graph in topological
          order, START first and END last
        - **output:** ``[num_graphs, out_channels]``
    """
    def __init__(self, num_node_types: int, hidden_channels: int = 512, out_channels: int = 56,
                 bidirectional: bool = True):
        super().__init__()
        self.num_node_types = num_node_types
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.bidirectional = bidirectional
        num_dirs = 2 if bidirectional else 1
        self.grus = ModuleList([GRUCell(num_node_types, hidden_channels) for _ in range(num_dirs)])
        self.gates = ModuleList([Linear(hidden_channels, hidden_channels)
                                 for _ in range(num_dirs)])
        # No bias: a missing predecessor (zero state) maps to a zero message.
        self.mappers = ModuleList([Linear(hidden_channels, hidden_channels, bias=False)
                                   for _ in range(num_dirs)])
        self.lin_out = Linear(num_dirs * hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        for mods in (self.grus, self.gates, self.mappers):
            for m in mods:
                m.reset_parameters()
        self.lin_out.reset_parameters()

    def _propagate(self, x: Tensor, edge_index: Tensor, level: Tensor, num_levels: int,
                   k: int) -> Tensor:
        src, dst = edge_index
        num_nodes, width = x.size(0), self.hidden_channels
        h = x.new_zeros(num_nodes, width)
        # A node's outgoing message, sigma(W_g h) * W_m h, computed once when its state is
        # (not once per outgoing edge), for nodes that have successors.
        msg = x.new_zeros(num_nodes, width)
        has_out = torch.zeros(num_nodes, dtype=torch.bool, device=x.device)
        has_out[src] = True
        edge_level = level[dst]
        # Without autograd the states are written in place (the level's copy is not needed).
        inplace = not torch.is_grad_enabled()
        for lv in range(num_levels):
            nodes = (level == lv).nonzero().view(-1)
            e = (edge_level == lv).nonzero().view(-1)
            msg_in = h.new_zeros(nodes.numel(), width)
            if e.numel() > 0:
                # Position of each edge's target within this level's node list.
                local = torch.full((num_nodes, ), -1, dtype=torch.long, device=x.device)
                local[nodes] = torch.arange(nodes.numel(), device=x.device)
                msg_in = scatter(msg[src[e]], local[dst[e]], dim=0, dim_size=nodes.numel(),
                                 reduce='sum')
            new = self.grus[k](x[nodes], msg_in)
            senders = has_out[nodes]
            out = nodes[senders]
            if out.numel() > 0:
                hs = new[senders]
                sent = torch.sigmoid(self.gates[k](hs)) * self.mappers[k](hs)
                msg = msg.index_copy_(0, out, sent) if inplace else msg.index_copy(0, out, sent)
            h = h.index_copy_(0, nodes, new) if inplace else h.index_copy(0, nodes, new)
        return h

    def forward(self, batch: Batch) -> Tensor:
        node_type, edge_index, vec, num_graphs = _graph_inputs(batch, self.num_node_types)
        x = F.one_hot(node_type, self.num_node_types).float()
        first, last = _first_last(vec, num_graphs)
        num_nodes = x.size(0)
        level = topological_levels(edge_index, num_nodes)
        num_levels = int(level.max()) + 1 if num_nodes > 0 else 0
        h = self._propagate(x, edge_index, level, num_levels, 0)
        outs: List[Tensor] = [h[last]]
        if self.bidirectional:
            rev = edge_index.flip(0)
            rlevel = topological_levels(rev, num_nodes)
            rnum = int(rlevel.max()) + 1 if num_nodes > 0 else 0
            outs.append(self._propagate(x, rev, rlevel, rnum, 1)[first])
        return self.lin_out(torch.cat(outs, dim=-1))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_node_types}, {self.hidden_channels}, '
                f'{self.out_channels}, bidirectional={self.bidirectional})')


@GRAPH_ENCODERS.register('gin')
class GINEncoder(Module):
    r"""A Graph Isomorphism Network encoder (`"How Powerful are Graph Neural Networks?"
    <https://arxiv.org/abs/1810.00826>`_) over node-type embeddings of architecture DAGs.

    Each layer runs one :class:`~torch_geometric.nn.conv.GINConv` along the edges and, when
    ``bidirectional``, one against them, and sums the two. The graph vector is a linear map of
    the pooled node states of every layer (jumping knowledge by concatenation).

    Args:
        num_node_types (int): Number of node types.
        hidden_channels (int): Node-state size.
        out_channels (int): Size of the graph vector.
        num_layers (int, optional): Message-passing layers. (default: :obj:`3`)
        bidirectional (bool, optional): Also pass messages against the edges.
            (default: :obj:`True`)
        pool (str, optional): ``'sum'`` or ``'mean'`` graph pooling. (default: :obj:`'sum'`)

    Shapes:
        - **input:** a :class:`~torch_geometric.data.Batch` with ``node_type`` ``[N]``,
          ``edge_index`` ``[2, E]``, ``batch`` ``[N]``
        - **output:** ``[num_graphs, out_channels]``
    """
    def __init__(self, num_node_types: int, hidden_channels: int = 128, out_channels: int = 56,
                 num_layers: int = 3, bidirectional: bool = True, pool: str = 'sum'):
        super().__init__()
        if pool not in ('sum', 'mean'):
            raise ValueError(f"'pool' must be 'sum' or 'mean', got {pool!r}")
        self.num_node_types = num_node_types
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pool = pool
        h = hidden_channels
        self.embedding = Embedding(num_node_types, h)

        def conv() -> GINConv:
            return GINConv(Sequential(Linear(h, h), ReLU(), Linear(h, h)), train_eps=True)

        self.convs = ModuleList([conv() for _ in range(num_layers)])
        self.rev_convs = ModuleList([conv() for _ in range(num_layers)] if bidirectional else [])
        self.lin_out = Linear((num_layers + 1) * h, out_channels)

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for c in list(self.convs) + list(self.rev_convs):
            c.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(self, batch: Batch) -> Tensor:
        node_type, edge_index, vec, num_graphs = _graph_inputs(batch, self.num_node_types)
        pool = global_add_pool if self.pool == 'sum' else global_mean_pool
        h = self.embedding(node_type)
        pooled = [pool(h, vec, num_graphs)]
        rev = edge_index.flip(0)
        for i, conv in enumerate(self.convs):
            out = conv(h, edge_index)
            if self.bidirectional:
                out = out + self.rev_convs[i](h, rev)
            h = out.relu()
            pooled.append(pool(h, vec, num_graphs))
        return self.lin_out(torch.cat(pooled, dim=-1))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_node_types}, {self.hidden_channels}, '
                f'{self.out_channels}, num_layers={self.num_layers}, '
                f'bidirectional={self.bidirectional}, pool={self.pool!r})')
