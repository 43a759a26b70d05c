r"""Reuse a d2a graph encoder as a performance predictor in your own NAS code.

Two ways, on NAS-Bench-201 cells:

1. the ready-made graph predictor (``create_model('gin_nb201_predictor')``) with its
   ``fit(archs, accuracies)`` / ``query(archs)`` interface, driving a predictor-guided search
   loop: label a few cells, fit, rank a large pool, label the most promising, repeat;
2. a d2a graph encoder (:class:`~d2a.graphs.encoders.GINEncoder`) inside your own
   ``torch.nn.Module`` -- here a two-headed model predicting accuracy and latency -- trained
   with your own loop on the batches d2a builds from architecture strings.

``evaluate`` stands for your own training run. By default it is a made-up deterministic score
so the script runs anywhere in a few minutes; ``--data accuracy.csv`` (NAS-Bench-201's table:
``arch`` and ``cifar10`` columns) makes it look the real accuracy up. ``--fast`` runs a tiny
version (used by the tests)::

    python examples/graph_predictor.py
    python examples/graph_predictor.py --data ../shared/data/nb201/accuracy.csv
"""
from __future__ import annotations

import argparse
import csv
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import d2a  # noqa: F401  (before torch: it sets OpenMP's passive waiting, see README)
import torch
import torch.nn.functional as F
from torch import Tensor

from d2a.graphs import get_space
from d2a.graphs.dense import archs_to_dense, dense_to_batch
from d2a.graphs.encoders import GINEncoder
from d2a.graphs.nb201 import parse_arch
from d2a.registry import create_model

# Made-up per-op value and cost, for the stand-in objective.
_VALUE = {'none': 0.0, 'skip_connect': 0.6, 'nor_conv_1x1': 1.0, 'nor_conv_3x3': 1.6,
          'avg_pool_3x3': 0.3}
_COST = {'none': 0.0, 'skip_connect': 0.05, 'nor_conv_1x1': 0.4, 'nor_conv_3x3': 1.0,
         'avg_pool_3x3': 0.2}


def toy_accuracy(arch: str) -> float:
    r"""A stand-in for training ``arch``: conv ops help, a cell whose output ignores its input
    (all ops into node 3 are ``none``) is poor, and skip-connections to the output help."""
    ops = parse_arch(arch)
    score = sum(_VALUE[o] for o in ops) + 0.8 * (ops[3] == 'skip_connect')
    if all(o == 'none' for o in ops[3:]):
        score = 0.0
    return 40.0 + 5.0 * score


def toy_latency(arch: str) -> float:
    return 1.0 + sum(_COST[o] for o in parse_arch(arch))


def load_accuracy(path: str) -> Callable[[str], float]:
    r"""``evaluate`` from NAS-Bench-201's table (``arch`` and ``cifar10`` columns)."""
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows or 'arch' not in rows[0] or 'cifar10' not in rows[0]:
        raise ValueError(f"{path} needs a header with 'arch' and 'cifar10' columns")
    table: Dict[str, float] = {r['arch']: float(r['cifar10']) for r in rows}
    return table.__getitem__


# ----------------------------------------------------------------------------- way 1
def predictor_guided_search(evaluate: Callable[[str], float], rounds: int, per_round: int,
                            pool_size: int, epochs: int,
                            seed: int = 0) -> Tuple[List[str], List[str]]:
    r"""Label ``per_round`` random cells, then ``per_round`` cells per round chosen by the
    predictor from a random pool. Returns every labelled cell, best first, and the random
    first round."""
    space = get_space('nb201')
    rng = random.Random(seed)
    first = space.sample(per_round, rng)
    labelled: Dict[str, float] = {a: evaluate(a) for a in first}
    predictor = create_model('gin_nb201_predictor')
    for r in range(rounds):
        archs = list(labelled)
        predictor.fit(archs, [labelled[a] for a in archs], epochs=epochs, seed=seed + r)
        pool = [a for a in space.sample(pool_size, rng) if a not in labelled]
        scores = predictor.query(pool)
        best = [pool[i] for i in scores.argsort()[::-1][:per_round]]
        labelled.update({a: evaluate(a) for a in best})
        top = max(labelled, key=labelled.get)
        print(f'round {r + 1}: {len(labelled)} cells evaluated, best {labelled[top]:.2f} {top}')
    return sorted(labelled, key=labelled.get, reverse=True), first


