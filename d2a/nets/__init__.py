r"""Networks built from architectures, and the recipe that trains them.

* :mod:`d2a.nets.nb201` -- :class:`NB201Network` and its reference parameter/FLOP counters;
* :mod:`d2a.nets.mbv3` -- :class:`MBV3Network`, a MobileNetV3 of the Once-for-All space, and
  :func:`measure_macs`;
* :mod:`d2a.nets.build` -- :func:`build_network`: the network of an architecture of a space;
* :mod:`d2a.nets.recipe` -- :class:`Recipe` and :class:`TrainResult` (plain data, no torch);
* :mod:`d2a.nets.fit` -- :func:`train_model`, :func:`evaluate`, :func:`train_and_evaluate`.

Names are resolved on first use, so that ``from d2a.nets import Recipe`` does not import
torch.
"""
from d2a.utils.lazy import lazy_exports

_EXPORTS = {
    'NB201Network': 'd2a.nets.nb201', 'count_params': 'd2a.nets.nb201',
    'count_flops': 'd2a.nets.nb201', 'MBV3Network': 'd2a.nets.mbv3',
    'measure_macs': 'd2a.nets.mbv3', 'build_network': 'd2a.nets.build',
    'Recipe': 'd2a.nets.recipe', 'RECIPE_SPACES': 'd2a.nets.recipe',
    'TrainResult': 'd2a.nets.recipe', 'SCHEDULES': 'd2a.nets.recipe',
    'train_model': 'd2a.nets.fit', 'evaluate': 'd2a.nets.fit',
    'train_and_evaluate': 'd2a.nets.fit',
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
