"""Media timing under load: what reaches the wire when the publisher's process is busy.

``loaded_loop``: the SDK under test publishes a 440 Hz tone (48 kHz mono, fed like a
microphone: every 10 ms, everything recorded since the last feed) and 640x360 video at
30 fps, while a task in its event loop holds it (and the GIL) for 30 ms every 100 ms and
two other processes keep both cores busy. An official-SDK subscriber in a process of its
own reports what it got: the audio its jitter buffer had to conceal (its inbound-rtp
``concealed_samples`` over ``total_samples_received``) and the video frames per second.
The publisher samples its ``AudioSource.queued_duration`` every 20 ms.

``gil_busy_publisher``: the SDK under test publishes 1280x720 video at 30 fps whose
pictures a thread paints with strided numpy writes (``flat[::3] = value``, which hold the
GIL) for about 20 ms per picture before handing them to the event loop; the official
subscriber counts the frames received. Frames published per second is how many pictures
the loop handed to ``capture_frame``.

Both keep the subscriber on the official SDK, so the two SDKs under test are compared
against the same receiver. ``loaded_loop`` takes variants from the environment (see
:meth:`Load.from_env`) for ``benchmarks/media_thread_probe.py``: other blocking patterns,
blocking that releases the GIL, and the SDK on an event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from benchmarks.common import Context, percentile, spawn, wait_remote_track
from benchmarks.scenarios import Scenario

RATE = 48000
STEP = RATE // 100  # 10 ms of audio
TONE_HZ = 440.0
FPS = 30
BLOCK_EVERY_S = 0.1
BLOCK_FOR_S = 0.03


# -- the publisher's media ------------------------------------------------------------------


def _tone_frames(rtc: Any) -> list[Any]:
    """One second of the tone as 100 frames of 10 ms; 440 whole periods, so it loops."""
    t = np.arange(RATE) / RATE
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i * STEP : (i + 1) * STEP].tobytes(), RATE, 1, STEP) for i in range(100)
    ]


async def live_microphone(capture: Callable[[Any], Awaitable[None]], frames: list[Any]) -> None:
    """Feed ``capture`` like a microphone: every 10 ms, all 10 ms frames recorded since.

    After the loop was blocked, the frames of the blocked time are fed at once (a sound
    card buffers them), so the source gets audio at exactly real-time rate.
    """
    start = time.perf_counter()
    fed = 0
    while True:
        due = int((time.perf_counter() - start) * 100) + 1
        while fed < due:
            await capture(frames[fed % len(frames)])
            fed += 1
        await asyncio.sleep(max(0.0, start + fed * 0.01 - time.perf_counter()))


def _pictures(width: int, height: int, count: int) -> list[np.ndarray]:
    """``count`` I420 pictures with motion (a moving gradient and a moving square)."""
    yy, xx = np.mgrid[0:height, 0:width]
    side = height // 3
    out = []
    for i in range(count):
        y = ((xx + i * 6) // 3 + yy // 5) % 200 + 28
        x0 = (i * 17) % (width - side)
        y[side : 2 * side, x0 : x0 + side] = 230
        u = np.full((height // 2, width // 2), 128 + (i % 16), dtype=np.uint8)
        v = np.full((height // 2, width // 2), 120, dtype=np.uint8)
        out.append(np.concatenate([y.astype(np.uint8).ravel(), u.ravel(), v.ravel()]))
    return out


async def camera(
    rtc: Any, capture: Callable[[Any], None], width: int, height: int, counter: dict[str, int]
) -> None:
    """Capture 30 fps on the wall clock; late frames are captured at once (a camera's queue)."""
    pictures = [
        rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, p.tobytes())
        for p in _pictures(width, height, FPS)
    ]
    start = time.perf_counter()
    k = 0
    while True:
        delay = start + k / FPS - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.5:  # far behind: skip ahead rather than burst
            k = int((time.perf_counter() - start) * FPS)
        capture(pictures[k % len(pictures)])
        counter["captured"] += 1
        k += 1


