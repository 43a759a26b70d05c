import json

from d2a.cli.main import main
from d2a.graphs.nb201 import index_to_arch


def test_evaluate(tmp_path, capsys):
    path = tmp_path / 'bench.csv'
    path.write_text('index,arch,cifar10\n' + ''.join(
        f'{i},{index_to_arch(i)},{acc}\n' for i, acc in enumerate([91.0, 94.0, 85.0, 93.0])))
    assert main(['evaluate', '--arch', index_to_arch(3), '--benchmark', str(path),
                 '--dataset', 'cifar10']) == 0
    out = capsys.readouterr().out
    assert 'rank         : 2 of 4' in out and '93.00' in out
    assert main(['evaluate', '--arch', index_to_arch(2), '--benchmark', str(path),
                 '--dataset', 'cifar10', '--json']) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['rank'] == 4 and data['percentile'] == 25.0
    assert main(['evaluate', '--arch', index_to_arch(2), '--benchmark', str(path),
                 '--dataset', 'imagenet']) == 1
    assert "no column 'imagenet'" in capsys.readouterr().err
    assert main(['evaluate', '--arch', index_to_arch(9), '--benchmark', str(path),
                 '--dataset', 'cifar10']) == 1
    assert 'is not in benchmark table' in capsys.readouterr().err


def test_evaluate_reports_skipped_rows(tmp_path, capsys):
    path = tmp_path / 'bench.csv'
    path.write_text(f'index,arch,cifar10\n0,{index_to_arch(0)},90.0\n1,oops,99.0\n')
    assert main(['evaluate', '--arch', index_to_arch(0), '--benchmark', str(path),
                 '--dataset', 'cifar10']) == 0
    captured = capsys.readouterr()
    assert 'rank         : 1 of 1' in captured.out
    assert ('d2a evaluate: warning: benchmark table' in captured.err
            and 'skipped 1 row whose arch is not a nb201 string (first: line 3' in captured.err)
