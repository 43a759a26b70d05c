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


HEADS = ('concat', 'residual')
TARGETS = ('global', 'task')
#: Number of :func:`dataset_statistics`.
NUM_STATISTICS = 4


@torch.no_grad()
def dataset_statistics(x: Tensor, class_mask: Optional[Tensor] = None) -> Tensor:
    r"""Descriptors of datasets computed from their sampled feature sets: the log number of
    classes, the nearest-class-mean accuracy (leave-one-out, within the sample), the log
    ratio of between-class to within-class variance, and the log mean within-class variance.

    They describe how many classes a task has and how separable its classes are in feature
    space -- properties that decide which networks fit a task but that a set encoder
    trained on few tasks may not extract by itself.

    Shapes:
        - **input:** ``x`` ``[B, C_max, S, F]`` (or ``[C, S, F]``), ``class_mask``
          ``[B, C_max]``
        - **output:** ``[B, 4]``
    """
    if x.dim() == 3:
        x = x.unsqueeze(0)
        class_mask = None if class_mask is None else class_mask.view(1, -1)
    b, c, s, _ = x.shape
    mask = (torch.ones(b, c, dtype=torch.bool, device=x.device) if class_mask is None
            else class_mask.to(x.device, torch.bool))
    x = x.float()
    m = mask.float()
    num = m.sum(1).clamp_min(1)
    centroid = x.mean(2)                                           # [B, C, F]
    within = ((x - centroid.unsqueeze(2)) ** 2).sum(-1).mean(2)    # [B, C]
    within = (within * m).sum(1) / num                             # [B]
    grand = (centroid * m.unsqueeze(-1)).sum(1) / num.unsqueeze(-1)
    between = (((centroid - grand.unsqueeze(1)) ** 2).sum(-1) * m).sum(1) / num
    # Leave-one-out nearest class mean: a sample's own class mean without itself.
    flat = x.reshape(b, c * s, -1)                                 # [B, C*S, F]
    dist = torch.cdist(flat, centroid)                             # [B, C*S, C]
    own = torch.arange(c, device=x.device).repeat_interleave(s)
    loo = centroid.unsqueeze(2) * (s / max(s - 1, 1)) - x / max(s - 1, 1)  # [B, C, S, F]
    dist_own = (flat - loo.reshape(b, c * s, -1)).norm(dim=-1)      # [B, C*S]
    dist = dist.scatter(2, own.view(1, -1, 1).expand(b, -1, 1), dist_own.unsqueeze(-1))
    dist = dist.masked_fill(~mask.unsqueeze(1), float('inf'))
    hit = (dist.argmin(-1) == own.view(1, -1)).float().view(b, c, s).mean(2)
    ncm = (hit * m).sum(1) / num
    eps = 1e-6
    return torch.stack([num.log(), ncm, (between + eps).log() - (within + eps).log(),
                        (within + eps).log()], dim=-1)


