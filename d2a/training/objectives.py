r"""What meta-training optimises and measures, one objective per model kind.

An :class:`Objective` gives the :class:`~d2a.training.trainer.Trainer` everything that
differs between the generator and the predictor: the items it learns from, what it sets up
on the model before training, the loss of a batch, the validation metrics and the score
that picks the best epoch. The training loop itself is the same for both.

* :class:`GeneratorObjective` -- the set-to-graph VAE's loss (reconstruction + beta KL) on
  each task's best architectures; validated by the loss, greedy reconstruction of a held-out
  task's best cells, and validity, uniqueness and novelty of sampled graphs; the best epoch
  has the lowest validation loss.
* :class:`PredictorObjective` -- MSE on standardised accuracy over every labelled pair;
  validated by the loss and Pearson / Spearman correlations (over all pairs and within each
  held-out task); the best epoch has the highest within-task Spearman.
"""
from __future__ import annotations

import math
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


class Objective:
    r"""The kind-specific part of meta-training (see the module docstring)."""
    kind: str = ''

    def items(self, data, split: str) -> List[Tuple[str, str, float]]:
        r"""The ``(task, arch, accuracy)`` items of ``split`` the model learns from."""
        return data.items(self.kind, split)

    def prepare(self, model: nn.Module, train_items: List[Tuple[str, str, float]]) -> None:
        r"""Sets up ``model`` before its first epoch."""

    def unused_parameters(self, model: nn.Module) -> bool:
        r"""Whether some parameters get no gradient (DistributedDataParallel must know)."""
        return False

    def loss(self, model: nn.Module, x: Tensor, class_mask: Tensor, node_type: Tensor,
             adj: Tensor, y: Tensor) -> Dict[str, Tensor]:
        r"""Losses of one batch; ``'loss'`` is the one optimised."""
        raise NotImplementedError

    def validate(self, trainer: Trainer, info) -> Tuple[Dict[str, float], Predictions]:
        r"""Validation metrics (``val_*``) and, for the predictor, the predictions."""
        raise NotImplementedError

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
             adj: Tensor, y: Tensor) -> Dict[str, Tensor]:
        return model(x, node_type, adj, class_mask=class_mask)

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

    def loss(self, model: nn.Module, x: Tensor, class_mask: Tensor, node_type: Tensor,
             adj: Tensor, y: Tensor) -> Dict[str, Tensor]:
        from d2a.graphs.dense import dense_to_batch
        return {'loss': model.loss(x, dense_to_batch(node_type, adj), y, class_mask)}

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


#: The objective of each model kind (the keys are :data:`d2a.checkpoint.KINDS`).
OBJECTIVES: Dict[str, Objective] = {o.kind: o for o in (GeneratorObjective(),
                                                         PredictorObjective())}
