r"""Search speed: from a dataset's features to N unique valid candidates ranked by the
predictor, with d2a's batched search against MetaD2A's one-graph-at-a-time loop
(``metad2a_decoder.py``) using the same weights, in the same run; with the validity (valid
graphs per generated graph) and uniqueness (distinct candidates per valid graph) of d2a's
generation. The space is the checkpoints' (NB201 without ``--checkpoint``;
``--checkpoint d2a/checkpoints/mbv3`` measures the shipped MobileNetV3 generator).

The models have MetaD2A's sizes (``metad2a_nb201_generator`` and
``metad2a_nb201_predictor``); without ``--checkpoint`` they are randomly initialised (speed
does not depend on the weights, only the number of graphs drawn per unique candidate does)
and saved into a temporary checkpoint folder. The dataset is a task of a temporary
meta-database holding ``--classes`` classes of ``--images`` random 512-d feature vectors, so
every search starts from features as ``d2a.search.search((db, task), ...)`` does.

Each configuration runs in its own subprocess so that its peak memory is its own. Example::

    .venv/bin/python bench/search_speed.py --sizes 50 500 5000 --repeats 5 \
        --json bench/results/search_speed.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402
import torch  # noqa: E402

STAGES = ('load', 'features', 'encoding', 'generation', 'ranking', 'other')
FEATURE_EXTRACTOR = {'name': 'bench_random', 'dim': 512, 'config': {}}
TASK = 'bench-task'


# ----------------------------------------------------------------------------- set-up
def prepare(root: Path, args: argparse.Namespace) -> Dict[str, str]:
    r"""Writes the checkpoint folder (unless ``--checkpoint``) and the feature database."""
    from d2a.checkpoint import Checkpoint, save_checkpoint
    from d2a.db import MetaDatabase
    from d2a.datasets.tasks import Task
    ckpt_dir = Path(args.checkpoint) if args.checkpoint else root / 'ckpt'
    extractor = dict(FEATURE_EXTRACTOR)
    if args.checkpoint:
        from d2a.checkpoint import load_checkpoint
        extractor = dict(load_checkpoint(ckpt_dir, kind='generator').feature_extractor)
    else:
        from d2a.registry import create_model
        torch.manual_seed(args.seed)
        for kind in ('generator', 'predictor'):
            name = f'metad2a_nb201_{kind}'
            model = create_model(name)
            save_checkpoint(Checkpoint(kind=kind, model_name=name, model_config=model.config,
                                       model_state=model.state_dict(),
                                       train_config={'num_sample': args.num_sample},
                                       feature_extractor=extractor, space='nb201'),
                            ckpt_dir / f'{kind}.pt')
    rng = np.random.default_rng(args.seed)
    db_path = root / 'features.h5'
    with MetaDatabase.create(db_path, feature_extractor=extractor.get('name'),
                             feature_dim=int(extractor['dim']),
                             feature_config=extractor.get('config') or {}) as db:
        db.add_source('bench')
        classes = [f'c{i}' for i in range(args.classes)]
        for c in classes:
            # Class-dependent means so the classes differ, as real features do.
            mean = rng.normal(0.0, 1.0, size=int(extractor['dim']))
            feats = mean + rng.normal(0.0, 1.0, size=(args.images, int(extractor['dim'])))
            db.add_class_features('bench', c, np.abs(feats).astype(np.float32))
        db.add_task(Task(TASK, 'bench', classes, 'meta-test'))
    return {'ckpt': str(ckpt_dir), 'db': str(db_path)}


# ----------------------------------------------------------------------------- workers
def _peaks(device: str) -> Dict[str, float]:
    out = {'peak_rss_mb': _common.peak_rss_mb()}
    if device == 'cuda':
        out['cuda_max_allocated_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def work_d2a(paths: Dict[str, str], n: int, args: argparse.Namespace,
             device: str) -> Dict[str, Any]:
    r"""d2a's batched search (:func:`d2a.search.search`), ``args.repeats`` times."""
    from d2a.search import load_models, search
    load_models(paths['ckpt'], device)  # search() loads the checkpoints on every call
    t = time.perf_counter()
    load_models(paths['ckpt'], device)
    load_s = time.perf_counter() - t
    # A small untimed search first warms the caches (string conversions, allocator).
    search((paths['db'], TASK), paths['ckpt'], num_candidates=min(n, 50), top_k=5,
           batch_size=args.batch_size, num_resamples=args.resamples, device=device, seed=99)
    reps = []
    for rep in range(args.repeats):
        t = time.perf_counter()
        res = search((paths['db'], TASK), paths['ckpt'], num_candidates=n, top_k=5,
                     batch_size=args.batch_size, num_resamples=args.resamples,
                     device=device, seed=rep)
        wall = time.perf_counter() - t
        tm = dict(res.timing)
        stages = {k: tm.get(k, 0.0) for k in ('features', 'encoding', 'generation', 'ranking')}
        stages['load'] = min(load_s, wall)
        stages['other'] = max(0.0, wall - sum(stages.values()))
        reps.append({'total': wall, 'stages': stages, 'num_generated': res.num_generated,
                     'num_valid': res.num_valid, 'num_evaluated': res.num_evaluated})
    return {'reps': reps, **_peaks(device)}


