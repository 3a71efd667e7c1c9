"""Joining a room: how long it takes, and what repeated joins leave behind."""

from __future__ import annotations

import asyncio
import contextlib
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


async def _join_and_hear(ctx: Context, single: bool) -> tuple[float, float]:
    """Seconds from ``Room()`` to connected and to the first frame of the peer's audio.

    ``single`` is ``RoomOptions.single_peer_connection``; the room is left afterwards.
    """
    rtc = ctx.rtc
    jwt = token(f"listener-{uuid.uuid4().hex[:8]}", ctx.room_name)
    heard = asyncio.get_running_loop().create_future()
    streams: list[Any] = []

    def on_track(track: Any, *_: Any) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or streams:
            return
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        streams.append(stream)

        async def first_frame() -> None:
            async for _ in stream:
                if not heard.done():
                    heard.set_result(time.perf_counter())
                return

        streams.append(asyncio.ensure_future(first_frame()))

    start = time.perf_counter()
    room: Any = rtc.Room()
    room.on("track_subscribed", on_track)
    try:
        options = rtc.RoomOptions(single_peer_connection=single)
        await asyncio.wait_for(room.connect(ctx.url, jwt, options), 30)
        connected = time.perf_counter() - start
        first_audio = await asyncio.wait_for(heard, 30) - start
        return connected, first_audio
    finally:
        for item in streams:
            if isinstance(item, asyncio.Future):
                item.cancel()
            else:
                with contextlib.suppress(Exception):
                    await item.aclose()
        await _disconnect(room)


async def connect_modes(ctx: Context) -> None:
    """One peer connection against two: time to connected and to the first remote audio."""
    res = ctx.result
    await ctx.start_peer("audio_pair", identity="speaker", freq=330.0)
    joins = ctx.pick(4, 12)
    for single in (True, False):  # warm-up, both paths
        await _join_and_hear(ctx, single)
    samples: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for i in range(2 * joins):
        if ctx.time_left() < 20:
            res.note(f"stopped after {i} of {2 * joins} joins: out of time")
            break
        single = i % 2 == 0  # alternating, so neither mode gets the quieter machine
        connected, first_audio = await _join_and_hear(ctx, single)
        samples[single][0].append(connected * 1e3)
        samples[single][1].append(first_audio * 1e3)
    for single, name in ((True, "single"), (False, "dual")):
        connect_ms, audio_ms = samples[single]
        if not connect_ms:
            continue
        what = "one peer connection" if single else "two peer connections"
        res.metric(
            f"{name}_connect_p50_ms",
            percentile(connect_ms, 50),
            "ms",
            label=f"Room() to connected, {what}, p50",
        )
        res.metric(
            f"{name}_first_audio_p50_ms",
            percentile(audio_ms, 50),
            "ms",
            label=f"Room() to the first remote audio frame, {what}, p50",
        )
        res.add_samples(f"{name}_connect_ms", connect_ms, "ms")
        res.add_samples(f"{name}_first_audio_ms", audio_ms, "ms")


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
        name="connect_modes",
        group="connect",
        title="Connect with one and with two peer connections",
        doc="`RoomOptions.single_peer_connection` True (one peer connection, `/rtc/v1`) "
        "against False (a publisher and a subscriber), alternating join by join in one "
        "process, in a room where a peer process of the same SDK publishes a 48 kHz "
        "tone: time from `Room()` to `connect` returning, and to the first decoded frame "
        "of the peer's audio (the track is subscribed automatically). p50 over 12 joins "
        "per mode (4 in quick mode), after one warm-up join per mode.",
        run=connect_modes,
        budget_quick=90,
        budget_full=180,
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
