r"""Names that a package resolves on first use (:pep:`562`), so that importing the package
for one light name does not import the heavy modules behind the others::

    _EXPORTS = {'Recipe': 'd2a.nets.recipe', 'NB201Network': 'd2a.nets.nb201'}
    __getattr__ = lazy_exports(__name__, _EXPORTS)
    __all__ = sorted(_EXPORTS)
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    r"""A module ``__getattr__`` that imports ``exports[name]`` and returns its ``name``."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(exports[name]), name)
    return __getattr__
