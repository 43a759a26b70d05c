r"""MetaD2A's generator: a set-to-graph variational autoencoder."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch

from d2a.graphs.dense import archs_to_dense, dense_to_batch, resolve_space
from d2a.graphs.space import SearchSpace
from d2a.graphs.vae import GraphVAE, sample_latent
from d2a.sets.encoders import SET_ENCODERS

class SetToGraphVAE(GraphVAE):
    r"""The set-to-graph generator of MetaD2A (`"Rapid Neural Architecture Search by
    Learning to Generate Graphs from Datasets" <https://arxiv.org/abs/2107.00860>`_).

    A :class:`~d2a.graphs.vae.GraphVAE` whose encoder is a dataset encoder
    (:class:`~d2a.sets.HierarchicalSetEncoder`): it maps the dataset to a vector; two linear
    heads give the posterior :math:`q(z \mid D) = \mathcal{N}(\mu,
    \mathrm{diag}(e^{\mathrm{logvar}}))`; a :class:`~d2a.graphs.decoder.DAGDecoder` models
    :math:`p(G \mid z)`. The loss is :math:`-\log p(G \mid z) + \beta\,\mathrm{KL}`, the KL
    summed over latent dimensions, both averaged over the batch.

    Args:
        in_channels (int): Size of the dataset's feature vectors (MetaD2A: 512).
        hidden_channels (int): Width of the set encoder and of the decoder's node states
            (MetaD2A: 56).
        latent_channels (int): Size of :math:`z` (MetaD2A: 56).
        space (SearchSpace or str): The search space of the generated graphs.
        num_heads (int, optional): Attention heads of the set encoder. (default: :obj:`4`)
        num_blocks (int, optional): SABs per level of the set encoder. (default: :obj:`2`)
        set_encoder (str, optional): ``'set_transformer'`` or ``'deepsets'``.
            (default: :obj:`'set_transformer'`)
        beta (float, optional): Weight of the KL term. (default: :obj:`0.005`)
        constrained (bool, optional): Decode under the space's rules (see
            :class:`~d2a.graphs.decoder.DAGDecoder`). (default: :obj:`True`)

    Shapes:
        - **forward:** ``x`` ``[B, C_max, num_sample, in_channels]`` (one dataset per graph),
          ``class_mask`` ``[B, C_max]``, ``node_type`` ``[B, n]``, ``adj`` ``[B, n, n]``
          -> dict of scalars ``loss``, ``recon``, ``kl``
        - **sample:** ``x`` ``[num_classes, num_sample, in_channels]`` (or ``[B, ...]``)
          -> ``node_type`` ``[B * num_samples, n]``, ``adj`` ``[B * num_samples, n, n]``
    """
    def __init__(self, in_channels: int = 512, hidden_channels: int = 56,
                 latent_channels: int = 56, space: Union[str, SearchSpace] = 'nb201',
                 num_heads: int = 4, num_blocks: int = 2, set_encoder: str = 'set_transformer',
                 beta: float = 0.005, constrained: bool = True):
        space = resolve_space(space)
        # Built first: the parameters are initialised in MetaD2A's order (set encoder, heads,
        # decoder), and the state dict keeps the names 'set_encoder', 'lin_mu', 'lin_logvar',
        # 'decoder'.
        set_enc = SET_ENCODERS.get(set_encoder, "'set_encoder'")(
            in_channels, hidden_channels, hidden_channels, num_heads, num_blocks)
        super().__init__(set_enc, hidden_channels, latent_channels, space, hidden_channels,
                         beta=beta, constrained=constrained, encoder_name='set_encoder')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.latent_channels = latent_channels
        #: Plain-data configuration; the registry sets it for named models.
        self.config: Dict[str, Any] = {}

    def encode(self, x: Tensor, class_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""Posterior ``(mu, logvar)`` of datasets, each ``[B, latent_channels]``."""
        return super().encode(x, class_mask)

    def dense_targets(self, archs: Sequence[str]) -> Tuple[Tensor, Tensor]:
        r"""Dense ``(node_type [B, n], adj [B, n, n])`` of architecture strings (cached)."""
        return archs_to_dense(self.space, archs)

    def forward(self, x: Tensor, node_type: Tensor, adj: Tensor,
                class_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        r"""Training loss on (dataset, graph) pairs.

        Returns:
            ``{'loss': recon + beta * kl, 'recon': mean negative log-likelihood,
            'kl': mean KL}`` (scalars).
        """
        mu, logvar = self.encode(x, class_mask)
        if mu.size(0) != node_type.size(0):
            raise ValueError(f'{mu.size(0)} dataset(s) for {node_type.size(0)} graph(s): '
                             'give one dataset per graph')
        z = self.reparametrize(mu, logvar)
        recon = self.neg_log_likelihood(z, node_type, adj).mean()
        kl = self.kl_loss(mu, logvar)
        return {'loss': recon + self.beta * kl, 'recon': recon, 'kl': kl}

    @torch.no_grad()
    def sample(self, x: Tensor, num_samples: int, class_mask: Optional[Tensor] = None,
               greedy: bool = False, use_mean: bool = False,
               generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        r"""Generates graphs for one dataset (or each dataset of a batch).

        Args:
            x (torch.Tensor): ``[num_classes, num_sample, in_channels]`` or
                ``[B, C_max, num_sample, in_channels]``.
            num_samples (int): Graphs per dataset.
            class_mask (torch.Tensor, optional): ``[B, C_max]``.
            greedy (bool, optional): Greedy decoding of each latent vector.
            use_mean (bool, optional): Decode :math:`\mu` instead of sampling :math:`z`
                from the posterior.
            generator (torch.Generator, optional): Random source.

        Returns:
            ``node_type`` ``[B * num_samples, n]`` and ``adj`` ``[B * num_samples, n, n]``,
            the graphs of dataset ``b`` at rows ``b * num_samples ... (b + 1) * num_samples - 1``.
        """
        if num_samples < 1:
            raise ValueError(f"'num_samples' must be >= 1, got {num_samples}")
        mu, logvar = self.encode(x, class_mask)
        mu = mu.repeat_interleave(num_samples, 0)
        logvar = logvar.repeat_interleave(num_samples, 0)
        z = mu if use_mean else sample_latent(mu, logvar, generator)
        return self.decoder.sample(z, greedy=greedy, generator=generator)

    def sample_batch(self, x: Tensor, num_samples: int, **kwargs: Any) -> Batch:
        r""":meth:`sample` as a :class:`~torch_geometric.data.Batch`."""
        return dense_to_batch(*self.sample(x, num_samples, **kwargs))

    def sample_archs(self, x: Tensor, num_samples: int, **kwargs: Any) -> List[Optional[str]]:
        r""":meth:`sample` as architecture strings, ``None`` for invalid graphs."""
        node_type, adj = self.sample(x, num_samples, **kwargs)
        return self.space.from_dense_batch(node_type, adj)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, '
                f"{self.latent_channels}, space='{self.space.name}', beta={self.beta}, "
                f'constrained={self.decoder.constrained})')
