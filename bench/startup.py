r"""Start-up benchmark: ``d2a --help`` and a cold ``d2a search --dataset digits`` as whole
processes, against baselines measured in the same run.

Every command runs as a fresh child process, ``--repeats`` times, in interleaved rounds (one
run of each command per round), so that a change of load on shared cores touches all of them
alike. For each command the script reports the median, minimum and maximum wall time, the
peak resident memory of the child (``wait4``'s ``ru_maxrss``) and the ratio of its median to
the median of ``python -c "import torch, torch_geometric"``, with the load average before and
after. The targets are those of issue 12, in seconds on two idle cores and as ratios to that
baseline (which took 2.3 s there): ``--help`` <= 0.3 s (0.13x), the digits search <= 2.0 s
(0.87x), peak RSS <= 400 MB.

    .venv/bin/python bench/startup.py --repeats 7 --json bench/results/startup.json

``--before DIR`` also times the two d2a commands of another copy of the package (a source
tree whose ``d2a/`` folder holds ``cli/`` and ``datasets/``, e.g. an older commit) in the same
rounds, through ``PYTHONPATH``. Nothing here imports torch: the parent only starts and times
processes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Issue 12's targets: (seconds, ratio to the torch + PyG import, peak RSS in MB).
TARGETS = {'d2a --help': (0.3, 0.3 / 2.3, None),
           'd2a search --dataset digits': (2.0, 2.0 / 2.3, 400.0)}
BASELINE = 'import torch, torch_geometric'


def d2a_command() -> List[str]:
    r"""The installed ``d2a`` entry point next to this interpreter (``-m d2a.cli.main``
    when there is none)."""
    script = Path(sys.executable).with_name('d2a')
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which('d2a')
    return [found] if found else [sys.executable, '-m', 'd2a.cli.main']


Command = Tuple[List[str], Optional[Dict[str, str]]]


def commands(before: Optional[str] = None) -> Dict[str, Command]:
    r"""Name -> (command line, environment or ``None`` for this one's)."""
    d2a = d2a_command()
    out: Dict[str, Command] = {
        'python -c pass': ([sys.executable, '-c', 'pass'], None),
        'import torch': ([sys.executable, '-c', 'import torch'], None),
        BASELINE: ([sys.executable, '-c', 'import torch, torch_geometric'], None),
    }
    for name, args in (('d2a --help', ['--help']),
                       ('d2a search --dataset digits', ['search', '--dataset', 'digits'])):
        out[name] = (d2a + args, None)
        if before:
            env = dict(os.environ, PYTHONPATH=str(Path(before).resolve()))
            out[f'{name} (before)'] = ([sys.executable, '-m', 'd2a.cli.main'] + args, env)
    return out


def run_once(cmd: Sequence[str], env: Optional[Dict[str, str]] = None) -> Tuple[float, float]:
    r"""``(wall seconds, peak RSS in MiB)`` of one run of ``cmd`` (its output discarded)."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=tempfile.gettempdir(), env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors='replace') if proc.stderr else ''
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    # Linux reports KiB, macOS bytes.
    rss = usage.ru_maxrss / 1024 / (1024 if sys.platform == 'darwin' else 1)
    return wall, rss


def load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def measure(repeats: int, names: Optional[Sequence[str]] = None, warmup: int = 1,
            before: Optional[str] = None) -> Dict[str, Any]:
    r"""Times every command ``repeats`` times in interleaved rounds, after ``warmup`` untimed
    rounds (which fill the file cache)."""
    cmds = commands(before)
    if names:
        cmds = {k: v for k, v in cmds.items() if k in names or k == BASELINE}
    runs: Dict[str, List[Tuple[float, float]]] = {k: [] for k in cmds}
    before = load_average()
    for round_ in range(warmup + repeats):
        for name, (cmd, env) in cmds.items():
            result = run_once(cmd, env)
            if round_ >= warmup:
                runs[name].append(result)
    after = load_average()
    base = statistics.median(w for w, _ in runs[BASELINE])
    rows = {}
    for name, values in runs.items():
        walls = [w for w, _ in values]
        med = statistics.median(walls)
        rows[name] = {'median_s': med, 'min_s': min(walls), 'max_s': max(walls),
                      'peak_rss_mib': max(r for _, r in values), 'ratio': med / base,
                      'walls': walls, 'command': cmds[name][0]}
    return {'repeats': repeats, 'load_average_before': before, 'load_average_after': after,
            'cpu_count': os.cpu_count(), 'python': sys.version.split()[0],
            'baseline': BASELINE, 'rows': rows}


def verdicts(result: Dict[str, Any]) -> List[str]:
    r"""One line per target: met or not, in seconds and as a ratio to the baseline."""
    lines = []
    for name, (seconds, ratio, rss) in TARGETS.items():
        row = result['rows'].get(name)
        if row is None:
            continue
        parts = [f"{row['median_s']:.2f} s (target {seconds:g} s on idle cores: "
                 f"{'met' if row['median_s'] <= seconds else 'not met'})",
                 f"{row['ratio']:.2f}x the baseline (target {ratio:.2f}x: "
                 f"{'met' if row['ratio'] <= ratio else 'not met'})"]
        if rss is not None:
            mb = row['peak_rss_mib'] * 2 ** 20 / 1e6
            parts.append(f"peak RSS {mb:.0f} MB (target {rss:g} MB: "
                         f"{'met' if mb <= rss else 'not met'})")
        lines.append(f'{name}: ' + '; '.join(parts))
    return lines


def format_result(result: Dict[str, Any], markdown: bool = False) -> str:
    header = ['command', 'median s', 'min s', 'max s', f'ratio to {BASELINE!r}', 'peak RSS MiB']
    rows = [[name, f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", f"{r['max_s']:.3f}",
             f"{r['ratio']:.2f}", f"{r['peak_rss_mib']:.0f}"] for name, r in result['rows'].items()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
        lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    else:
        lines = ['  '.join(h.ljust(w) for h, w in zip(header, widths)),
                 '  '.join('-' * w for w in widths)]
        lines += ['  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.append('')
    lines.append(f"{result['repeats']} runs each, medians; {result['cpu_count']} cores visible, "
                 f"load average {result['load_average_before']} before, "
                 f"{result['load_average_after']} after")
    lines += verdicts(result)
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--repeats', type=int, default=5, help='timed runs of each command')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    p.add_argument('--only', nargs='+', default=None, metavar='NAME',
                   help='time only these commands (the baseline always runs)')
    p.add_argument('--before', default=None, metavar='DIR',
                   help='also time the d2a commands of the package copy in DIR')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    p.add_argument('--json', default=None, metavar='PATH', help='also write the result as JSON')
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    result = measure(args.repeats, args.only, args.warmup, args.before)
    print(format_result(result, args.markdown))
    if args.json:
        from d2a.utils.atomic import atomic_write
        with atomic_write(args.json) as f:
            f.write(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
