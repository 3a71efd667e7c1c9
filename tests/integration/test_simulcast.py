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
from livekit import api
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.webrtc.aiortc_adapter import installed_encoder
from livekit_py.webrtc.simulcast import SimulcastEncoder
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background
from tests.integration.test_e2ee import official_e2ee, ours_e2ee

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 1280, 720, 15
SIZES = {0: (320, 180), 1: (640, 360), 2: (1280, 720)}


def patterns(count: int = 8) -> list[bytes]:
    """Red and blue halves with a square of noise that changes from picture to picture.

    The noise matters: the server deems a MEDIUM or HIGH layer stopped when it gets
    fewer than 5 packets in half a second (and then for 10 s), and a still picture
    makes one small packet a frame, too few at 15 fps on a loaded machine; the noise
    makes every frame of the upper layers several packets, as a camera's do.
    """
    out = []
    side = H // 2
    for i in range(count):
        img = np.zeros((H, W, 4), dtype=np.uint8)
        img[:, : W // 2, :3] = (230, 30, 30)
        img[:, W // 2 :, :3] = (30, 30, 230)
        noise = np.random.default_rng(i).integers(0, 256, (side, side, 3), dtype=np.uint8)
        top, left = (H - side) // 2, (W - side) // 2
        img[top : top + side, left : left + side, :3] = noise
        img[:, :, 3] = 255
        out.append(img.tobytes())
    return out


async def feed(
    source: Any, frame_cls: Any, buffer_type: Any, seconds: float = 120, metadata_cls: Any = None
) -> None:
    """Capture the patterns at FPS; with ``metadata_cls`` (either SDK's FrameMetadata), frame
    ``n`` carries frame id ``n`` and a user timestamp."""
    pictures = patterns()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        frame = frame_cls(W, H, buffer_type, pictures[sent % len(pictures)])
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


async def server_track(server_url: str, room: str, identity: str, sid: str) -> Any:
    """The server's TrackInfo of ``identity``'s track ``sid`` (RoomService.ListParticipants).

    Asked again until the server lists it (after a full reconnect it may still list the
    participant's previous session for a moment).
    """
    http_url = server_url.replace("ws://", "http://")
    lkapi = api.LiveKitAPI(url=http_url, api_key="devkey", api_secret="secret")
    try:
        deadline = time.monotonic() + 20
        while True:
            res = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
            found = [
                t
                for p in res.participants
                if p.identity == identity
                for t in p.tracks
                if t.sid == sid
            ]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"the server does not list {identity}'s {sid}"
            await asyncio.sleep(0.2)
    finally:
        await lkapi.aclose()


def three_layers(track: Any) -> list[tuple[int, int, int]]:
    return sorted((int(layer.quality), layer.width, layer.height) for layer in track.layers)


LAYERS_720P = [(0, 320, 180), (1, 640, 360), (2, 1280, 720)]


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
    server_url: str, make_token: TokenFactory, room_name: str, codec: str
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
            # simulcast unset: on by default, as in the official SDK
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA, video_codec=getattr(rtc.VideoCodec, codec)
            )
            publication = await ours.local_participant.publish_track(track, options)
            assert publication.simulcasted
            encoder = installed_encoder(publication._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder)
            assert [s.rid for s in encoder.layers] == ["q", "h", "f"]
            info = await server_track(server_url, room_name, "ours", publication.sid)
            assert info.simulcast and three_layers(info) == LAYERS_720P
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_track, remote_pub = subscribed[0]
            assert remote_pub.simulcasted
            assert remote_pub.mime_type.lower() == f"video/{codec.lower()}"
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
                # a frame being encoded when the pause came may still count: once q has
                # encoded the next one, that encode call is over
                low_count = q.frames_encoded
                await wait_until(lambda: q.frames_encoded > low_count, timeout=20, what="q")
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


async def _frames_after(watch: SizeWatch, count: int) -> list[tuple[int, int]]:
    """The next ``count`` frame sizes ``watch`` sees."""
    start = len(watch.sizes)
    await wait_until(
        lambda: len(watch.sizes) >= start + count, timeout=30, what=f"{count} more frames"
    )
    return watch.sizes[start : start + count]


async def test_adaptive_stream_starts_at_the_low_layer(
    server_url: str, make_token: TokenFactory
) -> None:
    """With adaptive_stream the first frames of a subscription are the low layer.

    The server (``adaptive_stream=1``) sets a new video subscription to LOW when it binds,
    then forwards the first key frame of any layer up to the highest it has seen and
    steps down to LOW from there: the first frames are LOW when LOW's key frame comes
    first. When the subscription starts the server asks for a key frame of LOW only, and
    our publisher answers a layer's key frame request on that layer alone. In the first
    second of a publication, though, the server asks every layer for a key frame (its
    key frame seeder), and a subscription made then may get the full layer's first: so
    the viewer subscribes once the layers have been sent for two seconds. (libwebrtc
    key-frames every VP8 layer at once, the full one first: from the official publisher
    the first half second is 720p, see the next test.)
    """
    publisher, viewer = rtc.Room(), rtc.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    log = EventLog(viewer, ["track_published", "track_subscribed"])
    try:
        await viewer.connect(
            server_url,
            make_token("viewer"),
            rtc.RoomOptions(adaptive_stream=True, auto_subscribe=False),
        )
        await publisher.connect(server_url, make_token("publisher"))
        async with background(feed(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)):
            published = await publisher.local_participant.publish_track(track)
            encoder = installed_encoder(published._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder)
            (pub, _) = await log.wait_for("track_published", timeout=15)
            assert pub.simulcasted
            await wait_until(
                lambda: min(s.frames_encoded for s in encoder.layers) >= 2 * FPS,
                timeout=30,
                what="two seconds of every layer",
            )
            pub.set_subscribed(True)
            remote_track, _, _ = await log.wait_for("track_subscribed", timeout=15)
            async with watching(rtc.VideoStream(remote_track)) as watch:
                first = await _frames_after(watch, 10)
                assert first == [(320, 180)] * 10, first
                pub.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_HIGH)
                await wait_until(lambda: watch.latest() == (W, H), timeout=20, what="720p")
    finally:
        await viewer.disconnect()
        await publisher.disconnect()


