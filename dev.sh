#!/usr/bin/env bash
# Run a nox session (see noxfile.py) with a nox installed into .nox-bootstrap on
# first use, so nothing is installed into the system Python.
#   ./dev.sh -s demo     the demo against a local livekit-server
#   ./dev.sh -s tests    the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .nox-bootstrap/bin/nox ] || [ ! -x .nox-bootstrap/bin/uv ]; then
    [ -x .nox-bootstrap/bin/python ] || python3 -m venv .nox-bootstrap
    .nox-bootstrap/bin/python -m pip install --quiet --upgrade pip
    # uv: the packaging sessions (unit on each Python, lowest, wheels) resolve with it
    .nox-bootstrap/bin/python -m pip install --quiet "nox>=2024.4" "uv>=0.5"
fi
exec .nox-bootstrap/bin/nox "$@"
