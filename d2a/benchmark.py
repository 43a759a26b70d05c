r"""Benchmark tables: CSV files of one value per (architecture, column), and the look-up of
an architecture's accuracy, rank and percentile (``d2a evaluate``).

A benchmark table has a header ``index, arch, <column>, <column>, ...``: one row per
architecture, keyed by its canonical string, and one numeric column per dataset (NAS-Bench-201's
accuracy table) or per device (HELP's latency table, milliseconds). :func:`read_table` is the
one reader of that format -- for ``d2a evaluate``, the search's latency constraint and the
importers of ``d2a db import``. An empty cell is a missing value (``nan``).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from d2a.graphs.space import get_space
from d2a.utils.atomic import PathLike


@dataclass
class Evaluation:
    r"""An architecture's entry in a benchmark column.

    Attributes:
        arch (str): the architecture string.
        dataset (str): the benchmark column.
        accuracy (float): its accuracy in that column.
        rank (int): 1 for the best architecture; ties share the better rank.
        num_archs (int): architectures in the column.
        percentile (float): percentage of architectures with an accuracy lower than or
            equal to this one (100 for the best).
        best_accuracy (float): the best accuracy in the column.
    """
    arch: str
    dataset: str
    accuracy: float
    rank: int
    num_archs: int
    percentile: float
    best_accuracy: float

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_table(self) -> str:
        return '\n'.join([
            f'architecture : {self.arch}',
            f'dataset      : {self.dataset}',
            f'accuracy     : {self.accuracy:.2f}  (best in table: {self.best_accuracy:.2f}, '
            f'gap {self.best_accuracy - self.accuracy:.2f})',
            f'rank         : {self.rank:,} of {self.num_archs:,}',
            f'percentile   : {self.percentile:.2f}  '
            f'(top {100.0 * self.rank / self.num_archs:.2f}%)',
        ])


def read_table(path: PathLike, what: str = 'benchmark table', space: Optional[str] = None
               ) -> Tuple[List[str], List[str], np.ndarray]:
    r"""``(archs, columns, values)`` of a benchmark CSV file: the ``arch`` column, the names of
    the numeric columns (an ``index`` column is ignored) and a ``[len(archs), len(columns)]``
    ``float64`` array with ``nan`` for empty cells.

    With ``space``, rows whose ``arch`` is not a string of that space, and repeated rows of
    one architecture, are left out with a warning that counts them and names the first one's
    line; a table left with no row is refused.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` naming the
    file, line and column of what is wrong (``what`` names the table in messages).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} {path} does not exist')
    with path.open(newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f'{what} {path} is empty')
        if 'arch' not in header:
            raise ValueError(f"{what} {path} has no 'arch' column (header: {', '.join(header)})")
        arch_col = header.index('arch')
        columns = [(i, h) for i, h in enumerate(header) if i != arch_col and h != 'index']
        archs: List[str] = []
        values: List[List[float]] = []
        lines: List[int] = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f'{what} {path}, line {line}: {len(row)} fields, header has '
                                 f'{len(header)}')
            archs.append(row[arch_col])
            values.append([_number(row[i], path, line, h, what) for i, h in columns])
            lines.append(line)
    if space is not None:
        archs, values = _drop_bad_rows(archs, values, lines, path, what, space)
    array = np.asarray(values, dtype=np.float64).reshape(len(archs), len(columns))
    return archs, [h for _, h in columns], array


def _drop_bad_rows(archs: List[str], values: List[List[float]], lines: List[int], path: Path,
                   what: str, space: str) -> Tuple[List[str], List[List[float]]]:
    import warnings
    checker = get_space(space)
    keep, bad, repeated, seen = [], [], [], {}
    for i, arch in enumerate(archs):
        try:
            checker.check_string(arch)
        except ValueError as e:
            bad.append((lines[i], e))
            continue
        if arch in seen:
            repeated.append((lines[i], seen[arch]))
            continue
        seen[arch] = lines[i]
        keep.append(i)
    if not keep and archs:
        line, error = bad[0]
        raise ValueError(f'{what} {path}: none of its {len(archs):,} rows holds a {space} '
                         f'architecture (line {line}: {error})')
    if bad:
        line, error = bad[0]
        warnings.warn(f'{what} {path}: skipped {len(bad):,} row{"s" if len(bad) > 1 else ""} '
                      f'whose arch is not a {space} string (first: line {line}: {error})')
    if repeated:
        line, first = repeated[0]
        warnings.warn(f'{what} {path}: skipped {len(repeated):,} repeated '
                      f'architecture{"s" if len(repeated) > 1 else ""} (first: line {line} '
                      f'repeats line {first}); the first row of each is used')
    return [archs[i] for i in keep], [values[i] for i in keep]


def _number(text: str, path: Path, line: int, column: str, what: str) -> float:
    if text == '':
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'{what} {path}, line {line}, column {column!r}: {text!r} is not a '
                         'number') from None


class BenchmarkTable:
    r"""A benchmark table read from a CSV file (see the module docstring).

    Args:
        path (str or Path): the CSV file.
        space (str): the search space whose strings the ``arch`` column holds; strings are
            validated (and, for a misspelled one, the parser's message is shown).
    """
    def __init__(self, path: PathLike, space: str = 'nb201') -> None:
        self.path = Path(path)
        self.space = get_space(space)
        self.archs, self.columns, self.values = read_table(self.path, space=space)
        if not self.archs:
            raise ValueError(f'benchmark table {self.path} has no rows')
        self._row: Dict[str, int] = {a: i for i, a in enumerate(self.archs)}

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, dataset: str) -> np.ndarray:
        r"""The accuracies of column ``dataset`` (raises :class:`ValueError` if unknown)."""
        if dataset not in self.columns:
            raise ValueError(f"benchmark table {self.path} has no column {dataset!r} "
                             f"(columns: {', '.join(self.columns)})")
        return self.values[:, self.columns.index(dataset)]

    def value(self, arch: str, dataset: str) -> Optional[float]:
        r"""The value of ``arch`` in column ``dataset``, ``None`` if the row or value is
        absent."""
        col = self.column(dataset)
        i = self._row.get(arch)
        return None if i is None or math.isnan(col[i]) else float(col[i])

    def evaluate(self, arch: str, dataset: str) -> Evaluation:
        r"""Accuracy, rank and percentile of ``arch`` in column ``dataset``.

        Raises :class:`ValueError` for an invalid string, an architecture missing from the
        table, or an unknown column.
        """
        self.space.to_data(arch)  # raises a ValueError naming what is wrong with the string
        col = self.column(dataset)
        if arch not in self._row:
            raise ValueError(f'architecture {arch!r} is not in benchmark table {self.path} '
                             f'({len(self):,} rows)')
        acc = float(col[self._row[arch]])
        if math.isnan(acc):
            raise ValueError(f'benchmark table {self.path} has no {dataset!r} value for {arch!r}')
        known = col[~np.isnan(col)]
        rank = int((known > acc).sum()) + 1
        percentile = 100.0 * float((known <= acc).sum()) / known.size
        return Evaluation(arch=arch, dataset=dataset, accuracy=acc, rank=rank,
                          num_archs=int(known.size), percentile=percentile,
                          best_accuracy=float(known.max()))


def evaluate_arch(arch: str, benchmark: PathLike, dataset: str,
                  space: str = 'nb201') -> Evaluation:
    r"""Looks ``arch`` up in the benchmark CSV file ``benchmark`` (column ``dataset``)."""
    return BenchmarkTable(benchmark, space=space).evaluate(arch, dataset)