class MetaPredictor(Module):
    r"""The meta-performance predictor of MetaD2A (`"Rapid Neural Architecture Search by
    Learning to Generate Graphs from Datasets" <https://arxiv.org/abs/2107.00860>`_).

    The dataset vector of a set encoder and the graph vector of a graph encoder are
    concatenated and mapped to one number by ``Linear -> tanh -> Linear`` (no batch norm, so
    batches of one train). The network predicts standardized targets; the target mean and
    standard deviation are buffers (:meth:`set_target_stats`), so :meth:`forward` returns
    accuracies in the units of the training targets. With ``use_dataset=False`` there is no
    set encoder and the model is a plain graph predictor (:meth:`fit` / :meth:`query`).

    Beyond MetaD2A, three options make its ranking follow the dataset:

    * ``head='residual'``: a dataset-independent *prior* over graphs (the MLP on the graph
      vector alone) plus a dataset-conditioned residual, the product of the graph vector and
      a linear map of the dataset vector, initialised at zero. For a dataset unlike any seen
      the prior -- the population ranking -- remains.
    * ``target='task'``: the head predicts the accuracy standardised *within the task*
      (what ranks cells on that dataset), and two linear heads on the dataset vector
      predict the task's mean and log standard deviation (in globally standardised units),
      so :meth:`forward` still returns accuracies: ``mean + std * z``.
    * ``descriptors=True``: :func:`dataset_statistics` of the sampled features (class
      count, separability) are mapped into the dataset vector.

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
        head (str, optional): ``'concat'`` (MetaD2A) or ``'residual'``.
            (default: :obj:`'concat'`)
        target (str, optional): ``'global'`` (MetaD2A: accuracy standardised over all
            tasks) or ``'task'``. (default: :obj:`'global'`)
        descriptors (bool, optional): Add :func:`dataset_statistics` to the dataset vector.
            (default: :obj:`False`)

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
                 set_encoder: str = 'set_transformer', use_dataset: bool = True,
                 head: str = 'concat', target: str = 'global', descriptors: bool = False):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"'head' must be one of {', '.join(HEADS)}, got {head!r}")
        if target not in TARGETS:
            raise ValueError(f"'target' must be one of {', '.join(TARGETS)}, got {target!r}")
        if not use_dataset and (head != 'concat' or target != 'global' or descriptors):
            raise ValueError("a graph-only predictor (use_dataset=False) takes neither "
                             "head='residual', target='task' nor descriptors")
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
        self.head = head
        self.target = target
        self.descriptors = descriptors
        head_in = 2 * out_channels if use_dataset and head == 'concat' else out_channels
        self.lin1 = Linear(head_in, mlp_channels)
        self.lin2 = Linear(mlp_channels, 1)
        # Optional parts (absent from MetaD2A-style checkpoints).
        self.lin_desc = Linear(NUM_STATISTICS, out_channels) if descriptors else None
        self.lin_residual = (Linear(out_channels, out_channels, bias=False)
                             if head == 'residual' else None)
        self.lin_level = Linear(out_channels, 2) if target == 'task' else None
        if self.lin_residual is not None:  # starts as the prior alone
            torch.nn.init.zeros_(self.lin_residual.weight)
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
        for lin in (self.lin_desc, self.lin_level):
            if lin is not None:
                lin.reset_parameters()
        if self.lin_residual is not None:  # starts as the prior alone
            torch.nn.init.zeros_(self.lin_residual.weight)
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
        if self.lin_desc is not None:
            d = d + self.lin_desc(dataset_statistics(x, class_mask).to(d.dtype))
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
        against several draws of a dataset.

        With ``standardized=True`` the output is the head's own unit: accuracy standardised
        over all training targets (``target='global'``) or within the task
        (``target='task'``); either ranks the graphs of one dataset like the accuracy."""
        z = self.score(h, d)
        if self.target == 'global':
            return z if standardized else self.unstandardize(z)
        if standardized:
            return z
        mean, log_std = self.level(d).unbind(-1)
        return self.unstandardize(mean) + self.y_std * log_std.exp() * z

    def score(self, h: Tensor, d: Optional[Tensor] = None) -> Tensor:
        r"""The head's output (standardised units, see :meth:`forward_head`), ``[B]``."""
        if d is not None:
            d = d.expand(h.size(0), -1)
        if self.head == 'concat':
            inp = h if d is None else torch.cat([d, h], dim=-1)
            return self.lin2(torch.tanh(self.lin1(inp))).view(-1)
        prior = self.lin2(torch.tanh(self.lin1(h))).view(-1)
        return prior + (self.lin_residual(d) * h).sum(-1)

    def prepare_graphs(self, h: Tensor) -> Dict[str, Tensor]:
        r"""The dataset-independent part of the head for graph vectors ``h`` ``[B, out]``,
        computed once to score the same graphs against many datasets with
        :meth:`forward_prepared` (the head's first layer splits into a graph and a dataset
        term)."""
        if self.head == 'concat' and self.use_dataset:
            w_h = self.lin1.weight[:, self.out_channels:]
            return {'h': h, 'pre': torch.nn.functional.linear(h, w_h, self.lin1.bias)}
        return {'h': h, 'prior': self.lin2(torch.tanh(self.lin1(h))).view(-1)}

    def forward_prepared(self, prepared: Dict[str, Tensor], d: Optional[Tensor] = None,
                         standardized: bool = False) -> Tensor:
        r""":meth:`forward_head` of the graphs of :meth:`prepare_graphs` on one dataset
        vector ``d`` (``[1, out]``), ``[B]``; equal to ``forward_head(h, d)``."""
        h = prepared['h']
        if 'pre' in prepared:
            w_d = self.lin1.weight[:, :self.out_channels]
            z = self.lin2(torch.tanh(prepared['pre'] + d.view(1, -1) @ w_d.t())).view(-1)
        else:
            z = prepared['prior']
            if self.head == 'residual':
                z = z + h @ self.lin_residual(d.view(1, -1)).view(-1)
        if self.target == 'global':
            return z if standardized else self.unstandardize(z)
        if standardized:
            return z
        mean, log_std = self.level(d.view(1, -1)).unbind(-1)
        return self.unstandardize(mean) + self.y_std * log_std.exp() * z

    def level(self, d: Tensor) -> Tensor:
        r"""``[B, 2]``: a task's predicted mean accuracy and log standard deviation, in
        globally standardised units (``target='task'`` only)."""
        if self.lin_level is None:
            raise ValueError("level() needs a predictor with target='task'")
        return self.lin_level(d)

    def loss(self, x: Optional[Tensor], batch: Batch, y: Tensor,
             class_mask: Optional[Tensor] = None) -> Tensor:
        r"""Mean squared error on standardized targets (``target='global'``; the
        meta-training objective handles the other options)."""
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
                f'use_dataset={self.use_dataset}, head={self.head!r}, '
                f'target={self.target!r}, descriptors={self.descriptors})')
