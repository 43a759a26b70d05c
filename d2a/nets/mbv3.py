r"""A standalone MobileNetV3 of the Once-for-All space (Cai et al., ICLR 2020), built from
an OFA config or string of :mod:`d2a.graphs.mbv3`.

The network is OFA's MobileNetV3-Large sub-network of the config, with its weights trained
from scratch (no supernet): the layout, widths, activations and squeeze-excitation of
:func:`d2a.graphs.mbv3.count_params`, the strides of
:func:`d2a.graphs.mbv3.layout_strides` (OFA's for images of 65 pixels or more, fewer
downsamplings for smaller ones). Its parameter count and multiply-accumulates are those of
the space's cost model (:meth:`d2a.graphs.MBV3Space.cost_model`) for the same sizes.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2a.graphs.mbv3 import (
    BASE_WIDTHS,
    MAX_DEPTH,
    NUM_STAGES,
    STAGE_ACT,
    STAGE_SE,
    Arch,
    check_config,
    check_strides,
    config_to_arch,
    layout_strides,
    make_divisible,
    parse_arch,
)

ACTIVATIONS = ('relu', 'h_swish')


def _activation(name: str) -> nn.Module:
    if name == 'relu':
        return nn.ReLU(inplace=False)
    if name == 'h_swish':
        return nn.Hardswish(inplace=False)
    raise ValueError(f'activation must be one of {list(ACTIVATIONS)}, got {name!r}')


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
             groups: int = 1, act: Optional[str] = None) -> nn.Sequential:
    layers: List[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels)]
    if act is not None:
        layers.append(_activation(act))
    return nn.Sequential(*layers)


def _reset_children(module: nn.Module) -> None:
    # OFA's 'he_fout' initialisation: conv weights N(0, 2 / (k * k * out_channels)),
    # BatchNorm 1 / 0, linear U(-1/sqrt(in), 1/sqrt(in)) with zero bias.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
        elif isinstance(m, nn.Linear):
            bound = m.in_features ** -0.5
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SqueezeExcite(nn.Module):
    r"""OFA's squeeze-and-excitation (Hu et al., CVPR 2018): global average pooling,
    1x1 conv to ``make_divisible(channels // reduction)`` channels (with bias), ReLU,
    1x1 conv back (with bias), hard sigmoid, channel-wise product with the input.

    Args:
        channels (int): channels of the input and output.
        reduction (int, optional): channel reduction of the squeeze. (default: :obj:`4`)

    Shapes:
        - **input:** ``[N, channels, H, W]``
        - **output:** ``[N, channels, H, W]``
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.channels, self.reduction = channels, reduction
        squeeze = make_divisible(channels // reduction)
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = F.hardsigmoid(self.expand(F.relu(self.reduce(s))))
        return x * s

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.channels}, reduction={self.reduction})'


