"""The ratio each tracked row of the table should reach, and, where a run fell short, why.

A target is a factor ``limit``: the row meets it when livekit-py is at most ``limit``
times worse than the official SDK, i.e. ``ours / official <= limit`` for a metric where
lower is better and ``official / ours <= limit`` where higher is better. So 1.0 means
"on par or ahead" in either direction. The targets are those of the performance issue
(17) and the import-cost figures of the packaging issue (16).

``behind`` says, for a row a run left short of its target, what holds it back and what
would reach the target, from measurements. It is written by whoever commits that run's
results (``--from-json`` re-renders the table with it without running anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """The factor one row (``scenario``, ``metric``) should stay within."""

    scenario: str
    metric: str
    limit: float
    behind: str = ""


TARGETS: tuple[Target, ...] = (
    Target("connect_latency", "p50_ms", 1.0),
    Target("connect_churn", "cycle_ms", 1.0),
    Target("connect_churn", "fds_after", 1.0),
    Target("memory", "rss_imported_mb", 1.5),
    Target("memory", "rss_mb", 1.5),
    Target("local_import_cost", "import_cpu_ms", 1.5),
    Target("local_import_cost", "import_rss_mb", 1.5),
    Target("video_vp8", "publish_cpu_s_per_min", 1.0),
    Target("video_h264", "publish_cpu_s_per_min", 1.3),
    Target("data_reliable", "mb_per_s", 1.0),
    Target("data_lossy", "received_pps", 1.0),
    Target("data_lossy", "delivered_ratio", 1.0),
    Target("rpc", "p50_ms", 1.0),
    Target("send_file", "seconds", 1.0),
    Target(
        "local_video_convert",
        "rgba_to_i420_ms",
        1.0,
        behind=(
            "bit-exact with libyuv in numpy. A kernel on whole pixels (Y from uint32 words,"
            " U and V from 16-bit lanes of uint64 words) halved the CPU of it on 2026-12-01"
            " (6.2 -> 3.2 ms in one process), but numpy still makes about 18 passes over the"
            " picture (0.1-0.25 ms each, about 0.35 ms of it call overhead) where libyuv makes"
            " one SIMD pass. libswscale is off by one on 8.5 % of Y samples and 44 % of U/V,"
            " so it is not used. A compiled kernel (a C extension or numba, neither a"
            " dependency today) would reach par; a second band of rows on a thread, used"
            " when a core is idle, gives up to 1.45x"
        ),
    ),
    Target("local_video_convert", "i420_to_rgba_ms", 1.0),
    Target(
        "local_apm",
        "us_per_10ms",
        2.0,
        behind=(
            "the echo canceller is about three quarters of the time, and most of that is the"
            " fixed cost of about a hundred small numpy calls per 10 ms block, not arithmetic."
            " The work of 2026-12-01 cut the module from 1.14 ms to 0.59-0.79 ms per frame with"
            " bit-identical output. Running the canceller on the 16 kHz band only (as WebRTC's"
            " AEC3) saved a quarter of its time but cost up to 8 dB of ERLE, so it was not"
            " kept. A compiled kernel for the per-block work (numba or a C extension) is what"
            " would reach 2x"
        ),
    ),
)

_BY_ROW = {(t.scenario, t.metric): t for t in TARGETS}


def target_for(scenario: str, metric: str) -> Target | None:
    """The target of a row, or None for rows that are reported without one."""
    return _BY_ROW.get((scenario, metric))


def worse_by(metric: dict[str, Any]) -> float | None:
    """How many times worse livekit-py is on this row (below 1: better), or None."""
    ratio = metric.get("ratio")
    if ratio is None or ratio <= 0:
        return None
    return float(ratio) if metric["better"] == "lower" else 1.0 / float(ratio)


def meets(target: Target, metric: dict[str, Any]) -> bool | None:
    """Whether the row is within its target; None when the run has no ratio for it."""
    factor = worse_by(metric)
    if factor is None:
        return None
    # the table shows three significant digits: a row printed at the limit meets it
    return round(factor, 3) <= target.limit
