import csv
import random
from pathlib import Path

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_adj

from d2a.graphs.nb201 import (
    NB201Space,
    NUM_ARCHS,
    OPS,
    arch_to_index,
    canonical_key,
    code_to_ops,
    format_arch,
    index_to_arch,
    ops_to_code,
    parse_arch,
)
from d2a.graphs.space import data_to_dense

ACCURACY_CSV = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data' / 'nb201' / 'accuracy.csv'
ALL_3X3 = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'


@pytest.fixture(scope='module')
def space():
    return NB201Space()


@pytest.fixture(scope='module')
def all_archs(space):
    return list(space.enumerate())


def test_enumerate_is_code_order(all_archs):
    assert len(all_archs) == NUM_ARCHS == 15625
    assert len(set(all_archs)) == NUM_ARCHS
    assert all_archs[0] == format_arch(['none'] * 6)
    assert all_archs[-1] == format_arch(['avg_pool_3x3'] * 6)


def test_round_trip_all_cells(space, all_archs):
    indices = set()
    for code, arch in enumerate(all_archs):
        ops = parse_arch(arch)
        assert format_arch(ops) == arch
        assert ops_to_code(ops) == code
        assert code_to_ops(code) == ops
        index = arch_to_index(arch)
        assert index_to_arch(index) == arch
        indices.add(index)
        data = space.to_data(arch)
        assert data.node_type.tolist() == [0] + [OPS.index(o) + 2 for o in ops] + [1]
        assert space.from_data(data) == arch
    assert indices == set(range(NUM_ARCHS))


def test_unique_count(all_archs):
    assert len({canonical_key(a) for a in all_archs}) == 6466


def test_canonical_key_merges_isomorphic_cells():
    # Node 1 is cut off by 'none' on its input: what leaves it does not matter.
    a = '|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|'
    b = '|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|'
    assert canonical_key(a) == canonical_key(b)
    assert canonical_key(a) != canonical_key(ALL_3X3)


def test_batching_keeps_graphs(space):
    archs = space.sample(5, random.Random(0))
    datas = [space.to_data(a) for a in archs]
    batch = Batch.from_data_list(datas)
    assert batch.num_graphs == 5
    for i, (arch, data) in enumerate(zip(archs, datas)):
        g = batch.get_example(i)
        assert torch.equal(g.node_type, data.node_type)
        assert torch.equal(g.edge_index, data.edge_index)
        assert space.from_data(g) == arch
    assert torch.equal(batch.node_type, torch.cat([d.node_type for d in datas]))


def test_dense_adjacency_strictly_upper_triangular(space):
    for arch in space.sample(20, random.Random(1)):
        data = space.to_data(arch)
        adj = to_dense_adj(data.edge_index, max_num_nodes=data.num_nodes)[0]
        assert not adj.tril().any()
        _, adj2 = data_to_dense(data)
        assert torch.equal(adj.long(), adj2)


def test_from_dense_batch_agrees_with_from_dense(space):
    rng = random.Random(2)
    gen = torch.Generator().manual_seed(2)
    types, adjs = [], []
    for arch in space.sample(40, rng):
        t, a = data_to_dense(space.to_data(arch))
        kind = rng.randrange(4)
        if kind == 1:  # a wrong type somewhere
            t[rng.randrange(8)] = rng.randrange(-1, 9)
        elif kind == 2:  # flip a random upper-triangular edge
            j, i = sorted(rng.sample(range(8), 2))
            a[j, i] = 1 - a[j, i]
        elif kind == 3:  # random types and edges
            t = torch.randint(0, 7, (8,), generator=gen)
            a = torch.randint(0, 2, (8, 8), generator=gen).triu(1)
        types.append(t)
        adjs.append(a)
    types, adjs = torch.stack(types), torch.stack(adjs)
    expected = []
    for t, a in zip(types, adjs):
        try:
            expected.append(space.from_dense(t.tolist(), a))
        except ValueError:
            expected.append(None)
    assert space.from_dense_batch(types, adjs) == expected
    assert any(e is None for e in expected) and any(e is not None for e in expected)


