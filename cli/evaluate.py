r"""``d2a evaluate``: look an architecture up in a benchmark table."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('evaluate', help="look up an architecture's benchmark accuracy",
                       description='Look an architecture up in a benchmark CSV table (index, '
                                   'arch, one accuracy column per dataset): its accuracy, rank '
                                   'and percentile.')
    p.add_argument('--arch', required=True, help='the architecture string')
    p.add_argument('--benchmark', required=True, metavar='CSV', help='the benchmark table')
    p.add_argument('--dataset', required=True, help='the accuracy column, e.g. cifar10')
    p.add_argument('--space', default='nb201', help='search space of the table (default: nb201)')
    p.add_argument('--json', action='store_true', help='print JSON instead of text')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from d2a.benchmark import evaluate_arch
    result = evaluate_arch(args.arch, args.benchmark, args.dataset, space=args.space)
    print(result.to_json() if args.json else result.to_table())
    return 0
