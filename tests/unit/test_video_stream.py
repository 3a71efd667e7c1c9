"""VideoStream: conversion, capacity, end of iteration, local readback and participants."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import Room
from livekit_py.media.frame_source import FrameFanout
from livekit_py.rtc import video_stream as video_stream_module
from livekit_py.rtc.participant import RemoteParticipant
from livekit_py.rtc.video_frame import VideoFrame
from livekit_py.rtc.video_source import VideoSource
from livekit_py.rtc.video_stream import VideoFrameEvent, VideoStream
from livekit_py.signal.client import SignalClient
from livekit_py.types import TrackKind, TrackSource, VideoBufferType, VideoRotation
from livekit_py.webrtc.source_tracks import VideoSourceTrack

RED = (220, 30, 40)
GREEN = (40, 200, 60)


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


def av_frame(width: int, height: int, colour: tuple[int, int, int], pts: int = 0) -> av.VideoFrame:
    """A yuv420p PyAV frame of one colour, as a decoder returns them (90 kHz pts)."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[...] = colour
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


def rgba_pixels(frame: VideoFrame) -> np.ndarray:
    assert frame.type == VideoBufferType.RGBA
    return np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 4)


async def collect(stream: VideoStream, timeout: float = 5) -> list[VideoFrameEvent]:
    async def run() -> list[VideoFrameEvent]:
        return [event async for event in stream]

    return await asyncio.wait_for(run(), timeout)


# ---------------------------------------------------------------------- arguments


def test_bad_arguments() -> None:
    fanout = FrameFanout()
    with pytest.raises(ValueError, match="capacity"):
        VideoStream(fanout, capacity=-1)
    with pytest.raises(ValueError, match="format"):
        VideoStream(fanout, format=99)
    with pytest.raises(ValueError, match="track is required"):
        VideoStream(None)
    with pytest.raises(ValueError, match="video track"):
        VideoStream(SimpleNamespace(kind=TrackKind.KIND_AUDIO))
    with pytest.raises(ValueError, match="video Track"):
        VideoStream(object())
    with pytest.raises(ValueError, match="track_source is required"):
        VideoStream(None, participant=RemoteParticipant(proto_models.ParticipantInfo()))
    with pytest.raises(ValueError, match="participant must be a Participant"):
        VideoStream.from_participant(participant=object(), track_source=TrackSource.SOURCE_CAMERA)
    assert fanout.subscriber_count == 0


# ---------------------------------------------------------------------- conversion


async def test_yields_i420_by_default_with_pts_timestamps() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout)
    fanout.publish(av_frame(32, 16, RED, pts=90000))
    fanout.publish(av_frame(32, 16, GREEN, pts=93000))
    fanout.end()
    events = await collect(stream)
    assert [e.timestamp_us for e in events] == [1_000_000, 1_033_333]
    assert all(e.rotation == VideoRotation.VIDEO_ROTATION_0 for e in events)
    frame = events[0].frame
    assert (frame.width, frame.height, frame.type) == (32, 16, VideoBufferType.I420)
    assert repr(stream) == "rtc.VideoStream(format=I420, capacity=0)"


@pytest.mark.parametrize("fmt", [VideoBufferType.RGBA, VideoBufferType.BGRA, VideoBufferType.RGB24])
async def test_converts_to_the_requested_format(fmt: int) -> None:
    fanout = FrameFanout()
    stream = VideoStream.from_track(track=fanout, format=fmt)
    fanout.publish(av_frame(40, 30, RED))
    fanout.end()
    (event,) = await collect(stream)
    frame = event.frame
    assert (frame.width, frame.height, frame.type) == (40, 30, fmt)
    rgba = rgba_pixels(frame.convert(VideoBufferType.RGBA))
    assert np.abs(rgba[..., :3].reshape(-1, 3).mean(0) - RED).max() <= 3


