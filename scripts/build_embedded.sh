#!/usr/bin/env bash
# Builds d2a's embedded mini meta-database and checkpoints (docs/embedded.md) and installs
# them into the package (d2a/data/, d2a/checkpoints/). Resumable: after an interruption,
# run the same command again. Options are those of `d2a embedded --help`, e.g.
#   scripts/build_embedded.sh --workdir embedded-build --jobs 2
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m d2a.cli.main embedded "$@"
