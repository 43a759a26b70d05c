r"""Training the network of an architecture with a :class:`~d2a.nets.recipe.Recipe`: the
runs that label architectures (``d2a db label``) and that train a chosen one
(``d2a train-arch``). The recipe's space picks the network (:func:`~d2a.nets.build_network`:
an NB201 cell's network or a MobileNetV3).

SGD with (Nesterov) momentum, weight decay and a per-iteration cosine schedule, as in
NAS-Bench-201; inputs are image tensors that are already normalised. On CPU a run is
deterministic given the architecture, the data and :attr:`Recipe.seed`.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2a.nets.build import build_network
from d2a.nets.recipe import Recipe, TrainResult


def _check_data(x: Tensor, y: Tensor, what: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f'{what} images must be a tensor [n, channels, height, width], '
                         f'got {getattr(x, "shape", type(x).__name__)}')
    if not isinstance(y, Tensor) or y.dim() != 1 or y.numel() != x.size(0):
        raise ValueError(f'{what} labels must be a tensor [{x.size(0)}], '
                         f'got {getattr(y, "shape", type(y).__name__)}')
    if x.size(0) == 0:
        raise ValueError(f'{what} set is empty')
    if y.dtype.is_floating_point or int(y.min()) < 0:
        raise ValueError(f'{what} labels must be non-negative integers')


def _resize(x: Tensor, size: Optional[int]) -> Tensor:
    if size is None or x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False,
                         antialias=size < min(x.shape[-2:]))


def _augment(x: Tensor, flip: Tensor, oy: Tensor, ox: Tensor) -> Tensor:
    # Horizontal flip where ``flip``, then a crop at offsets (oy, ox) of the image padded
    # with 4 zeros on each side; all [batch] tensors on the images' device.
    b, c, h, w = x.shape
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4))
    rows = (oy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    x = padded.gather(2, rows.expand(-1, c, -1, w + 8))
    cols = (ox.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    return x.gather(3, cols.expand(-1, c, h, -1))


def _device(device: Optional[Union[str, torch.device]]) -> torch.device:
    if device is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


def train_model(arch: str, train_x: Tensor, train_y: Tensor, recipe: Recipe,
                num_classes: Optional[int] = None,
                device: Optional[Union[str, torch.device]] = None,
                progress: bool = False) -> Tuple[nn.Module, float, float]:
    r"""Trains the network of ``arch`` (:func:`~d2a.nets.build_network`) with ``recipe``.

    Args:
        arch (str): architecture string of the recipe's space (:attr:`Recipe.space`).
        train_x (torch.Tensor): normalised images ``[n, channels, height, width]``.
        train_y (torch.Tensor): labels ``[n]`` in ``0 .. num_classes - 1``.
        recipe (Recipe): the training recipe.
        num_classes (int, optional): classifier outputs (default: ``max(train_y) + 1``).
        device (str or torch.device, optional): where to train (default: CUDA when
            available, else CPU).
        progress (bool, optional): show a progress bar over epochs.

    Returns:
        ``(model, train_accuracy, train_loss)``: the trained network in eval mode, and
        the accuracy (percent) and mean loss over the last epoch's batches.
    """
    from tqdm.auto import tqdm

    _check_data(train_x, train_y, 'training')
    num_classes = int(train_y.max()) + 1 if num_classes is None else num_classes
    if int(train_y.max()) >= num_classes:
        raise ValueError(f'training label {int(train_y.max())} is out of range for '
                         f'{num_classes} classes')
    dev = _device(device)
    x = _resize(train_x.to(dev, torch.float32), recipe.image_size)
    # Seeded CPU initialisation without touching the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = build_network(arch, recipe, train_x.size(1), num_classes,
                              image_size=min(x.shape[-2:]))
    model = model.to(dev)
    y = train_y.to(dev, torch.long)
    gen = torch.Generator().manual_seed(recipe.seed)

    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                nesterov=recipe.nesterov and recipe.momentum > 0,
                                weight_decay=recipe.weight_decay)
    n = x.size(0)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    step = 0
    correct = torch.zeros((), device=dev, dtype=torch.long)
    loss_sum = torch.zeros((), device=dev)
    model.train()
    for epoch in tqdm(range(recipe.epochs), desc=f'train {recipe.name}', disable=not progress,
                      leave=False):
        # All of an epoch's random draws are made on the CPU generator and moved at once.
        perm = torch.randperm(n, generator=gen).to(dev)
        if recipe.augment:
            flips = (torch.rand(n, generator=gen) < 0.5).to(dev)
            offsets = torch.randint(0, 9, (2, n), generator=gen).to(dev)
        last = epoch == recipe.epochs - 1
        for start in range(0, n, recipe.batch_size):
            if recipe.schedule == 'cosine':
                lr = 0.5 * recipe.lr * (1.0 + math.cos(math.pi * step / total_steps))
                for group in optimizer.param_groups:
                    group['lr'] = lr
            idx = perm[start:start + recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if recipe.augment:
                b = slice(start, start + recipe.batch_size)
                xb = _augment(xb, flips[b], offsets[0, b], offsets[1, b])
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if last:  # accumulated on the device: no per-batch host sync
                correct += (logits.detach().argmax(1) == yb).sum()
                loss_sum += loss.detach() * yb.numel()
    model.eval()
    return model, 100.0 * correct.item() / n, loss_sum.item() / n


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512,
             image_size: Optional[int] = None) -> float:
    r"""Accuracy in percent of ``model`` (in eval mode) on images ``x`` with labels ``y``;
    runs on the model's device."""
    _check_data(x, y, 'test')
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=dev, dtype=torch.long)
    for start in range(0, x.size(0), batch_size):
        xb = _resize(x[start:start + batch_size].to(dev, torch.float32), image_size)
        yb = y[start:start + batch_size].to(dev)
        correct += (model(xb).argmax(1) == yb).sum()
    model.train(was_training)
    return 100.0 * correct.item() / x.size(0)


