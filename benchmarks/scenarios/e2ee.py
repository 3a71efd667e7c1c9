"""The CPU end-to-end encryption costs a publisher: 720p VP8 + Opus, in clear and encrypted.

The same publication twice, each in a room of its own: a 1280x720 30 fps VP8 camera track
(the pictures of the video scenarios) and a 48 kHz Opus tone, first without encryption,
then with ``RoomOptions(encryption=...)`` and a shared key. A subscriber peer of the same
SDK (with the key for the second room) checks that the frames arrive and decode; the
publisher process's CPU is measured over the same window in both rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from benchmarks.common import Context, cpu_seconds, feed_audio, sine_frames, spawn
from benchmarks.scenarios import Scenario
from benchmarks.scenarios.video import FPS, HEIGHT, WIDTH, _base_frames, paint_stamp

KEY = b"benchmark shared key"


def encryption_options(rtc: Any, key: bytes) -> Any:
    """RoomOptions with end-to-end encryption and a shared ``key`` (the same for both SDKs)."""
    provider = rtc.KeyProviderOptions(shared_key=key)
    return rtc.RoomOptions(encryption=rtc.E2EEOptions(key_provider_options=provider))


def _needs_e2ee(rtc: Any) -> str | None:
    if not hasattr(rtc, "LocalVideoTrack"):
        return "not available: this SDK has no LocalVideoTrack (video publishing)"
    if not hasattr(rtc, "KeyProvider"):
        return "not available: this SDK has no end-to-end encryption"
    return None


async def _publication(ctx: Context, encrypted: bool) -> dict[str, float]:
    """Publish VP8 + Opus in a room of its own; the publisher's CPU over the window."""
    rtc = ctx.rtc
    options = encryption_options(rtc, KEY) if encrypted else None
    room = await ctx.connect("camera", options)
    sink = await ctx.start_peer(
        "video_sink", identity="viewer", e2ee_key=KEY.hex() if encrypted else None
    )
    source = rtc.VideoSource(WIDTH, HEIGHT)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    bases = _base_frames(FPS)

    async def capture() -> None:
        start = time.perf_counter()
        k = 0
        while True:
            delay = start + k / FPS - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:
                k = int((time.perf_counter() - start) * FPS)
            buf = bases[k % len(bases)].copy()
            paint_stamp(buf, (time.monotonic_ns() // 1000) & 0xFFFFFFFF)
            frame = rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, buf.tobytes())
            source.capture_frame(frame)
            k += 1

    feeder = spawn(ctx, capture())
    audio_source = rtc.AudioSource(48000, 1)
    tone = rtc.LocalAudioTrack.create_audio_track("tone", audio_source)
    speaker = spawn(ctx, feed_audio(audio_source, sine_frames(rtc, 440.0, 48000, 10)))
    await asyncio.wait_for(
        room.local_participant.publish_track(
            tone, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        ),
        20,
    )
    video_options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        video_codec=rtc.VideoCodec.VP8,
        simulcast=False,
        video_encoding=rtc.VideoEncoding(max_bitrate=2_500_000, max_framerate=FPS),
    )
    await asyncio.wait_for(room.local_participant.publish_track(track, video_options), 20)
    got = await sink.request({"cmd": "wait_frames", "count": 15, "timeout": 30}, timeout=40)
    if got["frames"] < 15:
        raise TimeoutError(f"the subscriber decoded only {got['frames']} frames in 30 s")
    await asyncio.sleep(ctx.pick(1.0, 3.0))  # encoder ramp-up, bandwidth estimation
    window = ctx.pick(3.0, 10.0)
    await sink.request({"cmd": "window_start"})
    cpu0, t0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = cpu_seconds(), time.monotonic()
    report = await sink.request({"cmd": "window_stop"})
    for task in (feeder, speaker):  # (before the sources close: they would spin)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    await sink.close()
    await asyncio.wait_for(room.disconnect(), 10)
    await source.aclose()
    await audio_source.aclose()
    return {
        "cpu_s_per_min": (cpu1 - cpu0) / (t1 - t0) * 60,
        "fps": report["frames"] / report["elapsed_s"],
    }


async def e2ee_publish_cpu(ctx: Context) -> None:
    res = ctx.result
    base_room = ctx.room_name
    plain = await _publication(ctx, encrypted=False)
    ctx.room_name = f"{base_room}-e2ee"
    encrypted = await _publication(ctx, encrypted=True)
    res.metric(
        "publish_cpu_plain_s_per_min",
        plain["cpu_s_per_min"],
        "CPU s/min",
        label="publisher, in clear",
    )
    res.metric(
        "publish_cpu_e2ee_s_per_min",
        encrypted["cpu_s_per_min"],
        "CPU s/min",
        label="publisher, encrypted",
    )
    res.metric(
        "e2ee_cpu_overhead_pct",
        (encrypted["cpu_s_per_min"] - plain["cpu_s_per_min"]) / plain["cpu_s_per_min"] * 100,
        "%",
        label="encryption's share of the CPU",
    )
    res.metric(
        "fps_received_e2ee",
        encrypted["fps"],
        "fps",
        better="higher",
        label="encrypted frames decoded per second",
    )
    res.note(f"frames decoded per second in clear: {plain['fps']:.1f}")


SCENARIOS = [
    Scenario(
        name="e2ee_publish_cpu",
        group="e2ee",
        title="E2EE publish CPU (720p30 VP8 + Opus)",
        doc=(
            "The SDK under test publishes a 1280x720 VP8 camera track at 30 fps (capped at "
            "2.5 Mbit/s, the pictures of the video scenarios) and a 48 kHz Opus tone, twice, "
            "each time in a room of its own: first in clear, then with "
            "`RoomOptions(encryption=...)` and a shared key (PBKDF2, the default). A peer "
            "process of the same SDK subscribes (with the key, the second time) and counts "
            "the pictures it decodes. Over 10 s (3 s quick) after the encoder has ramped "
            "up: the publisher process's CPU in clear and encrypted (seconds per minute), "
            "the difference as a share of the former, and the encrypted frames decoded "
            "per second. Reported as not available for an SDK without `LocalVideoTrack` "
            "or `KeyProvider`."
        ),
        run=e2ee_publish_cpu,
        budget_quick=120,
        budget_full=180,
        requires=_needs_e2ee,
    ),
]