# ----------------------------------------------------------------------------- way 2
class AccuracyLatencyModel(torch.nn.Module):
    r"""A d2a graph encoder with two regression heads (accuracy, latency).

    Args:
        num_node_types (int): Node types of the search space.
        hidden_channels (int): Width of the encoder.
        out_channels (int): Size of the graph vector.

    Shapes:
        - **input:** a :class:`~torch_geometric.data.Batch` of ``B`` architecture graphs
        - **output:** ``[B, 2]`` (standardized accuracy, standardized latency)
    """
    def __init__(self, num_node_types: int, hidden_channels: int = 64, out_channels: int = 32):
        super().__init__()
        self.encoder = GINEncoder(num_node_types, hidden_channels, out_channels)
        self.head = torch.nn.Sequential(torch.nn.Linear(out_channels, 64), torch.nn.Tanh(),
                                        torch.nn.Linear(64, 2))

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        for m in self.head:
            if hasattr(m, 'reset_parameters'):
                m.reset_parameters()

    def forward(self, batch) -> Tensor:
        return self.head(self.encoder(batch))


def train_two_headed(archs: Sequence[str], targets: Tensor, epochs: int,
                     seed: int = 0) -> Callable[[Sequence[str]], Tensor]:
    r"""Trains :class:`AccuracyLatencyModel`; returns a function giving ``[N, 2]`` predictions
    in the targets' units."""
    torch.manual_seed(seed)
    space = get_space('nb201')
    model = AccuracyLatencyModel(space.num_node_types)
    mean, std = targets.mean(0), targets.std(0).clamp_min(1e-8)
    y = (targets - mean) / std
    node_type, adj = archs_to_dense(space, archs)   # dense [N, 8] types and [N, 8, 8] edges
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(archs)).split(32):
            loss = F.mse_loss(model(dense_to_batch(node_type[idx], adj[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()

    @torch.no_grad()
    def predict(query: Sequence[str]) -> Tensor:
        return model(dense_to_batch(*archs_to_dense(space, query))) * std + mean
    return predict


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra = torch.tensor(a, dtype=torch.float64).argsort().argsort().double()
    rb = torch.tensor(b, dtype=torch.float64).argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    p = argparse.ArgumentParser(description='Reuse a d2a graph encoder as a predictor.')
    p.add_argument('--data', help="NAS-Bench-201 accuracy.csv ('arch', 'cifar10' columns)")
    p.add_argument('--fast', action='store_true', help='a tiny run (seconds)')
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    evaluate = load_accuracy(args.data) if args.data else toy_accuracy
    rounds, per_round, pool, epochs = (2, 10, 200, 5) if args.fast else (4, 25, 3000, 150)

    print('1. predictor-guided search with gin_nb201_predictor.fit / query')
    ranked, first = predictor_guided_search(evaluate, rounds, per_round, pool, epochs)

    print('2. a GIN encoder inside a two-headed model (accuracy and latency)')
    space = get_space('nb201')
    rng = random.Random(1)
    train, test = space.sample(20 if args.fast else 300, rng), space.sample(200, rng)
    targets = torch.tensor([[evaluate(a), toy_latency(a)] for a in train])
    predict = train_two_headed(train, targets, epochs=3 if args.fast else 100)
    pred = predict(test)
    rho_acc = spearman(pred[:, 0].tolist(), [evaluate(a) for a in test])
    rho_lat = spearman(pred[:, 1].tolist(), [toy_latency(a) for a in test])
    print(f'   Spearman on 200 held-out cells: accuracy {rho_acc:.3f}, latency {rho_lat:.3f}')
    print(f'best cell found: {ranked[0]}')
    return {'best': evaluate(ranked[0]), 'first_round_best': max(map(evaluate, first)),
            'spearman_accuracy': rho_acc, 'spearman_latency': rho_lat}


if __name__ == '__main__':
    main()
