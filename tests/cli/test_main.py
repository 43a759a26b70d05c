import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize('command', ['spaces', 'search'])
def test_a_closed_pipe_ends_quietly(tiny_run, command):
    # As in `d2a search ... | head`: the reader is gone before the command prints.
    args = ['spaces'] if command == 'spaces' else [
        'search', '--dataset', str(tiny_run['folder']), '--checkpoint', str(tiny_run['ckpt']),
        '--num-candidates', '4', '--top-k', '2', '--device', 'cpu']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, '-m', 'd2a.cli.main'] + args, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert 'Traceback' not in err and 'BrokenPipeError' not in err, err


def test_warnings_are_one_plain_line(capsys):
    import warnings

    from d2a.cli.main import _warning_printer
    with warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.showwarning = _warning_printer('evaluate')
        warnings.warn('skipped 2 rows')
    assert capsys.readouterr().err == 'd2a evaluate: warning: skipped 2 rows\n'