@dataclass(frozen=True)
class Load:
    """How the user's loop is loaded (defaults: the ``loaded_loop`` scenario)."""

    block_s: float = BLOCK_FOR_S
    every_s: float = BLOCK_EVERY_S
    spin: bool = True
    """Hold the GIL while blocking (a busy callback) rather than sleep (a blocking call)."""
    engine_thread: bool = False
    """Run the SDK (room, sources, tracks) on an event loop in a thread of its own; the
    producers and the blocking task stay on the scenario's loop and hand frames over."""

    @classmethod
    def from_env(cls) -> Load:
        """``LOADED_BLOCK=30/100`` (ms held / every ms), ``LOADED_BLOCK_KIND=spin|sleep``,
        ``LOADED_ENGINE_THREAD=1``: variants for ``benchmarks/media_thread_probe.py``."""
        held, _, every = os.environ.get("LOADED_BLOCK", "").partition("/")
        return cls(
            block_s=float(held) / 1e3 if held else BLOCK_FOR_S,
            every_s=float(every) / 1e3 if every else BLOCK_EVERY_S,
            spin=os.environ.get("LOADED_BLOCK_KIND", "spin") != "sleep",
            engine_thread=os.environ.get("LOADED_ENGINE_THREAD", "") == "1",
        )

    def describe(self) -> str:
        kind = "spinning (GIL held)" if self.spin else "sleeping (GIL released)"
        where = "the SDK on a thread of its own" if self.engine_thread else "the SDK on that loop"
        return (
            f"loop blocked {self.block_s * 1e3:.0f} ms every {self.every_s * 1e3:.0f} ms, "
            f"{kind}; {where}"
        )


async def block_the_loop(load: Load, counter: dict[str, float]) -> None:
    """Hold the event loop (spinning: and the GIL) for ``block_s`` every ``every_s``."""
    start = time.perf_counter()
    k = 0
    while True:
        k += 1
        await asyncio.sleep(max(0.0, start + k * load.every_s - time.perf_counter()))
        if load.spin:
            until = time.perf_counter() + load.block_s
            while time.perf_counter() < until:
                pass
        else:
            time.sleep(load.block_s)  # noqa: ASYNC251 - blocking the loop is the point
        counter["blocks"] += 1


async def _busy_cores(ctx: Context, count: int = 2) -> None:
    """Start ``count`` processes spinning on a core each until the run ends."""
    procs = []
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "while True: pass",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(proc)

    async def stop() -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in procs:
            await proc.wait()

    ctx.stack.push_async_callback(stop)


# -- the official subscriber (a peer process) ------------------------------------------------


