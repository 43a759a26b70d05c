import json

import numpy as np
import pytest

from d2a.cli.main import main
from d2a.db import MetaDatabase

A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'


@pytest.mark.parametrize('command', [[], ['build'], ['label'], ['import'], ['merge'], ['info']])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as e:
        main(['db'] + command + ['--help'])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


def _npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / 'shapes.npz', x=rng.integers(0, 256, size=(30, 8, 8), dtype=np.uint8),
             y=np.repeat(['ring', 'star', 'bar'], 10))
    return f"npz:{tmp_path / 'shapes.npz'},images=x,labels=y"


def test_build_label_info_merge(tmp_path, capsys):
    db = str(tmp_path / 'db.h5')
    assert main(['db', 'build', db, '--source', _npz(tmp_path), '--source', 'digits',
                 '--meta-test', 'digits', '--extractor', 'raw_pixels', '--extractor-config',
                 'size=2', '--extractor-config', 'in_channels=1', '--image-size', '8',
                 '--tasks-per-source', '2', '--classes-per-task', '2-3']) == 0
    assert 'wrote' in capsys.readouterr().out
    assert main(['db', 'build', db, '--source', 'digits']) == 1
    assert 'already exists' in capsys.readouterr().err
    assert main(['db', 'label', db, '--archs-per-task', '1', '--shard', '0/2', '--recipe',
                 'custom', '--channels', '2', '--cells', '1', '--epochs', '1']) == 0
    assert main(['db', 'label', db, '--archs-per-task', '1', '--shard', '1/2', '--recipe',
                 'custom', '--channels', '2', '--cells', '1', '--epochs', '1']) == 0
    shards = sorted(str(p) for p in tmp_path.glob('db.label-*of2.h5'))
    assert len(shards) == 2
    assert main(['db', 'merge', db] + shards + ['--delete-inputs']) == 0
    assert 'added 2 result(s)' in capsys.readouterr().out
    assert not list(tmp_path.glob('db.label-*'))
    assert main(['db', 'info', db]) == 0
    out = capsys.readouterr().out
    for text in ('raw_pixels, dim 4', 'sources        2', '2 meta-train, 1 meta-test',
                 'results        2', 'shapes-000', 'acc min'):
        assert text in out
    assert main(['db', 'info', db, '--json']) == 0
    assert json.loads(capsys.readouterr().out)['num_results'] == 2
    assert main(['db', 'label', db, '--shard', '2/2']) == 1
    assert 'shard must be i/N' in capsys.readouterr().err


def test_import_and_errors(tmp_path, capsys):
    db = str(tmp_path / 'db.h5')
    csv = tmp_path / 'acc.csv'
    csv.write_text(f'index,arch,cifar10\n0,{A},93.5\n')
    assert main(['db', 'import', db, 'nb201-accuracy', str(csv)]) == 0
    assert 'imported 1 results' in capsys.readouterr().out
    lat = tmp_path / 'lat.csv'
    lat.write_text(f'index,arch,pixel3\n0,{A},12.5\n')
    assert main(['db', 'import', db, 'help-latency', str(lat)]) == 0
    with MetaDatabase.open(db) as d:
        assert d.latency('pixel3') == {A: 12.5}
    assert main(['db', 'import', db, 'metad2a-nasbench201', str(csv)]) == 1
    assert 'needs --datasets' in capsys.readouterr().err
    (tmp_path / 'broken.h5').write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0' * 100)
    assert main(['db', 'info', str(tmp_path / 'broken.h5')]) == 1
    assert 'broken.h5' in capsys.readouterr().err


def test_import_metad2a_pairs_counts_duplicates(tmp_path, capsys):
    import torch
    db = str(tmp_path / 'db.h5')
    rng = np.random.default_rng(0)
    torch.save({k: [torch.from_numpy(rng.normal(size=(4, 8)).astype(np.float32))]
                for k in range(3)}, tmp_path / 'bylabel.pt')
    torch.save([[1, 2], [2, 3]], tmp_path / 'tasks.pt')
    torch.save({'acc': [80.2, 30.0, 60.82], 'task': [0, 1, 0], 'str': [A, A, A]},
               tmp_path / 'pairs.pt')
    for kind, name in (('metad2a-bylabel', 'bylabel.pt'), ('metad2a-tasks', 'tasks.pt')):
        assert main(['db', 'import', db, kind, str(tmp_path / name)]) == 0
    pairs = ['db', 'import', db, 'metad2a-pairs', str(tmp_path / 'pairs.pt')]
    assert main(pairs) == 1
    assert 'listed more than once' in capsys.readouterr().err
    assert main(pairs + ['--duplicates', 'mean', '--recipe', 'metad2a-a']) == 0
    out = capsys.readouterr().out
    assert ('imported 2 results' in out
            and '1 pair(s) listed more than once: stored the mean, --duplicates mean' in out)
    with MetaDatabase.open(db) as d:
        assert d.task_results('metad2a-0', 'metad2a-a')[1].tolist() == \
            pytest.approx([70.51], abs=1e-4)
    torch.save(torch.tensor([1, 2, 0]), tmp_path / 'idx.pt')
    split = ['db', 'import', db, 'metad2a-split', str(tmp_path / 'idx.pt')]
    assert main(split) == 1
    assert 'needs --pairs' in capsys.readouterr().err
    assert main(split + ['--pairs', str(tmp_path / 'pairs.pt'), '--num-val', '1']) == 0
    assert "imported 1 validation pairs (pair split 'metad2a-val')" in capsys.readouterr().out
    assert main(['db', 'info', db]) == 0
    assert 'pair splits    metad2a-val (1 pairs)' in capsys.readouterr().out


def test_check_names_the_damaged_dataset(db_path, tmp_path, capsys, tiny):
    import h5py
    assert main(['db', 'check', str(db_path)]) == 0
    assert f'{db_path}: ok, ' in capsys.readouterr().out

    def damage(src, dataset, out):
        with h5py.File(src, 'r') as f:
            info = f[dataset].id.get_chunk_info(0)
        data = bytearray(src.read_bytes())
        data[info.byte_offset + 2] ^= 0x5A
        out.write_bytes(bytes(data))
        return str(out)
    bad = damage(db_path, 'results/accuracy', tmp_path / 'bad.h5')
    for command in (['db', 'check', bad], ['db', 'check', '--no-features', bad],
                    ['db', 'info', bad]):
        assert main(command) == 1
        assert 'dataset /results/accuracy is damaged' in capsys.readouterr().err
    # Training names it before it writes or trains anything.
    bad = damage(tiny.build_db(tmp_path / 'tiny.h5'), 'results/accuracy', tmp_path / 'bad2.h5')
    out = tmp_path / 'run'
    assert main(tiny.cli_train_args('predictor', bad, out)) == 1
    assert 'dataset /results/accuracy is damaged' in capsys.readouterr().err
    assert not out.exists()
