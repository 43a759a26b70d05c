r"""The autoregressive DAG decoder, batched over graphs on dense tensors.

Dense form of ``B`` graphs with ``n`` nodes each (nodes in topological order, see
:mod:`d2a.graphs.dense`): ``node_type`` ``[B, n]`` (long) and ``adj`` ``[B, n, n]`` (bool,
strictly upper-triangular, ``adj[b, j, i]`` is the edge ``j -> i``).
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GRUCell, Linear, Module, ReLU, Sequential

from d2a.graphs.dense import resolve_space
from d2a.graphs.space import END, START, SearchSpace


class DAGDecoder(Module):
    r"""The autoregressive DAG decoder of D-VAE (`"D-VAE: A Variational Autoencoder for
    Directed Acyclic Graphs" <https://arxiv.org/abs/1904.11088>`_) as used by MetaD2A,
    batched over graphs on dense tensors.

    The initial state is :math:`h_z = \tanh(W z)`. Node ``i`` (in topological order) gets its
    type from an MLP on the graph state (the previous node's state; :math:`h_z` for node 0);
    then an edge from every earlier node ``j`` with probability
    :math:`\sigma(\mathrm{MLP}([h_j, q_i]))`, where :math:`q_i = \mathrm{GRU}(x_i, g)` is the
    new node's type update of the graph state; then its state
    :math:`h_i = \mathrm{GRU}(x_i, \sum_{j \to i} \sigma(W_g h_j) \odot W_m h_j)`
    (:math:`\mathrm{GRU}(x_0, h_z)` for node 0). Edges to node ``i`` are decided together,
    so one step handles every graph of the batch and every candidate edge at once.

    With ``chain=True`` the state update also reads the previous node, as if the graph had
    MetaD2A's extra ``i -> i + 1`` edges, so the graph state that chooses the next type
    summarises every choice made so far (without it, an NB201 node only sees its data-flow
    predecessors). The chain is internal: it is neither sampled nor part of the output.

    With ``constrained=True`` the search space's rules are applied in training and sampling:
    types outside :meth:`SearchSpace.allowed_types` get probability zero, forced edges are
    always present and forbidden ones never, and only the space's free edges are modelled,
    so samples are valid by construction where the space's rules are local. With
    ``constrained=False`` (MetaD2A's free decoding) only START first and END last are fixed;
    every type elsewhere and every forward edge is predicted, and validity must be measured.

    Args:
        in_channels (int): Size of the latent vector ``z`` (MetaD2A: 56).
        hidden_channels (int): Node-state size (MetaD2A: 56).
        num_node_types (int): Number of node types (``START = 0``, ``END = 1``).
        max_nodes (int): Nodes per graph.
        space (SearchSpace or str, optional): The search space whose rules are applied.
        constrained (bool, optional): Apply the space's rules. (default: :obj:`True`)
        chain (bool, optional): Read the previous node in every state update.
            (default: :obj:`True`)

    Shapes:
        - **log_likelihood:** ``z`` ``[B, in_channels]``, ``node_type`` ``[B, n]``,
          ``adj`` ``[B, n, n]`` -> ``[B]``
        - **sample:** ``z`` ``[B, in_channels]`` -> ``node_type`` ``[B, n]``,
          ``adj`` ``[B, n, n]`` (bool)
    """
    def __init__(self, in_channels: int, hidden_channels: int, num_node_types: int,
                 max_nodes: int, space: Union[str, SearchSpace, None] = None,
                 constrained: bool = True, chain: bool = True):
        super().__init__()
        self.space = resolve_space(space) if space is not None else None
        if self.space is not None:
            if (self.space.num_node_types, self.space.max_nodes) != (num_node_types, max_nodes):
                raise ValueError(
                    f"space '{self.space.name}' has {self.space.num_node_types} node types and "
                    f'{self.space.max_nodes} nodes, decoder was given {num_node_types} and '
                    f'{max_nodes}')
        if max_nodes < 2 or num_node_types < 2:
            raise ValueError(f"'max_nodes' and 'num_node_types' must be >= 2, got {max_nodes} "
                             f'and {num_node_types}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_node_types = num_node_types
        self.max_nodes = max_nodes
        self.constrained = constrained
        self.chain = chain
        h = hidden_channels
        self.lin_init = Linear(in_channels, h)
        self.gru = GRUCell(num_node_types, h)
        self.type_mlp = Sequential(Linear(h, 2 * h), ReLU(), Linear(2 * h, num_node_types))
        # The edge MLP's first layer on [h_j, q_i], split so h_j's half is computed once per node.
        self.edge_src = Linear(h, 4 * h)
        self.edge_dst = Linear(h, 4 * h, bias=False)
        self.edge_out = Linear(4 * h, 1)
        self.gate = Linear(h, h)
        self.mapper = Linear(h, h, bias=False)

        n, t = max_nodes, num_node_types
        if constrained and self.space is not None:
            type_mask = self.space.type_mask().bool()
            forced, free = (m.bool() for m in self.space.edge_mask())
        else:
            type_mask = torch.ones(n, t, dtype=torch.bool)
            type_mask[0] = False
            type_mask[0, START] = True
            type_mask[-1] = False
            type_mask[-1, END] = True
            forced = torch.zeros(n, n, dtype=torch.bool)
            free = torch.ones(n, n, dtype=torch.bool).triu(1)
        self.register_buffer('type_mask', type_mask, persistent=False)
        self.register_buffer('forced', forced & ~free, persistent=False)
        self.register_buffer('free', free, persistent=False)
        # Edges each state update reads besides the graph's own: i - 1 -> i with `chain`.
        implicit = torch.zeros(n, n, dtype=torch.bool)
        if chain:
            implicit[torch.arange(n - 1), torch.arange(1, n)] = True
        self.register_buffer('implicit', implicit, persistent=False)

    @classmethod
    def from_space(cls, space: Union[str, SearchSpace], in_channels: int = 56,
                   hidden_channels: int = 56, constrained: bool = True,
                   chain: bool = True) -> DAGDecoder:
        r"""A decoder sized for ``space`` (its node types and node count)."""
        space = resolve_space(space)
        return cls(in_channels, hidden_channels, space.num_node_types, space.max_nodes,
                   space=space, constrained=constrained, chain=chain)

    def reset_parameters(self) -> None:
        for m in (self.lin_init, self.gru, self.type_mlp[0], self.type_mlp[2], self.edge_src,
                  self.edge_dst, self.edge_out, self.gate, self.mapper):
            m.reset_parameters()

    # ---------------------------------------------------------------- shared pieces
    def _allowed(self, prefix: Tensor) -> Tensor:
        i = prefix.size(1)
        if self.constrained and self.space is not None and 0 < i < self.max_nodes - 1:
            return self.space.allowed_types(prefix).to(prefix.device, torch.bool)
        return self.type_mask[i].expand(prefix.size(0), -1)

    def _type_logits(self, g: Tensor, allowed: Tensor) -> Tensor:
        return self.type_mlp(g).masked_fill(~allowed, float('-inf'))

    def _edge_logits(self, src: Tensor, q: Tensor) -> Tensor:
        # src: [B, k, 4h] (edge_src of earlier nodes), q: [B, h] -> [B, k]
        return self.edge_out((src + self.edge_dst(q).unsqueeze(1)).relu()).squeeze(-1)

    def _node(self, x: Tensor, msg: Tensor) -> Tuple[Tensor, Tensor]:
        # New node state and its outgoing message.
        h = self.gru(x, msg)
        return h, torch.sigmoid(self.gate(h)) * self.mapper(h)

    def _check_z(self, z: Tensor) -> None:
        if z.dim() != 2 or z.size(1) != self.in_channels:
            raise ValueError(f"latent 'z' must be [B, {self.in_channels}], got {list(z.shape)}")

    def _check_targets(self, z: Tensor, node_type: Tensor, adj: Tensor) -> None:
        n = self.max_nodes
        if node_type.shape != (z.size(0), n) or adj.shape != (z.size(0), n, n):
            raise ValueError(f"targets must be 'node_type' [{z.size(0)}, {n}] and 'adj' "
                             f'[{z.size(0)}, {n}, {n}], got {list(node_type.shape)} and '
                             f'{list(adj.shape)}')
        if int(node_type.min()) < 0 or int(node_type.max()) >= self.num_node_types:
            raise ValueError(f"target 'node_type' must be in 0..{self.num_node_types - 1}")
        allowed_edges = self.forced | self.free
        bad = (adj & ~allowed_edges) | (self.forced & ~adj)
        if bool(bad.any()):
            b, j, i = bad.nonzero()[0].tolist()
            what = 'missing a required' if bool(self.forced[j, i]) else 'has a disallowed'
            raise ValueError(f'target graph {b} {what} edge {j} -> {i} '
                             f'(constrained={self.constrained})')

    # ---------------------------------------------------------------- entry points
    def log_likelihood(self, z: Tensor, node_type: Tensor, adj: Tensor) -> Tensor:
        r"""Teacher-forced log-likelihood of dense graphs given latent vectors.

        The sum of the node-type log-probabilities (under the allowed types) and the
        negative binary cross-entropy of the modelled (free) edges, per graph.
        Raises :class:`ValueError` when a target breaks the constraints.
        """
        self._check_z(z)
        node_type = node_type.to(z.device).long()
        adj = adj.to(z.device).bool()
        self._check_targets(z, node_type, adj)
        x = F.one_hot(node_type, self.num_node_types).to(z.dtype)
        hz = torch.tanh(self.lin_init(z))
        g = hz
        type_ll = z.new_zeros(z.size(0))
        has_free = bool(self.free.any())
        states: List[Tensor] = []
        msgs: List[Tensor] = []
        queries: List[Tensor] = []
        for i in range(self.max_nodes):
            allowed = self._allowed(node_type[:, :i])
            tgt = node_type[:, i:i + 1]
            ok = allowed.gather(1, tgt).view(-1)
            if not bool(ok.all()):
                b = int((~ok).nonzero()[0])
                raise ValueError(f'target graph {b}: node {i} has type {int(tgt[b])}, not '
                                 f"allowed there by the '{getattr(self.space, 'name', '')}' "
                                 f'rules (constrained={self.constrained})')
            if int(allowed.sum(1).max()) > 1:
                type_ll = type_ll + F.log_softmax(self._type_logits(g, allowed), -1) \
                    .gather(1, tgt).view(-1)
            if i == 0:
                msg = hz
            else:
                if has_free:
                    queries.append(self.gru(x[:, i], g))
                a = (adj[:, :i, i] | self.implicit[:i, i]).to(z.dtype)
                msg = (torch.stack(msgs, 1) * a.unsqueeze(-1)).sum(1)
            g, m = self._node(x[:, i], msg)
            states.append(g)
            msgs.append(m)
        if not has_free:
            return type_ll
        src = self.edge_src(torch.stack(states[:-1], 1))  # [B, n-1, 4h], nodes 0..n-2
        dst = self.edge_dst(torch.stack(queries, 1))   # [B, n-1, 4h], nodes 1..n-1
        logits = self.edge_out((src[:, :, None] + dst[:, None]).relu()).squeeze(-1)
        target = adj[:, :-1, 1:].to(z.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
        edge_ll = -(bce * self.free[:-1, 1:]).flatten(1).sum(1)
        return type_ll + edge_ll

    @torch.no_grad()
    def sample(self, z: Tensor, greedy: bool = False,
               generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        r"""Decodes latent vectors into dense graphs.

        Args:
            z (torch.Tensor): ``[B, in_channels]`` latent vectors.
            greedy (bool, optional): Take the most likely type and the edges with
                probability above 0.5 instead of sampling. (default: :obj:`False`)
            generator (torch.Generator, optional): Random source for sampling.

        Returns:
            ``node_type`` ``[B, n]`` (long) and ``adj`` ``[B, n, n]`` (bool).
        """
        self._check_z(z)
        num, n = z.size(0), self.max_nodes
        node_type = torch.zeros(num, n, dtype=torch.long, device=z.device)
        adj = torch.zeros(num, n, n, dtype=torch.bool, device=z.device)
        hz = torch.tanh(self.lin_init(z))
        g = hz
        msgs = z.new_empty(num, n, self.hidden_channels)
        # The edge MLP's half for earlier nodes, only where some edge is modelled.
        srcs = z.new_empty(num, n, 4 * self.hidden_channels) if bool(self.free.any()) else None
        for i in range(n):
            allowed = self._allowed(node_type[:, :i])
            if int(allowed.sum(1).max()) > 1:
                logits = self._type_logits(g, allowed)
                if greedy:
                    t = logits.argmax(-1)
                else:  # Gumbel-max: a categorical sample, cheaper than multinomial
                    u = torch.rand(logits.shape, generator=generator, device=logits.device,
                                   dtype=logits.dtype).clamp_min(1e-20)
                    t = (logits - torch.log(-torch.log(u))).argmax(-1)
            else:
                t = allowed.to(torch.uint8).argmax(-1)
            node_type[:, i] = t
            x = F.one_hot(t, self.num_node_types).to(z.dtype)
            if i == 0:
                msg = hz
            else:
                col = self.forced[:i, i].expand(num, -1).clone()
                free = self.free[:i, i].nonzero().view(-1)
                if free.numel() > 0:
                    p = torch.sigmoid(self._edge_logits(srcs[:, free], self.gru(x, g)))
                    if greedy:
                        col[:, free] = p > 0.5
                    else:
                        col[:, free] = torch.rand(p.shape, generator=generator,
                                                  device=p.device) < p
                adj[:, :i, i] = col
                a = (col | self.implicit[:i, i]).to(z.dtype)
                msg = (msgs[:, :i] * a.unsqueeze(-1)).sum(1)
            g, msgs[:, i] = self._node(x, msg)
            if srcs is not None:
                srcs[:, i] = self.edge_src(g)
        return node_type, adj

    def __repr__(self) -> str:
        space = f"'{self.space.name}'" if self.space is not None else None
        return (f'{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, '
                f'num_node_types={self.num_node_types}, max_nodes={self.max_nodes}, '
                f'space={space}, constrained={self.constrained}, chain={self.chain})')
