"""From aiortc's statistics objects and our counters to the official ``stats`` messages."""

from __future__ import annotations

import base64
import datetime
import hashlib

import pytest
from aioice.candidate import Candidate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
    RTCTransportStats,
)

from livekit_py.media.audio_level import AudioLevel
from livekit_py.media.jitter_buffer import JitterBufferStats
from livekit_py.rtc import stats
from livekit_py.webrtc import rtc_stats
from livekit_py.webrtc.aiortc_adapter import DtlsDetails
from livekit_py.webrtc.data_channel_counts import ChannelCounts
from livekit_py.webrtc.frame_assembler import FrameAssemblerStats
from livekit_py.webrtc.ice_checks import PairChecks
from livekit_py.webrtc.rtc_stats import (
    AudioReceive,
    CodecInfo,
    OutboundExtras,
    SourceCounts,
    VideoReceive,
)
from livekit_py.webrtc.video_codecs import EncodeCounts

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
WHEN_US = int(WHEN.timestamp()) * 1_000_000 + 678901
OPUS = CodecInfo(111, "audio/opus", 48000, 2, "minptime=10;useinbandfec=1")
VP8 = CodecInfo(96, "video/VP8", 90000, None, "")


def test_timestamps_are_microseconds_since_the_epoch() -> None:
    assert rtc_stats.timestamp_us(WHEN) == WHEN_US
    assert rtc_stats.timestamp_us(WHEN.replace(tzinfo=None)) == WHEN_US  # naive is UTC
    assert abs(rtc_stats.now_us() - int(datetime.datetime.now().timestamp() * 1e6)) < 60e6


def test_a_codec_from_aiortcs_parameters() -> None:
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus",
        clockRate=48000,
        channels=2,
        payloadType=111,
        parameters={"minptime": 10, "useinbandfec": 1, "flag": None},
    )
    info = CodecInfo.of(opus)
    assert info == CodecInfo(111, "audio/opus", 48000, 2, "minptime=10;useinbandfec=1;flag")
    vp8 = CodecInfo.of(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96))
    assert vp8.channels is None and vp8.sdp_fmtp_line == ""
    with pytest.raises(ValueError, match="payload type"):
        CodecInfo.of(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))

    message = rtc_stats.codec(vp8, transport_id="T1", direction="outbound", timestamp=5)
    assert message.WhichOneof("stats") == "codec"
    entry = message.codec
    assert (
        entry.rtc.id
        == rtc_stats.codec_id("T1", "outbound", 96)
        != (rtc_stats.codec_id("T1", "inbound", 96))
    )
    assert entry.rtc.timestamp == 5
    assert (entry.codec.payload_type, entry.codec.mime_type, entry.codec.clock_rate) == (
        96,
        "video/VP8",
        90000,
    )
    assert entry.codec.transport_id == "T1"
    # no channels for video, no fmtp line when the SDP has none: unset, not zero
    assert not entry.codec.HasField("channels")
    assert not entry.codec.HasField("sdp_fmtp_line")


def _inbound(kind: str = "audio") -> RTCInboundRtpStreamStats:
    return RTCInboundRtpStreamStats(
        timestamp=WHEN,
        type="inbound-rtp",
        id="inbound-rtp_1",
        ssrc=1234,
        kind=kind,
        transportId="transport_1",
        packetsReceived=500,
        packetsLost=3,
        jitter=96,  # RTP timestamp units
    )


