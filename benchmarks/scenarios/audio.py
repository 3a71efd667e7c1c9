"""Audio through the server: latency, CPU, how many tracks one process can take, memory."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.common import (
    Context,
    cpu_seconds,
    drain_audio,
    percentile,
    publish_audio,
    rss_mb,
    spawn,
    wait_remote_track,
)
from benchmarks.scenarios import Scenario

RATE = 48000
STEP = RATE // 100  # 10 ms


# -- mouth to ear -----------------------------------------------------------------------------


async def audio_latency(ctx: Context) -> None:
    """An impulse captured into an AudioSource until it is seen in the peer's AudioStream.

    Both participants are in this process (one clock). The source is fed in real time
    by a wall-clock pacer, so its queue stays empty and the figure is the SDKs' and the
    server's latency, not a backlog.
    """
    rtc, res = ctx.rtc, ctx.result
    speaker = await ctx.connect("speaker")
    listener = await ctx.connect("listener")
    source = rtc.AudioSource(RATE, 1)
    ctx.closing(source.aclose)
    track = rtc.LocalAudioTrack.create_audio_track("impulses", source)

    rng = np.random.default_rng(5)
    quiet = [  # a faint noise floor, so that nothing treats the line as silent
        rtc.AudioFrame(rng.normal(0, 30, STEP).astype(np.int16).tobytes(), RATE, 1, STEP)
        for _ in range(20)
    ]
    t = np.arange(STEP) / RATE
    burst_pcm = (0.8 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    period_s = 0.4
    period_frames = int(period_s * 100)
    wanted = ctx.pick(8, 40)
    emitted: list[float] = []
    detected: list[float] = []
    armed = asyncio.Event()
    all_sent = asyncio.Event()

    async def speak() -> None:
        start = time.perf_counter()
        k = 0
        next_burst = -1
        while True:
            delay = start + k * 0.01 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if armed.is_set() and next_burst < 0:
                next_burst = k
            if k == next_burst and len(emitted) < wanted:
                frame = rtc.AudioFrame(burst_pcm.tobytes(), RATE, 1, STEP)
                emitted.append(time.perf_counter())
                next_burst = k + period_frames
                if len(emitted) == wanted:
                    all_sent.set()
            else:
                frame = quiet[k % len(quiet)]
            await source.capture_frame(frame)
            k += 1

    async def listen(stream: Any) -> None:
        last = 0.0
        async for event in stream:
            now = time.perf_counter()
            x = np.frombuffer(event.frame.data, dtype=np.int16)
            if armed.is_set() and x.size and int(np.abs(x).max()) > 8000 and now - last > 0.25:
                detected.append(now)
                last = now

    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await asyncio.wait_for(speaker.local_participant.publish_track(track, options), 20)
    spawn(ctx, speak())
    remote = await wait_remote_track(listener, rtc.TrackKind.KIND_AUDIO, "speaker")
    stream = rtc.AudioStream(remote, sample_rate=RATE, num_channels=1)
    ctx.closing(stream.aclose)
    spawn(ctx, listen(stream))
    await asyncio.sleep(ctx.pick(1.0, 3.0))  # jitter buffers settle
    armed.set()
    await asyncio.wait_for(all_sent.wait(), wanted * period_s + 10)
    await asyncio.sleep(1.0)  # the last burst's way through

    latencies = []
    for d in detected:
        before = [e for e in emitted if e <= d]
        if before and d - before[-1] < period_s:
            latencies.append((d - before[-1]) * 1e3)
    if not latencies:
        raise RuntimeError(f"no impulse detected ({len(emitted)} sent)")
    res.metric("p50_ms", percentile(latencies, 50), "ms", label="mouth to ear, p50")
    res.metric("p95_ms", percentile(latencies, 95), "ms", label="mouth to ear, p95")
    res.add_samples("latency_ms", latencies, "ms")
    if len(latencies) < len(emitted):
        res.note(f"{len(latencies)} of {len(emitted)} impulses detected")


# -- one voice-agent-like process: one track each way -----------------------------------------


@dataclass
class _Call:
    room: Any
    heard: dict[str, int] = field(default_factory=lambda: {"samples": 0})


async def _one_track_each_way(ctx: Context) -> _Call:
    """This process publishes one 48 kHz track and listens to one from a peer process."""
    rtc = ctx.rtc
    room = await ctx.connect("agent")
    peer = await ctx.start_peer("audio_pair", identity="caller", freq=330.0)
    await publish_audio(ctx, room, "agent-voice", 440.0)
    remote = await wait_remote_track(room, rtc.TrackKind.KIND_AUDIO, "caller")
    stream = rtc.AudioStream(remote, sample_rate=RATE, num_channels=1)
    ctx.closing(stream.aclose)
    call = _Call(room)

    def count(frame: Any) -> None:
        call.heard["samples"] += frame.samples_per_channel

    spawn(ctx, drain_audio(stream, count))
    deadline = time.monotonic() + 20
    while True:  # both directions flow before anything is measured
        peer_heard = (await peer.request({"cmd": "stats"}))["heard_s"]
        if peer_heard > 0.5 and call.heard["samples"] > RATE // 2:
            return call
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"audio did not flow both ways (we heard {call.heard['samples'] / RATE:.1f}s, "
                f"the peer {peer_heard:.1f}s)"
            )
        await asyncio.sleep(0.25)


async def audio_cpu(ctx: Context) -> None:
    res = ctx.result
    call = await _one_track_each_way(ctx)
    await asyncio.sleep(ctx.pick(1.0, 3.0))
    window = ctx.pick(4.0, 30.0)
    cpu0, t0, heard0 = cpu_seconds(), time.monotonic(), call.heard["samples"]
    await asyncio.sleep(window)
    cpu1, t1, heard1 = cpu_seconds(), time.monotonic(), call.heard["samples"]
    res.metric(
        "cpu_s_per_min",
        (cpu1 - cpu0) / (t1 - t0) * 60,
        "CPU s/min",
        label="1 published + 1 subscribed 48 kHz track",
    )
    received = (heard1 - heard0) / RATE / (t1 - t0)
    res.note(f"heard {received:.2f} s of audio per second while measuring")


async def memory(ctx: Context) -> None:
    res = ctx.result
    import gc

    gc.collect()
    res.metric("rss_imported_mb", rss_mb(), "MiB", label="after importing the SDK")
    await _one_track_each_way(ctx)
    await asyncio.sleep(ctx.pick(2.0, 5.0))
    gc.collect()
    res.metric("rss_mb", rss_mb(), "MiB", label="1 room, 1 audio track each way")


# -- capacity: subscribed tracks -----------------------------------------------------------------


@dataclass
class _TrackWatch:
    """What one subscribed track delivered during the current window."""

    open: bool = False
    total_s: float = 0.0
    received_s: float = 0.0
    frames: int = 0
    silent: int = 0
    max_gap_s: float = 0.0
    last: float = 0.0

    def reset(self) -> None:
        self.received_s = 0.0
        self.frames = self.silent = 0
        self.max_gap_s = 0.0
        self.open = True

    def on_frame(self, frame: Any) -> None:
        now = time.monotonic()
        dur = frame.samples_per_channel / frame.sample_rate
        self.total_s += dur
        if self.open:
            x = np.frombuffer(frame.data, dtype=np.int16)
            self.received_s += dur
            self.frames += 1
            if x.size == 0 or int(np.abs(x).max()) < 1000:  # the sines peak near 9800
                self.silent += 1
            if self.last:
                self.max_gap_s = max(self.max_gap_s, now - self.last)
        self.last = now


async def audio_capacity(ctx: Context) -> None:
    """Ramp up the number of subscribed tracks until one of them is not delivered smoothly.

    The tracks come from a feeder process that is always the official SDK, so both
    SDKs under test get exactly the same load; this process only subscribes.
    """
    rtc, res = ctx.rtc, ctx.result
    steps = ctx.pick([1, 4, 8], [1, 2, 4, 8, 16, 24, 32, 48])
    window = ctx.pick(2.0, 4.0)
    room = await ctx.connect("listener")
    watches: dict[str, _TrackWatch] = {}

    def on_track(track: Any, publication: Any, participant: Any) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or publication.sid in watches:
            return
        watch = watches[publication.sid] = _TrackWatch()
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        ctx.closing(stream.aclose)
        spawn(ctx, drain_audio(stream, watch.on_frame))

    room.on("track_subscribed", on_track)
    feeder = await ctx.start_peer("audio_feeder", sdk="official", identity="feeder")
    sustained = 0
    ramp: list[dict[str, Any]] = []
    for n in steps:
        if ctx.time_left() < window + 20:
            res.note(f"stopped before {n} tracks: out of time")
            break
        await feeder.request({"cmd": "tracks", "n": n}, timeout=60)
        deadline = time.monotonic() + 30
        while len(watches) < n or min(w.total_s for w in watches.values()) < 0.3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} tracks did not all start within 30 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(ctx.pick(0.5, 1.0))
        for w in watches.values():
            w.reset()
        await asyncio.sleep(window)
        for w in watches.values():
            w.open = False
        worst_received = min(w.received_s for w in watches.values()) / window
        worst_silent = max(w.silent / max(w.frames, 1) for w in watches.values())
        worst_gap = max(w.max_gap_s for w in watches.values())
        ok = worst_received >= 0.95 and worst_silent <= 0.02 and worst_gap <= 0.3
        ramp.append(
            {
                "tracks": n,
                "ok": ok,
                "worst_received": round(worst_received, 3),
                "worst_silent": round(worst_silent, 3),
                "worst_gap_ms": round(worst_gap * 1e3, 1),
            }
        )
        if not ok:
            res.note(
                f"{n} tracks: worst track got {worst_received:.0%} of real time, "
                f"{worst_silent:.0%} silent frames, {worst_gap * 1e3:.0f} ms longest gap"
            )
            break
        sustained = n
    if not ramp:
        raise TimeoutError("out of time before the first step")
    if sustained == steps[-1] and ramp[-1]["ok"]:
        res.note(f"sustained every step up to the last ({sustained}); the limit is higher")
    res.metric("max_tracks", sustained, "tracks", better="higher", label="sustained without gaps")
    res.add_samples("ramp_tracks", [r["tracks"] for r in ramp], "tracks")
    res.add_samples("ramp_worst_received", [r["worst_received"] for r in ramp], "s/s")
    res.add_samples("ramp_worst_gap_ms", [r["worst_gap_ms"] for r in ramp], "ms")


SCENARIOS = [
    Scenario(
        name="audio_latency",
        group="audio",
        title="Audio mouth-to-ear latency",
        doc="Two participants of the SDK under test in one process (one clock). The "
        "speaker's `AudioSource` (48 kHz mono) is fed 10 ms frames by a wall-clock pacer "
        "(a faint noise floor, so that the queue never fills and nothing is treated as "
        "silence); every 0.4 s one frame is a loud 1 kHz burst. The time from handing that "
        "frame to `capture_frame` until the listener's `AudioStream` yields a frame with "
        "the burst is the mouth-to-ear latency through the server (encoder, packetizer, "
        "network stack, jitter buffer, decoder). p50 and p95 of 40 bursts (8 in quick "
        "mode), after a settling period. The resolution is one 10 ms frame.",
        run=audio_latency,
        budget_quick=60,
        budget_full=90,
    ),
    Scenario(
        name="audio_cpu",
        group="audio",
        title="Audio CPU, one track each way",
        doc="A voice-agent shaped process: one room, publishing one 48 kHz mono track "
        "(a sine, fed in 10 ms frames) and subscribed through an `AudioStream` to one "
        "48 kHz track published by a peer process of the same SDK. The process's own CPU "
        "time (user + system, all threads) over 30 s (4 s quick) after audio flows both "
        "ways, as CPU seconds per minute. The peer's CPU is not counted.",
        run=audio_cpu,
        budget_quick=60,
        budget_full=120,
    ),
    Scenario(
        name="audio_capacity",
        group="audio",
        title="Subscribed audio tracks sustained",
        doc="One process subscribes to more and more 48 kHz sine tracks (1, 2, 4, 8, 16, "
        "24, 32, 48; quick: 1, 4, 8), each read through its own `AudioStream`. The "
        "tracks come from a feeder process that is always the official SDK, so both SDKs "
        "get the same load. A step passes when, over a 4 s window (2 s quick), every "
        "track delivered at least 95 % of real time, at most 2 % of its frames were "
        "silent (concealment) and no gap between two frames exceeded 300 ms. The figure "
        "is the last step that passed (a lower bound when even the last step passed).",
        run=audio_capacity,
        budget_quick=80,
        budget_full=240,
        max_repeats=1,
    ),
    Scenario(
        name="memory",
        group="memory",
        title="Memory of a connected process",
        doc="Resident set size of the voice-agent shaped process of *Audio CPU* (one "
        "connected room, one audio track published, one subscribed from a peer process) "
        "after 5 s of audio (2 s quick); and, for reference, right after importing the "
        "SDK. Workers build their access tokens themselves rather than importing "
        "livekit-api, so only the SDK and numpy are loaded.",
        run=memory,
        budget_quick=60,
        budget_full=90,
    ),
]
