r"""The meta-database: an HDF5 file of per-class image features, tasks, architectures and
their measured accuracies (the data MetaD2A learns from).

Layout (``docs/database.md`` has the full table); every table is a group of parallel 1-D
resizable datasets, readable with plain :mod:`h5py`::

    /                      attrs: format, schema_version, feature_extractor, feature_dim,
                                  feature_config (JSON), image_size, d2a_version, created
    /extractor/weights     uint8 [n_bytes]  optional: torch.save bytes of the extractor
    /sources/<source>      group; attrs spec (JSON), mean, std (per channel), num_channels
    /sources/<source>/<class>   float32 [n_images, feature_dim]
    /tasks/{name,source,split}  str [T];  /tasks/class_ptr int64 [T+1];  /tasks/classes str
    /archs/{arch,space}         str [A]
    /recipes/{id,json}          str [R]
    /results/{task,arch,recipe} int32 [N] (rows of the tables above),
             /results/{accuracy,wall_time} float32, /results/seed int64, /results/epochs int32
    /latency/<device>/{arch,ms} int32 / float32 [L]
    /pair_splits/<name>/{task,arch} int32 [P]  optional: (task, architecture) pairs held
                                  out for validation (MetaD2A's *_idx.pt files)

Writes never damage what is stored: a new file is built under a temporary name and renamed
into place on :meth:`MetaDatabase.close`; an existing file opened with ``mode='a'`` is
copied, changed, and renamed back (an exception inside ``with`` discards the changes).
Readers therefore see either the old or the new file, at every moment.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from d2a.datasets.tasks import SPLITS, Task, check_split
from d2a.utils.atomic import PathLike, atomic_replace, temp_path

FORMAT = 'd2a-metadatabase'
SCHEMA_VERSION = 1

_RESULT_COLUMNS = (('task', np.int32), ('arch', np.int32), ('recipe', np.int32),
                   ('accuracy', np.float32), ('seed', np.int64), ('epochs', np.int32),
                   ('wall_time', np.float32))


def _str_dtype():
    import h5py
    return h5py.string_dtype('utf-8')


@dataclass
class ResultRow:
    r"""One measured (task, architecture) pair.

    Args:
        task (str): task name.
        arch (str): architecture string of ``space``.
        accuracy (float): test accuracy in percent.
        recipe (str): id of the training recipe (``/recipes``).
        seed (int): training seed (``-1`` for seed-averaged imported values).
        epochs (int): training epochs.
        wall_time (float): training seconds (``nan`` when unknown).
        space (str): search space of ``arch``.
    """
    task: str
    arch: str
    accuracy: float
    recipe: str
    seed: int = 0
    epochs: int = 0
    wall_time: float = float('nan')
    space: str = 'nb201'

    def key(self) -> Tuple[str, str, str, str, int, int]:
        r"""Identity of a measurement; rows with equal keys are duplicates."""
        return (self.task, self.space, self.arch, self.recipe, int(self.seed), int(self.epochs))


@dataclass
class Results:
    r"""Result rows as parallel columns (NumPy arrays, ``str`` columns as object arrays)."""
    task: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    arch: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    space: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    recipe: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    accuracy: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    seed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    epochs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    wall_time: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.accuracy)

    def rows(self) -> Iterator[ResultRow]:
        for i in range(len(self)):
            yield ResultRow(str(self.task[i]), str(self.arch[i]), float(self.accuracy[i]),
                            str(self.recipe[i]), int(self.seed[i]), int(self.epochs[i]),
                            float(self.wall_time[i]), str(self.space[i]))


def _check_name(name: str, what: str) -> str:
    name = str(name)
    if not name or '/' in name or name in ('.', '..'):
        raise ValueError(f"{what} name {name!r} must be non-empty, without '/', and not '.'")
    return name


class MetaDatabase:
    r"""An HDF5 meta-database (see the module docstring for the layout).

    Use :meth:`create` for a new file and :meth:`open` for an existing one; both work as
    context managers. Changes become visible (atomically) on :meth:`close` or
    :meth:`commit`.

    Args:
        path (str): the database file.
        mode (str): ``'r'`` read only, ``'a'`` read and write an existing file, ``'w'``
            create (fails if the file exists unless ``overwrite``).
        overwrite (bool): with ``mode='w'``, replace an existing file on close.
    """

    def __init__(self, path: PathLike, mode: str = 'r', overwrite: bool = False) -> None:
        import h5py
        if mode not in ('r', 'a', 'w'):
            raise ValueError(f"mode must be 'r', 'a' or 'w', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._tmp: Optional[Path] = None
        self._cache: Dict[Tuple[str, str], np.ndarray] = {}
        self._index: Dict[str, Dict[Any, int]] = {}
        if mode == 'w':
            if self.path.exists() and not overwrite:
                raise FileExistsError(f'meta-database {self.path} already exists '
                                      '(open it with mode="a" or pass overwrite=True)')
            self._tmp = self._temp_path()
            self._h5 = h5py.File(self._tmp, 'w', track_order=True)
            return
        if not self.path.is_file():
            raise FileNotFoundError(f'meta-database {self.path} does not exist')
        validate_file(self.path)
        if mode == 'r':
            self._h5 = h5py.File(self.path, 'r')
        else:
            self._tmp = self._temp_path()
            shutil.copyfile(self.path, self._tmp)
            shutil.copymode(self.path, self._tmp)
            self._h5 = h5py.File(self._tmp, 'a')

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def create(cls, path: PathLike, feature_extractor: Optional[str] = None,
               feature_dim: Optional[int] = None,
               feature_config: Optional[Dict[str, Any]] = None, image_size: int = 32,
               overwrite: bool = False) -> 'MetaDatabase':
        r"""A new, empty database written to ``path`` on :meth:`close`.

        Args:
            feature_extractor (str, optional): registry name of the extractor the features
                come from (set later by :meth:`set_feature_extractor` or the first features).
            feature_dim (int, optional): feature size (else fixed by the first features).
            feature_config (dict, optional): the extractor's configuration.
            image_size (int): side of the images the features were computed from.
        """
        from d2a import __version__
        db = cls(path, 'w', overwrite=overwrite)
        a = db._h5.attrs
        a['format'] = FORMAT
        a['schema_version'] = SCHEMA_VERSION
        a['feature_extractor'] = feature_extractor or ''
        a['feature_dim'] = int(feature_dim or 0)
        a['feature_config'] = json.dumps(feature_config or {}, sort_keys=True)
        a['image_size'] = int(image_size)
        a['d2a_version'] = __version__
        a['created'] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
        for group in ('sources', 'tasks', 'archs', 'recipes', 'results', 'latency'):
            db._h5.create_group(group, track_order=True)
        return db

    @classmethod
    def open(cls, path: PathLike, mode: str = 'r') -> 'MetaDatabase':
        r"""Opens an existing database (``mode`` ``'r'`` or ``'a'``)."""
        if mode not in ('r', 'a'):
            raise ValueError(f"MetaDatabase.open mode must be 'r' or 'a', got {mode!r}")
        return cls(path, mode)

    def _temp_path(self) -> Path:
        return temp_path(self.path)

    @property
    def writable(self) -> bool:
        return self.mode in ('a', 'w')

    def _require_writable(self) -> None:
        if not self.writable:
            raise ValueError(f'meta-database {self.path} is open read-only')
        if self._h5 is None:
            raise ValueError(f'meta-database {self.path} is closed')

    def commit(self) -> None:
        r"""Makes the changes so far visible at :attr:`path` (atomic rename) and goes on."""
        import h5py
        if not self.writable:
            return
        self._h5.close()
        atomic_replace(self._tmp, self.path)
        self._tmp = self._temp_path()
        shutil.copyfile(self.path, self._tmp)
        shutil.copymode(self.path, self._tmp)
        self._h5 = h5py.File(self._tmp, 'a')
        self.mode = 'a'

    def close(self) -> None:
        r"""Closes the file; a writable database is moved into place first."""
        self._finish(keep=True)

    def discard(self) -> None:
        r"""Closes without keeping any change since the last commit."""
        self._finish(keep=False)

    def _finish(self, keep: bool) -> None:
        if getattr(self, '_h5', None) is None:
            return
        self._h5.close()
        self._h5 = None
        if self._tmp is not None:
            if keep:
                atomic_replace(self._tmp, self.path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> 'MetaDatabase':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.discard()

    @property
    def h5(self):
        r"""The underlying :class:`h5py.File` (for reading; prefer the methods)."""
        if self._h5 is None:
            raise ValueError(f'meta-database {self.path} is closed')
        return self._h5

    # ------------------------------------------------------------------ metadata
    @property
    def attrs(self) -> Dict[str, Any]:
        out = {}
        for k, v in self.h5.attrs.items():
            out[k] = v.item() if isinstance(v, np.generic) else v
        out['feature_config'] = json.loads(out.get('feature_config') or '{}')
        return out

    @property
    def feature_dim(self) -> int:
        return int(self.h5.attrs['feature_dim'])

    @property
    def feature_extractor_name(self) -> str:
        return str(self.h5.attrs['feature_extractor'])

    @property
    def image_size(self) -> int:
        return int(self.h5.attrs['image_size'])

    def set_feature_extractor(self, name: str, dim: int, config: Optional[Dict[str, Any]] = None,
                              weights: Optional[bytes] = None) -> None:
        r"""Records which extractor the features come from.

        Args:
            name (str): registry name (see :func:`d2a.features.create_extractor`).
            dim (int): feature size.
            config (dict, optional): the extractor's configuration.
            weights (bytes, optional): the extractor's saved weights, embedded so that
                :func:`d2a.features.load_extractor_from_db` rebuilds it from the file alone.
        """
        self._require_writable()
        if self.feature_dim and int(dim) != self.feature_dim and self._has_features():
            raise ValueError(f'{self.path}: feature_dim is {self.feature_dim}, cannot change it '
                             f'to {dim} while features are stored')
        a = self.h5.attrs
        a['feature_extractor'] = str(name)
        a['feature_dim'] = int(dim)
        a['feature_config'] = json.dumps(config or {}, sort_keys=True)
        if weights is not None:
            g = self.h5.require_group('extractor')
            if 'weights' in g:
                del g['weights']
            g.create_dataset('weights', data=np.frombuffer(weights, dtype=np.uint8),
                             chunks=True, fletcher32=True)

    def extractor_weights(self) -> Optional[bytes]:
        r"""The embedded extractor weights, or ``None``."""
        if 'extractor' in self.h5 and 'weights' in self.h5['extractor']:
            return _read(self.path, self.h5['extractor/weights']).tobytes()
        return None

    def _has_features(self) -> bool:
        return any(len(self.h5['sources'][s]) for s in self.h5['sources'])

    # ------------------------------------------------------------------ sources and features
    def add_source(self, name: str, spec: Optional[Dict[str, Any]] = None,
                   mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                   num_channels: Optional[int] = None) -> None:
        r"""Adds a source dataset (its raw-image spec and per-channel statistics).

        Args:
            name (str): source name.
            spec (dict, optional): :meth:`d2a.datasets.ImageSource.spec` of the raw images
                (``None`` for features imported without images).
            mean (list of float, optional), std (list of float, optional): per-channel
                statistics the images were normalised with (range ``[0, 1]``).
            num_channels (int, optional): channels of the raw images.
        """
        self._require_writable()
        name = _check_name(name, 'source')
        if name in self.h5['sources']:
            raise ValueError(f'{self.path}: source {name!r} already exists')
        g = self.h5['sources'].create_group(name, track_order=True)
        g.attrs['spec'] = json.dumps(spec, sort_keys=True) if spec is not None else ''
        g.attrs['mean'] = np.asarray(mean if mean is not None else [], dtype=np.float64)
        g.attrs['std'] = np.asarray(std if std is not None else [], dtype=np.float64)
        g.attrs['num_channels'] = int(num_channels or 0)

    def add_class_features(self, source: str, cls: str, features: np.ndarray) -> None:
        r"""Stores the features of one class of a source.

        Args:
            features (numpy.ndarray): ``[n_images, feature_dim]``.

        Raises :class:`ValueError` when the shape does not match the database's feature size.
        """
        self._require_writable()
        self._source_group(source)
        cls = _check_name(cls, 'class')
        features = np.asarray(features, dtype=np.float32)
        where = f'{self.path}: features of class {cls!r} of source {source!r}'
        if features.ndim != 2 or len(features) == 0:
            raise ValueError(f'{where} must be a non-empty [n_images, dim] array, '
                             f'got shape {list(features.shape)}')
        if not np.isfinite(features).all():
            raise ValueError(f'{where} contain NaN or infinite values')
        dim = self.feature_dim
        if dim and features.shape[1] != dim:
            raise ValueError(f'{where} have dim {features.shape[1]}, but the database\'s '
                             f'feature_dim is {dim} (extractor '
                             f'{self.feature_extractor_name or "unknown"!r})')
        if not dim:
            self.h5.attrs['feature_dim'] = int(features.shape[1])
        g = self.h5['sources'][source]
        if cls in g:
            raise ValueError(f'{where} already exist')
        g.create_dataset(cls, data=features, chunks=True, compression='gzip', compression_opts=1,
                         fletcher32=True)

    def sources(self) -> List[str]:
        return list(self.h5['sources'].keys())

    def _source_group(self, source: str):
        if source not in self.h5['sources']:
            raise ValueError(f'{self.path}: no source {source!r} '
                             f"(sources: {', '.join(self.sources()) or 'none'})")
        return self.h5['sources'][source]

    def classes(self, source: str) -> List[str]:
        r"""Class names of a source, in insertion order."""
        return list(self._source_group(source).keys())

    def source_info(self, source: str) -> Dict[str, Any]:
        r"""``spec`` (dict or ``None``), ``mean``, ``std``, ``num_channels`` of a source."""
        a = self._source_group(source).attrs
        spec = a.get('spec', '')
        return {'spec': json.loads(spec) if spec else None,
                'mean': [float(v) for v in a.get('mean', [])],
                'std': [float(v) for v in a.get('std', [])],
                'num_channels': int(a.get('num_channels', 0))}

    def features(self, source: str, cls: str) -> np.ndarray:
        r"""``[n_images, feature_dim]`` features of one class (cached when read only)."""
        key = (source, cls)
        if key in self._cache:
            return self._cache[key]
        g = self._source_group(source)
        if cls not in g:
            raise ValueError(f'{self.path}: source {source!r} has no class {cls!r}')
        arr = _read(self.path, g[cls])
        if arr.ndim != 2 or arr.shape[1] != self.feature_dim:
            raise ValueError(f'{self.path}: /sources/{source}/{cls} has shape {list(arr.shape)}, '
                             f'expected [n, {self.feature_dim}]')
        if not self.writable:
            self._cache[key] = arr
        return arr

    def num_images(self, source: str, cls: str) -> int:
        g = self._source_group(source)
        if cls not in g:
            raise ValueError(f'{self.path}: source {source!r} has no class {cls!r}')
        return int(g[cls].shape[0])

    # ------------------------------------------------------------------ tables (helpers)
    def _column(self, group: str, name: str) -> np.ndarray:
        key = ('/column', f'{group}/{name}')
        if key in self._cache:
            return self._cache[key]
        g = self.h5[group]
        if name not in g:
            return np.empty(0, dtype=object)
        ds = g[name]
        out = _read(self.path, ds)
        if not self.writable:  # a read-only file cannot change: keep what was read
            self._cache[key] = out
        return out

    def _append(self, group: str, name: str, values: Sequence[Any], dtype: Any) -> None:
        g = self.h5[group]
        values = np.asarray(values, dtype=object if dtype is str else dtype)
        if name not in g:
            g.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(1024,),
                             dtype=_str_dtype() if dtype is str else dtype,
                             fletcher32=dtype is not str)  # HDF5 cannot checksum vlen strings
        ds = g[name]
        n = ds.shape[0]
        ds.resize((n + len(values),))
        if len(values):
            ds[n:] = values

    def _lookup(self, table: str) -> Dict[Any, int]:
        if table not in self._index:
            if table == 'tasks':
                keys: Iterable[Any] = self._column('tasks', 'name')
            elif table == 'archs':
                keys = zip(self._column('archs', 'space'), self._column('archs', 'arch'))
            else:
                keys = self._column('recipes', 'id')
            self._index[table] = {k: i for i, k in enumerate(keys)}
        return self._index[table]

    # ------------------------------------------------------------------ tasks
    def add_tasks(self, tasks: Iterable[Task]) -> None:
        r"""Adds tasks; an existing task with the same definition is kept once.

        Raises :class:`ValueError` for a task name reused with another definition, or
        classes missing from a source that has features.
        """
        self._require_writable()
        index = self._lookup('tasks')
        pending: Dict[str, Task] = {}
        known: Dict[str, set] = {}
        for t in tasks:
            if t.name in index or t.name in pending:
                old = pending[t.name] if t.name in pending else self.task(t.name)
                if (old.source, old.classes, old.split) != (t.source, t.classes, t.split):
                    raise ValueError(f'{self.path}: task {t.name!r} already exists with another '
                                     'definition')
                continue
            if t.source not in known:
                g = self.h5['sources'].get(t.source)
                known[t.source] = set(g.keys()) if g is not None else set()
            if known[t.source]:
                missing = [c for c in t.classes if c not in known[t.source]]
                if missing:
                    raise ValueError(f'task {t.name!r}: source {t.source!r} has no class '
                                     f'{missing[0]!r}')
            pending[t.name] = t
        if not pending:
            return
        new = list(pending.values())
        ptr = self._column('tasks', 'class_ptr')
        start = int(ptr[-1]) if len(ptr) else 0
        if not len(ptr):
            self._append('tasks', 'class_ptr', [0], np.int64)
        offsets = start + np.cumsum([len(t.classes) for t in new])
        self._append('tasks', 'name', [t.name for t in new], str)
        self._append('tasks', 'source', [t.source for t in new], str)
        self._append('tasks', 'split', [t.split for t in new], str)
        self._append('tasks', 'classes', [c for t in new for c in t.classes], str)
        self._append('tasks', 'class_ptr', offsets, np.int64)
        n = len(index)
        for i, t in enumerate(new):
            index[t.name] = n + i

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def tasks(self, split: Optional[str] = None) -> List[Task]:
        r"""All tasks, or those of one split (``'meta-train'`` / ``'meta-test'``)."""
        if split is not None:
            check_split(split, 'tasks()')
        names = self._column('tasks', 'name')
        sources = self._column('tasks', 'source')
        splits = self._column('tasks', 'split')
        classes = self._column('tasks', 'classes')
        ptr = self._column('tasks', 'class_ptr')
        out = []
        for i, name in enumerate(names):
            if split is None or splits[i] == split:
                out.append(Task(str(name), str(sources[i]),
                                [str(c) for c in classes[ptr[i]:ptr[i + 1]]], str(splits[i])))
        return out

    def task(self, name: str) -> Task:
        index = self._lookup('tasks')
        if name not in index:
            raise ValueError(f'{self.path}: no task {name!r}')
        i = index[name]
        ptr = self.h5['tasks/class_ptr']
        lo, hi = int(ptr[i]), int(ptr[i + 1])
        return Task(name, self.h5['tasks/source'].asstr()[i],
                    list(self.h5['tasks/classes'].asstr()[lo:hi]), self.h5['tasks/split'].asstr()[i])

    def task_classes(self, task: Union[str, Task]) -> Tuple[str, List[str]]:
        r"""``(source, classes)`` of a task; an empty class list means every class of its source."""
        t = self.task(task) if isinstance(task, str) else task
        if t.source not in self.h5['sources'] or not len(self.h5['sources'][t.source]):
            raise ValueError(f'{self.path}: task {t.name!r} has no features '
                             f'(source {t.source!r} holds none)')
        return t.source, t.classes or self.classes(t.source)

    # ------------------------------------------------------------------ architectures, recipes
    def add_architectures(self, archs: Sequence[str], space: str = 'nb201') -> np.ndarray:
        r"""Adds architecture strings of ``space`` (validated, each stored once).

        Returns ``[len(archs)]`` row numbers in ``/archs``.
        """
        self._require_writable()
        from d2a.graphs import get_space
        sp = get_space(space)
        index = self._lookup('archs')
        rows, new = [], []
        for a in archs:
            key = (space, a)
            if key not in index:
                try:
                    sp.to_data(a)
                except ValueError as e:
                    raise ValueError(f'architecture {a!r} is not in space {space!r}: {e}') from None
                index[key] = len(index)
                new.append(a)
            rows.append(index[key])
        if new:
            self._append('archs', 'arch', new, str)
            self._append('archs', 'space', [space] * len(new), str)
        return np.asarray(rows, dtype=np.int64)

    def architectures(self, space: Optional[str] = None) -> List[str]:
        archs = self._column('archs', 'arch')
        spaces = self._column('archs', 'space')
        return [str(a) for a, s in zip(archs, spaces) if space is None or s == space]

    def add_recipe(self, recipe_id: str, fields: Dict[str, Any]) -> None:
        r"""Registers a training recipe; re-adding the same id needs the same fields."""
        self._require_writable()
        text = json.dumps(fields, sort_keys=True, default=str)
        index = self._lookup('recipes')
        if recipe_id in index:
            old = self.h5['recipes/json'].asstr()[index[recipe_id]]
            if json.loads(old) != json.loads(text):
                raise ValueError(f'{self.path}: recipe {recipe_id!r} already exists with other '
                                 f'fields (stored {_clip(old)}, new {_clip(text)}): store the '
                                 'new results under another recipe id (d2a db import ... '
                                 '--recipe NAME)')
            return
        self._append('recipes', 'id', [recipe_id], str)
        self._append('recipes', 'json', [text], str)
        index[recipe_id] = len(index)

    def recipes(self) -> Dict[str, Dict[str, Any]]:
        return {str(i): json.loads(j) for i, j in zip(self._column('recipes', 'id'),
                                                      self._column('recipes', 'json'))}

    # ------------------------------------------------------------------ results
    def add_results(self, rows: Iterable[ResultRow]) -> int:
        r"""Appends result rows, skipping duplicates of stored rows (same
        :meth:`ResultRow.key`). Tasks and recipes must exist; architectures are added.

        Returns the number of rows added.
        """
        self._require_writable()
        rows = list(rows)
        tasks = self._lookup('tasks')
        recipes = self._lookup('recipes')
        for r in rows:
            if r.task not in tasks:
                raise ValueError(f'{self.path}: result for unknown task {r.task!r} (add it first)')
            if r.recipe not in recipes:
                raise ValueError(f'{self.path}: result with unknown recipe {r.recipe!r} '
                                 '(add_recipe first)')
            if not np.isfinite(r.accuracy):
                raise ValueError(f'result of {r.arch!r} on task {r.task!r}: accuracy '
                                 f'{r.accuracy} is not finite')
        by_space: Dict[str, List[int]] = {}
        for i, r in enumerate(rows):
            by_space.setdefault(r.space, []).append(i)
        arch_rows = np.empty(len(rows), dtype=np.int64)
        for space, idx in by_space.items():
            arch_rows[idx] = self.add_architectures([rows[i].arch for i in idx], space)
        seen = self._result_keys()
        keep = []
        for i, r in enumerate(rows):
            k = (tasks[r.task], int(arch_rows[i]), recipes[r.recipe], int(r.seed), int(r.epochs))
            if k not in seen:
                seen.add(k)
                keep.append(i)
        cols = {'task': [tasks[rows[i].task] for i in keep], 'arch': arch_rows[keep],
                'recipe': [recipes[rows[i].recipe] for i in keep],
                'accuracy': [rows[i].accuracy for i in keep], 'seed': [rows[i].seed for i in keep],
                'epochs': [rows[i].epochs for i in keep],
                'wall_time': [rows[i].wall_time for i in keep]}
        for name, dtype in _RESULT_COLUMNS:
            self._append('results', name, cols[name], dtype)
        return len(keep)

    def _result_keys(self) -> set:
        if '_results' not in self._index:
            c = {n: self._column('results', n) for n in ('task', 'arch', 'recipe', 'seed', 'epochs')}
            self._index['_results'] = set(zip(*(c[n].tolist() for n in
                                                ('task', 'arch', 'recipe', 'seed', 'epochs'))))
        return self._index['_results']  # type: ignore[return-value]

    @property
    def num_results(self) -> int:
        return int(self.h5['results']['accuracy'].shape[0]) if 'accuracy' in self.h5['results'] else 0

    def results(self, task: Optional[str] = None, recipe: Optional[str] = None,
                space: Optional[str] = None) -> Results:
        r"""Result rows as :class:`Results` columns, optionally filtered."""
        if not self.num_results:
            return Results()
        cols = {n: self._column('results', n) for n, _ in _RESULT_COLUMNS}
        names = self._column('tasks', 'name')
        archs = self._column('archs', 'arch')
        spaces = self._column('archs', 'space')
        recipes = self._column('recipes', 'id')
        mask = np.ones(len(cols['accuracy']), dtype=bool)
        if task is not None:
            index = self._lookup('tasks')
            if task not in index:
                raise ValueError(f'{self.path}: no task {task!r}')
            mask &= cols['task'] == index[task]
        if recipe is not None:
            mask &= recipes[cols['recipe']] == recipe
        if space is not None:
            mask &= spaces[cols['arch']] == space
        return Results(task=names[cols['task'][mask]], arch=archs[cols['arch'][mask]],
                       space=spaces[cols['arch'][mask]], recipe=recipes[cols['recipe'][mask]],
                       accuracy=cols['accuracy'][mask], seed=cols['seed'][mask],
                       epochs=cols['epochs'][mask], wall_time=cols['wall_time'][mask])

    # ------------------------------------------------------------------ latency
    def add_latency(self, device: str, archs: Sequence[str], ms: Sequence[float],
                    space: str = 'nb201') -> int:
        r"""Stores latencies (milliseconds) of architectures on ``device``; an architecture
        already measured on that device keeps its first value. Returns rows added."""
        self._require_writable()
        device = _check_name(device, 'device')
        if len(archs) != len(ms):
            raise ValueError(f'latency of {device!r}: {len(archs)} architectures but {len(ms)} values')
        rows = self.add_architectures(list(archs), space)
        g = self.h5['latency'].require_group(device)
        have = set(g['arch'][()].tolist()) if 'arch' in g else set()
        keep = []
        for i, r in enumerate(rows.tolist()):
            if r not in have:
                have.add(r)
                keep.append(i)
        self._append(f'latency/{device}', 'arch', rows[keep], np.int32)
        self._append(f'latency/{device}', 'ms', np.asarray(ms, dtype=np.float32)[keep], np.float32)
        return len(keep)

    def devices(self) -> List[str]:
        return list(self.h5['latency'].keys())

    def latency(self, device: str) -> Dict[str, float]:
        r"""Architecture string -> latency in ms on ``device``."""
        if device not in self.h5['latency']:
            raise ValueError(f"{self.path}: no latency table for device {device!r} "
                             f"(devices: {', '.join(self.devices()) or 'none'})")
        archs = self._column('archs', 'arch')
        g = self.h5['latency'][device]
        return {str(archs[a]): float(m) for a, m in zip(g['arch'][()], g['ms'][()])}

    # ------------------------------------------------------------------ pair splits
    def add_pair_split(self, name: str, pairs: Sequence[Tuple[str, str]],
                       space: str = 'nb201') -> int:
        r"""Stores a named set of (task, architecture) pairs held out for validation (as
        MetaD2A's ``*_idx.pt`` files define one over its pairs). The tasks must exist.
        A name already stored must hold the same pairs (then nothing changes).

        Returns the number of pairs stored.
        """
        self._require_writable()
        name = _check_name(name, 'pair split')
        pairs = list(dict.fromkeys((str(t), str(a)) for t, a in pairs))
        if not pairs:
            raise ValueError(f'{self.path}: pair split {name!r} holds no pair')
        if name in self.pair_splits():
            if set(self.pair_split(name)) != set(pairs):
                raise ValueError(f'{self.path}: pair split {name!r} already exists with other '
                                 'pairs (choose another name)')
            return 0
        tasks = self._lookup('tasks')
        unknown = [t for t, _ in pairs if t not in tasks]
        if unknown:
            raise ValueError(f'{self.path}: pair split {name!r} names unknown task '
                             f'{unknown[0]!r}')
        arch_rows = self.add_architectures([a for _, a in pairs], space)
        self.h5.require_group('pair_splits').create_group(name)
        self._append(f'pair_splits/{name}', 'task', [tasks[t] for t, _ in pairs], np.int32)
        self._append(f'pair_splits/{name}', 'arch', arch_rows, np.int32)
        return len(pairs)

    def pair_splits(self) -> List[str]:
        r"""Names of the stored pair splits."""
        return list(self.h5['pair_splits'].keys()) if 'pair_splits' in self.h5 else []

    def pair_split(self, name: str) -> List[Tuple[str, str]]:
        r"""The (task, architecture) pairs of a stored pair split."""
        if name not in self.pair_splits():
            raise ValueError(f"{self.path}: no pair split {name!r} "
                             f"(pair splits: {', '.join(self.pair_splits()) or 'none'})")
        names = self._column('tasks', 'name')
        archs = self._column('archs', 'arch')
        task = self._column(f'pair_splits/{name}', 'task')
        arch = self._column(f'pair_splits/{name}', 'arch')
        return [(str(names[t]), str(archs[a])) for t, a in zip(task, arch)]

    # ------------------------------------------------------------------ reader API for training
    def task_features(self, task: Union[str, Task], num_sample: int,
                      rng: Optional[np.random.Generator] = None,
                      replace: bool = False) -> np.ndarray:
        r"""Samples ``num_sample`` feature vectors per class of a task (one episode).

        Args:
            task (str or Task): the task.
            num_sample (int): vectors per class (MetaD2A: 20).
            rng (numpy.random.Generator, optional): source of randomness.
            replace (bool): sample with replacement (allows classes smaller than
                ``num_sample``).

        Returns:
            ``[num_classes, num_sample, feature_dim]`` ``float32``.

        Raises :class:`ValueError` naming the class when it has fewer than ``num_sample``
        images and ``replace`` is false.
        """
        rng = rng if rng is not None else np.random.default_rng()
        source, classes = self.task_classes(task)
        name = task if isinstance(task, str) else task.name
        out = np.empty((len(classes), num_sample, self.feature_dim), dtype=np.float32)
        for i, c in enumerate(classes):
            x = self.features(source, c)
            if not replace and len(x) < num_sample:
                raise ValueError(f'task {name!r}: class {c!r} of source {source!r} has '
                                 f'{len(x)} images, fewer than num_sample={num_sample}')
            out[i] = x[rng.choice(len(x), size=num_sample, replace=replace)]
        return out

    def task_results(self, task: str, recipe: Optional[str] = None,
                     average_seeds: bool = True) -> Tuple[List[str], np.ndarray]:
        r"""``(archs, accuracies)`` measured on a task.

        Args:
            recipe (str, optional): keep only this recipe's rows.
            average_seeds (bool): one row per architecture (and recipe), the mean over seeds.

        Returns:
            A list of architecture strings and a ``[len(archs)]`` ``float32`` array.
        """
        r = self.results(task=task, recipe=recipe)
        if not average_seeds:
            return [str(a) for a in r.arch], r.accuracy.astype(np.float32)
        sums: Dict[Tuple[str, str], List[float]] = {}
        for a, rec, acc in zip(r.arch, r.recipe, r.accuracy):
            sums.setdefault((str(a), str(rec)), []).append(float(acc))
        archs = [a for a, _ in sums]
        return archs, np.asarray([np.mean(v) for v in sums.values()], dtype=np.float32)

    # ------------------------------------------------------------------ summary
    def info(self) -> Dict[str, Any]:
        r"""Counts and ranges for a summary (see ``d2a db info``)."""
        attrs = self.attrs
        sources = {}
        for s in self.sources():
            g = self.h5['sources'][s]
            sources[s] = {'classes': len(g), 'images': int(sum(g[c].shape[0] for c in g))}
        tasks = self.tasks()
        per_task: Dict[str, Dict[str, Any]] = {}
        for t in tasks:
            per_task[t.name] = {'split': t.split, 'source': t.source,
                                'classes': len(t.classes), 'results': 0}
        task_col = self._column('results', 'task').astype(np.int64)
        acc = self._column('results', 'accuracy').astype(np.float64)
        if len(acc):
            # Per-task statistics in one pass (bincount / ufunc.at), not one mask per task.
            n = len(tasks)
            count = np.bincount(task_col, minlength=n)
            total = np.bincount(task_col, weights=acc, minlength=n)
            lo = np.full(n, np.inf)
            hi = np.full(n, -np.inf)
            np.minimum.at(lo, task_col, acc)
            np.maximum.at(hi, task_col, acc)
            for i in np.flatnonzero(count):
                per_task[tasks[i].name].update(results=int(count[i]), acc_min=float(lo[i]),
                                               acc_max=float(hi[i]),
                                               acc_mean=float(total[i] / count[i]))
        return {
            'path': str(self.path), 'schema_version': attrs['schema_version'],
            'feature_extractor': attrs['feature_extractor'], 'feature_dim': attrs['feature_dim'],
            'image_size': attrs['image_size'], 'd2a_version': attrs['d2a_version'],
            'created': attrs['created'], 'sources': sources,
            'num_tasks': {s: sum(t.split == s for t in tasks) for s in SPLITS},
            'num_architectures': len(self._column('archs', 'arch')),
            'num_results': len(acc), 'recipes': sorted(self.recipes()),
            'devices': self.devices(), 'tasks': per_task,
            'pair_splits': {n: len(self._column(f'pair_splits/{n}', 'task'))
                            for n in self.pair_splits()},
        }

    def __repr__(self) -> str:
        state = 'closed' if self._h5 is None else self.mode
        return f'MetaDatabase({str(self.path)!r}, mode={state!r})'


def validate_file(path: PathLike) -> None:
    r"""Checks that ``path`` is a readable meta-database of this schema version.

    Raises :class:`ValueError` naming the file and the field at fault (corrupt or truncated
    HDF5, another format, another schema version, inconsistent table columns).
    """
    import h5py
    path = Path(path)
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise ValueError(f'{path} is not a readable HDF5 file (corrupt or truncated?): {e}') \
            from None
    try:
        with f:
            if f.attrs.get('format') != FORMAT:
                raise ValueError(f"{path} is not a d2a meta-database (attribute 'format' is "
                                 f"{f.attrs.get('format')!r}, expected {FORMAT!r})")
            version = f.attrs.get('schema_version')
            if version != SCHEMA_VERSION:
                raise ValueError(f"{path}: schema_version is {version}, this d2a reads version "
                                 f'{SCHEMA_VERSION}')
            for group in ('sources', 'tasks', 'archs', 'recipes', 'results', 'latency'):
                if group not in f:
                    raise ValueError(f'{path}: group /{group} is missing')
            _check_columns(path, f, 'tasks', ('name', 'source', 'split'))
            _check_columns(path, f, 'archs', ('arch', 'space'))
            _check_columns(path, f, 'recipes', ('id', 'json'))
            _check_columns(path, f, 'results', tuple(n for n, _ in _RESULT_COLUMNS))
            for name in (f['pair_splits'] if 'pair_splits' in f else ()):
                _check_columns(path, f, f'pair_splits/{name}', ('task', 'arch'))
            if 'name' in f['tasks']:
                ptr = _read(path, f['tasks/class_ptr'])
                if ptr.shape[0] != f['tasks/name'].shape[0] + 1 or \
                        int(ptr[-1]) != f['tasks/classes'].shape[0]:
                    raise ValueError(f'{path}: /tasks/class_ptr does not match /tasks/name and '
                                     '/tasks/classes')
            dim = int(f.attrs.get('feature_dim', 0))
            for s in f['sources']:
                for c, ds in f['sources'][s].items():
                    if ds is None:
                        raise ValueError(f'{path}: /sources/{s}/{c} is damaged (cannot be '
                                         'opened)')
                    if ds.ndim != 2 or ds.shape[1] != dim:
                        raise ValueError(f'{path}: /sources/{s}/{c} has shape {list(ds.shape)}, '
                                         f'but feature_dim is {dim}')
    except (OSError, KeyError, RuntimeError, AttributeError, TypeError) as e:
        raise ValueError(f'{path} is damaged: {e}') from None


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[:width - 3] + '...'


def _read(path: Path, ds) -> np.ndarray:
    # A whole dataset (strings as an object array); a failed checksum or decompression
    # becomes a ValueError naming the dataset.
    try:
        return np.asarray(ds.asstr()[()], dtype=object) if ds.dtype.kind == 'O' else ds[()]
    except (OSError, RuntimeError) as e:
        raise ValueError(f'{path}: dataset {ds.name} is damaged ({str(e).strip()}); '
                         f"'d2a db check {path}' reads every dataset") from None


def check_file(path: PathLike, features: bool = True) -> Dict[str, int]:
    r"""Reads every dataset of a meta-database, verifying the checksums d2a writes (HDF5's
    fletcher32 filter) and the decompression of each chunk.

    Args:
        path (str): the database.
        features (bool): read the feature arrays too (``False``: the tables, the
            extractor's weights and the structure only -- the fast form run before
            training; features are verified when they are read).

    Returns ``{'datasets': read, 'bytes': bytes read, 'unchecked': numeric datasets
    without a checksum (written before d2a added them)}``; string columns cannot carry one
    in HDF5 and are read only. Raises :class:`ValueError` naming the first damaged
    dataset.
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'meta-database {path} does not exist')
    validate_file(path)
    counts = {'datasets': 0, 'bytes': 0, 'unchecked': 0}
    names: List[str] = []
    try:
        with h5py.File(path, 'r') as f:
            f.visit(names.append)
            for name in names:
                try:
                    obj = f.get(name)
                except (OSError, RuntimeError, KeyError) as e:
                    raise ValueError(f'{path}: object /{name} is damaged ({e})') from None
                if obj is None:
                    raise ValueError(f'{path}: object /{name} is damaged (cannot be opened)')
                if not isinstance(obj, h5py.Dataset) or \
                        (not features and name.startswith('sources/')):
                    continue
                data = _read(path, obj)
                counts['datasets'] += 1
                counts['bytes'] += int(getattr(data, 'nbytes', 0))
                counts['unchecked'] += int(not obj.fletcher32 and obj.dtype.kind != 'O')
    except (OSError, RuntimeError, KeyError, AttributeError, TypeError) as e:
        raise ValueError(f'{path} is damaged: {e}') from None
    return counts


def _check_columns(path: Path, f, group: str, names: Tuple[str, ...]) -> None:
    g = f[group]
    lengths = {n: g[n].shape[0] for n in names if n in g}
    if lengths and (len(lengths) != len(names) or len(set(lengths.values())) != 1):
        raise ValueError(f'{path}: columns of /{group} differ in length or are missing: {lengths}')
