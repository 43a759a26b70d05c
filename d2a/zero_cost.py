r"""Training-free scores of architectures ("zero-cost proxies").

NASWOT ("Neural Architecture Search without Training", Mellor et al., ICML 2021): pass a
minibatch through the *untrained* network and record, at every ReLU, which units are
active for each image (a binary code). Images whose codes differ in many units are easy
for the network to tell apart; the score is

.. math::
    s = \log \left| \det K_H \right|, \qquad
    (K_H)_{ij} = N_A - d_H(c_i, c_j),

where :math:`c_i` concatenates the codes of image :math:`i` over all ReLUs, :math:`N_A` is
their length and :math:`d_H` the Hamming distance; higher is better.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Union

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from d2a.nets.recipe import Recipe


@torch.no_grad()
def naswot_score(model: nn.Module, x: Tensor) -> float:
    r"""The NASWOT score of ``model`` on the minibatch ``x``.

    The kernel is accumulated over every :class:`torch.nn.ReLU` and
    :class:`torch.nn.Hardswish` module of ``model`` (MobileNetV3 uses both) from the sign of
    its input (a unit is active when its input is positive). The model's mode
    is left as given (the paper scores networks in training mode, with batch statistics in
    batch normalisation); its weights are not changed.

    Args:
        model (torch.nn.Module): the untrained network.
        x (torch.Tensor): a minibatch, on the model's device.

    Returns:
        :math:`\log|\det K_H|`; ``-inf`` when :math:`K_H` is singular (two images with the
        same code, or a network without active ReLUs).

    Shapes:
        - **x:** ``[batch, ...]`` with ``batch >= 2``
    """
    if x.dim() < 2 or x.size(0) < 2:
        raise ValueError(f'naswot_score needs a minibatch of at least 2 inputs, got shape '
                         f'{list(x.shape)}')
    relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.Hardswish))]
    if not relus:
        raise ValueError(f'{model.__class__.__name__} has no nn.ReLU or nn.Hardswish module '
                         'to score')
    n = x.size(0)
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def hook(module: nn.Module, inputs, output) -> None:
        code = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float32)
        # c c^T counts shared active units, (1-c)(1-c)^T shared inactive ones.
        kernel.add_((code @ code.t() + (1 - code) @ (1 - code).t()).to(torch.float64))

    handles = [m.register_forward_hook(hook) for m in relus]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 else -math.inf


def naswot_nb201(arch: str, x: Tensor, C: int = 16, N: int = 5, num_classes: int = 10,
                 seed: int = 0, device: Optional[Union[str, torch.device]] = None) -> float:
    r"""The NASWOT score of NB201 cell ``arch`` in a freshly initialised
    :class:`~d2a.nets.NB201Network` (``C`` channels, ``N`` cells per stage) on images ``x``.

    Args:
        arch (str): NB201 cell string.
        x (torch.Tensor): normalised images ``[batch, channels, height, width]``.
        C (int): channels of the first stage.
        N (int): cells per stage.
        num_classes (int): classifier outputs.
        seed (int): seed of the initialisation (the caller's RNG is left untouched).
        device (torch.device, optional): where to run (default: ``x``'s device).
    """
    from d2a.nets.recipe import Recipe
    return naswot_network(arch, Recipe(name='naswot', C=C, N=N), x, num_classes, seed, device)


def naswot_network(arch: str, recipe: 'Recipe', x: Tensor, num_classes: int = 10,
                   seed: int = 0, device: Optional[Union[str, torch.device]] = None) -> float:
    r"""The NASWOT score of ``arch`` in a freshly initialised network of ``recipe``'s
    space and sizes (:func:`~d2a.nets.build_network`: an NB201 cell or a MobileNetV3
    config) on images ``x``.

    Args:
        arch (str): architecture string of the recipe's space.
        recipe (Recipe): sizes the network (``C``/``N`` or ``width_mult``/``image_size``).
        x (torch.Tensor): normalised images ``[batch, channels, height, width]``.
        num_classes (int): classifier outputs.
        seed (int): seed of the initialisation (the caller's RNG is left untouched).
        device (torch.device, optional): where to run (default: ``x``'s device).
    """
    from d2a.nets.build import build_network
    if x.dim() != 4:
        raise ValueError(f'images must be [batch, channels, height, width], got {list(x.shape)}')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(arch, recipe, x.size(1), num_classes, image_size=x.size(-1))
    dev = device if device is not None else x.device
    return naswot_score(model.to(dev).train(), x.to(dev))
