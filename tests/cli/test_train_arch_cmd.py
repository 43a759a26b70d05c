import json

import pytest
import torch

from d2a.cli.main import main
from d2a.nets import NB201Network

ARCH = '|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|skip_connect~2|'


def test_train_arch_one_epoch(tiny, tmp_path, capsys):
    folder = tiny.write_image_folder(tmp_path / 'images', num_classes=3, per_class=5)
    out = tmp_path / 'out'
    assert main(['train-arch', '--arch', ARCH, '--dataset', str(folder), '--out', str(out),
                 '--epochs', '1', '--C', '4', '--N', '1', '--batch-size', '8',
                 '--image-size', '16', '--device', 'cpu', '--no-progress']) == 0
    assert 'test accuracy' in capsys.readouterr().out
    result = json.loads((out / 'result.json').read_text())
    assert 0.0 <= result['test_accuracy'] <= 100.0 and result['epochs'] == 1
    saved = torch.load(out / 'model_state.pt', weights_only=True)
    assert saved['arch'] == ARCH and saved['classes'] == ['class0', 'class1', 'class2']
    net = NB201Network(ARCH, C=4, N=1, num_classes=3)
    net.load_state_dict(saved['state_dict'])
    net.eval()
    exported = torch.export.load(out / 'model.pt2').module()
    x = torch.randn(5, 3, 16, 16)
    assert torch.allclose(exported(x), net(x), atol=1e-5)


@pytest.mark.parametrize('args,message', [
    (['--arch', '|bad~0|'], 'NB201 string'),
    (['--dataset', '{tmp}/missing'], 'does not exist'),
    (['--test-fraction', '1.5'], '--test-fraction must be in (0, 1)'),
    (['--dataset', '{one}'], 'has 1 class: training and testing a classifier needs at least 2'),
])
def test_train_arch_errors(tiny, tmp_path, capsys, args, message):
    folder = tiny.write_image_folder(tmp_path / 'images', num_classes=2, per_class=3)
    base = {'--arch': ARCH, '--dataset': str(folder), '--out': str(tmp_path / 'o'),
            '--epochs': '1', '--device': 'cpu'}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v.replace('{tmp}', str(tmp_path)).replace(
            '{one}', str(tiny.write_image_folder(tmp_path / 'one', num_classes=1)))
    argv = ['train-arch', '--no-progress'] + [x for kv in base.items() for x in kv]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
