r"""Importers of MetaD2A's preprocessed files, read without python-igraph and without
executing arbitrary pickles.

Formats (MetaD2A, Lee et al., ICLR 2021, and the copy redistributed with DiffusionNAG):

* ``<name>bylabel.pt`` -- dict class -> list holding one float tensor ``[n_images, 512]``
  (ImageNet ResNet-18 features): :func:`import_bylabel`;
* ``meta_train_task_lst.pt`` -- list of tasks, each a list of class ids, 1-based into
  ``imgnet32bylabel.pt``: :func:`import_task_list`;
* ``meta_train_tasks_predictor.pt`` / ``..._generator.pt`` -- dict of parallel lists: ``acc``
  (float or tensor), ``task`` (index into the task list) and the architecture, as a pickled
  python-igraph ``Graph`` under ``graph`` or ``g`` and, in the DiffusionNAG copy, as the
  NB201 string under ``str``: :func:`import_pairs`;
* ``meta_train_tasks_predictor_idx.pt`` -- a permutation of the pairs, the first 400
  validation: :func:`import_pair_split`;
* ``nasbench201.pt`` -- dict with ``['arch']['str']`` and ``['test-acc'][dataset]``:
  :func:`import_nasbench201`.

:func:`load_pt` unpickles with an allow-list: tensor and NumPy reconstruction, ordered dicts,
and ``igraph.Graph``, which becomes an :class:`IGraphStandIn` holding the constructor
arguments python-igraph pickles (vertex count, edge list, directedness, graph / vertex /
edge attributes). Any other global in the file raises :class:`ValueError`.
"""
from __future__ import annotations

import importlib
import pickle
import types
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from d2a.datasets.tasks import Task
from d2a.db.database import MetaDatabase, ResultRow
from d2a.utils.atomic import PathLike

#: Recipe id of results imported from MetaD2A's pair files (its own training protocol).
METAD2A_RECIPE = 'metad2a'


class IGraphStandIn:
    r"""What a pickled python-igraph ``Graph`` holds, without python-igraph.

    Args:
        n (int): number of vertices.
        edges (list of tuple): ``(source, target)`` pairs.
        directed (bool): directedness.
        graph_attrs (dict), vertex_attrs (dict), edge_attrs (dict): attribute name -> value
            (vertex and edge attributes as lists).
    """

    def __init__(self, n: int = 0, edges: Sequence[Tuple[int, int]] = (), directed: bool = False,
                 graph_attrs: Optional[Dict] = None, vertex_attrs: Optional[Dict] = None,
                 edge_attrs: Optional[Dict] = None) -> None:
        self.n = int(n)
        self.edges = [tuple(int(v) for v in e) for e in edges]
        self.directed = bool(directed)
        self.graph_attrs = dict(graph_attrs or {})
        self.vertex_attrs = dict(vertex_attrs or {})
        self.edge_attrs = dict(edge_attrs or {})

    def __setstate__(self, state: Any) -> None:
        # python-igraph pickles the instance __dict__ as state (usually empty).
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if not k.startswith('__')})

    def vcount(self) -> int:
        return self.n

    def get_edgelist(self) -> List[Tuple[int, int]]:
        return list(self.edges)

    def __repr__(self) -> str:
        return f'IGraphStandIn(n={self.n}, edges={len(self.edges)}, vertex_attrs={list(self.vertex_attrs)})'


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    import collections
    import codecs

    import torch._utils
    allowed: Dict[Tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('_codecs', 'encode'): codecs.encode,  # bytes in protocol-2 pickles
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
        ('igraph', 'Graph'): IGraphStandIn,
    }
    for name in ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3', '_rebuild_parameter'):
        if hasattr(torch._utils, name):
            allowed[('torch._utils', name)] = getattr(torch._utils, name)
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')
    except ImportError:  # numpy 1.x
        multiarray = importlib.import_module('numpy.core.multiarray')
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(mod, '_reconstruct')] = multiarray._reconstruct
        allowed[(mod, 'scalar')] = multiarray.scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    r"""An unpickler that resolves only the globals of MetaD2A's files (see the module)."""
    _allowed: Optional[Dict[Tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        obj = RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f'global {module}.{name} is not allowed in a MetaD2A file')
        return obj


def _restricted_module() -> types.ModuleType:
    mod = types.ModuleType('d2a_restricted_pickle')
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]

    def load(f, **kwargs):  # used by torch for the legacy (non-zip) format
        return RestrictedUnpickler(f, **kwargs).load()

    mod.load = load  # type: ignore[attr-defined]
    return mod


