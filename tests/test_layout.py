r"""The import layers: each package may use the ones below it, never the ones above.

ground (d2a.utils) -> datasets -> building blocks (graphs, sets, nets, features, metrics,
benchmark, device) -> db -> pipeline -> models (generator, predictor, registry, checkpoint)
-> training -> search, plot -> cli

Each case imports modules in a fresh interpreter and lists what must not have been loaded.
"""
import json
import subprocess
import sys

import pytest

TORCH = ('torch', 'numpy', 'torch_geometric')
ABOVE_PIPELINE = ('d2a.generator', 'd2a.predictor', 'd2a.registry', 'd2a.training',
                  'd2a.search', 'd2a.cli', 'd2a.plot')

CASES = [
    # (modules imported, code run after the imports, modules that must stay unloaded)
    (['d2a', 'd2a.utils.atomic', 'd2a.utils.registry', 'd2a.utils.paths', 'd2a.utils.lazy'],
     '', TORCH),
    (['d2a.datasets.source', 'd2a.datasets.tasks', 'd2a.datasets.folder', 'd2a.datasets.npz',
      'd2a.datasets.digits', 'd2a.datasets.glyphs', 'd2a.datasets.vision'],
     "sys.modules['d2a.datasets.source'].list_sources()",
     ('torch', 'd2a.db', 'd2a.pipeline', 'd2a.graphs')),
    (['d2a.db'], '', ('torch', 'd2a.pipeline', 'd2a.features') + ABOVE_PIPELINE),
    (['d2a.graphs', 'd2a.sets', 'd2a.nets.nb201', 'd2a.nets.fit', 'd2a.features',
      'd2a.metrics', 'd2a.benchmark', 'd2a.device', 'd2a.zero_cost'],
     '', ('d2a.db', 'd2a.pipeline', 'torch._dynamo') + ABOVE_PIPELINE),
    (['d2a.pipeline.build', 'd2a.pipeline.label', 'd2a.pipeline.merge',
      'd2a.pipeline.importers.nb201', 'd2a.pipeline.importers.metad2a',
      'd2a.pipeline.embedded'], '', ABOVE_PIPELINE),
    (['d2a.generator', 'd2a.predictor', 'd2a.registry', 'd2a.checkpoint'], '',
     ('d2a.training', 'd2a.search', 'd2a.pipeline', 'd2a.cli', 'd2a.plot')),
    (['d2a.training.trainer', 'd2a.training.objectives'], '', ('d2a.search', 'd2a.cli')),
    (['d2a.search', 'd2a.plot'], '', ('d2a.training', 'd2a.pipeline', 'd2a.cli')),
    # Light modules the command line reads its defaults from.
    (['d2a.checkpoint', 'd2a.training.config', 'd2a.nets.recipe', 'd2a.datasets.glyph_scripts',
      'd2a.pipeline.embedded'], '', TORCH),
    (['d2a.cli.main'], "sys.modules['d2a.cli.main'].build_parser()", TORCH),
]


def _loaded_after(modules, code):
    script = ('import importlib, json, sys\n'
              f'for m in {modules!r}:\n    importlib.import_module(m)\n'
              f'{code}\n'
              'print(json.dumps(sorted(sys.modules)))')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize('modules,code,forbidden', CASES,
                         ids=[case[0][0] for case in CASES])
def test_imports_run_one_way(modules, code, forbidden):
    loaded = _loaded_after(modules, code)
    assert sorted(m for m in forbidden if m in loaded) == []
