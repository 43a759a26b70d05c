import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / 'training'))
from d2a_tiny import build_db, class_images, one_thread, train_both, write_image_folder  # noqa

from d2a.graphs.nb201 import NB201CostModel  # noqa: E402
from d2a.graphs import get_space  # noqa: E402
from d2a.graphs.nb201 import format_arch  # noqa: E402
from d2a.search import (Constraints, collect_candidates, parse_count, search)  # noqa: E402

SPACE = get_space('nb201')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('run')
    db = build_db(root / 'tiny.h5')
    train_both(db, root / 'ckpt')
    folder = write_image_folder(root / 'images')
    return {'db': db, 'ckpt': root / 'ckpt', 'folder': folder, 'root': root}


def test_collect_candidates_dedupes_and_filters():
    # Two strings of one canonical class, an invalid graph, and distinct cells.
    iso_a = format_arch(['nor_conv_3x3', 'none', 'none', 'skip_connect', 'none', 'none'])
    iso_b = format_arch(['nor_conv_3x3', 'none', 'avg_pool_3x3', 'skip_connect', 'none', 'none'])
    assert SPACE.canonical_key(iso_a) == SPACE.canonical_key(iso_b)
    pool = SPACE.sample(50, random.Random(0))
    stream = iter([[iso_a, None, iso_b]] + [pool[i:i + 5] for i in range(0, 50, 5)])
    archs, stats = collect_candidates(lambda n: next(stream), SPACE, num_candidates=8,
                                      batch_size=5)
    assert len(archs) == 8 and archs[0] == iso_a
    assert len({SPACE.canonical_key(a) for a in archs}) == 8
    assert stats.num_valid == stats.num_generated - 1


def test_collect_candidates_gives_up_without_progress():
    arch = SPACE.sample(1, random.Random(0))[0]
    archs, stats = collect_candidates(lambda n: [arch] * n, SPACE, 5, batch_size=4, patience=3)
    assert archs == [arch] and stats.stopped_early and stats.num_batches == 4


def test_constraints_reject_and_check_feasibility():
    cost = NB201CostModel(num_classes=3)
    limit = 400_000
    c = Constraints(max_params=limit, cost_model=cost)
    archs, stats = collect_candidates(lambda n: SPACE.sample(n, random.Random(len(str(n)))),
                                      SPACE, 20, c, batch_size=50, patience=5)
    assert all(cost.params(a) <= limit for a in archs)
    with pytest.raises(ValueError, match='max_params=1,000 .smallest network: '):
        Constraints(max_params=1_000, cost_model=cost).check_feasible()
    Constraints(max_params=cost.min_params(), cost_model=cost).check_feasible()
    with pytest.raises(ValueError, match='needs a latency table'):
        Constraints(max_latency=3.0)
    with pytest.raises(ValueError, match='positive'):
        Constraints(max_flops=-1, cost_model=cost)


@pytest.mark.parametrize('text,value', [('1.5M', 1.5e6), ('200k', 2e5), ('3e6', 3e6), (7, 7.0)])
def test_parse_count(text, value):
    assert parse_count(text) == value


def test_search_image_folder(run):
    with one_thread():
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


def test_search_npz_and_database_task_with_constraints(run, tmp_path):
    images, labels = class_images(7, num_classes=4, per_class=5, size=10)
    np.savez(tmp_path / 'd.npz', images=images, labels=labels)
    with one_thread():
        a = search(tmp_path / 'd.npz', run['ckpt'], num_candidates=5, top_k=2, device='cpu')
        b = search((run['db'], 'test0'), run['ckpt'], num_candidates=5, top_k=2,
                   max_params=600_000, device='cpu')
    assert a.dataset == 'd' and len(a.candidates) == 2
    with one_thread():
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
    with one_thread():
        r = search(run['folder'], run['ckpt'], num_candidates=4, top_k=4, max_latency=3.0,
                   latency_table=table, latency_device='phone', device='cpu')
    assert all(c.latency_ms is not None and c.latency_ms <= 3.0 for c in r.candidates)
    assert 'latency (ms)' in r.to_table()


def test_fewer_candidates_than_asked_is_reported(run):
    with one_thread(), pytest.warns(UserWarning, match='only'):
        r = search(run['folder'], run['ckpt'], num_candidates=20_000, top_k=3, batch_size=1,
                   patience=1, num_resamples=1, device='cpu')
    assert r.num_evaluated < 20_000 and 'asked for 20,000' in r.message


def test_bad_inputs_give_clear_errors(run, tmp_path):
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
    other = build_db(tmp_path / 'other.h5', pixel_size=3)
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
