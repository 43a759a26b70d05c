r"""Building a meta-database from raw image sources: images -> features -> tasks
(``d2a db build``), and the features of a new dataset computed the way a database's were."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from d2a.datasets.source import ImageSet, ImageSource
from d2a.datasets.tasks import Task, sample_tasks, whole_source_task
from d2a.db.database import MetaDatabase
from d2a.utils.atomic import PathLike
from d2a.utils.progress import ProgressLog
from d2a.features.extractor import (FeatureExtractor, channel_stats, create_extractor,
                                    extract_features, extractor_to_bytes, images_to_tensor,
                                    load_extractor, load_extractor_file)


@dataclass
class LoadedSource:
    r"""A source's images at the database's size, with their channel statistics."""
    name: str
    source: ImageSource
    images: ImageSet
    mean: List[float]
    std: List[float]

    def tensor(self, in_channels: Optional[int] = None) -> torch.Tensor:
        return images_to_tensor(self.images.images, self.mean, self.std, in_channels)


def load_source(source: ImageSource, image_size: int, name: Optional[str] = None) -> LoadedSource:
    r"""Reads a source at ``image_size`` and computes its per-channel mean and std."""
    images = source.load(image_size)
    mean, std = channel_stats(images.images)
    return LoadedSource(name or source.name, source, images, mean, std)


def source_features(extractor: FeatureExtractor, loaded: LoadedSource, batch_size: int = 256,
                    device: Optional[Union[str, torch.device]] = None,
                    progress: bool = False) -> Dict[str, np.ndarray]:
    r"""Class name -> ``[n_images, out_channels]`` features of a loaded source, its images
    normalised by its own channel statistics."""
    feats = extract_features(extractor, loaded.tensor(extractor.in_channels), batch_size, device,
                             progress)
    return {cls: feats[loaded.images.labels == i] for i, cls in enumerate(loaded.images.classes)}


def add_source_features(db: MetaDatabase, loaded: LoadedSource, extractor: FeatureExtractor,
                        batch_size: int = 256, device: Optional[Union[str, torch.device]] = None,
                        progress: bool = False) -> None:
    r"""Extracts and stores the features of every class of a loaded source."""
    db.add_source(loaded.name, loaded.source.spec(), loaded.mean, loaded.std,
                  loaded.images.num_channels)
    for cls, feats in source_features(extractor, loaded, batch_size, device, progress).items():
        db.add_class_features(loaded.name, cls, feats)


def source_features_like_db(db: Union[MetaDatabase, PathLike],
                            source: Union[ImageSource, str], batch_size: int = 256,
                            device: Optional[Union[str, torch.device]] = None,
                            progress: bool = False) -> Dict[str, np.ndarray]:
    r"""Features of a new dataset computed exactly as the database's: the extractor rebuilt
    from the database's metadata (name, config, embedded weights), images resized to its
    ``image_size`` and normalised by the dataset's own channel statistics.

    Args:
        db (MetaDatabase or str): the database (or its path).
        source (ImageSource or str): the new dataset, or a source string such as
            ``'folder:/data/new'`` or ``'npz:new.npz'``.

    Returns:
        Class name -> ``[n_images, feature_dim]`` ``float32``, in class order.
    """
    from d2a.datasets.source import parse_source
    from d2a.features.extractor import load_extractor_from_db
    src = parse_source(source) if isinstance(source, str) else source
    if isinstance(db, MetaDatabase):
        extractor, image_size = load_extractor_from_db(db), db.image_size
    else:
        with MetaDatabase.open(db) as opened:
            extractor, image_size = load_extractor_from_db(opened), opened.image_size
    return source_features(extractor, load_source(src, image_size), batch_size, device, progress)


def make_extractor(name: str, loaded: Sequence[LoadedSource], config: Optional[Dict[str, Any]] = None,
                   weights: Optional[str] = None, pretrain_epochs: int = 10, seed: int = 0,
                   device: Optional[Union[str, torch.device]] = None,
                   progress: bool = False,
                   log_interval: Optional[float] = None) -> FeatureExtractor:
    r"""The extractor for a build: loaded from ``weights`` (a state dict or a file written by
    :func:`~d2a.features.save_extractor`), or -- for ``'small_cnn'`` without weights --
    pre-trained on the ``loaded`` sources."""
    config = dict(config or {})
    if weights is not None and name != 'resnet18_imagenet':
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f'feature extractor weights {path} do not exist')
        try:
            return load_extractor_file(path)
        except ValueError:
            return load_extractor(name, config, path)
    if name == 'resnet18_imagenet' and weights is not None:
        config['weights'] = str(weights)
    if name == 'small_cnn':
        from d2a.features.small_cnn import pretrain_small_cnn
        config.setdefault('in_channels', 3)
        data = [(s.tensor(config['in_channels']), torch.from_numpy(s.images.labels))
                for s in loaded]
        return pretrain_small_cnn(data, epochs=pretrain_epochs, seed=seed, device=device,
                                  progress=progress, log_interval=log_interval, **config)
    return create_extractor(name, **config).eval()


def build_database(path: PathLike, sources: Sequence[ImageSource], extractor: str = 'small_cnn',
                   extractor_config: Optional[Dict[str, Any]] = None,
                   extractor_weights: Optional[str] = None, image_size: int = 32,
                   meta_test: Sequence[str] = (), num_tasks: int = 0,
                   classes_per_task: Union[int, Tuple[int, int]] = 5,
                   pretrain_epochs: int = 10, seed: int = 0, batch_size: int = 256,
                   device: Optional[Union[str, torch.device]] = None,
                   overwrite: bool = False, progress: bool = False,
                   log_interval: Optional[float] = None) -> Dict[str, Any]:
    r"""Builds a meta-database: loads each source at ``image_size``, normalises it by its own
    channel statistics, extracts features, and defines tasks.

    Args:
        path (str): the new database file (written atomically at the end).
        sources (list of ImageSource): the raw sources (names must differ).
        extractor (str): extractor name; ``'small_cnn'`` without ``extractor_weights`` is
            pre-trained on the meta-training sources.
        extractor_config (dict, optional): extractor constructor arguments.
        extractor_weights (str, optional): weights of the extractor.
        image_size (int): images are resized to this square size.
        meta_test (list of str): sources kept for meta-testing: each becomes one
            whole-source ``meta-test`` task and is not used to pre-train the extractor.
        num_tasks (int): meta-training tasks sampled per other source (``0``: one
            whole-source task each).
        classes_per_task (int or tuple): classes per sampled task (or an inclusive range).
        pretrain_epochs (int): epochs of the small CNN's pre-training.
        seed (int): seed of pre-training and task sampling.
        progress (bool): progress bars.
        log_interval (float, optional): without bars, print plain progress lines (counts,
            rate, ETA of loading, pre-training and extraction) at most this often (seconds).

    Returns:
        A summary dict (``sources``, ``tasks``, ``feature_dim``, ``extractor``).
    """
    if Path(path).exists() and not overwrite:  # before any long extraction
        raise FileExistsError(f'meta-database {path} already exists (replace it with --overwrite '
                              '/ overwrite=True)')
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f'source names must differ, got {names} (pass name=... in a source)')
    unknown = sorted(set(meta_test) - set(names))
    if unknown:
        raise ValueError(f"meta-test source {unknown[0]!r} is not among the sources ({', '.join(names)})")
    interval = None if progress else log_interval
    log = ProgressLog('db build: load', len(sources), 'sources', interval)
    loaded = []
    for i, s in enumerate(sources):
        log.update(i)
        loaded.append(load_source(s, image_size))
    log.update(len(sources), force=True)
    train_sources = [s for s in loaded if s.name not in meta_test] or loaded
    ex = make_extractor(extractor, train_sources, extractor_config, extractor_weights,
                        pretrain_epochs, seed, device, progress, interval)
    log = ProgressLog('db build: features', sum(len(s.images.labels) for s in loaded), 'images',
                      interval)
    done = 0
    tasks: List[Task] = []
    with MetaDatabase.create(path, ex.name, ex.out_channels, ex.config(), image_size,
                             overwrite=overwrite) as db:
        db.set_feature_extractor(ex.name, ex.out_channels, ex.config(),
                                 extractor_to_bytes(ex) if ex.embed_weights else None)
        for s in loaded:
            log.update(done)
            add_source_features(db, s, ex, batch_size, device, progress)
            done += len(s.images.labels)
            if s.name in meta_test:
                tasks.append(whole_source_task(s.name, s.images.classes, 'meta-test'))
            elif num_tasks > 0:
                tasks.extend(sample_tasks(s.name, s.images.classes, num_tasks, classes_per_task,
                                          seed))
            else:
                tasks.append(whole_source_task(s.name, s.images.classes, 'meta-train'))
        db.add_tasks(tasks)
        log.update(done, force=True)
    return {'sources': names, 'tasks': len(tasks), 'feature_dim': ex.out_channels,
            'extractor': ex.name}

