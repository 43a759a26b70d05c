import importlib.util
import math
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_graph_predictor_example_runs(capsys):
    example = _load('graph_predictor')
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    try:
        out = example.main(['--fast', '--threads', '1'])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert 'round 2: 30 cells evaluated' in printed
    # The best labelled cell is at least as good as any cell of the first random round.
    assert out['best'] >= out['first_round_best']
    assert math.isfinite(out['spearman_accuracy']) and math.isfinite(out['spearman_latency'])


def test_graph_predictor_example_checks_its_table(tmp_path):
    example = _load('graph_predictor')
    bad = tmp_path / 'accuracy.csv'
    bad.write_text('arch,cifar100\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n')
    with pytest.raises(ValueError, match="'arch' and 'cifar10'"):
        example.load_accuracy(str(bad))


@pytest.mark.parametrize('arch,expected', [
    ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|', 40.0),
    ('|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|', 40.0 + 5.0 * 1.4),
])
def test_toy_accuracy(arch, expected):
    assert _load('graph_predictor').toy_accuracy(arch) == pytest.approx(expected)
