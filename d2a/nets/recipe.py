r"""How the network of an architecture is sized and trained (:class:`Recipe`), and what a
run returns (:class:`TrainResult`): plain data, without torch, so that the command line
reads the defaults and the meta-database stores a recipe's fields as JSON.

:meth:`Recipe.nb201` is NAS-Bench-201's own protocol (C=16, N=5, 200 epochs); the
importers of its tables record it as the recipe of the imported accuracies.
:meth:`Recipe.mbv3_mini` trains a MobileNetV3 of the ``mbv3`` space on CPU in seconds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

SCHEDULES = ('cosine', 'constant')
#: Search spaces whose networks a recipe trains (:func:`d2a.nets.build_network`).
RECIPE_SPACES = ('nb201', 'mbv3')
#: Fields added after recipes were first stored: left out of :meth:`Recipe.to_dict` and
#: :attr:`Recipe.recipe_id` at these defaults, so that earlier recipes keep their ids.
_LATER_FIELDS = {'space': 'nb201', 'width_mult': 1.0}


@dataclass(frozen=True)
class Recipe:
    r"""How to train (and size) the network of an architecture of a search space.

    Args:
        name (str): a readable name, the prefix of :attr:`recipe_id`.
        C (int): channels of the first stage (NB201 only).
        N (int): cells per stage (NB201 only).
        epochs (int): passes over the training images.
        batch_size (int): images per step.
        lr (float): peak learning rate.
        momentum (float): SGD momentum.
        nesterov (bool): Nesterov momentum.
        weight_decay (float): L2 penalty.
        schedule (str): ``'cosine'`` (to zero, per iteration) or ``'constant'``.
        image_size (int, optional): resize the images to this size once before training
            (``None`` keeps them as given).
        augment (bool): random crop (zero padding 4) and horizontal flip per batch, as
            NAS-Bench-201 does on CIFAR; off for data where flips change the class.
        seed (int): seed of the weight initialisation, shuffling and augmentation.
        space (str): the search space whose networks this recipe trains: ``'nb201'``
            (:class:`~d2a.nets.NB201Network` with ``C`` and ``N``) or ``'mbv3'``
            (:class:`~d2a.nets.MBV3Network` with ``width_mult``, its strides chosen for
            ``image_size``, or for the images' size when ``image_size`` is ``None``).
        width_mult (float): MobileNetV3 width multiplier (``mbv3`` only).
    """
    name: str = 'custom'
    C: int = 16
    N: int = 5
    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = 'cosine'
    image_size: Optional[int] = None
    augment: bool = False
    seed: int = 0
    space: str = 'nb201'
    width_mult: float = 1.0

    def __post_init__(self) -> None:
        for key in ('C', 'N', 'epochs', 'batch_size'):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"recipe field '{key}' must be a positive integer, got {value!r}")
        for key in ('lr', 'momentum', 'weight_decay'):
            if float(getattr(self, key)) < 0:
                raise ValueError(f"recipe field '{key}' must be >= 0, got {getattr(self, key)!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"recipe field 'schedule' must be one of {list(SCHEDULES)}, "
                             f'got {self.schedule!r}')
        if self.image_size is not None and (not isinstance(self.image_size, int)
                                            or self.image_size < 1):
            raise ValueError(f"recipe field 'image_size' must be a positive integer or None, "
                             f'got {self.image_size!r}')
        if self.space not in RECIPE_SPACES:
            raise ValueError(f"recipe field 'space' must be one of {list(RECIPE_SPACES)}, "
                             f'got {self.space!r}')
        if isinstance(self.width_mult, bool) or not isinstance(self.width_mult, (int, float)) \
                or not self.width_mult > 0:
            raise ValueError(f"recipe field 'width_mult' must be a positive number, "
                             f'got {self.width_mult!r}')
        if not self.name or any(c in self.name for c in ' /\\'):
            raise ValueError(f"recipe field 'name' must be non-empty without spaces or slashes, "
                             f'got {self.name!r}')

    @classmethod
    def nb201(cls, seed: int = 0) -> 'Recipe':
        r"""NAS-Bench-201's protocol: C=16, N=5, 200 epochs, batch 256, CIFAR crop/flip."""
        return cls(name='nb201', C=16, N=5, epochs=200, batch_size=256, image_size=32,
                   augment=True, seed=seed)

    @classmethod
    def reduced(cls, seed: int = 0) -> 'Recipe':
        r"""A cheap proxy for labelling many cells on small tasks: C=8, N=1, 15 epochs,
        batch 64, no augmentation."""
        return cls(name='reduced', C=8, N=1, epochs=15, batch_size=64, seed=seed)

    @classmethod
    def mini(cls, seed: int = 0) -> 'Recipe':
        r"""The embedded database's recipe (``docs/embedded.md``): C=8, N=1, 12 epochs,
        batch 32, peak learning rate 0.05, 12x12 images, no augmentation -- one to two
        seconds of one CPU core per cell on a 10-class task of 42 training images per
        class. Six epochs gave labels whose seed-to-seed noise was as large as the
        differences between cells."""
        return cls(name='mini', C=8, N=1, epochs=12, batch_size=32, lr=0.05, image_size=12,
                   seed=seed)

    @classmethod
    def mbv3_mini(cls, seed: int = 0) -> 'Recipe':
        r"""A MobileNetV3 (``mbv3`` space) recipe for tiny CPU budgets: width multiplier
        0.25, 12x12 images (strides of stages 3 and 5 only: 12 -> 6 -> 3), 12 epochs,
        batch 32, peak learning rate 0.05, weight decay 5e-5 (OFA's 3e-5 order: a
        depthwise network), no augmentation.

        Measured (``docs/mbv3.md``, ``bench/mbv3_recipe.py``) on one 10-class 12x12 glyph
        task of 48 training images per class, three seeds each of four configs from the
        smallest to the largest: seed std 1.0-3.4 points, config means 80.8-87.1 % (the
        smallest config about two stds below the middle ones, the largest under-trained and
        below them too), 7-50 CPU s per network on one thread (about 25 s for a random
        config)."""
        return cls(name='mbv3-mini', space='mbv3', width_mult=0.25, epochs=12, batch_size=32,
                   lr=0.05, weight_decay=5e-5, image_size=12, seed=seed)

    def to_dict(self) -> Dict[str, Any]:
        r"""The fields as a dict; ``space`` and ``width_mult`` only when they differ from
        ``'nb201'`` and ``1.0``, so that NB201 recipes keep the dicts (and ids) they had
        before these fields existed."""
        out = dataclasses.asdict(self)
        for key, default in _LATER_FIELDS.items():
            if out[key] == default:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> 'Recipe':
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown recipe field(s): {', '.join(unknown)}")
        return cls(**values)

    @property
    def recipe_id(self) -> str:
        r"""``<name>-<8 hex digits>``: the digits hash every field but the name, so equal
        settings give equal ids across runs and machines."""
        fields = {k: v for k, v in self.to_dict().items() if k != 'name'}
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        return f'{self.name}-{digest[:8]}'


@dataclass
class TrainResult:
    r"""Outcome of :func:`train_and_evaluate`.

    Attributes:
        accuracy (float): test accuracy in percent.
        train_accuracy (float): accuracy in percent on the training batches of the last
            epoch (with augmentation, while training).
        train_loss (float): mean cross-entropy of the last epoch.
        wall_time (float): seconds for training and evaluation.
        epochs (int): epochs trained.
        recipe_id (str): :attr:`Recipe.recipe_id`.
        num_params (int): parameters of the network.
        model (torch.nn.Module): the trained network (in eval mode).
    """
    accuracy: float
    train_accuracy: float
    train_loss: float
    wall_time: float
    epochs: int
    recipe_id: str
    num_params: int
    model: Optional[Any] = field(default=None, repr=False, compare=False)
