"""Frame metadata (user timestamps, frame ids, user data) through the real server.

The official SDK 1.2.1 is the peer: the metadata one SDK captures with a picture arrives
with that picture at the other (each picture shows its frame id as a grey level, so a
metadata attached to the wrong picture is seen), in clear and end-to-end encrypted, and
a subscriber that does not advertise ``CAP_PACKET_TRAILER`` gets the frames without
trailers from the server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.signal import client_protocol
from livekit_py.webrtc import frame_metadata as frame_metadata_module
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.audio_utils import background
from tests.integration.test_e2ee import official_e2ee, ours_e2ee

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 320, 180, 15
# the user timestamps count from here (microseconds, as the official SDKs use them)
EPOCH_US = 1_700_000_000_000_000
FEATURES = ("FMF_USER_TIMESTAMP", "FMF_FRAME_ID", "FMF_USER_DATA")


def grey_of(frame_id: int) -> int:
    """The grey level of the band that shows ``frame_id`` (neighbours differ by 40+)."""
    return 30 + (frame_id * 41) % 200


def picture(frame_id: int) -> bytes:
    """W x H RGBA: a grey band on top showing the frame id, red/blue halves below."""
    img = np.zeros((H, W, 4), dtype=np.uint8)
    img[H // 2 :, : W // 2, :3] = (230, 30, 30)
    img[H // 2 :, W // 2 :, :3] = (30, 30, 230)
    img[: H // 2, :, :3] = grey_of(frame_id)
    img[:, :, 3] = 255
    return img.tobytes()


def metadata_of(sdk: Any, frame_id: int) -> Any:
    return sdk.FrameMetadata(
        user_timestamp=EPOCH_US + frame_id * 66_666,
        frame_id=frame_id,
        user_data=f"frame {frame_id}".encode(),
    )


async def feed(sdk: Any, source: Any, seconds: float = 120) -> None:
    """Capture frame ids 1, 2, ... at FPS, each with its metadata."""
    start = time.monotonic()
    frame_id = 0
    while time.monotonic() - start < seconds:
        frame_id += 1
        frame = sdk.VideoFrame(W, H, sdk.VideoBufferType.RGBA, picture(frame_id))
        source.capture_frame(frame, metadata=metadata_of(sdk, frame_id))
        await asyncio.sleep(max(0.0, start + frame_id / FPS - time.monotonic()))


async def publish(sdk: Any, room: Any, codec: str = "VP8", **options: Any) -> Any:
    """Publish a W x H track with all frame metadata features; returns its feeder."""
    source = sdk.VideoSource(W, H)
    track = sdk.LocalVideoTrack.create_video_track("meta", source)
    publish_options = sdk.TrackPublishOptions(
        source=sdk.TrackSource.SOURCE_CAMERA,
        video_codec=getattr(sdk.VideoCodec, codec),
        frame_metadata_features=[getattr(sdk.FrameMetadataFeature, f) for f in FEATURES],
        **options,
    )
    await room.local_participant.publish_track(track, publish_options)
    return feed(sdk, source)


@dataclass
class Received:
    """What a subscriber's VideoStream delivered."""

    frames: int = 0
    with_metadata: list[tuple[Any, float]] = field(default_factory=list)
    """(metadata, mean grey level of the band) of each frame that had metadata."""

    async def read(self, sdk: Any, track: Any) -> None:
        stream = sdk.VideoStream(track, format=sdk.VideoBufferType.RGBA)
        try:
            async for event in stream:
                if (event.frame.width, event.frame.height) != (W, H):
                    continue  # the server's blank frames
                self.frames += 1
                if event.metadata is None:
                    continue
                rgba = np.frombuffer(bytes(event.frame.data), dtype=np.uint8).reshape(H, W, 4)
                band = float(rgba[H // 8 : 3 * H // 8, W // 4 : 3 * W // 4, :3].mean())
                self.with_metadata.append((event.metadata, band))
        finally:
            await stream.aclose()

    def check(self, minimum: int = 20) -> None:
        """Each metadata is the one captured with its picture (skipping the first few)."""
        checked = self.with_metadata[5:]
        assert len(checked) >= minimum, f"{len(checked)} frames with metadata"
        ids = [m.frame_id for m, _ in checked]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        for metadata, band in checked:
            frame_id = metadata.frame_id
            assert metadata.user_timestamp == EPOCH_US + frame_id * 66_666
            assert metadata.user_data == f"frame {frame_id}".encode()
            assert abs(band - grey_of(frame_id)) < 15, (
                f"the picture of frame {frame_id} shows {band:.0f}, not {grey_of(frame_id)}"
            )


async def subscribed_track(room: Any, identity: str, timeout: float = 20) -> Any:
    def track() -> Any:
        participant = room.remote_participants.get(identity)
        if participant is None:
            return None
        return next((p.track for p in participant.track_publications.values() if p.track), None)

    await wait_until(lambda: track() is not None, timeout=timeout, what=f"a track of {identity}")
    return track()


async def receive(sdk: Any, room: Any, identity: str, minimum: int = 20) -> Received:
    received = Received()
    track = await subscribed_track(room, identity)
    async with background(received.read(sdk, track)):
        await wait_until(
            lambda: len(received.with_metadata) >= minimum + 5,
            timeout=40,
            what=f"{minimum + 5} frames with metadata ({received.frames} frames so far)",
        )
    return received


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_our_frame_metadata_arrives_with_its_picture_at_the_official_sdk(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        feeder = await publish(rtc, ours, codec)
        pub = next(iter(ours.local_participant.track_publications.values()))
        assert sorted(pub.frame_metadata_features) == [0, 1, 2]
        async with background(feeder):
            received = await receive(official, theirs, "ours")
        received.check()
        remote = next(iter(theirs.remote_participants["ours"].track_publications.values()))
        assert sorted(int(f) for f in remote.frame_metadata_features) == [0, 1, 2]
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_the_official_frame_metadata_arrives_with_its_picture_here(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(await publish(official, theirs)):
            received = await receive(rtc, ours, "official")
        received.check()
        remote = next(iter(ours.remote_participants["official"].track_publications.values()))
        assert sorted(remote.frame_metadata_features) == [0, 1, 2]
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_encrypted_frames_carry_their_metadata_both_ways(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    try:
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        our_feeder = await publish(rtc, ours)
        their_feeder = await publish(official, theirs)
        async with background(our_feeder), background(their_feeder):
            at_theirs, at_ours = await asyncio.gather(
                receive(official, theirs, "ours"), receive(rtc, ours, "official")
            )
        at_theirs.check()
        at_ours.check()
    finally:
        await ours.disconnect()
        await theirs.disconnect()


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_a_subscriber_without_the_capability_gets_frames_without_trailers(
    server_url: str, make_token: TokenFactory, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ours publishes; the server strips the trailer from the last packet of each frame for
    a subscriber (ours, told not to advertise CAP_PACKET_TRAILER) while the official
    subscriber still gets the metadata."""
    publisher, bare, theirs = rtc.Room(), rtc.Room(), official.Room()
    ends: list[bytes] = []
    split = frame_metadata_module.split_trailer

    def watched_split(frame: bytes) -> Any:
        ends.append(frame[-4:])
        return split(frame)

    try:
        await publisher.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        monkeypatch.setattr(  # a subscriber that does not read packet trailers
            client_protocol,
            "CLIENT_CAPABILITIES",
            (client_protocol.CAP_COMPRESSION_DEFLATE_RAW,),
        )
        await bare.connect(server_url, make_token("bare"))
        monkeypatch.setattr(frame_metadata_module, "split_trailer", watched_split)
        async with background(await publish(rtc, publisher, codec)):
            bare_received = Received()
            bare_track = await subscribed_track(bare, "ours")
            async with background(bare_received.read(rtc, bare_track)):
                await receive(official, theirs, "ours")  # the trailers are sent
                await wait_until(
                    lambda: bare_received.frames >= 30, timeout=30, what="30 frames at bare"
                )
        assert bare_received.with_metadata == []
        assert len(ends) >= 30 and b"LKTS" not in ends
    finally:
        await publisher.disconnect()
        await bare.disconnect()
        await theirs.disconnect()
