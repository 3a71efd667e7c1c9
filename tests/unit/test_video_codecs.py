"""Our VP8/H.264 encoders for aiortc's sender: bitrate cap, frame-rate cap, presets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Decoder, H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, VpxPayloadDescriptor, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from livekit_py.media.frame_source import TrackReader
from livekit_py.rtc.video_frame import VideoFrame
from livekit_py.rtc.video_source import VideoSource
from livekit_py.rtc.video_stream import VideoStream
from livekit_py.types import VideoBufferType, VideoCodec
from livekit_py.webrtc.aiortc_adapter import (
    aiortc_target_bitrate,
    install_encoder,
    installed_encoder,
)
from livekit_py.webrtc.video_codecs import (
    SCREENCAST_MIN_BITRATE,
    H264VideoEncoder,
    Vp8VideoEncoder,
    _h264_level,
    default_max_bitrate,
    default_max_framerate,
    make_video_encoder,
)

ENCODERS = [VideoCodec.VP8, VideoCodec.H264]
IDS = ["VP8", "H264"]


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


def make_frame(width: int = 64, height: int = 48, pts: int = 0, shift: int = 0) -> av.VideoFrame:
    """A yuv420p frame with a moving gradient, timed on the 90 kHz clock."""
    x = (np.arange(width) * 4 + shift) % 256
    y = np.arange(height)[:, None] * 2
    grey = ((x[None, :] + y) % 256).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


def depayload(codec: int, payloads: list[bytes]) -> bytes:
    unpack = vp8_depayload if codec == VideoCodec.VP8 else h264_depayload
    return b"".join(unpack(p) for p in payloads)


def is_keyframe(codec: int, payloads: list[bytes]) -> bool:
    if codec == VideoCodec.VP8:
        _, data = VpxPayloadDescriptor.parse(payloads[0])
        return data[0] & 1 == 0  # the VP8 frame tag's "P" bit is clear on key frames
    stream = depayload(codec, payloads)
    return any(nal[0] & 0x1F == 5 for nal in H264Encoder._split_bitstream(stream))


# ---------------------------------------------------------------------- factory


def test_factory_makes_vp8_and_h264() -> None:
    vp8 = make_video_encoder(VideoCodec.VP8, 1_000_000, 30.0)
    h264 = make_video_encoder(VideoCodec.H264, None, None)
    assert isinstance(vp8, Vp8VideoEncoder) and isinstance(vp8, Vp8Encoder)
    assert isinstance(h264, H264VideoEncoder) and isinstance(h264, H264Encoder)
    assert (vp8.max_bitrate, vp8.max_framerate) == (1_000_000, 30.0)
    assert (h264.max_bitrate, h264.max_framerate) == (None, None)


@pytest.mark.parametrize("codec", ["AV1", "VP9", "H265"])
def test_factory_refuses_codecs_aiortc_cannot_encode(codec: str) -> None:
    with pytest.raises(ValueError, match=f"{codec} cannot be encoded.*VP8 and H264"):
        make_video_encoder(VideoCodec.Value(codec), None, None)


def test_factory_argument_checks() -> None:
    with pytest.raises(ValueError, match="codec must be a VideoCodec"):
        make_video_encoder(42, None, None)
    with pytest.raises(ValueError, match="max_bitrate"):
        make_video_encoder(VideoCodec.VP8, 0, None)
    with pytest.raises(ValueError, match="max_bitrate"):
        make_video_encoder(VideoCodec.VP8, 1.5e6, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_framerate"):
        make_video_encoder(VideoCodec.H264, None, 0)
    with pytest.raises(ValueError, match="max_framerate"):
        make_video_encoder(VideoCodec.H264, None, float("nan"))


# ---------------------------------------------------------------------- presets


def test_default_bitrates_follow_livekit_presets() -> None:
    assert default_max_bitrate(640, 360) == 450_000
    assert default_max_bitrate(1280, 720) == 1_700_000
    assert default_max_bitrate(1920, 1080) == 3_000_000
    assert default_max_bitrate(720, 1280) == 1_700_000  # portrait
    assert default_max_bitrate(640, 480) == 300_000  # 4:3
    assert default_max_bitrate(160, 90) == 90_000
    assert default_max_bitrate(100, 50) == 90_000
    assert default_max_bitrate(800, 450) == 800_000  # rounded up to the next preset
    assert default_max_bitrate(7680, 4320) == 8_000_000
    assert default_max_framerate(640, 360) == 20.0
    assert default_max_framerate(1280, 720) == 30.0
    with pytest.raises(ValueError, match="width"):
        default_max_bitrate(0, 360)
    with pytest.raises(ValueError, match="height"):
        default_max_framerate(640, -1)


def test_h264_levels() -> None:
    assert _h264_level(640, 360, 30) == "31"
    assert _h264_level(1280, 720, 30) == "31"
    assert _h264_level(1280, 720, 60) == "32"
    assert _h264_level(1920, 1080, 30) == "40"
    assert _h264_level(3840, 2160, 30) == "51"


# ---------------------------------------------------------------------- bitrate


@pytest.mark.parametrize(
    ("codec", "floor"), [(VideoCodec.VP8, 250_000), (VideoCodec.H264, 500_000)], ids=IDS
)
def test_target_bitrate_is_clamped_to_max(codec: int, floor: int) -> None:
    encoder: Any = make_video_encoder(codec, 4_000_000, None)
    assert encoder.target_bitrate == 4_000_000  # starts at the cap, above aiortc's own max
    encoder.target_bitrate = 9_000_000  # a receiver estimate above the cap
    assert encoder.target_bitrate == 4_000_000
    encoder.target_bitrate = 1_200_000
    assert encoder.target_bitrate == 1_200_000
    encoder.target_bitrate = 10_000
    assert encoder.target_bitrate == floor
    low: Any = make_video_encoder(codec, 150_000, None)
    assert low.target_bitrate == 150_000
    low.target_bitrate = 2_000_000
    assert low.target_bitrate == 150_000
    low.target_bitrate = 50_000
    assert low.target_bitrate == 150_000  # the floor never exceeds the cap


def test_without_a_cap_aiortc_bounds_apply() -> None:
    vp8: Any = make_video_encoder(VideoCodec.VP8, None, None)
    assert vp8.target_bitrate == 500_000
    vp8.target_bitrate = 9_000_000
    assert vp8.target_bitrate == 1_500_000
    h264: Any = make_video_encoder(VideoCodec.H264, None, None)
    assert h264.target_bitrate == 1_000_000
    h264.target_bitrate = 9_000_000
    assert h264.target_bitrate == 3_000_000


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_codec_context_uses_the_clamped_bitrate(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, 2_500_000, None)
    payloads, _ = encoder.encode(make_frame(pts=0))
    assert payloads
    assert encoder.codec.bit_rate == 2_500_000
    encoder.target_bitrate = 900_000  # lowered by the receiver: a new context at that rate
    payloads, _ = encoder.encode(make_frame(pts=3000, shift=4))
    assert payloads
    assert encoder.codec.bit_rate == 900_000
    if codec == VideoCodec.VP8:  # aiortc's copy (its rate-control buffer size) follows too
        assert aiortc_target_bitrate(encoder) == 900_000


# ---------------------------------------------------------------------- screen content


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_a_screencast_encoder_keeps_1_2_mbps_or_its_cap(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, 3_000_000, None, screencast=True)
    assert encoder.min_bitrate == SCREENCAST_MIN_BITRATE == 1_200_000
    encoder.target_bitrate = 300_000  # a low receiver estimate
    assert encoder.target_bitrate == 1_200_000
    encoder.target_bitrate = 2_000_000
    assert encoder.target_bitrate == 2_000_000
    low: Any = make_video_encoder(codec, 400_000, None, screencast=True)
    low.target_bitrate = 100_000
    assert low.target_bitrate == 400_000  # the floor never exceeds the cap
    camera: Any = make_video_encoder(codec, 3_000_000, None)
    camera.target_bitrate = 600_000
    assert camera.target_bitrate == 600_000


def test_a_screencast_vp8_encoder_runs_libvpx_screen_content_mode() -> None:
    encoder: Any = make_video_encoder(VideoCodec.VP8, 1_500_000, None, screencast=True)
    payloads, _ = encoder.encode(make_frame(pts=0))
    assert payloads and is_keyframe(VideoCodec.VP8, payloads)
    context = encoder.codec
    # options libvpx took are consumed (PyAV leaves only the unknown ones)
    assert context.bit_rate == 1_500_000 and not context.options
    payloads, _ = encoder.encode(make_frame(pts=3000, shift=4))
    assert payloads and encoder.codec is context  # aiortc keeps the context made for it
    encoder.target_bitrate = 1_200_000  # >10 % lower: a new screen-content context
    encoder.encode(make_frame(pts=6000, shift=8))
    assert encoder.codec is not context and encoder.codec.bit_rate == 1_200_000
    decoder = Vp8Decoder()
    payloads, timestamp = encoder.encode(make_frame(96, 64, pts=9000))
    (out,) = decoder.decode(JitterFrame(depayload(VideoCodec.VP8, payloads), timestamp))
    assert (out.width, out.height) == (96, 64)


# ---------------------------------------------------------------------- frame rate


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_frames_above_max_framerate_are_dropped(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, 500_000, 15.0)
    sent = 0
    stamps = []
    for i in range(60):  # one second at 60 fps
        payloads, timestamp = encoder.encode(make_frame(pts=i * 1500, shift=i))
        if payloads:
            sent += 1
            stamps.append(timestamp)
    assert 14 <= sent <= 16
    assert min(np.diff(stamps)) >= 90000 / 15 * 0.75


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_frames_at_max_framerate_with_jitter_are_kept(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, 500_000, 30.0)
    rng = np.random.default_rng(1)
    jitter = rng.integers(-400, 400, 30)  # +-4.4 ms
    kept = [
        bool(encoder.encode(make_frame(pts=3000 * i + int(j), shift=i))[0])
        for i, j in enumerate(jitter)
    ]
    assert all(kept)


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_a_late_frame_and_the_on_time_one_after_it_are_kept(codec: int) -> None:
    """Captures delayed by a blocked event loop: frame 3k+1 comes 27 ms late, right
    before frame 3k+2 on time. At the 30 fps cap all of them are encoded."""
    encoder: Any = make_video_encoder(codec, 500_000, 30.0)
    late = [3000 * i + (2430 if i % 3 == 1 else 0) for i in range(30)]
    kept = [bool(encoder.encode(make_frame(pts=pts, shift=i))[0]) for i, pts in enumerate(late)]
    assert all(kept)


def test_no_framerate_cap_keeps_everything() -> None:
    encoder: Any = make_video_encoder(VideoCodec.VP8, None, None)
    assert all(encoder.encode(make_frame(pts=i * 900, shift=i))[0] for i in range(20))


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_keyframe_request_on_a_dropped_frame_is_kept(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, 500_000, 10.0)
    first, _ = encoder.encode(make_frame(pts=0))
    assert first and is_keyframe(codec, first)
    second, _ = encoder.encode(make_frame(pts=9000, shift=8))
    assert second and not is_keyframe(codec, second)
    dropped, _ = encoder.encode(make_frame(pts=10000, shift=9), True)  # too soon
    assert dropped == []
    third, _ = encoder.encode(make_frame(pts=18000, shift=10))
    assert third and is_keyframe(codec, third)
    fourth, _ = encoder.encode(make_frame(pts=27000, shift=11))
    assert fourth and not is_keyframe(codec, fourth)


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_timestamps_going_back_restart_the_encoder(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, None, 10.0)
    assert encoder.encode(make_frame(pts=900_000))[0]
    again, _ = encoder.encode(make_frame(pts=0, shift=3))  # libvpx would refuse this frame
    assert again and is_keyframe(codec, again)
    assert encoder.encode(make_frame(pts=9000, shift=6))[0]


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
def test_a_repeated_timestamp_is_dropped(codec: int) -> None:
    encoder: Any = make_video_encoder(codec, None, None)
    assert encoder.encode(make_frame(pts=3000))[0]
    assert encoder.encode(make_frame(pts=3000, shift=3)) == ([], 3000)
    assert encoder.encode(make_frame(pts=6000, shift=6))[0]


# ---------------------------------------------------------------------- H.264 specifics


def test_h264_keeps_exact_90khz_timestamps() -> None:
    """aiortc's own H.264 context counts in 1/30 s; ours keeps the RTP clock exact."""
    encoder = H264VideoEncoder(max_bitrate=800_000, max_framerate=60.0)
    decoder = H264Decoder()
    stamps = []
    for i in range(10):
        payloads, timestamp = encoder.encode(make_frame(pts=i * 1700, shift=i))
        assert payloads
        stamps.append(timestamp)
        decoder.decode(JitterFrame(depayload(VideoCodec.H264, payloads), timestamp))
    assert stamps == [i * 1700 for i in range(10)]


