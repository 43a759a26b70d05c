import json

import numpy as np
import pytest
import torch

from d2a.graphs import get_space
from d2a.graphs.nb201 import NB201CostModel
from d2a.search import search

SPACE = get_space('nb201')


@pytest.fixture
def run(tiny_run):
    return tiny_run


def test_search_image_folder(run):
    result = search(run['folder'], run['ckpt'], num_candidates=12, top_k=4, batch_size=8,
                    num_resamples=3, device='cpu')
    assert [c.rank for c in result.candidates] == [1, 2, 3, 4]
    preds = [c.predicted_accuracy for c in result.candidates]
    assert preds == sorted(preds, reverse=True)
    assert result.num_evaluated == 12 and result.num_generated >= 12
    assert len({SPACE.canonical_key(c.arch) for c in result.candidates}) == 4
    cost = NB201CostModel(num_classes=3)
    assert all(c.params == cost.params(c.arch) and c.flops == cost.flops(c.arch)
               for c in result.candidates)
    assert set(result.timing) == {'features', 'encoding', 'generation', 'ranking', 'total'}
    data = json.loads(result.to_json(run['root'] / 'result.json'))
    assert data['candidates'][0]['arch'] == result.best.arch
    assert json.loads((run['root'] / 'result.json').read_text()) == data
    table = result.to_table()
    assert result.best.arch in table and 'unique candidates scored' in table


def test_search_npz_and_database_task_with_constraints(tiny, run, tmp_path):
    images, labels = tiny.class_images(7, num_classes=4, per_class=5, size=10)
    np.savez(tmp_path / 'd.npz', images=images, labels=labels)
    a = search(tmp_path / 'd.npz', run['ckpt'], num_candidates=5, top_k=2, device='cpu')
    b = search((run['db'], 'test0'), run['ckpt'], num_candidates=5, top_k=2,
               max_params=600_000, device='cpu')
    assert a.dataset == 'd' and len(a.candidates) == 2
    c = search('digits', run['ckpt'], num_candidates=3, top_k=1, device='cpu')
    assert c.dataset == 'digits' and c.candidates[0].params == \
        NB201CostModel(num_classes=10, in_channels=1).params(c.best.arch)
    assert b.dataset == 'tiny.h5:test0' and all(c.params <= 600_000 for c in b.candidates)
    assert b.constraints == {'max_params': 600_000}


def test_search_latency_constraint(run, tmp_path):
    table = tmp_path / 'lat.csv'
    archs = list(SPACE.enumerate())
    rows = [f'{i},{a},{1.0 + a.count("conv")}' for i, a in enumerate(archs)]
    table.write_text('index,arch,phone\n' + '\n'.join(rows) + '\n')
    r = search(run['folder'], run['ckpt'], num_candidates=4, top_k=4, max_latency=3.0,
               latency_table=table, latency_device='phone', device='cpu')
    assert all(c.latency_ms is not None and c.latency_ms <= 3.0 for c in r.candidates)
    assert 'latency (ms)' in r.to_table()


def test_fewer_candidates_than_asked_is_reported(run):
    with pytest.warns(UserWarning, match='only'):
        r = search(run['folder'], run['ckpt'], num_candidates=20_000, top_k=3, batch_size=1,
                   patience=1, num_resamples=1, device='cpu')
    assert r.num_evaluated < 20_000 and 'asked for 20,000' in r.message


def test_bad_inputs_give_clear_errors(tiny, run, tmp_path):
    with pytest.raises(FileNotFoundError, match="--checkpoint DIR .*'d2a train generator"):
        search(run['folder'], tmp_path)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='has no class sub-folders'):
        search(tmp_path / 'empty', run['ckpt'], device='cpu')
    with pytest.raises(FileNotFoundError, match='does not exist .*source spec'):
        search(tmp_path / 'missing', run['ckpt'], device='cpu')
    (tmp_path / 'x.txt').write_text('x')
    with pytest.raises(ValueError, match='image folder .* or an .npz'):
        search(tmp_path / 'x.txt', run['ckpt'], device='cpu')
    with pytest.raises(ValueError, match='no architecture satisfies the constraints'):
        search(run['folder'], run['ckpt'], max_params=1_000, device='cpu')
    with pytest.raises(ValueError, match='go together'):
        search(run['folder'], run['ckpt'], latency_table='t.csv', device='cpu')
    other = tiny.build_db(tmp_path / 'other.h5', pixel_size=3)
    with pytest.raises(ValueError, match='27-d features .* expect 12-d'):
        search((other, 't0'), run['ckpt'], device='cpu')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_search_on_cuda(run):
    result = search(run['folder'], run['ckpt'], num_candidates=6, top_k=2, device='cuda')
    assert len(result.candidates) == 2 and result.num_evaluated == 6