async def media_sink(ctx: Context, params: dict[str, Any], commands: Any) -> None:
    """Peer role ``media_sink``: subscribes to the publisher's audio and/or video.

    ``{"cmd": "wait"}`` answers once media flows; ``window_start`` / ``window_stop``
    bracket a measurement; the latter answers with the video frames received, the audio
    frames read and the inbound-rtp audio counters' changes over the window.
    """
    from benchmarks.peers import emit

    rtc = ctx.rtc
    room = await ctx.connect(params.get("identity", "listener"))
    publisher = params.get("publisher", "publisher")
    want_audio = bool(params.get("audio", True))
    emit({"ready": True})
    state: dict[str, Any] = {"video": 0, "audio_frames": 0, "audio_silent": 0}
    audio_track = None
    if want_audio:
        audio_track = await wait_remote_track(room, rtc.TrackKind.KIND_AUDIO, publisher, 30)
        audio = rtc.AudioStream(audio_track, sample_rate=RATE, num_channels=1)
        ctx.closing(audio.aclose)

        async def listen() -> None:
            async for event in audio:
                state["audio_frames"] += 1
                x = np.frombuffer(event.frame.data, dtype=np.int16)
                if x.size == 0 or int(np.abs(x).max()) < 1000:  # the tone peaks near 9800
                    state["audio_silent"] += 1

        spawn(ctx, listen())
    video_track = await wait_remote_track(room, rtc.TrackKind.KIND_VIDEO, publisher, 30)
    video = rtc.VideoStream(video_track, format=rtc.VideoBufferType.I420)
    ctx.closing(video.aclose)

    async def watch() -> None:
        async for _ in video:
            state["video"] += 1

    spawn(ctx, watch())

    async def audio_counters() -> dict[str, float]:
        if audio_track is None:
            return {}
        for stats in await audio_track.get_stats():
            if stats.WhichOneof("stats") == "inbound_rtp":
                inbound = stats.inbound_rtp.inbound
                return {
                    "concealed": inbound.concealed_samples,
                    "silent_concealed": inbound.silent_concealed_samples,
                    "events": inbound.concealment_events,
                    "received": inbound.total_samples_received,
                    "jb_delay": inbound.jitter_buffer_delay,
                    "jb_emitted": inbound.jitter_buffer_emitted_count,
                    "inserted": inbound.inserted_samples_for_deceleration,
                    "removed": inbound.removed_samples_for_acceleration,
                }
        return {}

    before: dict[str, Any] = {}
    while (command := await commands.get()) is not None:
        cmd = command.get("cmd")
        if cmd == "wait":
            for _ in range(int(float(command.get("timeout", 30)) * 10)):
                if state["video"] >= 10 and (not want_audio or state["audio_frames"] >= 50):
                    break
                await asyncio.sleep(0.1)
            emit({"video": state["video"], "audio_frames": state["audio_frames"]})
        elif cmd == "window_start":
            before = {"t": time.monotonic(), **state, **(await audio_counters())}
            emit({"started": True})
        elif cmd == "window_stop":
            after = {"t": time.monotonic(), **state, **(await audio_counters())}
            emit({k: after[k] - before[k] for k in after if k in before})
        else:
            emit({"error": f"unknown command {command!r}"})


# -- the scenarios ----------------------------------------------------------------------------


async def _publish_video(rtc: Any, room: Any, source: Any) -> None:
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        video_codec=rtc.VideoCodec.VP8,
        simulcast=False,
        video_encoding=rtc.VideoEncoding(max_bitrate=1_500_000, max_framerate=FPS),
    )
    await asyncio.wait_for(room.local_participant.publish_track(track, options), 20)


_T = TypeVar("_T")


