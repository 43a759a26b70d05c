r"""Ranking candidates with the meta-predictor, averaged over several draws of the dataset."""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch

from d2a.search.features import DatasetFeatures


@torch.no_grad()
def rank_candidates(predictor: torch.nn.Module, space, archs: Sequence[str],
                    data: DatasetFeatures, num_sample: int, num_resamples: int, rng,
                    device: Union[str, torch.device] = 'cpu',
                    chunk: int = 128) -> Tuple[List[float], List[float]]:
    r"""The predictor's mean and standard deviation over ``num_resamples`` dataset draws
    for each architecture."""
    from d2a.graphs.dense import archs_to_dense, dense_to_batch
    node_type, adj = archs_to_dense(space, archs)
    # The graphs do not change between draws: encode them once, then only the dataset.
    h = torch.cat([predictor.graph_encoder(dense_to_batch(node_type[s:s + chunk].to(device),
                                                          adj[s:s + chunk].to(device)))
                   for s in range(0, len(archs), chunk)])
    draws = []
    for _ in range(num_resamples):
        x = data.draw(num_sample, rng).to(device)
        d = predictor.encode_dataset(x)
        draws.append(predictor.forward_head(h, d).float().cpu())
    stacked = torch.stack(draws)
    std = stacked.std(0, unbiased=False) if num_resamples > 1 else torch.zeros(len(archs))
    return stacked.mean(0).tolist(), std.tolist()
