import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'training'))
from d2a_tiny import build_db, cli_train_args, one_thread  # noqa: E402

from d2a.cli.main import main  # noqa: E402
from d2a.training.log import read_metrics_log  # noqa: E402


@pytest.fixture(scope='module')
def db_path(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp('db') / 'tiny.h5')


def test_train_both_with_config_file_then_resume(db_path, tmp_path, capsys):
    cfg = tmp_path / 'cfg.yaml'
    cfg.write_text('lr: 0.001\nepochs: 5\nseed: 3\n')
    out = tmp_path / 'run'
    with one_thread():
        for kind in ('generator', 'predictor'):
            assert main(cli_train_args(kind, db_path, out) + ['--config', str(cfg)]) == 0
    saved = yaml.safe_load((out / 'predictor.config.yaml').read_text())
    assert saved['lr'] == 0.001 and saved['seed'] == 3  # from the file
    assert saved['epochs'] == 1  # the flag wins over the file
    assert saved['db'] == str(db_path.resolve()) and saved['model_args']['hidden_channels'] == 8
    assert 'best epoch 1' in capsys.readouterr().out
    # An interrupted run continues from its saved configuration, with more epochs.
    with one_thread():
        assert main(['train', 'predictor', '--out', str(out), '--resume', '--epochs', '2']) == 0
    assert 'resuming predictor from epoch 1' in capsys.readouterr().out
    assert [r['epoch'] for r in read_metrics_log(out / 'predictor.metrics.jsonl')] == [1, 2]
    saved = yaml.safe_load((out / 'predictor.config.yaml').read_text())
    assert saved['epochs'] == 2 and saved['lr'] == 0.001
    # The saved configuration works as --config.
    with one_thread():
        assert main(['train', 'predictor', '--config', str(out / 'predictor.config.yaml'),
                     '--out', str(tmp_path / 'again'), '--epochs', '1']) == 0


def test_errors(db_path, tmp_path, capsys):
    out = tmp_path / 'run'
    assert main(['train', 'generator', '--out', str(out)]) == 1
    assert '--db is required' in capsys.readouterr().err
    with one_thread():
        assert main(cli_train_args('generator', db_path, out)) == 0
        assert main(cli_train_args('generator', db_path, out)) == 1
    assert 'pass --resume' in capsys.readouterr().err
    assert main(['train', 'generator', '--out', str(out), '--resume', '--num-sample', '4']) == 1
    assert 'training num_sample: checkpoint 3, now 4' in capsys.readouterr().err
    bad = tmp_path / 'bad.yaml'
    bad.write_text('learning_rate: 1\n')
    assert main(cli_train_args('predictor', db_path, out) + ['--config', str(bad)]) == 1
    assert "unknown option 'learning_rate'" in capsys.readouterr().err
    assert main(cli_train_args('predictor', db_path, out) + ['--model-args', 'oops']) == 1
    assert 'KEY=VALUE' in capsys.readouterr().err
    assert main(['train', 'predictor', '--db', str(tmp_path / 'none.h5'), '--out',
                 str(tmp_path / 'x'), '--device', 'cpu']) == 1
    assert 'none.h5 does not exist' in capsys.readouterr().err