async def test_big_frames_convert_off_the_loop_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    original = video_stream_module._convert

    def spy(item: Any, fmt: Any) -> VideoFrame:
        threads.append(threading.current_thread())
        return original(item, fmt)

    monkeypatch.setattr(video_stream_module, "_convert", spy)
    fanout = FrameFanout()
    stream = VideoStream(fanout, format=VideoBufferType.RGBA)
    levels = [30, 90, 150, 210]
    for i, level in enumerate(levels):
        fanout.publish(av_frame(320, 240, (level, level, level), pts=i * 3000))
    fanout.end()
    events = await collect(stream)
    assert [round(float(rgba_pixels(e.frame)[..., :3].mean())) for e in events] == pytest.approx(
        levels, abs=2
    )
    assert [e.timestamp_us for e in events] == [0, 33333, 66666, 100000]
    assert len(threads) == 4 and threading.main_thread() not in threads


async def test_capacity_drops_the_oldest() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout, capacity=2)
    for i in range(5):
        fanout.publish(av_frame(16, 16, RED, pts=i * 9000))
    fanout.end()
    events = await collect(stream)
    assert [e.timestamp_us for e in events] == [300_000, 400_000]


async def test_unbounded_by_default() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout)
    for i in range(50):
        fanout.publish(av_frame(8, 8, RED, pts=i))
    fanout.end()
    assert len(await collect(stream)) == 50


async def test_rtp_timestamps_are_unwrapped() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout)
    for pts in ((1 << 32) - 3000, 0, 3000):
        fanout.publish(av_frame(8, 8, RED, pts=pts))
    fanout.end()
    stamps = [e.timestamp_us for e in await collect(stream)]
    assert all(33333 <= step <= 33334 for step in np.diff(stamps))


# ---------------------------------------------------------------------- end of iteration


async def test_waits_then_ends_with_the_fanout() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout)
    reader = asyncio.ensure_future(collect(stream))
    await asyncio.sleep(0.02)
    assert not reader.done()
    fanout.publish(av_frame(8, 8, RED))
    await asyncio.sleep(0.02)
    assert not reader.done()
    fanout.end()
    assert len(await reader) == 1


async def test_aclose_ends_iteration_and_unsubscribes() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout)
    assert fanout.subscriber_count == 1
    waiting = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.02)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
    assert fanout.subscriber_count == 0
    fanout.publish(av_frame(8, 8, RED))
    assert await collect(stream) == []
    await stream.aclose()  # twice is fine


async def test_aclose_waits_for_a_conversion_under_way() -> None:
    fanout = FrameFanout()
    stream = VideoStream(fanout, format=VideoBufferType.RGBA)
    fanout.publish(av_frame(640, 480, RED))
    reading = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # the conversion starts in the executor
    await stream.aclose()
    assert stream._converting is None or stream._converting.done()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reading, 5)


async def test_late_subscription_to_an_ended_fanout_ends_at_once() -> None:
    fanout = FrameFanout()
    fanout.end()
    stream = VideoStream(fanout)
    assert await collect(stream) == []


# ---------------------------------------------------------------------- local tracks


async def test_reads_a_source_fanout_directly() -> None:
    source = VideoSource(64, 48)
    stream = VideoStream(source._fanout, format=VideoBufferType.RGBA)
    pixels = np.zeros((24, 32, 4), np.uint8)
    pixels[..., :3] = GREEN
    pixels[..., 3] = 255
    frame = VideoFrame(32, 24, VideoBufferType.RGBA, pixels.tobytes())
    source.capture_frame(frame, timestamp_us=42, rotation=VideoRotation.VIDEO_ROTATION_90)
    await source.aclose()
    (event,) = await collect(stream)
    # as captured: no scaling, same pixels, a new frame
    assert event.frame is not frame
    assert bytes(event.frame.data) == bytes(frame.data)
    assert (event.timestamp_us, event.rotation) == (42, VideoRotation.VIDEO_ROTATION_90)


