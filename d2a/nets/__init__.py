r"""Networks built from architectures, and the recipe that trains them."""
from d2a.nets.nb201 import NB201Network, count_flops, count_params
from d2a.nets.training import Recipe, TrainResult, evaluate, train_and_evaluate, train_model

__all__ = ['NB201Network', 'count_params', 'count_flops', 'Recipe', 'TrainResult',
           'train_model', 'evaluate', 'train_and_evaluate']
