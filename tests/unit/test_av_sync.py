"""AVSynchronizer: video pacing, audio/video alignment, queue handling.

The synchronizer, its sources and the tests run on one FakeClock: times are virtual, so
they are exact however loaded the machine is.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import numpy as np
import pytest

from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_source import AudioSource
from livekit_py.rtc.synchronizer import AVSynchronizer
from livekit_py.rtc.video_frame import VideoFrame
from livekit_py.rtc.video_source import VideoSource
from livekit_py.types import VideoBufferType
from tests.unit.fake_clock import FakeClock

RATE = 48000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class RecordingVideoSource(VideoSource):
    """A VideoSource that remembers when each frame was captured."""

    def __init__(self, width: int, height: int, clock: FakeClock) -> None:
        super().__init__(width, height, clock=clock)
        self.clock = clock
        self.captured: list[tuple[float, VideoFrame]] = []

    def capture_frame(self, frame: VideoFrame, **kwargs: Any) -> None:
        self.captured.append((self.clock.now(), frame))
        super().capture_frame(frame, **kwargs)

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.captured]


def video_frame(index: int = 0) -> VideoFrame:
    data = bytearray(np.full(16 * 16 * 4, index % 256, dtype=np.uint8).tobytes())
    return VideoFrame(16, 16, VideoBufferType.RGBA, data)


def audio_frame(seconds: float) -> AudioFrame:
    samples = round(seconds * RATE)
    t = np.arange(samples) / RATE
    data = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return AudioFrame(data.tobytes(), RATE, 1, samples)


async def test_paces_video_and_keeps_audio_in_step(clock: FakeClock) -> None:
    fps = 30.0
    seconds = 5.0
    count = int(seconds * fps)
    audio = AudioSource(RATE, 1, clock=clock)
    video = RecordingVideoSource(16, 16, clock)
    sync = AVSynchronizer(audio_source=audio, video_source=video, video_fps=fps, clock=clock)
    gaps: list[float] = []
    started = clock.now()

    async def produce() -> None:
        for i in range(count):
            await sync.push(video_frame(i), i / fps)
            await sync.push(audio_frame(1 / fps), (i + 1) / fps)
            if i >= fps:  # after the first second
                gaps.append(sync.last_audio_time - sync.last_video_time)

    try:
        await clock.run(produce(), limit=10)
        fps_near_end = sync.actual_fps
        await clock.run(sync.wait_for_playout(), limit=10)
        elapsed = clock.now() - started
    finally:
        await sync.aclose()
        await audio.aclose()

    times = video.times
    span = times[-1] - times[0]
    intervals = np.diff(times)
    frame = 1 / fps
    print(
        f"\nAVSynchronizer {fps:g} fps over {seconds:g} s: {len(times)} frames in {span:.2f} s "
        f"(total {elapsed:.2f} s), actual_fps {fps_near_end:.1f}, median interval "
        f"{np.median(intervals) * 1e3:.1f} ms; audio - video: median "
        f"{statistics.median(gaps) * 1e3:+.1f} ms, max |.| {max(map(abs, gaps)) * 1e3:.1f} ms"
    )
    assert len(times) == count  # nothing dropped, nothing repeated
    assert [f for _, f in video.captured][5].data[0] == 5  # in order
    assert (count - 1) * frame * 0.9 < span < (count - 1) * frame * 1.3
    assert 0.8 * fps < fps_near_end < 1.2 * fps
    assert abs(np.median(intervals) - frame) < 0.3 * frame
    # the audio being played and the video being sent: within one video frame
    assert abs(statistics.median(gaps)) <= frame
    assert np.mean(np.abs(gaps) <= frame + 0.01) > 0.9
    assert sync.last_video_time == pytest.approx((count - 1) / fps)
    assert sync.last_audio_time == pytest.approx(seconds, abs=0.011)
    # on the fake clock the schedule is exact
    assert np.allclose(intervals, frame)
    assert fps_near_end == pytest.approx(fps)
    assert max(map(abs, gaps)) <= frame


async def test_a_short_stall_is_caught_up_a_long_one_restarts_the_schedule(
    clock: FakeClock,
) -> None:
    fps = 10.0  # 100 ms frames
    audio = AudioSource(RATE, 1, clock=clock)
    video = RecordingVideoSource(16, 16, clock)
    sync = AVSynchronizer(
        audio_source=audio,
        video_source=video,
        video_fps=fps,
        _max_delay_tolerance_ms=600,
        clock=clock,
    )

    async def push(n: int) -> None:
        for i in range(n):
            await sync.push(video_frame(i))

    try:
        await clock.run(push(3), limit=5)
        await clock.run(sync.wait_for_playout(), limit=5)
        # the next frame was due 100 ms after the last one: now 250 ms behind the schedule,
        # under the 600 ms limit
        await clock.advance(0.35)
        first = len(video.captured)
        await clock.run(push(4), limit=5)
        await clock.run(sync.wait_for_playout(), limit=5)
        caught_up = video.times[first : first + 3]

        await clock.advance(1.2)  # far behind: the schedule starts over
        first = len(video.captured)
        await clock.run(push(4), limit=5)
        await clock.run(sync.wait_for_playout(), limit=5)
        restarted = video.times[first : first + 3]
    finally:
        await sync.aclose()
        await audio.aclose()
    burst = caught_up[-1] - caught_up[0]
    paced = restarted[-1] - restarted[0]
    print(
        f"\n3 frames after a 250 ms stall: {burst * 1e3:.0f} ms; after 1.1 s: {paced * 1e3:.0f} ms"
    )
    assert burst < 0.1  # sent back to back to catch up (paced: 200 ms)
    assert paced > 0.15  # paced again from the restart
    assert burst == pytest.approx(0.0) and paced == pytest.approx(0.2)  # exact on the fake clock


async def test_clear_queue_reset_and_aclose(clock: FakeClock) -> None:
    audio = AudioSource(RATE, 1, clock=clock)
    video = RecordingVideoSource(16, 16, clock)
    before = asyncio.all_tasks()
    sync = AVSynchronizer(
        audio_source=audio,
        video_source=video,
        video_fps=10.0,
        video_queue_size_ms=500,
        clock=clock,
    )
    try:
        for i in range(5):  # room for 5 frames: none of these waits
            await asyncio.wait_for(sync.push(video_frame(i), float(i)), 1)
        await sync.push(audio_frame(0.5), 0.5)
        await clock.advance(0.05)
        assert len(video.captured) == 1  # the first goes at once, the rest are paced
        await sync.clear_queue()
        assert audio.queued_duration == 0
        await clock.run(sync.wait_for_playout(), limit=1)
        await clock.advance(0.3)
        # the frame already taken by the video task (waiting for its turn) still goes
        assert len(video.captured) == 2
        assert sync.last_video_time == 1.0
        # the schedule continues from where it was, or from now after reset()
        sync.reset()
        assert sync.actual_fps == 0.0
        await sync.push(video_frame(9), 9.0)
        await clock.advance(0.05)
        assert len(video.captured) == 3 and sync.last_video_time == 9.0
        with pytest.raises(ValueError, match="AudioFrame or a VideoFrame"):
            await sync.push("nope")  # type: ignore[arg-type]
    finally:
        await sync.aclose()
        await sync.aclose()
        await audio.aclose()
    await sync.push(video_frame(1))  # dropped after aclose, never waits
    await asyncio.wait_for(sync.wait_for_playout(), 1)
    assert len(video.captured) == 3
    assert {t for t in asyncio.all_tasks() if not t.done()} - before == set()


async def test_a_full_video_queue_makes_push_wait(clock: FakeClock) -> None:
    audio = AudioSource(RATE, 1, clock=clock)
    video = RecordingVideoSource(16, 16, clock)
    # 100 ms at 20 fps: two frames wait at most
    sync = AVSynchronizer(audio_source=audio, video_source=video, video_fps=20.0, clock=clock)
    try:
        started = clock.now()

        async def push_ten() -> None:
            for i in range(10):
                await sync.push(video_frame(i))

        await clock.run(push_ten(), limit=5)
        # the first goes at once and two wait: the tenth push waits for six intervals
        waited = clock.now() - started
        assert waited > 6 * 0.05 * 0.8
        assert waited == pytest.approx(6 * 0.05)
    finally:
        await sync.aclose()
        await audio.aclose()


def test_arguments() -> None:
    audio, video = AudioSource(RATE, 1), VideoSource(16, 16)
    with pytest.raises(ValueError, match="video_fps"):
        AVSynchronizer(audio_source=audio, video_source=video, video_fps=0)
    with pytest.raises(RuntimeError):  # no running event loop
        AVSynchronizer(audio_source=audio, video_source=video, video_fps=30)
