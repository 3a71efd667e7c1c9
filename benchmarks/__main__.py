"""``python -m benchmarks [--quick] [--scenario NAME ...] [--out DIR] [--repeats N]``.

See ``python -m benchmarks --help`` and docs/benchmarks.md.
"""

from __future__ import annotations

import sys

from benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main())
