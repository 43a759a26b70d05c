r"""Meta-training of the generator and the predictor on a meta-database.

``from d2a.training import TrainConfig, train`` is the Python form of ``d2a train``. The
names are resolved on first use so that light modules (``d2a.training.log``) import
without the models.
"""
from d2a.utils.lazy import lazy_exports

_EXPORTS = {
    'TrainConfig': 'd2a.training.config', 'Trainer': 'd2a.training.trainer',
    'train': 'd2a.training.trainer', 'MetaTrainData': 'd2a.training.episodes',
    'epoch_batches': 'd2a.training.episodes', 'MetricsLog': 'd2a.training.log',
    'read_metrics_log': 'd2a.training.log',
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
