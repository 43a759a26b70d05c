r"""Pictures of a training run and of what the models learned, saved as PNG files.

* :func:`plot_training_curves` -- losses, validation metrics and learning rate per epoch,
  from a metrics log (:mod:`d2a.training.log`);
* :func:`plot_predictions` -- predicted against true accuracy on validation tasks, with
  Spearman's and Pearson's correlation in the title;
* :func:`plot_embedding` -- a PCA map of dataset vectors (one point per task), coloured by
  a label such as the source dataset or the train/validation split;
* :func:`plot_search_quality` -- the percentile of each method's top-1 architecture on every
  held-out task (``bench/search_quality.py``).

matplotlib is imported inside the functions, with the non-interactive ``Agg`` backend.
Files are written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from d2a.utils.atomic import PathLike, atomic_path
from d2a.metrics import pearson, spearman




def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != '.png':
        raise ValueError(f'plot file {path} must end in .png')
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=120)
    plt.close(fig)
    return path


def _series(records: List[Dict[str, Any]], key: str):
    pts = [(r['epoch'], r[key]) for r in records
           if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_training_curves(log: Union[PathLike, List[Dict[str, Any]]], out: PathLike,
                         title: Optional[str] = None) -> Path:
    r"""Plots a metrics log: losses (left), validation metrics (middle), learning rate
    (right), against the epoch.

    Args:
        log (str, Path or list): a metrics log file or its records.
        out (str or Path): the PNG file to write.
        title (str, optional): the figure title (default: the log's file name).
    """
    from d2a.training.log import read_metrics_log
    records = read_metrics_log(log) if isinstance(log, (str, Path)) else list(log)
    records = [r for r in records if 'epoch' in r]
    if not records:
        raise ValueError(f'metrics log {log if isinstance(log, (str, Path)) else ""} has no epoch '
                         'records to plot')
    keys = sorted({k for r in records for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)} - {'epoch', 'time'})
    loss_keys = [k for k in keys if k.endswith('loss')]
    metric_keys = [k for k in keys if k not in loss_keys and k != 'lr' and k.startswith('val_')]
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, group, ylabel in ((axes[0], loss_keys, 'loss'), (axes[1], metric_keys, 'value'),
                              (axes[2], ['lr'] if 'lr' in keys else [], 'learning rate')):
        for k in group:
            xs, ys = _series(records, k)
            ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, markersize=3,
                    label=k.replace('_', ' '))
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if group:
            ax.legend(fontsize=9)
        else:
            ax.text(0.5, 0.5, 'not logged', ha='center', va='center', transform=ax.transAxes)
    axes[0].set_title('losses')
    axes[1].set_title('validation metrics')
    axes[2].set_title('learning rate')
    if 'lr' in keys and all(r.get('lr', 1) > 0 for r in records):
        axes[2].set_yscale('log')
    fig.suptitle(title or (Path(log).name if isinstance(log, (str, Path)) else 'training'))
    return _save(fig, out)


def plot_predictions(true: Sequence[float], pred: Sequence[float], out: PathLike,
                     groups: Optional[Sequence[str]] = None, title: str = 'validation tasks',
                     unit: str = 'accuracy (%)') -> Path:
    r"""Scatter of predicted against true accuracy with the ``y = x`` line.

    Args:
        true (sequence): true accuracies.
        pred (sequence): predicted accuracies, same length.
        out (str or Path): the PNG file to write.
        groups (sequence of str, optional): a label per point (e.g. the task) for colours.
        title (str): the title, followed by the correlations.
        unit (str): the axis unit.
    """
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f'plot_predictions needs as many predictions as true values (got '
                         f'{pred.size} and {true.size}, at least one)')
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    if groups is not None:
        names = sorted(set(groups))
        cmap = plt.get_cmap('tab10' if len(names) <= 10 else 'tab20')
        for i, name in enumerate(names):
            sel = np.asarray([g == name for g in groups])
            ax.scatter(true[sel], pred[sel], s=14, alpha=0.8, color=cmap(i % cmap.N),
                       label=name if len(names) <= 12 else None)
        if len(names) <= 12:
            ax.legend(fontsize=8, title='task')
    else:
        ax.scatter(true, pred, s=14, alpha=0.8)
    lo = float(min(true.min(), pred.min()))
    hi = float(max(true.max(), pred.max()))
    pad = 0.05 * (hi - lo) or 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color='grey', linestyle='--', linewidth=1,
            label=None)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f'true {unit}')
    ax.set_ylabel(f'predicted {unit}')
    ax.grid(True, alpha=0.3)
    ax.set_title(f'{title}\nSpearman {spearman(true, pred):.3f}, Pearson '
                 f'{pearson(true, pred):.3f}, n = {true.size}')
    return _save(fig, out)


def plot_search_quality(rows: Sequence[Dict[str, Any]], out: PathLike,
                        methods: Optional[Sequence[str]] = None,
                        title: str = 'top-1 architecture per held-out task') -> Path:
    r"""Percentile of each method's top-1 pick among a task's labelled architectures: one
    column per task plus a ``mean`` column, one colour per method, one small dot per seed
    and a bar at the mean over seeds.

    Args:
        rows (sequence of dict): records with ``'task'``, ``'method'`` and ``'percentile'``
            (the ``rows`` of ``bench/search_quality.py``'s JSON).
        out (str or Path): the PNG file to write.
        methods (sequence of str, optional): methods to show, in order (default: all, in
            order of appearance).
        title (str): the title.
    """
    rows = [r for r in rows if methods is None or r['method'] in methods]
    if not rows:
        raise ValueError('plot_search_quality needs at least one row')
    for i, r in enumerate(rows):
        for key in ('task', 'method', 'percentile'):
            if key not in r:
                raise ValueError(f'search-quality row {i} has no {key!r} field')
    methods = list(methods) if methods is not None else list(dict.fromkeys(r['method']
                                                                           for r in rows))
    tasks = list(dict.fromkeys(r['task'] for r in rows)) + ['mean']
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(tasks) + 2), 4.5))
    cmap = plt.get_cmap('tab10')
    width = 0.8 / len(methods)
    for m, method in enumerate(methods):
        color = cmap(m % cmap.N)
        for t, task in enumerate(tasks):
            vals = [float(r['percentile']) for r in rows if r['method'] == method
                    and (task == 'mean' or r['task'] == task)]
            if not vals:
                continue
            x = t - 0.4 + (m + 0.5) * width
            ax.scatter(np.full(len(vals), x), vals, s=8, color=color, alpha=0.5, linewidths=0)
            ax.hlines(np.mean(vals), x - width / 2, x + width / 2, color=color, linewidth=2.5,
                      label=method if t == 0 else None)
    ax.axvline(len(tasks) - 1.5, color='grey', linewidth=0.8)
    ax.axhline(95, color='grey', linestyle=':', linewidth=1)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha='right', fontsize=8)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("percentile among the task's labelled cells")
    ax.set_title(title)
    ax.grid(True, axis='y', alpha=0.3)
    ax.legend(fontsize=8, loc='lower left', ncol=min(3, len(methods)))
    return _save(fig, out)


def pca_2d(vectors: np.ndarray) -> tuple:
    r"""Projects ``[n, d]`` vectors on their first two principal components.

    Returns ``(points [n, 2], explained variance ratio [2])``.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f'PCA needs at least two vectors [n, d], got shape {list(x.shape)}')
    x = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = min(2, s.size)
    points = np.zeros((x.shape[0], 2))
    points[:, :k] = u[:, :k] * s[:k]
    total = float((s ** 2).sum())
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = s[:k] ** 2 / total
    return points, ratio


def plot_embedding(vectors: np.ndarray, labels: Sequence[str], out: PathLike,
                   names: Optional[Sequence[str]] = None,
                   title: str = 'dataset embeddings (PCA)') -> Path:
    r"""PCA map of dataset vectors coloured by ``labels``.

    Args:
        vectors (numpy.ndarray): ``[n, d]`` one vector per task.
        labels (sequence of str): a category per vector (colour and legend).
        out (str or Path): the PNG file to write.
        names (sequence of str, optional): a name per point, written next to it when there
            are at most 40 points.
        title (str): the title.
    """
    vectors = np.asarray(vectors)
    if len(labels) != len(vectors):
        raise ValueError(f'plot_embedding needs a label per vector ({len(vectors)} vectors, '
                         f'{len(labels)} labels)')
    points, ratio = pca_2d(vectors)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    cats = sorted(set(labels))
    cmap = plt.get_cmap('tab10' if len(cats) <= 10 else 'tab20')
    for i, cat in enumerate(cats):
        sel = np.asarray([lab == cat for lab in labels])
        ax.scatter(points[sel, 0], points[sel, 1], s=28, alpha=0.85, color=cmap(i % cmap.N),
                   label=f'{cat} ({int(sel.sum())})')
    if names is not None and len(names) <= 40:
        for (x, y), name in zip(points, names):
            ax.annotate(str(name), (x, y), fontsize=7, alpha=0.8, xytext=(3, 3),
                        textcoords='offset points')
    ax.set_xlabel(f'PC 1 ({100 * ratio[0]:.1f}% of variance)')
    ax.set_ylabel(f'PC 2 ({100 * ratio[1]:.1f}% of variance)')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(f'{title}, {len(vectors)} tasks')
    return _save(fig, out)


def embed_tasks(checkpoint: PathLike, db: PathLike, kind: str = 'predictor',
                split: Optional[str] = None, seed: int = 0) -> Dict[str, Any]:
    r"""Dataset vectors of a meta-database's tasks from a checkpoint's set encoder.

    Args:
        checkpoint (str or Path): a checkpoint file or folder.
        db (str or Path): the meta-database.
        kind (str): which model's set encoder (``'predictor'`` or ``'generator'``).
        split (str, optional): only tasks of this database split.
        seed (int): seeds the feature draw.

    Returns:
        ``{'vectors': [n, d] array, 'names', 'sources', 'splits'}``; ``splits`` is
        ``'train'`` / ``'val'`` for meta-training tasks (the run's split) and
        ``'meta-test'`` otherwise.
    """
    import torch

    from d2a.db import MetaDatabase
    from d2a.registry import load_model
    loaded = load_model(checkpoint, kind)
    model, ckpt = loaded.model, loaded.checkpoint
    encoder = model.set_encoder
    if encoder is None:
        raise ValueError(f'the {kind} in {checkpoint} has no set encoder (graph-only)')
    num_sample = int(ckpt.train_config.get('num_sample', 20))
    val = set(ckpt.extra.get('val_tasks', []))
    rng = np.random.default_rng(seed)
    vectors, names, sources, splits = [], [], [], []
    with MetaDatabase.open(db) as database:
        if database.feature_dim != ckpt.feature_extractor.get('dim'):
            raise ValueError(f'{db} holds {database.feature_dim}-d features, the checkpoint '
                             f"{checkpoint} expects {ckpt.feature_extractor.get('dim')}-d")
        tasks = database.tasks(split)
        if not tasks:
            raise ValueError(f'{db} has no task{f" in split {split!r}" if split else ""}')
        with torch.no_grad():
            for t in tasks:
                x = torch.from_numpy(database.task_features(t, num_sample, rng, replace=True))
                vectors.append(encoder(x).view(-1).numpy())
                names.append(t.name)
                sources.append(t.source)
                splits.append(('val' if t.name in val else 'train')
                              if t.split == 'meta-train' else t.split)
    return {'vectors': np.stack(vectors), 'names': names, 'sources': sources, 'splits': splits}
