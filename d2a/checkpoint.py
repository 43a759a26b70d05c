r"""Checkpoints of the generator and the predictor.

A checkpoint is a ``torch.save`` file holding only tensors and plain Python values
(``dict``, ``list``, ``tuple``, ``str``, ``int``, ``float``, ``bool``, ``None``), so that it
loads with ``torch.load(weights_only=True)`` and never executes code. It holds:

* ``schema_version`` -- :data:`SCHEMA_VERSION`, checked on load;
* ``kind`` -- ``'generator'`` or ``'predictor'``; ``model_name`` and ``model_config`` --
  the registry name and the plain-data configuration the model is rebuilt from;
* ``model_state`` -- the model's state dict;
* ``train_config`` -- the effective training configuration;
* ``feature_extractor`` -- ``{'name', 'dim', 'config', 'image_size', 'weights_sha256'}`` of
  the features it was trained on (the hash of the extractor's weights, see
  :func:`~d2a.features.extractor_fingerprint`, tells two databases' extractors of one
  configuration apart);
* ``space`` -- the search space name; ``extra`` -- e.g. the predictor's target statistics;
* ``resume`` (optional) -- optimizer, scheduler, epoch, RNG states and best metric, for
  ``--resume``.

Files are written atomically. In a checkpoint folder, ``<kind>.pt`` is the best model and
``<kind>.last.pt`` the state of the last finished epoch.

The module imports torch and NumPy only when a checkpoint is written or read, so that
:data:`KINDS` and the file names are available to light modules (the command line, the
training configuration).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional, Union

from d2a import __version__
from d2a.utils.atomic import atomic_path
from d2a.utils.paths import checkpoint_path

if TYPE_CHECKING:
    import torch
    from torch import Tensor

#: Version of the checkpoint layout; a file with another version is refused.
SCHEMA_VERSION: int = 1
#: The two meta-learned models: the set-to-graph generator and the meta-predictor.
KINDS = ('generator', 'predictor')


@dataclass
class Checkpoint:
    r"""The contents of a checkpoint file (see the module docstring)."""
    kind: str
    model_name: str
    model_config: Dict[str, Any]
    model_state: Dict[str, Tensor]
    train_config: Dict[str, Any] = field(default_factory=dict)
    feature_extractor: Dict[str, Any] = field(default_factory=dict)
    space: str = 'nb201'
    extra: Dict[str, Any] = field(default_factory=dict)
    resume: Optional[Dict[str, Any]] = None
    schema_version: int = SCHEMA_VERSION
    d2a_version: str = __version__

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"checkpoint kind must be one of {', '.join(KINDS)}, "
                             f'got {self.kind!r}')


def best_path(directory: Union[str, Path], kind: str) -> Path:
    r"""Path of the best ``kind`` checkpoint in ``directory``."""
    return checkpoint_path(directory, kind)


def last_path(directory: Union[str, Path], kind: str) -> Path:
    r"""Path of the resumable last-epoch ``kind`` checkpoint in ``directory``."""
    return checkpoint_path(directory, kind, last=True)


def to_plain(obj: Any, where: str = 'checkpoint') -> Any:
    r"""Converts ``obj`` into tensors and plain Python values (numpy scalars and arrays
    become Python numbers and tensors); raises :class:`ValueError` naming the entry at
    fault for anything else."""
    import numpy as np
    import torch
    from torch import Tensor
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k) if not isinstance(k, int) else k: to_plain(v, f'{where}[{k!r}]')
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f'{where}[{i}]') for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise ValueError(f'{where} holds a {type(obj).__name__}, which a weights-only checkpoint '
                     'cannot store')


def save_checkpoint(ckpt: Checkpoint, path: Union[str, Path]) -> None:
    r"""Writes ``ckpt`` to ``path`` atomically."""
    import torch
    payload = to_plain(asdict(ckpt))
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Union[str, Path], kind: Optional[str] = None,
                    map_location: Union[str, torch.device] = 'cpu') -> Checkpoint:
    r"""Reads a checkpoint written by :func:`save_checkpoint`.

    Args:
        path (str or Path): the file, or a checkpoint folder (then ``kind`` picks
            ``<kind>.pt`` in it).
        kind (str, optional): the expected kind; another kind is refused.
        map_location: where tensors are loaded.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` for a file
    that is not a d2a checkpoint, has another schema version or another kind.
    """
    import torch
    path = Path(path)
    if path.is_dir():
        if kind is None:
            raise ValueError(f'{path} is a folder: say which checkpoint kind to load')
        path = best_path(path, kind)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # unpickling errors have many types; all mean "not ours"
        raise ValueError(f'{path} is not a readable d2a checkpoint: {e}') from None
    if not isinstance(payload, dict) or 'schema_version' not in payload:
        raise ValueError(f'{path} is not a d2a checkpoint (no schema_version)')
    version = payload['schema_version']
    if version != SCHEMA_VERSION:
        raise ValueError(f'{path} has checkpoint schema version {version}, this d2a '
                         f'({__version__}) reads version {SCHEMA_VERSION}: retrain or use a '
                         'matching d2a version')
    known = set(Checkpoint.__dataclass_fields__)
    unknown = sorted(set(payload) - known)
    missing = sorted(k for k in ('kind', 'model_name', 'model_config', 'model_state')
                     if k not in payload)
    if unknown or missing:
        raise ValueError(f'{path} is not a d2a checkpoint of schema {SCHEMA_VERSION}: '
                         f'unknown fields {unknown}, missing fields {missing}')
    ckpt = Checkpoint(**payload)
    if kind is not None and ckpt.kind != kind:
        raise ValueError(f'{path} is a {ckpt.kind} checkpoint, expected a {kind} checkpoint')
    return ckpt


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       keys: Optional[Iterable[str]] = None) -> Dict[str, tuple]:
    r"""``{key: (saved, current)}`` for the keys whose values differ (all keys of both
    mappings when ``keys`` is ``None``)."""
    keys = sorted(set(saved) | set(current)) if keys is None else list(keys)
    return {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}


def check_compatible(ckpt: Checkpoint, path: Union[str, Path], *,
                     model_config: Optional[Mapping[str, Any]] = None,
                     train_config: Optional[Mapping[str, Any]] = None,
                     train_keys: Optional[Iterable[str]] = None,
                     feature_extractor: Optional[Mapping[str, Any]] = None) -> None:
    r"""Raises :class:`ValueError` listing what differs between a checkpoint and the
    configuration of the current run.

    Args:
        ckpt (Checkpoint): the loaded checkpoint; ``path`` names it in messages.
        model_config (Mapping, optional): must equal ``ckpt.model_config``.
        train_config (Mapping, optional): compared with ``ckpt.train_config`` on
            ``train_keys`` (all keys when ``None``).
        feature_extractor (Mapping, optional): must equal ``ckpt.feature_extractor`` on its
            keys.
    """
    problems = []
    if model_config is not None:
        diffs = config_differences(ckpt.model_config, to_plain(dict(model_config)))
        for k, (a, b) in diffs.items():
            problems.append(f'model {k}: checkpoint {a!r}, now {b!r}')
    if train_config is not None:
        for k, (a, b) in config_differences(ckpt.train_config, to_plain(dict(train_config)),
                                            train_keys).items():
            problems.append(f'training {k}: checkpoint {a!r}, now {b!r}')
    if feature_extractor is not None:
        for k, (a, b) in config_differences(ckpt.feature_extractor, dict(feature_extractor),
                                            feature_extractor.keys()).items():
            problems.append(f'feature extractor {k}: checkpoint {a!r}, now {b!r}')
    if problems:
        raise ValueError(f'checkpoint {path} was made with another configuration: '
                         + '; '.join(problems))


def load_model_state(model: torch.nn.Module, ckpt: Checkpoint, path: Union[str, Path]) -> None:
    r"""Loads ``ckpt.model_state`` into ``model``, strictly, with a readable error."""
    try:
        model.load_state_dict(ckpt.model_state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f'checkpoint {path} does not fit model {ckpt.model_name!r} with its '
                         f'saved configuration: {" ".join(first[:3])}') from None


# ----------------------------------------------------------------------------- RNG states
def rng_state() -> Dict[str, Any]:
    r"""The states of Python's, NumPy's and torch's global generators, as plain data."""
    import numpy as np
    import torch
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        'python': random.getstate(),
        'numpy': (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    r"""Restores states saved by :func:`rng_state`."""
    import numpy as np
    import torch
    py = state['python']
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() \
            and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])
