"""Simulcast: what three layers cost a publisher, and what dynacast saves.

Both scenarios publish the pictures of the video scenarios (1280x720, 30 fps, with motion
and a painted capture time) with simulcast on: three layers, 320x180, 640x360 and the
full picture, each with its own encoder, in both SDKs. A ``video_sink`` peer process of
the same SDK subscribes; the publisher process's CPU is measured over a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from benchmarks.common import Context, cpu_seconds, spawn
from benchmarks.scenarios import Scenario
from benchmarks.scenarios.video import FPS, HEIGHT, WIDTH, _base_frames, paint_stamp

# (VideoQuality, the width of its layer) for a 1280x720 simulcast publication
LAYERS = ((0, 320), (1, 640), (2, WIDTH))
# livekit-server waits this long before it tells a publisher to pause layers nobody
# receives (its dynacast_pause_delay, 5 s by default); the LOW window starts after it
PAUSE_WAIT = 7.0


def _needs_video_publishing(rtc: Any) -> str | None:
    if not hasattr(rtc, "LocalVideoTrack"):
        return "not available: this SDK has no LocalVideoTrack (video publishing)"
    return None


class _Publication:
    """A 720p30 VP8 simulcast publication and its subscriber peer."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.captured = 0

    async def start(self, *, dynacast: bool) -> Any:
        ctx = self.ctx
        rtc = ctx.rtc
        room = await ctx.connect("camera", rtc.RoomOptions(dynacast=dynacast))
        self.sink = await ctx.start_peer("video_sink", identity="viewer")
        source = rtc.VideoSource(WIDTH, HEIGHT)
        ctx.closing(source.aclose)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        bases = _base_frames(FPS)

        async def capture() -> None:
            start = time.perf_counter()
            k = 0
            while True:
                delay = start + k / FPS - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.5:  # far behind: skip ahead rather than burst
                    k = int((time.perf_counter() - start) * FPS)
                buf = bases[k % len(bases)].copy()
                paint_stamp(buf, (time.monotonic_ns() // 1000) & 0xFFFFFFFF)
                frame = rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, buf.tobytes())
                source.capture_frame(frame)
                self.captured += 1
                k += 1

        self.feeder = spawn(ctx, capture())
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            video_codec=rtc.VideoCodec.VP8,
            simulcast=True,
            video_encoding=rtc.VideoEncoding(max_bitrate=2_500_000, max_framerate=FPS),
        )
        publication = await asyncio.wait_for(
            room.local_participant.publish_track(track, options), 20
        )
        got = await self.sink.request(
            {"cmd": "wait_frames", "count": 15, "timeout": 30}, timeout=40
        )
        if got["frames"] < 15:
            raise TimeoutError(f"the subscriber got only {got['frames']} frames in 30 s")
        info = await self.sink.request({"cmd": "publication"})
        if not (publication.simulcasted and info["simulcasted"]):
            raise RuntimeError("the publication is not simulcast")
        return room

    async def quality(self, quality: int, width: int) -> float:
        """Ask the subscriber's server for a layer; seconds until its frames arrived."""
        answer = await self.sink.request(
            {"cmd": "quality", "quality": quality, "width": width, "timeout": 25}, timeout=35
        )
        if answer["width"] != width:
            raise TimeoutError(f"no {width} px wide frames after asking for quality {quality}")
        return float(answer["after_s"])

    async def window(self) -> dict[str, float]:
        """The publisher's CPU (s/min) and what the subscriber got, over one window."""
        ctx = self.ctx
        await self.sink.request({"cmd": "window_start"})
        cpu0, t0, n0 = cpu_seconds(), time.monotonic(), self.captured
        await asyncio.sleep(ctx.pick(3.0, 10.0))
        cpu1, t1, n1 = cpu_seconds(), time.monotonic(), self.captured
        report = await self.sink.request({"cmd": "window_stop"})
        return {
            "cpu_s_per_min": (cpu1 - cpu0) / (t1 - t0) * 60,
            "captured_fps": (n1 - n0) / (t1 - t0),
            "fps": report["frames"] / report["elapsed_s"],
            "sizes": report["sizes"],
        }

    async def stop(self, room: Any) -> None:
        self.feeder.cancel()
        with contextlib.suppress(BaseException):
            await self.feeder
        await self.sink.close()
        await asyncio.wait_for(room.disconnect(), 10)


