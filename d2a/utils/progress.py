r"""Plain progress lines for logs of long unattended jobs (``d2a db build``, ``d2a db label``)
when no progress bar is shown: ``what: done/total unit (pct), rate, elapsed, ETA``."""
from __future__ import annotations

import sys
import time
from typing import IO, Optional


def format_duration(seconds: float) -> str:
    r"""``'4m30s'`` or ``'2h05m'``."""
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


def progress_line(what: str, done: int, total: int, elapsed: float, unit: str) -> str:
    r"""One progress line: counts, percentage, rate per minute, elapsed time and ETA."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f'ETA {format_duration((total - done) / rate)}' if rate > 0 else 'ETA unknown'
    pct = 100.0 * done / total if total else 100.0
    return (f'{what}: {done:,}/{total:,} {unit} ({pct:.0f} %), {rate * 60:.2f} {unit}/min, '
            f'{format_duration(elapsed)} elapsed, {eta}')


class ProgressLog:
    r"""Prints :func:`progress_line` at most every ``interval`` seconds.

    Args:
        what (str): the job, first on the line.
        total (int): units of work.
        unit (str): their name (``'cells'``, ``'images'``).
        interval (float, optional): seconds between lines; ``None`` prints nothing.
        file (file, optional): where lines go (default standard error).
    """
    def __init__(self, what: str, total: int, unit: str, interval: Optional[float] = 30.0,
                 file: Optional[IO[str]] = None) -> None:
        self.what, self.total, self.unit, self.interval = what, int(total), unit, interval
        self.file = file
        self.start = time.perf_counter()
        self._last: Optional[float] = None

    def update(self, done: int, force: bool = False) -> None:
        r"""Reports ``done`` units when ``interval`` has passed since the last line (or
        at the first call, or with ``force``)."""
        if self.interval is None:
            return
        now = time.perf_counter()
        if force or self._last is None or now - self._last >= self.interval:
            print(progress_line(self.what, done, self.total, now - self.start, self.unit),
                  file=self.file if self.file is not None else sys.stderr, flush=True)
            self._last = now
