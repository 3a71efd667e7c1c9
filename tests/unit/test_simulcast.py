"""Simulcast: the layers, the SDP we send, and the per-layer encoders (no sockets)."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack

from livekit_py.rtc import (
    DegradationPreference,
    TrackPublishOptions,
    TrackSource,
    VideoCodec,
    VideoEncoding,
)
from livekit_py.webrtc.encoders import (
    SCALABILITY_MODES,
    encoder_for,
    video_encoder_config,
    wants_simulcast,
)
from livekit_py.webrtc.simulcast import (
    RID_URI,
    SimulcastEncoder,
    SimulcastLayer,
    answered_stream,
    offer_simulcast,
    simulcast_layers,
)
from livekit_py.webrtc.video_codecs import Vp8VideoEncoder

LOW, MEDIUM, HIGH = 0, 1, 2


def test_720p_gets_three_layers_as_the_rust_sdk() -> None:
    layers = simulcast_layers(1280, 720, 1_700_000, None)
    assert layers == (
        SimulcastLayer("q", LOW, 320, 180, 160_000, 15.0),
        SimulcastLayer("h", MEDIUM, 640, 360, 450_000, 20.0),
        SimulcastLayer("f", HIGH, 1280, 720, 1_700_000, None),
    )


def test_360p_gets_two_layers_and_small_pictures_one() -> None:
    layers = simulcast_layers(640, 360, 450_000, 20.0)
    assert [(x.rid, x.quality, x.width, x.height) for x in layers] == [
        ("q", LOW, 640, 360),
        ("h", MEDIUM, 640, 360),
    ]
    assert [x.rid for x in simulcast_layers(320, 180, 160_000, None)] == ["f"]


def test_4_3_pictures_use_the_4_3_presets() -> None:
    layers = simulcast_layers(960, 720, 1_500_000, None)
    assert [(x.width, x.height, x.max_bitrate) for x in layers] == [
        (240, 180, 100_000),
        (480, 360, 225_000),
        (960, 720, 1_500_000),
    ]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="picture size"):
        simulcast_layers(0, 720, 1, None)


def test_publish_options_choose_simulcast() -> None:
    on = TrackPublishOptions(simulcast=True, video_encoding=VideoEncoding(max_bitrate=2_000_000))
    config = video_encoder_config(on, 1280, 720)
    assert [x.rid for x in config.layers] == ["q", "h", "f"]
    assert config.layers[-1].max_bitrate == 2_000_000
    assert isinstance(encoder_for(config), SimulcastEncoder)
    assert video_encoder_config(TrackPublishOptions(simulcast=False), 1280, 720).layers == ()
    assert video_encoder_config(TrackPublishOptions(simulcast=True), 320, 180).layers == ()


def test_simulcast_is_the_default_as_in_the_official_sdk() -> None:
    # the official SDK's TrackPublishOptions.simulcast is true when unset (Rust default)
    assert wants_simulcast(TrackPublishOptions())
    assert not wants_simulcast(TrackPublishOptions(simulcast=False))
    assert [x.rid for x in video_encoder_config(TrackPublishOptions(), 1280, 720).layers] == [
        "q",
        "h",
        "f",
    ]
    assert [x.rid for x in video_encoder_config(TrackPublishOptions(), 640, 360).layers] == [
        "q",
        "h",
    ]
    assert video_encoder_config(TrackPublishOptions(), 320, 180).layers == ()


def test_a_screen_share_gets_its_presets_and_one_lower_layer_as_the_rust_sdk() -> None:
    share = TrackPublishOptions(source=TrackSource.SOURCE_SCREENSHARE)
    config = video_encoder_config(share, 1920, 1080)
    # no video_encoding: the screen-share preset (1080p30, 3 Mbps)
    assert (config.max_bitrate, config.max_framerate) == (3_000_000, 30.0)
    assert config.layers == (
        SimulcastLayer("q", LOW, 960, 540, 150_000, 3.0),
        SimulcastLayer("h", MEDIUM, 1920, 1080, 3_000_000, 30.0),
    )
    config = video_encoder_config(share, 1280, 720)
    assert (config.max_bitrate, config.max_framerate) == (1_500_000, 15.0)
    assert [(x.width, x.height, x.max_framerate) for x in config.layers] == [
        (640, 360, 3.0),
        (1280, 720, 15.0),
    ]
    # the lower layer's bitrate: the top one's / (4 * fps/3), at least 150 kbps
    big = simulcast_layers(2560, 1440, 12_000_000, 6.0, screenshare=True)
    assert big[0].max_bitrate == 12_000_000 // 8
    assert video_encoder_config(share, 400, 300).layers == ()
    # an explicit encoding wins over the presets
    share.video_encoding.max_bitrate = 2_000_000
    assert video_encoder_config(share, 1280, 720).max_bitrate == 2_000_000


def test_scalability_modes_publish_one_stream_and_unknown_ones_are_refused() -> None:
    for mode in ("L1T1", "L1T3", "L3T3_KEY", "S2T1", "L2T2_KEY_SHIFT"):
        config = video_encoder_config(TrackPublishOptions(scalability_mode=mode), 1280, 720)
        assert config.layers == (), mode  # one encoding, as the Rust SDK makes
    assert len(SCALABILITY_MODES) == 34  # libwebrtc's ScalabilityMode values
    for bad in ("", "l1t1", "L1T1h", "L4T1", "S1T1", "L3T3_KEY_SHIFT", "bogus"):
        with pytest.raises(ValueError, match="scalability"):
            video_encoder_config(TrackPublishOptions(scalability_mode=bad), 1280, 720)


def test_the_degradation_preference_defaults_by_source_as_the_rust_sdk() -> None:
    def preference(**fields: object) -> int:
        config = video_encoder_config(TrackPublishOptions(**fields), 640, 360)  # type: ignore[arg-type]
        return config.degradation_preference

    assert preference() == DegradationPreference.BALANCED
    assert preference(source=TrackSource.SOURCE_CAMERA) == DegradationPreference.MAINTAIN_FRAMERATE
    assert (
        preference(source=TrackSource.SOURCE_SCREENSHARE)
        == DegradationPreference.MAINTAIN_RESOLUTION
    )
    assert (
        preference(
            source=TrackSource.SOURCE_CAMERA,
            degradation_preference=DegradationPreference.MAINTAIN_FRAMERATE_AND_RESOLUTION,
        )
        == DegradationPreference.MAINTAIN_FRAMERATE_AND_RESOLUTION
    )


def test_a_screencast_source_gets_screen_encoders_on_every_layer() -> None:
    config = video_encoder_config(TrackPublishOptions(), 1280, 720, screencast=True)
    assert config.screencast
    encoder = encoder_for(config)
    assert isinstance(encoder, SimulcastEncoder)
    assert all(isinstance(s.encoder, Vp8VideoEncoder) for s in encoder.layers)
    assert all(s.encoder.screencast for s in encoder.layers)  # type: ignore[attr-defined]


async def _offer() -> tuple[str, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    mid = pc.getTransceivers()[1].mid
    await pc.close()
    assert mid is not None
    return sdp, mid


async def test_the_offer_announces_the_layers_and_drops_ssrcs() -> None:
    sdp, mid = await _offer()
    assert "a=ssrc:" in sdp
    edited = offer_simulcast(sdp, {mid: ["q", "h", "f"]})
    video = edited[edited.index("m=video") :]
    audio = edited[edited.index("m=audio") : edited.index("m=video")]
    assert "a=ssrc:" not in video and "a=ssrc-group:" not in video
    assert "a=ssrc:" in audio  # other sections untouched
    assert "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\n" in video
    assert "a=simulcast:send q;h;f\r\n" in video
    assert f" {RID_URI}\r\n" in video and "sdes:mid" in video
    ids = [line.split()[0] for line in edited.split("\r\n") if line.startswith("a=extmap:")]
    rid_id = next(x for x in edited.split("\r\n") if x.endswith(RID_URI)).split()[0]
    assert ids.count(rid_id) == 1  # an id nobody else uses
    assert offer_simulcast(sdp, {}) == sdp
    with pytest.raises(ValueError, match="rids"):
        offer_simulcast(sdp, {mid: ["x", "f"]})


async def test_the_answer_gives_payload_type_and_extension_ids() -> None:
    sdp, mid = await _offer()
    edited = offer_simulcast(sdp, {mid: ["q", "h"]})
    answered = answered_stream(edited, mid, "video/VP8")
    assert answered is not None
    assert RID_URI in answered.extension_ids
    assert answered.payload_type > 95
    assert answered_stream(edited, "nope", "video/VP8") is None


def _frame(pts: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.zeros((720, 1280, 3), np.uint8), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, Fraction(1, 90000)
    return frame


def test_each_active_layer_encodes_its_size_and_paused_ones_do_not() -> None:
    encoder = SimulcastEncoder(VideoCodec.VP8, simulcast_layers(1280, 720, 1_700_000, None))
    encoder._started = True  # as start() leaves it, without a transport
    batches: list[object] = []

    class _Loop:
        def call_soon_threadsafe(self, fn: object, batch: object) -> None:
            batches.append(batch)

    encoder._loop = _Loop()  # type: ignore[assignment]
    encoder._queue = asyncio.Queue()
    assert encoder.encode(_frame(0)) == ([], 0)
    assert [s.frames_encoded for s in encoder.layers] == [1, 1, 1]
    encoder.set_active_qualities([LOW])
    encoder.encode(_frame(9000))  # 0.1 s later: every cap lets it through
    assert [s.frames_encoded for s in encoder.layers] == [2, 1, 1]
    encoder.set_active_qualities([LOW, HIGH])
    assert encoder.layers[2].keyframe_requested
    encoder.encode(_frame(18000))
    assert [s.frames_encoded for s in encoder.layers] == [3, 1, 2]
    assert not encoder.layers[2].keyframe_requested
    assert len(batches) == 3


def test_sender_reports_share_one_clock() -> None:
    now = [1000.0]
    encoder = SimulcastEncoder(
        VideoCodec.VP8, simulcast_layers(1280, 720, 1_700_000, None), now=lambda: now[0]
    )
    assert encoder.sender_reports() == []
    encoder._clock.note(90000)
    for stream in encoder.layers:
        stream.last_rtp_timestamp = 0
    now[0] += 0.5
    from aiortc.rtp import RtcpPacket

    reports = [RtcpPacket.parse(x)[0] for x in encoder.sender_reports()]
    assert len(reports) == 3
    for stream, report in zip(encoder.layers, reports, strict=True):
        assert report.ssrc == stream.ssrc
        rtp = report.sender_info.rtp_timestamp
        assert rtp == (stream.origin + 90000 + 45000) & 0xFFFFFFFF
    assert len({r.sender_info.ntp_timestamp for r in reports}) == 1
