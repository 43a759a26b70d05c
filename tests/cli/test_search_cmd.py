import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'training'))
from d2a_tiny import build_db, one_thread, train_both, write_image_folder  # noqa: E402

from d2a.cli.main import main  # noqa: E402


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('run')
    db = build_db(root / 'tiny.h5')
    train_both(db, root / 'ckpt')
    return {'db': db, 'ckpt': root / 'ckpt', 'folder': write_image_folder(root / 'images')}


def test_search_prints_table_and_writes_json(run, tmp_path, capsys):
    with one_thread():
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


def test_search_database_task(run, capsys):
    with one_thread():
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
])
def test_search_errors(run, tmp_path, capsys, extra, message):
    extra = [e.replace('{tmp}', str(tmp_path)) for e in extra]
    if '--checkpoint' not in extra:
        extra += ['--checkpoint', str(run['ckpt'])]
    assert main(['search', '--dataset', str(run['folder']), '--device', 'cpu',
                 '--no-progress'] + extra) == 1
    assert message in capsys.readouterr().err
