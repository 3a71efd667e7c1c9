"""From aiortc's statistics and our own counters to the official SDK's ``stats`` messages.

The official SDK returns libwebrtc's statistics as ``livekit.rtc.stats`` messages: one
``RtcStats`` per W3C statistics object, its ``stats`` oneof telling which kind
(``codec``, ``inbound_rtp``, ``outbound_rtp``, ``remote_inbound_rtp``, ``transport``,
``candidate_pair``...), each made of an ``rtc`` part (``id``, ``timestamp`` in
microseconds since the epoch) and W3C parts with the W3C field names in snake case.
The functions here build the same messages (our copy of them, ``livekit_py.stats``) from
what aiortc reports (its ``RTC*Stats`` dataclasses, DTLS and ICE state read through the
adapter) and what our own objects counted (jitter buffer, frame assembler, encoders,
source tracks, data channels, ICE checks).

A field is set only when its value is known; the rest stay unset (``HasField`` is
False and reading gives zero), never filled with a zero of our making. Units are W3C's:
seconds for times and jitter (aiortc reports jitter in RTP timestamp units: it is
divided by the codec's clock rate), milliseconds since the epoch for the
``*_timestamp`` fields of the W3C parts.

Pure: no I/O, no aiortc objects other than the statistics dataclasses and aioice
candidates passed in.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import time
from collections.abc import Mapping
from typing import Any, Literal

from aioice.candidate import Candidate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
)

from .._proto import livekit_py_stats_pb2 as pb
from ..media.audio_level import AudioLevel
from ..media.jitter_buffer import JitterBufferStats
from .aiortc_adapter import DtlsDetails
from .data_channel_counts import ChannelCounts
from .frame_assembler import FrameAssemblerStats
from .ice_checks import PairChecks
from .video_codecs import EncodeCounts

__all__ = [
    "AudioReceive",
    "CodecInfo",
    "OutboundExtras",
    "SourceCounts",
    "VideoReceive",
    "candidate_id",
    "candidate_pair",
    "certificate",
    "certificate_id",
    "codec",
    "codec_id",
    "data_channel",
    "ice_candidate",
    "inbound_rtp",
    "media_source",
    "now_us",
    "outbound_rtp",
    "pair_id",
    "peer_connection",
    "remote_inbound_rtp",
    "remote_outbound_rtp",
    "timestamp_us",
    "transport",
]

Direction = Literal["inbound", "outbound"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def timestamp_us(when: datetime.datetime) -> int:
    """``when`` (aware, or naive UTC) in microseconds since the Unix epoch."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    """The wall clock now, in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def _ms(when: datetime.datetime) -> float:
    return timestamp_us(when) / 1000.0


def _set(message: Any, **fields: object) -> None:
    """Set each field whose value is not None."""
    for name, value in fields.items():
        if value is not None:
            setattr(message, name, value)


def _data(message: Any, stats_id: str, timestamp: int) -> None:
    message.rtc.id = stats_id
    message.rtc.timestamp = timestamp


def _kind_letter(kind: str) -> str:
    return "A" if kind == "audio" else "V" if kind == "video" else "X"


# -- codecs ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CodecInfo:
    """A negotiated codec, as the answer's m-line gives it."""

    payload_type: int
    mime_type: str
    """``audio/opus``, ``video/VP8``... (as in the SDP)."""
    clock_rate: int
    channels: int | None
    """For audio; None for video."""
    sdp_fmtp_line: str
    """The ``a=fmtp`` parameters (``minptime=10;useinbandfec=1``), empty when none."""

    @classmethod
    def of(cls, codec: RTCRtpCodecParameters) -> CodecInfo:
        """From aiortc's description of a codec (which must have a payload type).

        Raises:
            ValueError: If ``codec`` has no payload type.
        """
        if codec.payloadType is None:
            raise ValueError(f"codec {codec.mimeType} has no payload type")
        fmtp = ";".join(
            key if value is None else f"{key}={value}" for key, value in codec.parameters.items()
        )
        channels = codec.channels if codec.mimeType.lower().startswith("audio/") else None
        return cls(codec.payloadType, codec.mimeType, codec.clockRate, channels, fmtp)


def codec_id(transport_id: str, direction: Direction, payload_type: int) -> str:
    """The id of the ``codec`` entry of a payload type, used in one direction."""
    return f"C{'I' if direction == 'inbound' else 'O'}{transport_id}_{payload_type}"


