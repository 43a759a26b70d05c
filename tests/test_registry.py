import json

import pytest
import torch
import yaml

from d2a.generator import SetToGraphVAE
from d2a.predictor import MetaPredictor
from d2a.registry import (create_model, get_model_config, list_models, model_from_config,
                          register_model)

NAMES = ['metad2a_mbv3_generator', 'metad2a_mbv3_predictor', 'metad2a_nb201_generator',
         'metad2a_nb201_predictor']


def test_list_models():
    assert set(NAMES) <= set(list_models())
    assert set(list_models('generator')) >= {'metad2a_nb201_generator', 'metad2a_mbv3_generator'}
    assert 'metad2a_nb201_generator' not in list_models('predictor')


@pytest.mark.parametrize('name', NAMES)
def test_defaults_are_metad2a_sizes(name):
    model = create_model(name)
    cls = SetToGraphVAE if name.endswith('generator') else MetaPredictor
    assert isinstance(model, cls)
    assert model.space.name == name.split('_')[1]
    assert model.config['name'] == name and model.config['in_channels'] == 512
    assert model.config['hidden_channels'] == 56
    if cls is MetaPredictor:
        assert model.graph_encoder.hidden_channels == 512 and model.lin1.in_features == 112
        assert model.lin1.out_features == 512
    else:
        assert model.beta == 0.005 and model.lin_mu.out_features == 56
    # Plain data: survives JSON and YAML.
    assert json.loads(json.dumps(model.config)) == model.config
    assert yaml.safe_load(yaml.safe_dump(model.config)) == model.config


@pytest.mark.parametrize('name', NAMES)
def test_rebuild_from_config(name):
    torch.manual_seed(0)
    model = create_model(name, hidden_channels=8, num_heads=2, in_channels=16)
    assert model.config['hidden_channels'] == 8
    again = model_from_config(json.loads(json.dumps(model.config)))
    again.load_state_dict(model.state_dict())
    same = create_model(model.config['name'], **model.config)
    assert same.config == model.config
    assert {k: v.shape for k, v in same.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize('space', ['nb201', 'mbv3'])
def test_graph_only_predictor(space):
    model = create_model(f'gin_{space}_predictor')
    assert model.set_encoder is None and model.graph_encoder_name == 'gin'
    assert model.space.name == space


def test_overrides():
    model = create_model('metad2a_nb201_predictor', graph_encoder='gin', use_dataset=False,
                         graph_hidden_channels=32)
    assert model.set_encoder is None and model.graph_encoder.hidden_channels == 32
    with pytest.raises(ValueError, match='no option'):
        create_model('metad2a_nb201_generator', hidden=3)
    with pytest.raises(ValueError, match='unknown model'):
        create_model('resnet50')
    with pytest.raises(ValueError, match="'kind'"):
        create_model('metad2a_nb201_generator', kind='predictor')
    cfg = get_model_config('metad2a_nb201_generator')
    cfg['hidden_channels'] = -1
    assert get_model_config('metad2a_nb201_generator')['hidden_channels'] == 56  # a copy


@pytest.mark.parametrize('key,value,message', [
    ('hidden_channels', 'abc', r"hidden_channels='abc': expected an integer \(default 56\)"),
    ('hidden_channels', -4, 'hidden_channels=-4: expected a positive integer'),
    ('num_heads', 0, 'num_heads=0: expected a positive integer'),
    ('hidden_channels', 2.5, 'hidden_channels=2.5: expected an integer'),
    ('beta', 'x', "beta='x': expected a finite number"),
    ('beta', float('nan'), 'beta=nan: expected a finite number'),
    ('beta', -0.1, 'beta=-0.1: expected a number >= 0'),
    ('constrained', 3, 'constrained=3: expected true or false'),
    ('set_encoder', 5, 'set_encoder=5: expected a string'),
])
def test_bad_option_values_are_named(key, value, message):
    with pytest.raises(ValueError, match=f"model 'metad2a_nb201_generator' option {message}"):
        create_model('metad2a_nb201_generator', **{key: value})


def test_register_model():
    register_model('tiny_nb201_generator', 'generator',
                   {'space': 'nb201', 'in_channels': 4, 'hidden_channels': 4,
                    'latent_channels': 2, 'num_heads': 1})
    model = create_model('tiny_nb201_generator')
    assert model.lin_mu.out_features == 2 and 'tiny_nb201_generator' in list_models()
    with pytest.raises(ValueError, match='kind'):
        register_model('x', 'decoder', {})


def _saved(tmp_path, name='metad2a_nb201_predictor', **sizes):
    from d2a.checkpoint import Checkpoint, save_checkpoint
    torch.manual_seed(0)
    model = create_model(name, **sizes)
    kind = model.config['kind']
    save_checkpoint(Checkpoint(kind=kind, model_name=name, model_config=model.config,
                               model_state=model.state_dict()), tmp_path / f'{kind}.pt')
    return model


def test_load_model_rebuilds_the_saved_model(tmp_path):
    from d2a.registry import load_model
    model = _saved(tmp_path, hidden_channels=8, num_heads=2, graph_hidden_channels=8)
    for path in (tmp_path, tmp_path / 'predictor.pt'):
        loaded = load_model(path, 'predictor')
        assert loaded.path == tmp_path / 'predictor.pt' and not loaded.model.training
        assert loaded.checkpoint.model_name == 'metad2a_nb201_predictor'
        for k, v in model.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[k], v), k
    again = create_model(checkpoint_path=tmp_path / 'predictor.pt')
    assert again.config == model.config
    into = create_model('metad2a_nb201_predictor', checkpoint_path=tmp_path, hidden_channels=8,
                        num_heads=2, graph_hidden_channels=8)
    assert torch.equal(into.lin2.weight, model.lin2.weight)
    with pytest.raises(ValueError, match='does not fit model'):
        create_model('metad2a_nb201_predictor', checkpoint_path=tmp_path)
    with pytest.raises(ValueError, match='is a predictor checkpoint, expected a generator'):
        load_model(tmp_path / 'predictor.pt', 'generator')

    def refuse(ckpt, file):
        raise ValueError(f'{file.name} refused')
    with pytest.raises(ValueError, match='predictor.pt refused'):
        load_model(tmp_path, 'predictor', check=refuse)
    with pytest.raises(ValueError, match='takes no overrides'):
        create_model(checkpoint_path=tmp_path / 'predictor.pt', hidden_channels=4)
    with pytest.raises(ValueError, match='a model name or a checkpoint_path'):
        create_model()
