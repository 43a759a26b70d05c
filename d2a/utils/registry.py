r"""A name -> object table with a register decorator (timm's and PyG's registry pattern).

One :class:`Registry` holds each family of pluggable pieces: search spaces
(:func:`d2a.graphs.get_space`), feature extractors (:func:`d2a.features.create_extractor`),
image sources (:func:`d2a.datasets.source_from_spec`), set and graph encoders
(:data:`d2a.sets.SET_ENCODERS`, :data:`d2a.graphs.GRAPH_ENCODERS`) and named model
configurations (:func:`d2a.registry.create_model`)::

    SPACES = Registry('search space', key=lambda cls: cls.name)

    @SPACES.register()
    class NB201Space(SearchSpace):
        name = 'nb201'

    SPACES.get('nb201')    # the class; an unknown name raises ValueError naming the known ones
"""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, List, Optional, TypeVar

T = TypeVar('T')


class Registry(Generic[T]):
    r"""Objects by name.

    Args:
        what (str): what the registry holds, for messages (``'search space'``).
        key (callable, optional): the name of an object registered without one (e.g. a
            class attribute).
        populate (callable, optional): imports the modules whose objects register
            themselves; called once, the first time a name is looked up or listed.
    """

    def __init__(self, what: str, key: Optional[Callable[[T], str]] = None,
                 populate: Optional[Callable[[], None]] = None) -> None:
        self.what = what
        self._key = key
        self._populate = populate
        self._items: Dict[str, T] = {}

    def register(self, name: Optional[str] = None) -> Callable[[T], T]:
        r"""A decorator that adds its argument under ``name`` (default: ``key(obj)``) and
        returns it unchanged; a later registration of a name replaces the earlier one."""
        def add(obj: T) -> T:
            self.add(name if name is not None else self._name_of(obj), obj)
            return obj
        return add

    def add(self, name: str, obj: T) -> None:
        r"""Adds ``obj`` under ``name``."""
        self._items[str(name)] = obj

    def _name_of(self, obj: T) -> str:
        if self._key is None:
            raise ValueError(f'a {self.what} needs a name to be registered')
        return str(self._key(obj))

    def _fill(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate()

    def get(self, name: str, where: Optional[str] = None) -> T:
        r"""The object called ``name``; raises :class:`ValueError` naming the known names
        (after ``where``, e.g. the option that gave the name, when given)."""
        if name not in self._items:
            self._fill()
        if name not in self._items:
            raise ValueError(f"{f'{where}: ' if where else ''}unknown {self.what} {name!r} "
                             f"(known: {', '.join(self.names())})")
        return self._items[name]

    def names(self) -> List[str]:
        r"""The registered names, sorted."""
        self._fill()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._fill()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.what!r}, {len(self._items)} registered)'
