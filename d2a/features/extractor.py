r"""Feature extractors (image -> vector) by name, and the batched extraction around them.

MetaD2A describes a dataset by the 512-d ImageNet ResNet-18 features of its 32x32 images,
each dataset normalised by its own channel mean and std. Here an extractor is a
:class:`FeatureExtractor` created by name through a registry (:func:`create_extractor`),
described by a JSON-able :meth:`FeatureExtractor.config`, and saved as a state dict
(:func:`extractor_to_bytes`); the meta-database stores all three so that the same
extractor is rebuilt for a new dataset at search time (:func:`load_extractor`).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
from torch import Tensor, nn

from d2a.utils.registry import Registry


class FeatureExtractor(nn.Module):
    r"""Base class: maps normalised images ``[B, in_channels, H, W]`` to ``[B, out_channels]``.

    Subclasses set :attr:`name`, store their constructor arguments in :meth:`config` and
    implement :meth:`forward`.
    """
    name: str = ''
    #: Whether a meta-database embeds the weights (extractors whose config names a weight
    #: file set it to ``False``).
    embed_weights: bool = True
    in_channels: int
    out_channels: int

    def config(self) -> Dict[str, Any]:
        r"""Constructor arguments (JSON-able): ``create_extractor(name, **config())``
        rebuilds the architecture."""
        raise TypeError(f'{type(self).__name__} does not define config()')

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, 'reset_parameters'):
                m.reset_parameters()

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.config().items())
        return f'{self.__class__.__name__}({args})'


def _import_extractors() -> None:
    from d2a.features import raw, resnet, small_cnn  # noqa: F401  (registers them)


#: The feature extractor classes by name.
EXTRACTORS: Registry[Type[FeatureExtractor]] = Registry(
    'feature extractor', key=lambda cls: cls.name, populate=_import_extractors)


def register_extractor(cls: Type[FeatureExtractor]) -> Type[FeatureExtractor]:
    r"""Class decorator adding an extractor to :func:`create_extractor`."""
    return EXTRACTORS.register()(cls)


def list_extractors() -> List[str]:
    return EXTRACTORS.names()


def create_extractor(name: str, **config: Any) -> FeatureExtractor:
    r"""The extractor called ``name`` (``'small_cnn'``, ``'raw_pixels'``,
    ``'resnet18_imagenet'``) built with ``config``."""
    cls = EXTRACTORS.get(name)
    try:
        return cls(**config)
    except TypeError as e:
        raise ValueError(f'invalid configuration for feature extractor {name!r}: {e}') from None


def extractor_to_bytes(extractor: FeatureExtractor) -> bytes:
    r"""The extractor's state dict as ``torch.save`` bytes."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in extractor.state_dict().items()}, buf)
    return buf.getvalue()


