r"""MobileNetV3 / Once-for-All (Cai et al., ICLR 2020) sub-networks.

The space: 5 stages of up to 4 MBConv layers; each stage has a depth in :data:`DEPTHS`
(its first ``depth`` layers run, the others are skipped), each of the 20 layers a kernel
size in :data:`KERNELS` and an expand ratio in :data:`EXPANDS`.

Representations and converters
------------------------------
* **config** -- OFA's dict ``{'ks': [20 ints], 'e': [20 ints], 'd': [5 ints]}``
  (:func:`check_config`, :func:`config_to_arch` -> string, :func:`parse_arch` <- string).
* **string** ``d4:k3e3,k5e4,k7e6,k3e6|d2:...`` -- five stage groups separated by ``|``,
  each ``d<depth>:`` and four layers ``k<kernel>e<expand>``; kernel and expand of every
  layer are kept, skipped ones included, so that string, config and graph round-trip.
* **Data** -- MetaD2A's 22-node chain: START, the 20 layers in order, END, with edges
  ``i -> i + 1`` only. A layer node's type encodes ``(depth of its stage, kernel,
  expand)`` as ``2 + 9 * depth_id + 3 * kernel_id + expand_id`` (MetaD2A's numbering,
  :func:`layer_type`, :func:`type_to_layer`): 27 layer types, 29 with START/END
  (:meth:`MBV3Space.to_data`, :meth:`MBV3Space.from_data`).
* **canonical key** -- the string with skipped layers written ``-``: sub-networks that
  differ only in skipped layers are the same network (:func:`canonical_key`).

A graph is valid only if the four layers of each stage carry the same depth.
:func:`count_params` and :func:`count_flops` give the size of a sub-network in OFA's
MobileNetV3-Large layout, with its strides adapted to small images (:func:`layout_strides`);
:class:`MBV3CostModel` (:meth:`MBV3Space.cost_model`) holds them for one choice of sizes, and
:class:`d2a.nets.MBV3Network` is the network they count.
"""
from __future__ import annotations

import random
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from d2a.graphs.space import END, START, CostModel, SearchSpace, register_space

DEPTHS: Tuple[int, ...] = (2, 3, 4)
KERNELS: Tuple[int, ...] = (3, 5, 7)
EXPANDS: Tuple[int, ...] = (3, 4, 6)
NUM_STAGES = 5
MAX_DEPTH = 4
NUM_LAYERS = NUM_STAGES * MAX_DEPTH
NUM_NODES = NUM_LAYERS + 2
NUM_LAYER_TYPES = len(DEPTHS) * len(KERNELS) * len(EXPANDS)
NODE_TYPES: Tuple[str, ...] = ('START', 'END') + tuple(
    f'd{d}_k{k}_e{e}' for d in DEPTHS for k in KERNELS for e in EXPANDS)

Config = Dict[str, List[int]]
Arch = Union[str, Mapping[str, Sequence[int]]]

#: Chain edges ``i -> i + 1``, the only edges of every graph.
EDGE_INDEX: Tensor = torch.stack([torch.arange(NUM_NODES - 1), torch.arange(1, NUM_NODES)])
_CHAIN = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.bool)
_CHAIN[EDGE_INDEX[0], EDGE_INDEX[1]] = True


# ------------------------------------------------------------------------- layer types
def layer_type(depth: int, kernel: int, expand: int) -> int:
    r"""Node type of a layer with its stage depth, kernel size and expand ratio."""
    for name, value, allowed in (('depth', depth, DEPTHS), ('kernel size', kernel, KERNELS),
                                 ('expand ratio', expand, EXPANDS)):
        if value not in allowed:
            raise ValueError(f'MobileNetV3 {name} must be one of {list(allowed)}, got {value!r}')
    return (2 + 9 * DEPTHS.index(depth) + 3 * KERNELS.index(kernel) + EXPANDS.index(expand))