def test_h264_odd_sizes_are_made_even() -> None:
    encoder = H264VideoEncoder(max_bitrate=500_000)
    decoder = H264Decoder()
    payloads, timestamp = encoder.encode(make_frame(65, 49, pts=0))
    decoded = decoder.decode(JitterFrame(depayload(VideoCodec.H264, payloads), timestamp))
    assert [(f.width, f.height) for f in decoded] == [(64, 48)]


def test_h264_says_its_pictures_are_bt601_limited_range() -> None:
    """The SPS carries the colour description of what we encode (BT.601, limited range).

    Without it Chromium decodes the stream as BT.709 (tests/integration/test_browser.py).
    """
    encoder = H264VideoEncoder(max_bitrate=500_000)
    payloads, timestamp = encoder.encode(make_frame(pts=0))
    (out,) = H264Decoder().decode(JitterFrame(depayload(VideoCodec.H264, payloads), timestamp))
    smpte170m, mpeg_range = 6, 1  # AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG
    assert (out.colorspace, out.color_range) == (smpte170m, mpeg_range)


def test_decoders_get_the_picture_back() -> None:
    for codec, decoder in ((VideoCodec.VP8, Vp8Decoder()), (VideoCodec.H264, H264Decoder())):
        encoder: Any = make_video_encoder(codec, 1_000_000, 30.0)
        source = make_frame(96, 64, pts=0)
        expected = source.to_ndarray()[:64].astype(np.int16)
        payloads, timestamp = encoder.encode(source)
        (out,) = decoder.decode(JitterFrame(depayload(codec, payloads), timestamp))
        luma = out.to_ndarray()[:64].astype(np.int16)
        assert np.abs(luma - expected).mean() < 4


