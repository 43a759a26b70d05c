import json

import numpy as np
import pytest

from d2a.cli.main import main
from d2a.db import MetaDatabase
from d2a.pipeline.embedded import (CHECKPOINT_FILES, DB_NAME, SCALES, Build, CellSubset,
                                   anchor_cells, format_cpu_table, read_split)


@pytest.fixture(scope='module')
def tiny_build(tmp_path_factory):
    root = tmp_path_factory.mktemp('embedded')
    build = Build(root / 'work', 'tiny', jobs=2, install_dir=root / 'pkg')
    # An interrupted labelling: the databases exist, one shard of two finished, then a rerun
    # with the same command must continue without losing or duplicating results.
    build.run(['extractor', 'database'])
    build.label_shard((0, 2))
    state = build.run()
    return root, build, state


def test_tiny_build_runs_every_stage_and_installs(tiny_build):
    root, build, state = tiny_build
    assert all(state['stages'][s]['done'] for s in state['stages'])
    assert 'total' in format_cpu_table(state)
    for name in CHECKPOINT_FILES:
        assert (root / 'pkg' / 'checkpoints' / name).is_file()
    assert (root / 'pkg' / 'data' / DB_NAME).is_file()
    assert not list((root / 'work').glob('*.label-*of*.h5'))  # shards merged and removed


def test_tiny_build_database_split_and_results(tiny_build):
    root, build, _ = tiny_build
    scale = SCALES['tiny']
    with MetaDatabase.open(root / 'pkg' / 'data' / DB_NAME) as db:
        split = read_split(db)
        assert split['meta-train'] == ['glyphs_greek_lower', 'patterns_hue']
        assert split['meta-test'] == ['digits', 'glyphs_arrows']
        assert split['extractor_trained_on'] == split['meta-train']
        assert split['anchors'] == anchor_cells(scale)
        train_tasks, test_tasks = db.tasks('meta-train'), db.tasks('meta-test')
        assert len(train_tasks) == sum(p.tasks for p in scale.meta_train)
        assert len(test_tasks) == 2
        assert {t.source for t in train_tasks}.isdisjoint({t.source for t in test_tasks})
        r = db.results(recipe=split['recipe'])
        keys = list(zip(r.task, r.arch, r.seed))
        assert len(keys) == len(set(keys))  # no duplicate after the resumed run
        for t in train_tasks:
            archs = set(r.arch[r.task == t.name])
            assert set(split['anchors']) <= archs
            assert len(archs) >= scale.archs_per_task
            for a in split['anchors']:  # anchors are trained with every anchor seed
                seeds = set(r.seed[(r.task == t.name) & (r.arch == a)].tolist())
                assert seeds == set(scale.anchor_seeds)
        assert set(split['anchors']) <= set(split['held_out_cells'])
        for t in test_tasks:  # one common set of cells, every seed
            sel = r.task == t.name
            assert set(r.arch[sel]) == set(split['held_out_cells'])
            assert sel.sum() == scale.held_out_archs * len(scale.held_out_seeds)
        assert np.all((r.accuracy >= 0) & (r.accuracy <= 100))


def test_rerun_skips_finished_stages(tiny_build, capsys):
    root, build, state = tiny_build
    with MetaDatabase.open(build.db_path) as db:
        before = db.num_results
    again = Build(root / 'work', 'tiny', jobs=1, install_dir=root / 'pkg', install=False).run()
    with MetaDatabase.open(build.db_path) as db:
        assert db.num_results == before
    assert again['stages']['label']['cpu_s'] == state['stages']['label']['cpu_s']


def test_other_scale_in_the_same_folder_is_refused(tiny_build, tmp_path):
    root, _, _ = tiny_build
    other = dict(SCALES['tiny'].to_dict(), seed=1)
    state = json.loads((root / 'work' / 'state.json').read_text())
    state['scale'] = other
    (tmp_path / 'state.json').write_text(json.dumps(state))
    with pytest.raises(ValueError, match='another --workdir'):
        Build(tmp_path, 'tiny', install_dir=tmp_path / 'pkg').run()


def test_changed_training_settings_retrain_without_relabelling(tiny_build, tmp_path):
    import shutil
    root, build, state = tiny_build
    work = tmp_path / 'work'
    shutil.copytree(root / 'work', work)
    saved = json.loads((work / 'state.json').read_text())
    saved['scale']['train'] = dict(saved['scale']['train'], lr=0.5)  # an older setting
    (work / 'state.json').write_text(json.dumps(saved))
    again = Build(work, 'tiny', jobs=1, install=False).run()
    assert again['scale'] == SCALES['tiny'].to_dict()
    assert again['stages']['label']['cpu_s'] == state['stages']['label']['cpu_s']
    assert again['stages']['train']['done']
    assert again['stages']['train']['cpu_s'] != state['stages']['train']['cpu_s']
    assert (work / 'run' / 'predictor.pt').is_file()


