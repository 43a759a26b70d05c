r"""The raw-pixel baseline: images average-pooled to a small grid and flattened."""
from __future__ import annotations

from typing import Any, Dict

import torch.nn.functional as F
from torch import Tensor

from d2a.features.extractor import FeatureExtractor, register_extractor


@register_extractor
class RawPixels(FeatureExtractor):
    r"""Flattened ``size`` x ``size`` average-pooled pixels (no parameters): a baseline that
    tells how much a learnt extractor adds.

    Args:
        in_channels (int): image channels.
        size (int): side of the pooled grid; ``out_channels = in_channels * size ** 2``.

    Shapes:
        - **input:** ``[B, in_channels, H, W]``
        - **output:** ``[B, in_channels * size * size]``
    """
    name = 'raw_pixels'

    def __init__(self, in_channels: int = 3, size: int = 8) -> None:
        super().__init__()
        if in_channels < 1 or size < 1:
            raise ValueError(f'in_channels and size must be >= 1, got {in_channels}, {size}')
        self.in_channels = int(in_channels)
        self.size = int(size)
        self.out_channels = self.in_channels * self.size ** 2

    def config(self) -> Dict[str, Any]:
        return {'in_channels': self.in_channels, 'size': self.size}

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.size).flatten(1)
