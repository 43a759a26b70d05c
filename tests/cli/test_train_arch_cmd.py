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


MBV3_CONFIG = {'ks': [3, 5, 7, 3] * 5, 'e': [3, 4, 6, 4] * 5, 'd': [2, 3, 4, 2, 3]}


@pytest.mark.parametrize('as_json', [True, False])
def test_train_arch_mbv3(tiny, tmp_path, capsys, as_json):
    from d2a.graphs.mbv3 import config_to_arch, layout_strides
    from d2a.nets import MBV3Network

    folder = tiny.write_image_folder(tmp_path / 'images', num_classes=3, per_class=5)
    out = tmp_path / 'out'
    arch = config_to_arch(MBV3_CONFIG)
    assert main(['train-arch', '--space', 'mbv3',
                 '--arch', json.dumps(MBV3_CONFIG) if as_json else arch,
                 '--dataset', str(folder), '--out', str(out), '--epochs', '1',
                 '--width-mult', '0.25', '--batch-size', '8', '--image-size', '12',
                 '--device', 'cpu', '--no-progress']) == 0
    printed = capsys.readouterr().out
    assert 'OFA config: {"ks":[3,5,7,3,' in printed and 'test accuracy' in printed
    result = json.loads((out / 'result.json').read_text())
    assert result['space'] == 'mbv3' and result['arch'] == arch
    assert result['config'] == MBV3_CONFIG and result['strides'] == list(layout_strides(12))
    assert result['recipe']['width_mult'] == 0.25 and result['recipe']['space'] == 'mbv3'
    saved = torch.load(out / 'model_state.pt', weights_only=True)
    assert saved['config'] == MBV3_CONFIG and saved['space'] == 'mbv3'
    net = MBV3Network(saved['arch'], saved['recipe']['width_mult'], saved['recipe']['image_size'],
                      saved['in_channels'], len(saved['classes']))
    net.load_state_dict(saved['state_dict'])
    assert result['num_params'] == sum(p.numel() for p in net.parameters())
    exported = torch.export.load(out / 'model.pt2').module()
    x = torch.randn(5, 3, 12, 12)
    assert torch.allclose(exported(x), net.eval()(x), atol=1e-5)


@pytest.mark.parametrize('args,message', [
    (['--arch', 'd2:k3e3'], 'must have 5 stages'),
    (['--arch', '{"ks": [3]}'], "config 'ks' needs 20 values, got 1"),
    (['--arch', '{"ks": '], '--arch is not valid JSON'),
    (['--C', '4'], '--channels/--cells size NB201 networks'),
    (['--space', 'nb201', '--width-mult', '0.5'], '--width-mult sizes MobileNetV3 networks'),
])
def test_train_arch_mbv3_errors(tiny, tmp_path, capsys, args, message):
    folder = tiny.write_image_folder(tmp_path / 'images', num_classes=2, per_class=3)
    base = {'--space': 'mbv3', '--arch': json.dumps(MBV3_CONFIG), '--dataset': str(folder),
            '--out': str(tmp_path / 'o'), '--epochs': '1', '--device': 'cpu'}
    if args[0] == '--space':
        base['--arch'] = ARCH
    base.update(zip(args[::2], args[1::2]))
    assert main(['train-arch', '--no-progress'] + [x for kv in base.items() for x in kv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()
