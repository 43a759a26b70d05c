r"""Named model configurations (timm style).

A configuration is plain data: a dict with the model ``name``, the ``kind``
(``'generator'`` or ``'predictor'``), the ``space`` name and every constructor size.
:func:`create_model` builds a model from a name and overrides and sets ``model.config`` to
the complete, JSON/YAML-serialisable configuration, so a checkpoint can rebuild the model
with :func:`model_from_config` (or ``create_model(config['name'], **config)``)::

    model = create_model('metad2a_nb201_predictor', graph_encoder='gin')
    same = model_from_config(model.config)

:func:`load_model` is the one way from a checkpoint file to a model (the search, the plots
and the trainer's resume use it); ``create_model(checkpoint_path=...)`` is its timm-style
shortcut::

    loaded = load_model('run', 'predictor', device='cuda')   # run/predictor.pt
    loaded.model, loaded.checkpoint.train_config['num_sample']
    predictor = create_model(checkpoint_path='run/predictor.pt')
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import torch
from torch.nn import Module

from d2a.checkpoint import KINDS, Checkpoint, best_path, load_checkpoint, load_model_state
from d2a.utils.atomic import PathLike
from d2a.utils.registry import Registry

_META_KEYS = ('name', 'kind')


@dataclass(frozen=True)
class _Entry:
    config: Dict[str, Any]
    builder: Callable[..., Module]


#: The named model configurations.
MODELS: Registry[_Entry] = Registry('model')


def _build_generator(**kwargs: Any) -> Module:
    from d2a.generator import SetToGraphVAE
    return SetToGraphVAE(**kwargs)


def _build_predictor(**kwargs: Any) -> Module:
    from d2a.predictor import MetaPredictor
    return MetaPredictor(**kwargs)


def register_model(name: str, kind: str, config: Mapping[str, Any],
                   builder: Optional[Callable[..., Module]] = None) -> None:
    r"""Adds a named configuration.

    Args:
        name (str): The name :func:`create_model` takes.
        kind (str): ``'generator'`` or ``'predictor'`` (chooses the default builder).
        config (dict): Constructor keyword arguments (plain data), ``space`` included.
        builder (callable, optional): Builds the model from the keyword arguments; by
            default :class:`~d2a.generator.SetToGraphVAE` or
            :class:`~d2a.predictor.MetaPredictor`.
    """
    if builder is None:
        if kind not in KINDS:
            raise ValueError(f"model kind must be one of {', '.join(KINDS)}, got {kind!r}")
        builder = _build_generator if kind == 'generator' else _build_predictor
    MODELS.add(name, _Entry({'name': name, 'kind': kind, **copy.deepcopy(dict(config))}, builder))


def list_models(kind: Optional[str] = None) -> List[str]:
    r"""Names of the registered configurations (of one ``kind`` if given)."""
    return [n for n in MODELS.names() if kind is None or MODELS.get(n).config['kind'] == kind]


def get_model_config(name: str) -> Dict[str, Any]:
    r"""A copy of the default configuration called ``name``."""
    return copy.deepcopy(MODELS.get(name).config)


def _check_option(name: str, key: str, value: Any, default: Any) -> None:
    # An override must have its default's type; sizes and counts must be positive.
    def fail(expected: str) -> None:
        raise ValueError(f"model '{name}' option {key}={value!r}: expected {expected} "
                         f'(default {default!r})')
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail('true or false')
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail('an integer')
        if value < 1 and (key.endswith('_channels') or key.startswith('num_')):
            fail('a positive integer')
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or value != value or value in (float('inf'), float('-inf')):
            fail('a finite number')
        if value < 0:
            fail('a number >= 0')
    elif isinstance(default, str) and not isinstance(value, str):
        fail('a string')


def create_model(name: Optional[str] = None, /, checkpoint_path: Optional[PathLike] = None,
                 **overrides: Any) -> Module:
    r"""Builds the model called ``name`` with some of its sizes overridden.

    ``name`` and ``kind`` in ``overrides`` are accepted (so a saved config can be passed
    back) but must match. Unknown keys raise :class:`ValueError`.

    With ``checkpoint_path`` the weights of that checkpoint are loaded (strictly); without
    ``name`` the model is the one the checkpoint was saved from (:func:`load_model`, in
    evaluation mode on the CPU). A folder ``checkpoint_path`` needs ``name`` (its kind picks
    ``<kind>.pt``).
    """
    if name is None:
        if checkpoint_path is None:
            raise ValueError('create_model needs a model name or a checkpoint_path')
        if overrides:
            raise ValueError('a model rebuilt from its checkpoint takes no overrides; give its '
                             'name to change sizes')
        return load_model(checkpoint_path).model
    if checkpoint_path is not None:
        model = create_model(name, **overrides)
        load_model(checkpoint_path, model.config['kind'], model=model)
        return model
    config = get_model_config(name)
    for key in _META_KEYS:
        if key in overrides and overrides.pop(key) != config[key]:
            raise ValueError(f"config {key!r} does not match model '{name}'")
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"model '{name}' has no option(s) {', '.join(unknown)} (options: "
                         f"{', '.join(k for k in config if k not in _META_KEYS)})")
    for key, value in overrides.items():
        _check_option(name, key, value, config[key])
    config.update(copy.deepcopy(overrides))
    kwargs = {k: v for k, v in config.items() if k not in _META_KEYS}
    try:
        model = MODELS.get(name).builder(**kwargs)
    except (TypeError, RuntimeError, AssertionError) as e:
        given = ', '.join(f'{k}={v!r}' for k, v in overrides.items()) or 'its defaults'
        raise ValueError(f"model '{name}' cannot be built with {given}: {e}") from None
    model.config = config
    return model


def model_from_config(config: Mapping[str, Any]) -> Module:
    r"""Rebuilds a model from the ``model.config`` of a model made by :func:`create_model`."""
    if 'name' not in config:
        raise ValueError("model config has no 'name'")
    return create_model(config['name'], **{k: v for k, v in config.items() if k != 'name'})


@dataclass
class LoadedModel:
    r"""What :func:`load_model` returns: the model, the checkpoint it came from (training
    configuration, feature extractor, metrics, resume state) and the file read."""
    model: Module
    checkpoint: Checkpoint
    path: Path


def load_model(path: PathLike, kind: Optional[str] = None, *,
               device: Union[str, torch.device] = 'cpu', model: Optional[Module] = None,
               check: Optional[Callable[[Checkpoint, Path], None]] = None) -> LoadedModel:
    r"""Loads a checkpoint written by the trainer into a model.

    Args:
        path (str or Path): the checkpoint file, or a checkpoint folder (then ``kind`` picks
            ``<kind>.pt`` in it).
        kind (str, optional): the expected kind (``'generator'`` or ``'predictor'``).
        device (str or torch.device): where the tensors (and the model) go.
        model (torch.nn.Module, optional): load into this model (e.g. the one a resumed run
            already built) instead of rebuilding the checkpoint's; a model built here is in
            evaluation mode.
        check (callable, optional): called with the checkpoint and its file before the
            weights are loaded, to refuse an incompatible one (see
            :func:`~d2a.checkpoint.check_compatible`).

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` for a file
    that is not a checkpoint of ``kind``, a configuration the registry cannot rebuild or
    weights that do not fit the model.
    """
    file = Path(path)
    if file.is_dir() and kind is not None:
        file = best_path(file, kind)
    ckpt = load_checkpoint(file, kind=kind, map_location=device)
    if check is not None:
        check(ckpt, file)
    built = model is None
    if built:
        try:
            model = model_from_config(ckpt.model_config)
        except (ValueError, TypeError) as e:
            raise ValueError(f'checkpoint {file}: cannot rebuild model {ckpt.model_name!r} from '
                             f'its saved configuration: {e}') from None
    load_model_state(model, ckpt, file)
    model.to(device)
    if built:
        model.eval()
    return LoadedModel(model, ckpt, file)


_GENERATOR = dict(in_channels=512, hidden_channels=56, latent_channels=56, num_heads=4,
                  num_blocks=2, set_encoder='set_transformer', beta=0.005, constrained=True)
_PREDICTOR = dict(in_channels=512, hidden_channels=56, graph_hidden_channels=512,
                  out_channels=56, mlp_channels=512, num_heads=4, num_blocks=2,
                  graph_encoder='dag_gru', set_encoder='set_transformer', use_dataset=True,
                  head='concat', target='global', descriptors=False)

# A plain graph predictor (no dataset) for fit/query use: a GIN encoder, which ranks NB201
# cells better than the DAG-GRU when only ~100 are labelled.
_GRAPH_PREDICTOR = dict(_PREDICTOR, graph_encoder='gin', graph_hidden_channels=128,
                        use_dataset=False)

for _space in ('nb201', 'mbv3'):
    register_model(f'metad2a_{_space}_generator', 'generator', {'space': _space, **_GENERATOR})
    register_model(f'metad2a_{_space}_predictor', 'predictor', {'space': _space, **_PREDICTOR})
    register_model(f'gin_{_space}_predictor', 'predictor', {'space': _space, **_GRAPH_PREDICTOR})
