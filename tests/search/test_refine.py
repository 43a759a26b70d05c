import json

import numpy as np
import pytest

from d2a.graphs import get_space
from d2a.nets.recipe import Recipe
from d2a.search import (MeasurementCache, RecipeTrainer, ResidualGP, refine, resolve_recipe,
                        search)

SPACE = get_space('nb201')
TINY_RECIPE = Recipe(name='tiny', C=2, N=1, epochs=1, batch_size=8, image_size=8)


class FakeTrainer:
    r"""Looks accuracies up in a table and counts the calls; raises KeyboardInterrupt at
    call ``stop`` (1-based) when given."""

    def __init__(self, table, stop=None):
        self.table, self.stop, self.calls = dict(table), stop, []
        self.cache_key = 'fake-task|fake-recipe'

    def __call__(self, arch):
        if self.stop is not None and len(self.calls) + 1 == self.stop:
            raise KeyboardInterrupt
        self.calls.append(arch)
        return self.table[arch]


def synthetic_pool(n=60, seed=0):
    r"""Cells with 2-d 'graph vectors'; the truth is a smooth bump the prediction misses:
    the predictor is right in level only for the first half of the ranking."""
    rng = np.random.default_rng(seed)
    archs = [f'cell{i}' for i in range(n)]
    h = rng.normal(size=(n, 2))
    truth = 80.0 - 5.0 * ((h - np.array([1.5, 1.5])) ** 2).sum(1)
    predicted = 70.0 + 0.3 * h[:, 0] + rng.normal(0, 1.0, n)  # weak, noisy signal
    return archs, predicted, h, dict(zip(archs, truth))


def test_gp_learns_an_offset_and_interpolates_measurements():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(30, 4))
    p = rng.normal(50, 5, 30)
    y = p + 12.0  # the predictor is 12 points low everywhere
    gp = ResidualGP(h, p, noise=0.01).fit([0, 5, 9], y[[0, 5, 9]])
    mean, std = gp.predict()
    assert np.allclose(mean[[0, 5, 9]], y[[0, 5, 9]], atol=0.2)
    assert np.allclose(mean, y, atol=2.0)  # the offset carries over to unmeasured cells
    assert repr(gp) == 'ResidualGP(30, noise=0.01, slope_std=0.5, measured=3)'
    assert std[[0, 5, 9]].max() < np.median(np.delete(std, [0, 5, 9]))
    with pytest.raises(ValueError, match='as many indices as measurements'):
        gp.fit([0, 1], [1.0])
    with pytest.raises(ValueError, match=r'embeddings must be \[P, F\] with P = 3'):
        ResidualGP(np.zeros((4, 2)), [1.0, 2.0, 3.0])


def test_first_pick_is_zero_shot_top1_and_budget_is_respected():
    archs, pred, h, truth = synthetic_pool()
    trainer = FakeTrainer(truth)
    res = refine(archs, pred, h, trainer, budget=7)
    assert res.measurements[0].arch == archs[int(np.argmax(pred))]
    assert res.num_measured == res.num_trained == len(trainer.calls) == 7
    assert len(set(trainer.calls)) == 7
    assert res.best.measured_accuracy == max(truth[a] for a in trainer.calls)
    d = res.to_dict()
    assert d['best']['arch'] == res.best.arch and d['measurements'][0]['expected_std'] is None
    json.dumps(d, allow_nan=False)
    ranking = refine(archs, pred, h, FakeTrainer(truth), budget=7, acquisition='ranking')
    assert [m.arch for m in ranking.measurements] == [archs[i] for i in np.argsort(-pred)[:7]]
    assert refine(archs, pred, h, FakeTrainer(truth), budget=500).num_measured == len(archs)


@pytest.mark.parametrize('acquisition', ['ei', 'ucb'])
def test_surrogate_beats_the_zero_shot_ranking_when_the_predictor_is_off(acquisition):
    gaps = {'surrogate': [], 'ranking': []}
    for seed in range(8):
        archs, pred, h, truth = synthetic_pool(seed=seed)
        best = max(truth.values())
        for name, rule in (('surrogate', acquisition), ('ranking', 'ranking')):
            res = refine(archs, pred, h, FakeTrainer(truth), budget=10, acquisition=rule)
            gaps[name].append(best - res.best.measured_accuracy)
    assert np.mean(gaps['surrogate']) < 0.5 * np.mean(gaps['ranking'])


def test_cache_resumes_after_interrupt_and_trains_nothing_twice(tmp_path):
    archs, pred, h, truth = synthetic_pool()
    full = refine(archs, pred, h, FakeTrainer(truth), budget=6)
    path = tmp_path / 'out.measurements.json'
    stopped = FakeTrainer(truth, stop=4)
    part = refine(archs, pred, h, stopped, budget=6, cache=MeasurementCache(path))
    assert part.interrupted and part.num_measured == 3 and len(stopped.calls) == 3
    assert json.loads(path.read_text())['format'] == 'd2a-measurements'
    assert repr(MeasurementCache(path)).endswith('3 measurements)')
    again = FakeTrainer(truth)
    resumed = refine(archs, pred, h, again, budget=6, cache=MeasurementCache(path))
    assert not resumed.interrupted and resumed.num_cached == 3 and len(again.calls) == 3
    assert [m.arch for m in resumed.measurements] == [m.arch for m in full.measurements]
    third = FakeTrainer(truth)
    refine(archs, pred, h, third, budget=6, cache=MeasurementCache(path))
    assert third.calls == []
    # another trainer key (another dataset or recipe) does not reuse the measurements
    other = FakeTrainer(truth)
    other.cache_key = 'other-task|fake-recipe'
    refine(archs, pred, h, other, budget=2, cache=MeasurementCache(path))
    assert len(other.calls) == 2


