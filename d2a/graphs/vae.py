r"""The graph VAE core, in the style of PyG's :class:`~torch_geometric.nn.models.VGAE`: an
encoder of the caller's choice, Gaussian posterior heads, the reparametrisation, the KL term
and an autoregressive :class:`~d2a.graphs.decoder.DAGDecoder` for :math:`p(G \mid z)`.

MetaD2A's generator encodes a *dataset* (:class:`~d2a.generator.SetToGraphVAE`); the graph
predictor's pre-training encodes the *graphs* themselves (arch2vec style,
:meth:`~d2a.predictor.MetaPredictor.pretrain`); the search samples latent vectors of the
generator's posterior. All three use this module, and nothing else writes the
reparametrisation.

The KL term is written with the log-variance and summed over latent dimensions
(:func:`kl_divergence`); PyG's ``VGAE.kl_loss`` uses the log standard deviation, averages
and clamps it, which is not MetaD2A's objective.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Linear, Module

from d2a.graphs.decoder import DAGDecoder
from d2a.graphs.dense import resolve_space
from d2a.graphs.space import SearchSpace


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(\mathcal{N}(\mu, e^{\mathrm{logvar}}) \,\|\, \mathcal{N}(0, I))`,
    summed over latent dimensions, one value per row ``[B]``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def sample_latent(mu: Tensor, logvar: Tensor,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    r""":math:`z = \mu + \epsilon\, e^{\mathrm{logvar}/2}`, :math:`\epsilon \sim
    \mathcal{N}(0, I)` drawn from ``generator`` (the default one when ``None``)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


class GraphVAE(Module):
    r"""A variational autoencoder whose decoder generates DAGs of a search space.

    The encoder maps its inputs to vectors ``h`` ``[B, in_channels]``; two linear heads give
    the posterior :math:`q(z \mid \cdot) = \mathcal{N}(\mu, \mathrm{diag}(e^{\mathrm{logvar}}))`;
    a :class:`~d2a.graphs.decoder.DAGDecoder` sized for ``space`` models
    :math:`p(G \mid z)`. The training objective is :math:`-\log p(G \mid z) +
    \beta\,\mathrm{KL}`.

    Args:
        encoder (torch.nn.Module): maps the inputs of :meth:`encode` to ``[B, in_channels]``.
        in_channels (int): Size of the encoder's vectors.
        latent_channels (int): Size of :math:`z`.
        space (SearchSpace or str): The search space of the decoded graphs.
        hidden_channels (int): Node-state size of the decoder.
        beta (float, optional): Weight of the KL term. (default: :obj:`0.005`)
        constrained (bool, optional): Decode under the space's rules (see
            :class:`~d2a.graphs.decoder.DAGDecoder`). (default: :obj:`True`)
        encoder_name (str, optional): The attribute the encoder is stored under (its
            parameters' prefix in the state dict). (default: :obj:`'encoder'`)

    Shapes:
        - **encode:** the encoder's inputs -> ``mu``, ``logvar`` ``[B, latent_channels]``
        - **neg_log_likelihood:** ``z`` ``[B, latent_channels]``, ``node_type`` ``[B, n]``,
          ``adj`` ``[B, n, n]`` -> ``[B]``
    """
    def __init__(self, encoder: Module, in_channels: int, latent_channels: int,
                 space: Union[str, SearchSpace], hidden_channels: int, beta: float = 0.005,
                 constrained: bool = True, encoder_name: str = 'encoder') -> None:
        super().__init__()
        self.space = resolve_space(space)
        self.beta = beta
        self._encoder_name = encoder_name
        setattr(self, encoder_name, encoder)
        self.lin_mu = Linear(in_channels, latent_channels)
        self.lin_logvar = Linear(in_channels, latent_channels)
        self.decoder = DAGDecoder.from_space(self.space, latent_channels, hidden_channels,
                                             constrained=constrained)

    @property
    def encoder(self) -> Module:
        return self._modules[self._encoder_name]

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.lin_mu.reset_parameters()
        self.lin_logvar.reset_parameters()
        self.decoder.reset_parameters()

    def encode(self, *args: Any, **kwargs: Any) -> Tuple[Tensor, Tensor]:
        r"""Posterior ``(mu, logvar)``, each ``[B, latent_channels]``."""
        h = self.encoder(*args, **kwargs)
        return self.lin_mu(h), self.lin_logvar(h)

    def reparametrize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        r"""A sample of the posterior (:func:`sample_latent`) in training, :math:`\mu` in
        evaluation mode."""
        return sample_latent(mu, logvar) if self.training else mu

    def neg_log_likelihood(self, z: Tensor, node_type: Tensor, adj: Tensor) -> Tensor:
        r""":math:`-\log p(G \mid z)` of dense target graphs, one value per graph ``[B]``."""
        return -self.decoder.log_likelihood(z, node_type, adj)

    def kl_loss(self, mu: Tensor, logvar: Tensor) -> Tensor:
        r"""The KL term averaged over the batch (a scalar)."""
        return kl_divergence(mu, logvar).mean()
