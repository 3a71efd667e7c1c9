"""Simulcast through the real server, with the official SDK as the peer.

Each layer is chosen by the subscriber and arrives at its size, in clear and end-to-end
encrypted (with frame metadata on every layer), both ways; dynacast pauses the layers
nobody receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.webrtc.aiortc_adapter import installed_encoder
from livekit_py.webrtc.simulcast import SimulcastEncoder
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.audio_utils import background
from tests.integration.test_e2ee import official_e2ee, ours_e2ee

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 1280, 720, 15
SIZES = {0: (320, 180), 1: (640, 360), 2: (1280, 720)}


def pattern() -> bytes:
    img = np.zeros((H, W, 4), dtype=np.uint8)
    img[:, : W // 2, :3] = (230, 30, 30)
    img[:, W // 2 :, :3] = (30, 30, 230)
    img[:, :, 3] = 255
    return img.tobytes()


async def feed(
    source: Any, frame_cls: Any, buffer_type: Any, seconds: float = 120, metadata_cls: Any = None
) -> None:
    """Capture the pattern at FPS; with ``metadata_cls`` (either SDK's FrameMetadata), frame
    ``n`` carries frame id ``n`` and a user timestamp."""
    data = pattern()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        frame = frame_cls(W, H, buffer_type, data)
        if metadata_cls is None:
            source.capture_frame(frame)
        else:
            metadata = metadata_cls(user_timestamp=int(time.time() * 1e6), frame_id=sent + 1)
            source.capture_frame(frame, metadata=metadata)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / FPS - time.monotonic()))


class SizeWatch:
    """The sizes of the frames a video stream delivers, newest last, and the frame ids of
    the metadata that came with each size."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.frame_ids: dict[tuple[int, int], list[int]] = {}

    async def run(self, stream: Any) -> None:
        async for event in stream:
            size = (event.frame.width, event.frame.height)
            self.sizes.append(size)
            metadata = getattr(event, "metadata", None)
            if metadata is not None and metadata.frame_id:
                self.frame_ids.setdefault(size, []).append(metadata.frame_id)

    def latest(self) -> tuple[int, int] | None:
        return self.sizes[-1] if self.sizes else None


@contextlib.asynccontextmanager
async def watching(stream: Any) -> AsyncIterator[SizeWatch]:
    watch = SizeWatch()
    async with background(watch.run(stream)):
        try:
            yield watch
        finally:
            await stream.aclose()


async def _walk_qualities(
    sdk: Any, remote_track: Any, remote_pub: Any, *, with_metadata: bool = False
) -> None:
    """Ask for LOW, MEDIUM, then HIGH with ``sdk``'s subscriber; each size must arrive
    (``with_metadata``: with increasing frame ids in the frames' metadata)."""
    stream = sdk.VideoStream(remote_track)
    async with watching(stream) as watch:
        for quality in (
            sdk.VideoQuality.VIDEO_QUALITY_LOW,
            sdk.VideoQuality.VIDEO_QUALITY_MEDIUM,
            sdk.VideoQuality.VIDEO_QUALITY_HIGH,
        ):
            remote_pub.set_video_quality(quality)
            want = SIZES[int(quality)]
            await wait_until(
                lambda want=want: watch.latest() == want,  # type: ignore[misc]
                timeout=20,
                what=f"{want} frames (latest {watch.latest()})",
            )
            if with_metadata:
                await wait_until(
                    lambda want=want: len(watch.frame_ids.get(want, [])) >= 5,  # type: ignore[misc]
                    timeout=20,
                    what=f"{want} frames with metadata",
                )
                ids = watch.frame_ids[want]
                assert ids == sorted(ids) and len(set(ids)) == len(ids), ids


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_ours_publishes_simulcast_the_official_sdk_picks_each_layer(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(feed(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)):
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=True)
            publication = await ours.local_participant.publish_track(track, options)
            assert publication.simulcasted
            encoder = installed_encoder(publication._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder)
            assert [s.rid for s in encoder.layers] == ["q", "h", "f"]
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_track, remote_pub = subscribed[0]
            assert remote_pub.simulcasted
            await _walk_qualities(official, remote_track, remote_pub)
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_the_official_simulcast_reaches_our_chosen_quality(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    subscribed: list[Any] = []
    ours.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, official.VideoFrame, official.VideoBufferType.RGBA)):
            options = official.TrackPublishOptions(
                source=official.TrackSource.SOURCE_CAMERA, simulcast=True
            )
            await theirs.local_participant.publish_track(track, options)
            await wait_until(lambda: bool(subscribed), timeout=15, what="ours subscribed")
            remote_track, remote_pub = subscribed[0]
            await wait_until(lambda: remote_pub.simulcasted, timeout=10, what="simulcasted")
            await _walk_qualities(rtc, remote_track, remote_pub)
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_ours_publishes_encrypted_simulcast_the_official_sdk_decrypts_each_layer(
    server_url: str, make_token: TokenFactory
) -> None:
    """One encryptor for the three layers' encoders, each frame's trailer after it."""
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        feeder = feed(
            source, rtc.VideoFrame, rtc.VideoBufferType.RGBA, metadata_cls=rtc.FrameMetadata
        )
        async with background(feeder):
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                simulcast=True,
                frame_metadata_features=[
                    rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
                    rtc.FrameMetadataFeature.FMF_FRAME_ID,
                ],
            )
            publication = await ours.local_participant.publish_track(track, options)
            assert publication.simulcasted
            assert publication.encryption_type == rtc.EncryptionType.GCM
            encoder = installed_encoder(publication._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder) and len(encoder.layers) == 3
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_track, remote_pub = subscribed[0]
            assert remote_pub.simulcasted
            await _walk_qualities(official, remote_track, remote_pub, with_metadata=True)
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_the_official_encrypted_simulcast_reaches_our_chosen_quality(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    subscribed: list[Any] = []
    ours.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        feeder = feed(
            source,
            official.VideoFrame,
            official.VideoBufferType.RGBA,
            metadata_cls=official.FrameMetadata,
        )
        async with background(feeder):
            options = official.TrackPublishOptions(
                source=official.TrackSource.SOURCE_CAMERA,
                simulcast=True,
                frame_metadata_features=[official.FrameMetadataFeature.FMF_FRAME_ID],
            )
            await theirs.local_participant.publish_track(track, options)
            await wait_until(lambda: bool(subscribed), timeout=15, what="ours subscribed")
            remote_track, remote_pub = subscribed[0]
            await wait_until(lambda: remote_pub.simulcasted, timeout=10, what="simulcasted")
            assert remote_pub.encryption_type == rtc.EncryptionType.GCM
            await _walk_qualities(rtc, remote_track, remote_pub, with_metadata=True)
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_dynacast_stops_the_layers_nobody_receives(
    server_url: str, make_token: TokenFactory
) -> None:
    ours = rtc.Room()
    low, high = official.Room(), official.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    low_subs: list[Any] = []
    high_subs: list[Any] = []
    low.on("track_subscribed", lambda t, pub, p: low_subs.append((t, pub)))
    high.on("track_subscribed", lambda t, pub, p: high_subs.append((t, pub)))
    try:
        await ours.connect(server_url, make_token("ours"), rtc.RoomOptions(dynacast=True))
        await low.connect(server_url, make_token("low"))
        async with background(feed(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)):
            options = rtc.TrackPublishOptions(simulcast=True)
            publication = await ours.local_participant.publish_track(track, options)
            encoder = installed_encoder(publication._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder)
            q, h, f = encoder.layers
            await wait_until(lambda: bool(low_subs), timeout=15, what="low subscribed")
            low_track, low_pub = low_subs[0]
            low_pub.set_video_quality(official.VideoQuality.VIDEO_QUALITY_LOW)
            stream = official.VideoStream(low_track)
            async with watching(stream) as watch:
                await wait_until(
                    lambda: watch.latest() == (320, 180), timeout=20, what="low frames"
                )
                await wait_until(
                    lambda: not h.active and not f.active, timeout=20, what="h and f paused"
                )
                counts = (h.frames_encoded, f.frames_encoded)
                low_count = q.frames_encoded
                await asyncio.sleep(2.0)
                assert (h.frames_encoded, f.frames_encoded) == counts
                assert q.frames_encoded > low_count
                await high.connect(server_url, make_token("high"))
                await wait_until(lambda: bool(high_subs), timeout=15, what="high subscribed")
                high_track, _ = high_subs[0]
                high_stream = official.VideoStream(high_track)
                async with watching(high_stream) as high_watch:
                    await wait_until(lambda: f.active, timeout=20, what="f resumed")
                    await wait_until(
                        lambda: high_watch.latest() == (1280, 720),
                        timeout=20,
                        what=f"720p frames (latest {high_watch.latest()})",
                    )
                    assert f.frames_encoded > counts[1]
    finally:
        await ours.disconnect()
        await low.disconnect()
        await high.disconnect()


@pytest.mark.xfail(
    reason="livekit-server 1.13.5 still forwarded 720p first with adaptive_stream=1 from "
    "livekit-py (under investigation: which join parameter the server also needs)",
    strict=False,
)
async def test_adaptive_stream_starts_at_the_low_layer(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    subscribed: list[Any] = []
    ours.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await ours.connect(server_url, make_token("ours"), rtc.RoomOptions(adaptive_stream=True))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, official.VideoFrame, official.VideoBufferType.RGBA)):
            options = official.TrackPublishOptions(simulcast=True)
            await theirs.local_participant.publish_track(track, options)
            await wait_until(lambda: bool(subscribed), timeout=15, what="ours subscribed")
            remote_track, remote_pub = subscribed[0]
            async with watching(rtc.VideoStream(remote_track)) as watch:
                await wait_until(lambda: len(watch.sizes) >= 5, timeout=20, what="frames")
                assert watch.sizes[0] == (320, 180), watch.sizes[:5]
                remote_pub.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_HIGH)
                await wait_until(lambda: watch.latest() == (W, H), timeout=20, what="720p")
    finally:
        await ours.disconnect()
        await theirs.disconnect()