# ---------------------------------------------------------------------- in aiortc's sender


@pytest.mark.parametrize("codec", ENCODERS, ids=IDS)
async def test_installed_on_an_rtc_rtp_sender(codec: int) -> None:
    """VideoSource -> VideoSourceTrack -> our encoder in RTCRtpSender -> RTP on localhost ->
    aiortc receiver -> TrackReader -> VideoStream."""
    from aiortc import RTCPeerConnection, RTCRtpSender

    from livekit_py.webrtc.source_tracks import VideoSourceTrack

    mime = "video/VP8" if codec == VideoCodec.VP8 else "video/H264"
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    source = VideoSource(160, 120)
    track = VideoSourceTrack(source)
    encoder = make_video_encoder(codec, 400_000, 15.0)
    reader: TrackReader | None = None
    stream: VideoStream | None = None
    try:
        rtp_sender = sender_pc.addTrack(track)
        install_encoder(rtp_sender, encoder)  # what the publishing code does
        transceiver = next(t for t in sender_pc.getTransceivers() if t.sender is rtp_sender)
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == mime]
        )
        arrived: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        receiver_pc.on("track", arrived.set_result)
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        reader = TrackReader(await asyncio.wait_for(arrived, 10))
        reader.start()
        stream = VideoStream(reader, format=VideoBufferType.RGBA)

        pixels = np.zeros((120, 160, 4), np.uint8)
        pixels[:, :80, :3] = (230, 40, 40)
        pixels[:, 80:, :3] = (30, 200, 60)
        picture = VideoFrame(160, 120, VideoBufferType.RGBA, pixels.tobytes())

        async def capture() -> None:
            while True:
                source.capture_frame(picture)
                await asyncio.sleep(1 / 30)

        capturing = asyncio.ensure_future(capture())
        try:
            received = []

            async def read() -> None:
                async for event in stream:  # type: ignore[union-attr]
                    received.append(event)
                    if len(received) >= 10:
                        return

            await asyncio.wait_for(read(), 15)
        finally:
            capturing.cancel()
            await asyncio.wait({capturing})
        assert installed_encoder(rtp_sender) is encoder  # ours was used, not replaced
        assert encoder.codec is not None  # type: ignore[attr-defined]
        stamps = [e.timestamp_us for e in received]
        assert (np.diff(stamps) > 0).all()
        # 30 captures per second, at most 15 encoded per second
        assert (stamps[-1] - stamps[0]) / (len(stamps) - 1) >= 1e6 / 15 * 0.75
        last = received[-1].frame
        assert (last.width, last.height) == (160, 120)
        got = np.frombuffer(last.data, np.uint8).reshape(120, 160, 4)[..., :3].astype(float)
        assert np.abs(got[20:100, 10:70].reshape(-1, 3).mean(0) - (230, 40, 40)).max() < 12
        assert np.abs(got[20:100, 90:150].reshape(-1, 3).mean(0) - (30, 200, 60)).max() < 12
    finally:
        if stream is not None:
            await stream.aclose()
        if reader is not None:
            await reader.aclose()
        track.stop()
        await source.aclose()
        await sender_pc.close()
        await receiver_pc.close()