def test_bad_refinement_input(tmp_path):
    archs, pred, h, truth = synthetic_pool(n=5)
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='bad.json is not readable JSON'):
        MeasurementCache(bad)
    bad.write_text('{"entries": []}')
    with pytest.raises(ValueError, match="bad.json is not a d2a measurement file .*'format'"):
        MeasurementCache(bad)
    with pytest.raises(ValueError, match='budget must be >= 1'):
        refine(archs, pred, h, FakeTrainer(truth), budget=0)
    with pytest.raises(ValueError, match="acquisition must be one of"):
        refine(archs, pred, h, FakeTrainer(truth), budget=1, acquisition='pi')
    with pytest.raises(ValueError, match="'cache_key'"):
        refine(archs, pred, h, lambda a: 1.0, budget=1, cache=MeasurementCache(tmp_path / 'c'))


def test_resolve_recipe(tmp_path, db_path):
    assert resolve_recipe('nb201')[0] == Recipe.nb201()
    path = tmp_path / 'r.json'
    path.write_text(json.dumps({'recipe': TINY_RECIPE.to_dict(),
                                'data': {'test_fraction': 0.5}}))
    r, data = resolve_recipe(str(path))
    assert r == TINY_RECIPE and data['test_fraction'] == 0.5
    r, _ = resolve_recipe(None, {'db': str(db_path), 'recipe': 'r1'})
    assert r.epochs == 1
    path.write_text(json.dumps({'epochs': 0}))
    with pytest.raises(ValueError, match="r.json: recipe field 'epochs' must be a positive"):
        resolve_recipe(str(path))
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        resolve_recipe('fast', {'db': str(db_path)})
    with pytest.raises(ValueError, match="meta-trained on recipe 'gone' of /nowhere.h5.*--recipe"):
        resolve_recipe(None, {'db': '/nowhere.h5', 'recipe': 'gone'})


def test_recipe_trainer_trains_on_a_split(tiny, tmp_path):
    images, labels = tiny.class_images(3, num_classes=3, per_class=6, size=8)
    np.savez(tmp_path / 'd.npz', images=images, labels=labels)
    trainer = RecipeTrainer(tmp_path / 'd.npz', TINY_RECIPE, test_fraction=0.5, device='cpu')
    assert len(trainer.train_y) == 9 and len(trainer.test_y) == 9
    acc = trainer('|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|')
    assert 0.0 <= acc <= 100.0 and acc * 9 / 100 == pytest.approx(round(acc * 9 / 100))
    assert trainer.cache_key.startswith('d|') and TINY_RECIPE.recipe_id in trainer.cache_key
    other = RecipeTrainer(tmp_path / 'd.npz', TINY_RECIPE, test_fraction=0.5, split_seed=1)
    assert other.cache_key != trainer.cache_key


def test_search_with_budget(tiny_run, tmp_path):
    cache = tmp_path / 'm.json'
    table = {}

    def trainer(arch):
        table[arch] = 10.0 + arch.count('conv')
        return table[arch]
    trainer.cache_key = 'tiny-folder'
    r = search(tiny_run['folder'], tiny_run['ckpt'], num_candidates=10, top_k=2, budget=4,
               trainer=trainer, cache=cache, device='cpu')
    assert r.refinement.num_trained == 4 and len(table) == 4
    assert r.best_measured.measured_accuracy == max(table.values())
    assert r.refinement.measurements[0].arch == r.best.arch
    assert 'best measured' in r.to_table() and 'refinement' in r.timing
    data = json.loads(r.to_json(tmp_path / 'r.json'))
    assert data['refinement']['best']['arch'] == r.best_measured.arch
    # exhaustive ranking as the pool, and the real trainer with a recipe
    recipe = tmp_path / 'tiny.json'
    recipe.write_text(json.dumps(TINY_RECIPE.to_dict()))
    r = search(tiny_run['folder'], tiny_run['ckpt'], exhaustive=True, top_k=1, budget=2,
               recipe=str(recipe), cache=cache, device='cpu')
    assert r.refinement.pool_size == 6466 and r.refinement.num_trained == 2
    assert r.refinement.recipe['recipe_id'] == TINY_RECIPE.recipe_id
    with pytest.raises(ValueError, match='a recipe or a trainer, not both'):
        search(tiny_run['folder'], tiny_run['ckpt'], num_candidates=3, budget=1,
               trainer=trainer, recipe='nb201', device='cpu')