class MBConv(nn.Module):
    r"""OFA's inverted residual block (MobileNetV2/V3): 1x1 expand conv to
    ``make_divisible(round(in_channels * expand_ratio))`` channels (left out at expand
    ratio 1) + BN + activation, ``kernel_size`` depthwise conv at ``stride`` + BN +
    activation, optional squeeze-excitation, 1x1 project conv + BN (linear); plus the
    input when ``stride == 1`` and the channels agree.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int, optional): depthwise kernel (odd). (default: :obj:`3`)
        expand_ratio (int, optional): expansion of the hidden channels. (default: :obj:`6`)
        stride (int, optional): depthwise stride. (default: :obj:`1`)
        act (str, optional): ``'relu'`` or ``'h_swish'``. (default: :obj:`'relu'`)
        se (bool, optional): squeeze-excitation after the depthwise conv.
            (default: :obj:`False`)

    Shapes:
        - **input:** ``[N, in_channels, H, W]``
        - **output:** ``[N, out_channels, ceil(H / stride), ceil(W / stride)]``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 expand_ratio: int = 6, stride: int = 1, act: str = 'relu',
                 se: bool = False) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"'kernel_size' must be a positive odd integer, got {kernel_size!r}")
        if expand_ratio < 1:
            raise ValueError(f"'expand_ratio' must be at least 1, got {expand_ratio!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.expand_ratio, self.stride = kernel_size, expand_ratio, stride
        self.act, self.se = act, se
        mid = make_divisible(round(in_channels * expand_ratio)) if expand_ratio != 1 \
            else in_channels
        self.mid_channels = mid
        self.inverted_bottleneck = (_conv_bn(in_channels, mid, 1, act=act)
                                    if expand_ratio != 1 else None)
        self.depth_conv = _conv_bn(mid, mid, kernel_size, stride, groups=mid, act=act)
        self.squeeze_excite = SqueezeExcite(mid) if se else None
        self.point_linear = _conv_bn(mid, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.inverted_bottleneck is None else self.inverted_bottleneck(x)
        out = self.depth_conv(out)
        if self.squeeze_excite is not None:
            out = self.squeeze_excite(out)
        out = self.point_linear(out)
        return x + out if self.residual else out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, expand_ratio={self.expand_ratio}, '
                f'stride={self.stride}, act={self.act!r}, se={self.se})')


class MBV3Network(nn.Module):
    r"""A MobileNetV3 sub-network of the Once-for-All space ("Once-for-All: Train One
    Network and Specialize it for Efficient Deployment", Cai et al., ICLR 2020), as
    MetaD2A searches it, trained from scratch.

    First conv 3x3 + BN + h-swish to 16 channels -> MBConv 3x3, expand 1, ReLU, to 16 ->
    five stages of ``config['d'][s]`` MBConv layers (kernel ``config['ks'][i]``, expand
    ``config['e'][i]`` of layer ``i = 4 * s + j``; layers beyond a stage's depth are not
    built) with widths 24/40/80/112/160, ReLU in stages 1-2 and h-swish in 3-5,
    squeeze-excitation in stages 2, 4 and 5 -> 1x1 conv + BN + h-swish to 960 -> global
    average pooling -> 1x1 conv (no bias, no BN) + h-swish to 1280 -> dropout -> linear
    classifier. Widths are multiplied by ``width_mult`` and rounded to multiples of 8 as
    OFA does (:func:`~d2a.graphs.mbv3.make_divisible`).

    Strides: ``image_size`` chooses them (:func:`~d2a.graphs.mbv3.layout_strides`): OFA's
    (2 at the first conv and the first layer of stages 1, 2, 3 and 5) for images of 65
    pixels or more; smaller images keep only the last halvings that leave a final feature
    map at least 3 pixels wide (16x16 and 12x12: stages 3 and 5 only, -> 4x4 and 3x3).
    ``strides`` overrides them. Any input size runs; ``image_size`` only fixes the layout.

    :func:`d2a.graphs.mbv3.count_params` and :func:`~d2a.graphs.mbv3.count_flops` (the
    space's cost model) count this network's parameters and multiply-accumulates.

    Args:
        arch (str or dict): MobileNetV3 string or OFA config ``{'ks', 'e', 'd'}``.
        width_mult (float, optional): width multiplier. (default: :obj:`1.0`)
        image_size (int, optional): the input resolution the strides are chosen for.
            (default: :obj:`224`)
        in_channels (int, optional): image channels. (default: :obj:`3`)
        num_classes (int, optional): classifier outputs. (default: :obj:`1000`)
        dropout (float, optional): dropout before the classifier (OFA trains with 0.1).
            (default: :obj:`0.0`)
        strides (sequence of int, optional): seven strides of 1 or 2 -- first conv, first
            block, first layer of each stage -- instead of those of ``image_size``.

    Shapes:
        - **input:** images ``[batch, in_channels, H, W]``
        - **output:** logits ``[batch, num_classes]``
    """

    def __init__(self, arch: Arch, width_mult: float = 1.0, image_size: int = 224,
                 in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.0,
                 strides: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        for name, value in (('image_size', image_size), ('in_channels', in_channels),
                            ('num_classes', num_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive integer, got {value!r}")
        if not float(width_mult) > 0:
            raise ValueError(f"'width_mult' must be positive, got {width_mult!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1), got {dropout!r}")
        # Fails early, naming the key, stage or layer at fault.
        self.config = parse_arch(arch) if isinstance(arch, str) else check_config(arch)
        self.arch = config_to_arch(self.config)
        self.width_mult, self.image_size = float(width_mult), image_size
        self.in_channels, self.num_classes, self.dropout = in_channels, num_classes, dropout
        self.strides: Tuple[int, ...] = (layout_strides(image_size) if strides is None
                                         else check_strides(strides))
        w = [make_divisible(c * self.width_mult) for c in BASE_WIDTHS]

        self.first_conv = _conv_bn(in_channels, w[0], 3, self.strides[0], act='h_swish')
        self.first_block = MBConv(w[0], w[1], 3, 1, self.strides[1], act='relu')
        blocks: List[nn.Module] = []
        c = w[1]
        for s in range(NUM_STAGES):
            for j in range(self.config['d'][s]):
                i = s * MAX_DEPTH + j
                blocks.append(MBConv(c, w[2 + s], self.config['ks'][i], self.config['e'][i],
                                     self.strides[2 + s] if j == 0 else 1, STAGE_ACT[s],
                                     STAGE_SE[s]))
                c = w[2 + s]
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = _conv_bn(c, w[7], 1, act='h_swish')
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(w[7], w[8], 1, bias=False),
                                         nn.Hardswish(inplace=False))
        self.head_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(w[8], num_classes)
        self.out_channels = w[8]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_children(self)

    def forward_features(self, x: Tensor) -> Tensor:
        r"""Features after the feature-mix layer ``[batch, out_channels]``
        (``make_divisible(1280 * width_mult)``)."""
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(f'expected images [batch, {self.in_channels}, H, W], '
                             f'got {list(x.shape)}')
        x = self.blocks(self.first_block(self.first_conv(x)))
        x = self.pool(self.final_expand(x))
        return self.feature_mix(x).flatten(1)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(self.head_dropout(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.arch!r}, width_mult={self.width_mult}, '
                f'image_size={self.image_size}, in_channels={self.in_channels}, '
                f'num_classes={self.num_classes}, strides={self.strides})')


@torch.no_grad()
def measure_macs(model: nn.Module, image_size: int) -> int:
    r"""Multiply-accumulates of one ``image_size`` x ``image_size`` image through ``model``,
    counted by forward hooks like OFA's profiler: ``weight.numel()`` per output position of
    every convolution and ``weight.numel()`` per linear layer (no bias, BN, activation,
    pooling or addition). The model runs once on zeros, in eval mode, on its device."""
    total = [0]

    def conv(m: nn.Conv2d, inputs: Tuple[Tensor], out: Tensor) -> None:
        total[0] += m.weight.numel() * out[0, 0].numel()

    def linear(m: nn.Linear, inputs: Tuple[Tensor], out: Tensor) -> None:
        total[0] += m.weight.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    param = next(model.parameters())
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, getattr(model, 'in_channels', 3), image_size, image_size,
                          device=param.device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total[0]