def codec(
    info: CodecInfo, *, transport_id: str, direction: Direction, timestamp: int
) -> pb.RtcStats:
    """The ``codec`` entry of a codec used on ``transport_id`` in ``direction``."""
    out = pb.RtcStats()
    entry = out.codec
    _data(entry, codec_id(transport_id, direction, info.payload_type), timestamp)
    _set(
        entry.codec,
        payload_type=info.payload_type,
        transport_id=transport_id,
        mime_type=info.mime_type,
        clock_rate=info.clock_rate,
        channels=info.channels,
        sdp_fmtp_line=info.sdp_fmtp_line or None,  # W3C: undefined without an a=fmtp line
    )
    return out


def _jitter_seconds(jitter: float | None, clock_rate: int | None) -> float | None:
    if jitter is None or not clock_rate:
        return None
    return float(jitter) / clock_rate


# -- received streams ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AudioReceive:
    """Our own counters of a received audio stream (its :class:`~.audio_playout.AudioPlayout`)."""

    jitter_buffer: JitterBufferStats
    bytes_received: int
    level: AudioLevel
    """Of the audio played out (decoded and concealed)."""


@dataclasses.dataclass(frozen=True)
class VideoReceive:
    """Our own counters of a received video stream."""

    assembler: FrameAssemblerStats | None = None
    """Our frame assembler's, None when aiortc's jitter buffer assembles the frames."""
    frames_decoded: int | None = None
    """Frames aiortc's decoder returned (read by the track's reader)."""
    frame_size: tuple[int, int] | None = None
    """(width, height) of the latest decoded frame."""
    decoder_implementation: str | None = None


def inbound_id(transport_id: str, kind: str, ssrc: int) -> str:
    """The id of the ``inbound_rtp`` entry of a received stream."""
    return f"IT{transport_id}{_kind_letter(kind)}{ssrc}"


def remote_outbound_id(kind: str, ssrc: int) -> str:
    """The id of the ``remote_outbound_rtp`` entry of a received stream."""
    return f"RO{_kind_letter(kind)}{ssrc}"


def inbound_rtp(
    stats: RTCInboundRtpStreamStats,
    *,
    codec: CodecInfo | None = None,
    mid: str | None = None,
    track_identifier: str | None = None,
    remote_id: str | None = None,
    audio: AudioReceive | None = None,
    video: VideoReceive | None = None,
) -> pb.RtcStats:
    """The ``inbound_rtp`` entry of a received stream: aiortc's counts and ours.

    Args:
        stats: aiortc's ``inbound-rtp`` statistics of the stream.
        codec: The codec its packets are in (its clock rate turns aiortc's jitter into
            seconds).
        mid: The m-line carrying it.
        track_identifier: The id of the track it plays into.
        remote_id: The id of its ``remote_outbound_rtp`` entry, when there is one.
        audio: Our playout's counters (audio through our jitter buffer).
        video: Our counters of a video stream.
    """
    out = pb.RtcStats()
    entry = out.inbound_rtp
    transport_id = stats.transportId
    _data(entry, inbound_id(transport_id, stats.kind, stats.ssrc), timestamp_us(stats.timestamp))
    _set(
        entry.stream,
        ssrc=stats.ssrc,
        kind=stats.kind,
        transport_id=transport_id,
        codec_id=codec_id(transport_id, "inbound", codec.payload_type) if codec else None,
    )
    _set(
        entry.received,
        packets_received=stats.packetsReceived,
        packets_lost=stats.packetsLost,
        jitter=_jitter_seconds(stats.jitter, codec.clock_rate if codec else None),
    )
    inbound = entry.inbound
    _set(inbound, track_identifier=track_identifier, mid=mid, remote_id=remote_id)
    if audio is not None:
        jb = audio.jitter_buffer
        level = audio.level
        _set(
            inbound,
            bytes_received=audio.bytes_received,
            packets_discarded=jb.packets_discarded,
            fec_packets_received=jb.fec_recovered,
            total_samples_received=(
                jb.jitter_buffer_emitted_count + jb.concealed_samples + jb.silence_samples
            ),
            concealed_samples=jb.concealed_samples,
            silent_concealed_samples=jb.silent_concealed_samples,
            concealment_events=jb.concealment_events,
            inserted_samples_for_deceleration=jb.inserted_samples_for_deceleration,
            removed_samples_for_acceleration=jb.removed_samples_for_acceleration,
            jitter_buffer_delay=jb.jitter_buffer_delay,
            jitter_buffer_target_delay=jb.jitter_buffer_target_delay,
            jitter_buffer_emitted_count=jb.jitter_buffer_emitted_count,
            audio_level=level.audio_level,
            total_audio_energy=level.total_audio_energy,
            total_samples_duration=level.total_samples_duration,
        )
    if video is not None:
        assembled = video.assembler
        if assembled is not None:
            _set(
                inbound,
                bytes_received=assembled.bytes_received,
                frames_received=assembled.frames_assembled + assembled.frames_discarded,
                frames_dropped=assembled.frames_dropped + assembled.frames_discarded,
                packets_discarded=assembled.packets_late + assembled.packets_dropped,
                pli_count=assembled.plis_requested,
                frames_assembled_from_multiple_packets=(
                    assembled.frames_assembled_from_multiple_packets
                ),
                total_assembly_time=assembled.total_assembly_time,
            )
        width, height = video.frame_size if video.frame_size is not None else (None, None)
        _set(
            inbound,
            frames_decoded=video.frames_decoded,
            frame_width=width,
            frame_height=height,
            decoder_implementation=video.decoder_implementation,
        )
    return out


