r"""Features of the dataset searched for, computed the way the checkpoints' meta-database
described its datasets (same extractor, image size and per-dataset normalisation), or read
from a meta-database task.

A search draws ``num_sample`` images per class a few times (once per generated batch and
once per re-sampling of the ranking), which for a dataset of a few hundred images per class
is a fraction of them: :class:`ImageFeatures` runs the extractor on an image the first time
a draw picks it. The draws are those of precomputed features (the same random numbers), and
an image's features do not depend on which others share its extractor batch beyond
floating-point rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from d2a.search.engine import LoadedModels

DatasetInput = Union[str, Path, Tuple[Union[str, Path], str], Any]


@dataclass
class DatasetFeatures:
    r"""Per-class feature arrays of the dataset searched for.

    Attributes:
        name (str): the dataset's name.
        features (list of numpy.ndarray): ``[n_c, dim]`` per class.
        classes (list of str): class names.
        num_channels (int): image channels (3 when the features came from a database).
    """
    name: str
    features: List[Any]
    classes: List[str]
    num_channels: int = 3

    def class_sizes(self) -> List[int]:
        r"""Feature vectors (images) per class."""
        return [len(f) for f in self.features]

    def rows(self, picks: Sequence[np.ndarray]) -> List[np.ndarray]:
        r"""The feature vectors ``features[c][picks[c]]`` of every class ``c``."""
        return [f[idx] for f, idx in zip(self.features, picks)]

    def draw(self, num_sample: int, rng) -> Tensor:
        r"""``[num_classes, num_sample, dim]``: ``num_sample`` vectors per class (with
        replacement only for a class that has fewer)."""
        picks = [rng.choice(n, size=num_sample, replace=n < num_sample)
                 for n in self.class_sizes()]
        return torch.stack([torch.from_numpy(np.ascontiguousarray(r, dtype=np.float32))
                            for r in self.rows(picks)])


class ImageFeatures(DatasetFeatures):
    r"""Features of a dataset's images, extracted the first time a draw needs an image.

    Args:
        name (str): the dataset's name.
        images (torch.Tensor): normalised images ``[n, C, H, W]`` (the extractor's channels).
        labels (numpy.ndarray): class ids ``[n]`` into ``classes``.
        classes (list of str): class names.
        num_channels (int): channels of the raw images.
        extractor (FeatureExtractor): the checkpoints' extractor.
        device (str or torch.device): where the extractor runs.
        batch_size (int): images per extractor batch.

    :attr:`features` holds the vectors computed so far (the other rows are zero);
    :meth:`complete` computes them all.
    """
    def __init__(self, name: str, images: Tensor, labels: np.ndarray, classes: Sequence[str],
                 num_channels: int, extractor: Any, device: Union[str, torch.device] = 'cpu',
                 batch_size: int = 256) -> None:
        self._images = images
        self._extractor = extractor
        self._device = device
        self._batch_size = batch_size
        self._members = [np.flatnonzero(labels == i) for i in range(len(classes))]
        self._done = [np.zeros(len(m), dtype=bool) for m in self._members]
        dim = int(extractor.out_channels)
        super().__init__(name, [np.zeros((len(m), dim), dtype=np.float32)
                                for m in self._members], list(classes), num_channels)

    def rows(self, picks: Sequence[np.ndarray]) -> List[np.ndarray]:
        self._extract([np.unique(idx[~done[idx]]) for idx, done in zip(picks, self._done)])
        return super().rows(picks)

    def complete(self, progress: bool = False) -> 'ImageFeatures':
        r"""Extracts the features of every image not done yet; returns ``self``."""
        self._extract([np.flatnonzero(~done) for done in self._done], progress)
        return self

    def _extract(self, todo: Sequence[np.ndarray], progress: bool = False) -> None:
        from d2a.features import extract_features
        ids = [self._members[c][idx] for c, idx in enumerate(todo)]
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        if flat.size == 0:
            return
        feats = extract_features(self._extractor, self._images[torch.from_numpy(flat)],
                                 self._batch_size, self._device, progress)
        start = 0
        for c, idx in enumerate(todo):
            self.features[c][idx] = feats[start:start + len(idx)]
            self._done[c][idx] = True
            start += len(idx)


def _load_extractor(models: LoadedModels):
    from d2a.features import create_extractor, load_extractor_file
    info = models.feature_extractor
    path = models.directory / 'extractor.pt'
    if path.is_file():
        extractor = load_extractor_file(path)
    else:
        if not info.get('name'):
            raise ValueError(f'the checkpoints in {models.directory} were trained on imported '
                             'features with no known extractor: search a task of a '
                             'meta-database instead (dataset=(DB, TASK))')
        extractor = create_extractor(info['name'], **(info.get('config') or {}))
        if any(True for _ in extractor.parameters()):
            raise FileNotFoundError(f'{path} is missing: the weights of feature extractor '
                                    f"{info['name']!r} that the checkpoints were trained with")
    if extractor.name != info.get('name') or extractor.out_channels != info.get('dim'):
        raise ValueError(f'{path}: feature extractor {extractor.name!r} gives '
                         f"{extractor.out_channels}-d features, the checkpoints expect "
                         f"{info.get('name')!r} with {info.get('dim')}-d features")
    expected = info.get('weights_sha256')
    if expected is not None:
        from d2a.features import extractor_fingerprint
        if extractor_fingerprint(extractor) != expected:
            raise ValueError(f'{path}: the weights of feature extractor {extractor.name!r} '
                             f'differ from those the checkpoints in {models.directory} were '
                             'trained with (another database): train both models into one '
                             'folder from one database')
    return extractor


def dataset_features(dataset: DatasetInput, models: LoadedModels,
                     device: Union[str, torch.device] = 'cpu') -> DatasetFeatures:
    r"""Features of ``dataset``: an image folder, an ``.npz`` file (``images`` and
    ``labels`` arrays), a source spec or :class:`~d2a.datasets.ImageSource` (see
    :func:`~d2a.datasets.open_source`), or ``(database path, task name)``.

    Images are read, resized and normalised now; their features are extracted when a draw
    first picks them (:class:`ImageFeatures`)."""
    dim = models.feature_extractor.get('dim')
    if isinstance(dataset, tuple):
        if len(dataset) != 2:
            raise ValueError(f'a database dataset is (db path, task name), got {dataset!r}')
        from d2a.db import MetaDatabase
        db_path, task = dataset
        with MetaDatabase.open(db_path) as db:
            name = models.feature_extractor.get('name')
            if db.feature_dim != dim or db.feature_extractor_name != name:
                raise ValueError(f'{db_path} holds {db.feature_dim}-d features of extractor '
                                 f'{db.feature_extractor_name!r}; the checkpoints in '
                                 f'{models.directory} expect {dim}-d features of {name!r}')
            source, classes = db.task_classes(task)
            feats = [db.features(source, c) for c in classes]
        from d2a.datasets.source import check_class_counts
        check_class_counts(f'{Path(db_path).name}:{task}', list(classes),
                           [len(f) for f in feats])
        return DatasetFeatures(f'{Path(db_path).name}:{task}', feats, list(classes))
    from d2a.datasets import open_source
    from d2a.features import channel_stats, images_to_tensor
    source = open_source(dataset)
    extractor = _load_extractor(models)
    images = source.load(image_size=models.feature_extractor.get('image_size'))
    # One class, or one image of a class, would give confident scores that mean nothing.
    images.require_classes(source.name)
    # Normalised by the dataset's own channel statistics, as MetaD2A does for each dataset.
    mean, std = channel_stats(images.images)
    x = images_to_tensor(images.images, mean, std, extractor.in_channels)
    return ImageFeatures(source.name, x, images.labels, images.classes, images.num_channels,
                         extractor, device)
