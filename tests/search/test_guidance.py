import numpy as np
import pytest
import torch

from d2a.graphs import get_space
from d2a.search import GuidedSampler, dataset_features, load_models, search

SPACE = get_space('nb201')


def sampler(models, data, strength, **kwargs):
    rng = np.random.default_rng(0)
    return GuidedSampler(models.generator, models.predictor, SPACE,
                         lambda: data.draw(models.num_sample, rng), strength,
                         generator_rng=torch.Generator().manual_seed(0), **kwargs)


def test_guided_sampler_returns_new_distinct_cells(tiny_run):
    models = load_models(tiny_run['ckpt'], 'cpu')
    data = dataset_features(tiny_run['folder'], models)
    s = sampler(models, data, 2.0, oversample=3)
    first, second = s(10), s(10)
    keys = [SPACE.canonical_key(a) for a in first + second]
    assert len(first) == 10 and all(a is not None for a in first)
    assert len(set(keys)) == len(keys)  # nothing repeated, within or across calls
    assert s.num_generated == 60 and 0 < s.num_valid <= 60
    assert s.std is not None and bool((s.std >= s.floor - 1e-6).all())
    assert 'oversample=3' in repr(s)
    for bad, match in (({'strength': -1.0}, 'guidance strength must be >= 0'),
                       ({'oversample': 0}, 'oversample must be a positive integer'),
                       ({'smoothing': 0.0}, r'smoothing and min_std must be in \(0, 1\]')):
        args = {'strength': 1.0, **bad}
        with pytest.raises(ValueError, match=match):
            sampler(models, data, args.pop('strength'), **args)
    with pytest.raises(ValueError, match='guidance steers generation'):
        search(tiny_run['folder'], tiny_run['ckpt'], exhaustive=True, guidance=1.0,
               device='cpu')


def test_guidance_raises_predicted_accuracy_on_the_shipped_checkpoints():
    # equal numbers of candidates, the same seeds: the guided ones score higher on average
    gains = []
    for seed in (0, 1):
        plain = search('digits', num_candidates=60, top_k=60, seed=seed, device='cpu')
        guided = search('digits', num_candidates=60, top_k=60, seed=seed, guidance=3.0,
                        device='cpu')
        assert len(plain.candidates) == len(guided.candidates) == 60
        assert guided.guidance == 3.0 and 'guided by the predictor' in guided.to_table()
        gains.append(np.mean([c.predicted_accuracy for c in guided.candidates])
                     - np.mean([c.predicted_accuracy for c in plain.candidates]))
    assert min(gains) > 0.3