async def test_adaptive_stream_settles_the_official_simulcast_at_low(
    server_url: str, make_token: TokenFactory
) -> None:
    """Without asking, an adaptive_stream subscription settles at LOW, a plain one at HIGH."""
    adaptive, plain, theirs = rtc.Room(), rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    adaptive_log = EventLog(adaptive, ["track_subscribed"])
    plain_log = EventLog(plain, ["track_subscribed"])
    try:
        await adaptive.connect(
            server_url, make_token("adaptive"), rtc.RoomOptions(adaptive_stream=True)
        )
        await plain.connect(server_url, make_token("plain"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, official.VideoFrame, official.VideoBufferType.RGBA)):
            await theirs.local_participant.publish_track(track, official.TrackPublishOptions())
            adaptive_track, adaptive_pub, _ = await adaptive_log.wait_for(
                "track_subscribed", timeout=15
            )
            plain_track, _, _ = await plain_log.wait_for("track_subscribed", timeout=15)
            async with (
                watching(rtc.VideoStream(adaptive_track)) as low,
                watching(rtc.VideoStream(plain_track)) as high,
            ):
                await wait_until(lambda: low.latest() == (320, 180), timeout=20, what="LOW")
                assert await _frames_after(low, 15) == [(320, 180)] * 15
                await wait_until(lambda: high.latest() == (W, H), timeout=20, what="HIGH")
                assert await _frames_after(high, 15) == [(W, H)] * 15
                adaptive_pub.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_HIGH)
                await wait_until(lambda: low.latest() == (W, H), timeout=20, what="720p")
    finally:
        await adaptive.disconnect()
        await plain.disconnect()
        await theirs.disconnect()


# -- reconnects ---------------------------------------------------------------------------


