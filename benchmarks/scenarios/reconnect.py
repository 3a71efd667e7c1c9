"""Surviving a dropped signal connection: how long until the room is back."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from benchmarks.common import Context, _disconnect, median, percentile, wait_for_participant
from benchmarks.scenarios import Scenario
from signaling import local_server
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


async def reconnect_after_server_restart(ctx: Context) -> None:
    """Kill this worker's own server, start it again 2 s later, time the way back."""
    res = ctx.result
    log_dir = ctx.stderr_dir or Path(tempfile.gettempdir())
    server = await asyncio.to_thread(
        local_server.start, log_dir / f"restart-{ctx.sdk}-{ctx.room_name}.log"
    )
    ctx.stack.callback(server.stop)
    room: Any = ctx.rtc.Room()
    await asyncio.wait_for(room.connect(server.url, ctx.token("restarted")), 30)
    ctx.stack.push_async_callback(_disconnect, room)
    await asyncio.sleep(1.0)
    after_back = []
    failures = 0
    for _ in range(ctx.pick(2, 5)):
        if ctx.time_left() < 50:
            res.note("stopped early: out of time")
            break
        waiting = asyncio.ensure_future(_reconnected(room, 45))
        await asyncio.sleep(0)
        # SIGKILL, as a crash; the server answers HTTP again when restart() returns
        await asyncio.to_thread(server.restart, 2.0, kill=True)
        back_at = time.perf_counter()
        try:
            after_back.append(max(0.0, await waiting - back_at) * 1e3)
        except asyncio.TimeoutError:
            failures += 1
            break
        await asyncio.sleep(2.0)
    if after_back:
        res.metric("p50_ms", median(after_back), "ms", label="server back to reconnected, p50")
        res.metric("max_ms", max(after_back), "ms", label="server back to reconnected, max")
        res.add_samples("back_ms", after_back, "ms")
    res.note(f"{len(after_back)} restarts survived, {failures} not reconnected within 45 s")


def _needs_netns(_rtc: Any) -> str | None:
    from signaling import netns

    return netns.unavailable_reason()


async def data_back_after_media_block(ctx: Context) -> None:
    """Block every media packet for 20 s (nftables in a network namespace), then time
    how long after the unblock a reliable packet sent after it gets through."""
    from signaling import netns

    res = ctx.result
    log_dir = ctx.stderr_dir or Path(tempfile.gettempdir())
    server = await asyncio.to_thread(
        netns.start_server, log_dir / f"netns-{ctx.sdk}-{ctx.room_name}.log"
    )
    ctx.stack.callback(server.stop)
    rooms: list[Any] = []
    for identity in ("sender", "receiver"):
        room = ctx.rtc.Room()
        await asyncio.wait_for(room.connect(server.url, ctx.token(identity)), 30)
        ctx.stack.push_async_callback(_disconnect, room)
        rooms.append(room)
    sender, receiver = rooms
    await wait_for_participant(receiver, "sender")
    # per room: when it last went reconnecting and when it last came back
    went: dict[int, float] = {}
    back: dict[int, float] = {}
    for index, room in enumerate(rooms):
        room.on("reconnecting", lambda i=index: went.__setitem__(i, time.perf_counter()))
        room.on("reconnected", lambda i=index: back.__setitem__(i, time.perf_counter()))
    received: list[int] = []
    receiver.on("data_received", lambda packet: received.append(int(packet.data)))
    counter = 0

    async def send_forever() -> None:
        nonlocal counter
        while True:
            counter += 1
            try:
                await sender.local_participant.publish_data(str(counter).encode(), reliable=True)
            except Exception:  # a send the SDK refused while it reconnects: keep counting
                pass
            await asyncio.sleep(0.05)

    sending = asyncio.ensure_future(send_forever())
    try:
        await asyncio.sleep(1.0)
        blocked_for = ctx.pick(20.0, 20.0)
        await asyncio.to_thread(server.block_media)
        await asyncio.sleep(blocked_for)
        await asyncio.to_thread(server.unblock_media)
        unblocked_at = time.perf_counter()
        first_after = counter + 1
        limit = 45.0
        while not any(n >= first_after for n in received):
            if time.perf_counter() - unblocked_at > limit:
                res.note(f"no packet sent after the unblock arrived within {limit:g} s")
                return
            await asyncio.sleep(0.01)
        back_ms = (time.perf_counter() - unblocked_at) * 1e3
        # every room that went reconnecting must be back (it may take longer than data)
        while any(back.get(i, 0.0) < at for i, at in went.items()):
            if time.perf_counter() - unblocked_at > limit:
                res.note(f"a room was still reconnecting {limit:g} s after the unblock")
                return
            await asyncio.sleep(0.01)
    finally:
        sending.cancel()
    sent_before = first_after - 1
    lost = len(set(range(1, sent_before + 1)) - set(received))
    if went:
        resumed_ms = max(max(0.0, back[i] - unblocked_at) for i in went) * 1e3
        res.metric("resumed_ms", resumed_ms, "ms", label="unblock to reconnected (both rooms)")
    res.note(f"{len(went)} of 2 rooms went reconnecting during the block")
    res.metric("back_ms", back_ms, "ms", label="unblock to data flowing again")
    res.note(
        f"media blocked {blocked_for:g} s; {sent_before} reliable packets sent before the "
        f"unblock, {lost} of them never arrived (the official SDK drops what it sends while "
        "it rejoins)"
    )


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
    Scenario(
        name="reconnect_server_restart",
        group="reconnect",
        title="Reconnect after a server restart",
        doc="The worker starts a livekit-server of its own, joins it, then kills it "
        "(SIGKILL) and starts it again on the same ports 2 s later; every session is "
        "gone, so the SDK must join again (and republish). The figure is the time from "
        "the restarted server answering HTTP to the room's `reconnected` event (0 if it "
        "was already back), over 5 restarts (2 in quick mode).",
        run=reconnect_after_server_restart,
        budget_quick=120,
        budget_full=240,
        max_repeats=3,
    ),
    Scenario(
        name="resume_media_block",
        group="reconnect",
        title="Back after 20 s of blocked media",
        doc="A livekit-server in a network namespace of the worker's own "
        "(`signaling/netns.py`; needs root), two participants of the SDK under test, the "
        "sender publishing a numbered reliable packet every 50 ms. Every media packet "
        "(UDP and the ICE/TCP port, not the signal port) is dropped by nftables for 20 s; "
        "the server gives up on the media path after about 15 s. The figures are the time "
        "from the unblock until every room that went reconnecting emitted `reconnected` "
        "and until a packet sent after it reaches the receiver; the note "
        "says how many packets sent before the unblock never arrived.",
        run=data_back_after_media_block,
        budget_quick=120,
        budget_full=150,
        requires=_needs_netns,
        max_repeats=3,
    ),
]
