"""Frame metadata on our media path: stored by media timestamp, appended after encryption
by every encoder of a sender (every simulcast layer), stripped before decryption and
put on the decoded picture; and the public API around it."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.h264 import H264Decoder, h264_depayload
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.media.frame_crypto import (
    FrameDecryptor,
    KeyDerivationFunction,
    KeyOptions,
    KeyRing,
    MediaKind,
)
from livekit_py.media.packet_trailer import build_trailer, split_trailer
from livekit_py.rtc.track import packet_trailer_features
from livekit_py.rtc.track_publication import RemoteTrackPublication
from livekit_py.rtc.video_frame import _to_av_frame
from livekit_py.rtc.video_stream import VideoStream
from livekit_py.signal.url import rtc_url
from livekit_py.types import FrameMetadata, FrameMetadataFeature, VideoCodec
from livekit_py.webrtc.aiortc_adapter import EncodedFrame, installed_encoder, set_frame_filter
from livekit_py.webrtc.e2ee_hooks import SendEncryption, encrypt_sender
from livekit_py.webrtc.encoders import (
    VideoEncoderConfig,
    configure_sender,
    frame_encoders,
    frame_metadata_of,
    send_transforms,
    sent_codec,
)
from livekit_py.webrtc.frame_assembler import ensure_frame_assembler
from livekit_py.webrtc.frame_metadata import FrameMetadataReceiver, FrameMetadataSender
from livekit_py.webrtc.frame_transform import SendTransforms, chain_filters
from livekit_py.webrtc.simulcast import SimulcastEncoder, simulcast_layers
from livekit_py.webrtc.source_tracks import VideoSourceTrack

FAST = KeyOptions(kdf=KeyDerivationFunction.HKDF)


def _meta(frame_id: int) -> FrameMetadata:
    return FrameMetadata(user_timestamp=1000 + frame_id, frame_id=frame_id, user_data=b"d")


def _picture(pts: int, width: int, height: int) -> av.VideoFrame:
    x = np.arange(width)[None, :] + pts // 3000
    grey = ((x + np.arange(height)[:, None]) % 256).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, Fraction(1, 90000)
    return frame


# -- the stores ---------------------------------------------------------------------------


def test_the_sender_store_keeps_trailers_by_timestamp_for_every_reader() -> None:
    store = FrameMetadataSender(capacity=3)
    store.put(3000, _meta(1))
    assert store.trailer(3000) == build_trailer(1001, 1, b"d")
    assert store.trailer(3000) == store.trailer(3000)  # not consumed: every layer reads it
    assert store.trailer(6000) == b""
    for n in range(2, 6):
        store.put(3000 * n, _meta(n))
    assert len(store) == 3 and store.trailer(3000) == b""  # the oldest went first
    store.put(15000, FrameMetadata())  # carries nothing: no trailer (and none kept)
    assert store.trailer(15000) == b"" and len(store) == 2
    store.clear()
    assert len(store) == 0
    with pytest.raises(ValueError, match="timestamp"):
        store.put(-1, _meta(1))
    with pytest.raises(ValueError, match="FrameMetadata"):
        store.put(0, {"frame_id": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        FrameMetadataSender(0)


def test_send_transforms_encrypt_first_then_append_the_trailer() -> None:
    store = FrameMetadataSender()
    store.put(90, _meta(7))
    chain = SendTransforms()
    assert chain(b"frame", 90) == b"frame"  # nothing set: as it was
    chain.trailers = store
    assert chain(b"frame", 90) == b"frame" + store.trailer(90)
    assert chain(b"frame", 180) == b"frame"  # no metadata for that frame
    chain.encrypt = lambda frame, ts: b"<" + frame + b">"
    assert chain(b"frame", 90) == b"<frame>" + store.trailer(90)
    chain.encrypt = lambda frame, ts: None  # a dropped frame gets no trailer either
    assert chain(b"frame", 90) is None


def test_chained_filters_run_in_order_and_stop_when_nothing_is_left() -> None:
    seen: list[str] = []

    def first(frames: Any) -> tuple[bool, Any]:
        seen.append("first")
        return True, [f + "1" for f in frames]

    def empty(frames: Any) -> tuple[bool, Any]:
        seen.append("empty")
        return False, []

    def never(frames: Any) -> tuple[bool, Any]:
        seen.append("never")
        return False, frames

    assert chain_filters(first)(["a"]) == (True, ["a1"])
    assert chain_filters(first, empty, never)(["a"]) == (True, [])
    assert seen == ["first", "first", "empty"]


async def test_the_receiver_strips_trailers_and_hands_each_picture_its_metadata() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        metadata = FrameMetadataReceiver(receiver, capacity=4)
        frames = [
            EncodedFrame(b"one" + build_trailer(frame_id=1), 1000, 96),
            EncodedFrame(b"two", 2000, 96),  # no trailer: untouched
            EncodedFrame(b"three" + build_trailer(frame_id=3), 3000, 96),
            EncodedFrame(b"four" + build_trailer(frame_id=4), 4000, 96),
        ]
        pli, out = metadata.filter_frames(frames)
        assert not pli and [f.data for f in out] == [b"one", b"two", b"three", b"four"]
        assert metadata.frames_with_metadata == 3 and len(metadata) == 3
        taken = metadata.take(3000)
        assert taken is not None and taken.frame_id == 3
        assert metadata.take(1000) is None  # older than a decoded one: never decoded, dropped
        assert len(metadata) == 1 and metadata.take(2000) is None
        # a picture before the receiver mapped any frame stays as it is
        picture = _picture(0, 16, 16)
        metadata.annotate(picture)
        assert picture.opaque is None
        metadata.clear()
        assert len(metadata) == 0
    finally:
        await pc.close()


async def test_through_our_encoder_and_receiver_each_picture_gets_its_metadata() -> None:
    """A VideoSource with metadata, our VP8 encoder with a trailer store, aiortc's loopback
    with our assembler and trailer filter: the pictures come out with their metadata."""
    source = rtc.VideoSource(128, 96)
    track = VideoSourceTrack(source)
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = sender_pc.addTransceiver(track, direction="sendonly")
    configure_sender(
        transceiver,
        VideoEncoderConfig(VideoCodec.VP8, 300_000, frame_metadata=track.frame_metadata),
    )
    assert frame_metadata_of(transceiver.sender) is track.frame_metadata
    remote: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    readers: list[FrameMetadataReceiver] = []

    @receiver_pc.on("track")
    def on_track(received: Any) -> None:
        (receiving,) = receiver_pc.getTransceivers()
        ensure_frame_assembler(receiving, {96: "video/VP8", 97: "video/rtx"})
        reader = FrameMetadataReceiver(receiving.receiver)
        set_frame_filter(receiving.receiver, reader.filter_frames)
        readers.append(reader)
        remote.set_result(received)

    try:
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        received = await asyncio.wait_for(remote, 30)
        got: list[FrameMetadata | None] = []

        async def capture() -> None:
            n = 0
            while True:
                n += 1
                grey = np.full((96, 128, 4), (n * 40) % 256, dtype=np.uint8)
                frame = rtc.VideoFrame(128, 96, rtc.VideoBufferType.RGBA, grey.tobytes())
                source.capture_frame(frame, metadata=_meta(n) if n % 2 else None)
                await asyncio.sleep(1 / 30)

        feeder = asyncio.ensure_future(capture())
        try:
            while len(got) < 12:
                picture = await asyncio.wait_for(received.recv(), 30)
                readers[0].annotate(picture)
                opaque = picture.opaque
                got.append(opaque if isinstance(opaque, FrameMetadata) else None)
        finally:
            feeder.cancel()
        ids = [m.frame_id for m in got if m is not None]
        assert len(ids) >= 4 and all(i % 2 == 1 for i in ids) and ids == sorted(ids)
        assert all(m == _meta(m.frame_id) for m in got if m is not None)
        assert None in got  # the even frames carried none
    finally:
        track.stop()
        await sender_pc.close()
        await receiver_pc.close()


# -- simulcast with end-to-end encryption -----------------------------------------------


@pytest.mark.parametrize("codec", [VideoCodec.VP8, VideoCodec.H264], ids=["VP8", "H264"])
async def test_every_simulcast_layer_is_encrypted_and_carries_the_trailer(codec: int) -> None:
    layers = simulcast_layers(960, 540, 1_000_000, None)
    store = FrameMetadataSender()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        config = VideoEncoderConfig(codec, 1_000_000, layers=layers, frame_metadata=store)
        configure_sender(transceiver, config)
        sender = transceiver.sender
        simulcast = installed_encoder(sender)
        assert isinstance(simulcast, SimulcastEncoder)
        assert sent_codec(sender) == ("video/vp8" if codec == VideoCodec.VP8 else "video/h264")
        ring = KeyRing(FAST)
        ring.set_key(b"a shared key", 0)
        encryptor = encrypt_sender(sender, ring)  # (this raised ValueError before)
        chains = send_transforms(sender)
        assert len(chains) == 3 and all(c.trailers is store for c in chains)
        encryptions = [c.encrypt for c in chains]
        assert all(isinstance(e, SendEncryption) and e.encryptor is encryptor for e in encryptions)
        assert len({e.ssrc for e in encryptions if isinstance(e, SendEncryption)}) == 3
        kind = MediaKind.VP8 if codec == VideoCodec.VP8 else MediaKind.H264
        depayload = vp8_depayload if codec == VideoCodec.VP8 else h264_depayload
        for encoder, layer in zip(frame_encoders(sender), layers, strict=True):
            decryptor = FrameDecryptor(kind, ring.clone())
            decoder = Vp8Decoder() if codec == VideoCodec.VP8 else H264Decoder()
            sizes = set()
            for n in range(3):
                pts = 9000 * n
                store.put(pts, _meta(n + 1))
                picture = _picture(pts, layer.width, layer.height)
                payloads, _ = encoder.encode(picture, force_keyframe=n == 0)
                received, metadata = split_trailer(b"".join(depayload(p) for p in payloads))
                assert metadata == _meta(n + 1), f"layer {layer.rid}, frame {n}"
                plain = decryptor.decrypt(received)
                assert plain is not None and plain != received
                sizes |= {(f.width, f.height) for f in decoder.decode(JitterFrame(plain, pts))}
            assert sizes == {(layer.width, layer.height)}
    finally:
        await pc.close()


# -- the public API ------------------------------------------------------------------------


async def test_capture_frame_takes_metadata_and_the_track_stores_it_under_the_pts() -> None:
    source = rtc.VideoSource(32, 32)
    track = VideoSourceTrack(source)
    frame = rtc.VideoFrame(32, 32, rtc.VideoBufferType.RGBA, bytes(32 * 32 * 4))
    try:
        given = _meta(5)
        source.capture_frame(frame, timestamp_us=1_000_000, metadata=given)
        given.frame_id = 99  # a copy was kept
        source.capture_frame(frame, timestamp_us=1_100_000)
        first = await asyncio.wait_for(track.recv(), 10)
        second = await asyncio.wait_for(track.recv(), 10)
        assert track.frame_metadata.trailer(first.pts) == build_trailer(1005, 5, b"d")
        assert track.frame_metadata.trailer(second.pts) == b""
        with pytest.raises(ValueError, match="metadata must be a FrameMetadata"):
            source.capture_frame(frame, metadata=b"x")  # type: ignore[arg-type]
    finally:
        track.stop()


async def test_video_stream_events_carry_the_metadata_of_their_picture() -> None:
    fanout = rtc_fanout()
    stream = VideoStream(fanout)
    picture = _to_av_frame(rtc.VideoFrame(16, 16, rtc.VideoBufferType.RGBA, bytes(16 * 16 * 4)))
    picture.pts, picture.time_base = 9000, Fraction(1, 90000)
    picture.opaque = _meta(3)
    fanout.publish(picture)
    plain = _to_av_frame(rtc.VideoFrame(16, 16, rtc.VideoBufferType.RGBA, bytes(16 * 16 * 4)))
    plain.pts, plain.time_base = 12000, Fraction(1, 90000)
    fanout.publish(plain)
    first = await asyncio.wait_for(stream.__anext__(), 5)
    second = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.metadata == _meta(3) and first.metadata is not picture.opaque
    assert second.metadata is None
    await stream.aclose()


def rtc_fanout() -> Any:
    from livekit_py.media.frame_source import FrameFanout

    return FrameFanout()


def test_publish_options_become_packet_trailer_features() -> None:
    options = rtc.TrackPublishOptions(
        frame_metadata_features=[
            FrameMetadataFeature.FMF_FRAME_ID,
            FrameMetadataFeature.FMF_USER_TIMESTAMP,
            FrameMetadataFeature.FMF_FRAME_ID,
        ]
    )
    assert packet_trailer_features(options) == [
        proto_models.PacketTrailerFeature.PTF_FRAME_ID,
        proto_models.PacketTrailerFeature.PTF_USER_TIMESTAMP,
    ]
    assert packet_trailer_features(rtc.TrackPublishOptions()) == []
    with pytest.raises(ValueError, match="invalid enumerator"):  # refused by the message
        rtc.TrackPublishOptions().frame_metadata_features.append(7)  # type: ignore[arg-type]
    info = proto_models.TrackInfo(
        sid="TR_x", packet_trailer_features=[proto_models.PacketTrailerFeature.PTF_USER_DATA]
    )
    assert RemoteTrackPublication(info).frame_metadata_features == [
        FrameMetadataFeature.FMF_USER_DATA
    ]
    assert proto_rtc.AddTrackRequest(packet_trailer_features=[1]).packet_trailer_features == [1]


def test_the_join_advertises_packet_trailer_support() -> None:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(rtc_url("ws://h", "t", auto_subscribe=True)).query)
    assert "CAP_PACKET_TRAILER" in query["capabilities"][0].split(",")
    assert proto_models.ClientInfo.Capability.Value("CAP_PACKET_TRAILER") == 1
