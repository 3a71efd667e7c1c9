"""Joining a room: how long it takes, and what repeated joins leave behind."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

from benchmarks.common import (
    Context,
    _disconnect,
    open_fds,
    percentile,
    rss_mb,
    token,
)
from benchmarks.scenarios import Scenario


async def _join_once(ctx: Context, room_name: str) -> float:
    """Seconds from ``Room()`` to ``connect()`` returning; the room is left afterwards."""
    jwt = token(f"joiner-{uuid.uuid4().hex[:8]}", room_name)
    start = time.perf_counter()
    room: Any = ctx.rtc.Room()
    try:
        await asyncio.wait_for(room.connect(ctx.url, jwt), 30)
        return time.perf_counter() - start
    finally:
        await _disconnect(room)


async def connect_latency(ctx: Context) -> None:
    res = ctx.result
    joins = ctx.pick(5, 20)
    for _ in range(ctx.pick(1, 2)):  # warm-up: first-use costs of both the SDK and the server
        await _join_once(ctx, ctx.room_name)
    times = [await _join_once(ctx, ctx.room_name) * 1e3 for _ in range(joins)]
    res.metric("p50_ms", percentile(times, 50), "ms", label="Room() to connected, p50")
    res.metric("p95_ms", percentile(times, 95), "ms", label="Room() to connected, p95")
    res.add_samples("connect_ms", times, "ms")


async def connect_churn(ctx: Context) -> None:
    res = ctx.result
    cycles = ctx.pick(8, 200)
    fds_start = open_fds()  # the SDK is imported, nothing connected yet
    for _ in range(ctx.pick(2, 3)):  # warm-up: one-time allocations are not growth
        await _join_once(ctx, ctx.room_name)
    gc.collect()
    await asyncio.sleep(0.5)
    rss_before = rss_mb()
    rss_trace = []
    cycles_start = time.perf_counter()
    for i in range(cycles):
        if ctx.time_left() < 25:
            res.note(f"stopped after {i} of {cycles} cycles: out of time")
            cycles = i
            break
        await _join_once(ctx, ctx.room_name)
        rss_trace.append(rss_mb())
    cycle_ms = (time.perf_counter() - cycles_start) * 1e3 / max(cycles, 1)
    fds_peak = open_fds()
    # Native runtimes close sockets lazily (the official SDK's some seconds later): wait
    # until the descriptors are back where they were before the first join, or a limit.
    settle_start = time.monotonic()
    limit = min(ctx.pick(11.0, 20.0), max(ctx.time_left() - 5, 1.0))
    while True:
        gc.collect()
        await asyncio.sleep(0.5)
        fds_after = open_fds()
        if fds_after <= fds_start + 1 or time.monotonic() - settle_start > limit:
            break
    settled = time.monotonic() - settle_start
    rss_after = rss_mb()
    res.metric("cycle_ms", cycle_ms, "ms", label="one connect/disconnect cycle, mean")
    res.metric("rss_growth_mb", rss_after - rss_before, "MiB", label=f"RSS growth, {cycles} joins")
    res.metric("fds_after", fds_after, "fds", label="open file descriptors afterwards")
    res.metric("fds_peak", fds_peak, "fds", label="open file descriptors right after")
    res.add_samples("rss_mb", rss_trace, "MiB")
    res.note(
        f"{cycles} cycles; RSS {rss_before:.1f} -> {rss_after:.1f} MiB; file descriptors: "
        f"{fds_start} before the first join, {fds_peak} right after the last, "
        f"{fds_after} {settled:.1f} s later"
    )


SCENARIOS = [
    Scenario(
        name="connect_latency",
        group="connect",
        title="Connect latency",
        doc="Time from `Room()` to `await room.connect(...)` returning, against the local "
        "server, for a fresh participant each time (two untimed warm-up joins first); "
        "each join is left again before the next. p50 and p95 over 20 joins (5 in quick "
        "mode, after one warm-up join).",
        run=connect_latency,
        budget_quick=60,
        budget_full=120,
    ),
    Scenario(
        name="connect_churn",
        group="connect",
        title="Connect/disconnect churn",
        doc="200 cycles (8 in quick mode) of `Room()`, `connect`, `disconnect` in one "
        "process, after warm-up cycles. Reported: how much the resident set size grew "
        "over the cycles (after the warm-up, to after the last cycle and a garbage "
        "collection), and the number of open file descriptors, right after the last "
        "cycle and once they have settled: the count is polled for up to 20 s (11 s "
        "quick) until it is back to where it was before the first join, since the "
        "official SDK's runtime closes its sockets some seconds late. Leaked sockets, "
        "threads or event loops show here.",
        run=connect_churn,
        budget_quick=60,
        budget_full=480,  # livekit-py's occasional 5 s connect stalls add up over 200 joins
        max_repeats=1,
    ),
]
