r"""What meta-training optimises and measures, one objective per model kind.

An :class:`Objective` gives the :class:`~d2a.training.trainer.Trainer` everything that
differs between the generator and the predictor: the items it learns from, what it sets up
on the model before training, the loss of a batch, the validation metrics and the score
that picks the best epoch. The training loop itself is the same for both.

* :class:`GeneratorObjective` -- the set-to-graph VAE's loss (reconstruction + beta KL) on
  each task's best architectures; validated by the loss, greedy reconstruction of a held-out
  task's best cells, and validity, uniqueness and novelty of sampled graphs; the best epoch
  has the lowest validation loss.
* :class:`PredictorObjective` -- MSE on standardised accuracy over every labelled pair
  (standardised over all tasks, or within each task for ``target='task'`` predictors, which
  also fit each task's mean and spread), optionally plus a listwise ranking loss within
  groups of one task's architectures (``rank_weight``, ``group_size``); validated by the
  loss and Pearson / Spearman correlations (over all pairs and within each held-out task);
  the best epoch has the highest within-task Spearman.
"""
from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from d2a.metrics import pearson, spearman

if TYPE_CHECKING:
    from d2a.training.trainer import Trainer

Predictions = Optional[List[Dict[str, Any]]]
#: Seeds the draws of validation (apart from the training draws).
VAL_SEED = 1 << 20


class Objective(ABC):
    r"""The kind-specific part of meta-training (see the module docstring); a subclass
    gives :meth:`loss` and :meth:`validate`."""
    kind: str = ''
    #: The run's :class:`~d2a.training.config.TrainConfig` (``None``: its defaults).
    config: Any = None

    def with_config(self, config: Any) -> 'Objective':
        r"""A copy of this objective for a run with ``config``."""
        out = copy.copy(self)
        out.config = config
        return out

    def _option(self, name: str, default: Any) -> Any:
        return getattr(self.config, name, default) if self.config is not None else default

    @property
    def share_draws(self) -> bool:
        r"""Whether the items of one task in a batch share one dataset draw."""
        return False

    def batches(self, items: List[Tuple[str, str, float]], batch_size: int, epoch: int,
                seed: int, rank: int, world_size: int) -> List[List]:
        r"""This rank's batches of one epoch."""
        from d2a.training.episodes import epoch_batches
        return epoch_batches(items, batch_size, epoch, seed, rank, world_size)

    def items(self, data, split: str) -> List[Tuple[str, str, float]]:
        r"""The ``(task, arch, accuracy)`` items of ``split`` the model learns from."""
        return data.items(self.kind, split)

    def prepare(self, model: nn.Module, train_items: List[Tuple[str, str, float]]) -> None:
        r"""Sets up ``model`` before its first epoch."""

    def unused_parameters(self, model: nn.Module) -> bool:
        r"""Whether some parameters get no gradient (DistributedDataParallel must know)."""
        return False

    @abstractmethod
    def loss(self, model: nn.Module, x: Tensor, class_mask: Tensor, node_type: Tensor,
             adj: Tensor, y: Tensor, group: Tensor, stats: Tensor) -> Dict[str, Tensor]:
        r"""Losses of one batch; ``'loss'`` is the one optimised.

        Args:
            x (torch.Tensor): ``[G, C_max, S, F]`` dataset draws; ``class_mask`` ``[G, C_max]``.
            node_type (torch.Tensor), adj (torch.Tensor): the ``B`` dense graphs.
            y (torch.Tensor): ``[B]`` accuracies.
            group (torch.Tensor): ``[B]``, the draw of each graph.
            stats (torch.Tensor): ``[B, 2]`` mean and std of each graph's task.
        """

    @abstractmethod
    def validate(self, trainer: Trainer, info) -> Tuple[Dict[str, float], Predictions]:
        r"""Validation metrics (``val_*``) and, for the predictor, the predictions."""

    def score(self, metrics: Mapping[str, float]) -> float:
        r"""Higher is better: minus the validation (or training) loss."""
        loss = metrics.get('val_loss', metrics.get('train_loss', math.inf))
        return -float(loss) if math.isfinite(loss) else -math.inf


