"""The RTC engine: the peer connections of a LiveKit session and its data channels.

LiveKit gives every participant two peer connections: a *publisher* on which the
client offers its own tracks and the ``_reliable``/``_lossy`` data channels, and
a *subscriber* on which the server offers other participants' tracks and sends
data. The join response says which of the two is primary (the one whose
connection means "connected"). With a single peer connection (a join on
``/rtc/v1``, see :mod:`livekit_py.engine.single_pc`) the publisher carries
everything: other participants' tracks arrive on receive-only m-lines of our own
offers and data on our own channels. This module owns the connections, applies the
server's offers, answers and trickled candidates, and moves ``DataPacket``
protobufs in and out. It knows nothing about participants or rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCRtpReceiver,
    RTCRtpTransceiver,
)
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy
from aiortc.sdp import SessionDescription
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._compat import timeout
from .._proto.livekit_py_stats_pb2 import RtcStats
from ..log import get_logger
from ..session.reliable_buffer import (
    ReceiveDeduper,
    ReliableBufferFullError,
    ReliableSendBuffer,
)
from ..signal.client import Handler
from ..types import ContinualGatheringPolicy, IceTransportType
from ..webrtc.aiortc_adapter import (
    divert_received_packets,
    route_received_ssrc,
    set_frame_filter,
)
from ..webrtc.audio_feedback import LossFeedback
from ..webrtc.audio_playout import AVAILABLE as playout_available
from ..webrtc.audio_playout import AudioPlayout
from ..webrtc.e2ee_hooks import ReceiveDecryption
from ..webrtc.encoders import (
    EncoderConfig,
    apply_answer,
    configure_sender,
    loss_feedback_for,
    offer_opus_fec,
    opus_fmtp_by_mid,
)
from ..webrtc.frame_assembler import CodecKeyframeTest, ensure_frame_assembler
from ..webrtc.frame_metadata import FrameMetadataReceiver
from ..webrtc.frame_transform import chain_filters
from ..webrtc.simulcast import SimulcastEncoder, answered_stream, offer_simulcast
from ..webrtc.stats_collector import (
    DecodedFrames,
    StatsSources,
    peer_connection_stats,
    transceiver_stats,
)
from .data_track_channel import DATA_TRACK_LABEL, DataTrackChannel
from .single_pc import (
    INITIAL_AUDIO_SECTIONS,
    INITIAL_VIDEO_SECTIONS,
    answer_for_aiortc,
    answered_codecs,
    requested_sections,
    sending_ssrcs,
)
from .transport import PeerTransport

logger = get_logger("engine")

RELIABLE_LABEL = "_reliable"
LOSSY_LABEL = "_lossy"

# Above this many queued bytes a reliable send waits for the channel to drain.
RELIABLE_BUFFER_HIGH = 2 * 1024 * 1024
RELIABLE_BUFFER_LOW = 512 * 1024
# How long connect() waits for the server's data channels once media is up.
SUBSCRIBER_CHANNELS_WAIT = 2.0
# Lossy sends wait above this many queued bytes, so a fast sender is paced by
# the connection instead of having most of its packets dropped.
LOSSY_BUFFER_HIGH = 256 * 1024
LOSSY_BUFFER_LOW = 64 * 1024
# How long a lossy send waits for a full channel to drain before the packet is
# dropped (counted in RtcEngine.lossy_dropped): a lossy sender is never held up
# for long by a stalled connection.
LOSSY_DRAIN_WAIT = 2.0
# How long a reliable send waits while the data path is suspended (a reconnect
# under way, see RtcEngine.suspend_data) before it gives up with ConnectionError.
DATA_RESUME_WAIT = 30.0

DataPacketHandler = Callable[[proto_models.DataPacket, int], None]
RemoteTrackHandler = Callable[[str, MediaStreamTrack, RTCRtpTransceiver], None]
RemoteTrackEndHandler = Callable[[str], None]
RemoteTrackRejectedHandler = Callable[[str, str], None]


def _offered_tracks(sd: proto_rtc.SessionDescription) -> dict[str, str]:
    """Mid -> track sid of each m-line a server offer sends media on.

    From ``mid_to_track_id``, else the msid's track id; inactive and rejected (port 0)
    m-lines carry no track.
    """
    mid_to_track = dict(sd.mid_to_track_id)
    out: dict[str, str] = {}
    for media in SessionDescription.parse(sd.sdp).media:
        mid = media.rtp.muxId
        if media.kind not in ("audio", "video") or not mid:
            continue
        if media.direction not in ("sendonly", "sendrecv") or media.port == 0:
            continue
        track_sid = mid_to_track.get(mid)
        if not track_sid and media.msid and " " in media.msid:
            track_sid = media.msid.split()[1]
        if track_sid:
            out[mid] = track_sid
    return out


class EngineSignal(Protocol):
    """What the engine needs of the signal connection (``SignalClient`` has it)."""

    def on(self, kind: str, handler: Handler) -> None:
        """Handle every SignalResponse whose oneof ``message`` is ``kind``."""

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        """Send one request; raises ConnectionError when the connection is gone."""


@dataclass
class EngineConfig:
    """Peer connection settings taken from RoomOptions.rtc_config."""

    ice_servers: list[RTCIceServer] = field(default_factory=list)
    ice_transport_type: int = IceTransportType.TRANSPORT_ALL
    continual_gathering_policy: int = ContinualGatheringPolicy.GATHER_CONTINUALLY
    e2ee: bool = False
    """End-to-end encryption: every receiving m-line gets a ReceiveDecryption before its
    first packet (see :meth:`RtcEngine.receive_decryption`)."""
    dynacast: bool = False
    """Whether SubscribedQualityUpdate pauses the simulcast layers nobody receives
    (RoomOptions.dynacast). Part of the config so that the engine of a full reconnect
    gets it too."""


class RtcEngine:
    """Publisher and subscriber transports, negotiation and data channels of one session."""

    def __init__(
        self,
        signal: EngineSignal,
        config: EngineConfig | None = None,
        *,
        data_resume_wait: float = DATA_RESUME_WAIT,
        send_buffer: ReliableSendBuffer | None = None,
    ) -> None:
        if data_resume_wait < 0:
            raise ValueError(f"data_resume_wait must not be negative, not {data_resume_wait}")
        self._signal = signal
        self._config = config or EngineConfig()
        self.publisher: PeerTransport | None = None
        self.subscriber: PeerTransport | None = None
        self.subscriber_primary = True
        self.single_peer_connection = False
        """Whether the publisher is the only connection (set by :meth:`start`)."""
        self._negotiations: set[asyncio.Task[None]] = set()
        self._reliable: RTCDataChannel | None = None
        self._lossy: RTCDataChannel | None = None
        self.data_tracks = DataTrackChannel()
        """The ``_data_track`` channels: data track packets out and in."""
        self._publisher_ready = asyncio.Event()
        self._subscriber_channels: dict[str, RTCDataChannel] = {}
        self._subscriber_channels_open = asyncio.Event()
        self._publisher_task: asyncio.Task[None] | None = None
        self.data_resume_wait = data_resume_wait
        """How long a reliable send waits while the data path is suspended."""
        self._send_buffer = send_buffer if send_buffer is not None else ReliableSendBuffer()
        self._deduper = ReceiveDeduper()
        self._reliable_lock = asyncio.Lock()
        self._data_open = asyncio.Event()
        self._data_open.set()
        self._pending_tracks: dict[str, asyncio.Future[proto_models.TrackInfo]] = {}
        # per published audio m-line: the expected loss of its encoder follows the RRs
        self._loss_feedback: dict[RTCRtpTransceiver, LossFeedback] = {}
        # per published simulcast video m-line: its layers' encoder, and its track sid
        self._simulcast: dict[RTCRtpTransceiver, tuple[SimulcastEncoder, str]] = {}
        self.dynacast = self._config.dynacast
        """Whether SubscribedQualityUpdate pauses the simulcast layers nobody receives."""
        self._closed = False
        self._lossy_dropped = 0
        self.on_data_packet: DataPacketHandler | None = None
        """Called with every DataPacket received and the DataPacket kind it came on."""
        self.on_remote_track: RemoteTrackHandler | None = None
        """Called with (track sid, aiortc track, transceiver) when the server starts
        sending us a track (after the offer that carries it has been answered)."""
        self.on_remote_track_ended: RemoteTrackEndHandler | None = None
        """Called with a track sid when the server stops sending it to us."""
        self.on_remote_track_rejected: RemoteTrackRejectedHandler | None = None
        """Called with (track sid, reason) when the server offers us a track on an
        m-line we cannot receive (no codec aiortc knows); our answer rejects it."""
        self._remote_mids: dict[str, str] = {}
        # receiving audio m-line -> its playout and aiortc's track for it
        self._playouts: dict[str, tuple[AudioPlayout, MediaStreamTrack]] = {}
        # receiving m-line -> where its frames are decrypted (end-to-end encryption only)
        self._decryptions: dict[str, ReceiveDecryption] = {}
        # receiving video m-line -> where the packet trailers of its frames are stripped
        self._trailers: dict[str, FrameMetadataReceiver] = {}
        self._rejected_mids: dict[str, str] = {}
        self.on_failure: Callable[[str], None] | None = None
        """Called once when a peer connection fails after the session was up."""

    # -- setup ----------------------------------------------------------------

    def _rtc_configuration(self, join: proto_rtc.JoinResponse) -> RTCConfiguration:
        if self._config.ice_servers:
            servers = list(self._config.ice_servers)
        else:
            servers = []
            for s in join.ice_servers:
                # LiveKit servers are ICE-lite: they learn our address from our own
                # connectivity checks (peer-reflexive), so server-reflexive
                # candidates add nothing, while a slow or unreachable STUN server
                # holds every negotiation up for up to 5 s in aioice. TURN is kept.
                urls = [u for u in s.urls if u.lower().startswith(("turn:", "turns:"))]
                skipped = [u for u in s.urls if u not in urls]
                if skipped:
                    logger.debug("not gathering from STUN servers %s", skipped)
                if urls:
                    servers.append(
                        RTCIceServer(
                            urls=urls,
                            username=s.username or None,
                            credential=s.credential or None,
                        )
                    )
        policy = RTCIceTransportPolicy.ALL
        if self._config.ice_transport_type == IceTransportType.TRANSPORT_RELAY:
            policy = RTCIceTransportPolicy.RELAY
        elif self._config.ice_transport_type == IceTransportType.TRANSPORT_NOHOST:
            logger.info("aiortc has no 'no host candidates' policy; gathering all candidates")
        if self._config.continual_gathering_policy == ContinualGatheringPolicy.GATHER_CONTINUALLY:
            logger.debug("aiortc gathers candidates once per negotiation (GATHER_ONCE)")
        # An explicit (possibly empty) list: aiortc would otherwise fall back to
        # a public STUN server, which slows gathering down where it is unreachable.
        return RTCConfiguration(
            iceServers=servers,
            iceTransportPolicy=policy,
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )

    def start(self, join: proto_rtc.JoinResponse, *, single_peer_connection: bool = False) -> None:
        """Create the transports for the session described by ``join``.

        With ``single_peer_connection`` (the join was on ``/rtc/v1``) only the
        publisher is made, with the first receive-only m-lines for the server's media.
        """
        configuration = self._rtc_configuration(join)
        self.single_peer_connection = single_peer_connection
        self.subscriber_primary = join.subscriber_primary and not single_peer_connection
        self.publisher = PeerTransport("publisher", configuration)
        self.publisher.on_state = lambda state: self._on_transport_state("publisher", state)
        self.publisher.on_answer = self._on_publisher_answer_applied
        if single_peer_connection:
            # Before the data channels: aiortc (1.14-1.16) bundles onto the transport of
            # the first m-line of the answer's BUNDLE group, and stops the SCTP
            # transport's own if it was made first, for a data channel made before the
            # first transceiver; JSEP puts the application m-line last.
            self._add_receive_sections(INITIAL_AUDIO_SECTIONS, INITIAL_VIDEO_SECTIONS)

        self._reliable = self.publisher.pc.createDataChannel(RELIABLE_LABEL, ordered=True)
        self._lossy = self.publisher.pc.createDataChannel(
            LOSSY_LABEL, ordered=False, maxRetransmits=0
        )
        self._reliable.bufferedAmountLowThreshold = RELIABLE_BUFFER_LOW
        self._lossy.bufferedAmountLowThreshold = LOSSY_BUFFER_LOW
        for channel in (self._reliable, self._lossy):
            self.publisher.data_channels.watch(channel)
            self._watch_channel(channel)
            channel.on("open", self._update_publisher_ready)
            channel.on("close", self._update_publisher_ready)
        data_track_channel = self.publisher.pc.createDataChannel(
            DATA_TRACK_LABEL, ordered=False, maxRetransmits=0
        )
        self.publisher.data_channels.watch(data_track_channel)  # counted in the stats
        self.data_tracks.attach_local(data_track_channel)

        if not single_peer_connection:
            self._start_subscriber(configuration)

        self._signal.on("offer", self._on_offer)
        self._signal.on("media_sections_requirement", self._on_media_sections_requirement)
        self._signal.on("answer", self._on_answer)
        self._signal.on("trickle", self._on_trickle)
        self._signal.on("track_published", self._on_track_published)
        self._signal.on("subscribed_quality_update", self._on_subscribed_quality_update)

        # The publisher carries our data channels; negotiate it right away (in
        # the background) so the first publish_data does not wait for ICE.
        self._publisher_task = asyncio.get_running_loop().create_task(
            self._negotiate_publisher_safely(), name="livekit_py.publisher.negotiate"
        )

    def _start_subscriber(self, configuration: RTCConfiguration) -> None:
        """The subscriber connection of two, and the server's data channels on it."""
        self.subscriber = PeerTransport("subscriber", configuration)
        self.subscriber.on_state = lambda state: self._on_transport_state("subscriber", state)

        @self.subscriber.pc.on("datachannel")
        def _on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == DATA_TRACK_LABEL:
                self.data_tracks.attach_remote(channel)  # data track packets, not DataPackets
                return
            if channel.label not in (RELIABLE_LABEL, LOSSY_LABEL):
                logger.debug("ignoring server data channel %s", channel.label)
                return
            logger.debug("subscriber data channel %s opened by the server", channel.label)
            self._subscriber_channels[channel.label] = channel
            self._watch_channel(channel)
            if len(self._subscriber_channels) == 2:
                self._subscriber_channels_open.set()

    async def wait_connected(self) -> None:
        """Wait until the primary transport is connected and can carry data.

        With the subscriber as primary, the server opens its data channels right
        after ICE/DTLS; waiting for them (a few milliseconds) means packets sent
        to us just after connect() returns are not lost. With a single peer
        connection the server sends on our own channels: they must be open.
        """
        primary = self.subscriber if self.subscriber_primary else self.publisher
        assert primary is not None, "start() first"
        await primary.wait_connected()
        channels_open: asyncio.Event | None = None
        if self.subscriber_primary:
            channels_open = self._subscriber_channels_open
        elif self.single_peer_connection:
            channels_open = self._publisher_ready
        if channels_open is not None:
            try:
                async with timeout(SUBSCRIBER_CHANNELS_WAIT):
                    await channels_open.wait()
            except asyncio.TimeoutError:
                logger.debug("the data channels did not open with the connection")

    # -- signal handlers ------------------------------------------------------------

    def _on_offer(self, sd: proto_rtc.SessionDescription) -> None:
        if self.subscriber is None:
            if self.single_peer_connection:
                # we offer and the server answers: an offer of the server has no connection
                logger.warning("ignoring a server offer: the session has one peer connection")
            return

        async def send_answer(sdp: str) -> None:
            self._assemble_video_frames()  # before the server can send on a new m-line
            self._guard_received_frames(sd)  # (and before it can send encrypted frames)
            await self._signal.send(
                proto_rtc.SignalRequest(
                    answer=proto_rtc.SessionDescription(type="answer", sdp=sdp, id=sd.id)
                )
            )
            subscriber = self.subscriber
            rejected = {s.mid: s.reason for s in subscriber.rejected} if subscriber else {}
            self._sync_remote_tracks(sd, rejected)

        self.subscriber.handle_offer(sd.sdp, send_answer)

    def _answered_codecs(self, kind: str) -> dict[str, dict[int, str]]:
        """Payload type -> MIME type of each receiving ``kind`` m-line, by mid.

        From our subscriber answer, or with a single peer connection from the
        server's answer (its receive-only m-lines only).
        """
        if self.single_peer_connection:
            pc = self.publisher.pc if self.publisher is not None else None
            description = pc.remoteDescription if pc is not None else None
        else:
            pc = self.subscriber.pc if self.subscriber is not None else None
            description = pc.localDescription if pc is not None else None
        if pc is None or description is None:
            return {}
        codecs = answered_codecs(description.sdp, kind)
        receiving = {t.mid for t in self._receiving_transceivers()}
        return {mid: by_type for mid, by_type in codecs.items() if mid in receiving}

    def _receiving_transceivers(self) -> list[RTCRtpTransceiver]:
        """The m-lines the server's media can come on: the subscriber's, or our receive-only."""
        if self.single_peer_connection:
            pc = self.publisher.pc if self.publisher is not None else None
            return [t for t in pc.getTransceivers() if t.direction == "recvonly"] if pc else []
        pc = self.subscriber.pc if self.subscriber is not None else None
        return list(pc.getTransceivers()) if pc is not None else []

    def _assemble_video_frames(self) -> None:
        """Put our frame assembler on every subscriber video receiver, keyed to its codecs.

        aiortc's own jitter buffer holds each video frame until the next one starts;
        see :mod:`livekit_py.webrtc.frame_assembler`.
        """
        answered = self._answered_codecs("video")
        if not answered:
            return
        for transceiver in self._receiving_transceivers():
            codecs = answered.get(transceiver.mid or "")
            if transceiver.kind == "video" and codecs:
                try:
                    ensure_frame_assembler(transceiver, codecs)
                except Exception:  # aiortc's own buffer then stays: slower, still working
                    logger.exception("no frame assembler for video m-line %s", transceiver.mid)
                self._filter_video_frames(transceiver)

    def _filter_video_frames(self, transceiver: RTCRtpTransceiver) -> None:
        """The frame filters of a receiving video m-line: packet trailer, then decryption.

        As the official SDKs chain them: the trailer (frame metadata) sits outside the
        ciphertext, so it is stripped first.
        """
        mid = transceiver.mid or ""
        trailers = self._trailers.get(mid)
        if trailers is None:
            trailers = FrameMetadataReceiver(transceiver.receiver)
            self._trailers[mid] = trailers
        decryption = self._decryptions.get(mid)
        if decryption is None:
            set_frame_filter(transceiver.receiver, trailers.filter_frames)
        else:
            chain = chain_filters(trailers.filter_frames, decryption.filter_frames)
            set_frame_filter(transceiver.receiver, chain)

    def frame_metadata(self, transceiver: RTCRtpTransceiver) -> FrameMetadataReceiver | None:
        """Where the metadata of a receiving video m-line's frames is kept (None: not video)."""
        return self._trailers.get(transceiver.mid or "")

    def _guard_received_frames(self, offer: proto_rtc.SessionDescription) -> None:
        """With end-to-end encryption: a ReceiveDecryption on every receiving m-line.

        Put in place before the answer goes out, so no frame of a new m-line reaches a
        decoder (or the audio jitter buffer) undecrypted; it drops frames until the room
        binds it to the track's decryptor (:meth:`receive_decryption`). An m-line the
        ``offer`` gives another track is unbound here, before that track's first frame.
        """
        receiving = self._receiving_transceivers()
        if not self._config.e2ee or not receiving:
            return
        offered = _offered_tracks(offer)
        for known_mid, track_sid in self._remote_mids.items():
            known = self._decryptions.get(known_mid)
            if known is not None and offered.get(known_mid) != track_sid:
                known.unbind()
        video = self._answered_codecs("video")
        for transceiver in receiving:
            mid = transceiver.mid
            if not mid or transceiver.kind not in ("audio", "video"):
                continue
            test = CodecKeyframeTest(video.get(mid, {})) if transceiver.kind == "video" else None
            decryption = self._decryptions.get(mid)
            if decryption is None or decryption.kind != transceiver.kind:
                decryption = ReceiveDecryption(transceiver.kind, keyframe_test=test)
                self._decryptions[mid] = decryption
            elif test is not None and decryption.keyframe_test != test:
                decryption.keyframe_test = test
            if transceiver.kind == "video":
                self._filter_video_frames(transceiver)
            else:
                set_frame_filter(transceiver.receiver, decryption.filter_frames)

    def receive_decryption(self, transceiver: RTCRtpTransceiver) -> ReceiveDecryption | None:
        """Where the frames of a receiving m-line are decrypted (None without E2EE)."""
        return self._decryptions.get(transceiver.mid or "")

    def _sync_remote_tracks(
        self, sd: proto_rtc.SessionDescription, rejected: dict[str, str] | None = None
    ) -> None:
        """Work out which track each receiving m-line now carries.

        The server reuses m-lines: an unsubscribed track's m-line turns inactive
        and may later carry another track, while aiortc keeps one receiving
        track object per m-line for good. So the track sid comes from the offer
        (``mid_to_track_id``, or the msid when absent), and changes are reported
        as ended/started tracks. The m-lines our answer rejected (``rejected``:
        mid to reason) carry no track; the track each one was offered with is
        reported once through :attr:`on_remote_track_rejected`.
        """
        if self.subscriber is None and not self.single_peer_connection:
            return
        rejected = rejected or {}
        now: dict[str, str] = {}
        refused: dict[str, str] = {}
        for mid, track_sid in _offered_tracks(sd).items():
            if mid in rejected:
                refused[mid] = track_sid
            else:
                now[mid] = track_sid
        before, self._remote_mids = self._remote_mids, now
        refused_before, self._rejected_mids = self._rejected_mids, refused
        for mid, track_sid in before.items():
            if now.get(mid) == track_sid:
                continue
            self._close_playout(mid)
            decryption = self._decryptions.get(mid)
            if decryption is not None:
                decryption.unbind()  # another track (or none): until the room binds it again
            trailers = self._trailers.get(mid)
            if trailers is not None:
                trailers.clear()
            if self.on_remote_track_ended is not None:
                self.on_remote_track_ended(track_sid)
        for mid, track_sid in refused.items():
            if refused_before.get(mid) == track_sid:
                continue  # reported when it was first offered
            logger.warning("cannot subscribe to track %s: %s", track_sid, rejected[mid])
            if self.on_remote_track_rejected is not None:
                self.on_remote_track_rejected(track_sid, rejected[mid])
        transceivers = {t.mid: t for t in self._receiving_transceivers() if t.mid}
        ssrcs = sending_ssrcs(sd.sdp) if now else {}
        for mid, track_sid in now.items():
            if before.get(mid) == track_sid:
                continue
            transceiver = transceivers.get(mid)
            track = transceiver.receiver.track if transceiver is not None else None
            if transceiver is None or track is None:
                logger.warning("no receiving track for m-line %s (track %s)", mid, track_sid)
                continue
            if mid in ssrcs and isinstance(transceiver.receiver, RTCRtpReceiver):
                # a reused m-line's receiver runs already: it must learn the new SSRC
                route_received_ssrc(transceiver.receiver, *ssrcs[mid])
            if transceiver.kind == "audio":
                track = self._open_playout(mid, transceiver, track)
            if self.on_remote_track is not None:
                self.on_remote_track(track_sid, track, transceiver)

    def _open_playout(
        self, mid: str, transceiver: RTCRtpTransceiver, received: MediaStreamTrack
    ) -> MediaStreamTrack:
        """Our own jitter buffer and decoder for the audio this m-line now carries.

        Without libopus (see :data:`~livekit_py.webrtc.audio_playout.AVAILABLE`)
        aiortc's own receive path stays: no concealment, but audio.
        """
        self._close_playout(mid)
        if not playout_available:
            return received  # (decrypted, with E2EE, by the frame filter on aiortc's path)
        decryption = self._decryptions.get(mid)
        playout = AudioPlayout(decrypt=decryption.decrypt if decryption is not None else None)
        try:
            divert_received_packets(transceiver.receiver, playout.on_packet)
        except ValueError as exc:
            logger.warning("m-line %s keeps aiortc's audio receive path: %s", mid, exc)
            playout.close()
            return received
        received.on("ended", playout.close)
        self._playouts[mid] = (playout, received)
        return playout.track

    def _close_playout(self, mid: str) -> None:
        entry = self._playouts.pop(mid, None)
        if entry is not None:
            playout, received = entry
            with contextlib.suppress(KeyError):
                received.remove_listener("ended", playout.close)
            playout.close()

    def _on_answer(self, sd: proto_rtc.SessionDescription) -> None:
        if self.publisher is None:
            return
        if not self.single_peer_connection:
            self.publisher.handle_answer(sd.sdp)
            return
        try:
            sdp, idled = answer_for_aiortc(sd.sdp)
        except Exception:  # aiortc says what is wrong with it when it applies it
            sdp, idled = sd.sdp, []
        if idled:
            logger.debug("answered m-lines with no track yet, inactive for aiortc: %s", idled)
        applied = proto_rtc.SessionDescription()
        applied.CopyFrom(sd)
        applied.sdp = sdp
        self.publisher.handle_answer(sdp, on_applied=lambda: self._receive_per_answer(applied))

    def _receive_per_answer(self, sd: proto_rtc.SessionDescription) -> None:
        """Single peer connection: follow what the server's answer sends us.

        Runs as soon as the answer is applied, before aiortc starts the receivers of
        its m-lines (so before their first packet): our frame assembler and, with
        E2EE, the decryption go on every receiving m-line, then the tracks the answer
        starts and ends are reported (an audio track with our playout).
        """
        self._assemble_video_frames()
        self._guard_received_frames(sd)
        self._sync_remote_tracks(sd)

    def _add_receive_sections(self, audios: int, videos: int) -> None:
        """Add receive-only m-lines for the server's media (single peer connection)."""
        if self.publisher is None:
            return
        for kind, count in (("audio", audios), ("video", videos)):
            for _ in range(count):
                self.publisher.pc.addTransceiver(kind, direction="recvonly")

    def _on_media_sections_requirement(
        self, requirement: proto_rtc.MediaSectionsRequirement
    ) -> None:
        """The server has more (or other) tracks for us: add m-lines, make a new offer."""
        if not self.single_peer_connection or self.publisher is None or self._closed:
            logger.debug("ignoring a media sections requirement: not a single peer connection")
            return
        audios, videos = requested_sections(requirement.num_audios, requirement.num_videos)
        logger.debug("adding %d audio and %d video receive-only m-line(s)", audios, videos)
        self._add_receive_sections(audios, videos)
        task = asyncio.get_running_loop().create_task(
            self._negotiate_publisher_safely(), name="livekit_py.publisher.renegotiate"
        )
        self._negotiations.add(task)
        task.add_done_callback(self._negotiations.discard)

    def _on_publisher_answer_applied(self, sdp: str) -> None:
        """Let each published track's encoder follow the answer (Opus FEC, bitrate cap)."""
        publisher = self.publisher
        if publisher is None:
            return
        try:
            fmtp = opus_fmtp_by_mid(sdp)
        except ValueError as e:  # aiortc has just applied it, so this is unexpected
            logger.debug("publisher answer not read for the encoders: %s", e)
            return
        for transceiver in publisher.pc.getTransceivers():
            if transceiver.mid in fmtp:
                apply_answer(transceiver.sender, fmtp[transceiver.mid])
        for transceiver, (encoder, _) in self._simulcast.items():
            self._start_simulcast(transceiver, encoder, sdp)

    def _start_simulcast(
        self, transceiver: RTCRtpTransceiver, encoder: SimulcastEncoder, answer: str
    ) -> None:
        mid = transceiver.mid
        transport = transceiver.sender.transport
        if mid is None or transport is None:
            return
        try:
            answered = answered_stream(answer, mid, encoder.mime_type)
        except ValueError as e:
            logger.debug("publisher answer not read for simulcast: %s", e)
            return
        if answered is None:
            logger.warning("the answer has no %s for simulcast m-line %s", encoder.mime_type, mid)
            return
        encoder.start(transport, mid, answered)

    def _on_subscribed_quality_update(self, update: proto_rtc.SubscribedQualityUpdate) -> None:
        """Dynacast: encode only the layers someone receives (when dynacast is on)."""
        for encoder, sid in self._simulcast.values():
            if sid != update.track_sid:
                continue
            qualities = [q for q in update.subscribed_qualities]
            for codec in update.subscribed_codecs:
                if encoder.mime_type.lower().endswith(codec.codec.lower()):
                    qualities = list(codec.qualities)
            active = {int(q.quality) for q in qualities if q.enabled}
            logger.debug("subscribed qualities of %s: %s", sid, sorted(active))
            if self.dynacast:
                encoder.set_active_qualities(active)

    def _on_trickle(self, trickle: proto_rtc.TrickleRequest) -> None:
        target = (
            self.publisher
            if trickle.target == proto_rtc.SignalTarget.PUBLISHER or self.single_peer_connection
            else self.subscriber
        )
        if target is not None:
            target.add_candidate(trickle.candidateInit, trickle.final)

    def _on_track_published(self, res: proto_rtc.TrackPublishedResponse) -> None:
        fut = self._pending_tracks.pop(res.cid, None)
        if fut is not None and not fut.done():
            fut.set_result(res.track)
        elif fut is None:
            logger.debug("track_published for unknown cid %s", res.cid)

    # -- publisher negotiation --------------------------------------------------------

    async def negotiate_publisher(self) -> None:
        """Offer the publisher's current state and wait for the server's answer."""
        if self.publisher is None:
            raise ConnectionError("the engine is not started")

        async def send_offer(sdp: str, offer_id: int) -> None:
            # Opus offered with useinbandfec=1, as libwebrtc does: the server's answer
            # says it back, and the answer turns our encoder's FEC on; simulcast
            # m-lines announce their layers (aiortc keeps its own description)
            rids = {
                t.mid: [layer.rid for layer in encoder.layers]
                for t, (encoder, _) in self._simulcast.items()
                if t.mid is not None
            }
            sdp = offer_simulcast(offer_opus_fec(sdp), rids)
            offer = proto_rtc.SessionDescription(type="offer", sdp=sdp, id=offer_id)
            await self._signal.send(proto_rtc.SignalRequest(offer=offer))

        await self.publisher.negotiate(send_offer)

    async def _negotiate_publisher_safely(self) -> None:
        try:
            await self.negotiate_publisher()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not self._closed:
                logger.warning("publisher negotiation failed: %s", e)

    def add_publisher_track(
        self, media: MediaStreamTrack, encoder: EncoderConfig, track_sid: str = ""
    ) -> RTCRtpTransceiver:
        """Add a send-only m-line for ``media``, encoded as ``encoder`` says (negotiate afterwards).

        ``track_sid`` (the server's sid of the track) routes dynacast updates to a
        simulcast publication's layers.

        Raises:
            ConnectionError: If the engine is not started.
            ValueError: If ``media`` and ``encoder`` are not of the same kind, or the
                encoder cannot be made.
        """
        if self.publisher is None:
            raise ConnectionError("the engine is not started")
        if media.kind != encoder.kind:
            raise ValueError(f"a {media.kind} track cannot be sent with a {encoder.kind} encoder")
        transceiver = self.publisher.pc.addTransceiver(media, direction="sendonly")
        installed = configure_sender(transceiver, encoder)
        if isinstance(installed, SimulcastEncoder):
            self._simulcast[transceiver] = (installed, track_sid)
        feedback = loss_feedback_for(transceiver.sender)
        if feedback is not None:
            self._loss_feedback[transceiver] = feedback
            feedback.start()
        return transceiver

    async def remove_publisher_track(
        self, transceiver: RTCRtpTransceiver, *, renegotiate: bool
    ) -> None:
        """Stop sending on ``transceiver`` and turn its m-line inactive."""
        feedback = self._loss_feedback.pop(transceiver, None)
        if feedback is not None:
            await feedback.aclose()
        simulcast = self._simulcast.pop(transceiver, None)
        if simulcast is not None:
            await simulcast[0].stop()
        transceiver.sender.replaceTrack(None)
        transceiver.direction = "inactive"
        with contextlib.suppress(Exception):
            await transceiver.sender.stop()
        if renegotiate and not self._closed:
            await self.negotiate_publisher()

    async def add_track(self, request: proto_rtc.AddTrackRequest) -> proto_models.TrackInfo:
        """Announce a local track to the server and wait for its TrackInfo."""
        if request.cid in self._pending_tracks:
            raise ValueError(f"a track with cid {request.cid} is already being published")
        fut: asyncio.Future[proto_models.TrackInfo] = asyncio.get_running_loop().create_future()
        self._pending_tracks[request.cid] = fut
        try:
            await self._signal.send(proto_rtc.SignalRequest(add_track=request))
            async with timeout(10.0):
                return await fut
        except asyncio.TimeoutError:
            raise ConnectionError(
                f"the server did not acknowledge track {request.name!r} within 10s"
            ) from None
        finally:
            self._pending_tracks.pop(request.cid, None)

    # -- data -----------------------------------------------------------------------

    def _watch_channel(self, channel: RTCDataChannel) -> None:
        kind = (
            proto_models.DataPacket.Kind.LOSSY
            if channel.label == LOSSY_LABEL
            else proto_models.DataPacket.Kind.RELIABLE
        )

        @channel.on("message")
        def _on_message(message: bytes | str) -> None:
            if isinstance(message, str):
                message = message.encode()
            packet = proto_models.DataPacket()
            try:
                packet.ParseFromString(message)
            except Exception:
                logger.warning(
                    "undecodable data packet of %d bytes on %s", len(message), channel.label
                )
                return
            if logger.isEnabledFor(10):
                logger.debug(
                    "data recv on %s: %s (%d bytes)",
                    channel.label,
                    packet.WhichOneof("value"),
                    len(message),
                )
            if kind == proto_models.DataPacket.Kind.RELIABLE and not self._deduper.accept(packet):
                logger.debug(
                    "dropping reliable packet %d from %s: not newer than %d (a resent copy)",
                    packet.sequence,
                    packet.participant_sid,
                    self._deduper.last_sequence(packet.participant_sid),
                )
                return
            if self.on_data_packet is not None:
                self.on_data_packet(packet, kind)

    def _update_publisher_ready(self) -> None:
        channels = (self._reliable, self._lossy)
        if (
            self.publisher is not None
            and self.publisher.is_connected
            and all(c is not None and c.readyState == "open" for c in channels)
        ):
            self._publisher_ready.set()
        else:
            self._publisher_ready.clear()

    async def wait_publisher_ready(self, limit: float = 15.0) -> None:
        """Wait until the publisher is connected and both data channels are open."""
        if self._closed:
            raise ConnectionError("the engine is closed")
        if self._publisher_ready.is_set():
            return
        if self.publisher is not None and self.publisher.pc.connectionState in ("new", "failed"):
            if self._publisher_task is None or self._publisher_task.done():
                self._publisher_task = asyncio.get_running_loop().create_task(
                    self._negotiate_publisher_safely()
                )
        try:
            async with timeout(limit):
                await self._publisher_ready.wait()
        except asyncio.TimeoutError:
            raise ConnectionError(
                f"the publisher connection was not ready within {limit:g}s"
            ) from None

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        """Send ``packet`` on the reliable or lossy channel (``kind`` is a DataPacket.Kind).

        A reliable packet gets the next ``sequence`` at the moment it is handed to
        the channel (so sequences follow the order on the wire, which the server
        requires: it drops a reliable packet not numbered above the last one it
        forwarded) and is kept until it is known delivered (see
        :meth:`resend_reliable_after`). While the data path is suspended
        (:meth:`suspend_data`), a reliable send waits up to ``data_resume_wait``
        seconds for it to be resumed. A lossy send waits while the lossy channel
        holds more than ``LOSSY_BUFFER_HIGH`` bytes, for at most ``LOSSY_DRAIN_WAIT``
        seconds; after that the packet is dropped (:attr:`lossy_dropped`).

        Raises:
            ConnectionError: If the packet cannot be sent: the engine is closed or
                closes while waiting, the data path stays suspended beyond
                ``data_resume_wait``, the channel is not open, or
                (:class:`ReliableBufferFullError`) too much sent reliable data is
                not yet known delivered. A packet for which this is raised was not sent.
        """
        if kind != proto_models.DataPacket.Kind.RELIABLE:
            await self._send_lossy(packet)
            return
        while True:
            await self._wait_data_open()
            await self.wait_publisher_ready()
            channel = self._reliable
            if channel is None or channel.readyState != "open":
                raise ConnectionError("the data channel is not open")
            async with self._reliable_lock:
                if channel.bufferedAmount > RELIABLE_BUFFER_HIGH:
                    await self._drained(channel)
                if not self._data_open.is_set():
                    continue  # a reconnect began while we waited: wait for its end
                if self._closed or channel is not self._reliable or channel.readyState != "open":
                    raise ConnectionError("the data channel closed while sending")
                self._send_buffer.delivered_by_drain(channel.bufferedAmount)
                try:
                    sequence = self._send_buffer.record(packet)
                except ReliableBufferFullError:
                    if channel.bufferedAmount <= channel.bufferedAmountLowThreshold:
                        raise
                    await self._drained(channel)
                    self._send_buffer.delivered_by_drain(channel.bufferedAmount)
                    sequence = self._send_buffer.record(packet)
                payload = self._send_buffer.payload(sequence)
                self._log_send(channel, packet, payload)
                channel.send(payload)
                return

    async def _send_lossy(self, packet: proto_models.DataPacket) -> None:
        # One turn of the event loop per packet: a sender in a tight loop must not
        # starve what else runs on it (the receive side of the same process first of
        # all, which reads its sockets once per turn).
        await asyncio.sleep(0)
        await self.wait_publisher_ready()
        channel = self._lossy
        if channel is None or channel.readyState != "open":
            raise ConnectionError("the data channel is not open")
        if channel.bufferedAmount > LOSSY_BUFFER_HIGH:
            try:
                async with timeout(LOSSY_DRAIN_WAIT):
                    await self._drained(channel)
            except asyncio.TimeoutError:
                self._lossy_dropped += 1
                if self._lossy_dropped == 1 or self._lossy_dropped % 1000 == 0:
                    logger.warning(
                        "dropped a lossy packet: the channel did not drain within %gs"
                        " (%d dropped so far)",
                        LOSSY_DRAIN_WAIT,
                        self._lossy_dropped,
                    )
                return
        payload = packet.SerializeToString()
        self._log_send(channel, packet, payload)
        channel.send(payload)

    @property
    def lossy_dropped(self) -> int:
        """Lossy packets dropped because the channel stayed full for ``LOSSY_DRAIN_WAIT``."""
        return self._lossy_dropped

    @staticmethod
    def _log_send(channel: RTCDataChannel, packet: proto_models.DataPacket, payload: bytes) -> None:
        if logger.isEnabledFor(10):
            logger.debug(
                "data send on %s: %s seq %d (%d bytes)",
                channel.label,
                packet.WhichOneof("value"),
                packet.sequence,
                len(payload),
            )

    # -- reliable data across a reconnect ----------------------------------------------
    #
    # The contract with the session (which owns the reconnect):
    #   * entering RECONNECTING: suspend_data(); reliable sends then wait (up to
    #     data_resume_wait each) instead of going out or failing;
    #   * resumed (ReconnectResponse received, SyncState sent): await
    #     resend_reliable_after(response.last_message_seq); it resends what the
    #     server lacks, in order, then resumes the data path itself;
    #   * giving up, or a full reconnect with a new engine: close() this engine;
    #     waiting sends then raise ConnectionError. undelivered_reliable() gives
    #     the packets that never left this engine, for the new engine to send.

    def suspend_data(self) -> None:
        """Hold reliable sends back (a reconnect is under way) until :meth:`resume_data`."""
        if not self._closed:
            self._data_open.clear()

    def resume_data(self) -> None:
        """Let reliable sends through again (without resending anything)."""
        self._data_open.set()

    @property
    def data_suspended(self) -> bool:
        """Whether reliable sends are being held back by :meth:`suspend_data`."""
        return not self._data_open.is_set()

    async def resend_reliable_after(self, last_message_seq: int) -> int:
        """After a resume: forget what the server has, resend the rest in order, resume sends.

        Args:
            last_message_seq: ``ReconnectResponse.last_message_seq``: the last of our
                reliable sequences the server received.

        Returns:
            How many packets were sent again.

        Raises:
            ConnectionError: If the reliable channel is not open or closes while
                resending; the data path then stays suspended (close the engine or
                reconnect).
        """
        self._send_buffer.delivered_through(last_message_seq)
        async with self._reliable_lock:
            channel = self._reliable
            if self._closed or channel is None or channel.readyState != "open":
                raise ConnectionError("the reliable data channel is not open; nothing resent")
            sequences = self._send_buffer.sequences_after(last_message_seq)
            for sequence in sequences:
                if channel.bufferedAmount > RELIABLE_BUFFER_HIGH:
                    await self._drained(channel)
                self._send_buffer.mark_resent(sequence)
                channel.send(self._send_buffer.payload(sequence))
        if sequences:
            logger.info(
                "resent %d reliable packet(s) after a resume (%d..%d; the server had up to %d)",
                len(sequences),
                sequences[0],
                sequences[-1],
                last_message_seq,
            )
        self.resume_data()
        return len(sequences)

    def undelivered_reliable(self) -> list[proto_models.DataPacket]:
        """Reliable packets that were accepted but whose bytes never left our channel.

        For a full reconnect: none of these can have reached the server, so sending
        them on the new session's engine (where they get new sequences) delivers
        each exactly once. Callable after :meth:`close` (aiortc keeps a closed
        channel's ``bufferedAmount``). Oldest first; copies.
        """
        channel = self._reliable
        if channel is not None:
            self._send_buffer.delivered_by_drain(channel.bufferedAmount)
        return self._send_buffer.pending_after(0)

    @property
    def reliable_send_buffer(self) -> ReliableSendBuffer:
        """The numbering and the packets kept for resending (read it, do not change it)."""
        return self._send_buffer

    def reliable_receive_states(self) -> list[proto_rtc.DataChannelReceiveState]:
        """The last reliable sequence seen from each sender, for ``SyncState``."""
        return [
            proto_rtc.DataChannelReceiveState(publisher_sid=sid, last_seq=seq)
            for sid, seq in self._deduper.last_sequences().items()
        ]

    async def _wait_data_open(self) -> None:
        if self._closed:
            raise ConnectionError("the engine is closed")
        if self._data_open.is_set():
            return
        try:
            async with timeout(self.data_resume_wait):
                await self._data_open.wait()
        except asyncio.TimeoutError:
            raise ConnectionError(
                f"the connection was not restored within {self.data_resume_wait:g}s; "
                "the reliable packet was not sent"
            ) from None
        if self._closed:
            raise ConnectionError("the session closed before the packet could be sent")

    async def _drained(self, channel: RTCDataChannel) -> None:
        drained = asyncio.get_running_loop().create_future()

        def _low() -> None:
            if not drained.done():
                drained.set_result(None)

        channel.on("bufferedamountlow", _low)
        channel.on("close", _low)
        try:
            await drained
        finally:
            channel.remove_listener("bufferedamountlow", _low)
            channel.remove_listener("close", _low)
        if channel.readyState != "open":
            raise ConnectionError("the data channel closed while sending")

    # -- what a resume tells the server ------------------------------------------------

    async def restart_publisher_ice(self) -> bool:
        """Restart the publisher's ICE: an offer with new credentials, answer followed.

        What the official SDKs do after every resume (an offer with
        ``iceRestart``): the server's ICE agent of our publisher may have given
        up while the media path was down, and only a restart revives it.

        Returns:
            False if the publisher was never negotiated (nothing to restart).

        Raises:
            ConnectionError: If the server does not answer the offer.
        """
        publisher = self.publisher
        if publisher is None or not publisher.restart_local_ice():
            return False
        await self.negotiate_publisher()
        return True

    @property
    def subscriber_ice_restarts(self) -> int:
        """How many of the server's ICE restarts the subscriber has followed."""
        return self.subscriber.ice_restarts if self.subscriber is not None else 0

    async def wait_subscriber_ice_restart(self, after: int) -> None:
        """Wait until the subscriber followed more than ``after`` ICE restarts.

        Returns at once with a single peer connection: the server restarts ICE only
        on a subscriber; the publisher's restart is ours (:meth:`restart_publisher_ice`).
        """
        if self.single_peer_connection:
            return
        if self.subscriber is None:
            raise ConnectionError("the engine is not started")
        await self.subscriber.wait_ice_restart(after)

    def sync_descriptions(
        self,
    ) -> tuple[proto_rtc.SessionDescription | None, proto_rtc.SessionDescription | None]:
        """The (answer, offer) a SyncState carries after a resume.

        The subscriber's answer (local) and offer (remote); with a single peer
        connection the publisher's: the server's answer (remote) and our offer (local).
        """
        if self.single_peer_connection:
            pc = self.publisher.pc if self.publisher is not None else None
            pair = (pc.remoteDescription, pc.localDescription) if pc else (None, None)
        else:
            pc = self.subscriber.pc if self.subscriber is not None else None
            pair = (pc.localDescription, pc.remoteDescription) if pc else (None, None)
        answer, offer = (
            proto_rtc.SessionDescription(type=desc.type, sdp=desc.sdp) if desc else None
            for desc in pair
        )
        return answer, offer

    def data_channel_infos(self) -> list[proto_rtc.DataChannelInfo]:
        """Our data channels and the server's (label, SCTP stream id, side), for SyncState."""
        infos: list[proto_rtc.DataChannelInfo] = []
        sides = (
            (proto_rtc.SignalTarget.PUBLISHER, (self._lossy, self._reliable)),
            (
                proto_rtc.SignalTarget.SUBSCRIBER,
                tuple(
                    self._subscriber_channels.get(label) for label in (LOSSY_LABEL, RELIABLE_LABEL)
                ),
            ),
        )
        for target, channels in sides:
            for channel in channels:
                if channel is not None and channel.id is not None:
                    infos.append(
                        proto_rtc.DataChannelInfo(label=channel.label, id=channel.id, target=target)
                    )
        return infos

    # -- state ----------------------------------------------------------------------

    def _on_transport_state(self, name: str, state: str) -> None:
        if name == "publisher":
            self._update_publisher_ready()
        if self._closed:
            return
        primary = "subscriber" if self.subscriber_primary else "publisher"
        if state == "failed" and self.on_failure is not None:
            self.on_failure(f"the {name} peer connection failed")
        elif state == "closed" and name == primary and self.on_failure is not None:
            self.on_failure(f"the {name} peer connection closed")

    def _stats_sources(
        self, transport: PeerTransport, decoded: Mapping[RTCRtpReceiver, DecodedFrames]
    ) -> StatsSources:
        receives = transport is self.subscriber or (
            transport is self.publisher and self.single_peer_connection
        )
        playouts = (
            {mid: playout for mid, (playout, _) in self._playouts.items()} if receives else {}
        )
        return StatsSources(
            ice=transport.ice_checks,
            channels=transport.data_channels,
            playouts=playouts,
            decoded=decoded.get,
        )

    async def get_stats(
        self, decoded: Mapping[RTCRtpReceiver, DecodedFrames] | None = None
    ) -> tuple[list[RtcStats], list[RtcStats]]:
        """The statistics of the publisher and subscriber connections (``stats`` messages).

        With a single peer connection everything is in the publisher's (the
        subscriber's is empty, as in the official SDK).

        Args:
            decoded: What the readers of received tracks decoded, by receiver.
        """
        out: list[list[RtcStats]] = []
        for transport in (self.publisher, self.subscriber):
            if transport is None:
                out.append([])
                continue
            sources = self._stats_sources(transport, decoded or {})
            out.append(await peer_connection_stats(transport.pc, sources))
        return out[0], out[1]

    async def transceiver_stats(
        self, transceiver: RTCRtpTransceiver, decoded: DecodedFrames | None = None
    ) -> list[RtcStats]:
        """The statistics of one m-line (a track's), empty once it is gone.

        Args:
            transceiver: A transceiver of the publisher or the subscriber.
            decoded: What the reader of the received track decoded.
        """
        for transport in (self.publisher, self.subscriber):
            if transport is None or transceiver not in transport.pc.getTransceivers():
                continue
            if transport.pc.connectionState == "closed":
                return []
            by_receiver = {transceiver.receiver: decoded} if decoded is not None else {}
            sources = self._stats_sources(transport, by_receiver)
            return await transceiver_stats(transport.pc, transceiver, sources)
        return []

    def begin_close(self) -> None:
        """Mark the session as ending: failures from here on are expected, not errors."""
        self._closed = True
        self._data_open.set()  # wake suspended sends: they see the engine closed
        self.data_tracks.close()
        for transport in (self.publisher, self.subscriber):
            if transport is not None:
                transport.closing = True

    async def close(self) -> None:
        """Close both transports and fail whatever is still waiting. Idempotent."""
        self.begin_close()
        if self.publisher is None and self.subscriber is None:
            return
        for fut in self._pending_tracks.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the session closed"))
                fut.exception()
        self._pending_tracks.clear()
        feedbacks, self._loss_feedback = list(self._loss_feedback.values()), {}
        for feedback in feedbacks:
            await feedback.aclose()
        simulcasts, self._simulcast = list(self._simulcast.values()), {}
        for simulcast, _ in simulcasts:
            await simulcast.stop()
        if self._publisher_task is not None and not self._publisher_task.done():
            self._publisher_task.cancel()
            with contextlib.suppress(BaseException):
                await self._publisher_task
        for task in list(self._negotiations):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for mid in list(self._playouts):
            self._close_playout(mid)
        for decryption in self._decryptions.values():
            decryption.unbind()
        self._decryptions.clear()
        self._trailers.clear()
        publisher, subscriber = self.publisher, self.subscriber
        self.publisher = self.subscriber = None
        for transport in (publisher, subscriber):
            if transport is not None:
                await transport.close()
        self._publisher_ready.clear()