def work_baseline(paths: Dict[str, str], n: int, args: argparse.Namespace) -> Dict[str, Any]:
    r"""MetaD2A's loop with the same checkpoints: one graph decoded at a time, one candidate
    ranked at a time."""
    from d2a.graphs import get_space
    from d2a.search import dataset_features, load_models
    from metad2a_decoder import generate_one_at_a_time, rank_one_at_a_time
    reps = []
    for rep in range(args.baseline_repeats):
        t0 = time.perf_counter()
        models = load_models(paths['ckpt'], 'cpu')
        stages = {'load': time.perf_counter() - t0}
        space = get_space(models.space)
        t = time.perf_counter()
        data = dataset_features((paths['db'], TASK), models)
        stages['features'] = time.perf_counter() - t
        rng = np.random.default_rng(rep)
        x = data.draw(models.num_sample, rng)
        timing: Dict[str, float] = {}
        archs, count = generate_one_at_a_time(models.generator, x, space, n,
                                              max_graphs=args.max_graphs, rng_seed=rep,
                                              timing=timing)
        stages.update(timing)
        t = time.perf_counter()
        draws = [data.draw(models.num_sample, rng) for _ in range(args.resamples)]
        rank_one_at_a_time(models.predictor, space, archs, draws)
        stages['ranking'] = time.perf_counter() - t
        wall = time.perf_counter() - t0
        stages['other'] = max(0.0, wall - sum(stages.values()))
        reps.append({'total': wall, 'stages': stages, 'num_generated': count,
                     'num_evaluated': len(archs)})
    return {'reps': reps, **_peaks('cpu')}


def work_throughput(paths: Dict[str, str], args: argparse.Namespace,
                    device: str) -> Dict[str, Any]:
    r"""Raw generation throughput of the generator's decoder: batched (d2a) and one graph at a
    time (MetaD2A), under the space's rules and free (MetaD2A's unconstrained decoding)."""
    from d2a.graphs import get_space
    from d2a.graphs.decoder import DAGDecoder
    from d2a.search import load_models
    from metad2a_decoder import decode_one, to_dense
    models = load_models(paths['ckpt'], device)
    space = get_space(models.space)
    trained = models.generator.decoder
    out: Dict[str, Any] = {}
    for constrained in (True, False):
        dec = DAGDecoder(trained.in_channels, trained.hidden_channels, trained.num_node_types,
                         trained.max_nodes, space=space, constrained=constrained,
                         chain=trained.chain).to(device)
        dec.load_state_dict(trained.state_dict())
        dec.eval()
        gen = torch.Generator(device=device).manual_seed(0)
        mode = 'constrained' if constrained else 'free'
        for b in args.throughput_batch:
            z = torch.randn(b, dec.in_channels, generator=gen, device=device)
            dec.sample(z, generator=gen)  # warm-up
            dec_s, conv_s, valid = [], [], 0
            for _ in range(args.repeats):
                _sync(device)
                t = time.perf_counter()
                node_type, adj = dec.sample(z, generator=gen)
                _sync(device)
                t1 = time.perf_counter()
                archs = space.from_dense_batch(node_type, adj)
                conv_s.append(time.perf_counter() - t1)
                dec_s.append(t1 - t)
                valid = sum(a is not None for a in archs)
            out[f'd2a/{mode}/{b}'] = {'graphs': b, 'decode_s': _common.median(dec_s),
                                     'to_strings_s': _common.median(conv_s),
                                     'valid_fraction': valid / b}
        if device == 'cpu':
            k = args.baseline_graphs
            zc = torch.randn(k, dec.in_channels, generator=gen)
            gen_cpu = torch.Generator().manual_seed(0)
            t = time.perf_counter()
            valid = 0
            for i in range(k):
                types, preds = decode_one(dec, zc[i], generator=gen_cpu)
                try:
                    space.from_dense(*to_dense(types, preds))
                    valid += 1
                except ValueError:
                    pass
            dt = time.perf_counter() - t
            out[f'metad2a/{mode}/1'] = {'graphs': k, 'decode_s': dt, 'to_strings_s': 0.0,
                                       'valid_fraction': valid / k}
    return {'throughput': out, **_peaks(device)}


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def work_profile(paths: Dict[str, str], n: int, args: argparse.Namespace) -> Dict[str, Any]:
    r"""The top ops (self CPU time) of one d2a search of ``n`` candidates."""
    from d2a.search import search
    search((paths['db'], TASK), paths['ckpt'], num_candidates=n, batch_size=args.batch_size,
           num_resamples=args.resamples, device='cpu', seed=0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        res = search((paths['db'], TASK), paths['ckpt'], num_candidates=n,
                     batch_size=args.batch_size, num_resamples=args.resamples, device='cpu',
                     seed=1)
    table = prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=15)
    return {'profile': table, 'profile_timing': dict(res.timing)}