# ---------------------------------------------------------------------- speed settings


def _x264_settings(payloads: list[bytes]) -> dict[str, str]:
    """The settings libx264 writes into its SEI text ("x264 - core ... options: a=b ...")."""
    data = b"".join(h264_depayload(p) for p in payloads)
    text = data[data.index(b"options: ") + len(b"options: ") :].split(b"\x00")[0].decode()
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def test_h264_runs_libx264_superfast_not_x264s_default_medium() -> None:
    encoder: Any = make_video_encoder(VideoCodec.H264, 1_000_000, 30.0)
    payloads, _ = encoder.encode(make_frame(pts=0), True)
    settings = _x264_settings(payloads)
    # superfast: diamond motion search, subpel refinement 1, one reference frame
    # (medium: me=hex subme=7 ref=3)
    assert (settings["me"], settings["subme"], settings["ref"]) == ("dia", "1", "1")
    assert settings["bframes"] == "0" and settings["cabac"] == "0"  # baseline, zero latency


@pytest.mark.parametrize("screencast", [False, True], ids=["camera", "screencast"])
def test_vp8_runs_without_libvpx_denoiser(screencast: bool) -> None:
    encoder: Any = make_video_encoder(VideoCodec.VP8, 1_000_000, 30.0, screencast=screencast)
    encoder._open_codec(make_frame(pts=0))
    options = dict(encoder.codec.options)  # not consumed before the first frame
    assert options["noise-sensitivity"] == "0"  # aiortc's own context: 4
    assert options["cpu-used"] == "-6" and options["deadline"] == "realtime"
    assert ("screen-content-mode" in options) is screencast
    payloads, _ = encoder.encode(make_frame(pts=0))
    assert payloads and is_keyframe(VideoCodec.VP8, payloads)