def extractor_fingerprint(extractor: FeatureExtractor) -> str:
    r"""SHA-256 (hex) of an extractor's name, configuration and weights: equal for two
    extractors only when they compute the same features. Checkpoints record it, so that
    models trained on the features of different weights are not combined."""
    import hashlib
    import json
    h = hashlib.sha256()
    h.update(json.dumps([extractor.name, extractor.config()], sort_keys=True,
                        default=str).encode())
    for key, value in sorted(extractor.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f'{key}:{t.dtype}:{tuple(t.shape)}'.encode())
        h.update(t.flatten().view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def load_extractor(name: str, config: Dict[str, Any],
                   weights: Optional[Union[bytes, str, Path]] = None) -> FeatureExtractor:
    r"""Rebuilds an extractor from its name, config and saved weights (bytes or a file
    written by :func:`save_extractor`); in eval mode on the CPU."""
    extractor = create_extractor(name, **config)
    if weights is None:
        return extractor.eval()
    where = 'embedded weights' if isinstance(weights, bytes) else str(weights)
    if not isinstance(weights, bytes) and not Path(weights).is_file():
        raise FileNotFoundError(f'weights file {weights} of feature extractor {name!r} does not exist')
    try:
        state = torch.load(io.BytesIO(weights) if isinstance(weights, bytes) else weights,
                           map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ValueError(f'cannot read weights of feature extractor {name!r} from {where}: {e}') \
            from None
    if isinstance(state, dict) and 'state_dict' in state and 'name' in state:
        state = state['state_dict']  # a file written by save_extractor
    return _with_state(extractor, state, where)


def save_extractor(extractor: FeatureExtractor, path: Union[str, Path]) -> None:
    r"""Saves ``{'name', 'config', 'state_dict'}`` atomically to ``path``."""
    from d2a.utils.atomic import atomic_path
    with atomic_path(path) as tmp:
        torch.save({'name': extractor.name, 'config': extractor.config(),
                    'state_dict': {k: v.detach().cpu() for k, v in extractor.state_dict().items()}},
                   tmp)


def load_extractor_file(path: Union[str, Path]) -> FeatureExtractor:
    r"""Loads an extractor written by :func:`save_extractor`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'feature extractor file {path} does not exist')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ValueError(f'{path} is not a saved feature extractor: {e}') from None
    if not isinstance(data, dict) or not {'name', 'config', 'state_dict'} <= set(data):
        raise ValueError(f"{path} is not a saved feature extractor (needs 'name', 'config', "
                         "'state_dict')")
    return _with_state(create_extractor(data['name'], **data['config']), data['state_dict'], path)


def _with_state(extractor: FeatureExtractor, state: Dict[str, Tensor], where: Any) -> FeatureExtractor:
    try:
        extractor.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f'{where}: weights do not fit feature extractor '
                         f'{extractor.name!r}: {e}') from None
    return extractor.eval()


def load_extractor_from_db(db: Any) -> FeatureExtractor:
    r"""The extractor a :class:`~d2a.db.MetaDatabase` was built with (name, config and
    embedded weights from its metadata)."""
    name = db.feature_extractor_name
    if not name:
        raise ValueError(f'{db.path}: no feature extractor recorded (imported features?)')
    return load_extractor(name, db.attrs['feature_config'], db.extractor_weights())


# ---------------------------------------------------------------------------- images
def channel_stats(images: np.ndarray) -> Tuple[List[float], List[float]]:
    r"""Per-channel mean and std (range ``[0, 1]``) of ``[n, H, W, C]`` ``uint8`` images."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    std = x.std(0)
    return x.mean(0).tolist(), np.where(std > 1e-8, std, 1.0).tolist()


def images_to_tensor(images: np.ndarray, mean: Sequence[float], std: Sequence[float],
                     in_channels: Optional[int] = None) -> Tensor:
    r"""``[n, H, W, C]`` ``uint8`` images -> normalised ``[n, C', H, W]`` float tensor.

    Args:
        mean (list of float), std (list of float): per-channel statistics (range ``[0, 1]``).
        in_channels (int, optional): channels wanted; grey images are repeated to 3
            channels and colour images averaged to 1.
    """
    if len(mean) != images.shape[-1] or len(std) != images.shape[-1]:
        raise ValueError(f'images have {images.shape[-1]} channels but the statistics have '
                         f'{len(mean)} means and {len(std)} stds')
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    x = (x - torch.tensor(mean).view(1, -1, 1, 1).float()) / torch.tensor(std).view(1, -1, 1, 1).float()
    if in_channels is not None and in_channels != x.size(1):
        if x.size(1) == 1:
            x = x.expand(-1, in_channels, -1, -1).contiguous()
        elif in_channels == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise ValueError(f'cannot convert {x.size(1)}-channel images to {in_channels} channels')
    return x


@torch.no_grad()
def extract_features(extractor: FeatureExtractor, x: Tensor, batch_size: int = 256,
                     device: Optional[Union[str, torch.device]] = None,
                     progress: bool = False) -> np.ndarray:
    r"""Runs ``extractor`` over normalised images in batches.

    Args:
        x (torch.Tensor): ``[n, in_channels, H, W]``.
        batch_size (int): images per forward pass.
        device (str or torch.device, optional): default CUDA when available, else CPU.
        progress (bool): show a progress bar.

    Returns:
        ``[n, out_channels]`` ``float32`` array.
    """
    from tqdm.auto import tqdm
    dev = torch.device(device) if device is not None else \
        torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    extractor = extractor.to(dev).eval()
    if x.size(1) != extractor.in_channels:
        raise ValueError(f'images have {x.size(1)} channels, feature extractor '
                         f'{extractor.name!r} expects {extractor.in_channels}')
    out = np.empty((x.size(0), extractor.out_channels), dtype=np.float32)
    for start in tqdm(range(0, x.size(0), batch_size), desc=f'features {extractor.name}',
                      disable=not progress, leave=False):
        out[start:start + batch_size] = extractor(x[start:start + batch_size].to(dev)).float().cpu().numpy()
    return out


def image_features(extractor: FeatureExtractor, images: np.ndarray,
                   mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                   batch_size: int = 256, device: Optional[Union[str, torch.device]] = None,
                   progress: bool = False) -> np.ndarray:
    r"""Features of ``[n, H, W, C]`` ``uint8`` images (already at the database's image
    size), normalised by ``mean``/``std`` or, when not given, by their own statistics
    (as MetaD2A does for each dataset)."""
    if mean is None or std is None:
        mean, std = channel_stats(images)
    x = images_to_tensor(images, mean, std, extractor.in_channels)
    return extract_features(extractor, x, batch_size, device, progress)
