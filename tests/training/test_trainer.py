import json

import pytest
import torch

from d2a.checkpoint import load_checkpoint
from d2a.training.log import read_metrics_log
from d2a.training.trainer import TrainConfig, Trainer, train


@pytest.mark.parametrize('kind', ['generator', 'predictor'])
def test_train_writes_checkpoints_logs_and_config(tiny_db, tmp_path, kind, tiny):
    summary = train(tiny.train_config(kind, tiny_db, tmp_path, epochs=2))
    assert summary['best_epoch'] in (1, 2)
    for name in (f'{kind}.pt', f'{kind}.last.pt', f'{kind}.config.yaml',
                 f'{kind}.metrics.jsonl', 'extractor.pt'):
        assert (tmp_path / name).is_file(), name
    records = read_metrics_log(tmp_path / f'{kind}.metrics.jsonl')
    assert [r['epoch'] for r in records] == [1, 2]
    expected = {'generator': ('train_loss', 'val_loss', 'val_validity', 'val_uniqueness',
                              'val_reconstruction', 'val_kl'),
                'predictor': ('train_loss', 'val_loss', 'val_pearson', 'val_spearman',
                              'val_task_spearman')}[kind]
    assert set(expected) <= set(records[-1])
    ckpt = load_checkpoint(tmp_path, kind=kind)
    assert ckpt.feature_extractor['name'] == 'raw_pixels'
    assert ckpt.model_config['in_channels'] == ckpt.feature_extractor['dim'] == 12
    assert ckpt.train_config['lr'] == 1e-4 and ckpt.resume is None
    assert load_checkpoint(tmp_path / f'{kind}.last.pt').resume['epoch'] == 2
    if kind == 'predictor':
        preds = json.loads((tmp_path / 'predictor.val.json').read_text())['predictions']
        assert len(preds) == 2 * 6 and {'task', 'arch', 'true', 'pred'} <= set(preds[0])


def test_resume_equals_uninterrupted_run(tiny_db, tmp_path, monkeypatch, tiny):
    train(tiny.train_config('generator', tiny_db, tmp_path / 'a', epochs=3))
    # Interrupted in the middle of epoch 2 (after its training steps) ...
    run_epoch = Trainer._train_epoch

    def interrupted(self, epoch, info):
        metrics = run_epoch(self, epoch, info)
        if epoch == 2:
            raise KeyboardInterrupt
        return metrics
    monkeypatch.setattr(Trainer, '_train_epoch', interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny.train_config('generator', tiny_db, tmp_path / 'b', epochs=3))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / 'b' / 'generator.last.pt').resume['epoch'] == 1
    # ... and continued: it redoes epoch 2 and ends where the uninterrupted run ends.
    train(tiny.train_config('generator', tiny_db, tmp_path / 'b', epochs=3), resume=True)
    a = load_checkpoint(tmp_path / 'a' / 'generator.last.pt')
    b = load_checkpoint(tmp_path / 'b' / 'generator.last.pt')
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    drop_time = [{k: v for k, v in r.items() if k != 'time'}
                 for r in read_metrics_log(tmp_path / 'a' / 'generator.metrics.jsonl')]
    assert drop_time == [{k: v for k, v in r.items() if k != 'time'}
                         for r in read_metrics_log(tmp_path / 'b' / 'generator.metrics.jsonl')]


def test_resume_and_overwrite_rules(tiny_db, tmp_path, tiny):
    train(tiny.train_config('predictor', tiny_db, tmp_path, epochs=1))
    with pytest.raises(FileExistsError, match='--resume'):
        Trainer(tiny.train_config('predictor', tiny_db, tmp_path))
    with pytest.raises(ValueError, match='training num_sample: checkpoint 3, now 4'):
        train(tiny.train_config('predictor', tiny_db, tmp_path, epochs=2, num_sample=4),
              resume=True)
    with pytest.raises(ValueError, match='model hidden_channels: checkpoint 8, now 16'):
        cfg = tiny.train_config('predictor', tiny_db, tmp_path, epochs=2)
        cfg.model_args['hidden_channels'] = 16
        train(cfg, resume=True)
    with pytest.raises(FileNotFoundError, match='generator.last.pt'):
        Trainer(tiny.train_config('generator', tiny_db, tmp_path), resume=True)


def test_bad_config(tiny_db, tmp_path, tiny):
    with pytest.raises(ValueError, match='unknown training option'):
        TrainConfig.from_dict({'db': 'x', 'out': 'y', 'learning_rate': 1})
    with pytest.raises(ValueError, match='epochs must be a positive integer'):
        TrainConfig(db='x', out='y', epochs=0)
    with pytest.raises(ValueError, match="is a predictor, not a generator"):
        train(tiny.train_config('generator', tiny_db, tmp_path, model='metad2a_nb201_predictor'))
    with pytest.raises(ValueError, match='differs from the feature size 12'):
        train(tiny.train_config('predictor', tiny_db, tmp_path, model_args={'in_channels': 5}))


def _ddp_worker(rank: int, world_size: int, port: int, config: TrainConfig) -> None:
    import os
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    summary = train(config)
    assert summary['rank'] == rank


def test_distributed_two_cpu_processes(tiny_db, tmp_path, tiny):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # fork: the children reuse the imported modules instead of importing torch again.
    config = tiny.train_config('predictor', tiny_db, tmp_path, epochs=2)
    mp.start_processes(_ddp_worker, args=(2, port, config), nprocs=2, join=True,
                       start_method='fork')
    records = read_metrics_log(tmp_path / 'predictor.metrics.jsonl')
    assert [r['epoch'] for r in records] == [1, 2]  # one writer: rank 0
    ckpt = load_checkpoint(tmp_path / 'predictor.last.pt')
    assert ckpt.resume['epoch'] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.')) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('kind', ['generator', 'predictor'])