class _EngineThread:
    """An event loop in a thread of its own, where the SDK under test runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="engine", daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the engine loop; await its result from the calling loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 10)


async def _publish_media(
    ctx: Context, load: Load, width: int, height: int
) -> tuple[Callable[[Any], Awaitable[None]], Callable[[Any], None], Any]:
    """Join as "publisher" and publish the tone and the camera; on the scenario's loop, or
    on an engine thread. Returns how to capture audio, video, and the audio source."""
    rtc = ctx.rtc

    async def publish() -> tuple[Any, Any, Any]:
        room = rtc.Room()
        await asyncio.wait_for(room.connect(ctx.url, ctx.token("publisher")), 30)
        audio_source = rtc.AudioSource(RATE, 1)
        audio_track = rtc.LocalAudioTrack.create_audio_track("tone", audio_source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await asyncio.wait_for(room.local_participant.publish_track(audio_track, options), 20)
        video_source = rtc.VideoSource(width, height)
        await _publish_video(rtc, room, video_source)
        return room, audio_source, video_source

    async def close(room: Any, *sources: Any) -> None:
        for source in sources:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(source.aclose(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(room.disconnect(), 10)

    if not load.engine_thread:
        room, audio_source, video_source = await publish()
        ctx.stack.push_async_callback(close, room, audio_source, video_source)
        return audio_source.capture_frame, video_source.capture_frame, audio_source
    engine = _EngineThread()
    ctx.stack.push_async_callback(engine.stop)
    room, audio_source, video_source = await engine.run(publish())
    ctx.stack.push_async_callback(lambda: engine.run(close(room, audio_source, video_source)))

    async def capture_audio(frame: Any) -> None:
        await engine.run(audio_source.capture_frame(frame))

    def capture_video(frame: Any) -> None:
        engine.loop.call_soon_threadsafe(video_source.capture_frame, frame)

    return capture_audio, capture_video, audio_source


async def loaded_loop(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    load = Load.from_env()
    width, height = 640, 360
    sink = await ctx.start_peer("media_sink", sdk="official", identity="listener")
    capture_audio, capture_video, audio_source = await _publish_media(ctx, load, width, height)
    spawn(ctx, live_microphone(capture_audio, _tone_frames(rtc)))
    counter = {"captured": 0}
    spawn(ctx, camera(rtc, capture_video, width, height, counter))

    got = await sink.request({"cmd": "wait", "timeout": 30}, timeout=40)
    if got["video"] < 10 or got["audio_frames"] < 50:
        raise TimeoutError(f"media did not flow to the subscriber: {got}")
    await asyncio.sleep(ctx.pick(1.0, 3.0))  # jitter buffer, encoder ramp-up
    # the load: the cores, then the loop
    await _busy_cores(ctx)
    blocks = {"blocks": 0.0}
    spawn(ctx, block_the_loop(load, blocks))
    await asyncio.sleep(ctx.pick(1.5, 3.0))  # the receiver adapts to it
    queued: list[float] = []

    async def sample_queue() -> None:
        while True:
            queued.append(audio_source.queued_duration * 1e3)
            await asyncio.sleep(0.02)

    sampler = spawn(ctx, sample_queue())
    window = ctx.pick(6.0, 20.0)
    await sink.request({"cmd": "window_start"})
    n0, b0, t0 = counter["captured"], blocks["blocks"], time.monotonic()
    await asyncio.sleep(window)
    n1, b1, t1 = counter["captured"], blocks["blocks"], time.monotonic()
    report = await sink.request({"cmd": "window_stop"})
    sampler.cancel()

    received = report.get("received", 0)
    if received:
        res.metric(
            "concealed_pct",
            100.0 * report["concealed"] / received,
            "%",
            label="audio concealed by the receiver",
        )
    res.metric(
        "fps_received", report["video"] / report["t"], "fps", better="higher", label="video fps"
    )
    res.metric("queued_p95_ms", percentile(queued, 95), "ms", label="AudioSource queue p95")
    res.metric("queued_max_ms", max(queued, default=float("nan")), "ms", label="queue max")
    res.add_samples("queued_ms", queued, "ms")
    jb = report.get("jb_delay", 0.0) / max(report.get("jb_emitted", 0), 1) * 1e3
    res.note(
        f"{load.describe()}; captured {(n1 - n0) / (t1 - t0):.1f} fps; loop blocked "
        f"{b1 - b0:.0f} times in {t1 - t0:.1f} s; receiver: {report.get('events', 0)} "
        f"concealment events, {report.get('silent_concealed', 0)} silent concealed samples, "
        f"jitter buffer {jb:.0f} ms, {report.get('removed', 0)} samples removed by "
        f"acceleration, {report.get('inserted', 0)} inserted; {report['audio_frames']} audio "
        f"frames read, {report['audio_silent']} quiet"
    )
    dropped = getattr(audio_source, "_dropped_samples", None)
    if dropped is not None:
        res.note(f"the AudioSource dropped {dropped / RATE * 1e3:.0f} ms of late audio in all")


def _paint(buf: np.ndarray, width: int, height: int, value: int) -> None:
    """Strided writes into the Y plane; ``flat`` assignment holds the GIL throughout."""
    y = buf[: width * height]
    y.flat[value % 3 :: 3] = value


def _painter(
    loop: asyncio.AbstractEventLoop,
    hand_over: Any,
    stop: threading.Event,
    width: int,
    height: int,
    paint_s: float,
    counter: dict[str, float],
) -> None:
    """Paint pictures for ``paint_s`` each, 30 per second at most, handing each to the loop."""
    bases = _pictures(width, height, 8)
    start = time.perf_counter()
    k = 0
    while not stop.is_set():
        buf = bases[k % len(bases)].copy()
        until = time.perf_counter() + paint_s
        passes = 0
        while time.perf_counter() < until:
            _paint(buf, width, height, 40 + (k + passes) % 180)
            passes += 1
        counter["passes"] += passes
        loop.call_soon_threadsafe(hand_over, buf)
        k += 1
        delay = start + k / FPS - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.5:
            start = time.perf_counter() - k / FPS


async def gil_busy_publisher(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    width, height = 1280, 720
    room = await ctx.connect("publisher")
    sink = await ctx.start_peer("media_sink", sdk="official", identity="listener", audio=False)
    source = rtc.VideoSource(width, height)
    ctx.closing(source.aclose)
    counter: dict[str, float] = {"published": 0, "passes": 0, "painted": 0}

    def hand_over(buf: np.ndarray) -> None:
        counter["painted"] += 1
        source.capture_frame(
            rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, memoryview(buf))
        )
        counter["published"] += 1

    await _publish_video(rtc, room, source)
    stop = threading.Event()
    thread = threading.Thread(
        target=_painter,
        args=(asyncio.get_running_loop(), hand_over, stop, width, height, 0.02, counter),
        name="painter",
        daemon=True,
    )
    thread.start()

    async def join() -> None:
        stop.set()
        await asyncio.to_thread(thread.join, 5)

    ctx.stack.push_async_callback(join)
    got = await sink.request({"cmd": "wait", "timeout": 30}, timeout=40)
    if got["video"] < 10:
        raise TimeoutError(f"video did not flow to the subscriber: {got}")
    await asyncio.sleep(ctx.pick(1.0, 3.0))
    window = ctx.pick(5.0, 15.0)
    await sink.request({"cmd": "window_start"})
    p0, c0, t0 = counter["published"], counter["passes"], time.monotonic()
    await asyncio.sleep(window)
    p1, c1, t1 = counter["published"], counter["passes"], time.monotonic()
    report = await sink.request({"cmd": "window_stop"})
    res.metric(
        "fps_published",
        (p1 - p0) / (t1 - t0),
        "fps",
        better="higher",
        label="pictures handed to capture_frame",
    )
    res.metric(
        "fps_received", report["video"] / report["t"], "fps", better="higher", label="video fps"
    )
    res.note(f"{(c1 - c0) / max(p1 - p0, 1):.0f} strided passes per picture")


SCENARIOS = [
    Scenario(
        name="loaded_loop",
        group="load",
        title="Audio and video from a loaded publisher",
        doc="The SDK under test publishes a 440 Hz tone (48 kHz mono, fed like a "
        "microphone: every 10 ms, all audio recorded since) and 640x360 VP8 video at 30 "
        "fps, while a task in its event loop holds the loop and the GIL for 30 ms every "
        "100 ms and two other processes keep both cores busy. An official-SDK subscriber "
        "in its own process reports the share of audio its jitter buffer concealed "
        "(inbound-rtp `concealed_samples` / `total_samples_received`) and the video frames "
        "per second it received; the publisher samples its `AudioSource.queued_duration` "
        "every 20 ms (p95, max). Over 20 s (6 s quick), after the receiver had 3 s (1.5 s) "
        "to adapt to the load.",
        run=loaded_loop,
        budget_quick=90,
        budget_full=120,
    ),
    Scenario(
        name="gil_busy_publisher",
        group="load",
        title="Video from a publisher whose thread holds the GIL",
        doc="The SDK under test publishes 1280x720 VP8 video at 30 fps whose pictures a "
        "thread paints with strided numpy writes (`flat[::3] = value`, holding the GIL) "
        "for about 20 ms each before handing them to the event loop, which calls "
        "`capture_frame`. Reported: the pictures handed to `capture_frame` per second "
        "and the frames per second an official-SDK subscriber received, over 15 s (5 s "
        "quick).",
        run=gil_busy_publisher,
        budget_quick=80,
        budget_full=100,
    ),
]