async def test_reads_back_what_a_local_track_sent() -> None:
    source = VideoSource(64, 48)
    track = VideoSourceTrack(source)
    fake_local_track = SimpleNamespace(kind=TrackKind.KIND_VIDEO, _frame_source=lambda: track._sent)
    stream = VideoStream.from_track(track=fake_local_track, format=VideoBufferType.RGBA)
    pixels = np.zeros((96, 128, 4), np.uint8)
    pixels[..., :3] = RED
    source.capture_frame(
        VideoFrame(128, 96, VideoBufferType.RGBA, pixels.tobytes()),
        timestamp_us=5_000,
        rotation=VideoRotation.VIDEO_ROTATION_180,
    )
    await asyncio.wait_for(track.recv(), 5)
    track.stop()
    (event,) = await collect(stream)
    assert (event.frame.width, event.frame.height) == (64, 48)  # what was sent
    assert (event.timestamp_us, event.rotation) == (5_000, VideoRotation.VIDEO_ROTATION_180)
    assert np.abs(rgba_pixels(event.frame)[..., :3].reshape(-1, 3).mean(0) - RED).max() <= 3
    await source.aclose()


# ---------------------------------------------------------------------- participants


_TYPES = {TrackKind.KIND_VIDEO: proto_models.TrackType.VIDEO}


def remote_track(sid: str, kind: int = TrackKind.KIND_VIDEO) -> Any:
    """A real remote track whose frames the test publishes through its reader."""
    from aiortc import AudioStreamTrack, VideoStreamTrack

    from livekit_py.rtc.track import RemoteAudioTrack, RemoteVideoTrack

    info = proto_models.TrackInfo(sid=sid, type=_TYPES.get(kind, proto_models.TrackType.AUDIO))
    if kind == TrackKind.KIND_VIDEO:
        return RemoteVideoTrack(info, VideoStreamTrack())
    return RemoteAudioTrack(info, AudioStreamTrack())


def room_with(*people: tuple[str, dict[str, tuple[int, int]]]) -> Room:
    """A room model (no network) with remote participants publishing tracks.

    Each person is (identity, {track sid: (TrackSource, TrackKind)}).
    """
    room = Room()
    room._signal = SignalClient()
    others = [
        proto_models.ParticipantInfo(
            identity=identity,
            sid=f"PA_{identity}",
            tracks=[
                proto_models.TrackInfo(
                    sid=sid,
                    source=source,  # type: ignore[arg-type]
                    type=_TYPES.get(kind, proto_models.TrackType.AUDIO),
                )
                for sid, (source, kind) in tracks.items()
            ],
        )
        for identity, tracks in people
    ]
    room._on_join(
        proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_1", name="r"),
            participant=proto_models.ParticipantInfo(identity="me", sid="PA_me"),
            other_participants=others,
        )
    )
    return room


def subscribe(room: Room, identity: str, sid: str, track: Any) -> None:
    """What the room does when the server starts sending a track: attach and emit."""
    participant = room.remote_participants[identity]
    publication = participant.track_publications[sid]
    publication._track = track
    room.emit("track_subscribed", track, publication, participant)


CAM = (TrackSource.SOURCE_CAMERA, TrackKind.KIND_VIDEO)