def load_pt(path: PathLike) -> Any:
    r"""Loads a MetaD2A ``.pt`` file with the restricted unpickler.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` naming the
    file for a damaged one or one that needs a global outside the allow-list.
    """
    import torch
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'MetaD2A file {path} does not exist')
    with path.open('rb') as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (0x80 ...).
    if not (head.startswith(b'PK') or head[:1] == b'\x80'):
        kind = 'empty' if not head else \
            'text' if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else 'other data'
        raise ValueError(f'{path} is not a torch file (it holds {kind}, starting {head!r}); '
                         'MetaD2A files are written by torch.save')
    try:
        # weights_only=False is required with a custom pickle_module; the restricted
        # unpickler is what keeps the load safe.
        return torch.load(path, map_location='cpu', pickle_module=_restricted_module(),
                          weights_only=False)
    except pickle.UnpicklingError as e:
        raise ValueError(f'{path}: {e}') from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f'{path} is not a readable MetaD2A .pt file: {e}') from None


def _to_float(value: Any, where: str) -> float:
    try:
        return float(np.asarray(value.detach().cpu() if hasattr(value, 'detach') else value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f'{where}: {value!r} is not a number') from None


def graph_to_arch(graph: Any, where: str) -> str:
    r"""The NB201 string of MetaD2A's operation-on-node graph (types START=0, END=1, ops 2-6
    in string order)."""
    from d2a.graphs.nb201 import OPS, format_arch
    types_ = getattr(graph, 'vertex_attrs', {}).get('type') if not isinstance(graph, dict) else \
        graph.get('type')
    if types_ is None:
        raise ValueError(f"{where}: graph has no vertex attribute 'type'")
    types_ = [int(t) for t in np.asarray(types_).reshape(-1)]
    if len(types_) != 8 or types_[0] != 0 or types_[-1] != 1 or \
            not all(2 <= t < 2 + len(OPS) for t in types_[1:-1]):
        raise ValueError(f'{where}: vertex types {types_} are not an NB201 cell '
                         '(START=0, six ops 2..6, END=1)')
    return format_arch([OPS[t - 2] for t in types_[1:-1]])


def _column(data: Dict[str, Any], key: str, path: Path) -> List[Any]:
    if key not in data:
        raise ValueError(f"{path}: no key {key!r} (keys: {', '.join(map(str, data))})")
    value = data[key]
    return list(value.tolist() if hasattr(value, 'tolist') and not isinstance(value, list) else value)


def import_bylabel(db: MetaDatabase, path: PathLike, source: str,
                   extractor: str = 'resnet18_imagenet') -> int:
    r"""Imports ``<name>bylabel.pt`` as a source of features (classes named by their keys).

    Features are MetaD2A's ImageNet ResNet-18 vectors; a database without features records
    ``extractor`` as its feature extractor. Returns the number of classes added.
    """
    path = Path(path)
    data = load_pt(path)
    if isinstance(data, (list, tuple)):
        data = dict(enumerate(data))
    if not isinstance(data, dict) or not data:
        raise ValueError(f'{path}: expected a non-empty dict class -> [tensor [n, dim]]')
    arrays = {}
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(f'{path}: class {key!r} holds {len(value)} items, expected one tensor')
            value = value[0]
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, 'detach') else value,
                         dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f'{path}: class {key!r} features have shape {list(arr.shape)}, '
                             'expected [n_images, dim]')
        arrays[str(key)] = arr
    dims = {a.shape[1] for a in arrays.values()}
    if len(dims) != 1:
        raise ValueError(f'{path}: classes have different feature dims {sorted(dims)}')
    dim = dims.pop()
    if not db.feature_extractor_name:
        db.set_feature_extractor(extractor, dim, {'in_channels': 3})
    if source not in db.sources():
        db.add_source(source, None)
    have = set(db.classes(source))
    added = 0
    for cls, arr in arrays.items():
        if cls not in have:
            db.add_class_features(source, cls, arr)
            added += 1
    return added