def remote_outbound_rtp(
    stats: RTCRemoteOutboundRtpStreamStats,
    *,
    codec: CodecInfo | None = None,
    local_id: str | None = None,
) -> pb.RtcStats:
    """The ``remote_outbound_rtp`` entry of a received stream (from the sender's reports).

    Args:
        stats: aiortc's ``remote-outbound-rtp`` statistics (the latest Sender Report).
        codec: The codec of the stream.
        local_id: The id of the stream's ``inbound_rtp`` entry.
    """
    out = pb.RtcStats()
    entry = out.remote_outbound_rtp
    transport_id = stats.transportId
    _data(entry, remote_outbound_id(stats.kind, stats.ssrc), timestamp_us(stats.timestamp))
    _set(
        entry.stream,
        ssrc=stats.ssrc,
        kind=stats.kind,
        transport_id=transport_id,
        codec_id=codec_id(transport_id, "inbound", codec.payload_type) if codec else None,
    )
    _set(entry.sent, packets_sent=stats.packetsSent, bytes_sent=stats.bytesSent)
    _set(
        entry.remote_outbound,
        local_id=local_id,
        remote_timestamp=_ms(stats.remoteTimestamp) if stats.remoteTimestamp else None,
    )
    return out


# -- sent streams ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OutboundExtras:
    """What we know of a sent stream beyond aiortc's packet and byte counts."""

    mid: str | None = None
    media_source_id: str | None = None
    remote_id: str | None = None
    rid: str | None = None
    """The simulcast layer (``q``, ``h``, ``f``); None for a single stream."""
    target_bitrate: float | None = None
    """The encoder's target, bits/s."""
    active: bool | None = None
    encoder_implementation: str | None = None
    encode: EncodeCounts | None = None
    """Our video encoder's counts."""


def outbound_id(transport_id: str, kind: str, ssrc: int) -> str:
    """The id of the ``outbound_rtp`` entry of a sent stream."""
    return f"OT{transport_id}{_kind_letter(kind)}{ssrc}"


def remote_inbound_id(kind: str, ssrc: int) -> str:
    """The id of the ``remote_inbound_rtp`` entry of a sent stream."""
    return f"RI{_kind_letter(kind)}{ssrc}"


def outbound_rtp(
    *,
    ssrc: int,
    kind: str,
    transport_id: str,
    packets_sent: int,
    bytes_sent: int,
    timestamp: int,
    codec: CodecInfo | None = None,
    extras: OutboundExtras | None = None,
) -> pb.RtcStats:
    """The ``outbound_rtp`` entry of a sent stream (aiortc's, or a simulcast layer's).

    ``bytes_sent`` counts RTP payload bytes (RFC 3550's octet count), as aiortc does.
    """
    extras = extras or OutboundExtras()
    out = pb.RtcStats()
    entry = out.outbound_rtp
    _data(entry, outbound_id(transport_id, kind, ssrc), timestamp)
    _set(
        entry.stream,
        ssrc=ssrc,
        kind=kind,
        transport_id=transport_id,
        codec_id=codec_id(transport_id, "outbound", codec.payload_type) if codec else None,
    )
    _set(entry.sent, packets_sent=packets_sent, bytes_sent=bytes_sent)
    outbound = entry.outbound
    _set(
        outbound,
        mid=extras.mid,
        media_source_id=extras.media_source_id,
        remote_id=extras.remote_id,
        rid=extras.rid,
        target_bitrate=extras.target_bitrate,
        active=extras.active,
        encoder_implementation=extras.encoder_implementation,
    )
    encode = extras.encode
    if encode is not None:
        _set(
            outbound,
            frames_encoded=encode.frames_encoded,
            key_frames_encoded=encode.key_frames_encoded,
            frame_width=encode.frame_width,
            frame_height=encode.frame_height,
            total_encode_time=encode.total_encode_time,
        )
    return out


