"""VideoSource (non-blocking capture) and VideoSourceTrack (what aiortc sends, in order)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Decoder, h264_depayload
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from livekit_py.rtc.video_frame import VideoFrame, _from_av_frame
from livekit_py.rtc.video_source import CapturedVideoFrame, SentFrameInfo, VideoSource
from livekit_py.types import VideoBufferType, VideoCodec, VideoRotation
from livekit_py.webrtc import source_tracks as source_tracks_module
from livekit_py.webrtc.source_tracks import VideoSourceTrack
from livekit_py.webrtc.video_codecs import make_video_encoder
from tests.unit.fake_clock import FakeClock

RED = (220, 30, 40)
BLUE = (20, 60, 230)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


def rgba(
    width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]
) -> VideoFrame:
    """An RGBA picture: ``left`` colour on the left half, ``right`` on the right half."""
    pixels = np.empty((height, width, 4), np.uint8)
    pixels[:, : width // 2, :3] = left
    pixels[:, width // 2 :, :3] = right
    pixels[..., 3] = 255
    return VideoFrame(width, height, VideoBufferType.RGBA, pixels.tobytes())


def solid(width: int, height: int, colour: tuple[int, int, int]) -> VideoFrame:
    return rgba(width, height, colour, colour)


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(h, w, 3) RGB of a PyAV frame, through our I420 -> RGBA conversion."""
    out = _from_av_frame(frame).convert(VideoBufferType.RGBA)
    return np.frombuffer(out.data, np.uint8).reshape(out.height, out.width, 4)[..., :3]


