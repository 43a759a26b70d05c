r"""ImageNet ResNet-18 features (He et al., CVPR 2016), MetaD2A's dataset descriptor.

Needs torchvision and the weights on disk: a file given by path, or torchvision's cache
(``<torch.hub.get_dir()>/checkpoints/resnet18-*.pth``). Nothing is ever downloaded.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from d2a.features.extractor import FeatureExtractor, register_extractor


def find_resnet18_weights(weights: Optional[str] = None) -> str:
    r"""The ImageNet ResNet-18 weight file to use: ``weights`` if given, else the newest
    ``resnet18-*.pth`` in torchvision's cache. Raises :class:`FileNotFoundError` otherwise."""
    if weights:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f'ResNet-18 weights file {weights} does not exist')
        return weights
    cache = os.path.join(torch.hub.get_dir(), 'checkpoints')
    found = sorted(glob.glob(os.path.join(cache, 'resnet18-*.pth')), key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(
            f'no ImageNet ResNet-18 weights: none in torchvision\'s cache {cache} and no file '
            "given; pass weights=PATH (a torchvision resnet18 state dict), or use the "
            "'small_cnn' extractor")
    return found[-1]


@register_extractor
class ResNet18ImageNet(FeatureExtractor):
    r"""torchvision's ResNet-18 with ImageNet weights, up to global average pooling.

    Args:
        in_channels (int): must be 3 (grey images are repeated to 3 channels).
        weights (str, optional): path of the weights (default: torchvision's cache).

    Shapes:
        - **input:** ``[B, 3, H, W]`` (MetaD2A: 32 x 32)
        - **output:** ``[B, 512]``
    """
    name = 'resnet18_imagenet'
    embed_weights = False

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None) -> None:
        super().__init__()
        try:
            import torchvision
        except ImportError:
            raise ValueError("feature extractor 'resnet18_imagenet' needs torchvision "
                             "(pip install 'd2a[vision]'); use 'small_cnn' without it") from None
        if in_channels != 3:
            raise ValueError(f"'resnet18_imagenet' takes 3-channel images, got in_channels={in_channels}")
        self.in_channels = 3
        self.out_channels = 512
        self.weights = find_resnet18_weights(weights)
        net = torchvision.models.resnet18(weights=None)
        state = torch.load(self.weights, map_location='cpu', weights_only=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f'{self.weights} is not a torchvision ResNet-18 state dict: {e}') from None
        net.fc = torch.nn.Identity()
        self.net = net

    def config(self) -> Dict[str, Any]:
        return {'in_channels': self.in_channels, 'weights': self.weights}

    def reset_parameters(self) -> None:
        # Pretrained weights are the point of this extractor: reload them.
        state = torch.load(self.weights, map_location='cpu', weights_only=True)
        self.net.load_state_dict({k: v for k, v in state.items() if not k.startswith('fc.')})

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
