"""The statistics of one peer connection, or of one m-line of it, as ``stats`` messages.

:func:`peer_connection_stats` is what the official ``Room.get_rtc_stats()`` reports for
one peer connection, :func:`transceiver_stats` what its ``Track.get_stats()`` reports
for one track: the track's RTP streams (``outbound_rtp`` / ``inbound_rtp`` and the
peer's reports about them), their codecs, the sent track's ``media_source``, and the
transport under them with its selected candidate pair, those two candidates and both
certificates. A peer connection's statistics add every candidate pair and candidate,
the ``peer_connection`` entry and its data channels.

What comes from where:

* aiortc's ``getStats()`` of each sender and receiver: SSRCs, packets, bytes, loss,
  jitter, the peers' Sender and Receiver Reports (round-trip time, fraction lost);
* the negotiated descriptions: each m-line's codecs (the one received: the payload type
  of the latest packet; the one sent: the first of the answer, which aiortc sends);
* our objects: the encoder on each sender (our Opus encoder's bitrate; our video
  encoders' frames, key frames, size and time; a simulcast encoder's layers, each an
  ``outbound_rtp`` with its ``rid``), the source track on each sender (audio level,
  frames), the playout of each received audio m-line (jitter buffer, concealment,
  level), the frame assembler of each received video m-line (frames received and
  dropped, PLIs, assembly time), what the track's reader decoded, the data channel
  counter and the ICE check log of the connection (:class:`StatsSources`);
* the adapter: the DTLS transport's counters, role, certificates and ciphers, and the
  ICE agent's candidate pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, Protocol

from aioice import Connection
from aioice.candidate import Candidate
from aioice.ice import CandidatePair
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.sdp import SessionDescription
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
)

from .._proto import livekit_py_stats_pb2 as pb
from ..log import get_logger
from . import rtc_stats
from .aiortc_adapter import (
    dtls_details,
    ice_check_list,
    ice_connection_of,
    installed_encoder,
    installed_receive_buffer,
    nominated_pairs,
)
from .audio_playout import AudioPlayout
from .data_channel_counts import DataChannelCounter
from .frame_assembler import FrameAssembler
from .ice_checks import IceCheckLog
from .opus import OpusEncoder, PyAVOpusEncoder
from .rtc_stats import CodecInfo, OutboundExtras, SourceCounts
from .simulcast import SimulcastEncoder
from .source_tracks import AudioSourceTrack, VideoSourceTrack
from .video_codecs import H264VideoEncoder, Vp8VideoEncoder

__all__ = ["DecodedFrames", "StatsSources", "peer_connection_stats", "transceiver_stats"]

logger = get_logger("webrtc.stats")

# aiortc's decoders: PyAV's libvpx for VP8, PyAV's (FFmpeg's) h264 for H.264
_DECODERS: Mapping[str, str] = {"video/vp8": "libvpx", "video/h264": "FFmpeg"}
_PAIR_STATES: Mapping[CandidatePair.State, int] = {
    CandidatePair.State.FROZEN: pb.PAIR_FROZEN,
    CandidatePair.State.WAITING: pb.PAIR_WAITING,
    CandidatePair.State.IN_PROGRESS: pb.PAIR_IN_PROGRESS,
    CandidatePair.State.SUCCEEDED: pb.PAIR_SUCCEEDED,
    CandidatePair.State.FAILED: pb.PAIR_FAILED,
}
_SENDING = ("sendonly", "sendrecv")
_RECEIVING = ("recvonly", "sendrecv")


class DecodedFrames(Protocol):
    """What a reader of a received track counted (``TrackReader`` is one)."""

    @property
    def frames_read(self) -> int:
        """Frames the track returned (decoded frames)."""
        ...

    @property
    def last_video_size(self) -> tuple[int, int] | None:
        """(width, height) of the latest video frame."""
        ...


@dataclasses.dataclass(frozen=True)
class StatsSources:
    """Our own counters for the statistics of one peer connection."""

    ice: IceCheckLog | None = None
    """The connection's ICE check log (round-trip times of the candidate pairs)."""
    channels: DataChannelCounter | None = None
    """The connection's data channels and what went through them."""
    playouts: Mapping[str, AudioPlayout] = dataclasses.field(default_factory=dict)
    """The playout of each received audio m-line, by mid."""
    decoded: Callable[[RTCRtpReceiver], DecodedFrames | None] = lambda _receiver: None
    """What was decoded from a receiver's track, if it is read."""


