r"""The NAS-Bench-201 network (Dong & Yang, ICLR 2020) for one cell."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from d2a.graphs.nb201 import EDGES, parse_arch


def _reset_children(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            m.reset_parameters()


class ReLUConvBN(nn.Sequential):
    r"""NAS-Bench-201's ReLU -> Conv2d (no bias) -> BatchNorm2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class Zero(nn.Module):
    r"""NAS-Bench-201's ``none``: multiplies by zero (keeps the graph connected)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    r"""NAS-Bench-201's operation ``op`` on ``channels`` channels at stride 1."""
    if op == 'none':
        return Zero()
    if op == 'skip_connect':
        return nn.Identity()
    if op == 'nor_conv_1x1':
        return ReLUConvBN(channels, channels, 1)
    if op == 'nor_conv_3x3':
        return ReLUConvBN(channels, channels, 3)
    if op == 'avg_pool_3x3':
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f'unknown NB201 op {op!r}')


class NB201Cell(nn.Module):
    r"""One NAS-Bench-201 cell: node ``i`` is the sum of the ops on its incoming edges.

    ``none`` edges are left out of the sum (they add zero); every other op runs, as in
    the benchmark, so that parameter and FLOP counts match its tables.

    Args:
        arch (str): NB201 string.
        channels (int): channels of the cell's input and output.

    Shapes:
        - **input:** ``[N, channels, H, W]``
        - **output:** ``[N, channels, H, W]``
    """

    def __init__(self, arch: str, channels: int) -> None:
        super().__init__()
        self.arch = arch
        self.channels = channels
        self.ops_names = parse_arch(arch)
        self.ops = nn.ModuleList([make_op(op, channels) for op in self.ops_names])
        # For each cell node 1..3: (op position, source node) of its non-zero inputs.
        self.inputs: List[List[Tuple[int, int]]] = [
            [(k, frm) for k, (to, frm) in enumerate(EDGES) if to == node and
             self.ops_names[k] != 'none'] for node in range(1, 4)]

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for terms in self.inputs:
            if terms:
                out = self.ops[terms[0][0]](nodes[terms[0][1]])
                for k, frm in terms[1:]:
                    out = out + self.ops[k](nodes[frm])
            else:
                out = x.mul(0.0)
            nodes.append(out)
        return nodes[-1]

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.arch!r}, channels={self.channels})'


class ResNetBasicBlock(nn.Module):
    r"""NAS-Bench-201's residual reduction block between stages: two ReLU-Conv-BN 3x3
    (the first with stride 2) plus a shortcut AvgPool 2x2 -> Conv 1x1.

    Shapes:
        - **input:** ``[N, in_channels, H, W]``
        - **output:** ``[N, out_channels, ceil(H / 2), ceil(W / 2)]``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, stride=2)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False))

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.in_channels}, {self.out_channels})'


class NB201Network(nn.Module):
    r"""The NAS-Bench-201 network of a cell ("NAS-Bench-201: Extending the Scope of
    Reproducible Neural Architecture Search", Dong & Yang, ICLR 2020).

    Stem (Conv 3x3 + BN) -> ``N`` cells with ``C`` channels -> residual reduction ->
    ``N`` cells with ``2C`` -> residual reduction -> ``N`` cells with ``4C`` ->
    BN + ReLU -> global average pooling -> linear classifier.

    Args:
        arch (str): NB201 cell string.
        C (int, optional): channels of the first stage. (default: :obj:`16`)
        N (int, optional): cells per stage. (default: :obj:`5`)
        in_channels (int, optional): image channels. (default: :obj:`3`)
        num_classes (int, optional): classifier outputs. (default: :obj:`10`)

    Shapes:
        - **input:** images ``[batch, in_channels, H, W]``
        - **output:** logits ``[batch, num_classes]``
    """

    def __init__(self, arch: str, C: int = 16, N: int = 5, in_channels: int = 3,
                 num_classes: int = 10) -> None:
        super().__init__()
        for name, value in (('C', C), ('N', N), ('in_channels', in_channels),
                            ('num_classes', num_classes)):
            if int(value) < 1:
                raise ValueError(f"'{name}' must be a positive integer, got {value!r}")
        self.arch = arch
        self.C, self.N = C, N
        self.in_channels, self.num_classes = in_channels, num_classes
        parse_arch(arch)  # fail early, naming the part at fault

        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        cells: List[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicBlock(channels, 2 * channels))
                channels *= 2
            cells.extend(NB201Cell(arch, channels) for _ in range(N))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self.out_channels = channels

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward_features(self, x: Tensor) -> Tensor:
        r"""Pooled features ``[batch, 4C]``."""
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(f'expected images [batch, {self.in_channels}, H, W], '
                             f'got {list(x.shape)}')
        x = self.lastact(self.cells(self.stem(x)))
        return self.pool(x).flatten(1)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.arch!r}, C={self.C}, N={self.N}, '
                f'in_channels={self.in_channels}, num_classes={self.num_classes})')


def count_params(arch: str, C: int = 16, N: int = 5, in_channels: int = 3,
                 num_classes: int = 10) -> int:
    r"""Number of parameters of :class:`NB201Network` (all weights, BatchNorm
    affine parameters and biases; NAS-Bench-201 reports this divided by 1e6)."""
    net = NB201Network(arch, C, N, in_channels, num_classes)
    return sum(p.numel() for p in net.parameters())


def count_flops(arch: str, C: int = 16, N: int = 5, image_size: int = 32,
                in_channels: int = 3, num_classes: int = 10) -> int:
    r"""Multiply-accumulates of one ``image_size`` x ``image_size`` image, counted like
    NAS-Bench-201's profiler (its "FLOPs" are these divided by 1e6).

    Counted: convolutions ``c_out * c_in / groups * k * k`` per output position (plus one
    per output for a bias), average pooling ``k * k`` per output, the classifier
    ``in * out + out``. BatchNorm, activations, ``skip_connect``, ``none`` and additions
    are free.
    """
    if image_size < 1:
        raise ValueError(f"'image_size' must be positive, got {image_size}")
    net = NB201Network(arch, C, N, in_channels, num_classes)
    total = [0]

    def conv_hook(m: nn.Conv2d, inputs: Tuple[Tensor], out: Tensor) -> None:
        per_pos = m.out_channels * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        total[0] += (per_pos + (m.out_channels if m.bias is not None else 0)) * out[0, 0].numel()

    def pool_hook(m: nn.AvgPool2d, inputs: Tuple[Tensor], out: Tensor) -> None:
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        total[0] += k * k * out[0].numel()

    def linear_hook(m: nn.Linear, inputs: Tuple[Tensor], out: Tensor) -> None:
        total[0] += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    hooks = {nn.Conv2d: conv_hook, nn.AvgPool2d: pool_hook, nn.Linear: linear_hook}
    for m in net.modules():
        if type(m) in hooks:
            m.register_forward_hook(hooks[type(m)])
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, in_channels, image_size, image_size))
    return total[0]