def test_train_options_merge_shared_and_per_model_entries():
    import dataclasses
    scale = dataclasses.replace(SCALES['tiny'], train={'lr': 0.1, 'epochs': 2,
                                                       'generator': {'epochs': 5}})
    assert scale.train_options('generator') == {'lr': 0.1, 'epochs': 5}
    assert scale.train_options('predictor') == {'lr': 0.1, 'epochs': 2}


def test_tiny_scale_is_never_installed_into_the_package(tmp_path):
    with pytest.raises(ValueError, match='only the'):
        Build(tmp_path, 'tiny')
    assert main(['embedded', '--workdir', str(tmp_path), '--scale', 'tiny']) == 1


def test_cell_subset_samples_only_its_cells():
    import random
    cells = anchor_cells(SCALES['tiny'])
    sub = CellSubset(cells)
    assert set(sub.sample(20, random.Random(0))) <= set(cells)
    with pytest.raises(ValueError, match='differ'):
        CellSubset([cells[0], cells[0]])


def test_search_quality_bench_on_the_tiny_build(tiny_build, tmp_path, capsys, bench):
    root, _, _ = tiny_build
    search_quality = bench('search_quality')
    out = tmp_path / 'quality.json'
    argv = ['--db', str(root / 'pkg' / 'data' / DB_NAME), '--checkpoint',
            str(root / 'pkg' / 'checkpoints'), '--seeds', '0', '1', '--num-candidates', '3',
            '--random-k', '2', '--naswot-batch', '8', '--json', str(out),
            '--plot', str(tmp_path / 'quality.png')]
    assert search_quality.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result['summary']) == set(search_quality.METHODS)
    assert len(result['rows']) == 2 * 2 * len(search_quality.METHODS)
    for row in result['rows']:
        assert 0 <= row['percentile'] <= 100 and 0 <= row['accuracy'] <= 100
        assert row['regret'] == pytest.approx(row['task_best'] - row['accuracy'])
    # the truth of an unlabelled pick is a mean over the held-out label seeds
    assert result['label_seeds'] == [0, 1]
    assert result['summary']['d2a-all']['scored'] == 6466
    assert set(result['predictor']['within_task_spearman']) == set(result['tasks'])
    assert result['summary']['random-best-of-K']['trained_on_task'] == 2
    assert result['summary']['d2a']['trained_on_task'] == 0
    assert 'percentile' in capsys.readouterr().out
    assert (tmp_path / 'quality.png').stat().st_size > 1000
    # Cells trained for the picks are cached: a rerun trains nothing.
    assert search_quality.main(argv) == 0
    assert json.loads(out.read_text())['trained_now'] == 0


def test_percentile_counts_ties_half(bench):
    percentile = bench('search_quality').percentile
    assert percentile(50.0, np.array([10.0, 50.0, 90.0])) == pytest.approx(50.0)
    assert percentile(95.0, np.array([10.0, 50.0, 90.0])) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        percentile(1.0, np.array([]))


@pytest.mark.parametrize('worker', ['bogus', 'label:x', 'train:extractor'])
def test_unknown_worker_is_refused(tmp_path, worker):
    build = Build(tmp_path, 'tiny', install=False)
    with pytest.raises(ValueError, match='worker'):
        build.run_worker(worker)


def test_unknown_stage_and_scale_are_refused(tmp_path):
    with pytest.raises(ValueError, match='unknown stage'):
        Build(tmp_path, 'tiny', install=False).run(['extractor', 'polish'])
    with pytest.raises(ValueError, match='scale must be'):
        Build(tmp_path, 'huge')


def test_full_scale_meets_the_size_targets():
    from d2a.datasets import parse_source
    from d2a.nets.recipe import Recipe
    full = SCALES['full']
    assert full.recipe == Recipe.mini()
    assert full.recipe.image_size == full.image_size
    meta_train_tasks = sum(p.tasks or 1 for p in full.meta_train)
    assert meta_train_tasks >= 40
    assert meta_train_tasks * (full.archs_per_task + full.anchors) >= 2000
    assert sum(p.tasks or 1 for p in full.held_out) >= 6
    # held-out truth is a mean over three seeds of one common set of cells
    assert full.held_out_archs >= 50 and len(full.held_out_seeds) >= 3
    assert full.anchors >= 16 and len(full.anchor_seeds) >= 1
    train_sources = [parse_source(p.spec) for p in full.meta_train]
    held_sources = [parse_source(p.spec) for p in full.held_out]
    assert 'digits' in {s.kind for s in held_sources}
    assert not {s.name for s in train_sources} & {s.name for s in held_sources}
    # sources of several kinds: characters, photographs, procedural images
    assert {'glyphs', 'photos', 'patterns'} <= {s.kind for s in train_sources}
    # a held-out glyph script or photograph is never a meta-training one
    train_scripts = {s.script for s in train_sources if s.kind == 'glyphs'}
    assert not train_scripts & {s.script for s in held_sources if s.kind == 'glyphs'}
    train_photos = {p for s in train_sources if s.kind == 'photos' for p in s.photo_names}
    assert not train_photos & {p for s in held_sources if s.kind == 'photos'
                               for p in s.photo_names}