class GeneratorObjective(Objective):
    kind = 'generator'

    def unused_parameters(self, model: nn.Module) -> bool:
        # A decoder without free edges (NB201) leaves its edge heads without gradient.
        free = getattr(getattr(model, 'decoder', None), 'free', None)
        return free is not None and not bool(free.any())

    def loss(self, model: nn.Module, x: Tensor, class_mask: Tensor, node_type: Tensor,
             adj: Tensor, y: Tensor, group: Tensor, stats: Tensor) -> Dict[str, Tensor]:
        return model(x[group], node_type, adj, class_mask=class_mask[group])

    def validate(self, trainer: Trainer, info) -> Tuple[Dict[str, float], Predictions]:
        from d2a.metrics import generation_metrics
        from d2a.sets.encoders import pad_datasets
        cfg, model = trainer.config, trainer.model
        model.eval()
        rng = np.random.default_rng([cfg.seed, VAL_SEED])
        metrics = trainer.val_loss(trainer.val_items, rng, info)
        tasks = trainer.data.split_tasks('val')
        space = model.space
        gen = torch.Generator(device=info.device).manual_seed(cfg.seed)
        train_archs = sorted({a for _, a, _ in trainer.train_items})
        hits, validity, uniqueness, novelty = [], [], [], []
        for s in range(0, len(tasks), cfg.batch_size):
            chunk = tasks[s:s + cfg.batch_size]
            x, mask = pad_datasets([trainer.data.sample_dataset(t.name, rng) for t in chunk])
            x, mask = x.to(info.device), mask.to(info.device)
            decoded = model.sample_archs(x, 1, class_mask=mask, greedy=True, use_mean=True)
            for t, arch in zip(chunk, decoded):
                targets = {space.canonical_key(a) for a in t.archs[:cfg.top_k]}
                hits.append(arch is not None and space.canonical_key(arch) in targets)
            n = cfg.val_samples
            sampled = model.sample_archs(x, n, class_mask=mask, generator=gen)
            for b in range(len(chunk)):
                m = generation_metrics(space, sampled[b * n:(b + 1) * n], train_archs)
                validity.append(m['validity'])
                uniqueness.append(m['uniqueness'])
                novelty.append(m['novelty'])
        metrics.update(val_reconstruction=float(np.mean(hits)),
                       val_validity=float(np.mean(validity)),
                       val_uniqueness=float(np.mean(uniqueness)),
                       val_novelty=float(np.mean(novelty)))
        return metrics, None


