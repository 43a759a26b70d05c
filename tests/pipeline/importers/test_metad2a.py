import os
import sys
import types

import numpy as np
import pytest
import torch

from d2a.pipeline.importers.metad2a import (IGraphStandIn, graph_to_arch, import_bylabel,
                                           import_nasbench201, import_pairs, import_task_list,
                                           load_pt)
from d2a.db import MetaDatabase

A = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
A_TYPES = [0, 5, 5, 5, 3, 5, 5, 1]
B = '|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|'
B_TYPES = [0, 6, 2, 2, 4, 4, 3, 1]


@pytest.fixture
def fake_igraph(monkeypatch):
    r"""A module named igraph whose Graph pickles like python-igraph's."""
    mod = types.ModuleType('igraph')

    class Graph:
        def __init__(self, n=0, edges=(), directed=False, gattrs=None, vattrs=None, eattrs=None):
            self.args = (n, list(edges), directed, gattrs or {}, vattrs or {}, eattrs or {})

        def __reduce__(self):
            return (Graph, self.args, {})

    Graph.__module__ = 'igraph'
    Graph.__qualname__ = 'Graph'
    mod.Graph = Graph
    monkeypatch.setitem(sys.modules, 'igraph', mod)

    def make(node_types):
        edges = [(i, i + 1) for i in range(7)] + [(0, 2), (0, 4), (1, 3)]
        return Graph(8, edges, True, {}, {'type': node_types}, {})
    return make


def _write_files(tmp_path, fake_igraph, variant):
    rng = np.random.default_rng(0)
    feats = {k: [torch.from_numpy(rng.normal(size=(6, 512)).astype(np.float32))] for k in range(4)}
    torch.save(feats, tmp_path / 'imgnet32bylabel.pt')
    torch.save([[1, 2, 3], [2, 3, 4]], tmp_path / 'meta_train_task_lst.pt')
    graphs = [fake_igraph(A_TYPES), fake_igraph(B_TYPES), fake_igraph(A_TYPES)]
    if variant == 'graph':  # MetaD2A's own loader: acc as tensors
        pairs = {'acc': [torch.tensor(91.0), torch.tensor(40.0), torch.tensor(88.0)],
                 'task': [0, 0, 1], 'graph': graphs}
    else:  # the DiffusionNAG copy: g, str and numpy extras
        pairs = {'acc': [np.float64(91.0), 40.0, 88.0], 'task': [np.int64(0), 0, 1], 'g': graphs,
                 'str': [A, B, A], 'x': [np.eye(8, 7)] * 3, 'adj': [np.zeros((8, 8))] * 3,
                 'flops': [1.0, 2.0, 3.0], 'params': [0.1, 0.2, 0.3], 'latency': [1, 2, 3]}
    torch.save(pairs, tmp_path / 'meta_train_tasks_predictor.pt')
    torch.save({'arch': {'str': [A, B], 'igraph': graphs[:2], 'matrix': [np.zeros((4, 4))] * 2},
                'test-acc': {'cifar10': [94.0, 60.0], 'cifar100': [73.0, 30.0]}},
               tmp_path / 'nasbench201.pt')


@pytest.mark.parametrize('variant', ['graph', 'g'])
def test_import_metad2a(tmp_path, fake_igraph, variant):
    _write_files(tmp_path, fake_igraph, variant)
    sys.modules.pop('igraph')  # reading must not need igraph
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        assert import_bylabel(db, tmp_path / 'imgnet32bylabel.pt', 'imgnet32') == 4
        assert db.feature_dim == 512 and db.feature_extractor_name == 'resnet18_imagenet'
        assert import_task_list(db, tmp_path / 'meta_train_task_lst.pt') == 2
        assert db.task('metad2a-1').classes == ['1', '2', '3']  # 1-based ids -> keys
        assert import_pairs(db, tmp_path / 'meta_train_tasks_predictor.pt') == \
            {'added': 3, 'duplicates': 0, 'stored': 0}
        archs, accs = db.task_results('metad2a-0')
        assert dict(zip(archs, accs.tolist())) == {A: 91.0, B: 40.0}
        assert set(db.results().seed.tolist()) == {-1}  # as the schema says of imported rows
        assert import_nasbench201(db, tmp_path / 'nasbench201.pt', ['cifar100']) == 2
        assert db.task_features('metad2a-0', 5).shape == (3, 5, 512)


def test_graph_stand_in(tmp_path, fake_igraph):
    torch.save([fake_igraph(B_TYPES)], tmp_path / 'g.pt')
    (g,) = load_pt(tmp_path / 'g.pt')
    assert isinstance(g, IGraphStandIn) and g.vcount() == 8 and g.directed
    assert graph_to_arch(g, 'x') == B
    bad = IGraphStandIn(8, [], True, {}, {'type': [0, 5, 5, 5, 3, 5, 9, 1]})
    with pytest.raises(ValueError, match='where: vertex types .* are not an NB201 cell'):
        graph_to_arch(bad, 'where')


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo should-not-run',))


def test_refuses_arbitrary_pickles(tmp_path):
    torch.save({'acc': [_Evil()]}, tmp_path / 'evil.pt')
    with pytest.raises(ValueError, match='evil.pt: global .*system is not allowed'):
        load_pt(tmp_path / 'evil.pt')


