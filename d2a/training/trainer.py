r"""The meta-training loop of the generator and the predictor.

One :class:`Trainer` runs either model on a :class:`~d2a.db.MetaDatabase` with MetaD2A's
optimisation (Adam, ReduceLROnPlateau, 400 epochs, batch 32 by default), on CPU or CUDA
(bf16 autocast), optionally compiled, in one process or under ``torchrun`` with
:class:`~torch.nn.parallel.DistributedDataParallel`. After each epoch it validates on
held-out tasks, logs a JSON line, keeps the best checkpoint and writes a resumable one.

Files in the output folder (``<kind>`` is ``generator`` or ``predictor``)::

    <kind>.pt             best model (see d2a.checkpoint)
    <kind>.last.pt        last finished epoch, with optimizer/scheduler/RNG state (--resume)
    <kind>.config.yaml    the effective training configuration
    <kind>.metrics.jsonl  one JSON object per epoch
    <kind>.val.json       validation predictions of the best predictor (for d2a plot)
    extractor.pt          the feature extractor of the database (for d2a search)

Every check (resume compatibility, the other model and the ``extractor.pt`` already in the
folder) runs before the first write, so a refused run leaves the folder as it was; a run
never replaces the ``extractor.pt`` that the other model of the folder was trained with.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from d2a.checkpoint import (Checkpoint, best_path, check_compatible, last_path, rng_state,
                            save_checkpoint, set_rng_state)
from d2a.config import save_config
from d2a.training import distributed as dist_utils
from d2a.training.config import RESUME_KEYS, TrainConfig
from d2a.training.episodes import MetaTrainData
from d2a.training.log import MetricsLog
from d2a.training.objectives import OBJECTIVES, Objective
from d2a.utils.atomic import atomic_write

__all__ = ['TrainConfig', 'Trainer', 'train']


class _LossModule(nn.Module):
    # The forward that DistributedDataParallel wraps: one batch -> dict of losses.
    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: Tensor, class_mask: Tensor, node_type: Tensor, adj: Tensor,
                y: Tensor, group: Tensor, stats: Tensor) -> Dict[str, Tensor]:
        return self.objective.loss(self.model, x, class_mask, node_type, adj, y, group, stats)


def _to_plain_float(value: Any) -> Any:
    return float(value) if isinstance(value, (np.floating, float)) else value


class Trainer:
    r"""Meta-trains a generator or a predictor (see the module docstring).

    Args:
        config (TrainConfig): the run's options.
        resume (bool): continue from ``<out>/<kind>.last.pt``.
        overwrite (bool): start afresh even if the output folder holds a run of this kind.
    """
    def __init__(self, config: TrainConfig, resume: bool = False, overwrite: bool = False) -> None:
        self.config = config
        self.resume = resume
        self._overwrite = overwrite
        self.out = Path(config.out)
        self.kind = config.kind
        self.objective = OBJECTIVES[self.kind].with_config(config)
        if not resume and not overwrite and (best_path(self.out, self.kind).exists()
                                             or last_path(self.out, self.kind).exists()):
            raise FileExistsError(f'{self.out} already holds a {self.kind} run: pass --resume to '
                                  'continue it or --overwrite to start again')
        if resume and not last_path(self.out, self.kind).exists():
            raise FileNotFoundError(f'cannot resume: {last_path(self.out, self.kind)} does not '
                                    'exist')

    # ------------------------------------------------------------------ set-up
    def _build(self, db, info) -> None:
        from d2a.registry import create_model, get_model_config
        cfg = self.config
        name = cfg.model_name
        defaults = get_model_config(name)
        if defaults['kind'] != self.kind:
            raise ValueError(f"model {name!r} is a {defaults['kind']}, not a {self.kind}")
        args = dict(cfg.model_args)
        if 'in_channels' in args and int(args['in_channels']) != db.feature_dim:
            raise ValueError(f'model_args in_channels={args["in_channels"]} differs from the '
                             f'feature size {db.feature_dim} of {db.path}')
        args['in_channels'] = db.feature_dim
        if args.get('space', defaults.get('space')) != cfg.space:
            raise ValueError(f"model {name!r} is for space {defaults.get('space')!r}, the run "
                             f'asks for {cfg.space!r}')
        torch.manual_seed(cfg.seed)
        self.model = create_model(name, **args)
        self.data = MetaTrainData(db, space=cfg.space, num_sample=cfg.num_sample,
                                  val_fraction=cfg.val_fraction, top_k=cfg.top_k,
                                  recipe=cfg.recipe, seed=cfg.seed, val_by=cfg.val_by,
                                  val_pairs=set(db.pair_split(cfg.val_pairs))
                                  if cfg.val_pairs else None)
        self.train_items = self.objective.items(self.data, 'train')
        self.val_items = self.objective.items(self.data, 'val')
        self.objective.prepare(self.model, self.train_items)
        self.model.to(info.device)
        module: nn.Module = _LossModule(self.model, self.objective)
        if cfg.compile:
            module = torch.compile(module)
        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel
            module = DistributedDataParallel(
                module, device_ids=[info.device.index] if info.device.type == 'cuda' else None,
                find_unused_parameters=self.objective.unused_parameters(self.model))
        self.module = module
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr,
                                          weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode='min', factor=cfg.lr_factor, patience=cfg.lr_patience)
        self.extractor, self.extractor_note = None, None
        if db.feature_extractor_name:
            from d2a.features import load_extractor_from_db
            try:
                self.extractor = load_extractor_from_db(db)
            except (ValueError, FileNotFoundError) as e:
                # Imported features may come from an extractor this machine cannot build.
                self.extractor_note = str(e)
        self.feature_extractor = {
            'name': db.feature_extractor_name, 'dim': db.feature_dim,
            'config': db.attrs['feature_config'], 'image_size': db.image_size,
            'weights_sha256': self._fingerprint()}

    def _fingerprint(self) -> Optional[str]:
        from d2a.features import extractor_fingerprint
        return extractor_fingerprint(self.extractor) if self.extractor is not None else None

    def _checkpoint(self, epoch: int, metrics: Dict[str, Any],
                    resume: Optional[Dict[str, Any]] = None) -> Checkpoint:
        return Checkpoint(kind=self.kind, model_name=self.config.model_name,
                          model_config=dict(self.model.config),
                          model_state=self.model.state_dict(),
                          train_config=self.config.to_dict(),
                          feature_extractor=dict(self.feature_extractor),
                          space=self.config.space,
                          extra={'epoch': epoch, 'metrics': metrics,
                                 'val_tasks': [t.name for t in self.data.split_tasks('val')]},
                          resume=resume)

    # ------------------------------------------------------------------ epochs
    def targets(self, archs: List[str], device: torch.device) -> Tuple[Tensor, Tensor]:
        r"""Dense ``(node_type, adj)`` of architecture strings on ``device``."""
        from d2a.graphs.dense import archs_to_dense
        node_type, adj = archs_to_dense(self.config.space, archs)
        return node_type.to(device), adj.to(device)

    def autocast(self, device: torch.device):
        r"""bf16 autocast on CUDA when the run asks for it (a no-op elsewhere)."""
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=self.config.amp and device.type == 'cuda')

    def _train_epoch(self, epoch: int, info) -> Dict[str, float]:
        from tqdm.auto import tqdm
        cfg = self.config
        per_rank = max(1, cfg.batch_size // info.world_size)
        batches = self.objective.batches(self.train_items, per_rank, epoch, cfg.seed,
                                         info.rank, info.world_size)
        if cfg.max_steps is not None:
            batches = batches[:cfg.max_steps]
        rng = np.random.default_rng([cfg.seed, epoch, info.rank])
        # Reseeded per epoch and rank, so that a resumed run draws what an uninterrupted one would.
        torch.manual_seed((cfg.seed * 1_000_003 + epoch * 1009 + info.rank) % (2 ** 31))
        self.module.train()
        sums: Dict[str, Tensor] = {}
        count = torch.zeros((), dtype=torch.float64)
        bar = tqdm(batches, desc=f'{self.kind} epoch {epoch}/{cfg.epochs}', unit='batch',
                   disable=not (cfg.progress and info.is_main), leave=False)
        for items in bar:
            batch = self.data.make_batch(items, rng, share=self.objective.share_draws)
            node_type, adj = self.targets(batch.archs, info.device)
            with self.autocast(info.device):
                out = self.module(*self._inputs(batch, info.device, node_type, adj))
            loss = out['loss'].float()
            if not torch.isfinite(loss):
                raise ValueError(f'{self.kind} loss became {float(loss)} at epoch {epoch}: lower '
                                 '--lr or check the database')
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            n = len(items)
            for k, v in out.items():
                sums[k] = sums.get(k, torch.zeros((), dtype=torch.float64)) + float(v.detach()) * n
            count += n
            bar.set_postfix(loss=f'{float(loss.detach()):.4f}')
        bar.close()
        keys = sorted(sums)
        totals = torch.stack([count] + [sums[k] for k in keys]).to(torch.float64)
        totals = dist_utils.all_reduce_sum(totals, info).cpu()
        n = float(totals[0]) or 1.0
        return {f'train_{k}': float(totals[i + 1]) / n for i, k in enumerate(keys)}

    @torch.no_grad()
    def _validate(self, info) -> Tuple[Dict[str, float], Optional[List[Dict[str, Any]]]]:
        if not self.val_items:
            return {}, None
        return self.objective.validate(self, info)

    @staticmethod
    def _inputs(batch, device: torch.device, node_type: Tensor, adj: Tensor) -> Tuple:
        return (batch.x.to(device), batch.class_mask.to(device), node_type, adj,
                batch.y.to(device), batch.group.to(device), batch.stats.to(device))

    def val_loss(self, items, rng, info) -> Dict[str, float]:
        r"""The mean losses (``val_*``) of ``items``, each with a dataset drawn from ``rng``."""
        sums: Dict[str, float] = {}
        for s in range(0, len(items), self.config.batch_size):
            chunk = items[s:s + self.config.batch_size]
            batch = self.data.make_batch(chunk, rng, share=self.objective.share_draws)
            node_type, adj = self.targets(batch.archs, info.device)
            with self.autocast(info.device):
                out = self.objective.loss(self.model,
                                          *self._inputs(batch, info.device, node_type, adj))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(chunk)
        return {f'val_{k}': v / len(items) for k, v in sums.items()}

    # ------------------------------------------------------------------ run
    def run(self) -> Dict[str, Any]:
        r"""Trains, returns ``{'best_epoch', 'best_score', 'last_epoch', 'metrics', 'rank'}``."""
        from d2a.db import MetaDatabase, check_file
        cfg = self.config
        # The tables and the extractor's weights, checksummed, before any work: a damaged
        # file is named now rather than mid-epoch (features are verified as they are read).
        check_file(cfg.db, features=False)
        info = dist_utils.setup(cfg.device)
        try:
            with MetaDatabase.open(cfg.db) as db:
                self._build(db, info)
                # Every check comes before the first write: a refused run leaves the
                # folder as it was.
                restored = self._restore(info) if self.resume else (1, -math.inf, 0)
                self._check_folder()
                if info.is_main:
                    self._write_static(db)
                return self._loop(info, *restored)
        finally:
            dist_utils.teardown(info)

    def _check_folder(self) -> None:
        r"""Refuses an output folder whose other model, or whose ``extractor.pt``, belongs
        to other features than this run's: the run would replace the extractor that model
        depends on."""
        from d2a.checkpoint import KINDS, load_checkpoint
        from d2a.features import extractor_fingerprint, load_extractor_file
        ours = self.feature_extractor
        for other in KINDS:
            path = best_path(self.out, other)
            if other == self.kind or not path.is_file():
                continue
            theirs = load_checkpoint(path, kind=other).feature_extractor
            keys = [k for k in ('name', 'dim', 'config', 'image_size', 'weights_sha256')
                    if k in theirs and theirs[k] is not None and ours.get(k) is not None]
            diffs = [f'{k} {theirs[k]!r} there, {ours[k]!r} here' for k in keys
                     if theirs[k] != ours[k]]
            if diffs:
                raise ValueError(
                    f'{self.out} holds a {other} trained on other features than {self.config.db} '
                    f"({'; '.join(diffs)}): the {self.kind} would replace the extractor.pt "
                    f'that {path.name} needs; train into another --out folder')
        file = self.out / 'extractor.pt'
        if self.extractor is not None and file.is_file():
            try:
                held = extractor_fingerprint(load_extractor_file(file))
            except ValueError:
                held = None
            if held != ours['weights_sha256'] and not self._overwrite:
                raise ValueError(f'{file} is another feature extractor than that of '
                                 f'{self.config.db}: train into another --out folder, or pass '
                                 '--overwrite to replace it')

    def _write_static(self, db) -> None:
        from d2a.features import save_extractor
        self.out.mkdir(parents=True, exist_ok=True)
        # Keys are the flags of 'd2a train <kind>', so the file works as --config.
        save_config({k: v for k, v in self.config.to_dict().items() if k != 'kind'},
                    self.out / f'{self.kind}.config.yaml')
        if self.extractor_note is not None:
            print(f'note: feature extractor of {db.path} not saved ({self.extractor_note}); '
                  'search will need features from a meta-database')
        elif self.extractor is not None:
            save_extractor(self.extractor, self.out / 'extractor.pt')

    def _loop(self, info, start: int, best_score: float, best_epoch: int) -> Dict[str, Any]:
        cfg = self.config
        log = None
        if info.is_main:
            log = MetricsLog(self.out / f'{self.kind}.metrics.jsonl',
                             truncate_after=start - 1 if self.resume else None)
        if info.is_main:
            print(f'{self.kind}: {len(self.train_items)} training items over '
                  f'{len(self.data.split_tasks("train"))} tasks, {len(self.val_items)} validation '
                  f'items over {len(self.data.split_tasks("val"))} tasks; device {info.device}'
                  f'{f" x {info.world_size} processes" if info.distributed else ""}')
        metrics: Dict[str, float] = {}
        for epoch in range(start, cfg.epochs + 1):
            t0 = time.perf_counter()
            metrics = self._train_epoch(epoch, info)
            val, preds = self._validate(info)
            metrics.update(val)
            self.scheduler.step(metrics.get('val_loss', metrics['train_loss']))
            score = self.objective.score(metrics)
            record = {'epoch': epoch, **{k: _to_plain_float(v) for k, v in metrics.items()},
                      'lr': self.optimizer.param_groups[0]['lr'],
                      'time': time.perf_counter() - t0}
            improved = score > best_score or best_epoch == 0
            if improved:
                best_score, best_epoch = score, epoch
            if info.is_main:
                if improved:
                    save_checkpoint(self._checkpoint(epoch, record), best_path(self.out, self.kind))
                    if preds is not None:
                        with atomic_write(self.out / f'{self.kind}.val.json') as f:
                            json.dump({'epoch': epoch, 'predictions': preds}, f)
                resume = {'epoch': epoch, 'optimizer': self.optimizer.state_dict(),
                          'scheduler': self.scheduler.state_dict(), 'rng': rng_state(),
                          'best_score': best_score, 'best_epoch': best_epoch}
                save_checkpoint(self._checkpoint(epoch, record, resume),
                                last_path(self.out, self.kind))
                log.write({**record, 'best_epoch': best_epoch})
                print(_summary(self.kind, record, improved), flush=True)
            dist_utils.barrier(info)
        return {'best_epoch': best_epoch, 'best_score': best_score, 'last_epoch': cfg.epochs,
                'metrics': metrics, 'rank': info.rank}

    def _restore(self, info) -> Tuple[int, float, int]:
        from d2a.registry import load_model
        path = last_path(self.out, self.kind)

        def check(ckpt: Checkpoint, file: Path) -> None:
            # The weights' hash is compared when the checkpoint records one.
            keys = ['name', 'dim'] + [k for k in ('weights_sha256',)
                                      if ckpt.feature_extractor.get(k) is not None]
            check_compatible(ckpt, file, model_config=self.model.config,
                             train_config=self.config.to_dict(), train_keys=RESUME_KEYS,
                             feature_extractor={k: self.feature_extractor.get(k) for k in keys})
            if ckpt.resume is None:
                raise ValueError(f'{file} holds no resume state')

        ckpt = load_model(path, self.kind, device=info.device, model=self.model,
                          check=check).checkpoint
        self.optimizer.load_state_dict(ckpt.resume['optimizer'])
        self.scheduler.load_state_dict(ckpt.resume['scheduler'])
        set_rng_state(ckpt.resume['rng'])
        epoch = int(ckpt.resume['epoch'])
        if info.is_main:
            print(f'resuming {self.kind} from epoch {epoch} ({path})')
        return epoch + 1, float(ckpt.resume['best_score']), int(ckpt.resume['best_epoch'])


def _summary(kind: str, record: Mapping[str, Any], improved: bool) -> str:
    keys = [k for k in ('train_loss', 'val_loss', 'val_spearman', 'val_task_spearman',
                        'val_validity', 'val_uniqueness', 'val_reconstruction') if k in record]
    parts = [f'{k} {record[k]:.4f}' if isinstance(record[k], float) else f'{k} {record[k]}'
             for k in keys]
    return (f"{kind} epoch {record['epoch']}: " + ', '.join(parts)
            + f", lr {record['lr']:.2g}, {record['time']:.1f}s" + (' *best*' if improved else ''))


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> Dict[str, Any]:
    r"""Runs a :class:`Trainer` (the Python form of ``d2a train``)."""
    return Trainer(config, resume=resume, overwrite=overwrite).run()
