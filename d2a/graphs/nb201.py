r"""NAS-Bench-201 (Dong & Yang, ICLR 2020) cells.

Representations and converters
------------------------------
* **string** ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -- the canonical key everywhere
  (:func:`parse_arch` -> ops, :func:`format_arch` <- ops).
* **ops** -- six op names in string order, i.e. edges (to, from) =
  (1,0), (2,0), (2,1), (3,0), (3,1), (3,2).
* **code** -- ``0 .. 15624``, the ops read as a base-5 number over :data:`OPS`; the order
  of :meth:`NB201Space.enumerate` (:func:`ops_to_code`, :func:`code_to_ops`).
* **index** -- NAS-Bench-201's own index (:func:`arch_to_index`, :func:`index_to_arch`),
  from a table shipped with the package.
* **Data** -- MetaD2A's operation-on-node graph: 8 nodes (START, the 6 ops in string
  order, END), ``node_type`` START=0, END=1, ops 2..6 in :data:`OPS` order, and
  ``edge_index`` the cell's data flow (:meth:`NB201Space.to_data`,
  :meth:`NB201Space.from_data`).
* **canonical key** -- NAS-Bench-201's rule for isomorphic cells
  (:func:`canonical_key`): 6,466 classes over the 15,625 cells.

Cost: :class:`NB201CostModel` (:meth:`NB201Space.cost_model`), the parameters and FLOPs of
the cell's NAS-Bench-201 network in closed form.
"""
from __future__ import annotations

import functools
import itertools
import random
from importlib import resources
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from d2a.graphs.space import END, START, CostModel, SearchSpace, register_space

OPS: Tuple[str, ...] = ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
#: Cell edges (to, from) in string order.
EDGES: Tuple[Tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)
NUM_ARCHS = len(OPS) ** NUM_EDGES
NUM_NODES = NUM_EDGES + 2
NODE_TYPES: Tuple[str, ...] = ('START', 'END') + OPS
_OP_ID = {op: i for i, op in enumerate(OPS)}


def _op_node_inputs() -> List[List[int]]:
    # Graph node of op k is k + 1. An op on cell edge (t, f) reads cell node f, which is
    # START for f = 0, else the sum of the ops on the edges into f. END sums the ops into 3.
    preds: List[List[int]] = []
    for to, frm in EDGES + ((4, 3),):
        if frm == 0:
            preds.append([START])
        else:
            preds.append([k + 1 for k, (t, _) in enumerate(EDGES) if t == frm])
    return preds


_PREDS = _op_node_inputs()
#: ``[2, 10]`` data-flow edges of every cell (same for all cells).
EDGE_INDEX: Tensor = torch.tensor(
    [[j, i + 1] for i, ps in enumerate(_PREDS) for j in ps], dtype=torch.long).t().contiguous()
_ADJ = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.bool)
_ADJ[EDGE_INDEX[0], EDGE_INDEX[1]] = True
#: Chain edges ``i -> i + 1`` that MetaD2A's graphs add on top of the data flow.
_CHAIN = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.bool)
_CHAIN[torch.arange(NUM_NODES - 1), torch.arange(1, NUM_NODES)] = True


# ------------------------------------------------------------------------- string <-> ops
def parse_arch(arch: str) -> List[str]:
    r"""The six op names of an NB201 string, in string order.

    Raises :class:`ValueError` naming the part at fault.
    """
    if not isinstance(arch, str):
        raise ValueError(f'NB201 architecture must be a string, got {type(arch).__name__}')
    nodes = arch.split('+')
    if len(nodes) != 3:
        raise ValueError(f"NB201 string {arch!r} must have 3 node groups separated by '+', "
                         f'found {len(nodes)}')
    ops: List[str] = []
    for to, group in enumerate(nodes, start=1):
        if not (group.startswith('|') and group.endswith('|')) or len(group) < 2:
            raise ValueError(f"NB201 string {arch!r}: node group {group!r} must start and end with '|'")
        items = group[1:-1].split('|')
        if len(items) != to:
            raise ValueError(f'NB201 string {arch!r}: node {to} needs {to} edge(s), '
                             f'found {len(items)} in {group!r}')
        for frm, item in enumerate(items):
            op, sep, src = item.partition('~')
            if not sep:
                raise ValueError(f"NB201 string {arch!r}: edge {item!r} is not 'op~input'")
            if op not in _OP_ID:
                raise ValueError(f"NB201 string {arch!r}: unknown op {op!r} "
                                 f"(known: {', '.join(OPS)})")
            if src != str(frm):
                raise ValueError(f'NB201 string {arch!r}: edge {item!r} into node {to} must read '
                                 f'node {frm}, not {src!r}')
            ops.append(op)
    return ops


