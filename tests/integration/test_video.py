"""Video end to end through the real server, with the official SDK as the peer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 640, 360, 30
RED = (230, 30, 30)
BLUE = (30, 30, 230)


def two_colour_pattern() -> bytes:
    """640x360 RGBA: the left half red, the right half blue."""
    img = np.zeros((H, W, 4), dtype=np.uint8)
    img[:, : W // 2, :3] = RED
    img[:, W // 2 :, :3] = BLUE
    img[:, :, 3] = 255
    return img.tobytes()


async def feed_video(source: Any, frame_cls: Any, buffer_type: Any, seconds: float = 60) -> int:
    """Capture the pattern at 30 fps on absolute deadlines; returns frames sent."""
    data = two_colour_pattern()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        source.capture_frame(frame_cls(W, H, buffer_type, data))
        sent += 1
        next_at = start + sent / FPS
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def check_colours(rgba: np.ndarray) -> None:
    """Both halves have their colour, within codec error (away from the edge)."""
    h, w = rgba.shape[:2]
    left = rgba[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8, :3].reshape(-1, 3).mean(axis=0)
    right = rgba[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8, :3].reshape(-1, 3).mean(axis=0)
    assert np.abs(left - RED).max() < 25, f"left half {left} is not red"
    assert np.abs(right - BLUE).max() < 25, f"right half {right} is not blue"


async def measure_stream(stream: Any, rgba_type: Any, seconds: float = 5.0) -> tuple[float, Any]:
    """Skip a second of warm-up, then count frames for ``seconds``; returns (fps, last frame)."""
    last = None
    count = 0
    started: float | None = None
    warmup_until = time.monotonic() + 1.0

    async def read() -> None:
        nonlocal last, count, started
        async for event in stream:
            now = time.monotonic()
            if now < warmup_until:
                continue
            if started is None:
                started = now
            count += 1
            last = event.frame
            if now - started >= seconds:
                return

    await asyncio.wait_for(read(), seconds + 20)
    assert last is not None and started is not None
    assert last.type == rgba_type
    return count / (time.monotonic() - started), last


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_our_video_reaches_the_official_sdk(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("pattern", source)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(feed_video(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)):
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                video_codec=getattr(rtc.VideoCodec, codec),
                video_encoding=rtc.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
            )
            publication = await ours.local_participant.publish_track(track, options)
            assert publication.kind == rtc.TrackKind.KIND_VIDEO
            assert (publication.width, publication.height) == (W, H)
            # simulcast unset: on, as in the official SDK (640x360: two layers, LiveKit's
            # 640x360 preset and the full picture, both this size); the official
            # subscriber gets the top one
            assert publication.simulcasted
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_pub = theirs.remote_participants["ours"].track_publications[publication.sid]
            assert remote_pub.mime_type.lower() == f"video/{codec.lower()}"
            stream = official.VideoStream(subscribed[0], format=official.VideoBufferType.RGBA)
            fps, frame = await measure_stream(stream, official.VideoBufferType.RGBA)
            await stream.aclose()
        assert fps >= 24, f"official SDK received {fps:.1f} fps"
        assert (frame.width, frame.height) == (W, H)
        check_colours(np.frombuffer(frame.data, dtype=np.uint8).reshape(H, W, 4))
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_official_video_reaches_our_video_stream(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["track_subscribed"])
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("pattern", source)
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        feed = feed_video(source, official.VideoFrame, official.VideoBufferType.RGBA)
        async with background(feed):
            options = official.TrackPublishOptions(
                source=official.TrackSource.SOURCE_CAMERA,
                video_codec=getattr(official.VideoCodec, codec),
                video_encoding=official.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
                simulcast=False,
            )
            await theirs.local_participant.publish_track(track, options)
            remote_track, publication, _ = await log.wait_for("track_subscribed", timeout=15)
            assert isinstance(remote_track, rtc.RemoteVideoTrack)
            assert publication.kind == rtc.TrackKind.KIND_VIDEO
            assert publication.mime_type.lower() == f"video/{codec.lower()}"
            stream = rtc.VideoStream(remote_track, format=rtc.VideoBufferType.RGBA)
            fps, frame = await measure_stream(stream, rtc.VideoBufferType.RGBA)
            await stream.aclose()
        assert fps >= 24, f"we received {fps:.1f} fps"
        assert (frame.width, frame.height) == (W, H)
        check_colours(np.frombuffer(frame.data, dtype=np.uint8).reshape(H, W, 4))
    finally:
        await theirs.disconnect()
        await ours.disconnect()
        await source.aclose()


async def _drain(stream: Any) -> int:
    n = 0
    async for _ in stream:
        n += 1
    return n


async def test_unpublish_and_disconnect_end_the_peers_video_stream(
    server_url: str, make_token: TokenFactory
) -> None:
    viewer, sender = rtc.Room(), rtc.Room()
    log = EventLog(viewer, ["track_subscribed", "track_unpublished"])
    source = rtc.VideoSource(320, 180)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)

    async def feed() -> None:
        frame = rtc.VideoFrame(320, 180, rtc.VideoBufferType.RGBA, bytes(320 * 180 * 4))
        while True:
            source.capture_frame(frame)
            await asyncio.sleep(1 / 30)

    try:
        await viewer.connect(server_url, make_token("viewer"))
        await sender.connect(server_url, make_token("sender"))
        async with background(feed()):
            pub = await sender.local_participant.publish_track(track)
            remote, _, _ = await log.wait_for("track_subscribed", timeout=15)
            drained = asyncio.ensure_future(_drain(rtc.VideoStream(remote)))
            await asyncio.sleep(1.0)
            await sender.local_participant.unpublish_track(pub.sid)
            assert await asyncio.wait_for(drained, 10) > 5
            await log.wait_for("track_unpublished", timeout=10)

            await sender.local_participant.publish_track(track)
            second, _, _ = await log.wait_for(
                "track_subscribed", lambda t, *_: t is not remote, timeout=15
            )
            drained = asyncio.ensure_future(_drain(rtc.VideoStream(second)))
            await asyncio.sleep(1.0)
            await sender.disconnect()
            assert await asyncio.wait_for(drained, 10) > 5
    finally:
        await sender.disconnect()
        await viewer.disconnect()
        await source.aclose()


async def test_unavailable_codecs_raise_before_publishing(
    server_url: str, make_token: TokenFactory
) -> None:
    room = rtc.Room()
    source = rtc.VideoSource(64, 64)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    try:
        await room.connect(server_url, make_token("p"))
        for codec in (rtc.VideoCodec.AV1, rtc.VideoCodec.VP9, rtc.VideoCodec.H265):
            with pytest.raises(ValueError, match="not available"):
                await room.local_participant.publish_track(
                    track, rtc.TrackPublishOptions(video_codec=codec)
                )
        assert room.local_participant.track_publications == {}
        with pytest.raises(ValueError, match="VideoSource"):
            rtc.LocalVideoTrack.create_video_track("x", object())  # type: ignore[arg-type]
    finally:
        await room.disconnect()
        await source.aclose()