class Subscriptions:
    """The newest remote track of a room (a full reconnect subscribes again)."""

    def __init__(self, room: rtc.Room) -> None:
        self.items: list[tuple[Any, Any]] = []
        room.on("track_subscribed", lambda t, pub, p: self.items.append((t, pub)))

    async def next(self, after: int, timeout: float = 20) -> tuple[Any, Any]:
        await wait_until(lambda: len(self.items) > after, timeout=timeout, what="a subscription")
        return self.items[-1]


# (scenario, whether the session is joined again: a new subscription)
RECONNECTS = [
    pytest.param(rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT, False, id="resume"),
    # the server drops the session: our resume is refused and we join again
    pytest.param(rtc.SimulateScenarioKind.SIMULATE_MIGRATION, True, id="migration"),
    pytest.param(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT, True, id="full_reconnect"),
]


@pytest.mark.parametrize(("scenario", "rejoins"), RECONNECTS)
async def test_a_chosen_quality_is_kept_across_a_reconnect(
    server_url: str, make_token: TokenFactory, scenario: int, rejoins: bool
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    subs = Subscriptions(ours)
    log = EventLog(ours, ["reconnected"])
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, official.VideoFrame, official.VideoBufferType.RGBA)):
            await theirs.local_participant.publish_track(track, official.TrackPublishOptions())
            remote_track, remote_pub = await subs.next(0)
            remote_pub.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_LOW)
            async with watching(rtc.VideoStream(remote_track)) as watch:
                await wait_until(lambda: watch.latest() == (320, 180), timeout=20, what="LOW")
            before = len(subs.items)
            await ours.simulate_scenario(scenario)
            await log.wait_for("reconnected", timeout=60)
            if rejoins:
                remote_track, remote_pub = await subs.next(before)
            else:
                remote_track, remote_pub = subs.items[-1]
            async with watching(rtc.VideoStream(remote_track)) as watch:
                # the server may forward another layer's key frame first, then LOW
                await wait_until(lambda: len(watch.sizes) >= 3 * FPS, timeout=30, what="frames")
                assert watch.sizes[-FPS:] == [(320, 180)] * FPS, watch.sizes[-FPS:]
            remote_pub.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_HIGH)
            async with watching(rtc.VideoStream(remote_track)) as watch:
                await wait_until(lambda: watch.latest() == (W, H), timeout=20, what="HIGH")
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_a_paused_subscription_stays_paused_after_a_full_reconnect(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = official.VideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("cam", source)
    subs = Subscriptions(ours)
    log = EventLog(ours, ["reconnected"])
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, official.VideoFrame, official.VideoBufferType.RGBA)):
            await theirs.local_participant.publish_track(track, official.TrackPublishOptions())
            _, remote_pub = await subs.next(0)
            remote_pub.set_enabled(False)
            before = len(subs.items)
            await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
            await log.wait_for("reconnected", timeout=60)
            remote_track, remote_pub = await subs.next(before)
            async with watching(rtc.VideoStream(remote_track)) as watch:
                await asyncio.sleep(3.0)  # the publisher sends 45 frames meanwhile
                assert watch.sizes == []
                remote_pub.set_enabled(True)
                await wait_until(lambda: len(watch.sizes) >= 5, timeout=20, what="frames")
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_a_full_reconnect_republishes_our_simulcast_with_dynacast(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    subs: list[tuple[Any, Any]] = []
    theirs.on("track_subscribed", lambda t, pub, p: subs.append((t, pub)))
    log = EventLog(ours, ["reconnected", "local_track_republished"])
    try:
        await ours.connect(server_url, make_token("ours"), rtc.RoomOptions(dynacast=True))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)):
            publication = await ours.local_participant.publish_track(track)
            before = installed_encoder(publication._transceiver.sender)
            assert isinstance(before, SimulcastEncoder)
            await wait_until(lambda: bool(subs), timeout=15, what="official subscribed")
            subs[0][1].set_video_quality(official.VideoQuality.VIDEO_QUALITY_LOW)
            await wait_until(
                lambda: not before.layers[1].active and not before.layers[2].active,
                timeout=20,
                what="h and f paused by dynacast",
            )
            old_sid = publication.sid
            await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
            await log.wait_for("local_track_republished", timeout=60)
            await log.wait_for("reconnected", timeout=60)
            assert publication.sid != old_sid and publication.simulcasted
            after = installed_encoder(publication._transceiver.sender)
            assert isinstance(after, SimulcastEncoder) and after is not before
            assert [(s.rid, s.layer.width) for s in after.layers] == [
                ("q", 320),
                ("h", 640),
                ("f", 1280),
            ]
            info = await server_track(server_url, room_name, "ours", publication.sid)
            assert info.simulcast and three_layers(info) == LAYERS_720P
            assert [c.mime_type.lower() for c in info.codecs] == ["video/vp8"]
            await wait_until(
                lambda: any(pub.sid == publication.sid for _, pub in subs),
                timeout=20,
                what="official subscribed again",
            )
            new_track, new_pub = next((t, p) for t, p in subs if p.sid == publication.sid)
            assert new_pub.simulcasted
            new_pub.set_video_quality(official.VideoQuality.VIDEO_QUALITY_LOW)
            async with watching(official.VideoStream(new_track)) as watch:
                await wait_until(lambda: watch.latest() == (320, 180), timeout=20, what="LOW")
            # dynacast on the new session: the layers nobody receives stop again
            await wait_until(
                lambda: not after.layers[1].active and not after.layers[2].active,
                timeout=20,
                what="h and f paused by dynacast after the reconnect",
            )
    finally:
        await ours.disconnect()
        await theirs.disconnect()


