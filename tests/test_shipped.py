"""The embedded default shipped as package data: present, small, consistent, searchable."""
import json

from d2a.checkpoint import load_checkpoint
from d2a.db import MetaDatabase
from d2a.pipeline.embedded import CHECKPOINT_FILES, DEFAULT_DATABASE, SCALES, read_split
from d2a.search import DEFAULT_CHECKPOINT_DIR, search
from d2a.search.ranking import EMBEDDINGS_FILE
from d2a.utils.paths import PACKAGE_DIR, default_checkpoint_dir, default_database

MBV3_DATABASE = default_database('mbv3')
MBV3_CHECKPOINT_DIR = default_checkpoint_dir('mbv3')


def test_shipped_files_of_both_spaces_are_package_data_within_60_mb():
    files = [DEFAULT_DATABASE] + [DEFAULT_CHECKPOINT_DIR / f for f in CHECKPOINT_FILES]
    files += [MBV3_DATABASE] + [MBV3_CHECKPOINT_DIR / f for f in CHECKPOINT_FILES]
    for f in files:
        assert f.is_file(), f'{f} is missing: build it with d2a embedded (docs/embedded.md)'
    # everything under d2a/data and d2a/checkpoints, caches included
    shipped = [f for d in ('data', 'checkpoints') for f in (PACKAGE_DIR / d).rglob('*')
               if f.is_file()]
    assert set(files) <= set(shipped)
    assert sum(f.stat().st_size for f in shipped) <= 60e6


def test_shipped_graph_vectors_match_the_shipped_predictor():
    import torch

    from d2a.graphs import get_space
    from d2a.search import load_models
    from d2a.search.ranking import _encoder_digest, encode_graphs
    saved = torch.load(DEFAULT_CHECKPOINT_DIR / EMBEDDINGS_FILE, weights_only=True)
    models = load_models(None, 'cpu')
    assert saved['digest'] == _encoder_digest(models.predictor)
    space = get_space('nb201')
    assert len(saved['archs']) == len(space.unique()) == 6466
    h = encode_graphs(models.predictor, space, saved['archs'][:16])
    assert torch.allclose(h, saved['h'][:16], atol=1e-5)


def test_shipped_database_meets_the_mini_database_targets():
    full = SCALES['full']
    with MetaDatabase.open(DEFAULT_DATABASE) as db:
        split = read_split(db)
        assert split['scale'] == 'full'
        assert not set(split['meta-train']) & set(split['meta-test'])
        assert split['extractor_trained_on'] == split['meta-train']
        assert 'digits' in split['meta-test']
        train, test = db.tasks('meta-train'), db.tasks('meta-test')
        assert len(train) >= 40 and len(test) >= 6
        assert {t.source for t in train}.isdisjoint({t.source for t in test})
        r = db.results(recipe=split['recipe'])
        names = {t.name for t in train}
        assert sum(str(t) in names for t in r.task) >= 2000
        for t in test:
            assert (r.task == t.name).sum() >= full.held_out_archs
        assert len(db.recipes()) == 1


def test_shipped_checkpoints_were_trained_on_the_shipped_database():
    for kind in ('generator', 'predictor'):
        ckpt = load_checkpoint(DEFAULT_CHECKPOINT_DIR, kind)
        assert ckpt.kind == kind
        assert ckpt.train_config['epochs'] == SCALES['full'].train_options(kind)['epochs']


def test_default_search_on_bundled_digits(tmp_path):
    result = search('digits', num_candidates=20, top_k=3, device='cpu')
    assert result.num_evaluated == 20 and len(result.candidates) == 3
    assert result.candidates[0].predicted_accuracy >= result.candidates[-1].predicted_accuracy
    assert result.checkpoint == str(DEFAULT_CHECKPOINT_DIR)
    out = json.loads(result.to_json(tmp_path / 'r.json'))
    assert out['candidates'][0]['arch'] == result.best.arch


def test_shipped_mbv3_database_meets_the_issue_targets():
    with MetaDatabase.open(MBV3_DATABASE) as db:
        split = read_split(db)
        assert split['scale'] == 'mbv3'
        train, test = db.tasks('meta-train'), db.tasks('meta-test')
        assert len(train) >= 20 and len(test) >= 4
        assert {t.source for t in train}.isdisjoint({t.source for t in test})
        r = db.results(recipe=split['recipe'])
        assert len(r.task) >= 1000 and set(r.space.tolist()) == {'mbv3'}
        for t in test:  # every held-out config with every held-out seed
            assert (r.task == t.name).sum() == \
                len(split['held_out_cells']) * len(split['held_out_seeds'])
        assert db.recipes()[split['recipe']]['recipe']['space'] == 'mbv3'
    for kind in ('generator', 'predictor'):
        ckpt = load_checkpoint(MBV3_CHECKPOINT_DIR, kind)
        assert ckpt.space == 'mbv3'
        assert ckpt.train_config['epochs'] == SCALES['mbv3'].train_options(kind)['epochs']


def test_default_mbv3_search_needs_no_path(tmp_path):
    from d2a.graphs import get_space
    result = search('digits', num_candidates=20, top_k=3, device='cpu', space='mbv3',
                    max_params=300e3)
    assert result.space == 'mbv3' and result.checkpoint == str(MBV3_CHECKPOINT_DIR)
    assert result.num_evaluated == 20
    assert result.network['width_mult'] == 0.25 and result.network['image_size'] == 12
    for c in result.candidates:
        assert c.params <= 300e3
        assert get_space('mbv3').from_config(c.config) == c.arch
