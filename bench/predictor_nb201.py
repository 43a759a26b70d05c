r"""Graph predictors on NAS-Bench-201: d2a's graph-only predictor (DAG-GRU and GIN encoders)
against random forest, Gaussian-process regression and an MLP on one-hot op encodings.

For every target (an accuracy column of ``accuracy.csv`` or a device of ``latency_ms.csv``),
training-set size and seed, ``size`` random cells are drawn for training and every other cell
of the 15,625 is the test set; all methods see the same split. The table reports Spearman's
rho and Kendall's tau between predicted and true values on the test cells (mean ± std over
seeds) and the training time.

Example (CIFAR-10, both sizes, 5 seeds)::

    .venv/bin/python bench/predictor_nb201.py --targets cifar10 --sizes 100 1000 --seeds 5 \
        --json bench/results/predictor_cifar10.json
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ACCURACY_FILE = 'accuracy.csv'
LATENCY_FILE = 'latency_ms.csv'
DEFAULT_DATA = _common.REPO_ROOT.parent / 'shared' / 'data' / 'nb201'
D2A_METHODS = ('dag_gru', 'gin')
BASELINES = ('rf', 'gp', 'mlp')
METHOD_LABELS = {'dag_gru': 'd2a DAG-GRU', 'gin': 'd2a GIN', 'rf': 'random forest (one-hot)',
                 'gp': 'GP regression (one-hot)', 'mlp': 'MLP (one-hot)'}


# ----------------------------------------------------------------------------- data
def _read_csv(path: Path) -> Tuple[List[str], Dict[str, np.ndarray]]:
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist: pass --data DIR, the folder holding '
                                f'{ACCURACY_FILE} and {LATENCY_FILE} (NAS-Bench-201 tables)')
    with open(path, newline='') as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or 'arch' not in header:
            raise ValueError(f"{path}: first line must be a header with an 'arch' column")
        rows = list(reader)
    archs: List[str] = []
    columns = [c for c in header if c not in ('index', 'arch')]
    values = {c: np.empty(len(rows)) for c in columns}
    a = header.index('arch')
    idx = {c: header.index(c) for c in columns}
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f'{path}, line {n}: {len(row)} fields, the header has {len(header)}')
        archs.append(row[a])
        for c in columns:
            try:
                values[c][n - 2] = float(row[idx[c]])
            except ValueError:
                raise ValueError(f'{path}, line {n}: column {c!r} holds {row[idx[c]]!r}, '
                                 'not a number') from None
    return archs, values


def load_targets(data_dir: Path, targets: Sequence[str]) -> Tuple[List[str], Dict[str, np.ndarray]]:
    r"""The architecture strings of ``accuracy.csv`` and each target's values in that order.

    A target is a column of ``accuracy.csv`` (``cifar10``, ``cifar100``, ``imagenet16_120``)
    or a device column of ``latency_ms.csv`` (e.g. ``pixel3``).
    """
    from d2a.graphs.nb201 import NUM_ARCHS, parse_arch
    archs, acc = _read_csv(data_dir / ACCURACY_FILE)
    out: Dict[str, np.ndarray] = {}
    latency: Optional[Tuple[List[str], Dict[str, np.ndarray]]] = None
    for t in targets:
        if t in acc:
            out[t] = acc[t]
            continue
        if latency is None:
            latency = _read_csv(data_dir / LATENCY_FILE)
            pos = {s: i for i, s in enumerate(latency[0])}
            missing = [s for s in archs if s not in pos]
            if missing:
                raise ValueError(f'{data_dir / LATENCY_FILE} has no row for {len(missing)} '
                                 f'architecture(s) of {ACCURACY_FILE}, e.g. {missing[0]!r}')
            order = np.array([pos[s] for s in archs])
        if t not in latency[1]:
            raise ValueError(f'unknown target {t!r}: not a column of {ACCURACY_FILE} '
                             f"({', '.join(acc)}) nor of {LATENCY_FILE} "
                             f"({', '.join(latency[1])})")
        out[t] = latency[1][t][order]
    if len(archs) != NUM_ARCHS or len(set(archs)) != NUM_ARCHS:
        raise ValueError(f'{data_dir / ACCURACY_FILE} must list each of the {NUM_ARCHS} '
                         f'NB201 cells once, found {len(archs)} rows '
                         f'({len(set(archs))} distinct)')
    for s in archs[:1]:
        parse_arch(s)  # raises ValueError naming the string when the format is wrong
    return archs, out


def one_hot(archs: Sequence[str]) -> np.ndarray:
    r"""``[len(archs), 30]`` one-hot op encoding (6 edges x 5 ops) of NB201 strings."""
    from d2a.graphs.nb201 import OPS, parse_arch
    op_id = {op: i for i, op in enumerate(OPS)}
    out = np.zeros((len(archs), 6 * len(OPS)), dtype=np.float32)
    for r, s in enumerate(archs):
        for k, op in enumerate(parse_arch(s)):
            out[r, k * len(OPS) + op_id[op]] = 1.0
    return out


# ----------------------------------------------------------------------------- methods
def fit_baseline(method: str, x: np.ndarray, y: np.ndarray, seed: int,
                 threads: int) -> Callable[[np.ndarray], np.ndarray]:
    r"""Trains a scikit-learn baseline on standardized targets; returns its predict function."""
    from sklearn.exceptions import ConvergenceWarning
    mean, std = float(y.mean()), float(y.std()) or 1.0
    ys = (y - mean) / std
    if method == 'rf':
        from sklearn.ensemble import RandomForestRegressor
        model = RandomForestRegressor(n_estimators=500, min_samples_leaf=1, n_jobs=threads,
                                      random_state=seed)
    elif method == 'gp':
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        # Isotropic Matern-5/2: on 30 one-hot columns it ranks better than per-column length
        # scales, which overfit 100 points.
        kernel = ConstantKernel(1.0) * Matern(length_scale=2.0, nu=2.5) + WhiteKernel(0.1)
        model = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=2,
                                         random_state=seed)
    elif method == 'mlp':
        from sklearn.neural_network import MLPRegressor
        model = MLPRegressor(hidden_layer_sizes=(128, 128), alpha=1e-3, learning_rate_init=1e-3,
                             batch_size=min(32, len(x)), max_iter=1000, n_iter_no_change=50,
                             tol=1e-6, random_state=seed)
    else:
        raise ValueError(f'unknown baseline {method!r} (known: {", ".join(BASELINES)})')
    with warnings.catch_warnings():
        # GP hyper-parameters at their bounds, an MLP stopped at max_iter: expected here.
        warnings.simplefilter('ignore', ConvergenceWarning)
        model.fit(x, ys)
    return lambda q: model.predict(q) * std + mean


class _Predictor:
    r"""d2a's graph-only :class:`~d2a.predictor.MetaPredictor` with the benchmark's settings,
    optionally starting every fit from a graph encoder pre-trained once per seed."""

    def __init__(self, encoder: str, args: argparse.Namespace):
        self.encoder = encoder
        self.args = args
        self.pretrained: Dict[int, Dict[str, torch.Tensor]] = {}

    def _model(self):
        from d2a.registry import create_model
        return create_model('gin_nb201_predictor', graph_encoder=self.encoder,
                            graph_hidden_channels=self.args.graph_hidden)

    def pretrain(self, archs: Sequence[str], seed: int) -> float:
        r"""Pre-trains the encoder as a graph-VAE encoder on ``archs`` (once per seed)."""
        if seed in self.pretrained:
            return 0.0
        model = self._model()
        t = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.pretrain(archs, epochs=self.args.pretrain_epochs, batch_size=256, seed=seed)
        self.pretrained[seed] = {k: v.clone() for k, v in model.graph_encoder.state_dict().items()}
        return time.perf_counter() - t

    def fit(self, archs: Sequence[str], y: np.ndarray, seed: int, epochs: Optional[int]):
        model = self._model()
        state = self.pretrained.get(seed)
        if state is not None:
            # MetaPredictor.fit resets every parameter first; restore the pre-trained encoder
            # right after that reset so fit starts from it.
            reset = model.reset_parameters

            def reset_keep_encoder() -> None:
                reset()
                model.graph_encoder.load_state_dict(state)
            model.reset_parameters = reset_keep_encoder
        members = []
        for k in range(self.args.ensemble):
            model.fit(archs, y, epochs=epochs, batch_size=self.args.batch_size,
                      lr=self.args.lr, weight_decay=self.args.weight_decay,
                      seed=seed * 1000 + k)
            members.append({k2: v.clone() for k2, v in model.state_dict().items()})

        def predict(query: Sequence[str]) -> np.ndarray:
            preds = []
            for st in members:
                model.load_state_dict(st)
                preds.append(model.query(query))
            return np.mean(preds, axis=0)
        return predict


# ----------------------------------------------------------------------------- metrics
def rank_metrics(pred: np.ndarray, true: np.ndarray) -> Tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr
    if not np.all(np.isfinite(pred)):
        return math.nan, math.nan
    return float(spearmanr(pred, true)[0]), float(kendalltau(pred, true)[0])


def summarize(records: List[Dict[str, Any]], markdown: bool = False) -> str:
    header = ['target', 'train size', 'method', 'Spearman', 'Kendall tau', 'train s', 'seeds']
    rows = []
    targets = list(dict.fromkeys(r['target'] for r in records))
    order = list(D2A_METHODS + BASELINES)
    keys = sorted({(r['target'], r['size'], r['method']) for r in records},
                  key=lambda k: (targets.index(k[0]), k[1], order.index(k[2])))
    for target, size, method in keys:
        rs = [r for r in records if (r['target'], r['size'], r['method']) == (target, size, method)]
        rows.append([target, str(size), METHOD_LABELS.get(method, method),
                     _common.mean_std([r['spearman'] for r in rs]),
                     _common.mean_std([r['kendall'] for r in rs]),
                     f"{np.mean([r['train_s'] for r in rs]):.1f}", str(len(rs))])
    return _common.format_table(header, rows, markdown)


def verdicts(records: List[Dict[str, Any]]) -> List[str]:
    r"""Whether d2a's best encoder beats the best baseline, per (target, size)."""
    lines = []
    targets = list(dict.fromkeys(r['target'] for r in records))
    groups = sorted({(r['target'], r['size']) for r in records},
                    key=lambda k: (targets.index(k[0]), k[1]))
    for target, size in groups:
        mean = {}
        for r in records:
            if (r['target'], r['size']) == (target, size):
                mean.setdefault(r['method'], []).append(r['spearman'])
        mean = {m: float(np.mean(v)) for m, v in mean.items()}
        ours = {m: v for m, v in mean.items() if m in D2A_METHODS}
        base = {m: v for m, v in mean.items() if m in BASELINES}
        if not ours or not base:
            continue
        bo, bb = max(ours, key=ours.get), max(base, key=base.get)
        diff = ours[bo] - base[bb]
        # Closer than 0.005 is within the seed-to-seed spread of every row measured here.
        sign = 'level with' if abs(diff) < 0.005 else 'ahead of' if diff > 0 else 'behind'
        lines.append(f"{target} @ {size}: d2a's best, {METHOD_LABELS[bo]}, {ours[bo]:.3f}, is "
                     f'{sign} the best baseline, {METHOD_LABELS[bb]}, {base[bb]:.3f} '
                     '(Spearman, mean)')
    return lines


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DEFAULT_DATA),
                   help=f'folder with {ACCURACY_FILE} and {LATENCY_FILE} (default: %(default)s)')
    p.add_argument('--targets', nargs='+',
                   default=['cifar10', 'cifar100', 'imagenet16_120', 'gold_6226', 'pixel3'],
                   help='accuracy columns and latency devices (default: %(default)s)')
    p.add_argument('--sizes', nargs='+', type=int, default=[100, 1000])
    p.add_argument('--seeds', type=int, default=5, help='seeds 0..N-1 (default: %(default)s)')
    p.add_argument('--methods', nargs='+', default=list(D2A_METHODS + BASELINES),
                   choices=list(D2A_METHODS + BASELINES))
    p.add_argument('--epochs', nargs='+', type=int, default=None,
                   help="d2a training epochs: one value, or one per size (default: "
                        "MetaPredictor.fit's own schedule)")
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--weight-decay', type=float, default=1e-4)
    p.add_argument('--graph-hidden', type=int, default=128,
                   help="d2a graph encoder's node-state size (default: %(default)s, the "
                        "'gin_nb201_predictor' size; MetaD2A's DAG-GRU: 512)")
    p.add_argument('--pretrain-epochs', type=int, default=0,
                   help='pre-train the d2a encoders as graph-VAE encoders on all unlabelled '
                        'cells for this many epochs, once per seed (0: off)')
    p.add_argument('--ensemble', type=int, default=1,
                   help='average this many d2a models trained with different seeds')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='write every per-seed result here (updated as it runs)')
    p.add_argument('--resume', action='store_true',
                   help='keep the results already in --json and run only the missing ones')
    p.add_argument('--markdown', action='store_true', help='print the table as Markdown')
    p.add_argument('--report', action='store_true',
                   help='only print the table of the results already in --json')
    args = p.parse_args(argv)
    if args.epochs is not None and len(args.epochs) not in (1, len(args.sizes)):
        p.error(f'--epochs takes one value or one per size ({len(args.sizes)})')
    if (args.resume or args.report) and not args.json:
        p.error('--resume and --report need --json')
    if min(args.sizes) < 2 or args.seeds < 1 or args.ensemble < 1:
        p.error('--sizes must be >= 2, --seeds and --ensemble >= 1')
    return args


