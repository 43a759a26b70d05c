r"""Rank and linear correlation of predicted and true accuracies (no SciPy needed)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


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
