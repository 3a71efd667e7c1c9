"""Pre-encoded video without a server: the frame's checks, the source's feedback mailbox,
timestamps, the track, the pass-through encoders and the publish options."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpsender import RTCRtpSender

from livekit_py import rtc
from livekit_py.rtc.encoded_video import EncodedVideoSource
from livekit_py.webrtc import pre_encoded
from livekit_py.webrtc.aiortc_adapter import installed_encoder
from livekit_py.webrtc.encoders import (
    VideoEncoderConfig,
    configure_sender,
    sent_codec,
    set_frame_transform,
    video_encoder_config,
)
from livekit_py.webrtc.pre_encoded import (
    EncodedSourceTrack,
    PassthroughFeedback,
    PreEncodedH264Encoder,
    PreEncodedVp8Encoder,
    PtsMapper,
    make_pre_encoded_encoder,
)
from tests.encoded_frames import EncodedUnit, encode
from tests.unit.fake_clock import FakeClock

KEY = rtc.EncodedFrameType.ENCODED_FRAME_KEY
DELTA = rtc.EncodedFrameType.ENCODED_FRAME_DELTA
H264 = rtc.VideoCodec.H264
VP8 = rtc.VideoCodec.VP8
PRE_ENCODED = rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED

# a tiny Annex-B "access unit": one IDR slice NAL unit (only its framing matters here)
UNIT = b"\x00\x00\x00\x01\x65\x88\x84\x00\x33"


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


@pytest.fixture(scope="module")
def h264_units() -> list[EncodedUnit]:
    return encode("h264", 6, 64, 48)


def frame(**changes: Any) -> rtc.EncodedVideoFrame:
    fields: dict[str, Any] = dict(
        data=UNIT, width=64, height=48, codec=H264, frame_type=KEY, timestamp_us=1000
    )
    fields.update(changes)
    return rtc.EncodedVideoFrame(**fields)


def publish_options(**changes: Any) -> rtc.TrackPublishOptions:
    fields: dict[str, Any] = dict(video_codec=H264, video_encoder=PRE_ENCODED, simulcast=False)
    fields.update(changes)
    return rtc.TrackPublishOptions(**fields)


# ---------------------------------------------------------------------- the frame


def test_the_frame_is_a_frozen_dataclass_with_the_official_fields() -> None:
    metadata = rtc.FrameMetadata(user_timestamp=5, frame_id=7)
    f = frame(metadata=metadata)
    assert [field.name for field in dataclasses.fields(f)] == [
        "data",
        "width",
        "height",
        "codec",
        "frame_type",
        "timestamp_us",
        "metadata",
    ]
    assert f.metadata is metadata and f.is_keyframe and not frame(frame_type=DELTA).is_keyframe
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.width = 3  # type: ignore[misc]
    assert dataclasses.replace(f, width=32).width == 32


@pytest.mark.parametrize("data", [bytearray(UNIT), memoryview(UNIT), "abc", None])
def test_frame_data_must_be_bytes_as_in_the_official_sdk(data: object) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        frame(data=data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data": b""}, "must not be empty"),
        ({"width": 0}, "dimensions must be positive"),
        ({"height": -1}, "dimensions must be positive"),
        ({"width": 1.5}, "width must be an int"),
        ({"height": True}, "height must be an int"),
        ({"codec": 99}, "codec must be a VideoCodec"),
        ({"codec": True}, "codec must be a VideoCodec"),
        ({"frame_type": 5}, "frame_type must be an EncodedFrameType"),
        ({"timestamp_us": 1.5}, "timestamp_us must be an int"),
        ({"timestamp_us": False}, "timestamp_us must be an int"),
        ({"metadata": {"frame_id": 1}}, "metadata must be a FrameMetadata"),
    ],
)
def test_a_bad_frame_is_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame(**changes)


# ---------------------------------------------------------------------- the source


@pytest.mark.parametrize(("width", "height"), [(0, 16), (16, 0), (-1, 16)])
def test_the_source_needs_positive_dimensions(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        rtc.EncodedVideoSource(width, height)
    with pytest.raises(ValueError, match="width must be an int"):
        rtc.EncodedVideoSource(16.0, 16)  # type: ignore[arg-type]


async def test_capture_accepts_until_closed() -> None:
    source = rtc.EncodedVideoSource(64, 48)
    assert (source.width, source.height, source.codec) == (64, 48, None)
    assert source.capture_frame(frame()) is True  # no track: accepted, goes nowhere
    assert source.codec == H264
    await source.aclose()
    await source.aclose()  # idempotent
    assert source.capture_frame(frame()) is False
    with pytest.raises(ValueError, match="EncodedVideoFrame"):
        source.capture_frame(UNIT)  # type: ignore[arg-type]


async def test_the_codec_is_fixed_by_the_first_frame() -> None:
    source = rtc.EncodedVideoSource(64, 48)
    source.capture_frame(frame(codec=VP8))
    with pytest.raises(ValueError, match="this frame is H264 but the source's frames are VP8"):
        source.capture_frame(frame(codec=H264))
    await source.aclose()


@pytest.mark.parametrize("codec", [rtc.VideoCodec.VP9, rtc.VideoCodec.AV1, rtc.VideoCodec.H265])
async def test_codecs_aiortc_cannot_packetize_are_refused_at_capture(codec: int) -> None:
    source = rtc.EncodedVideoSource(64, 48)
    with pytest.raises(ValueError, match="VP8 and H264 only"):
        source.capture_frame(frame(codec=codec))
    assert source.codec is None
    await source.aclose()


def test_take_feedback_consumes_what_was_posted() -> None:
    source = EncodedVideoSource(64, 48)
    assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(False, None)
    first, newest = rtc.EncodedRateControl(300_000, 30.0), rtc.EncodedRateControl(200_000, 25.0)
    source._post_feedback(True, first)
    source._post_feedback(False, newest)  # a key-frame request stays, the newest rate wins
    source._post_feedback(True, None)
    assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(True, newest)
    assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(False, None)
    source._post_feedback(False, rtc.EncodedRateControl(0, 30.0))  # no target: ignored
    assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(False, None)


# ---------------------------------------------------------------------- timestamps


def test_timestamps_follow_the_microseconds_exactly_from_the_first_frame() -> None:
    mapper = PtsMapper()
    start = 5_000_000
    stamps = [mapper.stamp(start + round(n * 1e6 / 30), 0.0) for n in range(108_000)]  # 1 h
    assert stamps[:4] == [0, 3000, 6000, 9000]
    assert stamps[-1] == 107_999 * 3000  # no error built up in an hour
    assert all(b > a for a, b in itertools.pairwise(stamps))


def test_timestamps_without_microseconds_or_going_back_follow_the_capture_clock() -> None:
    mapper = PtsMapper()
    assert mapper.stamp(0, 10.0) == 0
    assert mapper.stamp(0, 10.1) == 9000  # 100 ms later on the source's clock
    assert mapper.stamp(0, 10.1) == 9001  # same instant: one tick later
    assert mapper.stamp(40_000, 10.2) == 18001  # first given timestamp: by the clock
    assert mapper.stamp(80_000, 10.2) == 21601  # then by the microseconds (40 ms)
    assert mapper.stamp(80_000, 10.25) == 26101  # not increasing: by the clock (50 ms)
    assert mapper.stamp(20_000, 10.5) == 48601  # back: by the clock (250 ms)
    assert mapper.stamp(-1_000, 10.6) == 57601  # back again
    assert mapper.stamp(9_000, 10.6) == 58501  # increasing again: 10 ms on
    assert mapper.stamp(9_001, 10.6) == 58502  # less than a tick on: one tick on


# ---------------------------------------------------------------------- feedback semantics


def _recorder() -> tuple[PassthroughFeedback, list[tuple[bool, rtc.EncodedRateControl | None]]]:
    posted: list[tuple[bool, rtc.EncodedRateControl | None]] = []
    return PassthroughFeedback(lambda key, rates: posted.append((key, rates))), posted


def test_until_the_first_key_frame_every_delta_frame_asks_for_one() -> None:
    feedback, posted = _recorder()
    feedback.frame_sent(False)
    feedback.frame_sent(False)
    assert posted == [(True, None), (True, None)]
    feedback.frame_sent(True)
    feedback.frame_sent(False)
    assert posted == [(True, None), (True, None)]  # nothing more to say
    assert not feedback.keyframe_pending


def test_a_key_frame_request_is_handed_on_with_the_next_delta_frame_once() -> None:
    feedback, posted = _recorder()
    feedback.frame_sent(True)
    feedback.request_keyframe()
    feedback.request_keyframe()
    assert posted == [] and feedback.keyframe_pending  # handed on with a frame, not before
    feedback.frame_sent(False)
    feedback.frame_sent(False)
    assert posted == [(True, None)]  # the encoder asks once per request (PLIs repeat)
    feedback.request_keyframe()
    feedback.frame_sent(True)  # a key frame answers it
    assert posted == [(True, None)]


def test_after_frames_are_lost_delta_frames_ask_until_a_key_frame() -> None:
    feedback, posted = _recorder()
    feedback.frame_sent(True)
    feedback.frames_lost()
    feedback.frame_sent(False)
    feedback.frame_sent(False)
    feedback.frame_sent(True)
    feedback.frame_sent(False)
    assert posted == [(True, None), (True, None)]


def test_the_newest_rate_control_is_handed_on_with_the_next_frame() -> None:
    feedback, posted = _recorder()
    feedback.frame_sent(True)
    feedback.set_rates(rtc.EncodedRateControl(500_000, 30.0))
    feedback.set_rates(rtc.EncodedRateControl(400_000, 30.0))
    assert posted == []
    feedback.frame_sent(True)
    feedback.frame_sent(True)
    assert posted == [(False, rtc.EncodedRateControl(400_000, 30.0))]


# ---------------------------------------------------------------------- the track


async def test_the_track_returns_every_frame_in_order_at_the_callers_pace(
    clock: FakeClock,
) -> None:
    source = EncodedVideoSource(64, 48, clock=clock)
    track = EncodedSourceTrack(source)
    metadata = rtc.FrameMetadata(user_timestamp=42)
    seen: list[tuple[int, rtc.FrameMetadata]] = []
    track.frame_metadata.put = lambda pts, m: seen.append((pts, m))  # type: ignore[method-assign]
    # 50 frames 1 ms apart, far above any frame-rate cap: none is dropped
    for n in range(50):
        source.capture_frame(
            frame(
                data=UNIT + bytes([n]),
                frame_type=KEY if n == 0 else DELTA,
                timestamp_us=1_000 + n * 1_000,
                metadata=metadata if n == 3 else None,
            )
        )
    packets = [await track.recv() for _ in range(50)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [bytes(p)[-1] for p in packets] == list(range(50))
    assert [p.pts for p in packets] == [n * 90 for n in range(50)]
    assert {p.time_base for p in packets} == {Fraction(1, 90_000)}
    assert [bool(p.is_keyframe) for p in packets] == [True] + [False] * 49
    assert seen == [(270, metadata)]
    assert track.dropped_frames == 0
    await source.aclose()
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"


async def test_frames_the_sender_did_not_take_in_time_are_dropped_and_ask_a_key_frame(
    clock: FakeClock,
) -> None:
    source = EncodedVideoSource(64, 48, clock=clock)
    track = EncodedSourceTrack(source)
    track.feedback.frame_sent(True)  # a key frame went out: nothing pending
    for n in range(30):  # 1.2 s at 25 fps while nobody reads (not negotiated yet)
        source.capture_frame(frame(frame_type=DELTA, timestamp_us=1 + n * 40_000))
        await clock.advance(0.04)
    kept = round(pre_encoded.MAX_FRAME_WAIT / 0.04) + 1
    assert track.dropped_frames == 30 - kept
    assert track.feedback.keyframe_pending
    packets = [await track.recv() for _ in range(kept)]
    assert len(packets) == kept
    track.feedback.frame_sent(False)
    assert source.take_feedback().keyframe_requested
    # a burst of more than MAX_FRAMES_WAITING at one instant keeps the newest ones
    for _ in range(pre_encoded.MAX_FRAMES_WAITING + 5):
        source.capture_frame(frame(frame_type=DELTA, timestamp_us=0))
    assert track.dropped_frames == 30 - kept + 5
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()
    await source.aclose()


async def test_a_muted_track_sends_nothing_and_asks_a_key_frame_after(clock: FakeClock) -> None:
    source = EncodedVideoSource(64, 48, clock=clock)
    track = EncodedSourceTrack(source)
    source.capture_frame(frame(frame_type=KEY))
    track.muted = True  # the waiting frame is dropped too
    source.capture_frame(frame(frame_type=DELTA, timestamp_us=2000))
    assert track.dropped_frames == 2
    track.muted = False
    source.capture_frame(frame(frame_type=DELTA, timestamp_us=3000))
    packet = await track.recv()
    assert packet.pts == 0 and not packet.is_keyframe
    assert track.feedback.keyframe_pending
    track.stop()
    await source.aclose()


def test_the_track_needs_an_encoded_source() -> None:
    with pytest.raises(ValueError, match="EncodedVideoSource"):
        EncodedSourceTrack(rtc.VideoSource(64, 48))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the encoders


def _packet(data: bytes, pts: int, key: bool) -> av.Packet:
    packet = av.Packet(data)
    packet.pts, packet.time_base, packet.is_keyframe = pts, Fraction(1, 90_000), key
    return packet


def test_the_h264_encoder_packetizes_the_access_unit_as_given(
    h264_units: list[EncodedUnit],
) -> None:
    encoder = PreEncodedH264Encoder(max_bitrate=500_000, framerate=30.0)
    feedback, posted = _recorder()
    encoder.attach(feedback)
    unit = h264_units[0].data
    payloads, timestamp = encoder.pack(_packet(unit, 3000, True))
    assert timestamp == 3000
    nal_units = [n for n in encoder._split_bitstream(unit)]
    depayloaded = b"".join(h264_depayload(p) for p in payloads)
    assert depayloaded == b"".join(b"\x00\x00\x00\x01" + n for n in nal_units)
    assert posted == [(False, rtc.EncodedRateControl(500_000, 30.0))]
    payloads, _ = encoder.pack(_packet(h264_units[1].data, 6000, False))
    assert payloads and posted == [(False, rtc.EncodedRateControl(500_000, 30.0))]
    assert encoder.encode(av.VideoFrame(64, 48, "yuv420p")) == ([], 0)  # no raw pictures


def test_the_vp8_encoder_sends_the_frame_after_the_payload_descriptor() -> None:
    encoder = PreEncodedVp8Encoder(max_bitrate=500_000, framerate=30.0)
    data = bytes(range(256)) * 8
    payloads, timestamp = encoder.pack(_packet(data, 9000, True))
    assert timestamp == 9000 and len(payloads) > 1
    assert b"".join(vp8_depayload(p) for p in payloads) == data


def test_a_receiver_estimate_lowers_the_reported_target_never_above_the_cap() -> None:
    encoder = PreEncodedH264Encoder(max_bitrate=500_000, framerate=25.0)
    feedback, posted = _recorder()
    encoder.attach(feedback)
    encoder.target_bitrate = 2_000_000  # what aiortc's sender does with a REMB
    assert encoder.target_bitrate == 500_000
    encoder.target_bitrate = 320_000
    feedback.frame_sent(True)
    assert posted == [(False, rtc.EncodedRateControl(320_000, 25.0))]


def test_only_vp8_and_h264_have_a_pass_through_encoder() -> None:
    assert isinstance(make_pre_encoded_encoder(VP8, 1, 1.0), PreEncodedVp8Encoder)
    assert isinstance(make_pre_encoded_encoder(H264, 1, 1.0), PreEncodedH264Encoder)
    with pytest.raises(ValueError, match="VP8 and H264"):
        make_pre_encoded_encoder(rtc.VideoCodec.VP9, 1, 1.0)
    with pytest.raises(ValueError, match="max_bitrate"):
        PreEncodedVp8Encoder(max_bitrate=0, framerate=30.0)


# ---------------------------------------------------------------------- publish options


def test_the_publish_options_of_a_pre_encoded_track() -> None:
    config = video_encoder_config(publish_options(), 640, 360, pre_encoded=True)
    # LiveKit's preset for the size, as for raw video; no frame is dropped either way
    assert config == VideoEncoderConfig(
        codec=H264, max_bitrate=450_000, max_framerate=20.0, pre_encoded=True
    )
    options = publish_options(
        video_codec=VP8, video_encoding=rtc.VideoEncoding(max_bitrate=900_000, max_framerate=30)
    )
    assert video_encoder_config(options, 640, 360, pre_encoded=True) == VideoEncoderConfig(
        codec=VP8, max_bitrate=900_000, max_framerate=30.0, pre_encoded=True
    )
    unset = rtc.TrackPublishOptions(video_codec=H264, video_encoder=PRE_ENCODED)
    assert video_encoder_config(unset, 640, 360, pre_encoded=True).layers == ()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (publish_options(video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_AUTO), "not ENC"),
        (rtc.TrackPublishOptions(video_codec=H264), "ENCODER_BACKEND_PRE_ENCODED, not"),
        (publish_options(simulcast=True), "simulcast=False"),
        (publish_options(video_codec=rtc.VideoCodec.VP9), "VP9 is not available"),
    ],
)
def test_what_the_official_sdk_cannot_send_is_refused_at_publish(
    options: rtc.TrackPublishOptions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        video_encoder_config(options, 640, 360, pre_encoded=True)


def test_raw_pictures_cannot_be_published_as_pre_encoded() -> None:
    with pytest.raises(ValueError, match="needs a track of an EncodedVideoSource"):
        video_encoder_config(publish_options(), 640, 360)


async def test_the_local_track_of_an_encoded_source() -> None:
    source = rtc.EncodedVideoSource(640, 360)
    track = rtc.LocalVideoTrack.create_video_track("encoded", source)
    assert track.kind == rtc.TrackKind.KIND_VIDEO
    assert isinstance(track._media_track(), EncodedSourceTrack)
    config = track._encoder_config(publish_options())
    assert isinstance(config, VideoEncoderConfig) and config.pre_encoded
    assert source.codec == H264  # fixed by the publication
    with pytest.raises(ValueError, match="this frame is VP8"):
        source.capture_frame(frame(codec=VP8))
    with pytest.raises(ValueError, match="this publication is VP8"):
        track._encoder_config(publish_options(video_codec=VP8))
    with pytest.raises(ValueError, match="no pictures to read"):
        rtc.VideoStream(track)
    track.mute()
    assert track._media_track().muted  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="VideoSource or an EncodedVideoSource"):
        rtc.LocalVideoTrack.create_video_track("x", rtc.AudioSource(48000, 1))  # type: ignore[arg-type]
    await source.aclose()


# ---------------------------------------------------------------------- on a real sender


async def test_configure_sender_links_the_sender_the_encoder_and_the_track() -> None:
    """A PLI and a REMB reaching the real sender end up in the source's feedback, and the
    end-to-end encryption seam (frame_transform) sees each packed access unit."""
    from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, pack_remb_fci

    source = EncodedVideoSource(64, 48)
    track = EncodedSourceTrack(source)
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver(track, direction="sendonly")
        config = VideoEncoderConfig(
            codec=H264, max_bitrate=400_000, max_framerate=30.0, pre_encoded=True
        )
        encoder = configure_sender(transceiver, config)
        sender: RTCRtpSender = transceiver.sender
        assert isinstance(encoder, PreEncodedH264Encoder)
        assert installed_encoder(sender) is encoder and encoder.feedback is track.feedback
        assert sent_codec(sender) == "video/h264"
        seen: list[tuple[bytes, int]] = []
        set_frame_transform(sender, lambda data, ts: seen.append((data, ts)) or data)
        encoder.pack(_packet(UNIT, 1800, True))
        assert seen == [(UNIT, 1800)]
        assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(
            False, rtc.EncodedRateControl(400_000, 30.0)
        )
        ssrc = sender._ssrc
        await sender._handle_rtcp_packet(  # what aiortc does with RTCP about it
            RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc)
        )
        await sender._handle_rtcp_packet(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(250_000, [ssrc])
            )
        )
        assert source.take_feedback() == rtc.EncodedVideoSourceFeedback(False, None)  # no frame yet
        encoder.pack(_packet(UNIT, 3600, False))
        feedback = source.take_feedback()
        assert feedback.keyframe_requested
        assert feedback.rate_control == rtc.EncodedRateControl(250_000, 30.0)
    finally:
        await pc.close()
        await source.aclose()


async def test_a_pre_encoded_config_needs_an_encoded_track() -> None:
    pc = RTCPeerConnection()
    source = rtc.VideoSource(64, 48)
    try:
        from livekit_py.webrtc.source_tracks import VideoSourceTrack

        transceiver = pc.addTransceiver(VideoSourceTrack(source), direction="sendonly")
        config = VideoEncoderConfig(codec=VP8, max_bitrate=1, pre_encoded=True)
        with pytest.raises(ValueError, match="track of an EncodedVideoSource"):
            configure_sender(transceiver, config)
    finally:
        await pc.close()
        await source.aclose()
