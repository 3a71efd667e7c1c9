"""Audio over a lossy, delayed link: how much of a tone arrives intact, and how late."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Context, _disconnect, percentile, spawn, wait_remote_track
from benchmarks.scenarios import Scenario

RATE = 48000
STEP = RATE // 100  # 10 ms
FREQ = 440.0
AMPLITUDE = 0.5
#: Every second the tone is 4 dB louder for 20 ms: a marker to time the way through
#: (still a good frame: within 6 dB of the tone's level).
MARKER_GAIN = 10 ** (4 / 20)
MARKER_FRAMES = 2
MARKER_PERIOD_FRAMES = 100
WARMUP = 2.0
TAIL = 1.5


def _needs_lossy_link(_rtc: Any) -> str | None:
    from signaling import lossy_link

    return lossy_link.unavailable_reason()


async def lossy_audio(ctx: Context) -> None:
    """A 440 Hz tone from one participant to another of the same SDK, through a link of
    100 ms and 5 % loss each way (``signaling/lossy_link.py``)."""
    from signaling import lossy_link
    from tests.integration.audio_utils import LoopLag, ToneRecorder, tone_level_dbfs, tone_quality

    rtc, res = ctx.rtc, ctx.result
    impairment = lossy_link.Impairment(delay_ms=100.0, loss=0.05)
    log_dir = ctx.stderr_dir or Path(tempfile.gettempdir())
    server = await asyncio.to_thread(
        lossy_link.start_server,
        log_dir / f"lossy-{ctx.sdk}-{ctx.room_name}.log",
        up=impairment,
        down=impairment,
    )
    ctx.stack.callback(server.stop)
    rooms = []
    for identity in ("speaker", "listener"):
        room = rtc.Room()
        await asyncio.wait_for(room.connect(server.url, ctx.token(identity)), 60)
        ctx.stack.push_async_callback(_disconnect, room)
        rooms.append(room)
    speaker, listener = rooms
    level = tone_level_dbfs(AMPLITUDE)

    source = rtc.AudioSource(RATE, 1)
    ctx.closing(source.aclose)
    emitted: list[float] = []

    async def speak() -> None:
        """Real-time pacing by the wall clock, so the source's queue stays empty and the
        marker's capture time is when it is due to be sent."""
        n = np.arange(STEP) / RATE
        start = time.monotonic()
        k = 0
        while True:
            delay = start + k * 0.01 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            marker = k % MARKER_PERIOD_FRAMES < MARKER_FRAMES
            amp = AMPLITUDE * (MARKER_GAIN if marker else 1.0)
            pcm = (amp * 32767 * np.sin(2 * np.pi * FREQ * (n + k * 0.01))).astype(np.int16)
            if k % MARKER_PERIOD_FRAMES == 0:
                emitted.append(time.monotonic())
            await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), RATE, 1, STEP))
            k += 1

    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await asyncio.wait_for(speaker.local_participant.publish_track(track, options), 60)
    spawn(ctx, speak())
    remote = await wait_remote_track(listener, rtc.TrackKind.KIND_AUDIO, "speaker", timeout=60)
    stream = rtc.AudioStream(remote, sample_rate=RATE, num_channels=1)
    ctx.closing(stream.aclose)
    recorder = ToneRecorder(RATE)
    loop_lag = LoopLag()
    spawn(ctx, loop_lag.run())

    spawn(ctx, recorder.run(stream))  # monotonic, the speaker's clock too
    deadline = time.monotonic() + 30
    while not recorder.times:
        if time.monotonic() > deadline:
            raise TimeoutError("no audio through the link within 30 s")
        await asyncio.sleep(0.1)
    seconds = float(ctx.pick(15.0, 30.0))
    await asyncio.sleep(WARMUP)
    start = time.monotonic()
    before = await asyncio.to_thread(server.stats)
    await asyncio.sleep(seconds)
    after = await asyncio.to_thread(server.stats)
    await asyncio.sleep(TAIL)
    recorded_until = time.monotonic()
    times, frames = recorder.frames()
    quality = tone_quality(
        times,
        frames,
        start=start,
        end=start + seconds,
        recorded_until=recorded_until,
        rate=RATE,
        freq=FREQ,
        expected_dbfs=level,
        loop_lag=loop_lag.arrays(),
    )
    res.metric(
        "good_frames_per_s",
        quality.good_per_second,
        "frames/s",
        better="higher",
        label="good 10 ms frames per second (of 100)",
    )
    res.metric("longest_gap_ms", quality.longest_gap_ms, "ms", label="longest gap")

    # mouth to ear: the first loud frame of each marker, after the marker was captured
    loud = np.flatnonzero(_levels(frames) > level + 2.0)
    onsets = [int(i) for j, i in enumerate(loud) if j == 0 or i - loud[j - 1] > 20]
    latencies = []
    for i in onsets:
        heard = float(times[i])
        if not start <= heard < start + seconds:
            continue
        sent = [e for e in emitted if e <= heard]
        if sent and heard - sent[-1] < 0.9:
            latencies.append((heard - sent[-1]) * 1e3)
    if latencies:
        res.metric(
            "mouth_to_ear_p50_ms",
            percentile(latencies, 50),
            "ms",
            label="mouth to ear through the link, p50",
        )
        res.add_samples("mouth_to_ear_ms", latencies, "ms")
    markers = sum(1 for e in emitted if start <= e < start + seconds)
    dropped = [
        (a.dropped - b.dropped) / max(1, a.received - b.received)
        for a, b in ((after.up, before.up), (after.down, before.down))
    ]
    res.note(
        f"{quality.summary()}; {len(latencies)} of ~{markers} markers timed; link dropped "
        f"{dropped[0]:.1%} up, {dropped[1]:.1%} down; forwarder late p99 "
        f"{after.up.late_p99_ms:.1f}/{after.down.late_p99_ms:.1f} ms ({server.link.scheduling})"
    )


def _levels(frames: np.ndarray) -> np.ndarray:
    x = frames.astype(np.float64) / 32768.0
    return np.asarray(10 * np.log10(np.maximum(np.mean(x * x, axis=1), 1e-18)))


SCENARIOS = [
    Scenario(
        name="lossy_audio",
        group="audio",
        title="A tone over a 100 ms / 5 % lossy link",
        doc="A livekit-server of the worker's own behind `signaling/lossy_link.py` (a "
        "network namespace reached only through a userspace forwarder between two TUN "
        "devices; needs root): every packet, signal and media, is delayed 100 ms and 5 % "
        "are dropped at random, each way. One participant of the SDK under test publishes "
        "a 440 Hz tone (48 kHz, paced by the wall clock), a second one receives it. After "
        "a 2 s warm-up, over 30 s (15 s in quick mode): good 10 ms frames per second "
        "(level within 6 dB of the tone's, at least 90 % of the energy at 440 Hz; audio "
        "the stream never delivered counts as not good), the longest gap (a run of "
        "not-good frames, or a stall of the stream beyond 20 ms), and the mouth-to-ear "
        "delay through the link of a 20 ms, 4 dB louder marker sent every second.",
        run=lossy_audio,
        budget_quick=100,
        budget_full=130,
        requires=_needs_lossy_link,
        max_repeats=3,
    ),
]
