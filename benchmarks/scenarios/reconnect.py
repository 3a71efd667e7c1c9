"""Surviving a dropped signal connection: how long until the room is back."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

from benchmarks.common import Context, _disconnect, median, percentile
from benchmarks.scenarios import Scenario
from signaling.tcp_proxy import TcpProxy


async def _reconnected(room: Any, timeout: float) -> float:
    """Seconds until ``room`` emits ``reconnected`` (raises TimeoutError past ``timeout``)."""
    done = asyncio.get_running_loop().create_future()

    def on_reconnected(*_: Any) -> None:
        if not done.done():
            done.set_result(time.perf_counter())

    room.on("reconnected", on_reconnected)
    try:
        return float(await asyncio.wait_for(done, timeout))
    finally:
        room.off("reconnected", on_reconnected)


async def resume_after_signal_cut(ctx: Context) -> None:
    """Cut the signal connection (a TCP proxy in front of the signal port) and time the resume."""
    res = ctx.result
    target = urlparse(ctx.url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 7880)
    await proxy.start()
    ctx.closing(proxy.close)
    room: Any = ctx.rtc.Room()
    await asyncio.wait_for(room.connect(proxy.url, ctx.token("resumer")), 30)
    ctx.stack.push_async_callback(_disconnect, room)
    await asyncio.sleep(1.0)  # settle: both peer connections up
    times = []
    failures = 0
    for _ in range(ctx.pick(3, 8)):
        if ctx.time_left() < 35:
            res.note("stopped early: out of time")
            break
        waiting = asyncio.ensure_future(_reconnected(room, 30))
        await asyncio.sleep(0)
        cut_at = time.perf_counter()
        proxy.cut()
        try:
            times.append((await waiting - cut_at) * 1e3)
        except asyncio.TimeoutError:
            failures += 1
            break
        await asyncio.sleep(1.0)  # let the server settle the resumed session
    if times:
        res.metric("p50_ms", median(times), "ms", label="signal cut to reconnected, p50")
        res.metric("max_ms", max(times), "ms", label="signal cut to reconnected, max")
        res.metric("p95_ms", percentile(times, 95), "ms", label="signal cut to reconnected, p95")
        res.add_samples("resume_ms", times, "ms")
    res.note(f"{len(times)} resumes, {failures} not reconnected within 30 s")


SCENARIOS = [
    Scenario(
        name="resume_signal_cut",
        group="reconnect",
        title="Resume after a signal cut",
        doc="The SDK under test joins through a TCP proxy in front of the server's signal "
        "port (`signaling/tcp_proxy.py`); the proxy then drops the connection (both sides "
        "see a reset socket) while the network stays up. The figure is the time from the "
        "cut to the room's `reconnected` event, 8 cuts (3 in quick mode) a second apart "
        "after each resume.",
        run=resume_after_signal_cut,
        budget_quick=90,
        budget_full=180,
    ),
]
