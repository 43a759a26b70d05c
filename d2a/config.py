r"""YAML configuration files whose values are the defaults of command-line flags.

The precedence is the one of timm's ``train.py``: built-in defaults < values of the
``--config`` YAML file < flags given on the command line, whatever their order. The
effective configuration (every option, resolved) is plain data and is saved next to the
checkpoint it produced, so that ``--config saved.yaml`` reproduces the run.

Usage with :mod:`argparse`::

    parser.add_argument('--lr', type=float, default=1e-4)
    enable_config(parser)              # adds --config, defers the defaults
    args = parser.parse_args(argv)
    config = resolve_config(args)      # {'lr': ..., ...}, also set on args
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import yaml

from d2a.utils.atomic import atomic_write

_OPTIONS = '_d2a_config_options'
_DEFAULTS = '_d2a_config_defaults'
_EXPLICIT = '_d2a_config_explicit'


def load_config(path: Union[str, Path]) -> Dict[str, Any]:
    r"""Reads a YAML mapping of option names to values.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` for a file
    that is not valid YAML or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {path} does not exist')
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except yaml.YAMLError as e:
        raise ValueError(f'config file {path} is not valid YAML: {e}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f'config file {path} must hold a mapping of option names to values, '
                         f'found {type(data).__name__}')
    return {str(k): v for k, v in data.items()}


def save_config(config: Mapping[str, Any], path: Union[str, Path]) -> None:
    r"""Writes ``config`` as YAML, atomically (keys in insertion order)."""
    with atomic_write(path) as f:
        yaml.safe_dump(dict(config), f, sort_keys=False, default_flow_style=False)


def enable_config(parser: argparse.ArgumentParser, exclude: Sequence[str] = ()) -> None:
    r"""Adds ``--config FILE`` to ``parser`` and defers its option defaults.

    Each option's default is recorded and replaced by :data:`argparse.SUPPRESS`, so that an
    option absent from the command line is absent from the parsed namespace; call
    :func:`resolve_config` on the result to fill it from the YAML file and the defaults.

    Args:
        parser (argparse.ArgumentParser): the parser, with its options added.
        exclude (sequence of str): option destinations that stay command-line only (e.g.
            ``resume``); they keep their defaults and are not part of the configuration.
    """
    options: Dict[str, argparse.Action] = {}
    defaults: Dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                               argparse._SubParsersAction)) or action.dest == 'config':
            continue
        if not action.option_strings or action.dest in exclude:
            continue  # positionals are always given explicitly
        options[action.dest] = action
        defaults[action.dest] = action.default
        if action.help is not argparse.SUPPRESS:
            if action.help and '%(default)' in action.help:
                action.help = action.help.replace('%(default)s', str(action.default))
            elif action.default is not None and action.nargs != 0:
                action.help = f'{action.help or ""} (default: {action.default})'.lstrip()
        action.default = argparse.SUPPRESS
    parser.add_argument('--config', default=None, metavar='FILE',
                        help='YAML file of option values (keys are the long flag names); '
                             'flags given on the command line override it')
    parser.set_defaults(**{_OPTIONS: options, _DEFAULTS: defaults})


def _coerce(action: argparse.Action, value: Any, where: str) -> Any:
    name = '--' + action.dest.replace('_', '-')
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise ValueError(f'{where}: {name} must be true or false, got {value!r}')
        return value
    if value is None:
        return None
    if action.nargs in ('+', '*') or isinstance(action.nargs, int):
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce_one(action, v, name, where) for v in items]
    return _coerce_one(action, value, name, where)


def _coerce_one(action: argparse.Action, value: Any, name: str, where: str) -> Any:
    if isinstance(value, str) and action.type is not None:
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ValueError(f'{where}: {name} = {value!r} is invalid: {e}') from None
    elif action.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif action.type in (int, float) and not isinstance(value, action.type) \
            or isinstance(value, bool) and action.type in (int, float):
        raise ValueError(f'{where}: {name} must be a number ({action.type.__name__}), '
                         f'got {value!r}')
    if action.choices is not None and value not in action.choices:
        raise ValueError(f'{where}: {name} = {value!r} is not one of '
                         f"{', '.join(map(str, action.choices))}")
    return value


def resolve_config(args: argparse.Namespace,
                   overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    r"""Fills the options of ``args`` (parsed by a parser prepared with
    :func:`enable_config`) and returns the effective configuration.

    Args:
        args (argparse.Namespace): the parsed command line.
        overrides (Mapping, optional): values applied on top of the config file but below
            the command-line flags (e.g. a saved configuration when resuming).

    Raises :class:`ValueError` naming the file and key for unknown keys and bad values.
    """
    options: Dict[str, argparse.Action] = getattr(args, _OPTIONS, None)
    if options is None:
        raise ValueError('resolve_config() needs a parser prepared with enable_config()')
    values = dict(getattr(args, _DEFAULTS))
    layers = []
    if overrides:
        layers.append(('saved configuration', dict(overrides)))
    if getattr(args, 'config', None):
        layers.append((str(args.config), load_config(args.config)))
    for where, layer in layers:
        for key, value in layer.items():
            dest = key.replace('-', '_')
            if dest not in options:
                raise ValueError(f"{where}: unknown option {key!r} (known: "
                                 f"{', '.join(sorted(options))})")
            values[dest] = _coerce(options[dest], value, where)
    # The flags given on the command line, recorded on the first call so that a second
    # call (e.g. with a saved configuration once the output folder is known) sees them too.
    explicit = getattr(args, _EXPLICIT, None)
    if explicit is None:
        explicit = {dest: getattr(args, dest) for dest in options if dest in vars(args)}
        setattr(args, _EXPLICIT, explicit)
    values.update(explicit)
    for dest, value in values.items():
        setattr(args, dest, value)
    return values