async def test_from_participant_follows_its_tracks_until_it_leaves() -> None:
    room = room_with(
        (
            "alice",
            {
                "TR_mic": (TrackSource.SOURCE_MICROPHONE, TrackKind.KIND_AUDIO),
                "TR_cam": CAM,
                "TR_cam2": CAM,
                "TR_cam3": CAM,
                "TR_screen": (TrackSource.SOURCE_SCREENSHARE, TrackKind.KIND_VIDEO),
            },
        ),
        ("bob", {"TR_bobcam": CAM}),
    )
    alice = room.remote_participants["alice"]
    bob = room.remote_participants["bob"]
    camera = remote_track("TR_cam")
    alice.track_publications["TR_mic"]._track = remote_track("TR_mic", TrackKind.KIND_AUDIO)
    alice.track_publications["TR_cam"]._track = camera
    stream = VideoStream.from_participant(participant=alice, track_source=TrackSource.SOURCE_CAMERA)
    reader = asyncio.ensure_future(collect(stream))
    camera._reader.publish(av_frame(8, 8, RED, pts=9000))
    # unsubscribed: the stream waits for the next track
    camera._reader.end()
    await asyncio.sleep(0.02)
    assert not reader.done()
    # tracks of others, or of another source, are not read
    other = remote_track("TR_bobcam")
    subscribe(room, "bob", "TR_bobcam", other)
    screen = remote_track("TR_screen")
    subscribe(room, "alice", "TR_screen", screen)
    assert other._reader.subscriber_count == 0 and screen._reader.subscriber_count == 0
    # resubscribed
    camera2 = remote_track("TR_cam2")
    subscribe(room, "alice", "TR_cam2", camera2)
    camera2._reader.publish(av_frame(8, 8, RED, pts=18000))
    # a newer track replaces the one read
    camera3 = remote_track("TR_cam3")
    subscribe(room, "alice", "TR_cam3", camera3)
    assert camera2._reader.subscriber_count == 0
    camera2._reader.publish(av_frame(8, 8, RED, pts=99999))  # not read any more
    camera3._reader.publish(av_frame(8, 8, RED, pts=27000))
    room.emit("participant_disconnected", bob)
    await asyncio.sleep(0.02)
    assert not reader.done()
    room.emit("participant_disconnected", alice)
    events = await reader
    assert [e.timestamp_us for e in events] == [100_000, 200_000, 300_000]
    assert room._listener_count() == 0


async def test_from_participant_waits_for_a_track_and_ends_on_disconnect() -> None:
    room = room_with(("alice", {"TR_cam": CAM}))
    alice = room.remote_participants["alice"]
    stream = VideoStream.from_participant(
        participant=alice, track_source=TrackSource.SOURCE_CAMERA, format=VideoBufferType.RGBA
    )
    reader = asyncio.ensure_future(collect(stream))
    await asyncio.sleep(0.02)
    assert not reader.done()
    camera = remote_track("TR_cam")
    subscribe(room, "alice", "TR_cam", camera)
    camera._reader.publish(av_frame(8, 8, GREEN))
    room.emit("disconnected", 1)
    (event,) = await reader
    assert event.frame.type == VideoBufferType.RGBA
    assert camera._reader.subscriber_count == 0
    assert room._listener_count() == 0


async def test_from_participant_aclose_removes_listeners() -> None:
    room = room_with(("alice", {"TR_cam": CAM}))
    alice = room.remote_participants["alice"]
    camera = remote_track("TR_cam")
    alice.track_publications["TR_cam"]._track = camera
    stream = VideoStream.from_participant(participant=alice, track_source=TrackSource.SOURCE_CAMERA)
    # track_subscribed, local_track_published, participant_disconnected, disconnected
    assert room._listener_count() == 4 and camera._reader.subscriber_count == 1
    await stream.aclose()
    assert room._listener_count() == 0 and camera._reader.subscriber_count == 0


async def test_from_participant_without_a_room() -> None:
    camera = remote_track("TR_cam")
    cam_info = proto_models.TrackInfo(
        sid="TR_cam", type=proto_models.TrackType.VIDEO, source=proto_models.TrackSource.CAMERA
    )
    alone = RemoteParticipant(
        proto_models.ParticipantInfo(identity="alice", sid="PA_a", tracks=[cam_info])
    )
    alone.track_publications["TR_cam"]._track = camera
    stream = VideoStream.from_participant(participant=alone, track_source=TrackSource.SOURCE_CAMERA)
    camera._reader.publish(av_frame(8, 8, RED))
    camera._reader.end()  # its only track ended: so does the stream
    assert len(await collect(stream)) == 1
    nothing = RemoteParticipant(proto_models.ParticipantInfo(identity="bob", sid="PA_b"))
    stream = VideoStream.from_participant(
        participant=nothing, track_source=TrackSource.SOURCE_CAMERA
    )
    assert await collect(stream) == []