def test_an_inbound_audio_stream_with_our_playouts_counters() -> None:
    jb = JitterBufferStats(
        packets_discarded=2,
        fec_recovered=1,
        concealed_samples=960,
        silent_concealed_samples=480,
        concealment_events=1,
        silence_samples=480,
        inserted_samples_for_deceleration=10,
        removed_samples_for_acceleration=20,
        jitter_buffer_delay=40.0,
        jitter_buffer_target_delay=30.0,
        jitter_buffer_emitted_count=48000,
    )
    level = AudioLevel(0.5, 0.25, 1.0, 48000)
    message = rtc_stats.inbound_rtp(
        _inbound(),
        codec=OPUS,
        mid="0",
        track_identifier="TR_x",
        remote_id="RO1",
        audio=AudioReceive(jb, 12_345, level),
    )
    assert message.WhichOneof("stats") == "inbound_rtp"
    entry = message.inbound_rtp
    assert entry.rtc.id == rtc_stats.inbound_id("transport_1", "audio", 1234)
    assert entry.rtc.timestamp == WHEN_US
    assert (entry.stream.ssrc, entry.stream.kind, entry.stream.transport_id) == (
        1234,
        "audio",
        "transport_1",
    )
    assert entry.stream.codec_id == rtc_stats.codec_id("transport_1", "inbound", 111)
    assert entry.received.packets_received == 500 and entry.received.packets_lost == 3
    assert entry.received.jitter == pytest.approx(96 / 48000)  # seconds
    inbound = entry.inbound
    assert (inbound.mid, inbound.track_identifier, inbound.remote_id) == ("0", "TR_x", "RO1")
    assert inbound.bytes_received == 12_345
    assert inbound.packets_discarded == 2 and inbound.fec_packets_received == 1
    assert inbound.total_samples_received == 48000 + 960 + 480
    assert (inbound.concealed_samples, inbound.silent_concealed_samples) == (960, 480)
    assert inbound.concealment_events == 1
    assert inbound.inserted_samples_for_deceleration == 10
    assert inbound.removed_samples_for_acceleration == 20
    assert inbound.jitter_buffer_delay == 40.0 and inbound.jitter_buffer_target_delay == 30.0
    assert inbound.jitter_buffer_emitted_count == 48000
    assert (inbound.audio_level, inbound.total_audio_energy) == (0.5, 0.25)
    assert inbound.total_samples_duration == 1.0
    # what we do not know stays unset
    for unknown in ("nack_count", "header_bytes_received", "frames_decoded", "playout_id"):
        assert not inbound.HasField(unknown), unknown


def test_an_inbound_stream_of_unknown_codec_has_no_jitter_in_seconds() -> None:
    entry = rtc_stats.inbound_rtp(_inbound()).inbound_rtp
    assert not entry.received.HasField("jitter")
    assert not entry.stream.HasField("codec_id")
    assert entry.received.packets_received == 500
    assert not entry.HasField("inbound") or not entry.inbound.ListFields()


def test_an_inbound_video_stream_with_our_assembler_and_decoder_counts() -> None:
    assembled = FrameAssemblerStats(
        frames_assembled=90,
        frames_dropped=2,
        frames_discarded=3,
        packets_late=4,
        packets_dropped=5,
        plis_requested=6,
        bytes_received=100_000,
        frames_assembled_from_multiple_packets=40,
        total_assembly_time=0.5,
    )
    entry = rtc_stats.inbound_rtp(
        _inbound("video"),
        codec=VP8,
        video=VideoReceive(assembled, 88, (640, 360), "libvpx"),
    ).inbound_rtp
    assert entry.received.jitter == pytest.approx(96 / 90000)
    inbound = entry.inbound
    assert inbound.frames_received == 93  # complete frames, those thrown away too
    assert inbound.frames_dropped == 5
    assert inbound.packets_discarded == 9
    assert inbound.pli_count == 6
    assert inbound.bytes_received == 100_000
    assert inbound.frames_assembled_from_multiple_packets == 40
    assert inbound.total_assembly_time == 0.5
    assert inbound.frames_decoded == 88
    assert (inbound.frame_width, inbound.frame_height) == (640, 360)
    assert inbound.decoder_implementation == "libvpx"
    assert not inbound.HasField("jitter_buffer_delay")


def test_the_senders_report_of_a_received_stream() -> None:
    report = RTCRemoteOutboundRtpStreamStats(
        timestamp=WHEN,
        type="remote-outbound-rtp",
        id="x",
        ssrc=1234,
        kind="audio",
        transportId="transport_1",
        packetsSent=510,
        bytesSent=60_000,
        remoteTimestamp=WHEN,
    )
    entry = rtc_stats.remote_outbound_rtp(report, codec=OPUS, local_id="IT").remote_outbound_rtp
    assert entry.rtc.id == rtc_stats.remote_outbound_id("audio", 1234)
    assert (entry.sent.packets_sent, entry.sent.bytes_sent) == (510, 60_000)
    assert entry.remote_outbound.local_id == "IT"
    assert entry.remote_outbound.remote_timestamp == pytest.approx(WHEN_US / 1000)
    assert entry.stream.codec_id == rtc_stats.codec_id("transport_1", "inbound", 111)
    assert not entry.remote_outbound.HasField("round_trip_time")