def _answer_codecs(pc: RTCPeerConnection) -> dict[str, list[CodecInfo]]:
    """Each m-line's negotiated codecs (the answer's), by mid, in the answer's order."""
    remote, local = pc.remoteDescription, pc.localDescription
    answer = remote if remote is not None and remote.type == "answer" else local
    if answer is None or answer.type != "answer":
        return {}
    try:
        media = SessionDescription.parse(answer.sdp).media
    except Exception:  # aiortc applied it, so this is unexpected; no codecs then
        logger.debug("cannot read the negotiated codecs", exc_info=True)
        return {}
    out: dict[str, list[CodecInfo]] = {}
    for section in media:
        mid = section.rtp.muxId
        if not mid:
            continue
        out[mid] = [
            CodecInfo.of(c)
            for c in section.rtp.codecs
            if c.payloadType is not None and c.name.lower() not in ("rtx", "red", "ulpfec")
        ]
    return out


def _codec_for(
    codecs: list[CodecInfo], *, payload_type: int | None = None, mime: str | None = None
) -> CodecInfo | None:
    """The codec of a payload type, or of a MIME type, or else the first (the one sent)."""
    if payload_type is not None:
        return next((c for c in codecs if c.payload_type == payload_type), None)
    if mime is not None:
        return next((c for c in codecs if c.mime_type.lower() == mime.lower()), None)
    return codecs[0] if codecs else None