def run_worker(args: argparse.Namespace) -> None:
    _common.setup_threads(args.threads)
    paths = json.loads(args.worker_paths)
    kind, n, device = args.worker, args.worker_n, args.worker_device
    if kind == 'd2a':
        out = work_d2a(paths, n, args, device)
    elif kind == 'metad2a':
        out = work_baseline(paths, n, args)
    elif kind == 'throughput':
        out = work_throughput(paths, args, device)
    else:
        out = work_profile(paths, n, args)
    print('RESULT ' + json.dumps(out))


def spawn(kind: str, n: int, device: str, paths: Dict[str, str],
          argv: Sequence[str]) -> Dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, '--worker', kind,
           '--worker-n', str(n), '--worker-device', device, '--worker-paths', json.dumps(paths)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    raise RuntimeError(f'benchmark worker {kind} n={n} on {device} failed '
                       f'(exit {proc.returncode}):\n{proc.stderr[-3000:]}')


# ----------------------------------------------------------------------------- report
def search_rows(results: List[Dict[str, Any]]) -> List[List[str]]:
    rows = []
    base = {(r['n'], r['device']): r for r in results if r['method'] == 'metad2a'}
    for r in results:
        reps = r['reps']
        total = _common.median([x['total'] for x in reps])
        gen = _common.median([x['num_generated'] for x in reps])
        gen_s = _common.median([x['stages']['generation'] for x in reps])
        shares = {k: _common.median([x['stages'].get(k, 0.0) for x in reps]) for k in STAGES}
        tot_share = sum(shares.values()) or 1.0
        share = ' '.join(f'{k[:4]} {100 * v / tot_share:.0f}%' for k, v in shares.items()
                         if v / tot_share >= 0.005)
        speedup = '-'
        b = base.get((r['n'], 'cpu'))
        if r['method'] == 'd2a' and b is not None:
            speedup = f"{_common.median([x['total'] for x in b['reps']]) / total:.1f}x"
        mem = f"{r['peak_rss_mb']:.0f}"
        if 'cuda_max_allocated_mb' in r:
            mem += f" / {r['cuda_max_allocated_mb']:.0f}"
        # validity: valid graphs per generated one; uniqueness: distinct valid candidates
        # per valid graph (medians over the runs)
        valid = unique = '-'
        if all('num_valid' in x for x in reps):
            def share_of(num: str, den: str) -> str:
                return f"{100 * _common.median([x[num] / max(x[den], 1) for x in reps]):.1f}%"
            valid = share_of('num_valid', 'num_generated')
            unique = share_of('num_evaluated', 'num_valid')
        rows.append([r['method'], r['device'], str(r['n']), f'{total:.3f}',
                     f'{gen:.0f}', f'{gen / gen_s:,.0f}' if gen_s > 0 else '-', valid, unique,
                     share, mem, speedup, str(len(reps))])
    return rows


