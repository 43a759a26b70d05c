"""The embedded default shipped as package data: present, small, consistent, searchable."""
import json

from d2a.checkpoint import load_checkpoint
from d2a.db import MetaDatabase
from d2a.pipeline.embedded import CHECKPOINT_FILES, DEFAULT_DATABASE, SCALES, read_split
from d2a.search import DEFAULT_CHECKPOINT_DIR, search


def test_shipped_files_are_package_data_under_25_mb():
    files = [DEFAULT_DATABASE] + [DEFAULT_CHECKPOINT_DIR / f for f in CHECKPOINT_FILES]
    for f in files:
        assert f.is_file(), f'{f} is missing: build it with make embedded (docs/embedded.md)'
    assert sum(f.stat().st_size for f in files) < 25 * 2 ** 20


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
