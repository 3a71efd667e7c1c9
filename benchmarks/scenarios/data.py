"""Data through the server: reliable and lossy packets, RPC, a file as a byte stream."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

from benchmarks.common import Context, median, percentile, spawn, wait_for_participant
from benchmarks.scenarios import Scenario


async def _pair(ctx: Context, a: str, b: str) -> tuple[Any, Any]:
    first = await ctx.connect(a)
    second = await ctx.connect(b)
    await wait_for_participant(first, b)
    await wait_for_participant(second, a)
    return first, second


async def data_reliable(ctx: Context) -> None:
    res = ctx.result
    sender, receiver = await _pair(ctx, "sender", "receiver")
    size = 15_000  # under the 15 KiB LiveKit recommends for one reliable packet
    got = {"bytes": 0, "last": 0.0}
    enough = asyncio.Event()
    target = {"bytes": 0}

    def on_data(packet: Any) -> None:
        if packet.topic == "bulk":
            got["bytes"] += len(packet.data)
            got["last"] = time.perf_counter()
            if got["bytes"] >= target["bytes"]:
                enough.set()

    receiver.on("data_received", on_data)

    async def burst(count: int) -> tuple[float, float]:
        """Send ``count`` packets back to back; (seconds to send, seconds until all arrived)."""
        got["bytes"] = 0
        target["bytes"] = count * size
        enough.clear()
        payload = os.urandom(size)
        start = time.perf_counter()
        for _ in range(count):
            await sender.local_participant.publish_data(payload, reliable=True, topic="bulk")
        sent = time.perf_counter()
        await asyncio.wait_for(enough.wait(), max(10.0, ctx.time_left() - 5))
        return sent - start, got["last"] - start

    await burst(20)  # warm-up: SCTP windows open
    total = ctx.pick(200, 700)  # 3 MB quick, 10.5 MB full
    runs = [await burst(total) for _ in range(ctx.pick(1, 2))]
    delivered = median([r[1] for r in runs])
    res.metric(
        "mb_per_s",
        total * size / delivered / 1e6,
        "MB/s",
        better="higher",
        label=f"reliable, {size} B packets",
    )
    res.note(f"{total * size / 1e6:.0f} MB per run; send loop {median([r[0] for r in runs]):.2f}s")


async def data_lossy(ctx: Context) -> None:
    res = ctx.result
    sender, receiver = await _pair(ctx, "sender", "receiver")
    got = {"n": 0, "last": 0.0}

    def on_data(packet: Any) -> None:
        if packet.topic == "lossy":
            got["n"] += 1
            got["last"] = time.perf_counter()

    receiver.on("data_received", on_data)
    payload = os.urandom(200)

    async def blast(seconds: float) -> tuple[int, int, float]:
        got["n"] = 0
        sent = 0
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            await sender.local_participant.publish_data(payload, reliable=False, topic="lossy")
            sent += 1
            if sent % 10 == 0:
                await asyncio.sleep(0)  # let the receiver and the transports run
        await asyncio.sleep(0.5)  # stragglers
        return sent, int(got["n"]), max(got["last"], end) - start

    await blast(0.2)
    sent, received, elapsed = await blast(ctx.pick(1.5, 5.0))
    res.metric(
        "received_pps",
        received / elapsed,
        "packets/s",
        better="higher",
        label="lossy 200 B packets received",
    )
    res.metric(
        "delivered_ratio",
        received / max(sent, 1),
        "fraction",
        better="higher",
        label="of the lossy packets sent",
    )
    res.note(f"sent {sent} packets, received {received}")


async def rpc(ctx: Context) -> None:
    res = ctx.result
    caller, responder = await _pair(ctx, "caller", "responder")

    async def echo(data: Any) -> str:
        return str(data.payload)

    responder.local_participant.register_rpc_method("echo", echo)

    async def call() -> float:
        start = time.perf_counter()
        answer = await caller.local_participant.perform_rpc(
            destination_identity="responder", method="echo", payload="x" * 64, response_timeout=10
        )
        elapsed = time.perf_counter() - start
        if answer != "x" * 64:
            raise RuntimeError(f"unexpected RPC answer {answer!r}")
        return elapsed * 1e3

    for _ in range(3):
        await call()
    times = [await call() for _ in range(ctx.pick(20, 100))]
    res.metric("p50_ms", percentile(times, 50), "ms", label="RPC round trip p50")
    res.metric("p95_ms", percentile(times, 95), "ms", label="RPC round trip p95")
    res.add_samples("rtt_ms", times, "ms")


async def send_file(ctx: Context) -> None:
    res = ctx.result
    sender, receiver = await _pair(ctx, "sender", "receiver")
    done: asyncio.Queue[tuple[int, float]] = asyncio.Queue()

    async def read(reader: Any) -> None:
        count = 0
        async for chunk in reader:
            count += len(chunk)
        await done.put((count, time.perf_counter()))

    def on_stream(reader: Any, participant_identity: str) -> None:
        spawn(ctx, read(reader))

    receiver.register_byte_stream_handler("file", on_stream)
    folder = tempfile.mkdtemp(prefix="bench-file-")
    ctx.closing(lambda: asyncio.to_thread(_remove_tree, folder))

    def make(name: str, size: int) -> str:
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))  # incompressible
        return path

    async def transfer(path: str, size: int) -> float:
        start = time.perf_counter()
        await sender.local_participant.send_file(path, topic="file")
        count, finished = await asyncio.wait_for(done.get(), max(10.0, ctx.time_left() - 5))
        if count != size:
            raise RuntimeError(f"received {count} of {size} bytes")
        return finished - start

    await transfer(make("warmup.bin", 200_000), 200_000)
    size = 5 * 1024 * 1024
    big = make("five.bin", size)
    times = [await transfer(big, size) for _ in range(ctx.pick(1, 3))]
    res.metric("seconds", median(times), "s", label="5 MiB file, sent to received")
    res.metric("mb_per_s", size / median(times) / 1e6, "MB/s", better="higher", label="goodput")


def _remove_tree(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


SCENARIOS = [
    Scenario(
        name="data_reliable",
        group="data",
        title="Reliable data throughput",
        doc="Two participants of the SDK under test in one process. The sender awaits "
        "`publish_data(..., reliable=True)` for 15,000-byte packets back to back, 10.5 MB "
        "twice (3 MB once in quick mode) after a warm-up burst. The figure is the bytes "
        "over the time from the first send until the receiver's `data_received` has seen "
        "the last byte (median of the two).",
        run=data_reliable,
        budget_quick=60,
        budget_full=120,
    ),
    Scenario(
        name="data_lossy",
        group="data",
        title="Lossy data rate",
        doc="The sender awaits `publish_data(..., reliable=False)` for 200-byte packets as "
        "fast as it can for 5 s (1.5 s quick), yielding to the event loop every 10 "
        "packets; the figure is packets received per second (and which fraction of those "
        "sent arrived). Lossy packets may be dropped when the channel is congested.",
        run=data_lossy,
        budget_quick=45,
        budget_full=60,
    ),
    Scenario(
        name="rpc",
        group="data",
        title="RPC round trip",
        doc="`perform_rpc` of a 64-byte payload to an `echo` method registered by the other "
        "participant (same process, same SDK), one call at a time; p50 and p95 of 100 "
        "calls (20 quick) after three warm-up calls.",
        run=rpc,
        budget_quick=45,
        budget_full=60,
    ),
    Scenario(
        name="send_file",
        group="data",
        title="5 MiB send_file",
        doc="`send_file` of a 5 MiB file of random (incompressible) bytes on a topic the "
        "receiver handles with `register_byte_stream_handler`, reading every chunk; time "
        "from the call until the receiver has read the last byte, median of 3 (1 quick) "
        "after a 200 kB warm-up. The official SDK tries compression by default "
        "(`compress=True`), which random bytes defeat.",
        run=send_file,
        budget_quick=60,
        budget_full=120,
    ),
]
