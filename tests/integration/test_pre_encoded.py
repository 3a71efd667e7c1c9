"""Pre-encoded video through the real server, with the official SDK as the peer.

Access units are encoded beforehand with PyAV (tests/encoded_frames.py: a moving test
pattern, 640x360, H.264 constrained baseline in Annex-B, or VP8) and published through an
``EncodedVideoSource``. The feeder plays them at 30 fps and answers a key-frame request
(``take_feedback``) by starting again from the clip's key frame, as a player seeking to
its nearest key frame would. Both SDKs publish and both decode.
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
from tests.conftest import TokenFactory
from tests.encoded_frames import EncodedUnit, best_psnr, encode
from tests.helpers import wait_until
from tests.integration.audio_utils import background
from tests.integration.test_e2ee import official_e2ee, ours_e2ee
from tests.integration.test_video import check_colours

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 640, 360, 30
CLIP = 150  # frames: the box goes once across the picture
MIN_PSNR = 30.0  # dB, luma, against the pattern picture it matches best


@pytest.fixture(scope="module")
def clips() -> dict[tuple[str, int, bool], list[EncodedUnit]]:
    """Encoded clips by (codec, key frame interval), made once for the module."""
    return {}


def clip(
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
    codec: str,
    keyint: int = 1_000_000,
    *,
    sei: bool = True,
) -> list[EncodedUnit]:
    if (codec, keyint, sei) not in clips:
        clips[codec, keyint, sei] = encode(codec, CLIP, W, H, keyint=keyint, sei=sei)
    return clips[codec, keyint, sei]


@dataclass
class Player:
    """Plays a clip into an EncodedVideoSource of either SDK, following its feedback."""

    sdk: Any
    source: Any
    units: list[EncodedUnit]
    codec: int
    requests: list[int] = field(default_factory=list)  # frame numbers of key-frame requests
    rate_controls: list[Any] = field(default_factory=list)
    sent: int = 0
    with_metadata: bool = False  # each frame carries FrameMetadata(frame_id=its number + 1)

    async def run(self) -> None:
        start = time.monotonic()
        index = 0
        key = self.sdk.EncodedFrameType.ENCODED_FRAME_KEY
        delta = self.sdk.EncodedFrameType.ENCODED_FRAME_DELTA
        while True:
            unit = self.units[index]
            self.source.capture_frame(
                self.sdk.EncodedVideoFrame(
                    data=unit.data,
                    width=W,
                    height=H,
                    codec=self.codec,
                    frame_type=key if unit.keyframe else delta,
                    timestamp_us=1 + round(self.sent * 1e6 / FPS),
                    metadata=(
                        self.sdk.FrameMetadata(
                            frame_id=self.sent + 1, user_timestamp=1_000_000 + self.sent
                        )
                        if self.with_metadata
                        else None
                    ),
                )
            )
            self.sent += 1
            feedback = self.source.take_feedback()
            if feedback.rate_control is not None:
                self.rate_controls.append(feedback.rate_control)
            if feedback.keyframe_requested:
                self.requests.append(self.sent)
                index = 0  # the clip's key frame
            else:
                index = (index + 1) % len(self.units)
            await asyncio.sleep(max(0.0, start + self.sent / FPS - time.monotonic()))

    def quiet_for(self, frames: int) -> bool:
        """Whether ``frames`` frames went out since the last key-frame request."""
        last = self.requests[-1] if self.requests else 0
        return self.sent - last >= frames


def pre_encoded_options(sdk: Any, codec: str) -> Any:
    return sdk.TrackPublishOptions(
        source=sdk.TrackSource.SOURCE_CAMERA,
        video_codec=getattr(sdk.VideoCodec, codec),
        video_encoder=sdk.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
        simulcast=False,
    )


async def decoded_frame(stream: Any, *, skip: int = 10, timeout: float = 20.0) -> Any:
    """The ``skip``-th frame a VideoStream (of either SDK) decodes."""

    async def read() -> Any:
        count = 0
        async for event in stream:
            count += 1
            if count >= skip:
                return event.frame
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)


def check_picture(frame: Any) -> float:
    """The frame is the pattern at full size: returns its PSNR against the best match."""
    assert (frame.width, frame.height) == (W, H)
    rgba = np.frombuffer(frame.data, dtype=np.uint8).reshape(H, W, 4)
    check_colours(rgba)
    psnr, _ = best_psnr(rgba, W, H, CLIP)
    assert psnr >= MIN_PSNR, f"the picture matches no pattern frame ({psnr:.1f} dB)"
    return psnr


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_our_pre_encoded_video_reaches_the_official_sdk(
    server_url: str,
    make_token: TokenFactory,
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
    codec: str,
) -> None:
    units = clip(clips, codec.lower())
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.EncodedVideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("encoded", source)
    player = Player(rtc, source, units, getattr(rtc.VideoCodec, codec))
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        wrong = pre_encoded_options(rtc, codec)
        wrong.simulcast = True
        with pytest.raises(ValueError, match="simulcast=False"):
            await ours.local_participant.publish_track(track, wrong)
        async with background(player.run()):
            publication = await ours.local_participant.publish_track(
                track, pre_encoded_options(rtc, codec)
            )
            assert (publication.width, publication.height) == (W, H)
            assert not publication.simulcasted
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_pub = theirs.remote_participants["ours"].track_publications[publication.sid]
            assert remote_pub.mime_type.lower() == f"video/{codec.lower()}"
            stream = official.VideoStream(subscribed[0], format=official.VideoBufferType.RGBA)
            try:
                frame = await decoded_frame(stream)
            finally:
                await stream.aclose()
        check_picture(frame)
        # the rate-control target: the publication's cap (LiveKit's preset for 640x360)
        assert player.rate_controls[0] == rtc.EncodedRateControl(450_000, 20.0)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_a_late_subscribers_key_frame_request_reaches_take_feedback(
    server_url: str,
    make_token: TokenFactory,
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
) -> None:
    """The clip has one key frame. A subscriber joining later needs another: the server
    asks (PLI), take_feedback says so, the player sends the key frame, the picture shows."""
    units = clip(clips, "h264")
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.EncodedVideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("encoded", source)
    player = Player(rtc, source, units, rtc.VideoCodec.H264)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    try:
        await ours.connect(server_url, make_token("ours"))
        async with background(player.run()):
            await ours.local_participant.publish_track(track, pre_encoded_options(rtc, "H264"))
            # the first key frame went out and nothing asks for another (2 s of frames)
            await wait_until(lambda: player.quiet_for(2 * FPS), timeout=30, what="quiet")
            joined_at = player.sent
            await theirs.connect(server_url, make_token("official"))
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            await wait_until(
                lambda: any(n > joined_at for n in player.requests),
                timeout=30,
                what="a key-frame request after the subscriber joined",
            )
            stream = official.VideoStream(subscribed[0], format=official.VideoBufferType.RGBA)
            try:
                frame = await decoded_frame(stream)
            finally:
                await stream.aclose()
        check_picture(frame)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_official_pre_encoded_video_reaches_our_video_stream(
    server_url: str,
    make_token: TokenFactory,
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
    codec: str,
) -> None:
    units = clip(clips, codec.lower(), keyint=FPS)
    ours, theirs = rtc.Room(), official.Room()
    source = official.EncodedVideoSource(W, H)
    track = official.LocalVideoTrack.create_video_track("encoded", source)
    player = Player(official, source, units, getattr(official.VideoCodec, codec))
    subscribed: list[Any] = []
    ours.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(player.run()):
            await theirs.local_participant.publish_track(
                track, pre_encoded_options(official, codec)
            )
            await wait_until(lambda: bool(subscribed), timeout=15, what="ours subscribed")
            stream = rtc.VideoStream(subscribed[0], format=rtc.VideoBufferType.RGBA)
            try:
                frame = await decoded_frame(stream)
            finally:
                await stream.aclose()
        check_picture(frame)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_our_encrypted_pre_encoded_video_reaches_the_official_sdk(
    server_url: str,
    make_token: TokenFactory,
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
    codec: str,
) -> None:
    """End-to-end encryption applies to pre-encoded access units as to encoded ones.

    Without libx264's SEI: the official SDK decodes no encrypted H.264 frame that has a
    NAL unit other than SPS/PPS before its first slice (an SEI, a filler), neither ours
    nor its own (official to official fails the same way; ours to ours decodes it).
    """
    units = clip(clips, codec.lower(), sei=False)
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.EncodedVideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("encoded", source)
    player = Player(rtc, source, units, getattr(rtc.VideoCodec, codec))
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    try:
        await theirs.connect(server_url, make_token("official"), options=official_e2ee())
        await ours.connect(server_url, make_token("ours"), options=ours_e2ee())
        async with background(player.run()):
            publication = await ours.local_participant.publish_track(
                track, pre_encoded_options(rtc, codec)
            )
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            remote_pub = theirs.remote_participants["ours"].track_publications[publication.sid]
            assert remote_pub.encryption_type == official.EncryptionType.GCM
            stream = official.VideoStream(subscribed[0], format=official.VideoBufferType.RGBA)
            try:
                frame = await decoded_frame(stream)
            finally:
                await stream.aclose()
        check_picture(frame)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_metadata_of_our_pre_encoded_frames_reaches_the_official_sdk(
    server_url: str,
    make_token: TokenFactory,
    clips: dict[tuple[str, int, bool], list[EncodedUnit]],
) -> None:
    """EncodedVideoFrame.metadata goes out as packet trailers: the official subscriber's
    frames carry the frame id and user timestamp the access units were captured with."""
    units = clip(clips, "h264")
    ours, theirs = rtc.Room(), official.Room()
    source = rtc.EncodedVideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("encoded", source)
    player = Player(rtc, source, units, rtc.VideoCodec.H264, with_metadata=True)
    subscribed: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: subscribed.append(t))
    options = pre_encoded_options(rtc, "H264")
    options.frame_metadata_features.extend(
        [rtc.FrameMetadataFeature.FMF_FRAME_ID, rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP]
    )
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(player.run()):
            await ours.local_participant.publish_track(track, options)
            await wait_until(lambda: bool(subscribed), timeout=15, what="official subscribed")
            stream = official.VideoStream(subscribed[0], format=official.VideoBufferType.RGBA)

            async def metadata_of_frames() -> list[Any]:
                seen = []
                async for event in stream:
                    seen.append(event.metadata)
                    if len(seen) >= 20:
                        return seen
                raise AssertionError("the stream ended")

            try:
                seen = await asyncio.wait_for(metadata_of_frames(), 30)
            finally:
                await stream.aclose()
        ids = [m.frame_id for m in seen if m is not None]
        assert len(ids) == len(seen), "a frame came without its metadata"
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(m.user_timestamp == 1_000_000 + m.frame_id - 1 for m in seen)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()
