r"""The baseline of ``search_speed.py``: MetaD2A's way of generating and ranking, one graph at
a time, with the weights of a d2a model.

MetaD2A's meta-test decodes one latent vector per call and builds each graph node by node in
Python (an igraph per graph, one edge decision per earlier node, the new node's state from a
Python sum over its predecessors), converts each graph to a string, and then scores every
candidate on its own (a batch of dataset re-samplings of one graph). This module does the
same with the modules of a :class:`~d2a.graphs.decoder.DAGDecoder` and a
:class:`~d2a.predictor.MetaPredictor`, so both sides of the comparison compute the same
function: :func:`decode_one` with ``greedy=True`` returns exactly what the batched
:meth:`DAGDecoder.sample` returns for the same latent vector (tested in
``tests/test_bench.py``), and sampled graphs follow the same distribution.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def decode_one(decoder, z: Tensor, greedy: bool = False,
               generator: Optional[torch.Generator] = None) -> Tuple[List[int], List[List[int]]]:
    r"""Decodes one latent vector ``z`` ``[in_channels]`` with a per-node Python loop.

    Returns the node types and, per node, the list of its predecessors (the graph as MetaD2A
    holds it in an igraph object).
    """
    z = z.view(1, -1)
    n = decoder.max_nodes
    types: List[int] = []
    preds: List[List[int]] = []
    msgs: List[Tensor] = []   # outgoing message of each node, [1, h]
    srcs: List[Tensor] = []   # each node's half of the edge MLP, [1, 4h]
    hz = torch.tanh(decoder.lin_init(z))
    g = hz
    for i in range(n):
        prefix = torch.tensor([types], dtype=torch.long).view(1, i)
        allowed = decoder._allowed(prefix)[0]
        if int(allowed.sum()) > 1:
            logits = decoder.type_mlp(g).masked_fill(~allowed, float('-inf'))
            if greedy:
                t = int(logits.argmax(-1))
            else:
                t = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
        else:
            t = int(allowed.to(torch.uint8).argmax())
        types.append(t)
        x = F.one_hot(torch.tensor([t]), decoder.num_node_types).to(z.dtype)
        mine: List[int] = []
        if i == 0:
            msg = hz
        else:
            q = None
            # One decision per earlier node, last one first, as MetaD2A's decode loop does.
            for j in range(i - 1, -1, -1):
                if bool(decoder.forced[j, i]):
                    mine.append(j)
                elif bool(decoder.free[j, i]):
                    if q is None:
                        q = decoder.edge_dst(decoder.gru(x, g))
                    p = torch.sigmoid(decoder.edge_out((srcs[j] + q).relu())).item()
                    keep = p > 0.5 if greedy else \
                        float(torch.rand(1, generator=generator)) < p
                    if keep:
                        mine.append(j)
            mine.sort()
            msg = torch.zeros_like(hz)
            for j in range(i):
                if j in mine or bool(decoder.implicit[j, i]):
                    msg = msg + msgs[j]
        preds.append(mine)
        h = decoder.gru(x, msg)
        g = h
        msgs.append(torch.sigmoid(decoder.gate(h)) * decoder.mapper(h))
        srcs.append(decoder.edge_src(h))
    return types, preds


def to_dense(types: Sequence[int], preds: Sequence[Sequence[int]]) -> Tuple[List[int], Tensor]:
    r"""Node types and the ``[n, n]`` adjacency of a graph from :func:`decode_one`."""
    n = len(types)
    adj = torch.zeros(n, n, dtype=torch.bool)
    for i, ps in enumerate(preds):
        for j in ps:
            adj[j, i] = True
    return list(types), adj


def generate_one_at_a_time(generator_model, x: Tensor, space, num_candidates: int,
                           max_graphs: int, rng_seed: int = 0,
                           timing: Optional[Dict[str, float]] = None) -> Tuple[List[str], int]:
    r"""MetaD2A's generation loop: encode the dataset, then draw ``z`` and decode one graph at
    a time until ``num_candidates`` unique (canonical key) valid architectures exist or
    ``max_graphs`` graphs were drawn.

    Returns the candidates and the number of graphs generated.
    """
    timing = timing if timing is not None else {}
    gen = torch.Generator().manual_seed(rng_seed)
    t = time.perf_counter()
    mu, logvar = generator_model.encode(x)
    timing['encoding'] = timing.get('encoding', 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    std = torch.exp(0.5 * logvar)
    seen = set()
    out: List[str] = []
    count = 0
    while len(out) < num_candidates and count < max_graphs:
        z = mu[0] + torch.randn(mu[0].shape, generator=gen) * std[0]
        types, preds = decode_one(generator_model.decoder, z, generator=gen)
        count += 1
        try:
            arch = space.from_dense(*to_dense(types, preds))
        except ValueError:
            continue
        key = space.canonical_key(arch)
        if key not in seen:
            seen.add(key)
            out.append(arch)
    timing['generation'] = timing.get('generation', 0.0) + time.perf_counter() - t
    return out, count


@torch.no_grad()
def rank_one_at_a_time(predictor, space, archs: Sequence[str],
                       draws: Sequence[Tensor]) -> List[float]:
    r"""MetaD2A's ranking loop: each architecture on its own, as one batch of the dataset
    re-samplings ``draws`` (each ``[num_classes, num_sample, dim]``); the mean prediction."""
    from d2a.graphs.dense import archs_to_dense, dense_to_batch
    x = torch.stack(list(draws))
    out = []
    for arch in archs:
        node_type, adj = archs_to_dense(space, [arch] * len(draws))
        out.append(float(predictor(x, dense_to_batch(node_type, adj)).mean()))
    return out
