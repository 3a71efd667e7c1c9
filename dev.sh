#!/usr/bin/env bash
# Run a nox session (see noxfile.py) with a nox installed into .nox-bootstrap on
# first use, so nothing is installed into the system Python.
#   ./dev.sh -s demo     the demo against a local livekit-server
#   ./dev.sh -s tests    the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .nox-bootstrap/bin/nox ]; then
    python3 -m venv .nox-bootstrap
    .nox-bootstrap/bin/python -m pip install --quiet --upgrade pip
    .nox-bootstrap/bin/python -m pip install --quiet "nox>=2024.4"
fi
exec .nox-bootstrap/bin/nox "$@"