class _Collector:
    """Builds the messages of one call, keeping each entry once (codecs, transports...)."""

    def __init__(self, pc: RTCPeerConnection, sources: StatsSources) -> None:
        self._pc = pc
        self._sources = sources
        self._codecs = _answer_codecs(pc)
        self._now = rtc_stats.now_us()
        self._seen: set[str] = set()
        self._transports: list[RTCDtlsTransport] = []
        self.out: list[pb.RtcStats] = []

    def _add(self, message: pb.RtcStats) -> None:
        kind = message.WhichOneof("stats")
        if kind is None:
            return
        stats_id = getattr(message, kind).rtc.id
        if stats_id in self._seen:
            return
        self._seen.add(stats_id)
        self.out.append(message)

    def _transport_of(self, dtls: RTCDtlsTransport) -> None:
        if dtls not in self._transports:
            self._transports.append(dtls)

    def _add_codec(
        self, info: CodecInfo | None, transport_id: str, direction: rtc_stats.Direction
    ) -> None:
        if info is not None:
            self._add(
                rtc_stats.codec(
                    info, transport_id=transport_id, direction=direction, timestamp=self._now
                )
            )

    # -- sending ---------------------------------------------------------------------------

    async def sender(self, transceiver: RTCRtpTransceiver) -> None:
        sender = transceiver.sender
        track = sender.track
        if track is None or transceiver.direction not in _SENDING:
            return
        mid = transceiver.mid
        codecs = self._codecs.get(mid, []) if mid else []
        report = await sender.getStats()
        self._transport_of(sender.transport)
        source_id = self._media_source(track)
        outbound = [s for s in report.values() if isinstance(s, RTCOutboundRtpStreamStats)]
        remote = [s for s in report.values() if isinstance(s, RTCRemoteInboundRtpStreamStats)]
        encoder = installed_encoder(sender)
        if isinstance(encoder, SimulcastEncoder):
            self._simulcast_layers(encoder, outbound, codecs, mid, source_id)
            return
        info = _codec_for(codecs)
        for stats in outbound:
            local_id = rtc_stats.outbound_id(stats.transportId, stats.kind, stats.ssrc)
            remote_id = rtc_stats.remote_inbound_id(stats.kind, stats.ssrc) if remote else None
            self._add_codec(info, stats.transportId, "outbound")
            self._add(
                rtc_stats.outbound_from_aiortc(
                    stats,
                    codec=info,
                    extras=self._outbound_extras(encoder, mid, source_id, remote_id),
                )
            )
            for report_stats in remote:
                self._add(
                    rtc_stats.remote_inbound_rtp(
                        report_stats, ssrc=stats.ssrc, codec=info, local_id=local_id
                    )
                )

    def _outbound_extras(
        self, encoder: object, mid: str | None, source_id: str | None, remote_id: str | None
    ) -> OutboundExtras:
        if isinstance(encoder, (Vp8VideoEncoder, H264VideoEncoder)):
            return OutboundExtras(
                mid=mid,
                media_source_id=source_id,
                remote_id=remote_id,
                target_bitrate=float(encoder.target_bitrate),
                active=True,
                encoder_implementation=encoder.implementation,
                encode=dataclasses.replace(encoder.counts),
            )
        bitrate = encoder.bitrate if isinstance(encoder, (OpusEncoder, PyAVOpusEncoder)) else None
        return OutboundExtras(
            mid=mid,
            media_source_id=source_id,
            remote_id=remote_id,
            target_bitrate=float(bitrate) if bitrate else None,
            active=True,
        )

    def _simulcast_layers(
        self,
        encoder: SimulcastEncoder,
        aiortc_outbound: list[RTCOutboundRtpStreamStats],
        codecs: list[CodecInfo],
        mid: str | None,
        source_id: str | None,
    ) -> None:
        # aiortc's own stream of this sender sends nothing: the layers replace it
        transport_id = aiortc_outbound[0].transportId if aiortc_outbound else None
        if transport_id is None:
            return
        info = _codec_for(codecs, mime=encoder.mime_type)
        self._add_codec(info, transport_id, "outbound")
        for layer in encoder.layers:
            layer_encoder = layer.encoder
            ours = (
                layer_encoder
                if isinstance(layer_encoder, (Vp8VideoEncoder, H264VideoEncoder))
                else None
            )
            counts = dataclasses.replace(ours.counts) if ours is not None else None
            self._add(
                rtc_stats.outbound_rtp(
                    ssrc=layer.ssrc,
                    kind="video",
                    transport_id=transport_id,
                    packets_sent=layer.packets_sent,
                    bytes_sent=layer.octets_sent,
                    timestamp=self._now,
                    codec=info,
                    extras=OutboundExtras(
                        mid=mid,
                        media_source_id=source_id,
                        rid=layer.rid,
                        target_bitrate=float(ours.target_bitrate) if ours is not None else None,
                        active=layer.active,
                        encoder_implementation=ours.implementation if ours is not None else None,
                        encode=counts,
                    ),
                )
            )

    def _media_source(self, track: object) -> str | None:
        if isinstance(track, AudioSourceTrack):
            counts = SourceCounts(
                audio=track.source_level(),
                dropped_samples=track.dropped_samples,
                sample_rate=track.source.sample_rate,
            )
            kind = "audio"
        elif isinstance(track, VideoSourceTrack):
            video = track.source_counts()
            counts = SourceCounts(
                frames=video.frames,
                width=video.width,
                height=video.height,
                frames_per_second=video.frames_per_second,
            )
            kind = "video"
        else:
            return None
        message = rtc_stats.media_source(
            track_identifier=track.id, kind=kind, counts=counts, timestamp=self._now
        )
        self._add(message)
        return message.media_source.rtc.id

    # -- receiving ------------------------------------------------------------------------

    async def receiver(self, transceiver: RTCRtpTransceiver) -> None:
        if transceiver.direction not in _RECEIVING:
            return
        receiver = transceiver.receiver
        mid = transceiver.mid
        codecs = self._codecs.get(mid, []) if mid else []
        report = await receiver.getStats()
        self._transport_of(receiver.transport)
        inbound = [s for s in report.values() if isinstance(s, RTCInboundRtpStreamStats)]
        remote = [s for s in report.values() if isinstance(s, RTCRemoteOutboundRtpStreamStats)]
        if not inbound:
            return
        playout = self._sources.playouts.get(mid) if mid else None
        buffer = installed_receive_buffer(receiver)
        assembler = buffer if isinstance(buffer, FrameAssembler) else None
        if playout is not None:
            payload_type = playout.payload_type
        elif assembler is not None:
            payload_type = assembler.payload_type
        else:
            payload_type = None
        info = _codec_for(codecs, payload_type=payload_type)
        decoded = self._sources.decoded(receiver)
        track = receiver.track
        for stats in inbound:
            local_id = rtc_stats.inbound_id(stats.transportId, stats.kind, stats.ssrc)
            remote_ssrc = [s for s in remote if s.ssrc == stats.ssrc]
            self._add_codec(info, stats.transportId, "inbound")
            audio = (
                rtc_stats.AudioReceive(
                    playout.stats(), playout.bytes_received, playout.output_level()
                )
                if playout is not None and stats.kind == "audio"
                else None
            )
            video = None
            if stats.kind == "video":
                video = rtc_stats.VideoReceive(
                    assembler=assembler.stats if assembler is not None else None,
                    frames_decoded=decoded.frames_read if decoded is not None else None,
                    frame_size=decoded.last_video_size if decoded is not None else None,
                    decoder_implementation=_DECODERS.get(info.mime_type.lower()) if info else None,
                )
            self._add(
                rtc_stats.inbound_rtp(
                    stats,
                    codec=info,
                    mid=mid,
                    track_identifier=track.id if track is not None else None,
                    remote_id=(
                        rtc_stats.remote_outbound_id(stats.kind, stats.ssrc)
                        if remote_ssrc
                        else None
                    ),
                    audio=audio,
                    video=video,
                )
            )
            for report_stats in remote_ssrc:
                self._add(
                    rtc_stats.remote_outbound_rtp(report_stats, codec=info, local_id=local_id)
                )

    # -- transports --------------------------------------------------------------------------

    def transports(self, *, all_pairs: bool) -> None:
        if self._pc.sctp is not None and all_pairs:
            self._transport_of(self._pc.sctp.transport)
        for dtls in self._transports:
            self._transport(dtls, all_pairs=all_pairs)

    def _transport(self, dtls: RTCDtlsTransport, *, all_pairs: bool) -> None:
        details = dtls_details(dtls)
        transport_id = details.stats.id
        ice = dtls.transport
        connection = ice_connection_of(dtls)
        local_ufrag = ice.iceGatherer.getLocalParameters().usernameFragment or ""
        selected_id: str | None = None
        pairs: list[CandidatePair] = []
        nominated: list[CandidatePair] = []
        if connection is not None:
            pairs = ice_check_list(connection)
            nominated = nominated_pairs(connection)
            if nominated:
                first = nominated[0]
                selected_id = rtc_stats.pair_id(first.local_candidate, first.remote_candidate)
        self._add(
            rtc_stats.transport(
                details,
                ice_state=ice.state,
                ice_local_username_fragment=local_ufrag or None,
                selected_candidate_pair_id=selected_id,
            )
        )
        shown = pairs if all_pairs else nominated
        for pair in shown:
            self._pair(pair, transport_id, pair in nominated)
        if connection is not None:
            self._candidates(connection, shown, transport_id, local_ufrag, all_pairs=all_pairs)
        for der in (details.local_certificate, details.remote_certificate):
            if der:
                self._add(rtc_stats.certificate(der, timestamp=self._now))

    def _pair(self, pair: CandidatePair, transport_id: str, nominated: bool) -> None:
        log = self._sources.ice
        checks = log.checks(pair.local_candidate, pair.remote_addr) if log is not None else None
        self._add(
            rtc_stats.candidate_pair(
                pair.local_candidate,
                pair.remote_candidate,
                state=_PAIR_STATES.get(pair.state),
                nominated=nominated or pair.nominated,
                transport_id=transport_id,
                checks=checks,
                timestamp=self._now,
            )
        )

    def _candidates(
        self,
        connection: Connection,
        pairs: Iterable[CandidatePair],
        transport_id: str,
        local_ufrag: str,
        *,
        all_pairs: bool,
    ) -> None:
        pairs = list(pairs)
        local: list[Candidate] = [p.local_candidate for p in pairs]
        remote: list[Candidate] = [p.remote_candidate for p in pairs]
        if all_pairs:
            local += list(connection.local_candidates)
            remote += list(connection.remote_candidates)
        sides: tuple[tuple[Literal["local", "remote"], list[Candidate], str | None], ...] = (
            ("local", local, local_ufrag or None),
            ("remote", remote, connection.remote_username),
        )
        for side, candidates, ufrag in sides:
            for candidate in candidates:
                self._add(
                    rtc_stats.ice_candidate(
                        candidate,
                        side=side,
                        transport_id=transport_id,
                        username_fragment=ufrag,
                        timestamp=self._now,
                    )
                )

    # -- the connection itself ------------------------------------------------------------

    def connection_entries(self) -> None:
        counter = self._sources.channels
        if counter is None:
            return
        self._add(
            rtc_stats.peer_connection(
                opened=counter.opened, closed=counter.closed, timestamp=self._now
            )
        )
        for index, (channel, counts) in enumerate(counter.channels()):
            self._add(
                rtc_stats.data_channel(
                    index=index,
                    label=channel.label,
                    protocol=channel.protocol,
                    channel_id=channel.id,
                    state=channel.readyState,
                    counts=counts,
                    timestamp=self._now,
                )
            )


async def peer_connection_stats(
    pc: RTCPeerConnection, sources: StatsSources | None = None
) -> list[pb.RtcStats]:
    """Every statistics entry of ``pc`` (what ``Room.get_rtc_stats()`` lists for it)."""
    collector = _Collector(pc, sources or StatsSources())
    for transceiver in pc.getTransceivers():
        await collector.sender(transceiver)
        await collector.receiver(transceiver)
    collector.transports(all_pairs=True)
    collector.connection_entries()
    return collector.out


async def transceiver_stats(
    pc: RTCPeerConnection, transceiver: RTCRtpTransceiver, sources: StatsSources | None = None
) -> list[pb.RtcStats]:
    """The statistics of one m-line of ``pc`` (what ``Track.get_stats()`` returns).

    Raises:
        ValueError: If ``transceiver`` is not one of ``pc``'s.
    """
    if transceiver not in pc.getTransceivers():
        raise ValueError("the transceiver is not one of this peer connection's")
    collector = _Collector(pc, sources or StatsSources())
    await collector.sender(transceiver)
    await collector.receiver(transceiver)
    collector.transports(all_pairs=False)
    return collector.out