def test_to_networkx(space):
    g = space.to_networkx(ALL_3X3)
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == 8
    assert nx.is_directed_acyclic_graph(g)
    assert [g.nodes[i]['label'] for i in range(8)] == ['START'] + ['nor_conv_3x3'] * 6 + ['END']
    assert list(nx.topological_sort(g))[0] == 0


@pytest.mark.parametrize('arch, match', [
    ('|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|', '3 node groups'),
    ('nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|', "start and end with '|'"),
    ('|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|', "unknown op 'conv_5x5'"),
    ('|none~0|+|none~0|+|none~0|none~1|none~2|', 'node 2 needs 2 edge'),
    ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|', 'node 3 needs 3 edge'),
    ('|none~0|+|none~0|none-1|+|none~0|none~1|none~2|', "'none-1' is not 'op~input'"),
    ('|none~0|+|none~0|none~0|+|none~0|none~1|none~2|', 'must read node 1'),
    (42, 'must be a string'),
])
def test_bad_strings(arch, match):
    with pytest.raises(ValueError, match=match):
        parse_arch(arch)


def test_bad_op_lists():
    with pytest.raises(ValueError, match='has 6 ops, got 5'):
        format_arch(['none'] * 5)
    with pytest.raises(ValueError, match="unknown NB201 op 'conv'"):
        format_arch(['none'] * 5 + ['conv'])
    with pytest.raises(ValueError, match='code must be in'):
        code_to_ops(NUM_ARCHS)
    with pytest.raises(ValueError, match='index must be in'):
        index_to_arch(-1)


def _dense(space):
    return data_to_dense(space.to_data(ALL_3X3))


def test_bad_graph_backward_edge(space):
    t, a = _dense(space)
    a[5, 2] = 1  # together with 2 -> 5 this is a cycle
    with pytest.raises(ValueError, match='edge 5 -> 2 goes backwards'):
        space.from_dense(t.tolist(), a)


def test_bad_graph_wrong_type(space):
    t, a = _dense(space)
    t[3] = 1  # END in the middle
    with pytest.raises(ValueError, match='node 3 must be an op'):
        space.from_dense(t.tolist(), a)
    t[3], t[0] = 4, 3
    with pytest.raises(ValueError, match='node 0 must be START'):
        space.from_dense(t.tolist(), a)
    t[0], t[7] = 0, 2
    with pytest.raises(ValueError, match='node 7 must be END'):
        space.from_dense(t.tolist(), a)


def test_bad_graph_missing_and_extra_edge(space):
    t, a = _dense(space)
    a[0, 1] = 0
    with pytest.raises(ValueError, match='edge 0 -> 1 of the NB201 data flow is missing'):
        space.from_dense(t.tolist(), a)
    a[0, 1] = 1
    a[0, 7] = 1
    with pytest.raises(ValueError, match='edge 0 -> 7 is not part of the NB201 data flow'):
        space.from_dense(t.tolist(), a)


def test_bad_graph_node_count(space):
    t, a = _dense(space)
    with pytest.raises(ValueError, match='has 8 nodes, got 7'):
        space.from_dense(t.tolist()[:7], a[:7, :7])
    with pytest.raises(ValueError, match='adjacency must be 8x8'):
        space.from_dense(t.tolist(), a[:7, :7])


def test_check_reports_reason(space):
    data = space.to_data(ALL_3X3)
    assert space.is_valid(data)
    data.edge_index = data.edge_index[:, 1:]
    assert 'missing' in space.check(data)


@pytest.mark.skipif(not ACCURACY_CSV.exists(), reason='shared NB201 accuracy table not present')
def test_index_matches_accuracy_table():
    with open(ACCURACY_CSV, newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NUM_ARCHS
    for row in rows:
        assert index_to_arch(int(row['index'])) == row['arch']
