r"""MetaD2A's meta-performance predictor f(dataset, graph) -> accuracy, and its graph-only
form with a NASLib-style ``fit`` / ``query`` interface."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Module
from torch_geometric.data import Batch

from d2a.graphs.dense import archs_to_dense, dense_to_batch
from d2a.graphs.encoders import GRAPH_ENCODERS
from d2a.graphs.space import SearchSpace, get_space
from d2a.graphs.vae import GraphVAE, kl_divergence
from d2a.sets.encoders import SET_ENCODERS


class MetaPredictor(Module):
    r"""The meta-performance predictor of MetaD2A (`"Rapid Neural Architecture Search by
    Learning to Generate Graphs from Datasets" <https://arxiv.org/abs/2107.00860>`_).

    The dataset vector of a set encoder and the graph vector of a graph encoder are
    concatenated and mapped to one number by ``Linear -> tanh -> Linear`` (no batch norm, so
    batches of one train). The network predicts standardized targets; the target mean and
    standard deviation are buffers (:meth:`set_target_stats`), so :meth:`forward` returns
    accuracies in the units of the training targets. With ``use_dataset=False`` there is no
    set encoder and the model is a plain graph predictor (:meth:`fit` / :meth:`query`).

    Args:
        in_channels (int): Size of the dataset's feature vectors (MetaD2A: 512).
        hidden_channels (int): Width of the set encoder (MetaD2A: 56).
        graph_hidden_channels (int): Node-state size of the graph encoder (MetaD2A: 512).
        out_channels (int): Size of the dataset and graph vectors (MetaD2A: 56).
        mlp_channels (int): Hidden size of the head (MetaD2A: 512).
        space (SearchSpace or str): The search space of the graphs.
        num_heads (int, optional): Attention heads of the set encoder. (default: :obj:`4`)
        num_blocks (int, optional): SABs per level of the set encoder. (default: :obj:`2`)
        graph_encoder (str, optional): ``'dag_gru'`` or ``'gin'``. (default: :obj:`'dag_gru'`)
        set_encoder (str, optional): ``'set_transformer'`` or ``'deepsets'``.
            (default: :obj:`'set_transformer'`)
        use_dataset (bool, optional): Condition on a dataset. (default: :obj:`True`)

    Shapes:
        - **input:** ``x`` ``[B, C_max, num_sample, in_channels]`` (one dataset per graph),
          or ``[num_classes, num_sample, in_channels]`` (one dataset for every graph), or
          ``None`` when ``use_dataset=False``; ``batch`` a
          :class:`~torch_geometric.data.Batch` of ``B`` graphs; ``class_mask`` ``[B, C_max]``
        - **output:** ``[B]``
    """
    def __init__(self, in_channels: int = 512, hidden_channels: int = 56,
                 graph_hidden_channels: int = 512, out_channels: int = 56,
                 mlp_channels: int = 512, space: Union[str, SearchSpace] = 'nb201',
                 num_heads: int = 4, num_blocks: int = 2, graph_encoder: str = 'dag_gru',
                 set_encoder: str = 'set_transformer', use_dataset: bool = True):
        super().__init__()
        self.space = get_space(space) if isinstance(space, str) else space
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.graph_hidden_channels = graph_hidden_channels
        self.out_channels = out_channels
        self.mlp_channels = mlp_channels
        self.use_dataset = use_dataset
        self.graph_encoder_name = graph_encoder
        self.set_encoder: Optional[Module] = None
        if use_dataset:
            make_set = SET_ENCODERS.get(set_encoder, "'set_encoder'")
            self.set_encoder = make_set(in_channels, hidden_channels, out_channels, num_heads,
                                        num_blocks)
        make_graph = GRAPH_ENCODERS.get(graph_encoder, "'graph_encoder'")
        self.graph_encoder = make_graph(self.space.num_node_types, graph_hidden_channels,
                                        out_channels)
        head_in = 2 * out_channels if use_dataset else out_channels
        self.lin1 = Linear(head_in, mlp_channels)
        self.lin2 = Linear(mlp_channels, 1)
        self.register_buffer('y_mean', torch.zeros(()))
        self.register_buffer('y_std', torch.ones(()))
        #: Plain-data configuration; the registry sets it for named models.
        self.config: Dict[str, Any] = {}

    def reset_parameters(self) -> None:
        if self.set_encoder is not None:
            self.set_encoder.reset_parameters()
        self.graph_encoder.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self.y_mean.zero_()
        self.y_std.fill_(1.0)

    # ---------------------------------------------------------------- targets
    def set_target_stats(self, y: Union[Tensor, Sequence[float]]) -> None:
        r"""Stores the mean and standard deviation of the training targets."""
        y = torch.as_tensor(y, dtype=torch.float).view(-1)
        if y.numel() == 0 or not bool(torch.isfinite(y).all()):
            raise ValueError('targets must be a non-empty set of finite numbers')
        std = float(y.std()) if y.numel() > 1 else 0.0
        self.y_mean.fill_(float(y.mean()))
        self.y_std.fill_(std if std > 1e-8 else 1.0)

    def standardize(self, y: Tensor) -> Tensor:
        return (y.to(self.y_mean.device, torch.float) - self.y_mean) / self.y_std

    def unstandardize(self, y: Tensor) -> Tensor:
        return y * self.y_std + self.y_mean

    # ---------------------------------------------------------------- forward
    def _dataset_vector(self, x: Optional[Tensor], class_mask: Optional[Tensor],
                        num_graphs: int) -> Optional[Tensor]:
        if not self.use_dataset:
            return None
        if x is None:
            raise ValueError('this predictor conditions on a dataset (use_dataset=True): '
                             "give 'x'")
        d = self.set_encoder(x, class_mask)
        if d.size(0) == 1 and num_graphs != 1:
            d = d.expand(num_graphs, -1)
        if d.size(0) != num_graphs:
            raise ValueError(f'{d.size(0)} dataset(s) for {num_graphs} graph(s): give one '
                             'dataset per graph or a single dataset')
        return d

    def forward(self, x: Optional[Tensor], batch: Batch, class_mask: Optional[Tensor] = None,
                standardized: bool = False) -> Tensor:
        r"""Predicted accuracy of each graph on its dataset, ``[B]`` (standardized units
        when ``standardized=True``)."""
        h = self.graph_encoder(batch)
        return self.forward_head(h, self._dataset_vector(x, class_mask, h.size(0)),
                                 standardized)

    def encode_dataset(self, x: Optional[Tensor],
                       class_mask: Optional[Tensor] = None) -> Optional[Tensor]:
        r"""Dataset vectors, ``[B, out]`` for ``x`` ``[B, C, S, F]`` or ``[1, out]`` for
        ``[C, S, F]`` (``None`` in graph-only mode)."""
        if not self.use_dataset:
            return None
        return self._dataset_vector(x, class_mask, x.size(0) if x is not None and x.dim() == 4 else 1)

    def forward_head(self, h: Tensor, d: Optional[Tensor] = None,
                     standardized: bool = False) -> Tensor:
        r"""Predictions from graph vectors ``h`` (``[B, out]``, :attr:`graph_encoder`) and
        dataset vectors ``d`` (``[B, out]`` or ``[1, out]``, :attr:`set_encoder`; ``None``
        in graph-only mode), ``[B]``. Lets a caller encode many graphs once and score them
        against several draws of a dataset."""
        if d is not None:
            h = torch.cat([d.expand(h.size(0), -1), h], dim=-1)
        out = self.lin2(torch.tanh(self.lin1(h))).view(-1)
        return out if standardized else self.unstandardize(out)

    def loss(self, x: Optional[Tensor], batch: Batch, y: Tensor,
             class_mask: Optional[Tensor] = None) -> Tensor:
        r"""Mean squared error on standardized targets."""
        pred = self(x, batch, class_mask, standardized=True)
        return F.mse_loss(pred, self.standardize(y).view(-1))

    # ---------------------------------------------------------------- graph-only predictor
    def _check_graph_only(self) -> None:
        if self.use_dataset:
            raise ValueError('fit/query need a graph-only predictor (use_dataset=False)')

    def pretrain(self, archs: Sequence[str], epochs: int = 20, batch_size: int = 64,
                 lr: float = 1e-3, beta: float = 0.005, seed: int = 0,
                 verbose: bool = False) -> float:
        r"""Pre-trains the graph encoder as the encoder of a graph VAE on unlabelled
        architectures (arch2vec style), through a :class:`~d2a.graphs.vae.GraphVAE` whose
        heads and decoder are sized by :attr:`out_channels` and discarded afterwards.

        Returns the final epoch's mean loss.
        """
        from tqdm import tqdm

        device = self.y_mean.device
        gen = torch.Generator().manual_seed(seed)
        # The graph vectors (out_channels wide) are the VAE's inputs, its latent size and its
        # decoder's width.
        width = self.out_channels
        vae = GraphVAE(self.graph_encoder, width, width, self.space, width, beta=beta).to(device)
        opt = torch.optim.Adam(vae.parameters(), lr=lr)
        node_type, adj = archs_to_dense(self.space, archs)
        self.train()
        vae.train()
        last = math.nan
        for _ in tqdm(range(epochs), desc='pretrain', disable=not verbose):
            total, count = 0.0, 0
            for idx in torch.randperm(len(archs), generator=gen).split(batch_size):
                nt, a = node_type[idx].to(device), adj[idx].to(device)
                mu, logvar = vae.encode(dense_to_batch(nt, a))
                z = vae.reparametrize(mu, logvar)
                loss = (vae.neg_log_likelihood(z, nt, a) + beta * kl_divergence(mu, logvar)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
                count += idx.numel()
            last = total / count
        return last

    def fit(self, archs: Sequence[str], accs: Union[Sequence[float], np.ndarray, Tensor],
            epochs: Optional[int] = None, batch_size: int = 32, lr: float = 1e-3,
            weight_decay: float = 1e-4, pretrain_archs: Optional[Sequence[str]] = None,
            pretrain_epochs: int = 20, seed: int = 0, verbose: bool = False) -> float:
        r"""Trains the graph-only predictor on ``(architecture string, accuracy)`` pairs.

        Args:
            archs: architecture strings of the space.
            accs: their accuracies (any units; predictions come back in the same units).
            epochs (int, optional): Passes over the data; the learning rate follows a cosine
                schedule to zero. By default at least 200 and at least 2,000 optimizer
                steps (500 epochs for 100 architectures, 200 for 1,000).
            batch_size (int, optional): (default: :obj:`32`)
            lr (float, optional): Adam learning rate. (default: :obj:`1e-3`)
            weight_decay (float, optional): Adam weight decay. (default: :obj:`1e-4`)
            pretrain_archs: unlabelled architectures to pre-train the graph encoder on first
                (:meth:`pretrain`); ``None`` skips pre-training.
            pretrain_epochs (int, optional): (default: :obj:`20`)
            seed (int, optional): Seeds the initialisation and the batch order (the
                caller's random state is left as it was). (default: :obj:`0`)
            verbose (bool, optional): Show progress bars.

        Returns:
            The final epoch's mean training loss (standardized units).
        """
        self._check_graph_only()
        y = torch.as_tensor(np.asarray(accs, dtype=np.float32)).view(-1)
        if y.numel() != len(archs):
            raise ValueError(f'fit got {len(archs)} architectures and {y.numel()} accuracies')
        if len(archs) == 0:
            raise ValueError('fit needs at least one architecture')
        # The seed governs initialisation and batch order without touching the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._fit(archs, y, epochs, batch_size, lr, weight_decay, pretrain_archs,
                             pretrain_epochs, seed, verbose)

    def _fit(self, archs: Sequence[str], y: Tensor, epochs: Optional[int], batch_size: int,
             lr: float, weight_decay: float, pretrain_archs: Optional[Sequence[str]],
             pretrain_epochs: int, seed: int, verbose: bool) -> float:
        from tqdm import tqdm

        self.reset_parameters()
        if pretrain_archs is not None and len(pretrain_archs) > 0:
            self.pretrain(pretrain_archs, epochs=pretrain_epochs, seed=seed, verbose=verbose)
        device = self.y_mean.device
        self.set_target_stats(y)
        node_type, adj = archs_to_dense(self.space, archs)
        target = self.standardize(y)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        per_epoch = math.ceil(len(archs) / batch_size)
        if epochs is None:
            epochs = max(200, math.ceil(2000 / per_epoch))
        steps = epochs * per_epoch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        self.train()
        last = math.nan
        for _ in tqdm(range(epochs), desc='fit', disable=not verbose):
            total = 0.0
            for idx in torch.randperm(len(archs), generator=gen).split(batch_size):
                batch = dense_to_batch(node_type[idx].to(device), adj[idx].to(device))
                loss = F.mse_loss(self(None, batch, standardized=True), target[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * idx.numel()
            last = total / len(archs)
        self.eval()
        return last

    @torch.no_grad()
    def query(self, archs: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        r"""Predicted accuracies of architecture strings (graph-only mode), ``[len(archs)]``."""
        self._check_graph_only()
        was_training = self.training
        self.eval()
        node_type, adj = archs_to_dense(self.space, archs)
        device = self.y_mean.device
        out = [self(None, dense_to_batch(node_type[i:i + batch_size].to(device),
                                         adj[i:i + batch_size].to(device))).cpu()
               for i in range(0, len(archs), batch_size)]
        self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, '
                f'{self.graph_hidden_channels}, {self.out_channels}, {self.mlp_channels}, '
                f"space='{self.space.name}', graph_encoder={self.graph_encoder_name!r}, "
                f'use_dataset={self.use_dataset})')