def throughput_rows(results: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for key, v in results.items():
        method, mode, batch = key.split('@')[0].split('/')
        rows.append([method, v.get('device', 'cpu'), mode, batch, str(v['graphs']),
                     f"{v['graphs'] / v['decode_s']:,.0f}",
                     f"{v['graphs'] / (v['decode_s'] + v['to_strings_s']):,.0f}",
                     f"{100 * v['valid_fraction']:.0f}%"])
    return rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', nargs='+', type=int, default=[50, 500, 5000],
                   help='candidates per search (default: %(default)s)')
    p.add_argument('--repeats', type=int, default=5, help='timed d2a searches per size')
    p.add_argument('--baseline-repeats', type=int, default=3,
                   help='timed one-graph-at-a-time searches per size')
    p.add_argument('--baseline-sizes', nargs='*', type=int, default=None,
                   help='sizes the baseline runs at (default: all of --sizes)')
    p.add_argument('--batch-size', type=int, default=100,
                   help='graphs per generation batch of d2a search (its default: 100)')
    p.add_argument('--resamples', type=int, default=5,
                   help='dataset re-samplings the predictor averages over (default: %(default)s)')
    p.add_argument('--classes', type=int, default=10, help='classes of the dataset')
    p.add_argument('--images', type=int, default=200, help='feature vectors per class')
    p.add_argument('--num-sample', type=int, default=20, help='vectors drawn per class')
    p.add_argument('--max-graphs', type=int, default=200000,
                   help='the baseline gives up after this many graphs')
    p.add_argument('--throughput-batch', nargs='+', type=int, default=[500, 5000],
                   help='batch sizes of the raw generation-throughput test')
    p.add_argument('--baseline-graphs', type=int, default=300,
                   help='graphs decoded one at a time in the throughput test')
    p.add_argument('--checkpoint', help='use the trained generator.pt/predictor.pt of this folder')
    p.add_argument('--no-cuda', action='store_true',
                   help='skip CUDA (by default d2a search is also timed on CUDA when available)')
    p.add_argument('--profile', type=int, default=0, metavar='N',
                   help='also print a torch profile of one d2a search of N candidates')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='write the results here')
    p.add_argument('--markdown', action='store_true', help='print tables as Markdown')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--worker-n', type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument('--worker-device', default='cpu', help=argparse.SUPPRESS)
    p.add_argument('--worker-paths', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.sizes) < 1 or args.repeats < 1 or args.baseline_repeats < 0:
        p.error('--sizes and --repeats must be >= 1, --baseline-repeats >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    _common.setup_threads(args.threads)
    info = _common.machine_info(args.threads)
    print(f'machine: {_common.describe_machine(info)}', flush=True)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() and not args.no_cuda else [])
    baseline_sizes = args.sizes if args.baseline_sizes is None else args.baseline_sizes
    results: List[Dict[str, Any]] = []
    payload: Dict[str, Any] = {'machine': info, 'args': vars(args), 'search': results,
                               'weights': 'trained' if args.checkpoint else 'random init'}
    with tempfile.TemporaryDirectory(prefix='d2a-bench-') as tmp:
        paths = prepare(Path(tmp), args)
        for device in devices:
            tp = spawn('throughput', 0, device, paths, argv)
            for v in tp['throughput'].values():
                v['device'] = device
            payload.setdefault('throughput', {}).update(
                {f'{k}' if device == 'cpu' else f'{k}@cuda': v
                 for k, v in tp['throughput'].items()})
            print(f'throughput on {device} done', flush=True)
        for n in args.sizes:
            for device in devices:
                r = spawn('d2a', n, device, paths, argv)
                results.append({'method': 'd2a', 'n': n, 'device': device, **r})
                print(f'd2a n={n} {device}: median '
                      f"{_common.median([x['total'] for x in r['reps']]):.3f}s", flush=True)
            if n in baseline_sizes and args.baseline_repeats > 0:
                r = spawn('metad2a', n, 'cpu', paths, argv)
                results.append({'method': 'metad2a', 'n': n, 'device': 'cpu', **r})
                print(f'metad2a n={n}: median '
                      f"{_common.median([x['total'] for x in r['reps']]):.3f}s", flush=True)
            _common.write_json(args.json, payload)
        if args.profile:
            payload['profile'] = spawn('profile', args.profile, 'cpu', paths, argv)
    print()
    print(f"weights: {payload['weights']}; dataset: {args.classes} classes x {args.images} "
          f'feature vectors; {args.resamples} re-samplings; d2a batch {args.batch_size}')
    print(_common.format_table(
        ['method', 'device', 'N', 'median s', 'graphs', 'graphs/s (gen stage)', 'valid',
         'unique', 'share of time', 'peak MiB (RSS / CUDA)', 'speed-up', 'runs'],
        search_rows(results), args.markdown))
    print()
    print(_common.format_table(
        ['decoder', 'device', 'rules', 'batch', 'graphs', 'graphs/s (decode)',
         'graphs/s (+ strings)', 'valid'], throughput_rows(payload['throughput']),
        args.markdown))
    if 'profile' in payload:
        prof = payload['profile']
        print()
        print(f'profile of one d2a search, N={args.profile} (stages: '
              + ', '.join(f'{k} {v:.3f}s' for k, v in prof['profile_timing'].items()) + '):')
        print(prof['profile'])
    _common.write_json(args.json, payload)
    return 0


if __name__ == '__main__':
    sys.exit(main())