def assert_halves(
    pixels: np.ndarray, left: tuple[int, int, int], right: tuple[int, int, int], tol: float
) -> None:
    h, w, _ = pixels.shape
    # away from the edge between the halves, where codecs and scalers blur
    margin_x, margin_y = w // 8, h // 8
    left_mean = pixels[margin_y : h - margin_y, margin_x : w // 2 - margin_x].reshape(-1, 3).mean(0)
    right_mean = (
        pixels[margin_y : h - margin_y, w // 2 + margin_x : w - margin_x].reshape(-1, 3).mean(0)
    )
    assert np.abs(left_mean - left).max() <= tol, (left_mean, left)
    assert np.abs(right_mean - right).max() <= tol, (right_mean, right)


def luma(frame: av.VideoFrame) -> float:
    return float(frame.to_ndarray()[: frame.height].mean())


# ---------------------------------------------------------------------- arguments


def test_the_signature_is_the_official_one() -> None:
    official = pytest.importorskip("livekit.rtc")
    ours = inspect.signature(VideoSource)
    theirs = inspect.signature(official.VideoSource)
    assert list(theirs.parameters) == ["width", "height", "is_screencast"]
    for name, parameter in theirs.parameters.items():
        assert ours.parameters[name].kind == parameter.kind, name
        assert ours.parameters[name].default == parameter.default, name


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="width"):
        VideoSource(0, 10)
    with pytest.raises(ValueError, match="height"):
        VideoSource(10, -2)
    with pytest.raises(ValueError, match="width"):
        VideoSource(10.5, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        VideoSourceTrack("not a source")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is_screencast"):
        VideoSource(10, 10, is_screencast=1)  # type: ignore[arg-type]


async def test_capture_argument_checks() -> None:
    source = VideoSource(16, 16)
    frame = solid(16, 16, RED)
    with pytest.raises(ValueError, match="frame"):
        source.capture_frame(b"1234")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp_us"):
        source.capture_frame(frame, timestamp_us=-1)
    with pytest.raises(ValueError, match="rotation"):
        source.capture_frame(frame, rotation=7)
    source.capture_frame(frame, rotation=VideoRotation.VIDEO_ROTATION_270)
    await source.aclose()


async def test_properties_and_repr() -> None:
    source = VideoSource(320, 240)
    assert (source.width, source.height) == (320, 240)
    assert repr(source) == "rtc.VideoSource(width=320, height=240)"
    assert not source.is_screencast
    screen = VideoSource(1920, 1080, is_screencast=True)
    assert screen.is_screencast
    assert repr(screen) == "rtc.VideoSource(width=1920, height=1080, is_screencast=True)"
    track = VideoSourceTrack(source)
    assert track.kind == "video"
    assert track.source is source
    assert track.muted is False
    track.stop()
    await source.aclose()


# ---------------------------------------------------------------------- capture


def grey(frame: av.VideoFrame) -> int:
    return round(float(to_rgb(frame).mean()))


async def test_capture_is_sync_and_a_burst_is_sent_whole_in_order(clock: FakeClock) -> None:
    assert not inspect.iscoroutinefunction(VideoSource.capture_frame)
    source = VideoSource(64, 48, clock=clock)
    track = VideoSourceTrack(source)
    levels = [40, 80, 120, 160, 200]
    for level in levels:  # back to back, as a capture catching up after a blocked loop
        source.capture_frame(solid(64, 48, (level, level, level)))
    frames = [await asyncio.wait_for(track.recv(), 5) for _ in levels]
    assert all(isinstance(f, av.VideoFrame) for f in frames)
    assert {(f.width, f.height, f.format.name) for f in frames} == {(64, 48, "yuv420p")}
    assert [grey(f) for f in frames] == pytest.approx(levels, abs=2)
    assert track.dropped_frames == 0
    assert (np.diff([f.pts for f in frames]) > 0).all()
    # nothing newer: the next recv waits (until the idle repeat, a second later)
    waiting = asyncio.ensure_future(track.recv())
    await clock.advance(0.1)
    assert not waiting.done()
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 5)
    await source.aclose()


async def test_waiting_pictures_are_bounded_in_time(clock: FakeClock) -> None:
    wait = source_tracks_module.MAX_FRAME_WAIT
    source = VideoSource(32, 32, clock=clock)
    track = VideoSourceTrack(source)
    # nobody reads for 270 ms of captures every 30 ms: those within 100 ms of the newest wait
    for i in range(10):
        source.capture_frame(solid(32, 32, (20 + 20 * i,) * 3))
        await clock.advance(0.03)
    kept = [i for i in range(10) if (9 - i) * 0.03 <= wait + 1e-9]
    assert kept == [6, 7, 8, 9]
    assert track.dropped_frames == 6
    frames = [await asyncio.wait_for(track.recv(), 5) for _ in kept]
    assert [grey(f) for f in frames] == pytest.approx([20 + 20 * i for i in kept], abs=2)
    # the RTP timestamps are the capture times, 30 ms apart
    assert np.diff([f.pts for f in frames]).tolist() == [2700] * 3
    track.stop()
    await source.aclose()


async def test_waiting_pictures_are_bounded_in_number(clock: FakeClock) -> None:
    source = VideoSource(16, 16, clock=clock)
    track = VideoSourceTrack(source)
    count = source_tracks_module.MAX_FRAMES_WAITING
    for i in range(count + 3):
        source.capture_frame(solid(16, 16, (10 + 10 * i,) * 3))
    assert track.dropped_frames == 3
    first = await asyncio.wait_for(track.recv(), 5)
    assert grey(first) == pytest.approx(40, abs=2)  # the oldest of those kept
    track.stop()
    await source.aclose()


async def test_pictures_convert_as_they_are_captured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next picture is ready when the encoder asks: recv() returns without waiting."""
    converted: list[int] = []
    original = source_tracks_module._prepare

    def spy(frame: VideoFrame, width: int, height: int) -> av.VideoFrame:
        converted.append(frame.width)
        return original(frame, width, height)

    monkeypatch.setattr(source_tracks_module, "_prepare", spy)
    ahead = source_tracks_module.CONVERT_AHEAD
    source = VideoSource(32, 32)
    track = VideoSourceTrack(source)
    for width in range(10, 10 + ahead + 2):
        source.capture_frame(solid(width, 32, RED))

    def ready(n: int) -> bool:
        jobs = [w.job for w in list(track._backlog)[:ahead]]
        return len(converted) >= n and all(job is not None and job.done() for job in jobs)

    async def conversions(n: int) -> None:  # they run in threads: wait for their outcome
        while not ready(n):  # noqa: ASYNC110 - thread results, no event to wait on
            await asyncio.sleep(0.002)

    await asyncio.wait_for(conversions(ahead), 5)
    assert sorted(converted) == list(range(10, 10 + ahead))  # only so many ahead
    for taken in range(ahead + 2):
        await asyncio.wait_for(conversions(min(ahead + taken, ahead + 2)), 5)
        coro = track.recv()
        with pytest.raises(StopIteration) as done:  # done without suspending once
            coro.send(None)
        frame = done.value.value
        assert (frame.width, frame.height) == (32, 32)
    assert sorted(converted) == list(range(10, 10 + ahead + 2))
    track.stop()
    await source.aclose()


async def test_muting_drops_the_waiting_pictures(clock: FakeClock) -> None:
    source = VideoSource(16, 16, clock=clock)
    track = VideoSourceTrack(source)
    for _ in range(3):
        source.capture_frame(solid(16, 16, RED))
    track.muted = True
    assert not track._backlog
    frame = await asyncio.wait_for(track.recv(), 5)
    assert luma(frame) == 16
    track.stop()
    await source.aclose()


@pytest.mark.wallclock
async def test_capture_does_no_pixel_work_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    original = source_tracks_module._prepare

    def spy(frame: VideoFrame, width: int, height: int) -> av.VideoFrame:
        threads.append(threading.current_thread())
        return original(frame, width, height)

    monkeypatch.setattr(source_tracks_module, "_prepare", spy)
    source = VideoSource(1280, 720)
    track = VideoSourceTrack(source)
    big = solid(1280, 720, RED)
    start = time.perf_counter()
    for _ in range(10):
        source.capture_frame(big)
    per_call = (time.perf_counter() - start) / 10
    assert per_call < 0.05  # a memory copy, not a conversion
    frame = await asyncio.wait_for(track.recv(), 5)
    # converted in worker threads (started at capture), never on the loop's
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert (frame.width, frame.height) == (1280, 720)
    track.stop()
    await source.aclose()


async def test_caller_may_reuse_its_buffer() -> None:
    source = VideoSource(32, 32)
    track = VideoSourceTrack(source)
    frame = solid(32, 32, (200, 200, 200))
    source.capture_frame(frame)
    np.frombuffer(frame.data, np.uint8)[:] = 0  # the caller refills its buffer
    out = await asyncio.wait_for(track.recv(), 5)
    assert to_rgb(out).mean() == pytest.approx(200, abs=2)
    track.stop()
    await source.aclose()


async def test_source_fanout_publishes_captured_frames() -> None:
    source = VideoSource(32, 32)
    got: list[Any] = []

    class Sink:
        def on_frame(self, frame: Any) -> None:
            got.append(frame)

        def on_end(self) -> None:
            got.append("end")

    source.capture_frame(solid(32, 32, RED))  # nobody listens: dropped
    source._fanout.subscribe(Sink())
    frame = solid(16, 8, BLUE)
    source.capture_frame(frame, timestamp_us=1234, rotation=VideoRotation.VIDEO_ROTATION_90)
    assert len(got) == 1
    captured = got[0]
    assert isinstance(captured, CapturedVideoFrame)
    assert captured.frame is not frame
    assert bytes(captured.frame.data) == bytes(frame.data)
    assert (captured.timestamp_us, captured.rotation) == (1234, VideoRotation.VIDEO_ROTATION_90)
    assert captured.effective_timestamp_us == 1234
    await source.aclose()
    assert got[-1] == "end"
    source.capture_frame(frame)  # ignored after aclose
    assert len(got) == 2


async def test_other_sizes_are_scaled_to_the_source_size() -> None:
    source = VideoSource(64, 48)
    track = VideoSourceTrack(source)
    for width, height in ((256, 192), (32, 24), (100, 30)):
        source.capture_frame(rgba(width, height, RED, BLUE))
        out = await asyncio.wait_for(track.recv(), 5)
        assert (out.width, out.height, out.format.name) == (64, 48, "yuv420p")
        assert_halves(to_rgb(out), RED, BLUE, tol=6)
    # I420 input of the source size goes through as is
    i420 = rgba(64, 48, BLUE, RED).convert(VideoBufferType.I420)
    source.capture_frame(i420)
    out = await asyncio.wait_for(track.recv(), 5)
    assert bytes(_from_av_frame(out).data) == bytes(i420.data)
    track.stop()
    await source.aclose()


# ---------------------------------------------------------------------- timing


async def test_pts_follow_given_timestamps_on_90khz() -> None:
    source = VideoSource(16, 16)
    track = VideoSourceTrack(source)
    pts: list[int] = []
    for i in range(5):
        source.capture_frame(solid(16, 16, RED), timestamp_us=5_000_000 + i * 100_000)
        frame = await asyncio.wait_for(track.recv(), 5)
        assert frame.time_base == Fraction(1, 90000)
        pts.append(frame.pts)
    assert np.diff(pts).tolist() == [9000] * 4
    # a timestamp that does not increase: the monotonic clock takes over, pts still grow
    source.capture_frame(solid(16, 16, RED), timestamp_us=5_000_000)
    frame = await asyncio.wait_for(track.recv(), 5)
    assert frame.pts > pts[-1]
    track.stop()
    await source.aclose()


async def test_pts_from_monotonic_clock_strictly_increase(clock: FakeClock) -> None:
    source = VideoSource(16, 16, clock=clock)
    track = VideoSourceTrack(source)
    pts: list[int] = []
    captured_at: list[float] = []
    for i in range(6):
        captured_at.append(clock.now())
        source.capture_frame(solid(16, 16, RED))
        pts.append((await asyncio.wait_for(track.recv(), 5)).pts)
        if i % 2:
            await clock.advance(0.03)
    # even back-to-back captures get distinct, increasing timestamps
    source.capture_frame(solid(16, 16, RED))
    pts.append((await asyncio.wait_for(track.recv(), 5)).pts)
    source.capture_frame(solid(16, 16, RED))
    pts.append((await asyncio.wait_for(track.recv(), 5)).pts)
    assert (np.diff(pts) > 0).all()
    elapsed = (pts[5] - pts[0]) / 90000
    assert elapsed == pytest.approx(captured_at[5] - captured_at[0], abs=0.01)
    # on the fake clock, exactly: two 30 ms pauses, and one tick for each back-to-back pair
    assert pts[5] - pts[0] == 2 * 2700 + 3
    track.stop()
    await source.aclose()


async def test_idle_source_repeats_its_last_picture(clock: FakeClock) -> None:
    interval = source_tracks_module.IDLE_REPEAT_INTERVAL
    source = VideoSource(16, 16, clock=clock)
    track = VideoSourceTrack(source)
    waiting = asyncio.ensure_future(track.recv())
    await clock.advance(3 * interval)  # nothing captured yet: nothing to repeat
    assert not waiting.done()
    source.capture_frame(solid(16, 16, (180, 180, 180)), rotation=VideoRotation.VIDEO_ROTATION_180)
    first = await asyncio.wait_for(waiting, 5)
    start = clock.now()
    repeat = asyncio.ensure_future(track.recv())
    await clock.advance(interval * 0.99)
    assert not repeat.done()  # not before the interval
    again = await clock.run(repeat, limit=interval)
    assert clock.now() - start == pytest.approx(interval)
    assert again.pts > first.pts
    assert again.pts - first.pts == round(interval * 90000)
    assert to_rgb(again).mean() == pytest.approx(180, abs=2)
    assert isinstance(again.opaque, SentFrameInfo)
    assert again.opaque.rotation == VideoRotation.VIDEO_ROTATION_180
    track.stop()
    await source.aclose()


# ---------------------------------------------------------------------- mute


async def test_muted_track_sends_black_at_a_low_rate(clock: FakeClock) -> None:
    rate = source_tracks_module.MUTED_FRAME_RATE
    source = VideoSource(32, 24, clock=clock)
    track = VideoSourceTrack(source)
    source.capture_frame(solid(32, 24, RED))
    track.muted = True
    assert track.muted
    start = clock.now()
    frames = []
    for _ in range(4):
        source.capture_frame(solid(32, 24, BLUE))  # dropped while muted
        frames.append(await clock.run(track.recv(), limit=5 / rate))
    elapsed = clock.now() - start
    assert elapsed >= 3 / rate * 0.9  # the first at once, then MUTED_FRAME_RATE per second
    assert elapsed == pytest.approx(3 / rate)
    for frame in frames:
        assert (frame.width, frame.height) == (32, 24)
        y, u, v = (np.frombuffer(p, np.uint8) for p in frame.planes)
        assert (
            set(np.unique(y)) == {16} and set(np.unique(u)) == {128} and set(np.unique(v)) == {128}
        )
        assert to_rgb(frame).max() == 0
    pts = [f.pts for f in frames]
    assert (np.diff(pts) > 0).all()
    # unmuted: captured pictures again
    track.muted = False
    source.capture_frame(solid(32, 24, BLUE))
    frame = await asyncio.wait_for(track.recv(), 5)  # at once: no clock involved
    assert_halves(to_rgb(frame), BLUE, BLUE, tol=3)
    track.stop()
    await source.aclose()


async def test_mute_wakes_a_waiting_recv(clock: FakeClock) -> None:
    source = VideoSource(16, 16, clock=clock)
    track = VideoSourceTrack(source)
    waiting = asyncio.ensure_future(track.recv())
    await clock.advance(0.05)
    assert not waiting.done()
    track.muted = True
    frame = await asyncio.wait_for(waiting, 5)
    assert luma(frame) == 16
    track.stop()
    await source.aclose()


# ---------------------------------------------------------------------- end and readback


async def test_stop_ends_a_waiting_recv_and_sent() -> None:
    source = VideoSource(16, 16)
    track = VideoSourceTrack(source)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.02)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 5)
    assert track.readyState == "ended"
    assert track._sent.ended
    assert source._fanout.subscriber_count == 0
    with pytest.raises(MediaStreamError):
        await track.recv()
    await source.aclose()


async def test_source_aclose_ends_the_track() -> None:
    source = VideoSource(16, 16)
    track = VideoSourceTrack(source)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.02)
    await source.aclose()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 5)
    assert track.readyState == "ended"
    # a track made after the close ends at once
    late = VideoSourceTrack(source)
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(late.recv(), 5)


async def test_sent_fanout_gets_what_recv_returned() -> None:
    source = VideoSource(16, 16)
    track = VideoSourceTrack(source)
    sent: list[Any] = []

    class Sink:
        def on_frame(self, frame: Any) -> None:
            sent.append(frame)

        def on_end(self) -> None:
            sent.append("end")

    track._sent.subscribe(Sink())
    source.capture_frame(
        solid(16, 16, RED), timestamp_us=777, rotation=VideoRotation.VIDEO_ROTATION_90
    )
    frame = await asyncio.wait_for(track.recv(), 5)
    assert sent == [frame]
    assert isinstance(frame.opaque, SentFrameInfo)
    assert frame.opaque.timestamp_us == 777
    assert frame.opaque.rotation == VideoRotation.VIDEO_ROTATION_90
    track.stop()
    assert sent[-1] == "end"
    await source.aclose()


# ---------------------------------------------------------------------- codec loopback


@pytest.mark.parametrize(
    ("codec", "decoder_class", "depayload"),
    [(VideoCodec.VP8, Vp8Decoder, vp8_depayload), (VideoCodec.H264, H264Decoder, h264_depayload)],
    ids=["VP8", "H264"],
)
async def test_loopback_through_our_encoders_keeps_colours(
    codec: int, decoder_class: Any, depayload: Any
) -> None:
    """VideoSource -> VideoSourceTrack.recv() -> our encoder -> RTP payloads -> aiortc decoder."""
    loop = asyncio.get_running_loop()
    source = VideoSource(160, 120)
    track = VideoSourceTrack(source)
    encoder = make_video_encoder(codec, 600_000, 30.0)
    decoder = decoder_class()
    decoded: list[av.VideoFrame] = []
    try:
        for i in range(8):
            source.capture_frame(rgba(320, 240, RED, BLUE), timestamp_us=1_000_000 + i * 50_000)
            frame = await asyncio.wait_for(track.recv(), 5)
            pts = frame.pts  # (the encoder moves the frame to its own time base)
            payloads, timestamp = await loop.run_in_executor(None, encoder.encode, frame, i == 0)
            assert payloads, "a frame at 20 fps must not be dropped at a 30 fps cap"
            assert timestamp == pts == i * 4500  # 50 ms steps on the 90 kHz clock
            data = b"".join(depayload(p) for p in payloads)
            decoded.extend(decoder.decode(JitterFrame(data, timestamp)))
    finally:
        track.stop()
        await source.aclose()
    assert len(decoded) >= 6
    for out in decoded[-3:]:
        assert (out.width, out.height) == (160, 120)
        assert_halves(to_rgb(out), RED, BLUE, tol=12)


async def test_a_picture_that_cannot_be_prepared_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = source_tracks_module._prepare
    calls = 0

    def fails_once(frame: VideoFrame, width: int, height: int) -> av.VideoFrame:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return original(frame, width, height)

    monkeypatch.setattr(source_tracks_module, "_prepare", fails_once)
    source = VideoSource(16, 16)
    track = VideoSourceTrack(source)
    receiving = asyncio.ensure_future(track.recv())
    source.capture_frame(solid(16, 16, RED))

    async def logged() -> None:  # the failing job runs in a thread: wait for its outcome
        while "cannot prepare a picture" not in caplog.text:  # noqa: ASYNC110 - a log line
            await asyncio.sleep(0.005)

    await asyncio.wait_for(logged(), 5)
    await asyncio.sleep(0)
    assert not receiving.done()  # skipped, the track lives on
    assert "cannot prepare a picture" in caplog.text
    source.capture_frame(solid(16, 16, (90, 90, 90)))
    frame = await asyncio.wait_for(receiving, 5)
    assert to_rgb(frame).mean() == pytest.approx(90, abs=2)
    track.stop()
    await source.aclose()


def test_the_aiortc_track_lives_beside_the_adapter() -> None:
    import livekit_py.rtc.video_source as public

    assert "VideoSource" in public.__all__ and "VideoSourceTrack" not in public.__all__
    assert not hasattr(public, "VideoSourceTrack")
    assert "MediaStreamTrack" not in public.__dict__
    assert VideoSourceTrack.__module__ == "livekit_py.webrtc.source_tracks"
