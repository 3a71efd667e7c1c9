"""Signal generation and analysis shared by the audio integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np


def sine_block(
    freq: float, amplitude: float, rate: int, channels: int, start: int, samples: int
) -> np.ndarray:
    """int16 interleaved samples of a sine, continuing from sample index ``start``."""
    t = (np.arange(start, start + samples) / rate).astype(np.float64)
    mono = (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.repeat(mono, channels) if channels > 1 else mono


async def feed_sine(
    source: Any,
    frame_cls: Any,
    freq: float,
    *,
    amplitude: float = 0.5,
    seconds: float = 60.0,
) -> None:
    """Capture a sine into ``source`` (ours or the official one) in 10 ms frames.

    capture_frame's back-pressure paces the loop to real time once the source's
    queue is full.
    """
    rate, channels = source.sample_rate, source.num_channels
    step = rate // 100
    n = 0
    while n < seconds * rate:
        block = sine_block(freq, amplitude, rate, channels, n, step)
        frame = frame_cls(block.tobytes(), rate, channels, step)
        await source.capture_frame(frame)
        n += step


@contextlib.asynccontextmanager
async def background(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def collect_audio(
    stream: Any, seconds: float, *, skip_seconds: float = 0.5, timeout: float = 20.0
) -> tuple[np.ndarray, int, int]:
    """Read ``seconds`` of audio from an AudioStream (ours or official) after skipping some.

    Returns (int16 samples shaped (n, channels), sample_rate, channels).
    """
    chunks: list[np.ndarray] = []
    got = 0.0
    skipped = 0.0
    rate = channels = 0

    async def read() -> None:
        nonlocal got, skipped, rate, channels
        async for event in stream:
            frame = event.frame
            rate, channels = frame.sample_rate, frame.num_channels
            dur = frame.samples_per_channel / frame.sample_rate
            if skipped < skip_seconds:
                skipped += dur
                continue
            chunks.append(np.frombuffer(frame.data, dtype=np.int16).reshape(-1, channels).copy())
            got += dur
            if got >= seconds:
                return

    await asyncio.wait_for(read(), timeout)
    return np.concatenate(chunks), rate, channels


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    mono = samples.astype(np.float64).mean(axis=1) if samples.ndim == 2 else samples
    window = np.hanning(len(mono))
    spectrum = np.abs(np.fft.rfft(mono * window))
    freqs = np.fft.rfftfreq(len(mono), 1 / rate)
    return float(freqs[int(np.argmax(spectrum[1:])) + 1])


def rms_dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20 * np.log10(max(rms, 1e-9))


async def subscribed_track(room: Any, identity: str, *, timeout: float) -> Any:
    """Wait until ``room`` (either SDK's) is subscribed to a track of ``identity``; return it."""
    from tests.helpers import wait_until

    def find() -> Any:
        p = room.remote_participants.get(identity)
        if p is None:
            return None
        return next((pub.track for pub in p.track_publications.values() if pub.track), None)

    await wait_until(lambda: find() is not None, timeout=timeout, what=f"subscribed to {identity}")
    track = find()
    assert track is not None
    return track