def test_an_outbound_video_stream_with_our_encoders_counts() -> None:
    sent = RTCOutboundRtpStreamStats(
        timestamp=WHEN,
        type="outbound-rtp",
        id="outbound-rtp_1",
        ssrc=99,
        kind="video",
        transportId="transport_2",
        packetsSent=300,
        bytesSent=250_000,
        trackId="t",
    )
    counts = EncodeCounts(90, 2, 1280, 720, 0.75)
    extras = OutboundExtras(
        mid="1",
        media_source_id="SV1",
        remote_id="RIV99",
        target_bitrate=1_500_000.0,
        active=True,
        encoder_implementation="libvpx",
        encode=counts,
    )
    entry = rtc_stats.outbound_from_aiortc(sent, codec=VP8, extras=extras).outbound_rtp
    assert entry.rtc.id == rtc_stats.outbound_id("transport_2", "video", 99)
    assert entry.rtc.timestamp == WHEN_US
    assert entry.stream.codec_id == rtc_stats.codec_id("transport_2", "outbound", 96)
    assert (entry.sent.packets_sent, entry.sent.bytes_sent) == (300, 250_000)
    outbound = entry.outbound
    assert (outbound.mid, outbound.media_source_id, outbound.remote_id) == ("1", "SV1", "RIV99")
    assert outbound.target_bitrate == 1_500_000 and outbound.active
    assert (outbound.frames_encoded, outbound.key_frames_encoded) == (90, 2)
    assert (outbound.frame_width, outbound.frame_height) == (1280, 720)
    assert outbound.total_encode_time == 0.75
    assert outbound.encoder_implementation == "libvpx"
    assert not outbound.HasField("rid")  # one stream, no simulcast layer
    for unknown in ("quality_limitation_reason", "nack_count", "header_bytes_sent", "qp_sum"):
        assert not outbound.HasField(unknown), unknown
    assert not outbound.quality_limitation_durations


def test_a_simulcast_layer_is_an_outbound_stream_with_its_rid() -> None:
    entry = rtc_stats.outbound_rtp(
        ssrc=7,
        kind="video",
        transport_id="T",
        packets_sent=10,
        bytes_sent=1000,
        timestamp=1,
        extras=OutboundExtras(rid="q", active=False),
    ).outbound_rtp
    assert entry.outbound.rid == "q" and entry.outbound.HasField("active")
    assert not entry.outbound.active
    assert not entry.stream.HasField("codec_id")


def test_the_receivers_report_of_a_sent_stream() -> None:
    report = RTCRemoteInboundRtpStreamStats(
        timestamp=WHEN,
        type="remote-inbound-rtp",
        id="x",
        ssrc=5555,  # aiortc puts the reporter's SSRC here
        kind="audio",
        transportId="transport_2",
        packetsReceived=290,
        packetsLost=10,
        jitter=480,
        roundTripTime=0.042,
        fractionLost=64,  # in 1/256
    )
    entry = rtc_stats.remote_inbound_rtp(
        report, ssrc=99, codec=OPUS, local_id="OT"
    ).remote_inbound_rtp
    assert entry.rtc.id == rtc_stats.remote_inbound_id("audio", 99)
    assert entry.stream.ssrc == 99
    assert entry.received.packets_lost == 10 and entry.received.packets_received == 290
    assert entry.received.jitter == pytest.approx(0.01)
    assert entry.remote_inbound.round_trip_time == 0.042
    assert entry.remote_inbound.fraction_lost == 0.25
    assert entry.remote_inbound.local_id == "OT"
    assert not entry.remote_inbound.HasField("round_trip_time_measurements")
    no_rtt = RTCRemoteInboundRtpStreamStats(**{**report.__dict__, "roundTripTime": None})
    assert not (
        rtc_stats.remote_inbound_rtp(no_rtt, ssrc=99).remote_inbound_rtp.remote_inbound.HasField(
            "round_trip_time"
        )
    )


def test_media_sources_set_only_their_kinds_part() -> None:
    audio = rtc_stats.media_source(
        track_identifier="a1",
        kind="audio",
        counts=SourceCounts(
            audio=AudioLevel(0.5, 0.75, 3.0, 144000),
            dropped_samples=(960, 2),
            sample_rate=48000,
        ),
        timestamp=3,
    ).media_source
    assert audio.rtc.id == rtc_stats.media_source_id("audio", "a1")
    assert (audio.source.track_identifier, audio.source.kind) == ("a1", "audio")
    assert (audio.audio.audio_level, audio.audio.total_audio_energy) == (0.5, 0.75)
    assert audio.audio.total_samples_duration == 3.0
    assert audio.audio.total_samples_captured == 144000
    assert audio.audio.dropped_samples_duration == pytest.approx(0.02)
    assert audio.audio.dropped_samples_events == 2
    assert not audio.HasField("video")
    assert not audio.audio.HasField("echo_return_loss")

    video = rtc_stats.media_source(
        track_identifier="v1",
        kind="video",
        counts=SourceCounts(frames=30, width=640, height=360, frames_per_second=29.0),
        timestamp=3,
    ).media_source
    assert (video.video.width, video.video.height, video.video.frames) == (640, 360, 30)
    assert video.video.frames_per_second == 29.0
    assert not video.HasField("audio")


