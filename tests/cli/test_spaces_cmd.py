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


@pytest.mark.parametrize('preset', [None, 'ACTIVE'])
def test_entry_point_sets_passive_openmp_waiting_unless_chosen(preset):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
    if preset:
        env['OMP_WAIT_POLICY'] = preset
    code = ('import os, d2a.cli.main, torch; '
            "print(os.environ['OMP_WAIT_POLICY'])")
    # The library alone does the same (search() must never be slower than the command).
    for first in ('d2a.search', 'd2a.graphs'):
        lib = subprocess.run([sys.executable, '-c', f'import os, {first}; print(os.environ'
                              "['OMP_WAIT_POLICY'])"], env=env, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert lib == (preset or 'PASSIVE')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == (preset or 'PASSIVE')
