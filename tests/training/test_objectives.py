import math

import pytest

from d2a.checkpoint import KINDS
from d2a.registry import create_model
from d2a.training.objectives import OBJECTIVES


def test_one_objective_per_kind():
    assert set(OBJECTIVES) == set(KINDS)
    assert all(o.kind == k for k, o in OBJECTIVES.items())


@pytest.mark.parametrize('metrics,generator,predictor', [
    ({'val_loss': 2.0, 'val_task_spearman': 0.4}, -2.0, 0.4),
    ({'val_loss': 2.0, 'val_task_spearman': math.nan}, -2.0, -2.0),
    ({'train_loss': 3.0}, -3.0, -3.0),
    ({'val_loss': math.inf}, -math.inf, -math.inf),
])
def test_scores(metrics, generator, predictor):
    assert OBJECTIVES['generator'].score(metrics) == generator
    assert OBJECTIVES['predictor'].score(metrics) == predictor


@pytest.mark.parametrize('space,constrained,unused', [('nb201', True, True),
                                                       ('mbv3', True, True),
                                                       ('nb201', False, False)])
def test_unused_parameters_of_decoders_without_free_edges(space, constrained, unused):
    gen = create_model(f'metad2a_{space}_generator', hidden_channels=8, num_heads=2,
                       constrained=constrained)
    assert OBJECTIVES['generator'].unused_parameters(gen) is unused
    pred = create_model(f'metad2a_{space}_predictor', hidden_channels=8, num_heads=2)
    assert OBJECTIVES['predictor'].unused_parameters(pred) is False


def test_predictor_is_prepared_with_target_statistics():
    pred = create_model('metad2a_nb201_predictor', hidden_channels=8, num_heads=2)
    OBJECTIVES['predictor'].prepare(pred, [('t', 'a', 10.0), ('t', 'b', 30.0)])
    assert float(pred.y_mean) == 20.0


def test_listwise_loss_prefers_the_true_order():
    import torch
    from d2a.training.objectives import listwise_loss
    target = torch.tensor([2.0, 1.0, 0.0, -1.0, 5.0])
    group = torch.tensor([0, 0, 0, 0, 1])  # the single-item group does not count
    good = listwise_loss(torch.tensor([3.0, 1.0, -1.0, -3.0, 0.0]), target, group)
    bad = listwise_loss(torch.tensor([-3.0, -1.0, 1.0, 3.0, 0.0]), target, group)
    assert good < bad
    assert listwise_loss(target, target, torch.arange(5)) == 0
