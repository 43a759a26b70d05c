r"""Dataset encoders: a dataset given as per-class sets of feature vectors -> one vector.

A dataset is a tensor ``[num_classes, num_sample, in_channels]`` (``num_sample`` feature
vectors drawn from each class). Several datasets with different class counts are batched as
``[B, C_max, num_sample, in_channels]`` with a ``class_mask`` ``[B, C_max]`` (``True`` for
real classes); :func:`pad_datasets` builds that form from a list.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import Linear, Module, ModuleList
from torch_geometric.nn.aggr.utils import PoolingByMultiheadAttention, SetAttentionBlock

from d2a.utils.registry import Registry


def pad_datasets(datasets: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    r"""Stacks datasets with different class counts into the batched form.

    Args:
        datasets: tensors ``[C_b, num_sample, in_channels]`` (same ``num_sample`` and
            ``in_channels``; ``C_b >= 1``).

    Returns:
        ``x`` ``[B, C_max, num_sample, in_channels]`` (zeros in padded classes) and
        ``class_mask`` ``[B, C_max]`` bool.
    """
    if len(datasets) == 0:
        raise ValueError('pad_datasets needs at least one dataset')
    first = datasets[0]
    for b, d in enumerate(datasets):
        if d.dim() != 3 or d.shape[1:] != first.shape[1:]:
            raise ValueError(f'dataset {b} has shape {list(d.shape)}; every dataset must be '
                             f'[num_classes, {first.size(1)}, {first.size(2)}]')
        if d.size(0) == 0:
            raise ValueError(f'dataset {b} has no classes')
    c_max = max(d.size(0) for d in datasets)
    x = first.new_zeros(len(datasets), c_max, first.size(1), first.size(2))
    class_mask = torch.zeros(len(datasets), c_max, dtype=torch.bool, device=first.device)
    for b, d in enumerate(datasets):
        x[b, :d.size(0)] = d
        class_mask[b, :d.size(0)] = True
    return x, class_mask


def _as_batch(x: Tensor, class_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    # Accepts [C, S, F] or [B, C, S, F]; returns the batched form and a full class mask.
    if x.dim() == 3:
        x = x.unsqueeze(0)
        if class_mask is not None and class_mask.dim() == 1:
            class_mask = class_mask.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"dataset 'x' must be [num_classes, num_sample, in_channels] or "
                         f'[B, C_max, num_sample, in_channels], got shape {list(x.shape)}')
    if x.size(1) == 0 or x.size(2) == 0:
        raise ValueError(f"dataset 'x' of shape {list(x.shape)} has an empty class or sample set")
    if class_mask is None:
        class_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    else:
        class_mask = class_mask.to(x.device, torch.bool)
        if class_mask.shape != x.shape[:2]:
            raise ValueError(f"'class_mask' must have shape {list(x.shape[:2])}, "
                             f'got {list(class_mask.shape)}')
        # An empty set would give NaN attention (and is not zero on recent torch).
        empty = (~class_mask.any(1)).nonzero().view(-1)
        if empty.numel() > 0:
            raise ValueError(f"'class_mask' has no class for dataset(s) {empty.tolist()}")
    return x, class_mask


class _SetPool(Module):
    # SABs -> PMA (one seed) -> Linear, on dense sets [N, S, F] with an optional mask [N, S].
    def __init__(self, channels: int, out_channels: int, num_heads: int, num_blocks: int,
                 layer_norm: bool, dropout: float):
        super().__init__()
        self.sabs = ModuleList([SetAttentionBlock(channels, num_heads, layer_norm, dropout)
                                for _ in range(num_blocks)])
        self.pma = PoolingByMultiheadAttention(channels, 1, num_heads, layer_norm, dropout)
        self.lin = Linear(channels, out_channels)

    def reset_parameters(self) -> None:
        for sab in self.sabs:
            sab.reset_parameters()
        self.pma.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        for sab in self.sabs:
            x = sab(x, mask)
        return self.lin(self.pma(x, mask).squeeze(1))


class HierarchicalSetEncoder(Module):
    r"""The hierarchical dataset encoder of MetaD2A (`"Rapid Neural Architecture Search by
    Learning to Generate Graphs from Datasets" <https://arxiv.org/abs/2107.00860>`_), built on
    PyG's Set Transformer blocks (`"Set Transformer" <https://arxiv.org/abs/1810.00825>`_).

    An input :class:`~torch.nn.Linear` projects each feature vector to ``hidden_channels``;
    an intra-class set transformer (``num_blocks`` SABs, PMA with one seed, Linear) turns the
    samples of each class into a prototype; an inter-class set transformer of the same shape
    turns the prototypes into one dataset vector. Both levels are permutation-invariant.

    Args:
        in_channels (int): Size of each feature vector (MetaD2A: 512).
        hidden_channels (int): Width of the set transformers (MetaD2A: 56).
        out_channels (int): Size of the dataset vector (MetaD2A: 56).
        num_heads (int, optional): Attention heads. (default: :obj:`4`)
        num_blocks (int, optional): SABs per level. (default: :obj:`2`)
        layer_norm (bool, optional): Layer norm in the attention blocks (MetaD2A: none).
            (default: :obj:`False`)
        dropout (float, optional): Attention dropout. (default: :obj:`0.0`)

    Shapes:
        - **input:** ``x`` ``[num_classes, num_sample, in_channels]`` or
          ``[B, C_max, num_sample, in_channels]``, optional ``class_mask`` ``[B, C_max]``
        - **output:** ``[B, out_channels]`` (``[1, out_channels]`` for one dataset)
    """
    def __init__(self, in_channels: int = 512, hidden_channels: int = 56, out_channels: int = 56,
                 num_heads: int = 4, num_blocks: int = 2, layer_norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        if hidden_channels % num_heads != 0:
            raise ValueError(f"'hidden_channels' ({hidden_channels}) must be divisible by "
                             f"'num_heads' ({num_heads})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_heads = num_heads
        self.num_blocks = num_blocks
        self.layer_norm = layer_norm
        self.dropout = dropout
        self.lin_in = Linear(in_channels, hidden_channels)
        self.intra = _SetPool(hidden_channels, hidden_channels, num_heads, num_blocks,
                              layer_norm, dropout)
        self.inter = _SetPool(hidden_channels, out_channels, num_heads, num_blocks,
                              layer_norm, dropout)

    def reset_parameters(self) -> None:
        self.lin_in.reset_parameters()
        self.intra.reset_parameters()
        self.inter.reset_parameters()

    def forward(self, x: Tensor, class_mask: Optional[Tensor] = None) -> Tensor:
        x, class_mask = _as_batch(x, class_mask)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"dataset 'x' has {x.size(-1)} features, expected {self.in_channels}")
        # Only real classes go through the intra-class level (no padded sets).
        proto = self.intra(self.lin_in(x[class_mask]))
        dense = proto.new_zeros(x.size(0), x.size(1), proto.size(-1))
        dense[class_mask] = proto
        # Without padded classes a mask changes nothing; leaving it out spares attention
        # torch's check of the padding mask (which imports torch.fx and SymPy, ~0.5 s, once).
        return self.inter(dense, None if bool(class_mask.all()) else class_mask)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, '
                f'{self.out_channels}, num_heads={self.num_heads}, '
                f'num_blocks={self.num_blocks}, layer_norm={self.layer_norm})')


class DeepSetsEncoder(Module):
    r"""A hierarchical DeepSets dataset encoder (`"Deep Sets"
    <https://arxiv.org/abs/1703.06114>`_), the mean-pool ablation of
    :class:`HierarchicalSetEncoder` with the same call signature.

    Per level: ``rho(mean(phi(x)))`` with two-layer ReLU MLPs ``phi`` and ``rho``; the first
    level pools the samples of a class, the second the class prototypes.

    Args:
        in_channels (int): Size of each feature vector.
        hidden_channels (int): Width of the MLPs.
        out_channels (int): Size of the dataset vector.

    Shapes:
        - **input:** ``x`` ``[num_classes, num_sample, in_channels]`` or
          ``[B, C_max, num_sample, in_channels]``, optional ``class_mask`` ``[B, C_max]``
        - **output:** ``[B, out_channels]``
    """
    def __init__(self, in_channels: int = 512, hidden_channels: int = 56, out_channels: int = 56):
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        h = hidden_channels
        self.lins = ModuleList([
            Linear(in_channels, h), Linear(h, h),   # phi, samples
            Linear(h, h), Linear(h, h),             # rho, samples
            Linear(h, h), Linear(h, h),             # phi, classes
            Linear(h, h), Linear(h, out_channels),  # rho, classes
        ])

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def _mlp(self, x: Tensor, k: int, last: bool = False) -> Tensor:
        x = self.lins[k + 1](self.lins[k](x).relu())
        return x if last else x.relu()

    def forward(self, x: Tensor, class_mask: Optional[Tensor] = None) -> Tensor:
        x, class_mask = _as_batch(x, class_mask)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"dataset 'x' has {x.size(-1)} features, expected {self.in_channels}")
        proto = self._mlp(self._mlp(x, 0).mean(dim=2), 2)  # [B, C, h]
        proto = self._mlp(proto, 4) * class_mask.unsqueeze(-1)
        pooled = proto.sum(1) / class_mask.sum(1, keepdim=True)
        return self._mlp(pooled, 6, last=True)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, '
                f'{self.out_channels})')


#: Dataset encoder builders by name, each called as
#: ``builder(in_channels, hidden_channels, out_channels, num_heads, num_blocks)``.
SET_ENCODERS: Registry[Callable[..., Module]] = Registry('set encoder')


@SET_ENCODERS.register('set_transformer')
def _set_transformer(in_channels: int, hidden_channels: int, out_channels: int,
                     num_heads: int = 4, num_blocks: int = 2) -> Module:
    return HierarchicalSetEncoder(in_channels, hidden_channels, out_channels, num_heads,
                                  num_blocks)


@SET_ENCODERS.register('deepsets')
def _deepsets(in_channels: int, hidden_channels: int, out_channels: int,
              num_heads: int = 4, num_blocks: int = 2) -> Module:
    # The mean-pool ablation has no attention: the attention options do not apply.
    return DeepSetsEncoder(in_channels, hidden_channels, out_channels)
