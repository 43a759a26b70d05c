r"""``d2a embedded``: build the shipped mini meta-database and checkpoints end to end."""
from __future__ import annotations

import argparse
import sys

from d2a.cli.main import CLIError

def add_parser(sub: argparse._SubParsersAction) -> None:
    # The build's module imports torch only when a stage runs.
    from d2a.pipeline.embedded import SCALES, STAGES
    p = sub.add_parser(
        'embedded', help='build the shipped mini meta-database and checkpoints',
        description='Build the embedded mini meta-database and checkpoints (docs/embedded.md). '
                    'Rerun the same command after an interruption to continue.')
    p.add_argument('--workdir', default='embedded-build', help='folder of the build')
    p.add_argument('--scale', default='full', choices=sorted(SCALES),
                   help='full: the shipped NB201 build; mbv3: the shipped MobileNetV3 build; '
                        'tiny, tiny-mbv3: quick tests of the pipeline')
    p.add_argument('--jobs', type=int, default=2, help='processes for labelling and training')
    p.add_argument('--device', default=None,
                   help='torch device (default: CUDA when available, else CPU)')
    p.add_argument('--install-dir', default=None,
                   help='copy the results there (default: the package, full scale only)')
    p.add_argument('--no-install', action='store_true', help='skip the install stage')
    p.add_argument('--stages', nargs='+', default=None, choices=STAGES,
                   help='run only these stages (default: every unfinished one)')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from d2a.pipeline.embedded import Build
    build = Build(args.workdir, args.scale, args.jobs, args.device, args.install_dir,
                  not args.no_install, progress=sys.stderr.isatty())
    try:
        if args.worker:
            import torch
            torch.set_num_threads(1)
            build.run_worker(args.worker)
        else:
            build.run(args.stages)
    except RuntimeError as e:  # a failed worker: its log says why
        raise CLIError(str(e)) from None
    return 0
