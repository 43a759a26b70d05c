r"""``d2a spaces``: list the search spaces and their vocabularies."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('spaces', help='list the search spaces',
                       description='List the search spaces d2a knows, with their node-type '
                                   'vocabulary, size and an example architecture.')
    p.add_argument('--space', default=None, help='show only this space (e.g. nb201, mbv3)')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import random

    from d2a.graphs import get_space, list_spaces
    names = [args.space] if args.space else list_spaces()
    for name in names:
        space = get_space(name)
        try:
            size = f'{space.size:,}'
        except TypeError:
            size = 'infinite'
        example = space.sample(1, random.Random(0))[0]
        print(f'{space.name}  ({space.__class__.__name__})')
        print(f'  architectures : {size}')
        if hasattr(space, 'num_networks'):  # strings that differ only in skipped layers
            print(f'  networks      : {space.num_networks:,}')
        print(f'  max nodes     : {space.max_nodes}')
        print(f'  node types    : {space.num_node_types} '
              f"({', '.join(space.node_types[:8])}{', ...' if space.num_node_types > 8 else ''})")
        print(f'  example       : {example}')
        print()
    return 0
