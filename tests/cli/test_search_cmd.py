import json

import pytest

from d2a.cli.main import main


@pytest.fixture
def run(tiny_run):
    return tiny_run


def test_search_prints_table_and_writes_json(run, tmp_path, capsys):
    rc = main(['search', '--dataset', str(run['folder']), '--checkpoint', str(run['ckpt']),
               '--num-candidates', '8', '--top-k', '3', '--json', str(tmp_path / 'r.json'),
               '--max-params', '0.9M', '--device', 'cpu', '--no-progress'])
    assert rc == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / 'r.json').read_text())
    assert len(data['candidates']) == 3 and data['num_evaluated'] == 8
    assert data['constraints'] == {'max_params': 900000.0}
    for c in data['candidates']:
        assert c['arch'] in out and c['params'] <= 900_000
    assert 'time: features' in out and 'predicted acc' in out


def test_search_all_cells(run, tmp_path, capsys):
    import shutil
    shutil.copytree(run['ckpt'], tmp_path / 'ckpt')
    rc = main(['search', '--dataset', str(run['folder']), '--checkpoint', str(tmp_path / 'ckpt'),
               '--all', '--top-k', '2', '--json', str(tmp_path / 'r.json'), '--device', 'cpu',
               '--no-progress'])
    assert rc == 0
    data = json.loads((tmp_path / 'r.json').read_text())
    assert data['exhaustive'] and data['num_evaluated'] == 6466
    assert 'ranked all 6,466' in capsys.readouterr().out


def test_search_database_task(run, capsys):
    assert main(['search', '--dataset', str(run['db']), '--task', 'test0', '--checkpoint',
                 str(run['ckpt']), '--num-candidates', '4', '--device', 'cpu',
                 '--no-progress']) == 0
    assert 'tiny.h5:test0' in capsys.readouterr().out


@pytest.mark.parametrize('extra,message', [
    (['--checkpoint', '{tmp}'], 'pass --checkpoint DIR'),
    (['--max-params', '1000'], 'no architecture satisfies the constraints'),
    (['--max-params', 'lots'], "'lots' is not a count"),
    (['--max-latency', '2'], '--max-latency needs --latency-table'),
    (['--task', 't0'], '--task goes with a meta-database'),
    (['--budget', '2'], '--budget trains on the dataset: give --json OUT'),
    (['--recipe', 'nb201'], '--recipe, --cache and --train-device go with --budget'),
    (['--guidance', '-1'], '--budget and --guidance must be >= 0'),
    (['--budget', '1', '--cache', '{tmp}/c.json', '--recipe', 'fast'], "unknown recipe 'fast'"),
])
def test_search_errors(run, tmp_path, capsys, extra, message):
    extra = [e.replace('{tmp}', str(tmp_path)) for e in extra]
    if '--checkpoint' not in extra:
        extra += ['--checkpoint', str(run['ckpt'])]
    assert main(['search', '--dataset', str(run['folder']), '--device', 'cpu',
                 '--no-progress'] + extra) == 1
    assert message in capsys.readouterr().err


def test_search_budget_trains_writes_json_and_resumes(run, tmp_path, capsys):
    recipe = tmp_path / 'tiny.json'
    recipe.write_text(json.dumps({'name': 'tiny', 'C': 2, 'N': 1, 'epochs': 1, 'batch_size': 8,
                                  'image_size': 8}))
    argv = ['search', '--dataset', str(run['folder']), '--checkpoint', str(run['ckpt']),
            '--num-candidates', '6', '--top-k', '2', '--budget', '2', '--recipe', str(recipe),
            '--json', str(tmp_path / 'r.json'), '--device', 'cpu', '--no-progress',
            '--guidance', '1']
    assert main(argv) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / 'r.json').read_text())
    ref = data['refinement']
    assert ref['num_trained'] == 2 and ref['num_measured'] == 2 and data['guidance'] == 1.0
    assert ref['best']['arch'] in out and 'best measured' in out
    assert (tmp_path / 'r.measurements.json').is_file()
    assert main(argv) == 0
    again = json.loads((tmp_path / 'r.json').read_text())['refinement']
    assert again['num_trained'] == 0 and again['num_cached'] == 2
    assert again['best'] == dict(ref['best'], cached=True)


def test_search_budget_ctrl_c_keeps_what_was_measured(run, tmp_path, capsys, monkeypatch):
    from d2a.search.refine import RecipeTrainer
    calls = []

    def fake_train(self, arch):  # the second training is interrupted
        calls.append(arch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return 42.0
    monkeypatch.setattr(RecipeTrainer, '__call__', fake_train)
    recipe = tmp_path / 'tiny.json'
    recipe.write_text(json.dumps({'name': 'tiny', 'C': 2, 'N': 1, 'epochs': 1}))
    argv = ['search', '--dataset', str(run['folder']), '--checkpoint', str(run['ckpt']),
            '--num-candidates', '6', '--budget', '3', '--recipe', str(recipe), '--json',
            str(tmp_path / 'r.json'), '--device', 'cpu', '--no-progress']
    assert main(argv) == 130
    assert 'interrupted; rerun the same command' in capsys.readouterr().out
    ref = json.loads((tmp_path / 'r.json').read_text())['refinement']
    assert ref['interrupted'] and ref['num_measured'] == 1
    assert main(argv) == 0  # resumed: the first cell from the cache, two more trained
    ref = json.loads((tmp_path / 'r.json').read_text())['refinement']
    assert (ref['num_cached'], ref['num_trained']) == (1, 2) and len(calls) == 4
