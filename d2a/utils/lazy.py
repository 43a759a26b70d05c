r"""Deferred imports.

* :func:`lazy_exports` -- names that a package resolves on first use (:pep:`562`), so that
  importing the package for one light name does not import the heavy modules behind the
  others::

      _EXPORTS = {'Recipe': 'd2a.nets.recipe', 'NB201Network': 'd2a.nets.nb201'}
      __getattr__ = lazy_exports(__name__, _EXPORTS)
      __all__ = sorted(_EXPORTS)

* :func:`defer_pyg_dynamo` -- PyTorch Geometric without ``torch._dynamo`` at import time
  (``import d2a`` calls it).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    r"""A module ``__getattr__`` that imports ``exports[name]`` and returns its ``name``."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(exports[name]), name)
    return __getattr__


# ----------------------------------------------------------------------------- PyG's import
_PYG_ISINSTANCE = 'torch_geometric.isinstance'


def _is_torch_instance(obj: Any, cls: Any) -> bool:
    # PyG's is_torch_instance: isinstance that also sees through torch.compile's wrapper.
    import torch._dynamo
    if isinstance(obj, torch._dynamo.OptimizedModule):
        return isinstance(obj._orig_mod, cls)
    return isinstance(obj, cls)


class _DeferDynamo(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    r"""Loads ``torch_geometric.isinstance`` with an ``is_torch_instance`` that imports
    ``torch._dynamo`` on its first call instead of at import (see :func:`defer_pyg_dynamo`)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _PYG_ISINSTANCE:
            return None
        sys.meta_path.remove(self)  # once: PyG imports the module once
        real = importlib.machinery.PathFinder.find_spec(name, path)
        if real is None or real.origin is None:
            return None
        try:
            with open(real.origin, encoding='utf-8') as f:
                source = f.read()
        except OSError:
            return None
        # Only the module this replaces: one function, is_torch_instance, on torch._dynamo.
        if source.count('\ndef ') != 1 or '\ndef is_torch_instance(' not in source \
                or 'torch._dynamo.OptimizedModule' not in source:
            return None
        return importlib.util.spec_from_file_location(name, real.origin, loader=self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        module.is_torch_instance = _is_torch_instance


def defer_pyg_dynamo() -> None:
    r"""Lets PyTorch Geometric import without importing ``torch._dynamo``.

    Every ``import torch_geometric...`` runs PyG's package ``__init__``, which imports
    ``torch_geometric.isinstance``; that module's only function, ``is_torch_instance``,
    unwraps ``torch.compile``'d modules and imports ``torch._dynamo`` (and SymPy) to do so,
    which costs more than importing torch itself. d2a never compiles at import time: this
    loads that module with the same function, importing ``torch._dynamo`` on its first call.
    It does nothing when PyG is already imported, and a PyG whose module looks different is
    imported as usual.
    """
    if _PYG_ISINSTANCE in sys.modules or 'torch_geometric' in sys.modules:
        return
    if not any(isinstance(f, _DeferDynamo) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferDynamo())
