import pytest

from d2a.cli.main import main


def test_spaces_lists_every_space(capsys):
    assert main(['spaces']) == 0
    out = capsys.readouterr().out
    assert 'nb201' in out and '15,625' in out
    assert 'mbv3' in out and 'networks' in out


def test_spaces_unknown_space_is_a_clear_error(capsys):
    assert main(['spaces', '--space', 'darts']) == 1
    err = capsys.readouterr().err
    assert "unknown search space 'darts'" in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert 'COMMAND' in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(['--version'])
    assert 'd2a' in capsys.readouterr().out