def import_task_list(db: MetaDatabase, path: PathLike, source: str = 'imgnet32',
                     class_base: int = 1, prefix: str = 'metad2a-',
                     split: str = 'meta-train') -> int:
    r"""Imports ``meta_train_task_lst.pt``: task ``i`` becomes ``<prefix><i>`` over
    ``source`` with classes ``id - class_base`` (the ids are 1-based into the bylabel keys).

    Returns the number of tasks added.
    """
    path = Path(path)
    data = load_pt(path)
    if not isinstance(data, (list, tuple)):
        raise ValueError(f'{path}: expected a list of tasks (lists of class ids)')
    if source not in db.sources():
        raise ValueError(f'{path}: the tasks are over source {source!r}, which {db.path} does '
                         'not hold (import its features first: d2a db import DB metad2a-bylabel '
                         f'FILE --source {source}, or name the source with --source)')
    have = set(db.classes(source))
    tasks = []
    for i, ids in enumerate(data):
        ids = np.asarray(ids.tolist() if hasattr(ids, 'tolist') else ids)
        if ids.ndim != 1:
            raise ValueError(f'{path}: task {i} is {ids.tolist()!r}, not a list of class ids '
                             '(a task list is a list of lists)')
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f'{path}: task {i} holds non-integer class ids')
        if len(ids) < 2:
            raise ValueError(f'{path}: task {i} has {len(ids)} class id(s); a task needs at '
                             'least 2 classes')
        classes = [str(int(c) - class_base) for c in ids]
        missing = [c for c in classes if c not in have]
        if missing:
            raise ValueError(f'{path}: task {i} uses class id {int(missing[0]) + class_base}, '
                             f'class {missing[0]!r} of source {source!r} is not in {db.path} '
                             f'(--class-base {class_base}: is it right?)')
        tasks.append(Task(f'{prefix}{i}', source, classes, split))
    before = len(db.tasks())
    db.add_tasks(tasks)
    return len(db.tasks()) - before


def pair_archs(data: Dict[str, Any], path: Path) -> List[str]:
    r"""NB201 strings of a pair file: ``str`` when present, else decoded from ``graph``/``g``."""
    if 'str' in data:
        return [str(s) for s in _column(data, 'str', path)]
    key = 'graph' if 'graph' in data else 'g'
    return [graph_to_arch(g, f'{path}[{key!r}][{i}]') for i, g in enumerate(_column(data, key, path))]


#: What :func:`import_pairs` does with a (task, architecture) pair the file holds twice.
DUPLICATE_POLICIES = ('error', 'first', 'mean')


