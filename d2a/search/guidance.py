r"""Predictor-guided generation (``d2a search --guidance S``): generate where the
meta-predictor scores the decoded graphs highest.

Unguided, the search samples :math:`z \sim q(z \mid D) = \mathcal{N}(\mu, \sigma^2)` and
decodes it. Guided, :class:`GuidedSampler` targets :math:`p_S(G) \propto q(G \mid D)
\exp(S \cdot \mathrm{zscore}(\hat y(G)))`, with :math:`\hat y` the predicted accuracy
standardised within a batch, in two ways at once:

* **re-weighting**: each call decodes ``oversample`` times the graphs asked for, scores
  the new unique valid ones and keeps the number asked for, drawn without replacement with
  probabilities proportional to the weights (Gumbel top-k);
* **latent search** (a soft cross-entropy method): a Gaussian search distribution
  :math:`\mathcal{N}(m, s^2)` over :math:`z`, started at the posterior, moves after every
  batch half-way to the weighted mean and standard deviation of the batch's :math:`z`;
  :math:`s` stays at least ``min_std`` times the posterior's so candidates stay diverse.

``S = 0`` weighs every valid graph alike; larger ``S`` follows the predictor more greedily.
The decoder samples node types and edges, so most of the diversity of the candidates comes
from the decoding rather than from :math:`z` (measured on the shipped generator: 500
greedy decodings of posterior samples give 7 distinct cells, 500 sampled decodings about
460); the re-weighting is what moves the candidates there. Only forward passes of the
generator and the predictor are needed, so it runs wherever they do (CPU or CUDA).
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
        oversample (int): graphs decoded per graph returned. (default: :obj:`4`)
        smoothing (float): how far the distribution moves to the batch's weighted
            statistics per batch. (default: :obj:`0.5`)
        min_std (float): floor of :math:`s` relative to the posterior's. (default:
            :obj:`0.25`)
        generator_rng (torch.Generator, optional): the random source of :math:`z` and of
            the decoder's sampling.

    Shapes:
        - **__call__:** ``n`` -> at most ``n`` architecture strings, distinct and new
    """
    def __init__(self, generator: torch.nn.Module, predictor: torch.nn.Module, space,
                 draw: Callable[[], Tensor], strength: float, oversample: int = 4,
                 smoothing: float = 0.5,
                 min_std: float = 0.25,
                 generator_rng: Optional[torch.Generator] = None) -> None:
        if not strength >= 0:
            raise ValueError(f'guidance strength must be >= 0, got {strength}')
        if not isinstance(oversample, int) or oversample < 1:
            raise ValueError(f'oversample must be a positive integer, got {oversample!r}')
        if not 0 < smoothing <= 1 or not 0 < min_std <= 1:
            raise ValueError(f'smoothing and min_std must be in (0, 1], got {smoothing} and '
                             f'{min_std}')
        self.strength, self.smoothing, self.min_std = float(strength), float(smoothing), \
            float(min_std)
        self.generator, self.predictor, self.space = generator, predictor, space
        self.draw, self.rng = draw, generator_rng
        self.oversample = oversample
        self.seen: set = set()
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
        total = n * self.oversample
        eps = torch.randn((total, self.mean.numel()), generator=self.rng, device=dev,
                          dtype=self.mean.dtype)
        z = self.mean + eps * self.std
        node_type, adj = self.generator.decoder.sample(z, generator=self.rng)
        archs = self.space.from_dense_batch(node_type, adj)
        self.num_generated += total
        self.num_valid += sum(a is not None for a in archs)
        new: dict = {}  # canonical key -> first row, of cells not returned before
        for i, a in enumerate(archs):
            if a is not None:
                key = self.space.canonical_key(a)
                if key not in self.seen:
                    new.setdefault(key, i)
        if not new:
            return []
        rows = list(new.values())
        score = self._scores([archs[i] for i in rows], x, dev)
        if len(rows) >= 2:
            self._update(z[rows], score)
        # Gumbel top-k: n draws without replacement, probabilities ~ exp(S * score)
        u = torch.rand(len(rows), generator=self.rng, device=dev).clamp_(1e-12, 1 - 1e-7)
        keys = self.strength * score - torch.log(-torch.log(u))
        keep = torch.topk(keys, min(n, len(rows))).indices.tolist()
        self.seen.update(list(new)[j] for j in keep)
        return [archs[rows[j]] for j in keep]

    def _scores(self, archs: List[str], x: Tensor, dev: torch.device) -> Tensor:
        # predicted accuracy standardised within the batch, [len(archs)]
        h = encode_graphs(self.predictor, self.space, archs, dev)
        d = self.predictor.encode_dataset(x)
        y = self.predictor.forward_head(h, d).float().to(dev)
        spread = y.std() if y.numel() > 1 else y.new_zeros(())
        return (y - y.mean()) / spread if float(spread) > 0 else torch.zeros_like(y)

    def _update(self, z: Tensor, score: Tensor) -> None:
        w = torch.softmax(self.strength * score, 0).to(z.dtype).unsqueeze(1)
        mean = (w * z).sum(0)
        std = ((w * (z - mean).pow(2)).sum(0)).sqrt()
        a = self.smoothing
        self.mean = (1 - a) * self.mean + a * mean
        self.std = torch.maximum((1 - a) * self.std + a * std, self.floor)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strength={self.strength}, '
                f'oversample={self.oversample}, smoothing={self.smoothing}, '
                f'min_std={self.min_std})')
