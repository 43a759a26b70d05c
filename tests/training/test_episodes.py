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
