"""The embedded default shipped as package data: present, small, consistent, searchable."""
import json

from d2a.checkpoint import load_checkpoint
from d2a.db import MetaDatabase
from d2a.pipeline.embedded import CHECKPOINT_FILES, DEFAULT_DATABASE, SCALES, read_split
from d2a.search import DEFAULT_CHECKPOINT_DIR, search
from d2a.search.ranking import EMBEDDINGS_FILE


def test_shipped_files_are_package_data_within_40_mb():
    files = [DEFAULT_DATABASE] + [DEFAULT_CHECKPOINT_DIR / f for f in CHECKPOINT_FILES]
    for f in files:
        assert f.is_file(), f'{f} is missing: build it with make embedded (docs/embedded.md)'
    cache = DEFAULT_CHECKPOINT_DIR / EMBEDDINGS_FILE
    assert sum(f.stat().st_size for f in files + [cache] if f.is_file()) <= 40e6


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
