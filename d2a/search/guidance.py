r"""Predictor-guided generation (``d2a search --guidance S``): sample the generator's latent
space where the meta-predictor scores the decoded graphs highest.

Unguided, the search samples :math:`z \sim q(z \mid D) = \mathcal{N}(\mu, \sigma^2)` and
decodes it. Guided, :class:`GuidedSampler` keeps a Gaussian search distribution
:math:`\mathcal{N}(m, s^2)` over :math:`z`, started at the posterior, and after every
batch moves it towards the latent vectors whose decoded graphs the predictor scores high: a
soft cross-entropy method. Each decoded valid graph gets the weight
:math:`\exp(S \cdot \mathrm{zscore}(\hat y))` of its predicted accuracy standardised within
the batch (invalid graphs weigh nothing); :math:`m` and :math:`s` move half-way to the
weighted mean and standard deviation of the batch's :math:`z`, and :math:`s` stays at
least ``min_std`` times the posterior's so the candidates stay diverse. ``S = 0`` weighs
every valid graph alike (the distribution stays near the posterior); larger ``S`` follows
the predictor more greedily. Only forward passes of the generator and the predictor are
needed, so it runs wherever they do (CPU or CUDA).
"""
from __future__ import annotations

from typing import Callable, List, Optional

import torch
from torch import Tensor

from d2a.search.ranking import encode_graphs


class GuidedSampler:
    r"""Latent-space cross-entropy sampler steered by a meta-predictor (see the module
    docstring).

    Args:
        generator (torch.nn.Module): the set-to-graph generator (``encode``, ``decoder``).
        predictor (torch.nn.Module): the meta-predictor (``graph_encoder``,
            ``encode_dataset``, ``forward_head``).
        space (SearchSpace): the search space (decoded graphs to strings).
        draw (callable): ``draw()`` returns one dataset draw ``[C, S, F]`` on the device.
        strength (float): :math:`S`, the inverse temperature of the weights.
        smoothing (float): how far the distribution moves to the batch's weighted
            statistics per batch. (default: :obj:`0.5`)
        min_std (float): floor of :math:`s` relative to the posterior's. (default:
            :obj:`0.25`)
        generator_rng (torch.Generator, optional): the random source of :math:`z` and of
            the decoder's sampling.

    Shapes:
        - **__call__:** ``n`` -> ``n`` architecture strings (``None`` for invalid graphs)
    """
    def __init__(self, generator: torch.nn.Module, predictor: torch.nn.Module, space,
                 draw: Callable[[], Tensor], strength: float, smoothing: float = 0.5,
                 min_std: float = 0.25,
                 generator_rng: Optional[torch.Generator] = None) -> None:
        if not strength >= 0:
            raise ValueError(f'guidance strength must be >= 0, got {strength}')
        if not 0 < smoothing <= 1 or not 0 < min_std <= 1:
            raise ValueError(f'smoothing and min_std must be in (0, 1], got {smoothing} and '
                             f'{min_std}')
        self.strength, self.smoothing, self.min_std = float(strength), float(smoothing), \
            float(min_std)
        self.generator, self.predictor, self.space = generator, predictor, space
        self.draw, self.rng = draw, generator_rng
        self.mean: Optional[Tensor] = None
        self.std: Optional[Tensor] = None
        self.floor: Optional[Tensor] = None
        #: Graphs decoded and valid graphs among them, over all calls.
        self.num_generated = 0
        self.num_valid = 0

    @torch.no_grad()
    def __call__(self, n: int) -> List[Optional[str]]:
        x = self.draw()
        mu, logvar = self.generator.encode(x)
        if self.mean is None:
            self.mean, self.std = mu.view(-1), torch.exp(0.5 * logvar).view(-1)
            self.floor = self.min_std * self.std
        dev = self.mean.device
        eps = torch.randn((n, self.mean.numel()), generator=self.rng, device=dev,
                          dtype=self.mean.dtype)
        z = self.mean + eps * self.std
        node_type, adj = self.generator.decoder.sample(z, generator=self.rng)
        archs = self.space.from_dense_batch(node_type, adj)
        self.num_generated += n
        valid = [i for i, a in enumerate(archs) if a is not None]
        self.num_valid += len(valid)
        if len(valid) >= 2:
            self._update(z[valid], [archs[i] for i in valid], x)
        return archs

    def _update(self, z: Tensor, archs: List[str], x: Tensor) -> None:
        h = encode_graphs(self.predictor, self.space, archs, z.device)
        d = self.predictor.encode_dataset(x)
        y = self.predictor.forward_head(h, d).float().to(z.device)
        spread = y.std()
        score = (y - y.mean()) / spread if float(spread) > 0 else torch.zeros_like(y)
        w = torch.softmax(self.strength * score, 0).to(z.dtype).unsqueeze(1)
        mean = (w * z).sum(0)
        std = ((w * (z - mean).pow(2)).sum(0)).sqrt()
        a = self.smoothing
        self.mean = (1 - a) * self.mean + a * mean
        self.std = torch.maximum((1 - a) * self.std + a * std, self.floor)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strength={self.strength}, '
                f'smoothing={self.smoothing}, min_std={self.min_std})')
