import math

import numpy as np
import pytest
import torch

from d2a.graphs import DAGDecoder, archs_to_dense, dense_to_batch, get_space

@pytest.fixture
def decoder(bench):
    return bench('metad2a_decoder')


@pytest.fixture
def predictors(bench):
    return bench('predictor_nb201')


ZERO = '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'


@pytest.mark.parametrize('constrained', [True, False])
def test_one_at_a_time_decoder_matches_batched_decoder(decoder, constrained):
    torch.manual_seed(0)
    dec = DAGDecoder.from_space('nb201', in_channels=8, hidden_channels=8,
                                constrained=constrained).eval()
    z = torch.randn(6, 8) * 3
    node_type, adj = dec.sample(z, greedy=True)
    for b in range(6):
        types, a = decoder.to_dense(*decoder.decode_one(dec, z[b], greedy=True))
        assert types == node_type[b].tolist()
        assert torch.equal(a, adj[b])
    types, preds = decoder.decode_one(dec, z[0], generator=torch.Generator().manual_seed(0))
    assert types[0] == 0 and types[-1] == 1
    assert all(j < i for i, ps in enumerate(preds) for j in ps)


def test_rank_one_at_a_time_matches_batched_predictor(decoder):
    from d2a.predictor import MetaPredictor
    torch.manual_seed(0)
    space = get_space('nb201')
    pred = MetaPredictor(in_channels=4, hidden_channels=8, graph_hidden_channels=8,
                         out_channels=8, mlp_channels=8, space=space, num_heads=2).eval()
    archs = [ZERO, space.sample(1)[0]]
    x = torch.randn(3, 5, 4)
    got = decoder.rank_one_at_a_time(pred, space, archs, [x, x])
    with torch.no_grad():
        want = pred(x, dense_to_batch(*archs_to_dense(space, archs)))
    assert got == pytest.approx(want.tolist(), abs=1e-5)


def test_one_hot(predictors):
    x = predictors.one_hot(
        [ZERO, '|skip_connect~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|'])
    assert x.shape == (2, 30) and (x.sum(1) == 6).all()
    assert x[0, 0] == 1 and x[1, 1] == 1 and x[1, 29] == 1


def test_load_targets_errors(predictors, tmp_path):
    with pytest.raises(FileNotFoundError, match='--data'):
        predictors.load_targets(tmp_path / 'missing', ['cifar10'])
    (tmp_path / 'accuracy.csv').write_text(f'index,arch,cifar10\n0,{ZERO},10.0\n')
    (tmp_path / 'latency_ms.csv').write_text(f'index,arch,pixel3\n0,{ZERO},1.5\n')
    with pytest.raises(ValueError, match="unknown target 'gpu'"):
        predictors.load_targets(tmp_path, ['gpu'])
    with pytest.raises(ValueError, match='each of the 15625'):
        predictors.load_targets(tmp_path, ['cifar10', 'pixel3'])
    (tmp_path / 'accuracy.csv').write_text(f'index,arch,cifar10\n0,{ZERO},oops\n')
    with pytest.raises(ValueError, match="line 2: column 'cifar10' holds 'oops'"):
        predictors.load_targets(tmp_path, ['cifar10'])


def test_summary_and_verdicts(predictors):
    recs = [{'target': 't', 'size': 10, 'seed': s, 'method': m, 'spearman': v + s / 100,
             'kendall': v / 2, 'train_s': 1.0}
            for s in range(2) for m, v in [('gin', 0.8), ('dag_gru', 0.7), ('rf', 0.75)]]
    table = predictors.summarize(recs)
    assert 'd2a GIN' in table and '0.805 ± 0.007' in table
    (line,) = predictors.verdicts(recs)
    assert 'd2a GIN, 0.805, is ahead of the best baseline, random forest (one-hot), 0.755' in line
    assert math.isclose(np.mean([r['spearman'] for r in recs if r['method'] == 'gin']), 0.805)


def test_search_speed_workers_and_table(bench, tmp_path):
    search_speed = bench('search_speed')
    args = search_speed.parse_args(['--sizes', '4', '--repeats', '1', '--baseline-repeats', '1',
                                    '--classes', '3', '--images', '5', '--batch-size', '8',
                                    '--no-cuda'])
    torch.manual_seed(0)
    paths = search_speed.prepare(tmp_path, args)
    ours = search_speed.work_d2a(paths, 4, args, 'cpu')
    base = search_speed.work_baseline(paths, 4, args)
    for out in (ours, base):
        (rep,) = out['reps']
        assert rep['num_evaluated'] == 4 and rep['num_generated'] >= 4
        assert set(rep['stages']) <= set(search_speed.STAGES) and rep['total'] > 0
    rows = search_speed.search_rows([{'method': 'd2a', 'n': 4, 'device': 'cpu', **ours},
                                     {'method': 'metad2a', 'n': 4, 'device': 'cpu', **base}])
    assert rows[0][0] == 'd2a' and rows[0][10].endswith('x') and rows[1][10] == '-'
    assert rows[0][6].endswith('%') and rows[0][7].endswith('%') and rows[1][6] == '-'