class PredictorObjective(Objective):
    kind = 'predictor'

    def prepare(self, model: nn.Module, train_items: List[Tuple[str, str, float]]) -> None:
        model.set_target_stats([acc for _, _, acc in train_items])

    @property
    def share_draws(self) -> bool:
        return self._option('group_size', 1) > 1

    def batches(self, items: List[Tuple[str, str, float]], batch_size: int, epoch: int,
                seed: int, rank: int, world_size: int) -> List[List]:
        from d2a.training.episodes import epoch_batches, grouped_batches
        group_size = self._option('group_size', 1)
        if group_size > 1:
            return grouped_batches(items, batch_size, group_size, epoch, seed, rank,
                                   world_size)
        return epoch_batches(items, batch_size, epoch, seed, rank, world_size)

    def loss(self, model: nn.Module, x: Tensor, class_mask: Tensor, node_type: Tensor,
             adj: Tensor, y: Tensor, group: Tensor, stats: Tensor) -> Dict[str, Tensor]:
        from d2a.graphs.dense import dense_to_batch
        h = model.graph_encoder(dense_to_batch(node_type, adj))
        d = model.encode_dataset(x, class_mask)
        d = d[group] if d is not None else None
        pred = model.score(h, d)
        y = y.to(pred.dtype)
        mean, std = stats[:, 0].to(pred.dtype), stats[:, 1].to(pred.dtype)
        z_task = (y - mean) / std
        out: Dict[str, Tensor] = {}
        if getattr(model, 'target', 'global') == 'task':
            out['mse'] = torch.nn.functional.mse_loss(pred, z_task)
            level = model.level(d)
            level_target = torch.stack([model.standardize(mean),
                                        torch.log(std / model.y_std)], dim=-1)
            out['level'] = torch.nn.functional.mse_loss(level, level_target.to(level.dtype))
            loss = out['mse'] + self._option('level_weight', 1.0) * out['level']
        else:
            out['mse'] = torch.nn.functional.mse_loss(pred, model.standardize(y).to(pred.dtype))
            loss = out['mse']
        rank_weight = self._option('rank_weight', 0.0)
        if rank_weight > 0:
            out['rank'] = listwise_loss(pred, z_task, group)
            loss = loss + rank_weight * out['rank']
        out['loss'] = loss
        return out

    def validate(self, trainer: Trainer, info) -> Tuple[Dict[str, float], Predictions]:
        from d2a.graphs.dense import dense_to_batch
        cfg, model = trainer.config, trainer.model
        model.eval()
        rng = np.random.default_rng([cfg.seed, VAL_SEED])
        metrics = trainer.val_loss(trainer.val_items, rng, info)
        preds: List[Dict[str, Any]] = []
        for task in trainer.data.split_tasks('val'):
            graphs = dense_to_batch(*trainer.targets(task.archs, info.device))
            draws = []
            for _ in range(cfg.val_resamples):
                x = trainer.data.sample_dataset(task.name, rng).to(info.device)
                with trainer.autocast(info.device):
                    draws.append(model(x, graphs).float().cpu())
            mean = torch.stack(draws).mean(0)
            preds.extend({'task': task.name, 'arch': a, 'true': float(y), 'pred': float(p)}
                         for a, y, p in zip(task.archs, task.accs, mean.tolist()))
        true = [p['true'] for p in preds]
        pred = [p['pred'] for p in preds]
        per_task = []
        for task in trainer.data.split_tasks('val'):
            sel = [p for p in preds if p['task'] == task.name]
            if len(sel) >= 2:
                per_task.append(spearman([p['true'] for p in sel], [p['pred'] for p in sel]))
        per_task = [v for v in per_task if math.isfinite(v)]
        metrics.update(val_pearson=pearson(true, pred), val_spearman=spearman(true, pred),
                       val_task_spearman=float(np.mean(per_task)) if per_task else math.nan)
        return metrics, preds

    def score(self, metrics: Mapping[str, float]) -> float:
        r"""The per-task Spearman when defined, else minus the loss."""
        if math.isfinite(metrics.get('val_task_spearman', math.nan)):
            return float(metrics['val_task_spearman'])
        return super().score(metrics)


def listwise_loss(pred: Tensor, target: Tensor, group: Tensor,
                  temperature: float = 0.5) -> Tensor:
    r"""ListNet's listwise ranking loss within groups: the cross-entropy between the softmax
    of the targets (divided by ``temperature``) and the softmax of the predictions, over the
    items of each group, averaged over the groups of two or more items.

    Shapes:
        - **input:** ``pred``, ``target``, ``group`` (long) ``[B]``
        - **output:** a scalar (zero when no group has two items)
    """
    from torch_geometric.utils import scatter, softmax
    group = group.to(pred.device)
    p = softmax(target / temperature, group)
    log_q = torch.log(softmax(pred, group).clamp_min(1e-12))
    per_group = scatter(-p * log_q, group, dim=0, reduce='sum')
    size = scatter(torch.ones_like(pred), group, dim=0, reduce='sum')
    keep = size > 1
    if not bool(keep.any()):
        return pred.sum() * 0.0
    return per_group[keep].mean()


#: The objective of each model kind (the keys are :data:`d2a.checkpoint.KINDS`).
OBJECTIVES: Dict[str, Objective] = {o.kind: o for o in (GeneratorObjective(),
                                                         PredictorObjective())}