# -- screen shares ------------------------------------------------------------------------


async def test_a_screen_share_has_the_official_layers(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    """Ours and the official SDK publish a 720p screen share: the server lists the same layers."""
    ours, theirs = rtc.Room(), official.Room()
    our_source = rtc.VideoSource(W, H, is_screencast=True)
    their_source = official.VideoSource(W, H, is_screencast=True)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append((t, pub)))
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with (
            background(feed(our_source, rtc.VideoFrame, rtc.VideoBufferType.RGBA)),
            background(feed(their_source, official.VideoFrame, official.VideoBufferType.RGBA)),
        ):
            share = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_SCREENSHARE)
            publication = await ours.local_participant.publish_track(
                rtc.LocalVideoTrack.create_video_track("screen", our_source), share
            )
            their_publication = await theirs.local_participant.publish_track(
                official.LocalVideoTrack.create_video_track("screen", their_source),
                official.TrackPublishOptions(source=official.TrackSource.SOURCE_SCREENSHARE),
            )
            mine = await server_track(server_url, room_name, "ours", publication.sid)
            theirs_info = await server_track(
                server_url, room_name, "official", their_publication.sid
            )

            def layers(info: Any) -> list[tuple[int, int, int, int]]:
                return sorted((int(x.quality), x.width, x.height, x.bitrate) for x in info.layers)

            # half the size at 150 kbps (3 fps), and the full picture at 1.5 Mbps (15 fps)
            assert (
                layers(mine)
                == layers(theirs_info)
                == [
                    (0, 640, 360, 150_000),
                    (1, 1280, 720, 1_500_000),
                ]
            )
            assert mine.simulcast and theirs_info.simulcast
            encoder = installed_encoder(publication._transceiver.sender)
            assert isinstance(encoder, SimulcastEncoder)
            assert [s.layer.max_framerate for s in encoder.layers] == [3.0, 15.0]
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_track, remote_pub = subscribed[0]
            assert remote_pub.source == official.TrackSource.SOURCE_SCREENSHARE
            stream = official.VideoStream(remote_track)
            async with watching(stream) as watch:
                for quality, size in (
                    (official.VideoQuality.VIDEO_QUALITY_LOW, (640, 360)),
                    (official.VideoQuality.VIDEO_QUALITY_HIGH, (W, H)),
                ):
                    remote_pub.set_video_quality(quality)
                    await wait_until(
                        lambda size=size: watch.latest() == size,  # type: ignore[misc]
                        timeout=20,
                        what=f"{size} frames (latest {watch.latest()})",
                    )
    finally:
        await ours.disconnect()
        await theirs.disconnect()
