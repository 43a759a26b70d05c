r"""Ranking candidates with the meta-predictor, averaged over several draws of the dataset.

The graph vectors of architectures do not depend on the dataset: :func:`rank_candidates`
encodes the candidates once and scores them against every draw, and for a small space
:func:`space_embeddings` encodes every unique architecture once per predictor and keeps the
result next to its checkpoint, so that ranking the whole space for a new dataset is a few
matrix products (``d2a search --all``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from d2a.search.features import DatasetFeatures

#: File of the cached graph vectors of a space's unique architectures, in a checkpoint folder.
EMBEDDINGS_FILE = 'predictor.embeddings.pt'


@torch.no_grad()
def encode_graphs(predictor: torch.nn.Module, space, archs: Sequence[str],
                  device: Union[str, torch.device] = 'cpu', chunk: int = 128) -> Tensor:
    r"""The predictor's graph vectors of ``archs``, ``[len(archs), out]``."""
    from d2a.graphs.dense import archs_to_dense, dense_to_batch
    node_type, adj = archs_to_dense(space, archs)
    return torch.cat([predictor.graph_encoder(dense_to_batch(node_type[s:s + chunk].to(device),
                                                             adj[s:s + chunk].to(device)))
                      for s in range(0, len(archs), chunk)])


@torch.no_grad()
def rank_embeddings(predictor: torch.nn.Module, h: Tensor, data: DatasetFeatures,
                    num_sample: int, num_resamples: int, rng,
                    device: Union[str, torch.device] = 'cpu') -> Tuple[List[float], List[float]]:
    r"""Mean and standard deviation of the predictor's accuracy for graph vectors ``h``
    over ``num_resamples`` draws of the dataset."""
    h = h.to(device)
    # The head's graph term is computed once; each draw adds only its dataset term.
    prepared = predictor.prepare_graphs(h) if hasattr(predictor, 'prepare_graphs') else None
    draws = []
    for _ in range(num_resamples):
        x = data.draw(num_sample, rng).to(device)
        d = predictor.encode_dataset(x)
        out = predictor.forward_prepared(prepared, d) if prepared is not None else \
            predictor.forward_head(h, d)
        draws.append(out.float().cpu())
    stacked = torch.stack(draws)
    std = stacked.std(0, unbiased=False) if num_resamples > 1 else torch.zeros(h.size(0))
    return stacked.mean(0).tolist(), std.tolist()


@torch.no_grad()
def rank_candidates(predictor: torch.nn.Module, space, archs: Sequence[str],
                    data: DatasetFeatures, num_sample: int, num_resamples: int, rng,
                    device: Union[str, torch.device] = 'cpu',
                    chunk: int = 128) -> Tuple[List[float], List[float]]:
    r"""The predictor's mean and standard deviation over ``num_resamples`` dataset draws
    for each architecture."""
    # The graphs do not change between draws: encode them once, then only the dataset.
    h = encode_graphs(predictor, space, archs, device, chunk)
    return rank_embeddings(predictor, h, data, num_sample, num_resamples, rng, device)


def _encoder_digest(predictor: torch.nn.Module) -> str:
    # SHA-256 of the graph encoder's weights, byte for byte: the same in every process and
    # with any number of threads (a few milliseconds for a MetaD2A-size encoder).
    h = hashlib.sha256()
    for name, value in sorted(predictor.graph_encoder.state_dict().items()):
        v = value.detach().to('cpu').contiguous().reshape(-1)
        h.update(f'{name}{tuple(value.shape)}{v.dtype}'.encode())
        h.update(v.view(torch.uint8).numpy().tobytes() if v.numel() else b'')
    return h.hexdigest()


def space_embeddings(predictor: torch.nn.Module, space, directory: Optional[Path] = None,
                     device: Union[str, torch.device] = 'cpu') -> Tuple[List[str], Tensor]:
    r"""Every unique architecture of a finite space (:meth:`SearchSpace.unique`) and the
    predictor's graph vectors of them, ``[n, out]``.

    The vectors are read from ``directory / EMBEDDINGS_FILE`` when it holds them for this
    predictor's graph encoder (a hash of its weights is kept with them) and written there
    (atomically) otherwise; a folder that cannot be written to is only read.
    """
    from d2a.utils.atomic import atomic_path
    digest = _encoder_digest(predictor)
    path = Path(directory) / EMBEDDINGS_FILE if directory is not None else None
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, map_location='cpu', weights_only=True)
        except Exception:  # a damaged cache is recomputed
            saved = None
        if isinstance(saved, dict) and saved.get('digest') == digest \
                and saved.get('space') == space.name:
            return list(saved['archs']), saved['h']
    archs = space.unique()
    h = encode_graphs(predictor, space, archs, device).float().cpu()
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                torch.save({'digest': digest, 'space': space.name, 'archs': archs, 'h': h}, tmp)
        except OSError:
            pass  # a read-only install: the vectors are recomputed next time
    return archs, h
