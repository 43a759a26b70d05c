r"""The interface every search space implements, and the registry of spaces.

An architecture of a search space has four representations:

* **string** -- the space's canonical text form, the one key used in files and tables;
* **Data** -- a :class:`torch_geometric.data.Data` with nodes in topological order:
  ``node_type`` (``[num_nodes]``, long) and ``edge_index`` (``[2, num_edges]``);
* **dense** -- ``node_type`` ``[max_nodes]`` and a strictly upper-triangular adjacency
  ``[max_nodes, max_nodes]``, the form the batched decoder produces;
* **canonical key** -- equal for architectures that compute the same function.

Each space also gives the size of its networks (:meth:`SearchSpace.cost_model`).

Node type ``0`` is always ``START`` and ``1`` always ``END``.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Type

import networkx as nx
import torch
from torch import Tensor
from torch_geometric.data import Data

from d2a.utils.registry import Registry

START: int = 0
END: int = 1


class SearchSpace(ABC):
    r"""A space of architectures represented as DAGs with typed nodes.

    Subclasses set :attr:`name`, :attr:`node_types` (type id -> name, with
    ``START`` and ``END`` first) and :attr:`max_nodes`.
    """
    name: str = ''
    node_types: Tuple[str, ...] = ()
    max_nodes: int = 0

    @property
    def num_node_types(self) -> int:
        return len(self.node_types)

    # ---------------------------------------------------------------- representations
    @abstractmethod
    def to_data(self, arch: str) -> Data:
        r"""Parses a string into a :class:`Data` (raises :class:`ValueError`)."""

    def check_string(self, arch: str) -> None:
        r"""Raises :class:`ValueError` naming what is wrong when ``arch`` is not a string of
        this space (a cheaper test than :meth:`to_data` where a space has one)."""
        self.to_data(arch)

    @abstractmethod
    def from_dense(self, node_type: Sequence[int], adj: Tensor) -> str:
        r"""Converts one dense graph (``[n]`` types, ``[n, n]`` adjacency) into its string.

        Raises :class:`ValueError` naming the reason when the graph is not in the space.
        """

    def _check_frame(self, node_type: Sequence[int], adj: Tensor) -> Tuple[List[int], Tensor]:
        # Checks shared by every space's from_dense: size, START/END, topological order.
        node_type = [int(t) for t in node_type]
        n = self.max_nodes
        if len(node_type) != n:
            raise ValueError(f'a {self.name} graph has {n} nodes, got {len(node_type)}')
        if node_type[0] != START:
            raise ValueError(f'node 0 must be START (type {START}), got type {node_type[0]}')
        if node_type[-1] != END:
            raise ValueError(f'node {n - 1} must be END (type {END}), got type {node_type[-1]}')
        adj = torch.as_tensor(adj).bool()
        if adj.shape != (n, n):
            raise ValueError(f'adjacency must be {n}x{n}, got {list(adj.shape)}')
        if adj.tril().any():
            j, i = adj.tril().nonzero()[0].tolist()
            raise ValueError(f'edge {j} -> {i} goes backwards: nodes must be in topological '
                             'order (the graph may be cyclic)')
        return node_type, adj

    @staticmethod
    def _check_edges(adj: Tensor, required: Tensor, allowed: Tensor,
                     missing_msg: str, extra_msg: str) -> None:
        # Every required edge present, nothing outside the allowed set; the messages are
        # formatted with the edge's source j and target i.
        missing = required & ~adj
        if missing.any():
            j, i = missing.nonzero()[0].tolist()
            raise ValueError(missing_msg.format(j=j, i=i))
        extra = adj & ~allowed
        if extra.any():
            j, i = extra.nonzero()[0].tolist()
            raise ValueError(extra_msg.format(j=j, i=i))

    def from_data(self, data: Data) -> str:
        r"""Converts a :class:`Data` back into its string (raises :class:`ValueError`)."""
        node_type, adj = data_to_dense(data)
        return self.from_dense(node_type.tolist(), adj)

    def from_dense_batch(self, node_type: Tensor, adj: Tensor) -> List[Optional[str]]:
        r"""Converts a batch of dense graphs, ``None`` where a graph is invalid.

        Args:
            node_type (torch.Tensor): ``[B, n]`` node types.
            adj (torch.Tensor): ``[B, n, n]`` adjacency, ``adj[b, j, i] = 1`` for ``j -> i``.
        """
        out: List[Optional[str]] = []
        types = node_type.tolist()
        for b in range(len(types)):
            try:
                out.append(self.from_dense(types[b], adj[b]))
            except ValueError:
                out.append(None)
        return out

    def check(self, data: Data) -> Optional[str]:
        r"""Returns ``None`` if ``data`` is a valid architecture, else the reason why not."""
        try:
            self.from_data(data)
        except ValueError as e:
            return str(e)
        return None

    def is_valid(self, data: Data) -> bool:
        return self.check(data) is None

    @abstractmethod
    def canonical_key(self, arch: str) -> str:
        r"""A key shared by all architectures that compute the same function."""

    @abstractmethod
    def sample(self, num: int, rng: Optional[random.Random] = None) -> List[str]:
        r"""Draws ``num`` architectures uniformly at random (with replacement)."""

    @property
    def size(self) -> int:
        r"""Number of architectures (strings) in the space."""
        raise TypeError(f"search space '{self.name}' has no finite size")

    def enumerate(self) -> Iterator[str]:
        r"""Yields every architecture of a finite space."""
        raise TypeError(f"search space '{self.name}' cannot be enumerated")

    def unique(self) -> List[str]:
        r"""One architecture per canonical key of a finite space (the first one
        :meth:`enumerate` yields), in enumeration order."""
        seen: Dict[str, str] = {}
        for arch in self.enumerate():
            seen.setdefault(self.canonical_key(arch), arch)
        return list(seen.values())

    def to_networkx(self, arch: str) -> nx.DiGraph:
        r"""A :class:`networkx.DiGraph` for inspection; nodes carry ``type`` and ``label``."""
        data = self.to_data(arch)
        g = nx.DiGraph()
        for i, t in enumerate(data.node_type.tolist()):
            g.add_node(i, type=t, label=self.node_types[t])
        g.add_edges_from(data.edge_index.t().tolist())
        return g

    # ---------------------------------------------------------------- cost
    def cost_model(self, **network_sizes: Any) -> Optional['CostModel']:
        r"""Parameters and FLOPs of the networks of the space's architectures, for the
        network sizes the space understands (e.g. ``num_classes``, ``in_channels``);
        ``None`` when the space has no cost model."""
        return None

    # ---------------------------------------------------------------- decoder constraints
    def type_mask(self) -> Tensor:
        r"""``[max_nodes, num_node_types]`` bool: the types allowed at each position."""
        mask = torch.zeros(self.max_nodes, self.num_node_types, dtype=torch.bool)
        mask[0, START] = True
        mask[1:-1, 2:] = True
        mask[-1, END] = True
        return mask

    def allowed_types(self, prefix: Tensor) -> Tensor:
        r"""Types allowed at position ``i = prefix.size(1)`` given the types before it.

        Args:
            prefix (torch.Tensor): ``[B, i]`` types already chosen.

        Returns:
            ``[B, num_node_types]`` bool mask. The default uses :meth:`type_mask`;
            spaces whose rules link positions override it.
        """
        i = prefix.size(1)
        return self.type_mask()[i].to(prefix.device).expand(prefix.size(0), -1)

    def edge_mask(self) -> Tuple[Tensor, Tensor]:
        r"""Edge constraints of the space, both ``[max_nodes, max_nodes]`` bool,
        strictly upper-triangular (``[j, i]`` is the edge ``j -> i``).

        Returns:
            ``(forced, free)``: edges every architecture has, and edges the decoder may
            choose. All other edges are forbidden.
        """
        n = self.max_nodes
        return (torch.zeros(n, n, dtype=torch.bool),
                torch.ones(n, n, dtype=torch.bool).triu(1))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(name={self.name!r}, '
                f'num_node_types={self.num_node_types}, max_nodes={self.max_nodes})')


class CostModel(ABC):
    r"""Parameters and multiply-accumulates ("FLOPs") of the network of each architecture of
    a space, for one choice of network sizes (:meth:`SearchSpace.cost_model`)."""

    @abstractmethod
    def params(self, arch: str) -> int:
        r"""Number of parameters of the network of ``arch``."""

    @abstractmethod
    def flops(self, arch: str) -> int:
        r"""Multiply-accumulates of one image through the network of ``arch``."""

    @abstractmethod
    def min_params(self) -> int:
        r"""The fewest parameters of any architecture's network."""

    @abstractmethod
    def min_flops(self) -> int:
        r"""The fewest FLOPs of any architecture's network."""


