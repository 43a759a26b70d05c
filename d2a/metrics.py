r"""Metrics: of graph generation (validity, uniqueness, novelty, reconstruction accuracy) and
of predictions (Spearman's and Pearson's correlation, no SciPy needed).

Generated graphs are given as architecture strings with ``None`` for invalid graphs (what
:meth:`SearchSpace.from_dense_batch` and :meth:`SetToGraphVAE.sample_archs` return) or as
dense ``(node_type [B, n], adj [B, n, n])``. Architectures are compared by the space's
canonical key, so isomorphic cells count as one.

The module imports only NumPy at first (torch and the search spaces when a graph metric
runs), so that plotting a training run's correlations needs neither.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from d2a.graphs.space import SearchSpace

Generated = Union[Sequence[Optional[str]], Tuple['Tensor', 'Tensor']]


def _space(space: Union[str, SearchSpace]) -> SearchSpace:
    from d2a.graphs.space import get_space
    return get_space(space) if isinstance(space, str) else space


def as_archs(space: Union[str, SearchSpace], generated: Generated) -> List[Optional[str]]:
    r"""Generated graphs as strings (``None`` where invalid)."""
    if isinstance(generated, tuple) and len(generated) == 2 and hasattr(generated[0], 'dim'):
        return _space(space).from_dense_batch(generated[0], generated[1])
    return list(generated)


def _keys(space: SearchSpace, archs: Iterable[Optional[str]]) -> List[str]:
    return [space.canonical_key(a) for a in archs if a is not None]


def validity(space: Union[str, SearchSpace], generated: Generated) -> float:
    r"""Fraction of generated graphs that are valid architectures of the space."""
    archs = as_archs(space, generated)
    if not archs:
        raise ValueError('validity of an empty set of graphs is undefined')
    return sum(a is not None for a in archs) / len(archs)


def uniqueness(space: Union[str, SearchSpace], generated: Generated) -> float:
    r"""Distinct canonical keys over valid graphs (0 when none is valid)."""
    space = _space(space)
    keys = _keys(space, as_archs(space, generated))
    return len(set(keys)) / len(keys) if keys else 0.0


def novelty(space: Union[str, SearchSpace], generated: Generated,
            train_archs: Iterable[str]) -> float:
    r"""Fraction of valid generated graphs whose canonical key is not in the training set
    (0 when none is valid)."""
    space = _space(space)
    keys = _keys(space, as_archs(space, generated))
    seen = set(_keys(space, train_archs))
    return sum(k not in seen for k in keys) / len(keys) if keys else 0.0


def reconstruction_accuracy(space: Union[str, SearchSpace], targets: Sequence[str],
                            decoded: Generated) -> float:
    r"""Fraction of decoded graphs with the canonical key of their target (an invalid
    decoded graph counts as wrong)."""
    space = _space(space)
    decoded = as_archs(space, decoded)
    if len(decoded) != len(targets):
        raise ValueError(f'{len(targets)} targets for {len(decoded)} decoded graphs')
    if not targets:
        raise ValueError('reconstruction accuracy of an empty set of graphs is undefined')
    hits = sum(d is not None and space.canonical_key(d) == space.canonical_key(t)
               for t, d in zip(targets, decoded))
    return hits / len(targets)


def vae_reconstruction_accuracy(model: torch.nn.Module, x: Tensor, targets: Sequence[str],
                                class_mask: Optional[Tensor] = None) -> float:
    r"""Reconstruction accuracy of a :class:`~d2a.generator.SetToGraphVAE`: each dataset of
    ``x`` (``[B, C_max, num_sample, in]``) is encoded, its posterior mean decoded greedily and
    compared with its target graph."""
    decoded = model.sample_archs(x, 1, class_mask=class_mask, greedy=True, use_mean=True)
    return reconstruction_accuracy(model.space, targets, decoded)


def generation_metrics(space: Union[str, SearchSpace], generated: Generated,
                       train_archs: Optional[Iterable[str]] = None) -> Dict[str, float]:
    r"""``validity``, ``uniqueness``, ``novelty`` (when ``train_archs`` is given), and the
    counts ``num_generated``, ``num_valid``, ``num_unique``."""
    space = _space(space)
    archs = as_archs(space, generated)
    keys = _keys(space, archs)
    out: Dict[str, float] = {
        'num_generated': len(archs), 'num_valid': len(keys), 'num_unique': len(set(keys)),
        'validity': validity(space, archs), 'uniqueness': uniqueness(space, archs)}
    if train_archs is not None:
        out['novelty'] = novelty(space, archs, train_archs)
    return out


# ----------------------------------------------------------------------------- correlations
def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Spearman's rank correlation (ties get their average rank); ``nan`` when a side is
    constant or has fewer than two values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return pearson(_ranks(x), _ranks(y))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Pearson's correlation; ``nan`` when a side is constant or has fewer than two values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f'correlation needs two sequences of one length, got {x.size} and '
                         f'{y.size}')
    if x.size < 2:
        return float('nan')
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float('nan')


def _ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind='mergesort')
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.arange(a.size, dtype=np.float64)
    # Average the ranks of ties.
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]
