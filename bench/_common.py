r"""Shared pieces of the benchmark scripts: thread set-up, machine description, tables and
atomic JSON output.

Import this module before :mod:`torch` is first used: it sets ``OMP_WAIT_POLICY=PASSIVE``
unless the caller chose a policy. On a machine whose cores are shared with other processes,
OpenMP's default busy-waiting makes every small op of a 2-thread run wait for a descheduled
spinning thread (measured here: a DAG-GRU training step 5x slower with 2 threads than with 1);
passive waiting removes that penalty and costs nothing on an idle machine.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402  (after the OpenMP policy is set)

#: The repository root (``bench/`` lives directly under it).
REPO_ROOT = Path(__file__).resolve().parent.parent


def setup_threads(threads: int) -> None:
    r"""Limits torch (intra- and inter-op) to ``threads`` CPU threads."""
    if threads < 1:
        raise ValueError(f'--threads must be >= 1, got {threads}')
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set once in this process
        pass


def cpu_model() -> str:
    r"""The CPU model name from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def machine_info(threads: int) -> Dict[str, Any]:
    r"""What the figures were measured on."""
    info: Dict[str, Any] = {
        'cpu': cpu_model(),
        'cpu_count': os.cpu_count(),
        'torch_threads': threads,
        'torch': torch.__version__,
        'python': platform.python_version(),
        'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY'),
    }
    try:
        import torch_geometric
        info['torch_geometric'] = torch_geometric.__version__
    except ImportError:
        pass
    try:
        info['load_average'] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    if torch.cuda.is_available():
        info['cuda_device'] = torch.cuda.get_device_name(0)
    return info


def describe_machine(info: Dict[str, Any]) -> str:
    line = (f"{info['cpu']} ({info['cpu_count']} cores visible, torch threads "
            f"{info['torch_threads']}), torch {info['torch']}")
    if 'torch_geometric' in info:
        line += f", PyG {info['torch_geometric']}"
    if 'load_average' in info:
        line += f", load average at start {info['load_average'][0]}"
    if 'cuda_device' in info:
        line += f", CUDA: {info['cuda_device']}"
    return line


def peak_rss_mb() -> float:
    r"""Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1024 / (1024 if sys.platform == 'darwin' else 1)


def mean_std(values: Sequence[float]) -> str:
    r"""``mean ± std`` with three decimals (std 0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return '-'
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f'{statistics.fmean(vals):.3f} ± {std:.3f}'


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 markdown: bool = False) -> str:
    r"""A plain-text (or Markdown) table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    if markdown:
        lines = ['| ' + ' | '.join(h.ljust(w) for h, w in zip(header, widths)) + ' |',
                 '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
        lines += ['| ' + ' | '.join(v.ljust(w) for v, w in zip(r, widths)) + ' |' for r in rows]
    else:
        lines = ['  '.join(h.ljust(w) for h, w in zip(header, widths)),
                 '  '.join('-' * w for w in widths)]
        lines += ['  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return '\n'.join(lines)


def write_json(path: Optional[str], payload: Dict[str, Any]) -> None:
    r"""Writes ``payload`` to ``path`` atomically (temporary file, then :func:`os.replace`)."""
    if not path:
        return
    from d2a.utils.atomic import atomic_write
    with atomic_write(path) as f:
        f.write(json.dumps(payload, indent=2) + '\n')


def median(values: List[float]) -> float:
    return float(statistics.median(values)) if values else float('nan')


def database_parser(doc: str, db_help: str = 'the meta-database') -> 'argparse.ArgumentParser':
    r"""An argument parser described by the first paragraph of ``doc`` with the options of
    the benchmarks on a meta-database: ``--db``, ``--checkpoint``, ``--recipe``."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--space', choices=('nb201', 'mbv3'), default='nb201',
                   help='search space: chooses the shipped database and checkpoints '
                        '(default: nb201)')
    p.add_argument('--db', default=None,
                   help=f"{db_help} (default: the shipped one of --space)")
    p.add_argument('--checkpoint', default=None,
                   help='folder with generator.pt and predictor.pt (default: the shipped one '
                        'of --space)')
    p.add_argument('--recipe', default=None, help="labelling recipe id (default: the build's)")
    return p


def resolve_database(args: Any) -> None:
    r"""Fills ``args.db`` and ``args.checkpoint`` left unset with the shipped files of
    ``args.space``."""
    from d2a.utils.paths import default_checkpoint_dir, default_database
    if args.db is None:
        args.db = str(default_database(args.space))
    if args.checkpoint is None:
        args.checkpoint = str(default_checkpoint_dir(args.space))


def run_and_report(args: Any, evaluate: Any, format_summary: Any) -> Dict[str, Any]:
    r"""Sets the threads, runs ``evaluate(args)`` and adds the wall time and the machine,
    prints ``format_summary(result, args.markdown)`` and writes ``args.json``."""
    import time
    if hasattr(args, 'space'):
        resolve_database(args)
    setup_threads(args.threads)
    t0 = time.perf_counter()
    result = evaluate(args)
    result['wall_seconds'] = time.perf_counter() - t0
    result['machine'] = machine_info(args.threads)
    print(format_summary(result, args.markdown))
    print(f"wall time {result['wall_seconds']:.1f}s")
    write_json(args.json, result)
    return result
