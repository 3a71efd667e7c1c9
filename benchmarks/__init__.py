"""Side-by-side benchmarks of livekit-py and the official ``livekit.rtc`` SDK.

Run ``python -m benchmarks`` (or ``nox -s bench``) from the repository root. The
harness starts one local livekit-server, runs every scenario once per repeat for
each SDK, alternating, each run in its own worker process (``benchmarks.worker``),
and writes ``results/latest.json``, ``results/latest.md`` and PNG plots. Every
figure is reported next to the official SDK's figure from the same run, and as
their ratio, which survives a noisy machine far better than absolute numbers.

``docs/benchmarks.md`` explains each scenario.
"""

from __future__ import annotations

SDKS: tuple[str, ...] = ("ours", "official")
"""The two SDKs compared: ``ours`` is livekit_py.rtc, ``official`` is livekit.rtc."""
