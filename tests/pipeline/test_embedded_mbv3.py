import json

import pytest

from d2a.cli.main import main
from d2a.db import MetaDatabase
from d2a.graphs import get_space
from d2a.pipeline.embedded import CHECKPOINT_FILES, SCALES, Build, anchor_cells, read_split


@pytest.fixture(scope='module')
def mbv3_build(tmp_path_factory):
    root = tmp_path_factory.mktemp('embedded_mbv3')
    build = Build(root / 'work', 'tiny-mbv3', jobs=1, install_dir=root / 'pkg')
    return root, build, build.run()


def test_mbv3_build_labels_configs_and_installs_into_its_own_folder(mbv3_build):
    root, build, state = mbv3_build
    assert all(info['done'] for info in state['stages'].values())
    for name in CHECKPOINT_FILES:
        assert (root / 'pkg' / 'checkpoints' / 'mbv3' / name).is_file()
    assert not (root / 'pkg' / 'checkpoints' / 'generator.pt').exists()
    db_path = root / 'pkg' / 'data' / 'mini_mbv3.h5'
    scale = SCALES['tiny-mbv3']
    space = get_space('mbv3')
    with MetaDatabase.open(db_path) as db:
        split = read_split(db)
        assert split['anchors'] == anchor_cells(scale)
        for a in split['held_out_cells']:
            space.to_data(a)  # MobileNetV3 strings
        r = db.results(recipe=split['recipe'])
        assert set(r.space.tolist()) == {'mbv3'}
        keys = list(zip(r.task, r.arch, r.seed))
        assert len(keys) == len(set(keys))
        expected = (sum(p.tasks for p in scale.meta_train) * (scale.archs_per_task
                                                              + scale.anchors)
                    + len(scale.held_out) * scale.held_out_archs * len(scale.held_out_seeds))
        # random configs may repeat an anchor on a task: at most that many results
        assert 0 < len(keys) <= expected
        assert db.recipes()[split['recipe']]['recipe']['space'] == 'mbv3'


def test_search_mbv3_with_the_built_checkpoints(mbv3_build, tmp_path, capsys):
    root, _, _ = mbv3_build
    ckpt = root / 'pkg' / 'checkpoints' / 'mbv3'
    out = tmp_path / 'r.json'
    assert main(['search', '--dataset', 'digits', '--checkpoint', str(ckpt), '--space', 'mbv3',
                 '--num-candidates', '8', '--top-k', '2', '--max-params', '400k',
                 '--json', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'OFA configs' in text and 'ks=[' in text
    result = json.loads(out.read_text())
    assert result['space'] == 'mbv3'
    # the counts refer to the recipe's network (tiny-mbv3: width 0.1 at 8x8)
    assert result['network'] == {'image_size': 8, 'width_mult': 0.1, 'in_channels': 1,
                                 'num_classes': 10}
    space = get_space('mbv3')
    cost = space.cost_model(image_size=8, in_channels=1, num_classes=10, width_mult=0.1)
    for c in result['candidates']:
        assert space.from_config(c['config']) == c['arch']
        assert c['params'] == cost.params(c['arch']) <= 400e3
        assert c['flops'] == cost.flops(c['arch'])
    # at OFA's ImageNet size every network is larger than 400k parameters
    assert main(['search', '--dataset', 'digits', '--checkpoint', str(ckpt),
                 '--num-candidates', '8', '--image-size', '224', '--width-mult', '1.0',
                 '--max-params', '400k']) == 1
    assert 'smallest network' in capsys.readouterr().err


def test_search_refuses_a_space_other_than_the_checkpoints(mbv3_build, capsys):
    root, _, _ = mbv3_build
    ckpt = root / 'pkg' / 'checkpoints' / 'mbv3'
    assert main(['search', '--dataset', 'digits', '--checkpoint', str(ckpt),
                 '--space', 'nb201']) == 1
    assert "for space 'mbv3', not 'nb201'" in capsys.readouterr().err


def test_refinement_trains_mbv3_candidates(mbv3_build, tmp_path):
    from d2a.search import search
    root, _, _ = mbv3_build
    ckpt = root / 'pkg' / 'checkpoints' / 'mbv3'
    res = search('glyphs:arrows,max_classes=3,images_per_class=8,image_size=8', ckpt,
                 num_candidates=4, top_k=2, budget=2, cache=tmp_path / 'm.json')
    assert res.refinement.num_measured == 2
    assert res.refinement.recipe['space'] == 'mbv3'
    with pytest.raises(ValueError, match='trains nb201 networks'):
        search('digits', ckpt, num_candidates=4, budget=1, recipe='mini',
               cache=tmp_path / 'n.json')


def test_search_quality_bench_on_the_mbv3_build(mbv3_build, tmp_path, bench):
    root, _, _ = mbv3_build
    search_quality = bench('search_quality')
    out = tmp_path / 'quality.json'
    argv = ['--space', 'mbv3', '--db', str(root / 'pkg' / 'data' / 'mini_mbv3.h5'),
            '--checkpoint', str(root / 'pkg' / 'checkpoints' / 'mbv3'), '--seeds', '0',
            '--num-candidates', '3', '--random-k', '2', '--naswot-batch', '8',
            '--json', str(out)]
    assert search_quality.main(argv) == 0
    result = json.loads(out.read_text())
    assert result['space'] == 'mbv3'
    assert set(result['summary']) == set(search_quality.METHODS) - {'d2a-all'}
    for row in result['rows']:
        assert 0 <= row['percentile'] <= 100
        get_space('mbv3').to_data(row['arch'])


def test_mbv3_scales_are_sized_for_the_issue():
    full = SCALES['mbv3']
    assert full.space == 'mbv3' and full.shipped and full.recipe.space == 'mbv3'
    tasks = sum(p.tasks for p in full.meta_train)
    assert tasks >= 20
    trainings = (tasks * (full.archs_per_task + full.anchors)
                 + len(full.held_out) * full.held_out_archs * len(full.held_out_seeds))
    assert trainings >= 1000
    meta_train = {p.spec.split(',')[0] for p in full.meta_train}
    assert meta_train.isdisjoint({p.spec.split(',')[0] for p in full.held_out})
    with pytest.raises(ValueError, match='only the shipped'):
        Build('unused', 'tiny-mbv3')


def test_exhaustive_search_of_mbv3_is_refused(mbv3_build):
    from d2a.search import search
    root, _, _ = mbv3_build
    with pytest.raises(ValueError, match='too large to rank every architecture'):
        search('digits', root / 'pkg' / 'checkpoints' / 'mbv3', exhaustive=True)


def test_guided_generation_of_mbv3_configs(mbv3_build):
    from d2a.search import search
    root, _, _ = mbv3_build
    res = search('digits', root / 'pkg' / 'checkpoints' / 'mbv3', num_candidates=6, top_k=2,
                 guidance=1.0)
    assert res.num_evaluated == 6 and res.guidance == 1.0
    assert all(len(c.config['ks']) == 20 and len(c.config['d']) == 5 for c in res.candidates)
