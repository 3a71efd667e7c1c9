"""Local work: no server, no network, just the SDK's own media code on this CPU."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks.common import Context, median
from benchmarks.scenarios import Scenario


def _time_calls(fn: Callable[[], object], count: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``count`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


async def video_convert(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    w, h = 1920, 1080
    pixels = np.random.default_rng(1).integers(0, 256, w * h * 4, dtype=np.uint8)
    rgba = rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, bytearray(pixels.tobytes()))
    i420 = rgba.convert(rtc.VideoBufferType.I420)
    count = ctx.pick(5, 30)
    to_i420 = _time_calls(lambda: rgba.convert(rtc.VideoBufferType.I420), count, 2)
    to_rgba = _time_calls(lambda: i420.convert(rtc.VideoBufferType.RGBA), count, 2)
    res.metric("rgba_to_i420_ms", median(to_i420), "ms", label="1080p RGBA -> I420")
    res.metric("i420_to_rgba_ms", median(to_rgba), "ms", label="1080p I420 -> RGBA")
    res.add_samples("rgba_to_i420_ms", to_i420, "ms")
    res.add_samples("i420_to_rgba_ms", to_rgba, "ms")


def _speechlike(seconds: float, rate: int) -> np.ndarray:
    """Deterministic int16 mono: a few harmonics with a slow envelope, plus a little noise."""
    rng = np.random.default_rng(2)
    t = np.arange(int(seconds * rate)) / rate
    x: np.ndarray = np.zeros_like(t)
    for i, f in enumerate((180, 360, 720, 1440, 2900)):
        x = x + np.sin(2 * np.pi * f * t) / (i + 1)
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t))
    peak = float(np.max(np.abs(x)))
    pcm: np.ndarray = (0.25 * 32767 * x / peak).astype(np.int16)
    return pcm


async def audio_resampler(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    seconds = ctx.pick(5.0, 20.0)
    pcm = _speechlike(seconds, 48000)
    step = 480  # 10 ms frames, as a microphone delivers them
    frames = [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), 48000, 1, step)
        for i in range(0, len(pcm) - step + 1, step)
    ]
    warm = rtc.AudioResampler(48000, 16000, num_channels=1)
    for frame in frames[:100]:
        warm.push(frame)
    warm.flush()
    runs = []
    produced = 0
    for _ in range(ctx.pick(3, 5)):
        resampler = rtc.AudioResampler(48000, 16000, num_channels=1)
        produced = 0
        start = time.perf_counter()
        for frame in frames:
            for out in resampler.push(frame):
                produced += out.samples_per_channel
        for out in resampler.flush():
            produced += out.samples_per_channel
        runs.append(time.perf_counter() - start)
    wall = median(runs)
    res.metric("x_realtime", seconds / wall, "x real time", better="higher", label="48k -> 16k")
    res.note(f"{wall / len(frames) * 1e6:.1f} us per 10 ms frame")
    if abs(produced - seconds * 16000) > 1600:
        res.note(f"produced {produced} samples at 16 kHz for {seconds:g} s of input")


async def combine_frames(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    rng = np.random.default_rng(3)
    step = 480
    frames = [
        rtc.AudioFrame(
            rng.integers(-3000, 3000, step * 2, dtype=np.int16).tobytes(), 48000, 2, step
        )
        for _ in range(100)
    ]  # one second of 10 ms 48 kHz stereo frames
    times = _time_calls(lambda: rtc.combine_audio_frames(frames), ctx.pick(30, 300), 5)
    combined = rtc.combine_audio_frames(frames)
    if combined.samples_per_channel != 100 * step:
        res.note(f"combined {combined.samples_per_channel} samples, expected {100 * step}")
    res.metric("ms_per_call", median(times), "ms", label="100 x 10 ms stereo frames")
    res.add_samples("ms_per_call", times, "ms")


async def apm(ctx: Context) -> None:
    rtc, res = ctx.rtc, ctx.result
    rate, step = 48000, 480
    near_pcm = _speechlike(2.0, rate)
    rng = np.random.default_rng(4)
    far_pcm = (near_pcm.astype(np.float64) * 0.5 + rng.normal(0, 300, len(near_pcm))).astype(
        np.int16
    )
    count = len(near_pcm) // step

    def frames(pcm: np.ndarray) -> list[object]:
        return [
            rtc.AudioFrame(pcm[i * step : (i + 1) * step].tobytes(), rate, 1, step)
            for i in range(count)
        ]

    module = rtc.AudioProcessingModule(
        echo_cancellation=True,
        noise_suppression=True,
        high_pass_filter=True,
        auto_gain_control=True,
    )
    module.set_stream_delay_ms(20)
    per_frame: list[float] = []
    rounds = ctx.pick(2, 15)  # two seconds of audio each
    for r in range(rounds + 1):
        nears, fars = frames(near_pcm), frames(far_pcm)  # fresh: processing is in place
        times = []
        for near, far in zip(nears, fars, strict=True):
            start = time.perf_counter()
            module.process_reverse_stream(far)
            module.process_stream(near)
            times.append((time.perf_counter() - start) * 1e6)
        if r > 0:  # the first round warms up the filters
            per_frame.extend(times)
    us = median(per_frame)
    res.metric("us_per_10ms", us, "us", label="10 ms, AEC+NS+HPF+AGC")
    res.note(f"{10_000.0 / us:.1f} x real time")
    if ctx.sdk == "ours":
        from livekit_py.dsp.noise_suppression import noise_suppressor_backend

        res.note(f"noise suppressor: {noise_suppressor_backend()}")
    res.add_samples("us_per_10ms", per_frame, "us")


_IMPORT_PROBE = """
import json, resource, sys, time
start = time.process_time()
{statement}
cpu = time.process_time() - start
rss = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
print(json.dumps({{"cpu_s": cpu, "rss_mb": rss, "modules": len(sys.modules)}}))
"""


async def import_cost(ctx: Context) -> None:
    """CPU and memory of importing the SDK, each time in a fresh interpreter."""
    import asyncio
    import json
    import os
    import sys

    res = ctx.result
    statement = "from livekit_py import rtc" if ctx.sdk == "ours" else "from livekit import rtc"
    code = _IMPORT_PROBE.format(statement=statement)
    cpu, rss, modules = [], [], []
    for _ in range(ctx.pick(3, 10)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        out, _ = await proc.communicate()
        sample = json.loads(out.decode().strip().splitlines()[-1])
        cpu.append(sample["cpu_s"] * 1e3)
        rss.append(sample["rss_mb"])
        modules.append(sample["modules"])
    res.metric("import_cpu_ms", median(cpu), "ms", label="CPU of the import, fresh interpreter")
    res.metric("import_rss_mb", median(rss), "MiB", label="RSS after the import")
    res.metric("import_modules", median(modules), "modules", label="modules loaded")
    res.add_samples("import_cpu_ms", cpu, "ms")


def _local(name: str, title: str, doc: str, fn: object, quick: float, full: float) -> Scenario:
    return Scenario(
        name=name,
        group="local",
        title=title,
        doc=doc,
        run=fn,  # type: ignore[arg-type]
        budget_quick=quick,
        budget_full=full,
        needs_server=False,
    )


SCENARIOS = [
    _local(
        "local_import_cost",
        "Importing the SDK",
        "CPU time, resident memory and module count of `from livekit_py import rtc` "
        "(ours) and `from livekit import rtc` (official), each measured in a fresh "
        "interpreter started for it; median of 10 (3 quick).",
        import_cost,
        30,
        60,
    ),
    _local(
        "local_video_convert",
        "VideoFrame.convert at 1080p",
        "A 1920x1080 RGBA frame of random pixels is converted to I420, and an I420 frame "
        "back to RGBA, with `VideoFrame.convert`; median milliseconds per conversion "
        "over 30 calls each (5 quick), after two warm-up calls.",
        video_convert,
        40,
        90,
    ),
    _local(
        "local_audio_resampler",
        "AudioResampler 48 kHz -> 16 kHz",
        "A speech-like 48 kHz mono signal is pushed through `AudioResampler(48000, 16000)` "
        "(default, medium quality) in 10 ms frames, as a microphone delivers them, then "
        "flushed; 20 s of audio, median of 5 passes (5 s, 3 passes quick), after a "
        "warm-up. The figure is how many times faster than real time that is (seconds of "
        "audio per second of wall time); the notes give the cost per 10 ms frame.",
        audio_resampler,
        40,
        90,
    ),
    _local(
        "local_combine_audio_frames",
        "combine_audio_frames",
        "`combine_audio_frames` joins one second of audio given as 100 frames of 10 ms, "
        "48 kHz stereo; median milliseconds per call over 300 calls (30 quick), after "
        "five warm-up calls.",
        combine_frames,
        30,
        60,
    ),
    _local(
        "local_apm",
        "AudioProcessingModule, all four features",
        "An `AudioProcessingModule` with echo cancellation, noise suppression, high-pass "
        "filter and automatic gain control processes 10 ms frames of 48 kHz mono: "
        "`process_reverse_stream` (the far end) and `process_stream` (the microphone) per "
        "frame, on a speech-like signal and its noisy echo. Median microseconds per 10 ms "
        "frame over 30 s of audio (4 s quick), after a two-second warm-up; the notes give "
        "the resulting multiple of real time.",
        apm,
        40,
        120,
    ),
]
