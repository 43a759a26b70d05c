r"""Merging meta-databases (labelling shards, imports) without duplicates."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from d2a.db.database import MetaDatabase
from d2a.utils.atomic import PathLike


def copy_into(dst: MetaDatabase, src: MetaDatabase) -> Dict[str, int]:
    r"""Adds everything of ``src`` that ``dst`` lacks: sources and class features, tasks,
    recipes, results, latencies and pair splits (architectures come with them).

    Raises :class:`ValueError` naming the field when the two disagree: another feature
    extractor or size, a task or recipe reused with another definition.

    Returns counts of what was added.
    """
    counts = {'classes': 0, 'tasks': 0, 'results': 0, 'latency': 0, 'pair_splits': 0}
    if src.feature_dim and src._has_features():
        if dst.feature_dim and dst._has_features() and (
                dst.feature_dim != src.feature_dim or
                dst.feature_extractor_name != src.feature_extractor_name):
            raise ValueError(f'cannot merge {src.path} into {dst.path}: features come from '
                             f'{src.feature_extractor_name!r} (dim {src.feature_dim}) and '
                             f'{dst.feature_extractor_name!r} (dim {dst.feature_dim})')
        if not dst.feature_extractor_name:
            attrs = src.attrs
            dst.set_feature_extractor(attrs['feature_extractor'], attrs['feature_dim'],
                                      attrs['feature_config'], src.extractor_weights())
    for s in src.sources():
        if s not in dst.sources():
            info = src.source_info(s)
            dst.add_source(s, info['spec'], info['mean'], info['std'], info['num_channels'])
        have = set(dst.classes(s))
        for c in src.classes(s):
            if c not in have:
                dst.add_class_features(s, c, src.features(s, c))
                counts['classes'] += 1
    before = len(dst.tasks())
    dst.add_tasks(src.tasks())
    counts['tasks'] = len(dst.tasks()) - before
    for rid, fields in src.recipes().items():
        dst.add_recipe(rid, fields)
    counts['results'] = dst.add_results(src.results().rows())
    for device in src.devices():
        lat = src.latency(device)
        spaces = dict(zip(src._column('archs', 'arch'), src._column('archs', 'space')))
        by_space: Dict[str, list] = {}
        for arch, ms in lat.items():
            by_space.setdefault(str(spaces[arch]), []).append((arch, ms))
        for space, pairs in by_space.items():
            counts['latency'] += dst.add_latency(device, [a for a, _ in pairs],
                                                 [m for _, m in pairs], space)
    for name in src.pair_splits():
        counts['pair_splits'] += bool(dst.add_pair_split(name, src.pair_split(name)))
    return counts


def merge(output: PathLike, inputs: Sequence[PathLike]) -> Dict[str, int]:
    r"""Combines ``inputs`` into ``output`` without duplicates (atomically).

    ``output`` may exist (its contents are kept) or not (it starts from the first input's
    metadata). Results are identified by (task, architecture, recipe, seed, epochs); the
    first copy wins.
    """
    output = Path(output)
    if not inputs:
        raise ValueError('merge needs at least one input database')
    totals = {'classes': 0, 'tasks': 0, 'results': 0, 'latency': 0, 'pair_splits': 0}
    if output.exists():
        dst = MetaDatabase.open(output, 'a')
    else:
        with MetaDatabase.open(inputs[0]) as first:
            attrs = first.attrs
        dst = MetaDatabase.create(output, attrs['feature_extractor'] or None,
                                  attrs['feature_dim'] or None, attrs['feature_config'],
                                  attrs['image_size'])
    with dst:
        for path in inputs:
            if Path(path).resolve() == output.resolve():
                continue
            with MetaDatabase.open(path) as src:
                for k, v in copy_into(dst, src).items():
                    totals[k] += v
    return totals
