"""``python -m livekit_py``: the ``livekit-py`` command line (see :mod:`livekit_py.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