@pytest.mark.parametrize('ours,word', [(0.80, 'ahead of'), (0.752, 'level with'),
                                       (0.70, 'behind')])
def test_verdict_words(predictors, ours, word):
    recs = [{'target': 't', 'size': 10, 'seed': 0, 'method': 'gin', 'spearman': ours},
            {'target': 't', 'size': 10, 'seed': 0, 'method': 'gp', 'spearman': 0.75}]
    (line,) = predictors.verdicts(recs)
    assert f'is {word} the best baseline' in line


def test_startup_bench_times_processes_and_judges_targets(bench):
    import sys
    startup = bench('startup')
    wall, rss = startup.run_once([sys.executable, '-c', 'pass'])
    assert wall > 0 and rss > 1
    with pytest.raises(RuntimeError, match='failed'):
        startup.run_once([sys.executable, '-c', 'raise SystemExit(3)'])
    rows = {startup.BASELINE: {'median_s': 2.0, 'min_s': 2.0, 'max_s': 2.0, 'ratio': 1.0,
                               'peak_rss_mib': 300.0},
            'd2a --help': {'median_s': 0.2, 'min_s': 0.2, 'max_s': 0.3, 'ratio': 0.1,
                           'peak_rss_mib': 20.0},
            'd2a search --dataset digits': {'median_s': 1.9, 'min_s': 1.8, 'max_s': 2.1,
                                            'ratio': 0.95, 'peak_rss_mib': 350.0}}
    result = {'repeats': 3, 'cpu_count': 2, 'load_average_before': [0.1],
              'load_average_after': [0.2], 'rows': rows}
    help_line, search_line = startup.verdicts(result)
    assert 'd2a --help: 0.20 s (target 0.3 s on idle cores: met)' in help_line
    assert '0.95x the baseline (target 0.87x: not met)' in search_line
    assert 'peak RSS 367 MB (target 400 MB: met)' in search_line
    assert '| d2a --help | 0.200 |' in startup.format_result(result, markdown=True)


def test_refine_bench_on_a_lookup_table(bench, tiny, tmp_path, tiny_run):
    import json
    import shutil

    from d2a.db import MetaDatabase, ResultRow
    from d2a.graphs import get_space
    refine_bench = bench('refine')
    db_path = tmp_path / 'tiny.h5'
    shutil.copy(tiny_run['db'], db_path)
    archs = get_space('nb201').sample(10, __import__('random').Random(3))
    with MetaDatabase.open(db_path, 'a') as db:
        archs += db.task_results('t0')[0][:2]  # labelled on every meta-training task
        # two seeds of the first cell: the lookup is their mean
        db.add_results([ResultRow('test0', a, 30.0 + 5.0 * a.count('conv') + i % 3, 'quick')
                        for i, a in enumerate(archs)]
                       + [ResultRow('test0', archs[0], 90.0, 'quick', seed=1)])
    with MetaDatabase.open(db_path) as db:
        table = refine_bench.task_pool(db, 'test0', 'quick', get_space('nb201'))
    assert table[archs[0]] == (30.0 + 5.0 * archs[0].count('conv') + 90.0) / 2
    out = tmp_path / 'r.json'
    assert refine_bench.main(['--db', str(db_path), '--checkpoint', str(tiny_run['ckpt']),
                              '--budgets', '2', '--seeds', '0', '1', '--naswot-seeds', '0',
                              '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    s = result['summary']
    assert s['d2a+refine@2']['trainings'] == 2 and s['random@2']['n'] == 2
    assert 'transfer+random@2' in s and 'naswot@2' not in s
    rows = [r for r in result['rows'] if r['method'] == 'd2a+refine' and r['K'] == 10]
    # 10 of 12 cells: the best of them is at worst the third best
    assert all(r['trainings'] == 10 and r['percentile'] >= 75 for r in rows)
    assert set(s['targets']) == {'K=2'}


def test_guidance_bench_compares_strengths(bench, tiny_run, tmp_path):
    import json
    out = tmp_path / 'g.json'
    assert bench('guidance').main(['--db', str(tiny_run['db']), '--checkpoint',
                                   str(tiny_run['ckpt']), '--strengths', '0', '2',
                                   '--num-candidates', '5', '--seeds', '0', '--json',
                                   str(out)]) == 0
    s = json.loads(out.read_text())['summary']
    assert set(s) == {'0', '2'} and all(v['candidates'] == 5 for v in s.values())
    assert s['2']['generated'] >= 4 * 5  # oversampled
    assert all(0 < v['validity'] <= 1 and 0 < v['uniqueness'] <= 1 for v in s.values())
