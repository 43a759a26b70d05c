r"""A small CNN that d2a pre-trains on the source datasets to describe images.

The default extractor when no ImageNet weights are available: a few conv-BN-ReLU-pool
blocks trained to classify every class of the given sources at once; the features are the
globally pooled last feature map (MetaD2A's ResNet-18 plays this role with ImageNet).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2a.features.extractor import FeatureExtractor, register_extractor
from d2a.utils.progress import ProgressLog


@register_extractor
class SmallCNN(FeatureExtractor):
    r"""``num_layers`` blocks of 3x3 conv, batch norm, ReLU and 2x2 max pooling (the last
    block pools globally); channels double from ``hidden_channels`` up to ``out_channels``.

    Args:
        in_channels (int): image channels.
        hidden_channels (int): channels of the first block.
        out_channels (int): feature size.
        num_layers (int): conv blocks.

    Shapes:
        - **input:** ``[B, in_channels, H, W]``
        - **output:** ``[B, out_channels]``
    """
    name = 'small_cnn'

    def __init__(self, in_channels: int = 3, hidden_channels: int = 32, out_channels: int = 128,
                 num_layers: int = 3) -> None:
        super().__init__()
        if min(in_channels, hidden_channels, out_channels, num_layers) < 1:
            raise ValueError('in_channels, hidden_channels, out_channels and num_layers must be >= 1')
        self.in_channels = int(in_channels)
        self.hidden_channels = int(hidden_channels)
        self.out_channels = int(out_channels)
        self.num_layers = int(num_layers)
        widths = [min(hidden_channels * 2 ** i, out_channels) for i in range(num_layers - 1)]
        widths.append(out_channels)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.convs.append(nn.Conv2d(c, w, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(w))
            c = w
        self.reset_parameters()

    def config(self) -> Dict[str, Any]:
        return {'in_channels': self.in_channels, 'hidden_channels': self.hidden_channels,
                'out_channels': self.out_channels, 'num_layers': self.num_layers}

    def reset_parameters(self) -> None:
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x)))
            if i < self.num_layers - 1 and min(x.shape[-2:]) >= 2:
                x = F.max_pool2d(x, 2)
        return x.mean(dim=(2, 3))


def pretrain_small_cnn(data: Sequence[Tuple[Tensor, Tensor]], in_channels: int = 3,
                       hidden_channels: int = 32, out_channels: int = 128, num_layers: int = 3,
                       epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
                       seed: int = 0, device: Optional[Union[str, torch.device]] = None,
                       progress: bool = False,
                       log_interval: Optional[float] = None) -> SmallCNN:
    r"""Trains a :class:`SmallCNN` to classify every class of several sources at once.

    Args:
        data (list of tuple): per source, normalised images ``[n, in_channels, H, W]`` and
            labels ``[n]`` (class ids within the source; they are offset so that classes
            of different sources stay distinct).
        epochs (int), batch_size (int), lr (float): Adam training settings.
        seed (int): seed of initialisation and shuffling.
        device (str or torch.device, optional): default CUDA when available.
        progress (bool): show a progress bar.
        log_interval (float, optional): without a bar, print a plain progress line (epochs,
            rate, ETA) at most this often (seconds).

    Returns:
        The trained extractor (classifier head dropped), on the CPU in eval mode.
    """
    from tqdm.auto import tqdm
    if not data:
        raise ValueError('pretrain_small_cnn needs at least one source')
    xs, ys, offset = [], [], 0
    for x, y in data:
        xs.append(x.float())
        ys.append(y.long() + offset)
        offset += int(y.max()) + 1
    x, y = torch.cat(xs), torch.cat(ys)
    dev = torch.device(device) if device is not None else \
        torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(in_channels, hidden_channels, out_channels, num_layers)
        head = nn.Linear(out_channels, offset)
    model, head = model.to(dev), head.to(dev)
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    log = ProgressLog('pretrain small_cnn', epochs, 'epochs', None if progress else log_interval)
    for epoch in tqdm(range(epochs), desc='pretrain small_cnn', disable=not progress,
                      leave=False):
        log.update(epoch)
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            loss = F.cross_entropy(head(model(x[idx].to(dev))), y[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    log.update(epochs, force=True)
    return model.cpu().eval()
