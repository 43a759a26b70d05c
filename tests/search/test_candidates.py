import random

from d2a.graphs import get_space
from d2a.graphs.nb201 import format_arch
from d2a.search import collect_candidates

SPACE = get_space('nb201')


def test_collect_candidates_dedupes_and_filters():
    # Two strings of one canonical class, an invalid graph, and distinct cells.
    iso_a = format_arch(['nor_conv_3x3', 'none', 'none', 'skip_connect', 'none', 'none'])
    iso_b = format_arch(['nor_conv_3x3', 'none', 'avg_pool_3x3', 'skip_connect', 'none', 'none'])
    assert SPACE.canonical_key(iso_a) == SPACE.canonical_key(iso_b)
    pool = SPACE.sample(50, random.Random(0))
    stream = iter([[iso_a, None, iso_b]] + [pool[i:i + 5] for i in range(0, 50, 5)])
    archs, stats = collect_candidates(lambda n: next(stream), SPACE, num_candidates=8,
                                      batch_size=5)
    assert len(archs) == 8 and archs[0] == iso_a
    assert len({SPACE.canonical_key(a) for a in archs}) == 8
    assert stats.num_valid == stats.num_generated - 1


def test_collect_candidates_gives_up_without_progress():
    arch = SPACE.sample(1, random.Random(0))[0]
    archs, stats = collect_candidates(lambda n: [arch] * n, SPACE, 5, batch_size=4, patience=3)
    assert archs == [arch] and stats.stopped_early and stats.num_batches == 4
