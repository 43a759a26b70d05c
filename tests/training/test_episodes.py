import numpy as np
import pytest

from d2a.db import MetaDatabase
from d2a.training.episodes import MetaTrainData, epoch_batches


@pytest.mark.parametrize('n,batch,world', [(10, 3, 1), (10, 2, 2), (7, 2, 3), (1, 4, 2)])
def test_epoch_batches_cover_items_once_per_epoch(n, batch, world):
    items = list(range(n))
    per_rank = [epoch_batches(items, batch, epoch=1, seed=0, rank=r, world_size=world)
                for r in range(world)]
    sizes = {sum(len(b) for b in bs) for bs in per_rank}
    assert len(sizes) == 1  # equal work on every rank, as DDP needs
    seen = [i for bs in per_rank for b in bs for i in b]
    assert set(seen) == set(items) and len(seen) - n < world
    again = epoch_batches(items, batch, epoch=1, seed=0, rank=0, world_size=world)
    assert again == per_rank[0]
    if n > 2:
        assert epoch_batches(items, n, epoch=2, seed=0) != epoch_batches(items, n, epoch=1, seed=0)


def test_split_items_and_batches(tiny_db):
    with MetaDatabase.open(tiny_db) as db:
        data = MetaTrainData(db, num_sample=3, val_fraction=0.34, top_k=2, seed=0)
        train, val = data.split_tasks('train'), data.split_tasks('val')
        assert len(train) == 4 and len(val) == 2  # the meta-test task is not used
        assert not {t.name for t in train} & {t.name for t in val}
        for t in data.tasks:
            assert t.accs == sorted(t.accs, reverse=True)
        gen_items = data.items('generator', 'train')
        assert len(gen_items) == 4 * 2
        assert all(acc == data._by_name[t].accs[0] or acc == data._by_name[t].accs[1]
                   for t, _, acc in gen_items)
        pred_items = data.items('predictor', 'val')
        assert len(pred_items) == 2 * 6
        rng = np.random.default_rng(0)
        batch = data.make_batch(pred_items[:5], rng)
        assert batch.x.shape == (5, 3, 3, db.feature_dim) and batch.class_mask.all()
        assert batch.y.shape == (5,) and len(batch.archs) == 5
        a = data.sample_dataset('t0', np.random.default_rng(1))
        b = data.sample_dataset('t0', np.random.default_rng(2))
        assert a.shape == b.shape and not np.allclose(a, b)  # re-drawn, not fixed


def test_bad_options(tiny_db):
    with MetaDatabase.open(tiny_db) as db:
        with pytest.raises(ValueError, match='fewer than num_sample=50'):
            MetaTrainData(db, num_sample=50)
        with pytest.raises(ValueError, match="no recipe 'other'"):
            MetaTrainData(db, num_sample=3, recipe='other')
        with pytest.raises(ValueError, match="no meta-train task with results in the 'mbv3'"):
            MetaTrainData(db, space='mbv3', num_sample=3)


@pytest.mark.parametrize('group,world', [(3, 1), (4, 2), (1, 1)])
def test_grouped_batches_hold_one_task_per_group(group, world):
    from d2a.training.episodes import grouped_batches
    items = [(f't{t}', f'a{i}', float(i)) for t in range(4) for i in range(t + 5)]
    per_rank = [grouped_batches(items, 8, group, epoch=1, seed=0, rank=r, world_size=world)
                for r in range(world)]
    assert len({len(bs) for bs in per_rank}) == 1
    seen = [i for bs in per_rank for b in bs for i in b]
    assert set(seen) == set(items)
    for b in (b for bs in per_rank for b in bs):
        assert len(b) <= 8
        # whole groups: a batch holds at most batch_size // group_size tasks
        assert len({t for t, _, _ in b}) <= 8 // group
    with pytest.raises(ValueError, match='group_size'):
        grouped_batches(items, 8, 0, 1, 0)


def test_shared_draws_and_task_stats(tiny_db):
    with MetaDatabase.open(tiny_db) as db:
        data = MetaTrainData(db, num_sample=3, val_fraction=0.0, seed=0)
        items = data.items('predictor', 'train')
        chosen = [i for i in items if i[0] == 't0'][:3] + [i for i in items if i[0] == 't1'][:2]
        batch = data.make_batch(chosen, np.random.default_rng(0), share=True)
        assert batch.x.shape[0] == 2 and batch.group.tolist() == [0, 0, 0, 1, 1]
        mean, std = data.task_stats('t0')
        accs = data._by_name['t0'].accs
        assert np.isclose(mean, np.mean(accs)) and np.isclose(std, np.std(accs))
        assert batch.stats[0].tolist() == pytest.approx([mean, std])
        single = data.make_batch(chosen, np.random.default_rng(0))
        assert single.x.shape[0] == 5 and single.group.tolist() == list(range(5))


def test_validation_by_source(tiny_db):
    with MetaDatabase.open(tiny_db) as db:
        data = MetaTrainData(db, num_sample=3, val_fraction=0.5, val_by='source', seed=0)
        # the tiny database has one meta-train source: it cannot be split by source
        assert not data.split_tasks('val')
        with pytest.raises(ValueError, match='val_by'):
            MetaTrainData(db, num_sample=3, val_by='class')


def test_validation_on_a_pair_split(tiny_db):
    with MetaDatabase.open(tiny_db) as db:
        archs = {t: db.task_results(t)[0] for t in ('t0', 't1')}
        held = {('t0', archs['t0'][0]), ('t0', archs['t0'][1]), ('t1', archs['t1'][2])}
        data = MetaTrainData(db, num_sample=3, val_pairs=held)
        val = data.items('predictor', 'val')
        assert {(t, a) for t, a, _ in val} == held
        train = data.items('predictor', 'train')
        assert len(train) == 6 * 6 - 3 and not {(t, a) for t, a, _ in train} & held
        # Both parts of t0 exist; its statistics come from the training part.
        parts = [t for t in data.tasks if t.name == 't0']
        assert sorted(t.split for t in parts) == ['train', 'val']
        train_part = next(t for t in parts if t.split == 'train')
        assert data.task_stats('t0')[0] == pytest.approx(float(np.mean(train_part.accs)))
        with pytest.raises(ValueError, match='none of the 1 validation pairs is a labelled'):
            MetaTrainData(db, num_sample=3, val_pairs={('t0', 'not-a-cell')})
