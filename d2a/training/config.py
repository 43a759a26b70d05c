r"""The options of a meta-training run: :class:`TrainConfig`, plain data without torch, so
that the command line builds its flags from the defaults (``d2a train --help``) and a
checkpoint stores the effective configuration."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Mapping, Optional

from d2a.checkpoint import KINDS

#: Training options that must not change when a run is resumed.
RESUME_KEYS = ('kind', 'model', 'model_args', 'space', 'recipe', 'batch_size', 'num_sample',
               'top_k', 'val_fraction', 'val_by', 'val_pairs', 'group_size', 'seed')


@dataclass
class TrainConfig:
    r"""Options of a meta-training run (plain data; saved in checkpoints).

    Args:
        kind (str): ``'generator'`` or ``'predictor'``.
        db (str): the meta-database file.
        out (str): the output folder.
        model (str, optional): registry name (default ``metad2a_<space>_<kind>``).
        model_args (dict): overrides of the model's sizes (``in_channels`` comes from the
            database's feature size).
        space (str): the search space.
        recipe (str, optional): use the results of this labelling recipe only.
        epochs (int): epochs to train (MetaD2A: 400).
        batch_size (int): items per step, over all processes (MetaD2A: 32).
        lr (float): Adam learning rate (MetaD2A: 1e-4).
        weight_decay (float): Adam weight decay.
        lr_factor (float), lr_patience (int): ReduceLROnPlateau on the validation loss
            (MetaD2A: 0.1, 10).
        num_sample (int): feature vectors per class in an episode (MetaD2A: 20).
        top_k (int): the generator's targets per task (best architectures).
        val_fraction (float): meta-training tasks (or sources) held out for validation.
        val_by (str): hold out a share of the ``'task'`` s or of the ``'source'`` datasets
            (all of their tasks; measures generalisation to new sources).
        val_pairs (str, optional): predictor only: validate on this pair split of the
            database (e.g. MetaD2A's, imported with ``d2a db import DB metad2a-split``)
            instead of held-out tasks.
        val_samples (int): graphs generated per validation task (validity, uniqueness).
        val_resamples (int): dataset draws averaged by the predictor in validation.
        rank_weight (float): predictor only: weight of a listwise ranking loss within
            groups of one task's architectures (0: MetaD2A's MSE alone).
        group_size (int): predictor only: architectures of one task per group of a batch,
            sharing one dataset draw (1: MetaD2A's independent items).
        level_weight (float): predictor with ``target='task'`` only: weight of the loss of
            the task's mean and spread.
        max_steps (int, optional): stop each epoch after this many steps (quick runs).
        grad_clip (float): clip the gradient norm to this value (0: off).
        seed (int): seeds the split, the episodes and the initialisation.
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        amp (bool): bf16 autocast on CUDA.
        compile (bool): :func:`torch.compile` the model.
        progress (bool): progress bars (rank 0 only).
    """
    kind: str = 'generator'
    db: str = ''
    out: str = ''
    model: Optional[str] = None
    model_args: Dict[str, Any] = field(default_factory=dict)
    space: str = 'nb201'
    recipe: Optional[str] = None
    epochs: int = 400
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_factor: float = 0.1
    lr_patience: int = 10
    num_sample: int = 20
    top_k: int = 5
    val_fraction: float = 0.1
    val_by: str = 'task'
    val_pairs: Optional[str] = None
    rank_weight: float = 0.0
    group_size: int = 1
    level_weight: float = 1.0
    val_samples: int = 20
    val_resamples: int = 3
    max_steps: Optional[int] = None
    grad_clip: float = 0.0
    seed: int = 0
    device: str = 'auto'
    amp: bool = True
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ('epochs', 'batch_size', 'num_sample', 'top_k', 'val_samples',
                     'val_resamples', 'lr_patience', 'group_size'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == 'lr_patience' else 1):
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f'max_steps must be >= 1, got {self.max_steps}')
        if not self.lr > 0 or not 0 < self.lr_factor < 1:
            raise ValueError(f'lr must be > 0 and lr_factor in (0, 1), got {self.lr} and '
                             f'{self.lr_factor}')
        if self.val_by not in ('task', 'source'):
            raise ValueError(f"val_by must be 'task' or 'source', got {self.val_by!r}")
        for name in ('rank_weight', 'level_weight'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f'{name} must be a number >= 0, got {value!r}')
        if self.group_size > self.batch_size:
            raise ValueError(f'group_size ({self.group_size}) must not exceed batch_size '
                             f'({self.batch_size})')
        if self.val_pairs is not None and self.kind != 'predictor':
            raise ValueError('val_pairs (a pair split) applies to the predictor; the generator '
                             'validates on held-out tasks')
        if not self.db or not self.out:
            raise ValueError('db and out must be given')

    @property
    def model_name(self) -> str:
        return self.model or f'metad2a_{self.space}_{self.kind}'

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> 'TrainConfig':
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        return cls(**dict(values))