def test_damaged_and_wrong_files(tmp_path, fake_igraph):
    _write_files(tmp_path, fake_igraph, 'g')
    data = (tmp_path / 'meta_train_tasks_predictor.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='cut.pt is not a readable MetaD2A'):
        load_pt(tmp_path / 'cut.pt')
    with pytest.raises(FileNotFoundError):
        load_pt(tmp_path / 'missing.pt')
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        with pytest.raises(ValueError, match="task 'metad2a-0' is not in"):
            import_pairs(db, tmp_path / 'meta_train_tasks_predictor.pt')
        torch.save({0: [torch.zeros(3, 16)]}, tmp_path / 'small.pt')
        import_bylabel(db, tmp_path / 'small.pt', 'other')
        with pytest.raises(ValueError, match="have dim 512, but the database's feature_dim is 16"):
            import_bylabel(db, tmp_path / 'imgnet32bylabel.pt', 'imgnet32')


def _pairs_db(tmp_path, fake_igraph):
    _write_files(tmp_path, fake_igraph, 'g')
    db = MetaDatabase.create(tmp_path / 'db.h5')
    import_bylabel(db, tmp_path / 'imgnet32bylabel.pt', 'imgnet32')
    import_task_list(db, tmp_path / 'meta_train_task_lst.pt')
    return db


@pytest.mark.parametrize('policy,acc', [('first', 80.2), ('mean', (80.2 + 60.82) / 2)])
def test_duplicate_pairs_are_counted_and_chosen(tmp_path, fake_igraph, policy, acc):
    # As in MetaD2A's predictor file: one (task, cell) pair twice, with other accuracies.
    pairs = {'acc': [80.2, 40.0, 60.82], 'task': [0, 0, 0], 'str': [A, B, A]}
    torch.save(pairs, tmp_path / 'dup.pt')
    with _pairs_db(tmp_path, fake_igraph) as db:
        with pytest.raises(ValueError, match=r'1 \(task, architecture\) pair listed more than '
                                             r'once, e.g. task 0 .* at entries \[0, 2\] with '
                                             'accuracies 80.20, 60.82: choose --duplicates'):
            import_pairs(db, tmp_path / 'dup.pt')
        assert import_pairs(db, tmp_path / 'dup.pt', duplicates=policy) == \
            {'added': 2, 'duplicates': 1, 'stored': 0}
        archs, accs = db.task_results('metad2a-0')
        assert dict(zip(archs, accs.tolist()))[A] == pytest.approx(acc, abs=1e-4)
        # The same file again adds nothing, and says so.
        assert import_pairs(db, tmp_path / 'dup.pt', duplicates=policy)['stored'] == 2
        # A second pairs file joins under its own recipe id.
        torch.save({'acc': [70.0], 'task': [1], 'str': [B]}, tmp_path / 'other.pt')
        with pytest.raises(ValueError, match="recipe 'metad2a' already exists with other fields "
                                             r'\(stored .*dup.pt.*, new .*other.pt.*\): store '
                                             'the new results under another recipe id'):
            import_pairs(db, tmp_path / 'other.pt')
        assert import_pairs(db, tmp_path / 'other.pt', recipe='metad2a-gen')['added'] == 1
        assert set(db.recipes()) == {'metad2a', 'metad2a-gen'}


def test_bad_task_lists_are_refused(tmp_path, fake_igraph):
    _write_files(tmp_path, fake_igraph, 'g')
    with MetaDatabase.create(tmp_path / 'db.h5') as db:
        # Tasks over a source whose features are not in the database.
        with pytest.raises(ValueError, match="over source 'imgnet32', which .* does not hold"):
            import_task_list(db, tmp_path / 'meta_train_task_lst.pt')
        import_bylabel(db, tmp_path / 'imgnet32bylabel.pt', 'imgnet32')
        torch.save([3, 1, 2], tmp_path / 'ints.pt')  # a plain list of integers
        with pytest.raises(ValueError, match='task 0 is 3, not a list of class ids'):
            import_task_list(db, tmp_path / 'ints.pt')
        torch.save([[1, 2], [4]], tmp_path / 'one.pt')
        with pytest.raises(ValueError, match='task 1 has 1 class id'):
            import_task_list(db, tmp_path / 'one.pt')
        torch.save([[1, 9]], tmp_path / 'far.pt')
        with pytest.raises(ValueError, match="task 0 uses class id 9, class '8' of source"):
            import_task_list(db, tmp_path / 'far.pt')
        assert db.tasks() == []


def test_a_text_file_is_not_a_torch_file(tmp_path):
    (tmp_path / 'notes.pt').write_text('acc,task\n1,2\n')
    with pytest.raises(ValueError, match=r"notes.pt is not a torch file \(it holds text"):
        load_pt(tmp_path / 'notes.pt')


def test_import_pair_split(tmp_path, fake_igraph):
    from d2a.pipeline.importers.metad2a import import_pair_split
    with _pairs_db(tmp_path, fake_igraph) as db:
        pairs = tmp_path / 'meta_train_tasks_predictor.pt'  # entries: (0, A), (0, B), (1, A)
        torch.save(torch.tensor([2, 0, 1]), tmp_path / 'idx.pt')
        assert import_pair_split(db, tmp_path / 'idx.pt', pairs, num_val=2) == 2
        assert db.pair_split('metad2a-val') == [('metad2a-1', A), ('metad2a-0', A)]
        torch.save(torch.tensor([2, 0, 0]), tmp_path / 'bad.pt')
        with pytest.raises(ValueError, match='3 indices are not a permutation of the 3 pairs'):
            import_pair_split(db, tmp_path / 'bad.pt', pairs, name='x')
        torch.save([[0, 1]], tmp_path / 'nested.pt')
        with pytest.raises(ValueError, match='expected a 1-D permutation'):
            import_pair_split(db, tmp_path / 'nested.pt', pairs, name='x')
        with pytest.raises(ValueError, match=r'num_val must be in \[1, 2\], got 3'):
            import_pair_split(db, tmp_path / 'idx.pt', pairs, name='x', num_val=3)
