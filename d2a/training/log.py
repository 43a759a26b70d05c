r"""The metrics log of a training run: one JSON object per line, one line per epoch."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

from d2a.utils.atomic import atomic_write


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: write null so that every line stays standard JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    r"""Appends epoch records to a JSON-lines file, flushing each line.

    Args:
        path (str or Path): the log file.
        truncate_after (int, optional): on resume, drop the records of epochs after this
            one (those of an interrupted epoch), keeping the file consistent with the
            checkpoint the run continues from.
    """
    def __init__(self, path: Union[str, Path], truncate_after: Union[int, None] = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after is None:
            self.path.write_text('', encoding='utf-8')
        elif self.path.exists():
            kept = [r for r in read_metrics_log(self.path) if r.get('epoch', 0) <= truncate_after]
            with atomic_write(self.path) as f:
                for r in kept:
                    f.write(json.dumps(r) + '\n')

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open('a', encoding='utf-8') as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + '\n')
            f.flush()

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({str(self.path)!r})'


def read_metrics_log(path: Union[str, Path]) -> List[Dict[str, Any]]:
    r"""The records of a metrics log; raises :class:`ValueError` naming a bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'metrics log {path} does not exist')
    records = []
    for i, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'metrics log {path} line {i} is not JSON: {e}') from None
        if not isinstance(record, dict):
            raise ValueError(f'metrics log {path} line {i} is not a JSON object')
        records.append(record)
    return records
