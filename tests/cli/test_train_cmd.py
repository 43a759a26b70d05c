import yaml

from d2a.cli.main import main
from d2a.training.log import read_metrics_log


def test_train_both_with_config_file_then_resume(tiny_db, tmp_path, capsys, tiny):
    cfg = tmp_path / 'cfg.yaml'
    cfg.write_text('lr: 0.001\nepochs: 5\nseed: 3\n')
    out = tmp_path / 'run'
    for kind in ('generator', 'predictor'):
        assert main(tiny.cli_train_args(kind, tiny_db, out) + ['--config', str(cfg)]) == 0
    saved = yaml.safe_load((out / 'predictor.config.yaml').read_text())
    assert saved['lr'] == 0.001 and saved['seed'] == 3  # from the file
    assert saved['epochs'] == 1  # the flag wins over the file
    assert saved['db'] == str(tiny_db.resolve()) and saved['model_args']['hidden_channels'] == 8
    assert 'best epoch 1' in capsys.readouterr().out
    # An interrupted run continues from its saved configuration, with more epochs.
    assert main(['train', 'predictor', '--out', str(out), '--resume', '--epochs', '2']) == 0
    assert 'resuming predictor from epoch 1' in capsys.readouterr().out
    assert [r['epoch'] for r in read_metrics_log(out / 'predictor.metrics.jsonl')] == [1, 2]
    saved = yaml.safe_load((out / 'predictor.config.yaml').read_text())
    assert saved['epochs'] == 2 and saved['lr'] == 0.001
    # The saved configuration works as --config.
    assert main(['train', 'predictor', '--config', str(out / 'predictor.config.yaml'),
                 '--out', str(tmp_path / 'again'), '--epochs', '1']) == 0


def test_errors(tiny_db, tmp_path, capsys, tiny):
    out = tmp_path / 'run'
    assert main(['train', 'generator', '--out', str(out)]) == 1
    assert '--db is required' in capsys.readouterr().err
    assert main(tiny.cli_train_args('generator', tiny_db, out)) == 0
    assert main(tiny.cli_train_args('generator', tiny_db, out)) == 1
    assert 'pass --resume' in capsys.readouterr().err
    assert main(['train', 'generator', '--out', str(out), '--resume', '--num-sample', '4']) == 1
    assert 'training num_sample: checkpoint 3, now 4' in capsys.readouterr().err
    bad = tmp_path / 'bad.yaml'
    bad.write_text('learning_rate: 1\n')
    assert main(tiny.cli_train_args('predictor', tiny_db, out) + ['--config', str(bad)]) == 1
    assert "unknown option 'learning_rate'" in capsys.readouterr().err
    assert main(tiny.cli_train_args('predictor', tiny_db, out) + ['--model-args', 'oops']) == 1
    assert 'KEY=VALUE' in capsys.readouterr().err
    assert main(['train', 'predictor', '--db', str(tmp_path / 'none.h5'), '--out',
                 str(tmp_path / 'x'), '--device', 'cpu']) == 1
    assert 'none.h5 does not exist' in capsys.readouterr().err


def test_bad_model_args_values(tiny_db, tmp_path, capsys, tiny):
    out = tmp_path / 'run'
    for value, message in (('abc', "hidden_channels='abc': expected an integer"),
                           ('-4', 'hidden_channels=-4: expected a positive integer')):
        args = tiny.cli_train_args('predictor', tiny_db, out) + [f'hidden_channels={value}']
        assert main(args) == 1
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_predictor_validates_on_an_imported_pair_split(tiny_db, tmp_path, capsys, tiny):
    from d2a.db import MetaDatabase
    db = tmp_path / 'db.h5'
    db.write_bytes(tiny_db.read_bytes())
    with MetaDatabase.open(db, 'a') as d:
        held = [(t, d.task_results(t)[0][0]) for t in ('t0', 't1', 't2')]
        d.add_pair_split('val', held)
    out = tmp_path / 'run'
    assert main(tiny.cli_train_args('predictor', db, out) + ['--val-pairs', 'val']) == 0
    assert '33 training items over 6 tasks, 3 validation items over 3 tasks' in \
        capsys.readouterr().out
    preds = __import__('json').loads((out / 'predictor.val.json').read_text())['predictions']
    assert sorted((p['task'], p['arch']) for p in preds) == sorted(held)
    assert main(tiny.cli_train_args('generator', db, tmp_path / 'g')
                + ['--val-pairs', 'val']) == 1
    assert 'applies to the predictor' in capsys.readouterr().err
    assert main(tiny.cli_train_args('predictor', db, tmp_path / 'x')
                + ['--val-pairs', 'nope']) == 1
    assert "no pair split 'nope' (pair splits: val)" in capsys.readouterr().err
