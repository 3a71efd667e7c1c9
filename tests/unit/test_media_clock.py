"""The media clock seam: LoopClock (the default), wait helpers, and the FakeClock of the tests."""

from __future__ import annotations

import asyncio
import time

import pytest

from livekit_py.media.clock import (
    LoopClock,
    MediaClock,
    default_clock,
    resolve_clock,
    wait_done,
    wait_event,
)
from livekit_py.rtc.audio_mixer import AudioMixer
from livekit_py.rtc.audio_source import AudioSource
from livekit_py.rtc.synchronizer import AVSynchronizer
from livekit_py.rtc.video_source import VideoSource
from livekit_py.webrtc.source_tracks import VideoSourceTrack
from tests.unit.fake_clock import FakeClock


def test_loop_clock_outside_a_loop_reads_the_monotonic_clock() -> None:
    before = time.monotonic()
    now = LoopClock().now()
    assert before <= now <= time.monotonic()


async def test_loop_clock_is_the_running_loops() -> None:
    clock = default_clock()
    assert isinstance(clock, LoopClock) and isinstance(clock, MediaClock)
    loop = asyncio.get_running_loop()
    before = loop.time()
    assert before <= clock.now() <= loop.time()
    await clock.sleep(0)


def test_resolve_clock() -> None:
    assert resolve_clock(None) is default_clock()
    fake = FakeClock()
    assert resolve_clock(fake) is fake
    with pytest.raises(ValueError, match="MediaClock"):
        resolve_clock(object())  # type: ignore[arg-type]


async def test_media_objects_default_to_the_loop_clock_and_refuse_a_bad_one() -> None:
    audio, video = AudioSource(48000, 1), VideoSource(16, 16)
    assert isinstance(audio._clock, LoopClock) and isinstance(video._clock, LoopClock)
    mixer = AudioMixer(48000, 1)
    assert isinstance(mixer._clock, LoopClock)
    sync = AVSynchronizer(audio_source=audio, video_source=video, video_fps=10)
    assert isinstance(sync._pacer._clock, LoopClock)
    with pytest.raises(ValueError, match="clock"):
        AudioSource(48000, 1, clock="wall")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock"):
        VideoSource(16, 16, clock=42)  # type: ignore[arg-type]
    # a track times itself on its source's clock unless told otherwise
    fake = FakeClock()
    track = VideoSourceTrack(VideoSource(16, 16, clock=fake))
    assert track._clock is fake
    track.stop()
    await sync.aclose()
    await mixer.aclose()
    await audio.aclose()


async def test_wait_done_times_out_on_the_clock_without_cancelling() -> None:
    clock = FakeClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_done(future, 0.5, clock))
    await clock.advance(0.499)
    assert not waiting.done()
    await clock.advance(0.001)
    assert waiting.done() and waiting.result() is False
    assert not future.done()  # left alone
    assert clock.sleeping == 0  # the timer is gone
    again = asyncio.ensure_future(wait_done(future, 10, clock))
    await clock.settle()
    future.set_result(3)
    assert await again is True
    await clock.settle()
    assert clock.sleeping == 0


async def test_wait_event() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    assert await clock.run(wait_event(event, 0.2, clock)) is False
    assert clock.now() == pytest.approx(1000.2)
    waiting = asyncio.ensure_future(wait_event(event, 5, clock))
    await clock.advance(1)
    event.set()
    assert await waiting is True
    assert await wait_event(event, None, clock) is True


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [
        asyncio.ensure_future(sleeper(name, seconds))
        for name, seconds in (("c", 0.3), ("a", 0.1), ("b", 0.2), ("a2", 0.1))
    ]
    await clock.advance(0.25)
    assert woke == [("a", 0.1), ("a2", 0.1), ("b", 0.2)]
    assert clock.now() == 0.25
    await clock.jump(1.0)  # late: wakes at the end of the jump
    assert woke[-1] == ("c", 1.25)
    await asyncio.gather(*tasks)


async def test_fake_clock_run_gives_up_after_its_virtual_limit() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError, match="virtual"):
        await clock.run(clock.sleep(3600), limit=10)
    assert clock.now() < 1000 + 10 + 1e-9
