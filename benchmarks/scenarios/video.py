"""Video through the server: 1280x720 at 30 fps, VP8 and H.264.

The publisher (this process) paints its capture time into every frame as two rows of
black and white blocks: 32 bits of ``time.monotonic_ns() // 1000`` and their complement.
The subscriber, a peer process of the same SDK on the same machine (so the same
monotonic clock), reads them back from the decoded picture; the difference is the frame
latency through the server, encoder and decoder included. The blocks are large enough
to survive compression and the encoder scaling the picture down. The stamp's low
:data:`INDEX_BITS` bits name the base picture instead (:func:`stamp_value`), so that the
subscriber can rebuild the sent picture of a received one and score it (PSNR and SSIM of
the Y plane, :mod:`benchmarks.video_quality`): the same measure for both SDKs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from benchmarks.common import Context, cpu_seconds, percentile, spawn
from benchmarks.scenarios import Scenario

WIDTH, HEIGHT, FPS = 1280, 720, 30
BITS = 32
BLOCK = WIDTH // BITS  # 40 px: two rows of 32 blocks
STAMP_ROWS = 2
LOW, HIGH = 16, 235
INDEX_BITS = 5  # the stamp's low bits: which of the FPS base pictures was sent


def _base_frames(count: int) -> list[np.ndarray]:
    """``count`` I420 pictures with motion (a moving gradient and a moving square)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = []
    for i in range(count):
        shift = i * 8
        y = ((xx + shift) // 4 + yy // 6) % 200 + 28
        x0 = (i * 23) % (WIDTH - 200)
        y[300:500, x0 : x0 + 200] = 230
        u = np.full((HEIGHT // 2, WIDTH // 2), 128 + (i % 16), dtype=np.uint8)
        v = np.full((HEIGHT // 2, WIDTH // 2), 120, dtype=np.uint8)
        frames.append(np.concatenate([y.astype(np.uint8).ravel(), u.ravel(), v.ravel()]))
    return frames


def stamp_value(time_us: int, index: int) -> int:
    """The stamp of base picture ``index`` captured at ``time_us``: the time's bits with
    the index in the low :data:`INDEX_BITS` (an error of at most 32 us in the latency)."""
    mask = (1 << INDEX_BITS) - 1
    return ((time_us & 0xFFFFFFFF) & ~mask) | (index & mask)


def sent_picture(bases: list[np.ndarray], stamp: int) -> np.ndarray:
    """The Y plane (HEIGHT x WIDTH) the publisher sent with ``stamp``."""
    buf = bases[(stamp & ((1 << INDEX_BITS) - 1)) % len(bases)].copy()
    paint_stamp(buf, stamp)
    return buf[: WIDTH * HEIGHT].reshape(HEIGHT, WIDTH)


def paint_stamp(buf: np.ndarray, value: int) -> None:
    """Paint ``value`` (32 bits) and its complement into the top rows of an I420 buffer."""
    y = buf[: WIDTH * HEIGHT].reshape(HEIGHT, WIDTH)
    bits = [(value >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    for row, row_bits in enumerate((bits, [1 - b for b in bits])):
        band = y[row * BLOCK : (row + 1) * BLOCK].reshape(BLOCK, BITS, BLOCK)
        band[:] = np.where(np.array(row_bits, dtype=bool), HIGH, LOW).astype(np.uint8)[
            None, :, None
        ]
    chroma = (WIDTH // 2) * (HEIGHT // 2)
    for plane in range(2):
        start = WIDTH * HEIGHT + plane * chroma
        c = buf[start : start + chroma].reshape(HEIGHT // 2, WIDTH // 2)
        c[: STAMP_ROWS * BLOCK // 2] = 128


def read_stamp(frame: Any) -> int | None:
    """The stamp painted by :func:`paint_stamp` into an I420 ``frame`` of any size, or None."""
    w, h = frame.width, frame.height
    y = np.frombuffer(frame.data, dtype=np.uint8, count=w * h).reshape(h, w)
    sx, sy = w / WIDTH, h / HEIGHT
    half = max(1, int(BLOCK * min(sx, sy) / 4))
    bits: list[int] = []
    for row in range(STAMP_ROWS):
        cy = int((row + 0.5) * BLOCK * sy)
        for col in range(BITS):
            cx = int((col + 0.5) * BLOCK * sx)
            patch = y[cy - half : cy + half, cx - half : cx + half]
            bits.append(1 if float(patch.mean()) > (LOW + HIGH) / 2 else 0)
    value = int("".join(map(str, bits[:BITS])), 2)
    check = int("".join(map(str, bits[BITS:])), 2)
    return value if value ^ check == 0xFFFFFFFF else None


def _needs_video_publishing(rtc: Any) -> str | None:
    if not hasattr(rtc, "LocalVideoTrack"):
        return "not available: this SDK has no LocalVideoTrack (video publishing)"
    return None


async def _video(ctx: Context, codec_name: str) -> None:
    rtc, res = ctx.rtc, ctx.result
    codec = getattr(rtc.VideoCodec, codec_name)
    room = await ctx.connect("camera")
    sink = await ctx.start_peer("video_sink", identity="viewer")
    source = rtc.VideoSource(WIDTH, HEIGHT)
    ctx.closing(source.aclose)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    bases = _base_frames(FPS)
    captured = {"n": 0}

    async def capture() -> None:
        start = time.perf_counter()
        k = 0
        while True:
            delay = start + k / FPS - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:  # far behind: skip ahead rather than burst
                k = int((time.perf_counter() - start) * FPS)
            index = k % len(bases)
            buf = bases[index].copy()
            paint_stamp(buf, stamp_value(time.monotonic_ns() // 1000, index))
            frame = rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, buf.tobytes())
            source.capture_frame(frame)
            captured["n"] += 1
            k += 1

    spawn(ctx, capture())
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        video_codec=codec,
        simulcast=False,
        video_encoding=rtc.VideoEncoding(max_bitrate=2_500_000, max_framerate=FPS),
    )
    await asyncio.wait_for(room.local_participant.publish_track(track, options), 20)
    got = await sink.request({"cmd": "wait_frames", "count": 15, "timeout": 30}, timeout=40)
    if got["frames"] < 15:
        raise TimeoutError(f"the subscriber got only {got['frames']} frames in 30 s")
    await asyncio.sleep(ctx.pick(1.0, 3.0))  # encoder ramp-up, bandwidth estimation
    window = ctx.pick(3.0, 10.0)
    await sink.request({"cmd": "window_start", "score": True})
    cpu0, t0, n0 = cpu_seconds(), time.monotonic(), captured["n"]
    await asyncio.sleep(window)
    cpu1, t1, n1 = cpu_seconds(), time.monotonic(), captured["n"]
    report = await sink.request({"cmd": "window_stop"}, timeout=60)
    elapsed = t1 - t0
    latencies = report["latencies_ms"]
    res.metric(
        "publish_cpu_s_per_min",
        (cpu1 - cpu0) / elapsed * 60,
        "CPU s/min",
        label="publisher process",
    )
    res.metric(
        "subscribe_cpu_s_per_min",
        report["cpu_s"] / report["elapsed_s"] * 60,
        "CPU s/min",
        label="subscriber process",
    )
    res.metric(
        "fps_received",
        report["frames"] / report["elapsed_s"],
        "fps",
        better="higher",
        label="frames received per second",
    )
    if report.get("scored"):
        res.metric(
            "picture_psnr_db",
            report["psnr_db"],
            "dB",
            better="higher",
            label="received picture PSNR (Y)",
        )
        res.metric(
            "picture_ssim",
            report["ssim"],
            "SSIM",
            better="higher",
            label="received picture SSIM (Y)",
        )
    if latencies:
        res.metric("latency_p50_ms", percentile(latencies, 50), "ms", label="frame latency p50")
        res.metric("latency_p95_ms", percentile(latencies, 95), "ms", label="frame latency p95")
        res.add_samples("latency_ms", latencies, "ms")
    res.note(
        f"captured {(n1 - n0) / elapsed:.1f} fps; received sizes {report['sizes']}; "
        f"{report['invalid']} frames without a readable stamp; "
        f"{report.get('scored', 0)} received pictures scored, PSNR min "
        f"{report.get('psnr_min_db', float('nan')):.2f} dB, SSIM min "
        f"{report.get('ssim_min', float('nan')):.4f}"
    )


async def video_vp8(ctx: Context) -> None:
    await _video(ctx, "VP8")


async def video_h264(ctx: Context) -> None:
    await _video(ctx, "H264")


_DOC = (
    "The SDK under test publishes a 1280x720 camera track at 30 fps, {codec}, without "
    "simulcast, capped at 2.5 Mbit/s, from I420 pictures with motion; a peer process of "
    "the same SDK subscribes with a `VideoStream` (I420). Each picture carries its "
    "capture time painted in as black and white blocks, read back by the subscriber. "
    "After the encoder has ramped up, over 10 s (3 s quick): the publisher's CPU "
    "(seconds per minute), the subscriber's CPU, frames received per second and the "
    "frame latency (p50, p95) through the server, and the PSNR and SSIM of the luma "
    "of every 4th received 1280x720 picture (up to 24, scored after the window) against "
    "the picture sent. Reported as not available for an SDK "
    "without `LocalVideoTrack`."
)

SCENARIOS = [
    Scenario(
        name="video_vp8",
        group="video",
        title="Video 720p30 VP8",
        doc=_DOC.format(codec="VP8"),
        run=video_vp8,
        budget_quick=60,
        budget_full=100,
        requires=_needs_video_publishing,
    ),
    Scenario(
        name="video_h264",
        group="video",
        title="Video 720p30 H.264",
        doc=_DOC.format(codec="H.264"),
        run=video_h264,
        budget_quick=60,
        budget_full=100,
        requires=_needs_video_publishing,
    ),
]
