r"""Meta-training of the generator and the predictor on a meta-database.

``from d2a.training import TrainConfig, train`` is the Python form of ``d2a train``. The
names are resolved on first use so that light modules (``d2a.training.correlation``,
``d2a.training.log``) import without the models.
"""
from typing import Any

_EXPORTS = {
    'TrainConfig': 'd2a.training.trainer', 'Trainer': 'd2a.training.trainer',
    'train': 'd2a.training.trainer', 'MetaTrainData': 'd2a.training.episodes',
    'epoch_batches': 'd2a.training.episodes', 'MetricsLog': 'd2a.training.log',
    'read_metrics_log': 'd2a.training.log', 'pearson': 'd2a.training.correlation',
    'spearman': 'd2a.training.correlation',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'd2a.training' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_EXPORTS[name]), name)