def test_the_peer_connection_and_its_data_channels() -> None:
    pc = rtc_stats.peer_connection(opened=3, closed=1, timestamp=9).peer_connection
    assert (pc.pc.data_channels_opened, pc.pc.data_channels_closed) == (3, 1)
    assert pc.rtc.id == "P"
    counts = ChannelCounts(messages_sent=2, bytes_sent=30, messages_received=1, bytes_received=7)
    dc = rtc_stats.data_channel(
        index=0,
        label="_reliable",
        protocol="",
        channel_id=1,
        state="open",
        counts=counts,
        timestamp=9,
    ).data_channel
    assert dc.rtc.id == "D0"
    assert (dc.dc.label, dc.dc.data_channel_identifier, dc.dc.state) == (
        "_reliable",
        1,
        stats.DC_OPEN,
    )
    assert (dc.dc.messages_sent, dc.dc.bytes_sent) == (2, 30)
    assert (dc.dc.messages_received, dc.dc.bytes_received) == (1, 7)
    unopened = rtc_stats.data_channel(
        index=1,
        label="x",
        protocol="",
        channel_id=None,
        state="connecting",
        counts=ChannelCounts(),
        timestamp=9,
    ).data_channel
    assert not unopened.dc.HasField("data_channel_identifier")
    assert unopened.dc.state == stats.DC_CONNECTING


_DER = b"\x30\x82\x01\x0a" + bytes(range(200))


def _transport_stats(**changes: object) -> RTCTransportStats:
    values: dict[str, object] = dict(
        timestamp=WHEN,
        type="transport",
        id="transport_1",
        packetsSent=10,
        packetsReceived=20,
        bytesSent=1000,
        bytesReceived=2000,
        iceRole="controlled",
        dtlsState="connected",
    )
    values.update(changes)
    return RTCTransportStats(**values)  # type: ignore[arg-type]


def test_a_transport_with_its_dtls_details() -> None:
    details = DtlsDetails(
        stats=_transport_stats(),
        role="client",
        local_certificate=_DER,
        remote_certificate=_DER[::-1],
        cipher="ECDHE-ECDSA-AES128-GCM-SHA256",
        protocol_version=0xFEFD,
        srtp_profile="SRTP_AEAD_AES_256_GCM",
    )
    entry = rtc_stats.transport(
        details,
        ice_state="completed",
        ice_local_username_fragment="abcd",
        selected_candidate_pair_id="CP1",
    ).transport
    assert entry.rtc.id == "transport_1" and entry.rtc.timestamp == WHEN_US
    t = entry.transport
    assert (t.packets_sent, t.packets_received, t.bytes_sent, t.bytes_received) == (
        10,
        20,
        1000,
        2000,
    )
    assert t.ice_role == stats.ICE_CONTROLLED
    assert t.dtls_state == stats.DTLS_TRANSPORT_CONNECTED
    assert t.ice_state == stats.ICE_TRANSPORT_COMPLETED
    assert t.ice_local_username_fragment == "abcd"
    assert t.selected_candidate_pair_id == "CP1"
    assert t.local_certificate_id == rtc_stats.certificate_id(_DER)
    assert t.remote_certificate_id == rtc_stats.certificate_id(_DER[::-1])
    assert t.tls_version == "FEFD"
    assert t.dtls_cipher == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert t.dtls_role == stats.DTLS_CLIENT
    assert t.srtp_cipher == "AEAD_AES_256_GCM"
    assert not t.HasField("selected_candidate_pair_changes")