def outbound_from_aiortc(
    stats: RTCOutboundRtpStreamStats,
    *,
    codec: CodecInfo | None = None,
    extras: OutboundExtras | None = None,
) -> pb.RtcStats:
    """The ``outbound_rtp`` entry of aiortc's ``outbound-rtp`` statistics."""
    return outbound_rtp(
        ssrc=stats.ssrc,
        kind=stats.kind,
        transport_id=stats.transportId,
        packets_sent=stats.packetsSent,
        bytes_sent=stats.bytesSent,
        timestamp=timestamp_us(stats.timestamp),
        codec=codec,
        extras=extras,
    )


def remote_inbound_rtp(
    stats: RTCRemoteInboundRtpStreamStats,
    *,
    ssrc: int,
    codec: CodecInfo | None = None,
    local_id: str | None = None,
) -> pb.RtcStats:
    """The ``remote_inbound_rtp`` entry of a sent stream (from the receiver's reports).

    Args:
        stats: aiortc's ``remote-inbound-rtp`` statistics (the latest Receiver Report
            block about the stream).
        ssrc: The sent stream's SSRC (aiortc puts the reporter's there).
        codec: The codec of the stream.
        local_id: The id of the stream's ``outbound_rtp`` entry.
    """
    out = pb.RtcStats()
    entry = out.remote_inbound_rtp
    transport_id = stats.transportId
    _data(entry, remote_inbound_id(stats.kind, ssrc), timestamp_us(stats.timestamp))
    _set(
        entry.stream,
        ssrc=ssrc,
        kind=stats.kind,
        transport_id=transport_id,
        codec_id=codec_id(transport_id, "outbound", codec.payload_type) if codec else None,
    )
    _set(
        entry.received,
        packets_received=max(0, stats.packetsReceived),
        packets_lost=stats.packetsLost,
        jitter=_jitter_seconds(stats.jitter, codec.clock_rate if codec else None),
    )
    _set(
        entry.remote_inbound,
        local_id=local_id,
        round_trip_time=stats.roundTripTime,
        # the report's fraction lost is a fixed-point number, in 1/256
        fraction_lost=stats.fractionLost / 256.0 if stats.fractionLost is not None else None,
    )
    return out


# -- media sources ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SourceCounts:
    """What one of our source tracks handed to its encoder."""

    audio: AudioLevel | None = None
    dropped_samples: tuple[int, int] | None = None
    """(samples dropped for a slow reader, runs of drops), audio only."""
    sample_rate: int | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    frames_per_second: float | None = None


def media_source_id(kind: str, track_identifier: str) -> str:
    """The id of the ``media_source`` entry of a sent track."""
    return f"S{_kind_letter(kind)}{track_identifier}"


def media_source(
    *, track_identifier: str, kind: str, counts: SourceCounts, timestamp: int
) -> pb.RtcStats:
    """The ``media_source`` entry of a track we send (only its kind's part is set)."""
    out = pb.RtcStats()
    entry = out.media_source
    _data(entry, media_source_id(kind, track_identifier), timestamp)
    _set(entry.source, track_identifier=track_identifier, kind=kind)
    if kind == "audio" and counts.audio is not None:
        level = counts.audio
        dropped, events = counts.dropped_samples or (None, None)
        rate = counts.sample_rate
        _set(
            entry.audio,
            audio_level=level.audio_level,
            total_audio_energy=level.total_audio_energy,
            total_samples_duration=level.total_samples_duration,
            total_samples_captured=level.total_samples,
            dropped_samples_duration=dropped / rate if dropped is not None and rate else None,
            dropped_samples_events=events,
        )
    elif kind == "video":
        _set(
            entry.video,
            width=counts.width,
            height=counts.height,
            frames=counts.frames,
            frames_per_second=counts.frames_per_second,
        )
    return out


# -- data channels -------------------------------------------------------------------------------

_CHANNEL_STATES: Mapping[str, int] = {
    "connecting": pb.DC_CONNECTING,
    "open": pb.DC_OPEN,
    "closing": pb.DC_CLOSING,
    "closed": pb.DC_CLOSED,
}