def data_to_dense(data: Data) -> Tuple[Tensor, Tensor]:
    r"""``node_type`` ``[n]`` and dense adjacency ``[n, n]`` (long) of one graph.

    Raises :class:`ValueError` when the graph has no ``node_type`` or an edge points
    outside its nodes.
    """
    node_type = getattr(data, 'node_type', None)
    if node_type is None:
        raise ValueError("graph has no 'node_type' attribute")
    node_type = node_type.view(-1).long()
    n = node_type.numel()
    adj = torch.zeros(n, n, dtype=torch.long)
    edge_index = getattr(data, 'edge_index', None)
    if edge_index is not None and edge_index.numel() > 0:
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, num_edges], got {list(edge_index.shape)}")
        if int(edge_index.min()) < 0 or int(edge_index.max()) >= n:
            raise ValueError(f"'edge_index' refers to a node outside 0..{n - 1}")
        adj[edge_index[0], edge_index[1]] = 1
    return node_type, adj


def dense_to_edge_index(adj: Tensor) -> Tensor:
    r"""``[2, num_edges]`` edge index of a dense ``[n, n]`` adjacency, sorted by target then source."""
    dst, src = adj.t().nonzero(as_tuple=True)
    return torch.stack([src, dst], dim=0)


def _import_spaces() -> None:
    from d2a.graphs import mbv3, nb201  # noqa: F401  (registers them)


#: The search spaces by name (classes; :func:`get_space` makes an instance).
SPACES: Registry[Type[SearchSpace]] = Registry('search space', key=lambda cls: cls.name,
                                               populate=_import_spaces)


def register_space(cls: Type[SearchSpace]) -> Type[SearchSpace]:
    r"""Class decorator adding a space to :func:`get_space`."""
    return SPACES.register()(cls)


def list_spaces() -> List[str]:
    return SPACES.names()


def get_space(name: str) -> SearchSpace:
    r"""The search space called ``name`` (``'nb201'`` or ``'mbv3'``)."""
    return SPACES.get(name)()
