import numpy as np
import pytest
import torch

from d2a.checkpoint import (SCHEMA_VERSION, Checkpoint, check_compatible, load_checkpoint,
                            load_model_state, rng_state, save_checkpoint, set_rng_state, to_plain)


def make_ckpt(**kw) -> Checkpoint:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    base = dict(kind='predictor', model_name='lin', model_config={'in': 3, 'out': 2},
                model_state=model.state_dict(), train_config={'lr': 1e-4, 'seed': 0},
                feature_extractor={'name': 'raw_pixels', 'dim': 12}, extra={'epoch': 3})
    base.update(kw)
    return Checkpoint(**base)


def test_round_trip_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    sched.step(1.0)
    ckpt = make_ckpt(model_state=model.state_dict(),
                     resume={'optimizer': opt.state_dict(), 'scheduler': sched.state_dict(),
                             'rng': rng_state(), 'epoch': 3})
    save_checkpoint(ckpt, tmp_path / 'p.pt')
    # Only tensors and plain values: loadable without allowing arbitrary pickles.
    raw = torch.load(tmp_path / 'p.pt', weights_only=True)
    assert raw['schema_version'] == SCHEMA_VERSION
    back = load_checkpoint(tmp_path / 'p.pt', kind='predictor')
    assert back.model_config == {'in': 3, 'out': 2} and back.extra == {'epoch': 3}
    other = torch.nn.Linear(3, 2)
    load_model_state(other, back, tmp_path / 'p.pt')
    assert torch.equal(other.weight, model.weight)
    opt2 = torch.optim.Adam(other.parameters())
    opt2.load_state_dict(back.resume['optimizer'])
    assert [p.name for p in tmp_path.iterdir()] == ['p.pt']  # no temporary file left


def test_folder_and_kind(tmp_path):
    save_checkpoint(make_ckpt(), tmp_path / 'predictor.pt')
    assert load_checkpoint(tmp_path, kind='predictor').model_name == 'lin'
    with pytest.raises(ValueError, match='is a predictor checkpoint, expected a generator'):
        load_checkpoint(tmp_path / 'predictor.pt', kind='generator')
    with pytest.raises(FileNotFoundError, match='generator.pt'):
        load_checkpoint(tmp_path, kind='generator')


def test_schema_version_and_foreign_files(tmp_path):
    ckpt = make_ckpt()
    ckpt.schema_version = SCHEMA_VERSION + 1
    save_checkpoint(ckpt, tmp_path / 'new.pt')
    with pytest.raises(ValueError, match=f'schema version {SCHEMA_VERSION + 1}'):
        load_checkpoint(tmp_path / 'new.pt')
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match='not a d2a checkpoint'):
        load_checkpoint(tmp_path / 'other.pt')
    (tmp_path / 'text.pt').write_text('hello')
    with pytest.raises(ValueError, match='not a readable d2a checkpoint'):
        load_checkpoint(tmp_path / 'text.pt')


def test_non_plain_values_are_refused():
    with pytest.raises(ValueError, match=r"checkpoint\['x'\] holds a object"):
        to_plain({'x': object()})
    out = to_plain({'a': np.float32(1.5), 'b': np.arange(3), 'c': (1, [2])})
    assert out['a'] == 1.5 and isinstance(out['a'], float)
    assert torch.equal(out['b'], torch.arange(3)) and out['c'] == (1, [2])


def test_check_compatible_lists_differences(tmp_path):
    ckpt = make_ckpt()
    check_compatible(ckpt, 'p.pt', model_config={'in': 3, 'out': 2},
                     train_config={'lr': 1.0, 'seed': 0}, train_keys=['seed'])
    with pytest.raises(ValueError) as e:
        check_compatible(ckpt, 'p.pt', model_config={'in': 4, 'out': 2},
                         train_config={'lr': 1e-4, 'seed': 1},
                         feature_extractor={'dim': 13})
    msg = str(e.value)
    assert 'model in: checkpoint 3, now 4' in msg and 'training seed' in msg
    assert 'feature extractor dim: checkpoint 12, now 13' in msg


def test_model_that_does_not_fit(tmp_path):
    ckpt = make_ckpt()
    with pytest.raises(ValueError, match='does not fit model'):
        load_model_state(torch.nn.Linear(4, 2), ckpt, 'p.pt')


def test_rng_state_restores_all_generators():
    import random
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