def peer_connection(*, opened: int, closed: int, timestamp: int) -> pb.RtcStats:
    """The ``peer_connection`` entry: data channels opened and closed."""
    out = pb.RtcStats()
    entry = out.peer_connection
    _data(entry, "P", timestamp)
    _set(entry.pc, data_channels_opened=opened, data_channels_closed=closed)
    return out


def data_channel(
    *,
    index: int,
    label: str,
    protocol: str,
    channel_id: int | None,
    state: str,
    counts: ChannelCounts,
    timestamp: int,
) -> pb.RtcStats:
    """The ``data_channel`` entry of one channel (``index``: its place among the channels)."""
    out = pb.RtcStats()
    entry = out.data_channel
    _data(entry, f"D{index}", timestamp)
    _set(
        entry.dc,
        label=label,
        protocol=protocol,
        data_channel_identifier=channel_id,
        state=_CHANNEL_STATES.get(state),
        messages_sent=counts.messages_sent,
        bytes_sent=counts.bytes_sent,
        messages_received=counts.messages_received,
        bytes_received=counts.bytes_received,
    )
    return out


# -- transports, ICE and certificates ---------------------------------------------------------

_ICE_ROLES: Mapping[str, int] = {"controlling": pb.ICE_CONTROLLING, "controlled": pb.ICE_CONTROLLED}
_DTLS_STATES: Mapping[str, int] = {
    "new": pb.DTLS_TRANSPORT_NEW,
    "connecting": pb.DTLS_TRANSPORT_CONNECTING,
    "connected": pb.DTLS_TRANSPORT_CONNECTED,
    "closed": pb.DTLS_TRANSPORT_CLOSED,
    "failed": pb.DTLS_TRANSPORT_FAILED,
}
_ICE_STATES: Mapping[str, int] = {
    "new": pb.ICE_TRANSPORT_NEW,
    "checking": pb.ICE_TRANSPORT_CHECKING,
    "connected": pb.ICE_TRANSPORT_CONNECTED,
    "completed": pb.ICE_TRANSPORT_COMPLETED,
    "disconnected": pb.ICE_TRANSPORT_DISCONNECTED,
    "failed": pb.ICE_TRANSPORT_FAILED,
    "closed": pb.ICE_TRANSPORT_CLOSED,
}
_DTLS_ROLES: Mapping[str, int] = {"client": pb.DTLS_CLIENT, "server": pb.DTLS_SERVER}
# OpenSSL's names of the cipher suites aiortc offers -> their IANA names (W3C dtlsCipher)
_IANA_CIPHERS: Mapping[str, str] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
}
# OpenSSL's names of the SRTP protection profiles -> RFC 5764/7714 names (W3C srtpCipher)
_SRTP_CIPHERS: Mapping[str, str] = {
    "SRTP_AES128_CM_SHA1_80": "AES_CM_128_HMAC_SHA1_80",
    "SRTP_AES128_CM_SHA1_32": "AES_CM_128_HMAC_SHA1_32",
    "SRTP_AEAD_AES_128_GCM": "AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM": "AEAD_AES_256_GCM",
}


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as SDP writes it (``AB:CD:...``)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificate_id(der: bytes) -> str:
    """The id of the ``certificate`` entry of a DER certificate."""
    return f"CF{fingerprint(der)}"


def certificate(der: bytes, *, timestamp: int) -> pb.RtcStats:
    """The ``certificate`` entry of a DER certificate (SHA-256 fingerprint)."""
    out = pb.RtcStats()
    entry = out.certificate
    _data(entry, certificate_id(der), timestamp)
    _set(
        entry.certificate,
        fingerprint=fingerprint(der),
        fingerprint_algorithm="sha-256",
        base64_certificate=base64.b64encode(der).decode("ascii"),
    )
    return out


