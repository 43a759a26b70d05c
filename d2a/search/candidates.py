r"""Collecting candidates: unique (by canonical key) valid architectures that satisfy the
constraints, drawn from a sampler in batches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from d2a.search.constraints import Constraints


@dataclass
class GenerationStats:
    r"""Counts of :func:`collect_candidates`."""
    num_generated: int = 0
    num_valid: int = 0
    num_batches: int = 0
    rejected: Dict[str, int] = field(default_factory=lambda: {'params': 0, 'flops': 0,
                                                              'latency': 0})
    stopped_early: bool = False


def collect_candidates(sample: Callable[[int], Sequence[Optional[str]]], space,
                       num_candidates: int, constraints: Optional[Constraints] = None,
                       batch_size: int = 100, patience: int = 20,
                       progress: bool = False) -> Tuple[List[str], GenerationStats]:
    r"""Calls ``sample(batch_size)`` until ``num_candidates`` unique valid architectures
    satisfy ``constraints``.

    Args:
        sample (callable): returns a batch of architecture strings, ``None`` for invalid
            graphs.
        space (SearchSpace): gives the canonical keys.
        num_candidates (int): how many unique candidates to collect.
        constraints (Constraints, optional): limits checked for each new architecture.
        batch_size (int): graphs per call.
        patience (int): stop after this many consecutive batches without a new candidate.
        progress (bool): show a progress bar.

    Returns:
        The candidates (first string seen per canonical key) and the counts. Fewer than
        ``num_candidates`` are returned when ``patience`` runs out
        (:attr:`GenerationStats.stopped_early`).
    """
    from tqdm.auto import tqdm

    if num_candidates < 1:
        raise ValueError(f'num_candidates must be >= 1, got {num_candidates}')
    if batch_size < 1 or patience < 1:
        raise ValueError(f'batch_size and patience must be >= 1, got {batch_size} and {patience}')
    stats = GenerationStats()
    seen: Dict[str, Optional[str]] = {}  # canonical key -> violation (None: accepted)
    out: List[str] = []
    stall = 0
    with tqdm(total=num_candidates, desc='generate', unit='arch', disable=not progress,
              leave=False) as bar:
        while len(out) < num_candidates:
            archs = sample(batch_size)
            stats.num_batches += 1
            stats.num_generated += len(archs)
            stats.num_valid += sum(a is not None for a in archs)
            before = len(out)
            for arch in archs:
                if arch is None:
                    continue
                key = space.canonical_key(arch)
                if key in seen:
                    continue
                why = constraints.violation(arch) if constraints is not None else None
                seen[key] = why
                if why is not None:
                    stats.rejected[why] += 1
                    continue
                out.append(arch)
                if len(out) == num_candidates:
                    break
            bar.update(len(out) - before)
            stall = 0 if len(out) > before else stall + 1
            if stall >= patience:
                stats.stopped_early = True
                break
    return out, stats
