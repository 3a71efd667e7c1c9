"""AudioMixer: exact sums, clipping, timeouts, ending and closing; the official mixer as oracle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_mixer import AudioMixer
from tests.unit.fake_clock import FakeClock

# Our mixer runs on a FakeClock: its stream timeouts and the streams' own delays are on
# virtual time, so block counts are exact however loaded the machine is.


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _frames(
    pcm: np.ndarray,
    frame_size: int,
    *,
    rate: int = 48000,
    channels: int = 1,
    delay: float = 0.0,
    make: Any = AudioFrame,
    clock: FakeClock | None = None,
) -> AsyncIterator[Any]:
    """Yield ``pcm`` (interleaved int16) as frames of ``frame_size`` samples per channel.

    ``delay`` seconds before each frame, on ``clock`` (the real clock when None).
    """
    step = frame_size * channels
    for i in range(0, len(pcm), step):
        if clock is not None:
            await clock.sleep(delay)
        elif delay:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        chunk = pcm[i : i + step]
        yield make(chunk.tobytes(), rate, channels, len(chunk) // channels)


async def _collect(mixer: AudioMixer, clock: FakeClock, limit: float = 5.0) -> list[AudioFrame]:
    """Every frame of ``mixer``, letting ``clock`` run for at most ``limit`` virtual seconds."""

    async def run() -> list[AudioFrame]:
        return [frame async for frame in mixer]

    return await clock.run(run(), limit=limit)


def _samples(frames: list[Any]) -> np.ndarray:
    if not frames:
        return np.empty(0, dtype=np.int16)
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


def _rand(n: int, seed: int, high: int = 10000) -> np.ndarray:
    return np.random.default_rng(seed).integers(-high, high, n, dtype=np.int16)


async def test_two_streams_are_summed_exactly(clock: FakeClock) -> None:
    a, b = _rand(4800, 1), _rand(4800, 2)
    mixer = AudioMixer(48000, 1, blocksize=480, clock=clock)
    mixer.add_stream(_frames(a, 160, clock=clock))
    mixer.add_stream(_frames(b, 240, clock=clock))
    mixer.end_input()
    frames = await _collect(mixer, clock)
    assert len(frames) == 10
    for frame in frames:
        assert isinstance(frame, AudioFrame)
        assert (frame.sample_rate, frame.num_channels, frame.samples_per_channel) == (
            48000,
            1,
            480,
        )
    assert np.array_equal(_samples(frames), a.astype(np.int32) + b)


async def test_stereo_keeps_the_channels_apart(clock: FakeClock) -> None:
    left = np.full(960, 1000, dtype=np.int16)
    right = np.full(960, -2000, dtype=np.int16)
    pcm = np.stack([left, right], axis=1).reshape(-1)
    mixer = AudioMixer(16000, 2, blocksize=320, clock=clock)
    mixer.add_stream(_frames(pcm, 160, rate=16000, channels=2, clock=clock))
    mixer.add_stream(_frames(pcm, 320, rate=16000, channels=2, clock=clock))
    mixer.end_input()
    frames = await _collect(mixer, clock)
    assert [f.samples_per_channel for f in frames] == [320, 320, 320]
    out = _samples(frames).reshape(-1, 2)
    assert (out[:, 0] == 2000).all() and (out[:, 1] == -4000).all()


async def test_sums_are_clipped_to_int16(clock: FakeClock) -> None:
    high = np.full(480, 30000, dtype=np.int16)
    low = np.full(480, -30000, dtype=np.int16)
    mixer = AudioMixer(48000, 1, blocksize=480, clock=clock)
    for pcm in (
        np.concatenate([high, low]),
        np.concatenate([high, low]),
        np.concatenate([high, low]),
    ):
        mixer.add_stream(_frames(pcm, 480, clock=clock))
    mixer.end_input()
    out = _samples(await _collect(mixer, clock))
    assert (out[:480] == 32767).all()
    assert (out[480:] == -32768).all()


async def test_default_blocksize_is_a_tenth_of_a_second(clock: FakeClock) -> None:
    mixer = AudioMixer(24000, 1, clock=clock)
    mixer.add_stream(_frames(np.ones(4800, dtype=np.int16), 480, rate=24000, clock=clock))
    mixer.end_input()
    frames = await _collect(mixer, clock)
    assert [f.samples_per_channel for f in frames] == [2400, 2400]
    assert frames[0].duration == pytest.approx(0.1)


async def test_short_and_uneven_streams_are_padded_with_silence(clock: FakeClock) -> None:
    a = np.full(1000, 3, dtype=np.int16)  # ends inside the third block
    b = np.full(300, 5, dtype=np.int16)  # ends inside the first block
    mixer = AudioMixer(8000, 1, blocksize=400, clock=clock)
    mixer.add_stream(_frames(a, 100, rate=8000, clock=clock))
    mixer.add_stream(_frames(b, 70, rate=8000, clock=clock))
    mixer.end_input()
    out = _samples(await _collect(mixer, clock))
    expected = np.zeros(1200, dtype=np.int32)
    expected[:1000] += 3
    expected[:300] += 5
    assert np.array_equal(out, expected)


async def test_a_stalled_stream_contributes_silence_and_keeps_its_late_audio(
    clock: FakeClock,
) -> None:
    block = 480
    steady = np.full(block * 8, 10, dtype=np.int16)

    async def late() -> AsyncIterator[AudioFrame]:
        # silent for about four 20 ms blocks, then one block of audio
        await clock.sleep(0.15)
        yield AudioFrame(np.full(block, 100, dtype=np.int16).tobytes(), 48000, 1, block)

    mixer = AudioMixer(48000, 1, blocksize=block, stream_timeout_ms=20, clock=clock)
    mixer.add_stream(_frames(steady, block, delay=0.02, clock=clock))
    mixer.add_stream(late())
    mixer.end_input()
    frames = await _collect(mixer, clock)
    out = _samples(frames).reshape(-1, block)
    assert len(out) == 8
    # each block is all-steady or all-steady-plus-late: the late audio was not lost
    sums = out[:, 0].tolist()
    assert all((row == row[0]).all() for row in out)
    assert sums.count(110) == 1
    assert sums.count(10) == 7
    assert sums.index(110) >= 2  # it arrived only after some timed-out rounds
    # on the fake clock, exactly: it came at 150 ms, in the round mixing 140-160 ms
    assert sums == [10] * 7 + [110]


async def test_timeouts_are_logged(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> None:
    async def slow() -> AsyncIterator[AudioFrame]:
        await clock.sleep(0.1)
        yield AudioFrame.create(48000, 1, 480)

    mixer = AudioMixer(48000, 1, blocksize=480, stream_timeout_ms=10, clock=clock)
    mixer.add_stream(slow())
    mixer.end_input()
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        frames = await _collect(mixer, clock)
    assert len(frames) == 1
    assert any("timed out" in r.getMessage() for r in caplog.records)
    assert all(r.name.startswith("livekit_py") for r in caplog.records)


async def test_end_input_without_streams_ends_iteration(clock: FakeClock) -> None:
    mixer = AudioMixer(48000, 1, clock=clock)
    mixer.end_input()
    assert await _collect(mixer, clock, limit=1.0) == []
    with pytest.raises(StopAsyncIteration):
        await mixer.__anext__()  # stays ended


async def test_iteration_waits_for_end_input(clock: FakeClock) -> None:
    mixer = AudioMixer(48000, 1, blocksize=480, clock=clock)
    mixer.add_stream(_frames(np.ones(480, dtype=np.int16), 480, clock=clock))
    first = await clock.run(mixer.__anext__(), limit=1.0)
    assert first.samples_per_channel == 480
    # the stream is exhausted but more streams may come: no end yet
    nxt = asyncio.ensure_future(mixer.__anext__())
    await clock.advance(0.05)
    assert not nxt.done()
    mixer.add_stream(_frames(np.full(480, 2, dtype=np.int16), 480, clock=clock))
    second = await clock.run(nxt, limit=1.0)
    assert second.data[0] == 2
    mixer.end_input()
    assert await _collect(mixer, clock, limit=1.0) == []


async def test_a_stream_that_never_ends_is_given_up_after_end_input(clock: FakeClock) -> None:
    started = asyncio.Event()

    async def forever() -> AsyncIterator[AudioFrame]:
        started.set()
        await asyncio.sleep(3600)
        yield AudioFrame.create(48000, 1, 480)

    mixer = AudioMixer(48000, 1, blocksize=480, stream_timeout_ms=5, clock=clock)
    mixer.add_stream(forever())
    await started.wait()
    mixer.end_input()
    assert await _collect(mixer, clock, limit=2.0) == []


async def test_add_stream_after_end_input_is_refused(clock: FakeClock) -> None:
    mixer = AudioMixer(48000, 1, clock=clock)
    mixer.end_input()
    with pytest.raises(RuntimeError, match="end_input"):
        mixer.add_stream(_frames(np.ones(480, dtype=np.int16), 480, clock=clock))
    await mixer.aclose()


async def test_remove_stream_cancels_its_read(clock: FakeClock) -> None:
    cancelled = asyncio.Event()

    async def stuck() -> AsyncIterator[AudioFrame]:
        try:
            await asyncio.sleep(3600)
            yield AudioFrame.create(48000, 1, 480)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    steady = np.full(480 * 20, 7, dtype=np.int16)
    mixer = AudioMixer(48000, 1, blocksize=480, stream_timeout_ms=10, clock=clock)
    mixer.add_stream(_frames(steady, 480, delay=0.005, clock=clock))
    blocker = stuck()
    mixer.add_stream(blocker)
    first = await clock.run(mixer.__anext__(), limit=1.0)
    assert first.data[0] == 7
    mixer.remove_stream(blocker)
    mixer.remove_stream(blocker)  # a second removal is harmless
    await asyncio.wait_for(cancelled.wait(), 1.0)
    mixer.end_input()
    rest = await _collect(mixer, clock)
    assert (_samples(rest) == 7).all()
    assert 1 + len(rest) == 20


async def test_aclose_stops_mixing_and_cancels_reads(clock: FakeClock) -> None:
    cleaned_up = asyncio.Event()

    async def endless() -> AsyncIterator[AudioFrame]:
        # two frames, then a read that never completes: aclose() finds it pending
        try:
            for _ in range(2):
                await clock.sleep(0.01)
                yield AudioFrame(np.ones(480, dtype=np.int16).tobytes(), 48000, 1, 480)
            await asyncio.sleep(3600)
        finally:
            cleaned_up.set()

    mixer = AudioMixer(48000, 1, blocksize=480, capacity=2, clock=clock)
    mixer.add_stream(endless())
    waiter = asyncio.ensure_future(_gather(mixer))  # a consumer; the test moves the clock
    await clock.advance(0.05)
    await asyncio.wait_for(mixer.aclose(), 1.0)
    assert cleaned_up.is_set()
    frames = await asyncio.wait_for(waiter, 2.0)  # a consumer waiting on the mixer is released
    assert len(frames) == 2  # at 50 ms: both frames mixed, no timeout (100 ms) yet
    assert all(f.samples_per_channel == 480 for f in frames)
    with pytest.raises(StopAsyncIteration):
        await mixer.__anext__()
    with pytest.raises(RuntimeError):
        mixer.add_stream(endless())


async def test_capacity_applies_backpressure(clock: FakeClock) -> None:
    produced = 0

    async def counting() -> AsyncIterator[AudioFrame]:
        nonlocal produced
        while True:
            await asyncio.sleep(0)
            produced += 1
            yield AudioFrame.create(48000, 1, 480)

    mixer = AudioMixer(48000, 1, blocksize=480, capacity=3, clock=clock)
    mixer.add_stream(counting())
    await clock.advance(0.1)
    # three queued frames plus at most one block read ahead and one being put
    assert produced <= 5
    assert (await mixer.__anext__()).samples_per_channel == 480
    await mixer.aclose()


async def test_a_failing_stream_is_dropped(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    async def broken() -> AsyncIterator[AudioFrame]:
        yield AudioFrame(np.full(480, 1, dtype=np.int16).tobytes(), 48000, 1, 480)
        raise RuntimeError("decoder died")

    mixer = AudioMixer(48000, 1, blocksize=480, clock=clock)
    mixer.add_stream(broken())
    mixer.add_stream(_frames(np.full(480 * 3, 2, dtype=np.int16), 480, clock=clock))
    mixer.end_input()
    with caplog.at_level(logging.ERROR, logger="livekit_py"):
        out = _samples(await _collect(mixer, clock)).reshape(-1, 480)[:, 0].tolist()
    assert out == [3, 2, 2]
    assert any("failed" in r.getMessage() for r in caplog.records)


async def test_mismatched_frames_are_dropped(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    async def mixed_formats() -> AsyncIterator[AudioFrame]:
        yield AudioFrame(np.full(960, 9, dtype=np.int16).tobytes(), 48000, 2, 480)
        yield AudioFrame(np.full(441, 9, dtype=np.int16).tobytes(), 44100, 1, 441)
        yield AudioFrame(np.full(480, 4, dtype=np.int16).tobytes(), 48000, 1, 480)

    mixer = AudioMixer(48000, 1, blocksize=480, clock=clock)
    mixer.add_stream(mixed_formats())
    mixer.end_input()
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        out = _samples(await _collect(mixer, clock))
    assert (out == 4).all() and len(out) == 480
    assert sum("dropping" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sample_rate": 0, "num_channels": 1}, "sample_rate"),
        ({"sample_rate": 48000, "num_channels": 0}, "num_channels"),
        ({"sample_rate": 48000, "num_channels": 1, "blocksize": -1}, "blocksize"),
        ({"sample_rate": 48000, "num_channels": 1, "stream_timeout_ms": -5}, "stream_timeout_ms"),
        ({"sample_rate": 48000, "num_channels": 1, "capacity": -1}, "capacity"),
        ({"sample_rate": 5, "num_channels": 1}, "blocksize"),
    ],
)
async def test_bad_arguments(kwargs: dict[str, Any], name: str, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match=name):
        AudioMixer(**kwargs, clock=clock)


async def test_same_output_as_the_official_mixer(clock: FakeClock) -> None:
    """Three streams with different frame sizes and lengths, through both mixers."""
    pcms = [_rand(2 * 3000, 11), _rand(2 * 1700, 12), _rand(2 * 4100, 13, high=30000)]
    sizes = [100, 333, 480]

    async def run(mixer: Any, make: Any) -> list[Any]:
        for pcm, size in zip(pcms, sizes, strict=True):
            mixer.add_stream(_frames(pcm, size, rate=16000, channels=2, make=make))
        mixer.end_input()
        if isinstance(mixer, AudioMixer):
            return await clock.run(_gather(mixer), limit=5.0)
        return await asyncio.wait_for(_gather(mixer), 5.0)  # the official mixer: real time

    ours = await run(AudioMixer(16000, 2, blocksize=800, clock=clock), AudioFrame)
    theirs = await run(rtc.AudioMixer(16000, 2, blocksize=800), rtc.AudioFrame)
    assert [f.samples_per_channel for f in ours] == [f.samples_per_channel for f in theirs]
    assert np.array_equal(_samples(ours), _samples(theirs))
    assert len(ours) == 6  # 4100 samples -> six blocks of 800


async def _gather(mixer: Any) -> list[Any]:
    return [frame async for frame in mixer]