def transport(
    details: DtlsDetails,
    *,
    ice_state: str | None = None,
    ice_local_username_fragment: str | None = None,
    selected_candidate_pair_id: str | None = None,
) -> pb.RtcStats:
    """The ``transport`` entry of a DTLS transport and the ICE transport under it."""
    stats = details.stats
    out = pb.RtcStats()
    entry = out.transport
    _data(entry, stats.id, timestamp_us(stats.timestamp))
    version = details.protocol_version
    _set(
        entry.transport,
        packets_sent=stats.packetsSent,
        packets_received=stats.packetsReceived,
        bytes_sent=stats.bytesSent,
        bytes_received=stats.bytesReceived,
        ice_role=_ICE_ROLES.get(stats.iceRole, pb.ICE_UNKNOWN),
        ice_local_username_fragment=ice_local_username_fragment,
        dtls_state=_DTLS_STATES.get(stats.dtlsState),
        ice_state=_ICE_STATES.get(ice_state) if ice_state is not None else None,
        selected_candidate_pair_id=selected_candidate_pair_id,
        local_certificate_id=(
            certificate_id(details.local_certificate) if details.local_certificate else None
        ),
        remote_certificate_id=(
            certificate_id(details.remote_certificate) if details.remote_certificate else None
        ),
        tls_version=f"{version:04X}" if version is not None else None,
        dtls_cipher=_IANA_CIPHERS.get(details.cipher) if details.cipher else None,
        dtls_role=_DTLS_ROLES.get(details.role) if details.role else None,
        srtp_cipher=_SRTP_CIPHERS.get(details.srtp_profile) if details.srtp_profile else None,
    )
    return out


_CANDIDATE_TYPES: Mapping[str, int] = {
    "host": pb.HOST,
    "srflx": pb.SRFLX,
    "prflx": pb.PRFLX,
    "relay": pb.RELAY,
}
_TCP_TYPES: Mapping[str, int] = {
    "active": pb.CANDIDATE_ACTIVE,
    "passive": pb.CANDIDATE_PASSIVE,
    "so": pb.CANDIDATE_SO,
}
_INT32_MAX = 2**31 - 1


def candidate_id(candidate: Candidate, side: Literal["local", "remote"]) -> str:
    """The id of the ``local_candidate`` / ``remote_candidate`` entry of a candidate."""
    letter = "L" if side == "local" else "R"
    return (
        f"I{letter}{candidate.foundation}_{candidate.transport.lower()}_"
        f"{candidate.host}_{candidate.port}"
    )


def ice_candidate(
    candidate: Candidate,
    *,
    side: Literal["local", "remote"],
    transport_id: str,
    username_fragment: str | None,
    timestamp: int,
) -> pb.RtcStats:
    """The ``local_candidate`` or ``remote_candidate`` entry of an aioice candidate."""
    out = pb.RtcStats()
    entry = out.local_candidate if side == "local" else out.remote_candidate
    _data(entry, candidate_id(candidate, side), timestamp)
    priority = candidate.priority
    _set(
        entry.candidate,
        transport_id=transport_id,
        address=candidate.host,
        port=candidate.port,
        protocol=candidate.transport.lower(),
        candidate_type=_CANDIDATE_TYPES.get(candidate.type),
        priority=priority if 0 <= priority <= _INT32_MAX else None,
        foundation=candidate.foundation,
        related_address=candidate.related_address,
        related_port=candidate.related_port,
        username_fragment=username_fragment,
        tcp_type=_TCP_TYPES.get(candidate.tcptype) if candidate.tcptype else None,
    )
    return out


def pair_id(local: Candidate, remote: Candidate) -> str:
    """The id of the ``candidate_pair`` entry of two candidates."""
    return f"CP{candidate_id(local, 'local')}-{candidate_id(remote, 'remote')}"


def candidate_pair(
    local: Candidate,
    remote: Candidate,
    *,
    state: int | None,
    nominated: bool,
    transport_id: str,
    checks: PairChecks | None,
    timestamp: int,
) -> pb.RtcStats:
    """The ``candidate_pair`` entry of a pair of the check list.

    Args:
        local: Our candidate.
        remote: The remote one.
        state: An ``IceCandidatePairState`` value, None if unknown.
        nominated: Whether the pair was nominated (carries the data).
        transport_id: The id of the transport the pair belongs to.
        checks: What the ICE check log saw on the pair (None: nothing).
        timestamp: When.
    """
    out = pb.RtcStats()
    entry = out.candidate_pair
    _data(entry, pair_id(local, remote), timestamp)
    pair = entry.candidate_pair
    _set(
        pair,
        transport_id=transport_id,
        local_candidate_id=candidate_id(local, "local"),
        remote_candidate_id=candidate_id(remote, "remote"),
        state=state,
        nominated=nominated,
    )
    if checks is not None:
        _set(
            pair,
            requests_sent=checks.requests_sent,
            responses_received=checks.responses_received,
            total_round_trip_time=checks.total_round_trip_time,
            current_round_trip_time=checks.current_round_trip_time,
        )
    return out