def test_a_transport_before_its_handshake_leaves_the_dtls_parameters_unset() -> None:
    details = DtlsDetails(
        stats=_transport_stats(dtlsState="new", iceRole="controlling"),
        role=None,
        local_certificate=_DER,
        remote_certificate=None,
        cipher="SOME-CIPHER-WE-DO-NOT-NAME",
        protocol_version=None,
        srtp_profile=None,
    )
    t = rtc_stats.transport(details).transport.transport
    assert t.dtls_state == stats.DTLS_TRANSPORT_NEW
    assert t.ice_role == stats.ICE_CONTROLLING
    for unknown in (
        "remote_certificate_id",
        "tls_version",
        "dtls_cipher",
        "dtls_role",
        "srtp_cipher",
        "ice_state",
        "selected_candidate_pair_id",
    ):
        assert not t.HasField(unknown), unknown


def test_a_certificate_by_its_sha256_fingerprint() -> None:
    entry = rtc_stats.certificate(_DER, timestamp=4).certificate
    digest = hashlib.sha256(_DER).hexdigest().upper()
    assert entry.certificate.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert entry.certificate.fingerprint_algorithm == "sha-256"
    assert base64.b64decode(entry.certificate.base64_certificate) == _DER
    assert entry.rtc.id == rtc_stats.certificate_id(_DER)
    assert not entry.certificate.HasField("issuer_certificate_id")


LOCAL = Candidate(
    foundation="f1",
    component=1,
    transport="UDP",
    priority=2130706431,
    host="192.0.2.1",
    port=50000,
    type="host",
)
REMOTE = Candidate(
    foundation="f2",
    component=1,
    transport="udp",
    priority=1845501695,
    host="198.51.100.7",
    port=7882,
    type="srflx",
    related_address="10.0.0.1",
    related_port=7882,
)


def test_candidates_from_aioice() -> None:
    local = rtc_stats.ice_candidate(
        LOCAL, side="local", transport_id="T", username_fragment="ufrag", timestamp=1
    )
    assert local.WhichOneof("stats") == "local_candidate"
    c = local.local_candidate.candidate
    assert (c.address, c.port, c.protocol, c.candidate_type) == (
        "192.0.2.1",
        50000,
        "udp",
        stats.HOST,
    )
    assert (c.priority, c.foundation, c.username_fragment, c.transport_id) == (
        2130706431,
        "f1",
        "ufrag",
        "T",
    )
    for unknown in ("related_address", "related_port", "url", "relay_protocol", "tcp_type"):
        assert not c.HasField(unknown), unknown
    remote = rtc_stats.ice_candidate(
        REMOTE, side="remote", transport_id="T", username_fragment=None, timestamp=1
    )
    assert remote.WhichOneof("stats") == "remote_candidate"
    r = remote.remote_candidate.candidate
    assert r.candidate_type == stats.SRFLX
    assert (r.related_address, r.related_port) == ("10.0.0.1", 7882)
    assert not r.HasField("username_fragment")
    assert remote.remote_candidate.rtc.id == rtc_stats.candidate_id(REMOTE, "remote")
    assert rtc_stats.candidate_id(LOCAL, "local") != rtc_stats.candidate_id(LOCAL, "remote")


def test_a_candidate_pair_with_its_checks() -> None:
    checks = PairChecks(
        requests_sent=4,
        responses_received=3,
        total_round_trip_time=0.06,
        current_round_trip_time=0.02,
    )
    entry = rtc_stats.candidate_pair(
        LOCAL,
        REMOTE,
        state=stats.PAIR_SUCCEEDED,
        nominated=True,
        transport_id="T",
        checks=checks,
        timestamp=1,
    ).candidate_pair
    assert entry.rtc.id == rtc_stats.pair_id(LOCAL, REMOTE)
    p = entry.candidate_pair
    assert p.local_candidate_id == rtc_stats.candidate_id(LOCAL, "local")
    assert p.remote_candidate_id == rtc_stats.candidate_id(REMOTE, "remote")
    assert p.state == stats.PAIR_SUCCEEDED and p.nominated and p.transport_id == "T"
    assert (p.requests_sent, p.responses_received) == (4, 3)
    assert p.total_round_trip_time == 0.06 and p.current_round_trip_time == 0.02
    for unknown in ("packets_sent", "bytes_received", "available_outgoing_bitrate"):
        assert not p.HasField(unknown), unknown
    unchecked = rtc_stats.candidate_pair(
        LOCAL, REMOTE, state=None, nominated=False, transport_id="T", checks=None, timestamp=1
    ).candidate_pair.candidate_pair
    assert not unchecked.HasField("current_round_trip_time")
    assert not unchecked.HasField("state")
    assert unchecked.HasField("nominated") and not unchecked.nominated
