import argparse

import pytest

from d2a.config import enable_config, load_config, resolve_config, save_config


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument('--lr', type=float, default=1e-4, help='learning rate')
    p.add_argument('--epochs', type=int, default=400)
    p.add_argument('--name', default=None)
    p.add_argument('--mode', choices=('a', 'b'), default='a')
    p.add_argument('--amp', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--items', nargs='*', default=[])
    p.add_argument('--resume', action='store_true')
    enable_config(p, exclude=('resume',))
    return p


def test_defaults_without_config():
    args = make_parser().parse_args([])
    values = resolve_config(args)
    assert values == {'lr': 1e-4, 'epochs': 400, 'name': None, 'mode': 'a', 'amp': True,
                      'items': []}
    assert args.epochs == 400 and args.resume is False


@pytest.mark.parametrize('order', ['flag_first', 'config_first'])
def test_precedence_defaults_config_flags(tmp_path, order):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('lr: 0.01\nepochs: 5\nmode: b\namp: false\nitems: [x, y]\n')
    argv = ['--epochs', '7', '--config', str(cfg)]
    if order == 'config_first':
        argv = argv[2:] + argv[:2]
    args = make_parser().parse_args(argv)
    values = resolve_config(args)
    assert values['lr'] == 0.01 and values['mode'] == 'b' and values['amp'] is False
    assert values['items'] == ['x', 'y']
    assert values['epochs'] == 7  # the flag wins wherever it stands


def test_second_resolve_keeps_flags_over_overrides(tmp_path):
    args = make_parser().parse_args(['--epochs', '3'])
    resolve_config(args)
    values = resolve_config(args, overrides={'epochs': 100, 'lr': 0.5})
    assert values['epochs'] == 3 and values['lr'] == 0.5


def test_dashed_keys_and_int_to_float(tmp_path):
    p = argparse.ArgumentParser()
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--weight-decay', type=float, default=0.0)
    enable_config(p)
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('batch-size: 8\nweight_decay: 1\n')
    values = resolve_config(p.parse_args(['--config', str(cfg)]))
    assert values == {'batch_size': 8, 'weight_decay': 1.0}


@pytest.mark.parametrize('text,match', [
    ('unknown_key: 1\n', "unknown option 'unknown_key'"),
    ('epochs: 1.5\n', '--epochs must be a number'),
    ('epochs: many\n', "--epochs = 'many' is invalid"),
    ('mode: c\n', "--mode = 'c' is not one of a, b"),
    ('amp: 3\n', '--amp must be true or false'),
    ('- a\n- b\n', 'must hold a mapping'),
    ('resume: true\n', "unknown option 'resume'"),
    ('lr: [1\n', 'not valid YAML'),
])
def test_bad_config_names_file_and_key(tmp_path, text, match):
    cfg = tmp_path / 'bad.yaml'
    cfg.write_text(text)
    args = make_parser().parse_args(['--config', str(cfg)])
    with pytest.raises(ValueError, match=match) as e:
        resolve_config(args)
    assert 'bad.yaml' in str(e.value)


def test_missing_config_file(tmp_path):
    args = make_parser().parse_args(['--config', str(tmp_path / 'none.yaml')])
    with pytest.raises(FileNotFoundError, match='none.yaml'):
        resolve_config(args)


def test_save_then_load_reproduces(tmp_path):
    args = make_parser().parse_args(['--lr', '0.3', '--items', 'a', '--no-amp'])
    values = resolve_config(args)
    save_config(values, tmp_path / 'sub' / 'eff.yaml')
    assert load_config(tmp_path / 'sub' / 'eff.yaml') == values
    again = make_parser().parse_args(['--config', str(tmp_path / 'sub' / 'eff.yaml')])
    assert resolve_config(again) == values
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['eff.yaml']


def test_help_shows_real_defaults():
    text = make_parser().format_help()
    assert 'SUPPRESS' not in text
    assert '(default: 0.0001)' in text and '--config FILE' in text
