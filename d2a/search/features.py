r"""Features of the dataset searched for, computed the way the checkpoints' meta-database
described its datasets (same extractor, image size and per-dataset normalisation), or read
from a meta-database task."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Tuple, Union

import torch
from torch import Tensor

if TYPE_CHECKING:
    from d2a.search.search import LoadedModels

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

    def draw(self, num_sample: int, rng) -> Tensor:
        r"""``[num_classes, num_sample, dim]``: ``num_sample`` vectors per class (with
        replacement only for a class that has fewer)."""
        import numpy as np
        out = []
        for f in self.features:
            idx = rng.choice(len(f), size=num_sample, replace=len(f) < num_sample)
            out.append(torch.from_numpy(np.ascontiguousarray(f[idx], dtype=np.float32)))
        return torch.stack(out)


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
    return extractor


def dataset_features(dataset: DatasetInput, models: LoadedModels,
                     device: Union[str, torch.device] = 'cpu',
                     progress: bool = False) -> DatasetFeatures:
    r"""Features of ``dataset``: an image folder, an ``.npz`` file (``images`` and
    ``labels`` arrays), a source spec or :class:`~d2a.datasets.ImageSource` (see
    :func:`~d2a.datasets.open_source`), or ``(database path, task name)``."""
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
        return DatasetFeatures(f'{Path(db_path).name}:{task}', feats, list(classes))
    from d2a.datasets import open_source
    from d2a.features import image_features
    source = open_source(dataset)
    extractor = _load_extractor(models)
    images = source.load(image_size=models.feature_extractor.get('image_size'))
    feats = image_features(extractor, images.images, device=device, progress=progress)
    per_class = [feats[images.labels == i] for i in range(len(images.classes))]
    empty = [c for c, f in zip(images.classes, per_class) if len(f) == 0]
    if empty:
        raise ValueError(f'dataset {source.name}: class {empty[0]!r} has no image')
    return DatasetFeatures(source.name, per_class, list(images.classes), images.num_channels)
