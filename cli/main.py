r"""Entry point of the ``d2a`` command.

Each sub-command lives in its own module of :mod:`d2a.cli` exposing
``add_parser(subparsers)``; the parser it adds sets ``func`` (called with the parsed
arguments, returns an exit code). Building a parser imports neither torch nor NumPy (the
defaults come from plain-data configuration classes); a command imports what it needs when
it runs. A command line naming a command builds only that command's parser.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import List, Optional

# Importing d2a sets OpenMP's passive waiting before any sub-command imports torch (see
# d2a/__init__.py); a value the user set is kept.
from d2a import __version__
from d2a.utils.lock import FileLocked

#: Sub-command modules, in the order ``d2a --help`` lists them (module ``x_y`` is command
#: ``x-y``).
COMMAND_MODULES = [
    'd2a.cli.spaces',
    'd2a.cli.train',
    'd2a.cli.search',
    'd2a.cli.evaluate',
    'd2a.cli.train_arch',
    'd2a.cli.plot',
    'd2a.cli.db',
    'd2a.cli.embedded',
]


class CLIError(Exception):
    r"""An error the user can fix; printed without a traceback."""


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    r"""The ``d2a`` parser with every command, or with ``command`` only."""
    parser = argparse.ArgumentParser(
        prog='d2a',
        description='Rapid neural architecture search: generate a good architecture for a new '
                    'dataset from a model meta-trained on a database of (dataset, architecture, '
                    'accuracy).')
    parser.add_argument('--version', action='version', version=f'd2a {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in COMMAND_MODULES:
        if command is None or _command_name(name) == command:
            importlib.import_module(name).add_parser(sub)
    return parser


def _command_name(module: str) -> str:
    return module.rsplit('.', 1)[1].replace('_', '-')


def _warning_printer(command: str):
    # Warnings (skipped rows, fewer candidates than asked) as one plain line each.
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f'd2a {command}: warning: {message}', file=sys.stderr if file is None else file)
    return show


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {_command_name(m) for m in COMMAND_MODULES}
    parser = build_parser(argv[0] if argv and argv[0] in commands else None)
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, so that a closed pipe is caught below
            return code
    except BrokenPipeError:
        # The reader went away (`d2a search ... | head`): stop quietly, as a process killed by
        # SIGPIPE does, and keep the interpreter's final flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (CLIError, ValueError, FileNotFoundError, FileExistsError, FileLocked) as e:
        print(f'd2a {args.command}: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'd2a {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
