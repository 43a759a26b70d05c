r"""The network of an architecture of a search space, sized by a
:class:`~d2a.nets.recipe.Recipe` (:func:`build_network`)."""
from __future__ import annotations

from typing import Optional

from torch import nn

from d2a.nets.recipe import RECIPE_SPACES, Recipe


def build_network(arch: str, recipe: Recipe, in_channels: int = 3, num_classes: int = 10,
                  image_size: Optional[int] = None) -> nn.Module:
    r"""The untrained network of ``arch`` in the space of ``recipe`` (:attr:`Recipe.space`).

    * ``'nb201'``: :class:`~d2a.nets.NB201Network` with ``recipe.C`` and ``recipe.N``;
    * ``'mbv3'``: :class:`~d2a.nets.MBV3Network` with ``recipe.width_mult``, its strides
      chosen for ``recipe.image_size`` (or ``image_size``, the side of the images it will
      see, when the recipe keeps the images as given).

    Args:
        arch (str): architecture string of the recipe's space (an OFA config dict is also
            accepted for ``'mbv3'``).
        recipe (Recipe): the recipe that sizes the network.
        in_channels (int, optional): image channels. (default: :obj:`3`)
        num_classes (int, optional): classifier outputs. (default: :obj:`10`)
        image_size (int, optional): side of the input images, used when
            ``recipe.image_size`` is ``None`` (needed then for ``'mbv3'``).

    Raises :class:`ValueError` when ``arch`` is not an architecture of the space.
    """
    if recipe.space == 'nb201':
        from d2a.nets.nb201 import NB201Network
        return NB201Network(arch, recipe.C, recipe.N, in_channels, num_classes)
    if recipe.space == 'mbv3':
        from d2a.nets.mbv3 import MBV3Network
        size = recipe.image_size if recipe.image_size is not None else image_size
        if size is None:
            raise ValueError("a MobileNetV3 network needs an image size: set the recipe's "
                             "'image_size' or pass image_size")
        return MBV3Network(arch, recipe.width_mult, size, in_channels, num_classes)
    raise ValueError(f"recipe field 'space' must be one of {list(RECIPE_SPACES)}, "
                     f'got {recipe.space!r}')