def type_to_layer(node_type: int) -> Tuple[int, int, int]:
    r"""``(depth, kernel, expand)`` of a layer node type ``2 .. 28``."""
    t = int(node_type) - 2
    if not 0 <= t < NUM_LAYER_TYPES:
        raise ValueError(f'a MobileNetV3 layer node has type 2..{NUM_LAYER_TYPES + 1}, '
                         f'got {node_type}')
    return DEPTHS[t // 9], KERNELS[t // 3 % 3], EXPANDS[t % 3]


# ------------------------------------------------------------------------- config <-> string
def check_config(config: Mapping[str, Sequence[int]]) -> Config:
    r"""Validates an OFA config dict and returns it as plain lists of ints.

    Raises :class:`ValueError` naming the key, stage or layer at fault.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f'MobileNetV3 config must be a dict, got {type(config).__name__}')
    out: Config = {}
    for key, length, allowed in (('ks', NUM_LAYERS, KERNELS), ('e', NUM_LAYERS, EXPANDS),
                                 ('d', NUM_STAGES, DEPTHS)):
        if key not in config:
            raise ValueError(f"MobileNetV3 config has no key '{key}'")
        values = list(config[key])
        if len(values) != length:
            raise ValueError(f"MobileNetV3 config '{key}' needs {length} values, got {len(values)}")
        for i, v in enumerate(values):
            if v not in allowed:
                where = f'stage {i}' if key == 'd' else f'layer {i}'
                raise ValueError(f"MobileNetV3 config '{key}' at {where} must be one of "
                                 f'{list(allowed)}, got {v!r}')
        out[key] = [int(v) for v in values]
    return out


def config_to_arch(config: Mapping[str, Sequence[int]]) -> str:
    r"""The string of an OFA config dict."""
    cfg = check_config(config)
    stages = []
    for s in range(NUM_STAGES):
        layers = ','.join(f"k{cfg['ks'][i]}e{cfg['e'][i]}"
                          for i in range(s * MAX_DEPTH, (s + 1) * MAX_DEPTH))
        stages.append(f"d{cfg['d'][s]}:{layers}")
    return '|'.join(stages)


def _parse_int(text: str, what: str, arch: str) -> int:
    if not text.isdigit():
        raise ValueError(f'MobileNetV3 string {arch!r}: {what} {text!r} is not a number')
    return int(text)


def parse_arch(arch: str) -> Config:
    r"""The OFA config dict of a MobileNetV3 string (raises :class:`ValueError`)."""
    if not isinstance(arch, str):
        raise ValueError(f'MobileNetV3 architecture must be a string, got {type(arch).__name__}')
    stages = arch.split('|')
    if len(stages) != NUM_STAGES:
        raise ValueError(f"MobileNetV3 string {arch!r} must have {NUM_STAGES} stages separated "
                         f"by '|', found {len(stages)}")
    cfg: Config = {'ks': [], 'e': [], 'd': []}
    for s, group in enumerate(stages):
        head, sep, body = group.partition(':')
        if not sep or not head.startswith('d'):
            raise ValueError(f"MobileNetV3 string {arch!r}: stage {s} {group!r} must look like "
                             "'d<depth>:k<kernel>e<expand>,...'")
        cfg['d'].append(_parse_int(head[1:], f'depth of stage {s}', arch))
        layers = body.split(',')
        if len(layers) != MAX_DEPTH:
            raise ValueError(f'MobileNetV3 string {arch!r}: stage {s} needs {MAX_DEPTH} layers, '
                             f'found {len(layers)}')
        for j, layer in enumerate(layers):
            k, sep, e = layer.partition('e')
            if not sep or not k.startswith('k'):
                raise ValueError(f"MobileNetV3 string {arch!r}: layer {s * MAX_DEPTH + j} "
                                 f"{layer!r} must look like 'k<kernel>e<expand>'")
            cfg['ks'].append(_parse_int(k[1:], f'kernel of layer {s * MAX_DEPTH + j}', arch))
            cfg['e'].append(_parse_int(e, f'expand of layer {s * MAX_DEPTH + j}', arch))
    return check_config(cfg)


def _as_config(arch: Arch) -> Config:
    return parse_arch(arch) if isinstance(arch, str) else check_config(arch)


def canonical_key(arch: Arch) -> str:
    r"""The string with the layers beyond each stage's depth written ``-``."""
    cfg = _as_config(arch)
    stages = []
    for s in range(NUM_STAGES):
        layers = [f"k{cfg['ks'][i]}e{cfg['e'][i]}" if j < cfg['d'][s] else '-'
                  for j, i in enumerate(range(s * MAX_DEPTH, (s + 1) * MAX_DEPTH))]
        stages.append(f"d{cfg['d'][s]}:{','.join(layers)}")
    return '|'.join(stages)


# ------------------------------------------------------------------------- the space
@register_space
class MBV3Space(SearchSpace):
    r"""The Once-for-All MobileNetV3 space as MetaD2A's 22-node chain graphs."""
    name = 'mbv3'
    node_types = NODE_TYPES
    max_nodes = NUM_NODES

    def to_data(self, arch: Arch) -> Data:
        r"""The chain graph of a string or OFA config dict."""
        cfg = _as_config(arch)
        types = [layer_type(cfg['d'][i // MAX_DEPTH], cfg['ks'][i], cfg['e'][i])
                 for i in range(NUM_LAYERS)]
        node_type = torch.tensor([START] + types + [END])
        return Data(node_type=node_type, edge_index=EDGE_INDEX.clone(), num_nodes=NUM_NODES)

    def to_config(self, arch: str) -> Config:
        r"""The OFA config dict of a string."""
        return parse_arch(arch)

    def from_config(self, config: Mapping[str, Sequence[int]]) -> str:
        r"""The string of an OFA config dict."""
        return config_to_arch(config)

    def from_dense(self, node_type: Sequence[int], adj: Tensor) -> str:
        node_type, adj = self._check_frame(node_type, adj)
        self._check_edges(adj, _CHAIN, _CHAIN, 'chain edge {j} -> {i} is missing',
                          'edge {j} -> {i} is not a chain edge i -> i + 1')
        cfg: Config = {'ks': [], 'e': [], 'd': []}
        for i, t in enumerate(node_type[1:-1]):
            if not 2 <= t < len(NODE_TYPES):
                raise ValueError(f'node {i + 1} (layer {i}) must be a layer type '
                                 f'2..{len(NODE_TYPES) - 1}, got type {t}')
            d, k, e = type_to_layer(t)
            stage, j = divmod(i, MAX_DEPTH)
            if j == 0:
                cfg['d'].append(d)
            elif d != cfg['d'][stage]:
                raise ValueError(f'layer {i} (node {i + 1}) has depth {d} but stage {stage} '
                                 f"has depth {cfg['d'][stage]}: the layers of a stage must "
                                 'share a depth')
            cfg['ks'].append(k)
            cfg['e'].append(e)
        return config_to_arch(cfg)

    def canonical_key(self, arch: str) -> str:
        return canonical_key(arch)

    def sample(self, num: int, rng: Optional[random.Random] = None) -> List[str]:
        rng = rng or random.Random()
        return [config_to_arch(sample_config(rng)) for _ in range(num)]

    @property
    def size(self) -> int:
        r"""Number of strings: ``3^5`` depths times ``9^20`` kernel/expand choices
        (skipped layers included; see :attr:`num_networks`)."""
        return len(DEPTHS) ** NUM_STAGES * (len(KERNELS) * len(EXPANDS)) ** NUM_LAYERS

    @property
    def num_networks(self) -> int:
        r"""Number of distinct sub-networks (canonical keys), about ``2.2e19``."""
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return per_stage ** NUM_STAGES

    def allowed_types(self, prefix: Tensor) -> Tensor:
        r"""Types allowed at position ``prefix.size(1)``: layers 2..4 of a stage must
        repeat the depth of the stage's first layer, so a decoder choosing types left to
        right under this mask only produces valid graphs."""
        i = prefix.size(1)
        if i >= NUM_NODES:
            raise ValueError(f'position {i} is beyond the {NUM_NODES} nodes of a MobileNetV3 graph')
        mask = self.type_mask()[i].to(prefix.device).expand(prefix.size(0), -1).clone()
        layer = i - 1
        if 0 <= layer < NUM_LAYERS and layer % MAX_DEPTH != 0:
            first = prefix[:, 1 + layer - layer % MAX_DEPTH].long() - 2
            known = (first >= 0) & (first < NUM_LAYER_TYPES)
            depth_id = torch.div(first.clamp(0, NUM_LAYER_TYPES - 1), 9, rounding_mode='floor')
            type_depth = torch.div(torch.arange(NUM_LAYER_TYPES, device=prefix.device), 9,
                                   rounding_mode='floor')
            same = type_depth.unsqueeze(0) == depth_id.unsqueeze(1)
            # An invalid first layer leaves the depth open; the graph fails validity anyway.
            mask[:, 2:] &= same | ~known.unsqueeze(1)
        return mask

    def edge_mask(self) -> Tuple[Tensor, Tensor]:
        return _CHAIN.clone(), torch.zeros_like(_CHAIN)

    def cost_model(self, image_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                   width_mult: float = 1.0,
                   strides: Optional[Sequence[int]] = None) -> 'MBV3CostModel':
        r"""The :class:`MBV3CostModel` of OFA's MobileNetV3-Large layout with these sizes
        (strides: :func:`layout_strides` of ``image_size`` unless given)."""
        return MBV3CostModel(image_size, in_channels, num_classes, width_mult, strides)


def sample_config(rng: Optional[random.Random] = None) -> Config:
    r"""A uniformly random OFA config dict."""
    rng = rng or random.Random()
    return {'ks': [rng.choice(KERNELS) for _ in range(NUM_LAYERS)],
            'e': [rng.choice(EXPANDS) for _ in range(NUM_LAYERS)],
            'd': [rng.choice(DEPTHS) for _ in range(NUM_STAGES)]}


# ------------------------------------------------------------------------- size
#: OFA's MobileNetV3-Large layout: widths of first conv, first block, the 5 stages,
#: final expand and feature mix; per stage stride, activation and squeeze-excitation.
BASE_WIDTHS: Tuple[int, ...] = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STAGE_STRIDES: Tuple[int, ...] = (2, 2, 2, 1, 2)
STAGE_SE: Tuple[bool, ...] = (False, True, False, True, True)
STAGE_ACT: Tuple[str, ...] = ('relu', 'relu', 'h_swish', 'h_swish', 'h_swish')
#: OFA's strides in the order of :func:`layout_strides`: first conv, first block, the 5 stages.
OFA_STRIDES: Tuple[int, ...] = (2, 1) + STAGE_STRIDES
#: :func:`layout_strides` keeps the last feature map at least this many pixels wide.
MIN_FEATURE_SIZE = 3


def layout_strides(image_size: int) -> Tuple[int, ...]:
    r"""Strides of the first conv, the first block and the first layer of each of the 5
    stages for ``image_size`` x ``image_size`` images: OFA's layout, adapted for small ones.

    OFA halves the resolution five times (first conv and stages 1, 2, 3 and 5: 224 -> 7).
    Small images keep only the *last* ``h`` of these halvings, ``h`` the most (at most 5)
    that leave the last feature map at least :data:`MIN_FEATURE_SIZE` = 3 pixels wide;
    the earlier ones run at stride 1, as CIFAR versions of MobileNets drop their first
    downsamplings. Images of 65 pixels or more get OFA's strides unchanged (224 -> 7x7),
    64 -> 4x4 (the first conv at stride 1), 32 -> 4x4 (first conv and stage 1 at
    stride 1), 16 and 12 -> 4x4 and 3x3 (only stages 3 and 5 at stride 2), 8 -> 4x4
    (stage 5 only), 4 or less: no downsampling. Sizes are rounded up at each halving
    (padding ``k // 2``).

    Returns:
        seven ints, in the order of :data:`OFA_STRIDES`.
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f'image_size must be a positive integer, got {image_size!r}')
    halvings = 0
    while halvings < 5 and _conv_out(image_size, 2 ** (halvings + 1)) >= MIN_FEATURE_SIZE:
        halvings += 1
    where = [i for i, s in enumerate(OFA_STRIDES) if s == 2]
    keep = set(where[len(where) - halvings:])
    return tuple(2 if i in keep else 1 for i in range(len(OFA_STRIDES)))


def check_strides(strides: Sequence[int]) -> Tuple[int, ...]:
    r"""Validates seven strides (:data:`OFA_STRIDES` order), each 1 or 2."""
    values = tuple(strides)
    if len(values) != len(OFA_STRIDES) or any(s not in (1, 2) for s in values):
        raise ValueError(f'MobileNetV3 strides must be {len(OFA_STRIDES)} values of 1 or 2 '
                         '(first conv, first block, stages 1-5), got '
                         f'{list(values)}')
    return tuple(int(s) for s in values)


def make_divisible(value: float, divisor: int = 8) -> int:
    r"""OFA's (TensorFlow's) channel rounding: nearest multiple of ``divisor``, at least
    ``divisor``, never more than 10% below ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _conv_out(size: int, stride: int) -> int:
    # "same" padding k // 2 with odd k: ceil(size / stride).
    return (size - 1) // stride + 1


def _stats(arch: Arch, image_size: int, num_classes: int, width_mult: float,
           in_channels: int = 3, strides: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    cfg = _as_config(arch)
    if image_size < 1:
        raise ValueError(f'image_size must be positive, got {image_size}')
    if num_classes < 1:
        raise ValueError(f'num_classes must be positive, got {num_classes}')
    if in_channels < 1:
        raise ValueError(f'in_channels must be positive, got {in_channels}')
    if not width_mult > 0:
        raise ValueError(f'width_mult must be positive, got {width_mult}')
    strides = layout_strides(image_size) if strides is None else check_strides(strides)
    w = [make_divisible(c * width_mult) for c in BASE_WIDTHS]
    params, macs = 0, 0

    def conv(c_in: int, c_out: int, k: int, hw: int, groups: int = 1, bn: bool = True,
             bias: bool = False) -> None:
        nonlocal params, macs
        weights = c_out * (c_in // groups) * k * k
        params += weights + (2 * c_out if bn else 0) + (c_out if bias else 0)
        macs += weights * hw * hw  # OFA's counter: no bias, no BN, no activation

    def mbconv(c_in: int, c_out: int, k: int, expand: int, stride: int, hw_in: int,
               se: bool) -> int:
        mid = make_divisible(round(c_in * expand)) if expand != 1 else c_in
        if expand != 1:
            conv(c_in, mid, 1, hw_in)
        hw = _conv_out(hw_in, stride)
        conv(mid, mid, k, hw, groups=mid)
        if se:
            squeeze = make_divisible(mid // 4)
            conv(mid, squeeze, 1, 1, bn=False, bias=True)
            conv(squeeze, mid, 1, 1, bn=False, bias=True)
        conv(mid, c_out, 1, hw)
        return hw

    hw = _conv_out(image_size, strides[0])
    conv(in_channels, w[0], 3, hw)
    hw = mbconv(w[0], w[1], 3, 1, strides[1], hw, se=False)
    c = w[1]
    for s in range(NUM_STAGES):
        for j in range(cfg['d'][s]):
            i = s * MAX_DEPTH + j
            hw = mbconv(c, w[2 + s], cfg['ks'][i], cfg['e'][i],
                        strides[2 + s] if j == 0 else 1, hw, STAGE_SE[s])
            c = w[2 + s]
    conv(c, w[7], 1, hw)
    conv(w[7], w[8], 1, 1, bn=False)  # feature mix after global pooling
    params += w[8] * num_classes + num_classes
    macs += w[8] * num_classes
    return params, macs


def count_params(arch: Arch, num_classes: int = 1000, width_mult: float = 1.0,
                 in_channels: int = 3) -> int:
    r"""Number of trainable parameters of a sub-network, as OFA counts them.

    Counted: every convolution weight, BatchNorm weight and bias (after the first conv,
    each MBConv's expand, depthwise and project convs, and the final expand conv), the
    squeeze-excitation convs with their biases (reduction 4, rounded to multiples of 8),
    the bias-free feature-mix conv and the classifier with bias. The layout is OFA's
    MobileNetV3-Large: first conv 3x3 stride 2 to 16 channels, a 3x3 MBConv (expand 1)
    to 16, stages of widths 24/40/80/112/160 with strides 2/2/2/1/2 and SE in stages
    2, 4 and 5, final expand 1x1 to 960, global pooling, feature mix 1x1 to 1280,
    classifier. Widths are scaled by ``width_mult`` and rounded like OFA. Strides do not
    change the count; :class:`d2a.nets.MBV3Network` builds this network.

    Args:
        arch (str or dict): string or OFA config dict.
        num_classes (int, optional): classifier outputs. (default: :obj:`1000`)
        width_mult (float, optional): OFA's width multiplier (``1.0`` or ``1.2`` for
            its released supernets). (default: :obj:`1.0`)
        in_channels (int, optional): image channels. (default: :obj:`3`)
    """
    return _stats(arch, 224, num_classes, width_mult, in_channels)[0]


def count_flops(arch: Arch, image_size: int = 224, num_classes: int = 1000,
                width_mult: float = 1.0, in_channels: int = 3,
                strides: Optional[Sequence[int]] = None) -> int:
    r"""Multiply-accumulates (MACs, what OFA and MobileNet papers call FLOPs) of one
    ``image_size`` x ``image_size`` image through a sub-network.

    Counted like OFA's profiler: convolutions (``c_out * c_in / groups * k * k`` per
    output position, squeeze-excitation convs at 1x1) and the classifier
    (``in * out``); biases, BatchNorm, activations, pooling and residual additions are
    not counted. See :func:`count_params` for the layout; the strides are
    :func:`layout_strides` of ``image_size`` (OFA's from 65 pixels up) unless
    ``strides`` gives seven (e.g. :data:`OFA_STRIDES` at any size).
    """
    return _stats(arch, image_size, num_classes, width_mult, in_channels, strides)[1]


class MBV3CostModel(CostModel):
    r"""Parameters and MACs of sub-networks (:func:`count_params`, :func:`count_flops`) for
    one image size, number of image channels, classes, width multiplier and strides
    (default :func:`layout_strides` of ``image_size``): those of
    :class:`d2a.nets.MBV3Network` with the same arguments.

    The smallest network is the one with every stage at depth 2 and every layer at kernel 3
    and expand ratio 3: each count grows with depth, kernel size and expand ratio.
    """
    def __init__(self, image_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                 width_mult: float = 1.0, strides: Optional[Sequence[int]] = None) -> None:
        self.image_size, self.in_channels = image_size, in_channels
        self.num_classes, self.width_mult = num_classes, width_mult
        self.strides = layout_strides(image_size) if strides is None else check_strides(strides)
        smallest = {'ks': [KERNELS[0]] * NUM_LAYERS, 'e': [EXPANDS[0]] * NUM_LAYERS,
                    'd': [DEPTHS[0]] * NUM_STAGES}
        self._min = self._stats(smallest)

    def _stats(self, arch: Arch) -> Tuple[int, int]:
        return _stats(arch, self.image_size, self.num_classes, self.width_mult, self.in_channels,
                      self.strides)

    def params(self, arch: str) -> int:
        return self._stats(arch)[0]

    def flops(self, arch: str) -> int:
        return self._stats(arch)[1]

    def min_params(self) -> int:
        return self._min[0]

    def min_flops(self) -> int:
        return self._min[1]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(image_size={self.image_size}, '
                f'in_channels={self.in_channels}, num_classes={self.num_classes}, '
                f'width_mult={self.width_mult}, strides={self.strides})')