def import_pairs(db: MetaDatabase, path: PathLike, prefix: str = 'metad2a-',
                 recipe: str = METAD2A_RECIPE, duplicates: str = 'error') -> Dict[str, int]:
    r"""Imports ``meta_train_tasks_predictor.pt`` / ``..._generator.pt`` (pairs of task
    index, architecture and accuracy) as results; the tasks (``<prefix><task>``) must have
    been imported. Rows are stored with seed ``-1`` (one imported value per pair) and
    epochs ``0`` (unknown).

    Args:
        recipe (str): recipe id of the rows: a second pairs file from another protocol
            joins the database under another id.
        duplicates (str): a (task, architecture) pair listed more than once (MetaD2A's
            predictor file has two, with different accuracies): ``'error'`` refuses the
            file naming them, ``'first'`` keeps the first copy, ``'mean'`` stores the mean.

    Returns ``{'added': rows added, 'duplicates': pairs listed more than once, 'stored':
    pairs the database already held (kept as stored)}``.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, "
                         f'got {duplicates!r}')
    path = Path(path)
    data = load_pt(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of parallel lists ('acc', 'task', 'graph'/'g'/'str')")
    archs = pair_archs(data, path)
    accs = [_to_float(a, f'{path}[acc][{i}]') for i, a in enumerate(_column(data, 'acc', path))]
    tasks = [int(_to_float(t, f'{path}[task][{i}]')) for i, t in enumerate(_column(data, 'task', path))]
    if not len(archs) == len(accs) == len(tasks):
        raise ValueError(f'{path}: lists differ in length (archs {len(archs)}, acc {len(accs)}, '
                         f'task {len(tasks)})')
    known = {t.name for t in db.tasks()}
    missing = sorted({f'{prefix}{t}' for t in tasks} - known)
    if missing:
        raise ValueError(f'{path}: task {missing[0]!r} is not in {db.path} (import the task '
                         'list first)')
    groups: Dict[Tuple[int, str], List[int]] = {}
    for i, key in enumerate(zip(tasks, archs)):
        groups.setdefault(key, []).append(i)
    repeated = [(key, idx) for key, idx in groups.items() if len(idx) > 1]
    if repeated and duplicates == 'error':
        (task, arch), idx = repeated[0]
        raise ValueError(
            f'{path}: {len(repeated)} (task, architecture) pair{"s" if len(repeated) > 1 else ""} '
            f'listed more than once, e.g. task {task} {arch} at entries {idx} with accuracies '
            f"{', '.join(f'{accs[i]:.2f}' for i in idx)}: choose --duplicates first or "
            '--duplicates mean')
    merged = {key: accs[idx[0]] if duplicates == 'first' else float(np.mean([accs[i] for i in idx]))
              for key, idx in groups.items()}
    db.add_recipe(recipe, {'recipe': None, 'data': {'origin': path.name}})
    added = db.add_results(ResultRow(f'{prefix}{t}', a, acc, recipe, -1, 0)
                           for (t, a), acc in merged.items())
    return {'added': added, 'duplicates': len(repeated), 'stored': len(merged) - added}


def import_pair_split(db: MetaDatabase, path: PathLike, pairs_path: PathLike,
                      name: str = 'metad2a-val', num_val: int = 400,
                      prefix: str = 'metad2a-') -> int:
    r"""Imports MetaD2A's split file (``meta_train_tasks_predictor_idx.pt``): a permutation
    of the entries of the pairs file ``pairs_path``, whose first ``num_val`` entries MetaD2A
    validates on. Their (task, architecture) pairs are stored as the pair split ``name``
    (see :meth:`~d2a.db.MetaDatabase.add_pair_split`; ``d2a train predictor --val-pairs
    NAME`` validates on them). The tasks must have been imported.

    Returns the number of pairs stored.
    """
    path, pairs_path = Path(path), Path(pairs_path)
    perm = load_pt(path)
    perm = np.asarray(perm.tolist() if hasattr(perm, 'tolist') else perm)
    if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f'{path}: expected a 1-D permutation of pair indices, got '
                         f'{perm.dtype} values of shape {list(perm.shape)}')
    data = load_pt(pairs_path)
    if not isinstance(data, dict):
        raise ValueError(f"{pairs_path}: expected a dict of parallel lists ('acc', 'task', "
                         "'graph'/'g'/'str')")
    archs = pair_archs(data, pairs_path)
    tasks = [int(_to_float(t, f'{pairs_path}[task][{i}]'))
             for i, t in enumerate(_column(data, 'task', pairs_path))]
    if sorted(perm.tolist()) != list(range(len(archs))):
        raise ValueError(f'{path}: {len(perm):,} indices are not a permutation of the '
                         f'{len(archs):,} pairs of {pairs_path} (is it the split of another '
                         'file?)')
    if not 0 < num_val < len(perm):
        raise ValueError(f'num_val must be in [1, {len(perm) - 1}], got {num_val}')
    pairs = [(f'{prefix}{tasks[i]}', archs[i]) for i in perm[:num_val].tolist()]
    known = {t.name for t in db.tasks()}
    missing = sorted({t for t, _ in pairs} - known)
    if missing:
        raise ValueError(f'{path}: task {missing[0]!r} is not in {db.path} (import the task '
                         'list first)')
    return db.add_pair_split(name, pairs)


def import_nasbench201(db: MetaDatabase, path: PathLike, datasets: Iterable[str],
                       split: str = 'meta-test') -> int:
    r"""Imports MetaD2A's ``nasbench201.pt`` test accuracies of ``datasets`` as results of the
    NB201 benchmark recipe (tasks named after the datasets). Returns rows added."""
    from d2a.pipeline.importers.nb201 import NB201_RECIPE, _benchmark_tasks, _nb201_recipe_fields
    path = Path(path)
    data = load_pt(path)
    try:
        archs = [str(s) for s in data['arch']['str']]
        table = data['test-acc']
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected a dict with ['arch']['str'] and ['test-acc']") from None
    datasets = list(datasets)
    for d in datasets:
        if d not in table:
            raise ValueError(f"{path}: no test accuracies for {d!r} (datasets: {', '.join(map(str, table))})")
        if len(table[d]) != len(archs):
            raise ValueError(f"{path}: ['test-acc'][{d!r}] has {len(table[d])} values for "
                             f'{len(archs)} architectures')
    _benchmark_tasks(db, datasets, split)
    db.add_recipe(NB201_RECIPE, _nb201_recipe_fields())
    return db.add_results(ResultRow(d, a, _to_float(acc, f'{path}[test-acc][{d}]'), NB201_RECIPE, -1, 200)
                          for d in datasets for a, acc in zip(archs, table[d]))
