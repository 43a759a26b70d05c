r"""Ranking every unique NAS-Bench-201 cell for a dataset from cached graph vectors
(``d2a search --all``), against generating and ranking 500 candidates, in the same run.

Both start from the dataset's features (scikit-learn's digits through the checkpoints'
feature extractor, extracted once before timing) and score with ``--num-resamples`` draws
of the dataset, as ``d2a.search.search`` does. Timed separately:

- ``rank all, cached``: the predictor's dataset vector and head over the 6,466 cached graph
  vectors (what a search with ``--all`` does once the cache exists);
- ``build the cache``: encoding the 6,466 unique cells once per predictor;
- ``generate + rank N``: sampling until ``--num-candidates`` unique valid cells exist,
  encoding and ranking them.

Medians over ``--repeats`` runs. Example::

    .venv/bin/python bench/rank_all.py --threads 2 --json bench/results/rank_all.json
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets the OpenMP policy before torch is used)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    import shutil

    from d2a.graphs import get_space
    from d2a.search.candidates import collect_candidates
    from d2a.search.engine import load_models
    from d2a.search.features import dataset_features
    from d2a.search.ranking import rank_candidates, rank_embeddings, space_embeddings
    from d2a.utils.paths import DEFAULT_CHECKPOINT_DIR
    src = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT_DIR
    space = get_space('nb201')
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / 'ckpt'
        shutil.copytree(src, ckpt)
        (ckpt / 'predictor.embeddings.pt').unlink(missing_ok=True)
        models = load_models(ckpt)
        data = dataset_features(args.dataset, models)
        # Features are extracted when a draw first needs an image: draw often enough up
        # front that the timed draws find them extracted.
        warm = np.random.default_rng(12345)
        for _ in range(60):
            data.draw(models.num_sample, warm)
        times: Dict[str, List[float]] = {'rank all, cached': [], 'build the cache': [],
                                         f'generate + rank {args.num_candidates}': []}
        gen = models.generator
        for r in range(args.repeats):
            (ckpt / 'predictor.embeddings.pt').unlink(missing_ok=True)
            t = time.perf_counter()
            archs, h = space_embeddings(models.predictor, space, ckpt)
            times['build the cache'].append(time.perf_counter() - t)
            rng = np.random.default_rng(r)
            t = time.perf_counter()
            archs, h = space_embeddings(models.predictor, space, ckpt)
            mean, _ = rank_embeddings(models.predictor, h, data, models.num_sample,
                                      args.num_resamples, rng)
            archs[int(np.argmax(mean))]  # the pick
            times['rank all, cached'].append(time.perf_counter() - t)
            g = torch.Generator().manual_seed(r)

            @torch.no_grad()
            def sample(n: int):
                x = data.draw(models.num_sample, rng)
                mu, logvar = gen.encode(x)
                mu, logvar = mu.expand(n, -1), logvar.expand(n, -1)
                z = mu + torch.randn(mu.shape, generator=g) * torch.exp(0.5 * logvar)
                return space.from_dense_batch(*gen.decoder.sample(z, generator=g))

            t = time.perf_counter()
            cands, _ = collect_candidates(sample, space, args.num_candidates, None,
                                          min(max(args.num_candidates, 100), 1000))
            rank_candidates(models.predictor, space, cands, data, models.num_sample,
                            args.num_resamples, rng)
            times[f'generate + rank {args.num_candidates}'].append(time.perf_counter() - t)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {'checkpoint': str(src), 'dataset': args.dataset, 'num_cells': len(archs),
            'num_resamples': args.num_resamples, 'repeats': args.repeats, 'times': times,
            'medians': medians}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--checkpoint', default=None, help='checkpoint folder (default: shipped)')
    p.add_argument('--dataset', default='digits')
    p.add_argument('--num-candidates', type=int, default=500)
    p.add_argument('--num-resamples', type=int, default=5)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    _common.setup_threads(args.threads)
    info = _common.machine_info(args.threads)
    result = measure(args)
    result['machine'] = info
    base = result['medians'][f'generate + rank {args.num_candidates}']
    rows = [[k, f'{v:.3f}', f'{v / base:.2f}x'] for k, v in result['medians'].items()]
    print(f"{result['num_cells']:,} unique cells, {args.num_resamples} dataset draws, median of "
          f'{args.repeats}; {_common.describe_machine(info)}')
    print(_common.format_table(['what', 'seconds', f'vs generate + rank {args.num_candidates}'],
                               rows))
    _common.write_json(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
