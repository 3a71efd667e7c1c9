"""AudioSource (queue, back-pressure, real-time clock) and AudioSourceTrack (20 ms frames).

Timing tests run the source on a FakeClock: its playout clock ticks on virtual time, so
durations and block counts are exact however loaded the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from livekit_py.media.frame_source import FrameFanout
from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_source import LATENCY_BUDGET, AudioSource
from livekit_py.webrtc.source_tracks import AudioSourceTrack
from tests.unit.fake_clock import FakeClock


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Collector:
    """A frame sink keeping what it gets, and when (on ``clock``)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.frames: list[Any] = []
        self.ended = 0
        self.times: list[float] = []
        self._clock = clock

    def on_frame(self, frame: Any) -> None:
        self.frames.append(frame)
        if self._clock is not None:
            self.times.append(self._clock.now())

    def on_end(self) -> None:
        self.ended += 1

    def samples(self) -> np.ndarray:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in self.frames])


def pcm_frame(samples: np.ndarray, rate: int = 48000, channels: int = 1) -> AudioFrame:
    data = np.ascontiguousarray(samples, dtype=np.int16)
    return AudioFrame(data.tobytes(), rate, channels, data.size // channels)


def sine(freq: float, seconds: float, rate: int = 48000, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


# ---------------------------------------------------------------------- arguments


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AudioSource(0, 1)
    with pytest.raises(ValueError, match="num_channels"):
        AudioSource(48000, 3)
    with pytest.raises(ValueError, match="queue_size_ms"):
        AudioSource(48000, 1, queue_size_ms=-1)


async def test_properties_and_repr() -> None:
    source = AudioSource(24000, 2, queue_size_ms=500)
    assert source.sample_rate == 24000
    assert source.num_channels == 2
    assert source.queued_duration == 0.0
    assert "rtc.AudioSource(sample_rate=24000, num_channels=2" in repr(source)
    await source.aclose()


async def test_mismatched_frames_raise() -> None:
    source = AudioSource(48000, 1)
    with pytest.raises(ValueError, match=r"sample_rate is 16000 Hz.*48000"):
        await source.capture_frame(pcm_frame(np.zeros(160), rate=16000))
    with pytest.raises(ValueError, match=r"num_channels is 2.*1"):
        await source.capture_frame(pcm_frame(np.zeros(960), channels=2))
    assert source.queued_duration == 0.0
    await source.aclose()


# ---------------------------------------------------------------------- queue


async def test_capture_waits_when_queue_full(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, queue_size_ms=100, clock=clock)
    # 100 ms fit without waiting
    start = clock.now()
    await source.capture_frame(pcm_frame(np.ones(4800)))
    assert clock.now() - start < 0.05
    assert source.queued_duration == pytest.approx(0.1)

    # 60 ms more must wait for the clock to make room (about 60 ms)
    task = asyncio.create_task(source.capture_frame(pcm_frame(np.ones(2880))))
    await clock.advance(0.015)
    assert not task.done()
    assert source.queued_duration <= 0.1 + 1e-9
    await clock.run(task, limit=5)
    assert clock.now() - start >= 0.04
    assert source.queued_duration <= 0.1 + 1e-9
    await source.aclose()


async def test_frame_longer_than_queue_is_queued_in_pieces(clock: FakeClock) -> None:
    source = AudioSource(16000, 1, queue_size_ms=50, clock=clock)
    sink = Collector()
    source._fanout.subscribe(sink)
    start = clock.now()
    # 300 ms into a 50 ms queue: returns once the last piece is queued (~250 ms)
    await clock.run(source.capture_frame(pcm_frame(np.full(4800, 7), rate=16000)), limit=5)
    elapsed = clock.now() - start
    assert 0.15 <= elapsed <= 2.0
    await clock.run(source.wait_for_playout(), limit=5)
    played = sink.samples()
    assert np.count_nonzero(played == 7) == 4800
    await source.aclose()


async def test_clear_queue(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    await source.capture_frame(pcm_frame(np.ones(24000)))
    assert source.queued_duration == pytest.approx(0.5)
    source.clear_queue()
    assert source.queued_duration == 0.0
    await clock.run(source.wait_for_playout(), limit=0.1)
    await source.aclose()


async def test_clear_queue_drops_rest_of_waiting_capture(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, queue_size_ms=50, clock=clock)
    sink = Collector()
    source._fanout.subscribe(sink)
    task = asyncio.create_task(source.capture_frame(pcm_frame(np.full(48000, 3))))
    await clock.advance(0.05)
    assert not task.done()
    source.clear_queue()
    await clock.run(task, limit=1)
    await clock.advance(0.05)
    assert source.queued_duration == 0.0
    assert np.count_nonzero(sink.samples() == 3) < 48000 // 2
    await source.aclose()


async def test_wait_for_playout_takes_the_queued_duration(clock: FakeClock) -> None:
    source = AudioSource(48000, 2, clock=clock)
    await source.wait_for_playout()  # nothing captured: returns at once
    start = clock.now()
    await source.capture_frame(pcm_frame(np.ones(2 * 14400), channels=2))  # 300 ms
    await clock.run(source.wait_for_playout(), limit=5)
    elapsed = clock.now() - start
    assert 0.25 <= elapsed <= 1.5
    assert elapsed == pytest.approx(0.3)  # 30 ticks of 10 ms, exactly, on the fake clock
    assert source.queued_duration == 0.0
    await source.aclose()


async def test_real_time_pacing_of_one_second(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, queue_size_ms=100, clock=clock)
    sink = Collector()
    source._fanout.subscribe(sink)
    audio = sine(440, 1.0)
    start = clock.now()

    async def produce() -> None:
        for i in range(0, audio.size, 480):
            await source.capture_frame(pcm_frame(audio[i : i + 480]))
        await source.wait_for_playout()

    await clock.run(produce(), limit=5)
    elapsed = clock.now() - start
    assert 0.9 <= elapsed <= 2.5, elapsed
    # played out exactly, in 10 ms blocks with pts counting samples
    assert all(f.samples == 480 for f in sink.frames)
    assert [f.pts for f in sink.frames] == [480 * i for i in range(len(sink.frames))]
    assert sink.frames[0].time_base == Fraction(1, 48000)
    assert sink.frames[0].format.name == "s16"
    assert sink.frames[0].layout.name == "mono"
    played = sink.samples()
    first = int(np.flatnonzero(played)[0])
    assert np.array_equal(played[first - 1 : first - 1 + audio.size], audio)
    await source.aclose()


async def test_odd_frame_sizes_are_joined_exactly(clock: FakeClock) -> None:
    rate = 44100
    source = AudioSource(rate, 2, clock=clock)
    ramp = (np.arange(2 * 20000) % 30000 + 1).astype(np.int16)
    pos = 0
    sizes = [7, 331, 1000, 1, 4410, 97]
    i = 0
    while pos < ramp.size:
        n = 2 * sizes[i % len(sizes)]
        await source.capture_frame(pcm_frame(ramp[pos : pos + n], rate=rate, channels=2))
        pos += n
        i += 1
    sink = Collector()
    source._fanout.subscribe(sink)
    await clock.run(source.wait_for_playout(), limit=5)
    played = sink.samples()
    assert np.array_equal(played[: ramp.size], ramp)
    assert all(f.samples == 441 for f in sink.frames)
    assert sink.frames[0].layout.name == "stereo"
    await source.aclose()


async def test_rate_not_multiple_of_100_keeps_exact_time(clock: FakeClock) -> None:
    source = AudioSource(22050, 1, clock=clock)
    sink = Collector()
    source._fanout.subscribe(sink)
    await clock.advance(1.0)  # ticks at 0, 10, ..., 1000 ms
    assert len(sink.frames) == 101
    sizes = [f.samples for f in sink.frames[:100]]
    assert set(sizes) == {220, 221}
    assert sum(sizes) == 22050
    pts = [f.pts for f in sink.frames]
    assert all(
        b - a == f.samples for a, b, f in zip(pts[:-1], pts[1:], sink.frames[:-1], strict=True)
    )
    await source.aclose()


def ramp(count: int, start: int = 0) -> np.ndarray:
    """Samples that tell where they came from: index + 1 (mod 30000), never 0."""
    return ((np.arange(start, start + count) % 30000) + 1).astype(np.int16)


def assert_contiguous_pts(frames: list[Any]) -> None:
    pts = [f.pts for f in frames]
    assert pts == [frames[0].pts + sum(f.samples for f in frames[:i]) for i in range(len(pts))]


def steps_of(played: np.ndarray) -> np.ndarray:
    """How far each sample of a played ramp is from the one before (1: contiguous)."""
    return (np.diff(played.astype(np.int64)) - 1) % 30000 + 1


async def live_mic(source: AudioSource, clock: FakeClock, audio: np.ndarray) -> None:
    """A microphone on the clock: 10 ms frames, each delivered once it is recorded.

    When the loop was blocked, the frames recorded meanwhile are delivered at once.
    """
    start = clock.now()
    frames = audio.size // 480
    fed = 0
    while fed < frames:
        due = min(frames, int((clock.now() - start) * 100 + 1e-6))
        while fed < due:
            await source.capture_frame(pcm_frame(audio[fed * 480 : (fed + 1) * 480]))
            fed += 1
        await clock.sleep(start + (fed + 1) * 0.01 - clock.now())


async def test_late_wakeup_sends_the_due_blocks_at_once_in_order(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    await source.capture_frame(pcm_frame(ramp(48000)))  # 1 s queued
    await clock.advance(0.1)
    await clock.jump(0.08)  # as a blocked loop sees it: the clock wakes 80 ms late
    woke = clock.now()
    burst = [t for t in sink.times if t == woke]
    assert len(burst) == 8  # the blocks of 100-170 ms, and the one due at 180 ms
    await clock.advance(0.1)
    assert [t - woke for t in sink.times if t > woke] == pytest.approx(
        [0.01 * i for i in range(1, 11)]
    )
    assert_contiguous_pts(sink.frames)
    assert set(steps_of(sink.samples()).tolist()) == {1}  # all of it, in order, no silence
    assert source._dropped_samples == 0
    await source.aclose()


async def test_stall_longer_than_the_budget_drops_the_oldest_audio(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    await source.capture_frame(pcm_frame(ramp(48000)))  # 1 s queued
    await clock.advance(0.1)
    before = len(sink.frames)
    await clock.jump(0.5)
    woke = clock.now()
    burst = [t for t in sink.times if t == woke]
    # what is at most 100 ms late is sent (the blocks due at 500-600 ms); the 390 ms
    # before it are dropped, oldest first
    assert len(burst) == 11
    assert source._dropped_samples == 39 * 480
    assert source.queued_duration == pytest.approx(1.0 - (before + 39 + 11) * 0.01)
    assert_contiguous_pts(sink.frames)  # timestamps go on where they were
    steps = steps_of(sink.samples())
    jumps = np.flatnonzero(steps != 1)
    assert jumps.tolist() == [before * 480 - 1]
    assert steps[jumps[0]] == 39 * 480 + 1
    await source.aclose()


async def test_live_producer_on_a_loop_that_wakes_late(clock: FakeClock) -> None:
    """A microphone-like producer and the clock on one loop, late 30 ms every 100 ms, and
    once 500 ms: timestamps contiguous, no silence while audio exists, the queue within
    the budget, and only the audio of the long stall that is beyond the budget dropped."""
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    audio = ramp(48000 * 4)
    mic = asyncio.create_task(live_mic(source, clock, audio))
    queued: list[float] = []
    for step in range(30):
        await clock.advance(0.07)
        queued.append(source.queued_duration)
        await clock.jump(0.5 if step == 15 else 0.03)
        queued.append(source.queued_duration)
        await clock.settle()
        queued.append(source.queued_duration)
    await clock.run(mic, limit=5)
    await clock.advance(0.05)
    assert max(queued) <= LATENCY_BUDGET + 1e-9
    assert_contiguous_pts(sink.frames)
    played = sink.samples()
    first = int(np.flatnonzero(played)[0])
    played = played[first:]
    assert played[0] == 1
    assert np.count_nonzero(played[: played.size - 48000 // 10]) == played.size - 4800
    steps = steps_of(played[np.flatnonzero(played)])
    # one gap, from the 500 ms stall: what was more than 100 ms late (390-400 ms)
    assert np.count_nonzero(steps != 1) == 1
    dropped = int(steps[steps != 1][0]) - 1
    assert 0.38 * 48000 <= dropped <= 0.41 * 48000
    assert source._dropped_samples == dropped
    await source.aclose()


async def test_dry_queue_is_waited_for_not_filled_with_silence(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    await source.capture_frame(pcm_frame(ramp(4800)))  # 100 ms
    await clock.advance(0.13)  # the queue ran dry at 100 ms
    assert len(sink.frames) == 10
    late = clock.now()
    await source.capture_frame(pcm_frame(ramp(4800, start=4800)))
    await clock.settle()
    # the 30 ms of audio it owes go out at once, then one block per tick
    assert [t for t in sink.times if t >= late] == [late] * 4
    assert set(steps_of(sink.samples()).tolist()) == {1}
    assert_contiguous_pts(sink.frames)
    await source.aclose()


async def test_silence_follows_the_budget_after_the_audio_ends(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    start = clock.now()
    await source.capture_frame(pcm_frame(ramp(4800 + 100)))  # 100 ms and a bit
    await clock.advance(0.3)
    times = [round((t - start) * 1000) for t in sink.times]
    # 10 blocks on time; the partial one waits 100 ms for more, then silence per tick
    assert times[:11] == [10 * i for i in range(10)] + [200]
    assert times[11:] == [200 + 10 * i for i in range(1, len(times) - 10)]
    played = sink.samples()
    assert np.count_nonzero(played) == 4900
    assert_contiguous_pts(sink.frames)
    await source.aclose()


async def test_slow_producer_audio_is_delayed_never_dropped(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    audio = ramp(48000 * 2)

    async def slow() -> None:  # 80 ms of audio every 100 ms
        for i in range(0, audio.size, 3840):
            await source.capture_frame(pcm_frame(audio[i : i + 3840]))
            await clock.sleep(0.1)

    await clock.run(slow(), limit=10)
    await clock.run(source.wait_for_playout(), limit=5)
    played = sink.samples()
    assert np.array_equal(played[np.flatnonzero(played)], audio)
    assert source._dropped_samples == 0
    assert_contiguous_pts(sink.frames)
    await source.aclose()


async def test_silence_follows_a_clear_at_once(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    sink = Collector(clock)
    source._fanout.subscribe(sink)
    await source.capture_frame(pcm_frame(ramp(48000)))
    await clock.advance(0.095)
    source.clear_queue()
    cleared = clock.now()
    await clock.advance(0.05)
    assert [round((t - cleared) * 1000) for t in sink.times if t > cleared] == [5, 15, 25, 35, 45]
    await source.aclose()


async def test_clock_idles_without_tracks_or_audio(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    await source.capture_frame(pcm_frame(np.ones(480)))
    await clock.run(source.wait_for_playout())
    await clock.advance(0.05)
    task = source._clock_task
    assert task is not None and not task.done()
    pts_before = source._pts
    await clock.advance(0.05)
    assert source._pts == pts_before  # resting: no silent ticks without a track
    await source.aclose()
    assert task.done()


async def test_aclose_releases_waiters_and_ends_fanout(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, queue_size_ms=20, clock=clock)
    sink = Collector()
    source._fanout.subscribe(sink)
    await source.capture_frame(pcm_frame(np.ones(960)))
    capture = asyncio.create_task(source.capture_frame(pcm_frame(np.ones(48000))))
    playout = asyncio.create_task(source.wait_for_playout())
    await clock.advance(0.02)
    assert not capture.done() and not playout.done()
    await source.aclose()
    await asyncio.wait_for(asyncio.gather(capture, playout), 1)
    assert sink.ended == 1
    assert source._fanout.ended
    # captures after close are ignored, like the official SDK
    await source.capture_frame(pcm_frame(np.ones(480)))
    assert source.queued_duration == 0.0


# ---------------------------------------------------------------------- track


async def test_track_loopback_frames(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)
    assert track.kind == "audio"
    sent = Collector()
    track._sent.subscribe(sent)

    # nothing captured: 20 ms of silence, paced by the clock
    first = await clock.run(track.recv(), limit=1)
    assert first.samples == 960
    assert first.sample_rate == 48000
    assert first.format.name == "s16"
    assert first.layout.name == "stereo"  # mono is sent as two equal channels
    assert first.time_base == Fraction(1, 48000)
    assert first.pts == 0
    assert not np.any(first.to_ndarray())

    tone = sine(1000, 0.2)
    await source.capture_frame(pcm_frame(tone))
    frames = [await clock.run(track.recv(), limit=1) for _ in range(15)]
    pts = [first.pts] + [f.pts for f in frames]
    assert pts == [960 * i for i in range(16)]
    both = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    assert np.array_equal(both[:, 0], both[:, 1])
    got = both[:, 0]
    start = int(np.flatnonzero(got)[0])
    assert np.array_equal(got[start - 1 : start - 1 + tone.size], tone)
    # _sent saw exactly what recv() returned
    assert sent.frames == [first, *frames]
    track.stop()
    await source.aclose()


async def test_track_recv_is_paced(clock: FakeClock) -> None:
    source = AudioSource(16000, 1, clock=clock)
    track = AudioSourceTrack(source)
    await clock.run(track.recv())
    start = clock.now()
    for _ in range(25):  # 500 ms
        await clock.run(track.recv(), limit=1)
    elapsed = clock.now() - start
    assert 0.4 <= elapsed <= 1.5, elapsed
    assert elapsed == pytest.approx(0.5)
    track.stop()
    await source.aclose()


async def test_track_mute_gives_silence_and_keeps_consuming(clock: FakeClock) -> None:
    source = AudioSource(48000, 2, clock=clock)
    track = AudioSourceTrack(source)
    track.muted = True
    await source.capture_frame(pcm_frame(np.full(2 * 9600, 1000), channels=2))  # 200 ms
    queued = source.queued_duration
    frames = [await clock.run(track.recv(), limit=1) for _ in range(5)]
    assert all(f.samples == 960 and f.layout.name == "stereo" for f in frames)
    assert not any(np.any(f.to_ndarray()) for f in frames)
    assert source.queued_duration < queued
    track.muted = False
    frames = [await clock.run(track.recv(), limit=1) for _ in range(2)]
    assert any(np.any(f.to_ndarray() == 1000) for f in frames)
    track.stop()
    await source.aclose()


async def test_track_buffer_drops_oldest(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)
    await source.capture_frame(pcm_frame(np.arange(1, 24001, dtype=np.int16)))  # 500 ms
    await clock.advance(0.4)  # nobody reads: the track keeps only ~200 ms
    assert len(track._blocks) == 20
    assert track._dropped == 21  # blocks of ticks 0-200 ms, of 41 played
    frame = await track.recv()
    values = frame.to_ndarray().reshape(-1)
    assert values[0] == 21 * 480 + 1  # recent audio, not the start
    track.stop()
    await source.aclose()


async def test_track_stop_and_source_close_end_recv(clock: FakeClock) -> None:
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)
    sent = Collector()
    track._sent.subscribe(sent)
    pending = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, 1)
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"
    assert sent.ended == 1
    track.stop()  # again: nothing happens
    assert source._fanout.subscriber_count == 0

    other = AudioSourceTrack(source)
    await clock.run(other.recv())
    await source.aclose()
    with pytest.raises(MediaStreamError):
        for _ in range(20):
            await clock.run(other.recv(), limit=1)
    assert other.readyState == "ended"


def test_source_and_track_created_outside_a_loop() -> None:
    clock = FakeClock()
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)  # no loop yet: the clock starts on the first recv()

    async def use() -> None:
        frame = await clock.run(track.recv(), limit=1)
        assert frame.samples == 960
        track.stop()
        await source.aclose()

    asyncio.run(use())


def test_track_rejects_non_source() -> None:
    with pytest.raises(ValueError, match="AudioSource"):
        AudioSourceTrack(FrameFanout())  # type: ignore[arg-type]


async def test_av_frame_is_encodable_by_aiortc_opus(clock: FakeClock) -> None:
    from aiortc.codecs.opus import OpusEncoder

    source = AudioSource(16000, 1, clock=clock)
    track = AudioSourceTrack(source)
    await source.capture_frame(pcm_frame(sine(440, 0.1, rate=16000), rate=16000))
    encoder = OpusEncoder()
    packets = 0
    for _ in range(5):
        frame = await clock.run(track.recv())
        assert isinstance(frame, av.AudioFrame)
        payloads, _ts = encoder.encode(frame)
        packets += len(payloads)
    assert packets >= 3
    track.stop()
    await source.aclose()


def test_the_aiortc_track_lives_beside_the_adapter() -> None:
    import livekit_py.rtc.audio_source as public
    import livekit_py.webrtc.source_tracks as adapter

    assert public.__all__ == ["AudioSource"]
    assert not hasattr(public, "AudioSourceTrack")
    assert "aiortc" not in public.__dict__ and "MediaStreamTrack" not in public.__dict__
    assert adapter.AudioSourceTrack.__module__ == "livekit_py.webrtc.source_tracks"