def test_checkpoints_that_do_not_belong_together(run, tmp_path):
    import shutil

    from d2a.features import create_extractor, save_extractor
    ckpt = tmp_path / 'ckpt'
    shutil.copytree(run['ckpt'], ckpt)
    save_extractor(create_extractor('raw_pixels', in_channels=3, size=3), ckpt / 'extractor.pt')
    with pytest.raises(ValueError, match='27-d features, the checkpoints expect'):
        search(run['folder'], ckpt, device='cpu')
    shutil.copy(ckpt / 'generator.pt', ckpt / 'predictor.pt')
    with pytest.raises(ValueError, match='is a generator checkpoint, expected a predictor'):
        search(run['folder'], ckpt, device='cpu')


def test_exhaustive_search_ranks_every_unique_cell_from_cached_vectors(run, tmp_path):
    import shutil

    from d2a.search.ranking import EMBEDDINGS_FILE, rank_candidates
    from d2a.search.engine import load_models
    from d2a.search.features import dataset_features
    ckpt = tmp_path / 'ckpt'
    shutil.copytree(run['ckpt'], ckpt)
    first = search(run['folder'], ckpt, top_k=3, num_resamples=2, device='cpu', exhaustive=True)
    assert first.exhaustive and first.num_evaluated == 6466 and first.num_generated == 0
    assert (ckpt / EMBEDDINGS_FILE).is_file()
    again = search(run['folder'], ckpt, top_k=3, num_resamples=2, device='cpu', exhaustive=True)
    assert [c.arch for c in again.candidates] == [c.arch for c in first.candidates]
    # the same scores as ranking the cells from scratch
    models = load_models(ckpt)
    data = dataset_features(run['folder'], models)
    top = [c.arch for c in first.candidates]
    mean, _ = rank_candidates(models.predictor, SPACE, top, data, models.num_sample, 2,
                              np.random.default_rng(0))
    assert mean == pytest.approx([c.predicted_accuracy for c in first.candidates], abs=1e-4)
    assert 'ranked all 6,466 unique architectures' in first.to_table()
    # a stale cache (another predictor) is recomputed, not trusted
    torch.save({'digest': 'other', 'space': 'nb201', 'archs': top, 'h': torch.zeros(3, 8)},
               ckpt / EMBEDDINGS_FILE)
    assert search(run['folder'], ckpt, top_k=3, num_resamples=2, device='cpu',
                  exhaustive=True).num_evaluated == 6466
    limited = search(run['folder'], ckpt, top_k=2, device='cpu', exhaustive=True,
                     max_params=0.5e6)
    assert limited.num_evaluated + limited.rejected['params'] == 6466
    assert all(c.params <= 0.5e6 for c in limited.candidates)


def test_graph_vector_cache_key_is_exact_and_thread_independent(run):
    from d2a.search.engine import load_models
    from d2a.search.ranking import _encoder_digest
    predictor = load_models(run['ckpt']).predictor
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _encoder_digest(predictor)
        torch.set_num_threads(2)
        assert _encoder_digest(predictor) == one
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        p = next(predictor.graph_encoder.parameters())
        p.view(-1)[0] = torch.nextafter(p.view(-1)[0], p.view(-1)[0] + 1)
    assert _encoder_digest(predictor) != one


def test_unique_cells_of_nb201():
    cells = SPACE.unique()
    assert len(cells) == 6466 and len({SPACE.canonical_key(a) for a in cells}) == 6466


def test_degenerate_datasets_are_refused(tiny, run, tmp_path):
    # One class: every architecture would score as perfect.
    one = tiny.write_image_folder(tmp_path / 'one', num_classes=1, per_class=4)
    with pytest.raises(ValueError, match='has 1 class: a search needs at least 2'):
        search(one, run['ckpt'], device='cpu')
    # One image per class: the re-samplings all draw the same set (spread 0.00).
    single = tiny.write_image_folder(tmp_path / 'single', num_classes=3, per_class=1)
    with pytest.raises(ValueError, match="class 'class0' has 1 image .3 classes below 2"):
        search(single, run['ckpt'], device='cpu')
    # All-NaN images.
    images, labels = tiny.class_images(0, num_classes=3, per_class=3)
    np.savez(tmp_path / 'nan.npz', images=np.full(images.shape, np.nan), labels=labels)
    with pytest.raises(ValueError, match='NaN or infinite .first in image 0'):
        search(tmp_path / 'nan.npz', run['ckpt'], device='cpu')
    # A one-class task of a database.
    from d2a.datasets.tasks import Task
    from d2a.db import MetaDatabase
    db = tmp_path / 'db.h5'
    db.write_bytes(run['db'].read_bytes())
    with MetaDatabase.open(db, 'a') as m:
        m.add_tasks([Task('lone', 'shapes', ['c0'], 'meta-test')])
    with pytest.raises(ValueError, match='db.h5:lone has 1 class'):
        search((db, 'lone'), run['ckpt'], device='cpu')
