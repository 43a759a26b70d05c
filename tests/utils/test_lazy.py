import json
import subprocess
import sys

import pytest

from d2a.utils.lazy import lazy_exports


def _run(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_pyg_imports_without_dynamo_and_keeps_is_torch_instance():
    out = _run('import sys, d2a, torch, torch_geometric\n'
               "print('torch._dynamo' in sys.modules)\n"
               'lin = torch.nn.Linear(2, 2)\n'
               'print(torch_geometric.is_torch_instance(lin, torch.nn.Linear),\n'
               '      torch_geometric.is_torch_instance(lin, torch.nn.Conv2d),\n'
               '      torch_geometric.is_torch_instance(torch.compile(lin), torch.nn.Linear))\n'
               'import torch_geometric.isinstance as m\n'
               'print(m.is_torch_instance is torch_geometric.is_torch_instance, m.__file__)')
    lines = out.splitlines()
    assert lines[0] == 'False' and lines[1] == 'True False True'
    assert lines[2].startswith('True ') and lines[2].endswith('torch_geometric/isinstance.py')


def test_an_already_imported_pyg_is_left_alone():
    assert _run('import sys, torch_geometric, d2a\n'
                "print('torch._dynamo' in sys.modules)") == 'True'


def test_lazy_exports():
    get = lazy_exports('pkg', {'dumps': 'json'})
    assert get('dumps') is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        get('loads')