def print_report(records: List[Dict[str, Any]], markdown: bool) -> None:
    print(summarize(records, markdown))
    print()
    for line in verdicts(records):
        print(line)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.report:
        if not Path(args.json).is_file():
            raise FileNotFoundError(f'--report: {args.json} does not exist')
        with open(args.json) as f:
            print_report(json.load(f).get('records', []), args.markdown)
        return 0
    _common.setup_threads(args.threads)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    archs, targets = load_targets(Path(args.data), args.targets)
    if max(args.sizes) >= len(archs):
        raise ValueError(f'--sizes must be below {len(archs)} (cells in the table)')
    x_all = one_hot(archs)
    if args.epochs is None:
        epochs: Dict[int, Optional[int]] = {s: None for s in args.sizes}
    else:
        epochs = dict(zip(args.sizes, args.epochs * len(args.sizes) if len(args.epochs) == 1
                          else args.epochs))
    info = _common.machine_info(args.threads)
    print(f'machine: {_common.describe_machine(info)}', flush=True)
    predictors = {m: _Predictor(m, args) for m in args.methods if m in D2A_METHODS}
    records: List[Dict[str, Any]] = []
    if args.resume and Path(args.json).is_file():
        with open(args.json) as f:
            records.extend(json.load(f).get('records', []))
        print(f'resuming: {len(records)} result(s) already in {args.json}', flush=True)
    done = {(r['target'], r['size'], r['seed'], r['method']) for r in records}
    payload = {'machine': info, 'args': vars(args), 'records': records, 'pretrain_s': {}}
    for seed in range(args.seeds):
        if args.pretrain_epochs > 0:
            for name, pred in predictors.items():
                secs = pred.pretrain(archs, seed)
                payload['pretrain_s'][f'{name}/{seed}'] = secs
                print(f'pretrained {name} seed {seed}: {secs:.1f}s', flush=True)
        for target, y in targets.items():
            for size in args.sizes:
                rng = np.random.default_rng([seed, size])
                perm = rng.permutation(len(archs))
                tr, te = perm[:size], perm[size:]
                tr_archs, te_archs = [archs[i] for i in tr], [archs[i] for i in te]
                for method in args.methods:
                    if (target, size, seed, method) in done:
                        continue
                    t0 = time.perf_counter()
                    if method in D2A_METHODS:
                        predict = predictors[method].fit(tr_archs, y[tr], seed, epochs[size])
                        t1 = time.perf_counter()
                        pred = predict(te_archs)
                    else:
                        predict = fit_baseline(method, x_all[tr], y[tr], seed, args.threads)
                        t1 = time.perf_counter()
                        pred = predict(x_all[te])
                    t2 = time.perf_counter()
                    rho, tau = rank_metrics(np.asarray(pred), y[te])
                    rec = {'target': target, 'size': size, 'seed': seed, 'method': method,
                           'spearman': rho, 'kendall': tau, 'train_s': t1 - t0,
                           'query_s': t2 - t1, 'num_test': len(te)}
                    records.append(rec)
                    print(f'{target} size {size} seed {seed} {method}: spearman {rho:.3f} '
                          f'kendall {tau:.3f} train {t1 - t0:.1f}s query {t2 - t1:.1f}s',
                          flush=True)
                    _common.write_json(args.json, payload)
    print()
    print_report(records, args.markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
