"""Signal generation and analysis shared by the audio integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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


# -- a tone through a lossy link: how much of it arrives intact ---------------------------

FRAME_MS = 10


def tone_level_dbfs(amplitude: float) -> float:
    """The RMS level (dBFS) of a sine of peak ``amplitude`` (full scale 1.0)."""
    return 20 * float(np.log10(amplitude / np.sqrt(2)))


def good_tone_frames(
    frames: np.ndarray,
    rate: int,
    freq: float,
    expected_dbfs: float,
    *,
    tolerance_db: float = 6.0,
    min_tone_share: float = 0.9,
) -> np.ndarray:
    """Which 10 ms frames (rows of int16 ``frames``) carry the tone intact.

    A frame is good when its RMS level is within ``tolerance_db`` of ``expected_dbfs``
    and at least ``min_tone_share`` of its energy is the ``freq`` sinusoid: the
    least-squares fit of a sine and a cosine at ``freq`` over the frame (any phase;
    exact for a frame shorter than a period of the frequency grid, unlike an FFT bin).
    A frame with a hole, a click, a wrong frequency, noise or a faded level fails.
    """
    if frames.ndim != 2 or frames.shape[1] < 2:
        raise ValueError(f"frames must be shaped (n, samples per frame), got {frames.shape}")
    x = frames.astype(np.float64) / 32768.0
    n = np.arange(frames.shape[1]) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * n), np.cos(2 * np.pi * freq * n)], axis=1)
    gram = basis.T @ basis
    coeffs = np.linalg.solve(gram, (x @ basis).T).T
    tone = np.einsum("ij,jk,ik->i", coeffs, gram, coeffs)
    total = np.einsum("ij,ij->i", x, x)
    share = np.divide(tone, total, out=np.zeros_like(total), where=total > 0)
    level = 10 * np.log10(np.maximum(total / frames.shape[1], 1e-18))
    good: np.ndarray = (np.abs(level - expected_dbfs) <= tolerance_db) & (share >= min_tone_share)
    return good


@dataclass
class ToneRecorder:
    """Keeps what an AudioStream (either SDK's, mono) delivers, with when it came.

    ``frames()`` cuts the samples into 10 ms frames, each timed by the delivery of its
    last sample, for :func:`tone_quality`.
    """

    rate: int = 48000
    chunks: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def add(self, samples: np.ndarray, now: float) -> None:
        self.chunks.append(np.asarray(samples, dtype=np.int16).reshape(-1))
        self.times.append(now)

    async def run(self, stream: Any) -> None:
        async for event in stream:
            self.add(np.frombuffer(event.frame.data, dtype=np.int16), time.monotonic())

    def frames(self) -> tuple[np.ndarray, np.ndarray]:
        """(delivery time of each 10 ms frame, the frames shaped (n, rate // 100))."""
        size = self.rate * FRAME_MS // 1000
        if not self.chunks:
            return np.zeros(0), np.zeros((0, size), dtype=np.int16)
        pcm = np.concatenate(self.chunks)
        count = len(pcm) // size
        ends = np.cumsum([len(c) for c in self.chunks])
        last_sample = (np.arange(count) + 1) * size - 1
        times = np.asarray(self.times)[np.searchsorted(ends, last_sample, side="right")]
        return times, pcm[: count * size].reshape(count, size)


@dataclass
class LoopLag:
    """A ticker on the event loop: how late each of its wake-ups was (the loop's own delay)."""

    period: float = 0.005
    times: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            now = time.monotonic()
            self.times.append(now)
            self.lags.append(max(0.0, now - before - self.period))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.times), np.asarray(self.lags)

    def worst_ms(self) -> float:
        return max(self.lags, default=0.0) * 1e3


def _max_lag(lag_times: np.ndarray, lags: np.ndarray, start: float, end: float) -> float:
    """The worst lateness of the test's own loop seen by a ticker waking within [start, end]."""
    lo = int(np.searchsorted(lag_times, start, side="left"))
    hi = int(np.searchsorted(lag_times, end, side="right"))
    return float(lags[lo:hi].max()) if hi > lo else 0.0


@dataclass(frozen=True)
class ToneQuality:
    """What a listener got of a tone during a window; see :func:`tone_quality`.

    Attributes:
        seconds: The window's length.
        frames: 10 ms frames delivered in the window.
        good_frames: Those that are good (:func:`good_tone_frames`).
        missing_frames: 10 ms slots of the window the stream never delivered (it fell
            behind the clock: audio that is gone, not late).
        longest_run_ms: The longest run of consecutive not-good slots (delivered or
            missing), times 10 ms.
        longest_stall_ms: The longest wait between two delivered frames, less one frame
            and less the test loop's own lateness over that wait (a late frame that is
            not missing audio, e.g. a jitter buffer that stalls and then catches up).
            Waits up to 20 ms (a 20 ms packet decoded into two frames at once) are 0.
    """

    seconds: float
    frames: int
    good_frames: int
    missing_frames: int
    longest_run_ms: float
    longest_stall_ms: float

    @property
    def good_per_second(self) -> float:
        return self.good_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def longest_gap_ms(self) -> float:
        """The longest time without good audio: the longer of the run and the stall."""
        return max(self.longest_run_ms, self.longest_stall_ms)

    def summary(self) -> str:
        return (
            f"{self.good_per_second:.1f} good frames/s, longest gap {self.longest_gap_ms:.0f} ms "
            f"(run {self.longest_run_ms:.0f}, stall {self.longest_stall_ms:.0f}); "
            f"{self.frames} frames delivered, {self.good_frames} good, "
            f"{self.missing_frames} missing in {self.seconds:.1f} s"
        )


def tone_quality(
    times: np.ndarray,
    frames: np.ndarray,
    *,
    start: float,
    end: float,
    recorded_until: float,
    rate: int,
    freq: float,
    expected_dbfs: float,
    loop_lag: tuple[np.ndarray, np.ndarray] | None = None,
) -> ToneQuality:
    """Score a received tone over the wall-clock window [start, end).

    Args:
        times: When each 10 ms frame was delivered (monotonic seconds, non-decreasing).
        frames: The frames, int16, shaped (len(times), rate // 100).
        start: The window's start (after the warm-up).
        end: Its end; frames should keep being recorded a while past it, so that a
            late frame near the end is not taken for a missing one.
        recorded_until: When the recording stopped (>= the last time): a stream that
            stopped delivering before it is missing that audio.
        rate: Sample rate.
        freq: The tone's frequency.
        expected_dbfs: The tone's RMS level as sent.
        loop_lag: (wake times, lateness) of a ticker on the test's event loop: the
            loop's own delays are not held against the stream's stalls.

    Missing slots: the stream should deliver one frame per 10 ms. Its deficit at frame
    k is ``(times[k] - times[0]) / 10 ms - k``; a frame that is only late raises the
    deficit until the frames after it catch up, audio that never comes raises it for
    good. The lasting part (the lowest deficit from k on) counts as missing slots, put
    just before the frame where it grew, on a timeline of these lasting arrival times,
    which decides what lies in the window.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) != len(frames):
        raise ValueError(f"times ({times.shape}) and frames ({frames.shape}) must match")
    if not end > start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if len(times) and (np.any(np.diff(times) < 0) or recorded_until < times[-1]):
        raise ValueError("times must not decrease, and recorded_until must not precede them")
    step = FRAME_MS / 1e3
    n_window = round((end - start) / step)
    if len(times) == 0:
        return ToneQuality(end - start, 0, 0, n_window, n_window * FRAME_MS, (end - start) * 1e3)
    good = good_tone_frames(frames, rate, freq, expected_dbfs)
    # the end of the recording is one more (virtual) frame, due a step after the last
    # one at the earliest: a stream that went quiet before it has a lasting deficit too
    arrivals = np.append(times, max(recorded_until, times[-1] + step))
    deficit = (arrivals - arrivals[0]) / step - np.arange(len(arrivals))
    lasting = np.minimum.accumulate(deficit[::-1])[::-1]
    missing_so_far = np.floor(lasting - lasting[0] + 0.5).astype(np.int64)
    # the slot timeline: frame k is slot k + missing_so_far[k], at base + slot * step
    slots = np.arange(len(arrivals)) + missing_so_far
    base = arrivals[0] + lasting[0] * step
    n_slots = int(slots[-1])
    slot_good = np.zeros(n_slots, dtype=bool)
    slot_good[slots[:-1]] = good
    delivered = np.zeros(n_slots, dtype=bool)
    delivered[slots[:-1]] = True
    # the window's slots; those before the recording or after it are missing
    first = int(np.ceil((start - base) / step - 1e-6))
    wanted = np.arange(first, first + n_window)
    inside = (wanted >= 0) & (wanted < n_slots)
    window_good = np.zeros(n_window, dtype=bool)
    window_good[inside] = slot_good[wanted[inside]]
    frames_in = int(delivered[wanted[inside]].sum())
    # the longest run of not-good slots
    padded = np.concatenate([[1], window_good.astype(np.int8), [1]])
    edges = np.flatnonzero(np.diff(padded))
    runs = edges[1::2] - edges[0::2]
    longest_run = float(runs.max(initial=0)) * FRAME_MS
    # the longest stall between two delivered frames, the later one in the window
    stall = 0.0
    k_lo, k_hi = (int(v) for v in np.searchsorted(times, [start, end]))
    k_lo = max(k_lo, 1)
    if k_hi > k_lo:
        waits = times[k_lo:k_hi] - times[k_lo - 1 : k_hi - 1] - step
        # a wait of two frames (a 20 ms packet decoded into two) is no stall
        for i in np.flatnonzero(waits > step + 1e-6).tolist():
            k = k_lo + i
            lag = 0.0
            if loop_lag is not None:
                lag = _max_lag(*loop_lag, times[k - 1], times[k] + 2 * step)
            stall = max(stall, float(waits[i]) - lag)
    return ToneQuality(
        seconds=end - start,
        frames=frames_in,
        good_frames=int(window_good.sum()),
        missing_frames=n_window - frames_in,
        longest_run_ms=longest_run,
        longest_stall_ms=stall * 1e3,
    )