def train_and_evaluate(arch: str, train_x: Tensor, train_y: Tensor, test_x: Tensor,
                       test_y: Tensor, recipe: Recipe,
                       device: Optional[Union[str, torch.device]] = None,
                       progress: bool = False,
                       num_classes: Optional[int] = None) -> TrainResult:
    r"""Trains ``arch`` on the training images with ``recipe`` and tests it.

    Args:
        arch (str): architecture string of the recipe's space.
        train_x, test_x (torch.Tensor): normalised images ``[n, c, h, w]``.
        train_y, test_y (torch.Tensor): labels ``[n]``.
        recipe (Recipe): the training recipe.
        device (str or torch.device, optional): default CUDA when available, else CPU.
        progress (bool, optional): show a progress bar over epochs.
        num_classes (int, optional): default ``max(train_y, test_y) + 1``.

    Returns:
        :class:`TrainResult` with the trained model in :attr:`TrainResult.model`.
    """
    _check_data(train_x, train_y, 'training')
    _check_data(test_x, test_y, 'test')
    if test_x.shape[1:] != train_x.shape[1:]:
        raise ValueError(f'test images {list(test_x.shape[1:])} differ in shape from training '
                         f'images {list(train_x.shape[1:])}')
    if num_classes is None:
        num_classes = max(int(train_y.max()), int(test_y.max())) + 1
    if int(test_y.max()) >= num_classes:
        raise ValueError(f'test label {int(test_y.max())} is out of range for '
                         f'{num_classes} classes')
    start = time.perf_counter()
    model, train_acc, train_loss = train_model(arch, train_x, train_y, recipe, num_classes,
                                               device, progress)
    acc = evaluate(model, test_x, test_y, image_size=recipe.image_size)
    return TrainResult(accuracy=acc, train_accuracy=train_acc, train_loss=train_loss,
                       wall_time=time.perf_counter() - start, epochs=recipe.epochs,
                       recipe_id=recipe.recipe_id,
                       num_params=sum(p.numel() for p in model.parameters()), model=model)