def _check_ops(ops: Sequence[str]) -> None:
    if len(ops) != NUM_EDGES:
        raise ValueError(f'an NB201 cell has {NUM_EDGES} ops, got {len(ops)}')
    for op in ops:
        if op not in _OP_ID:
            raise ValueError(f"unknown NB201 op {op!r} (known: {', '.join(OPS)})")


def format_arch(ops: Sequence[str]) -> str:
    r"""The NB201 string of six op names in string order."""
    _check_ops(ops)
    groups, k = [], 0
    for to in range(1, 4):
        groups.append('|' + '|'.join(f'{ops[k + f]}~{f}' for f in range(to)) + '|')
        k += to
    return '+'.join(groups)


# ------------------------------------------------------------------------- ops <-> code/index
def ops_to_code(ops: Sequence[str]) -> int:
    _check_ops(ops)
    code = 0
    for op in ops:
        code = code * len(OPS) + _OP_ID[op]
    return code


def code_to_ops(code: int) -> List[str]:
    if not 0 <= int(code) < NUM_ARCHS:
        raise ValueError(f'NB201 code must be in 0..{NUM_ARCHS - 1}, got {code}')
    ids = []
    code = int(code)
    for _ in range(NUM_EDGES):
        code, r = divmod(code, len(OPS))
        ids.append(r)
    return [OPS[i] for i in reversed(ids)]


@functools.lru_cache(maxsize=1)
def _index_tables() -> Tuple[np.ndarray, np.ndarray]:
    with resources.files('d2a.graphs').joinpath('data/nb201_index.npy').open('rb') as f:
        index_to_code = np.load(f).astype(np.int64)
    code_to_index = np.empty_like(index_to_code)
    code_to_index[index_to_code] = np.arange(NUM_ARCHS)
    return index_to_code, code_to_index


def index_to_arch(index: int) -> str:
    r"""The string of NAS-Bench-201's cell number ``index``."""
    if not 0 <= int(index) < NUM_ARCHS:
        raise ValueError(f'NB201 index must be in 0..{NUM_ARCHS - 1}, got {index}')
    return format_arch(code_to_ops(int(_index_tables()[0][int(index)])))


def arch_to_index(arch: str) -> int:
    r"""NAS-Bench-201's index of a cell string."""
    return int(_index_tables()[1][ops_to_code(parse_arch(arch))])


# ------------------------------------------------------------------------- canonical key
def canonical_key(arch: str) -> str:
    r"""NAS-Bench-201's key for isomorphic cells.

    The cell's output is written as an expression: a ``none`` edge, or an edge out of node 1
    when node 1 is zero, contributes a zero ``#``; ``skip_connect`` passes its input's
    expression through; another op wraps it; a node is the sorted sum of its inputs. This is
    the rule the benchmark's authors used to count 6,466 unique cells.
    """
    ops = parse_arch(arch)
    nodes = {0: '0'}
    for to in range(1, 4):
        terms = []
        for k, (t, frm) in enumerate(EDGES):
            if t != to:
                continue
            op = ops[k]
            if op == 'none' or nodes[frm] == '#':
                terms.append('#')
            elif op == 'skip_connect':
                terms.append(nodes[frm])
            else:
                terms.append(f'({nodes[frm]})@{op}')
        nodes[to] = '+'.join(sorted(terms))
    return nodes[3]


# ------------------------------------------------------------------------- cost
def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"'{name}' must be a positive integer, got {value!r}")