def test_train_on_cuda_with_bf16_autocast(tiny_db, tmp_path, kind, tiny):
    summary = train(tiny.train_config(kind, tiny_db, tmp_path, epochs=1, device='cuda', amp=True))
    assert summary['best_epoch'] == 1
    ckpt = load_checkpoint(tmp_path, kind=kind)
    assert all(v.device.type == 'cpu' for v in ckpt.model_state.values())


def test_dataset_aware_predictor_trains_with_a_ranking_loss(tiny_db, tmp_path, tiny):
    from d2a.registry import load_model
    from d2a.training.trainer import train
    cfg = tiny.train_config('predictor', tiny_db, tmp_path / 'run', epochs=2, rank_weight=1.0,
                            group_size=3, batch_size=6,
                            model_args={'head': 'residual', 'target': 'task',
                                        'descriptors': True})
    summary = train(cfg)
    assert summary['best_epoch'] >= 1
    records = [json.loads(line) for line in
               (tmp_path / 'run' / 'predictor.metrics.jsonl').read_text().splitlines()]
    assert {'train_rank', 'train_level', 'train_mse', 'val_task_spearman'} <= set(records[-1])
    model = load_model(tmp_path / 'run', 'predictor').model
    assert model.head == 'residual' and model.target == 'task' and model.descriptors
    with pytest.raises(ValueError, match='group_size'):
        tiny.train_config('predictor', tiny_db, tmp_path / 'x', group_size=9, batch_size=4)


def _db_with_cnn_weights(tiny_db, path, seed: int):
    # The tiny database's features, recorded as those of a small CNN with seeded weights:
    # two such databases share the extractor's name and configuration, not its weights.
    import shutil

    from d2a.db import MetaDatabase
    from d2a.features import create_extractor, extractor_to_bytes
    shutil.copyfile(tiny_db, path)
    torch.manual_seed(seed)
    cnn = create_extractor('small_cnn', in_channels=3, hidden_channels=2, out_channels=12,
                           num_layers=1)
    with MetaDatabase.open(path, 'a') as db:
        db.set_feature_extractor('small_cnn', 12, cnn.config(), extractor_to_bytes(cnn))
    return path


def _two_dbs(tiny_db, tmp_path):
    return (_db_with_cnn_weights(tiny_db, tmp_path / 'a.h5', seed=1),
            _db_with_cnn_weights(tiny_db, tmp_path / 'b.h5', seed=2))


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_refused_resume_leaves_the_folder_untouched(tiny_db, tmp_path, tiny):
    db_a, db_b = _two_dbs(tiny_db, tmp_path)
    out = tmp_path / 'run'
    train(tiny.train_config('predictor', db_a, out))
    before = _snapshot(out)
    # Same extractor name, configuration and feature size: only the weights' hash differs.
    with pytest.raises(ValueError, match='feature extractor weights_sha256'):
        train(tiny.train_config('predictor', db_b, out, epochs=2), resume=True)
    assert _snapshot(out) == before


def test_a_model_never_replaces_the_extractor_another_depends_on(tiny_db, tmp_path, tiny):
    db_a, db_b = _two_dbs(tiny_db, tmp_path)
    out = tmp_path / 'run'
    train(tiny.train_config('generator', db_a, out))
    before = _snapshot(out)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match='holds a generator trained on other features'):
            train(tiny.train_config('predictor', db_b, out), overwrite=overwrite)
        assert _snapshot(out) == before
    # A leftover extractor.pt of other weights is replaced only with overwrite.
    (out / 'generator.pt').unlink()
    (out / 'generator.last.pt').unlink()
    with pytest.raises(ValueError, match='another feature extractor'):
        train(tiny.train_config('predictor', db_b, out))
    train(tiny.train_config('predictor', db_b, out), overwrite=True)
    assert (out / 'extractor.pt').read_bytes() != before['extractor.pt']
    # The same database joins the folder as before.
    train(tiny.train_config('generator', db_b, out))


def test_search_refuses_models_of_other_extractor_weights(tiny_db, tmp_path, tiny):
    import shutil

    from d2a.search import search
    db_a, db_b = _two_dbs(tiny_db, tmp_path)
    train(tiny.train_config('generator', db_a, tmp_path / 'a'))
    train(tiny.train_config('predictor', db_b, tmp_path / 'b'))
    folder = tiny.write_image_folder(tmp_path / 'images')
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    shutil.copy(tmp_path / 'a' / 'generator.pt', mixed)
    shutil.copy(tmp_path / 'b' / 'predictor.pt', mixed)
    shutil.copy(tmp_path / 'a' / 'extractor.pt', mixed)
    with pytest.raises(ValueError, match='different features: generator weights_sha256'):
        search(folder, checkpoint_dir=mixed, num_candidates=4, top_k=1, device='cpu')
    # Both models of one database, with the extractor.pt of another.
    train(tiny.train_config('generator', db_b, tmp_path / 'b'))
    shutil.copy(tmp_path / 'a' / 'extractor.pt', tmp_path / 'b')
    with pytest.raises(ValueError, match='differ from those the checkpoints'):
        search(folder, checkpoint_dir=tmp_path / 'b', num_candidates=4, top_k=1, device='cpu')