async def simulcast_publish_cpu(ctx: Context) -> None:
    res = ctx.result
    pub = _Publication(ctx)
    room = await pub.start(dynacast=False)
    await asyncio.sleep(ctx.pick(1.0, 3.0))  # encoder ramp-up
    measured = await pub.window()  # the subscriber takes the top layer
    switches = [await pub.quality(q, width) for q, width in LAYERS]
    await pub.stop(room)
    res.metric(
        "publish_cpu_s_per_min",
        measured["cpu_s_per_min"],
        "CPU s/min",
        label="publisher process, three layers",
    )
    res.metric(
        "fps_received",
        measured["fps"],
        "fps",
        better="higher",
        label="top-layer frames received per second",
    )
    res.note(
        f"captured {measured['captured_fps']:.1f} fps; received sizes {measured['sizes']}; "
        "then each layer was asked for and arrived after "
        + ", ".join(f"{w} px {s:.2f} s" for (_, w), s in zip(LAYERS, switches, strict=True))
    )


async def dynacast_savings(ctx: Context) -> None:
    res = ctx.result
    pub = _Publication(ctx)
    room = await pub.start(dynacast=True)
    low_after = await pub.quality(0, 320)
    await asyncio.sleep(PAUSE_WAIT)  # the server's quality update, the pause
    low = await pub.window()
    high_after = await pub.quality(2, WIDTH)
    await asyncio.sleep(ctx.pick(1.0, 3.0))
    high = await pub.window()
    await pub.stop(room)
    res.metric(
        "publish_cpu_low_s_per_min",
        low["cpu_s_per_min"],
        "CPU s/min",
        label="publisher, only a LOW subscriber",
    )
    res.metric(
        "publish_cpu_high_s_per_min",
        high["cpu_s_per_min"],
        "CPU s/min",
        label="publisher, a HIGH subscriber",
    )
    res.metric(
        "dynacast_saving_pct",
        (high["cpu_s_per_min"] - low["cpu_s_per_min"]) / high["cpu_s_per_min"] * 100,
        "%",
        better="higher",
        label="CPU saved with only LOW subscribed",
    )
    res.note(
        f"LOW window: received {low['sizes']} ({low['fps']:.1f} fps; LOW arrived "
        f"{low_after:.2f} s after asking); HIGH window: received {high['sizes']} "
        f"({high['fps']:.1f} fps; HIGH arrived {high_after:.2f} s after asking)"
    )


SCENARIOS = [
    Scenario(
        name="simulcast_publish_cpu",
        group="video",
        title="Simulcast publish CPU (720p30 VP8, three layers)",
        doc=(
            "The SDK under test publishes a 1280x720 camera track at 30 fps, VP8, with "
            "simulcast (three layers, 320x180, 640x360 and 1280x720, one encoder each; the "
            "top capped at 2.5 Mbit/s), from the pictures of the video scenarios; a peer "
            "process of the same SDK subscribes and gets the top layer. After the encoder "
            "has ramped up, over 10 s (3 s quick): the publisher process's CPU (seconds per "
            "minute) and the frames received per second. Then the subscriber asks for each "
            "layer in turn and each must arrive (noted with how long it took). Reported as "
            "not available for an SDK without `LocalVideoTrack`."
        ),
        run=simulcast_publish_cpu,
        budget_quick=120,
        budget_full=180,
        requires=_needs_video_publishing,
    ),
    Scenario(
        name="dynacast_savings",
        group="video",
        title="Dynacast savings (720p30 VP8 simulcast, LOW vs HIGH subscriber)",
        doc=(
            "The same simulcast publication with `RoomOptions(dynacast=True)`. The "
            "subscriber peer first asks for the LOW layer: the server then tells the "
            "publisher (after its 5 s dynacast pause delay; the window starts 7 s after "
            "the request) that nobody receives the other two, which it stops encoding. "
            "Over 10 s (3 s quick) the publisher's CPU is measured; then the subscriber asks for "
            "HIGH (the top layer resumes) and the CPU is measured again. Reported: both "
            "figures and the share saved with only LOW subscribed. Reported as not "
            "available for an SDK without `LocalVideoTrack`."
        ),
        run=dynacast_savings,
        budget_quick=150,
        budget_full=240,
        requires=_needs_video_publishing,
    ),
]