class NB201CostModel(CostModel):
    r"""Parameters and multiply-accumulates of :class:`~d2a.nets.NB201Network` for any cell,
    in closed form (no network is built).

    The network is a stem (3x3 conv + BN), three stages of ``N`` cells with ``C``, ``2C`` and
    ``4C`` channels at sides ``S``, ``ceil(S / 2)`` and ``ceil(S / 4)``, two residual
    reductions between them, a final BN and a linear classifier. Its cost is the cost of
    these fixed parts plus, for each of the cell's 6 edges, ``N`` times the cost of the
    edge's op in every stage: ``nor_conv_kxk`` is ReLU-Conv(kxk, no bias)-BN
    (``k^2 c^2 + 2c`` parameters, ``k^2 c^2 h^2`` MACs), ``avg_pool_3x3`` costs ``9 c h^2``
    MACs, ``skip_connect`` and ``none`` nothing. FLOPs are counted like NAS-Bench-201's
    profiler (:func:`d2a.nets.nb201.count_flops`, which builds the network and checks these
    numbers in the tests): convolutions per output position, pooling ``k^2`` per output,
    the classifier ``in * out + out``; BatchNorm, activations and additions are free.

    Args:
        C (int): channels of the first stage. (default: :obj:`16`)
        N (int): cells per stage. (default: :obj:`5`)
        image_size (int): input side for FLOPs. (default: :obj:`32`)
        in_channels (int): image channels. (default: :obj:`3`)
        num_classes (int): classifier outputs. (default: :obj:`10`)
    """
    def __init__(self, C: int = 16, N: int = 5, image_size: int = 32, in_channels: int = 3,
                 num_classes: int = 10) -> None:
        _positive(C=C, N=N, image_size=image_size, in_channels=in_channels,
                  num_classes=num_classes)
        self.C, self.N, self.image_size = C, N, image_size
        self.in_channels, self.num_classes = in_channels, num_classes
        channels = [C, 2 * C, 4 * C]
        sides = [image_size, (image_size + 1) // 2]
        sides.append((sides[1] + 1) // 2)
        areas = [h * h for h in sides]
        params = 9 * in_channels * C + 2 * C                         # stem conv + BN
        flops = 9 * in_channels * C * areas[0]
        for s in (1, 2):                                             # residual reductions
            c_in, c_out, area = channels[s - 1], channels[s], areas[s]
            convs = 9 * c_in * c_out + 9 * c_out * c_out + c_in * c_out
            params += convs + 4 * c_out                              # two BNs
            flops += convs * area + 4 * c_in * area                  # 2x2 pool of the shortcut
        params += 2 * channels[2] + channels[2] * num_classes + num_classes
        flops += channels[2] * num_classes + num_classes
        self._base = (params, flops)
        per_op = {'none': (0, 0), 'skip_connect': (0, 0),
                  'nor_conv_1x1': [(c * c + 2 * c, c * c * a) for c, a in zip(channels, areas)],
                  'nor_conv_3x3': [(9 * c * c + 2 * c, 9 * c * c * a)
                                   for c, a in zip(channels, areas)],
                  'avg_pool_3x3': [(0, 9 * c * a) for c, a in zip(channels, areas)]}
        self._per_edge = {op: (N * sum(p for p, _ in v), N * sum(f for _, f in v))
                          if isinstance(v, list) else v for op, v in per_op.items()}

    def params(self, arch: str) -> int:
        return self._base[0] + sum(self._per_edge[op][0] for op in parse_arch(arch))

    def flops(self, arch: str) -> int:
        return self._base[1] + sum(self._per_edge[op][1] for op in parse_arch(arch))

    def min_params(self) -> int:
        return self._base[0] + NUM_EDGES * min(p for p, _ in self._per_edge.values())

    def min_flops(self) -> int:
        return self._base[1] + NUM_EDGES * min(f for _, f in self._per_edge.values())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(C={self.C}, N={self.N}, '
                f'image_size={self.image_size}, num_classes={self.num_classes})')


# ------------------------------------------------------------------------- the space
@register_space
class NB201Space(SearchSpace):
    r"""The NAS-Bench-201 cell space in MetaD2A's operation-on-node form."""
    name = 'nb201'
    node_types = NODE_TYPES
    max_nodes = NUM_NODES
    ops = OPS

    def check_string(self, arch: str) -> None:
        parse_arch(arch)

    def to_data(self, arch: str) -> Data:
        ops = parse_arch(arch)
        node_type = torch.tensor([START] + [_OP_ID[o] + 2 for o in ops] + [END])
        return Data(node_type=node_type, edge_index=EDGE_INDEX.clone(), num_nodes=NUM_NODES)

    def from_dense(self, node_type: Sequence[int], adj: Tensor,
                   allow_chain_edges: bool = False) -> str:
        r"""Args:
            allow_chain_edges (bool): accept MetaD2A's extra ``i -> i + 1`` edges.
        """
        node_type, adj = self._check_frame(node_type, adj)
        for i, t in enumerate(node_type[1:-1], start=1):
            if not 2 <= t < len(NODE_TYPES):
                raise ValueError(f'node {i} must be an op (type 2..{len(NODE_TYPES) - 1}), got type {t}')
        self._check_edges(adj, _ADJ, _ADJ | _CHAIN if allow_chain_edges else _ADJ,
                          'edge {j} -> {i} of the NB201 data flow is missing',
                          'edge {j} -> {i} is not part of the NB201 data flow')
        return format_arch([OPS[t - 2] for t in node_type[1:-1]])

    def from_dense_batch(self, node_type: Tensor, adj: Tensor) -> List[Optional[str]]:
        # Vectorised: a graph is valid iff its types fit the mask and its edges equal the data flow.
        node_type = node_type.long().cpu()
        adj = adj.bool().cpu()
        ok = (node_type.size(1) == NUM_NODES) and (adj.shape[1:] == (NUM_NODES, NUM_NODES))
        if not ok:
            return [None] * node_type.size(0)
        mask = self.type_mask()
        type_ok = mask.gather(1, node_type.clamp(0, len(NODE_TYPES) - 1).t()).t().all(1)
        type_ok &= (node_type >= 0).all(1) & (node_type < len(NODE_TYPES)).all(1)
        edge_ok = (adj == _ADJ).flatten(1).all(1)
        codes = torch.zeros(node_type.size(0), dtype=torch.long)
        for k in range(NUM_EDGES):
            codes = codes * len(OPS) + (node_type[:, k + 1] - 2).clamp(0, len(OPS) - 1)
        valid = (type_ok & edge_ok).tolist()
        return [_format_code(c) if v else None for c, v in zip(codes.tolist(), valid)]

    def canonical_key(self, arch: str) -> str:
        return canonical_key(arch)

    def sample(self, num: int, rng: Optional[random.Random] = None) -> List[str]:
        rng = rng or random.Random()
        return [format_arch([rng.choice(OPS) for _ in range(NUM_EDGES)]) for _ in range(num)]

    @property
    def size(self) -> int:
        return NUM_ARCHS

    def enumerate(self) -> Iterator[str]:
        for ops in itertools.product(OPS, repeat=NUM_EDGES):
            yield format_arch(ops)

    def edge_mask(self) -> Tuple[Tensor, Tensor]:
        return _ADJ.clone(), torch.zeros_like(_ADJ)

    def cost_model(self, C: int = 16, N: int = 5, image_size: int = 32, in_channels: int = 3,
                   num_classes: int = 10) -> NB201CostModel:
        r"""The :class:`NB201CostModel` of the network with these sizes (NAS-Bench-201's
        C=16, N=5 and 32x32 images by default)."""
        return _cost_model(C, N, image_size, in_channels, num_classes)


@functools.lru_cache(maxsize=16)
def _cost_model(C: int, N: int, image_size: int, in_channels: int,
                num_classes: int) -> NB201CostModel:
    return NB201CostModel(C, N, image_size, in_channels, num_classes)


@functools.lru_cache(maxsize=NUM_ARCHS)
def _format_code(code: int) -> str:
    return format_arch(code_to_ops(code))
