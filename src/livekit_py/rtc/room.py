"""The Room: joining a LiveKit room and keeping an accurate model of who is in it."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import warnings
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import MediaStreamTrack, RTCIceServer, RTCRtpTransceiver
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..engine.engine import EngineConfig, RtcEngine
from ..errors import ConnectError as ConnectError  # the official module exports it
from ..log import get_logger
from ..media.devices import remote_audio
from ..session import model as m
from ..session import session as _session_module
from ..session.data_tracks import DataTrackManager
from ..session.e2ee import ENCRYPTED_PACKET_KINDS, E2EEController
from ..session.ports import PublishedTrack
from ..session.requests import RequestTracker, reason_name
from ..session.rpc import RpcManager
from ..session.session import Session, SessionState, StateChange
from ..session.stream_manager import StreamManager
from ..signal.client import SignalClient, SignalOptions
from ..types import (
    ConnectionState,
    ContinualGatheringPolicy,
    DataPacketKind,
    DisconnectReason,
    IceServer,
    IceTransportType,
    SimulateScenarioKind,
    StreamState,
    TrackKind,
)
from ..webrtc.encoders import EncoderConfig
from . import stats as proto_stats
from .data_stream import ByteStreamHandler, TextStreamHandler
from .data_track import LocalDataTrack
from .e2ee import E2EEManager, E2EEOptions, make_controller
from .event_emitter import EventEmitter
from .participant import ConnectionQuality, LocalParticipant, Participant, RemoteParticipant
from .track import RemoteAudioTrack, RemoteTrack, RemoteVideoTrack
from .track_publication import LocalTrackPublication, RemoteTrackPublication
from .transcription import segments_from_proto

logger = get_logger("room")


@dataclass
class RtcConfiguration:
    """Peer connection settings.

    ``ice_servers`` replaces the STUN/TURN servers the LiveKit server suggests
    when non-empty. aiortc gathers candidates once per negotiation, so
    ``continual_gathering_policy`` is accepted but has no effect, and
    ``TRANSPORT_NOHOST`` gathers all candidates (aiortc knows only "all" and
    "relay"); both are logged.
    """

    ice_transport_type: int = IceTransportType.TRANSPORT_ALL
    continual_gathering_policy: int = ContinualGatheringPolicy.GATHER_CONTINUALLY
    ice_servers: list[IceServer] = field(default_factory=list)


@dataclass
class DataStreamOptions:
    """Limits on the data streams others send us."""

    max_payload_byte_length: int | None = None
    """The most content, in bytes once decompressed, one incoming stream may carry; a
    larger stream ends with a StreamError on its reader. None: 5,000,000,000, the
    official SDK's default."""


@dataclass
class RoomOptions:
    """How :meth:`Room.connect` joins.

    ``connect_timeout`` bounds each step of the join (the signal handshake, then
    the media connection); None means 10 seconds each. With ``dynacast``, the
    simulcast layers of our publications that no subscriber receives are not
    encoded. ``encryption`` turns end-to-end encryption on (media and data; see
    :mod:`livekit_py.rtc.e2ee`); ``e2ee`` is its deprecated name (it warns, and
    encrypts media only, as the official SDK).
    """

    auto_subscribe: bool = True
    dynacast: bool = False
    e2ee: E2EEOptions | None = None
    encryption: E2EEOptions | None = None
    rtc_config: RtcConfiguration | None = None
    connect_timeout: float | None = None
    adaptive_stream: bool = False
    """Ask the server to start each video subscription at the LOW layer (a livekit-py
    extension: the URL parameter ``adaptive_stream=1`` the Rust and JS SDKs send); pick
    another layer with ``RemoteTrackPublication.set_video_quality``. The server forwards
    the first key frame of any layer and steps down to LOW from there, so the first
    frames are LOW when the publisher's LOW key frame comes first (see docs/media.md)."""
    data_stream: DataStreamOptions | None = None
    """Limits on incoming data streams; None: the defaults of :class:`DataStreamOptions`."""
    single_peer_connection: bool | None = None
    """Use a single peer connection for both publish and subscribe. When None, uses the
    default (true). A server without it (before single peer connections) is joined with
    two, as the official SDK does."""


@dataclass
class DataPacket:
    """A user data packet received from another participant."""

    data: bytes
    kind: int
    participant: RemoteParticipant | None
    topic: str | None = None


@dataclass
class SipDTMF:
    """A DTMF tone received from a (usually SIP) participant."""

    code: int
    digit: str
    participant: RemoteParticipant | None = None


@dataclass
class RtcStats:
    """Statistics of both peer connections, as the official SDK returns them.

    Each list holds ``livekit.rtc.stats.RtcStats`` messages (:mod:`livekit_py.rtc.stats`)
    of one peer connection: every RTP stream sent or received with its codec and the
    peer's reports, the media sources, the transport, every candidate pair and
    candidate, the certificates, the ``peer_connection`` entry and the data channels.
    Fields livekit-py does not know are left unset.
    """

    publisher_stats: list[proto_stats.RtcStats]
    subscriber_stats: list[proto_stats.RtcStats]


DEFAULT_CONNECT_TIMEOUT = 10.0


EventTypes = Literal[
    "participant_connected",
    "participant_disconnected",
    "participant_active",
    "local_track_published",
    "local_track_unpublished",
    "local_track_republished",
    "local_track_subscribed",
    "track_published",
    "track_unpublished",
    "track_subscribed",
    "track_unsubscribed",
    "track_subscription_failed",
    "track_muted",
    "track_unmuted",
    "active_speakers_changed",
    "room_metadata_changed",
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "connection_quality_changed",
    "participant_encryption_status_changed",
    "participant_permissions_changed",
    "data_received",
    "sip_dtmf_received",
    "transcription_received",
    "e2ee_state_changed",
    "connection_state_changed",
    "connected",
    "disconnected",
    "reconnecting",
    "reconnected",
    "room_updated",
    "moved",
    "token_refreshed",
    "data_track_published",
    "data_track_unpublished",
]

# How long a transport failure waits for the server's leave message (and its reason).
TRANSPORT_GRACE = _session_module.TRANSPORT_GRACE
# How long publish_data waits for a reconnect under way before raising.
RECONNECT_SEND_WAIT = 30.0

_EVENT_NAMES: frozenset[str] = frozenset(EventTypes.__args__)  # type: ignore[attr-defined]

# livekit-protocol DataPacket.Kind -> public DataPacketKind (same numbers, kept explicit).
_DATA_KIND: dict[int, int] = {
    proto_models.DataPacket.Kind.RELIABLE: DataPacketKind.KIND_RELIABLE,
    proto_models.DataPacket.Kind.LOSSY: DataPacketKind.KIND_LOSSY,
}


# the engine's handle for a remote track: the aiortc track and its transceiver
_Media = tuple[MediaStreamTrack, RTCRtpTransceiver]


class Room(EventEmitter[EventTypes]):
    """A LiveKit room as seen by one participant.

    ``connect`` joins; the room then mirrors the server's view of participants
    and emits events (see :data:`EventTypes`) as they change. Event handlers are
    plain functions registered with :meth:`on`.

    Inside, a :class:`~livekit_py.session.session.Session` owns the connection and
    its lifecycle, a pure :class:`~livekit_py.session.model.RoomModel` turns server
    messages into model events, and :meth:`_dispatch` is the one place where those
    become the public objects' state and the public events.
    """

    _valid_events = _EVENT_NAMES

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        self._loop = loop
        self._model: m.RoomModel[_Media] = m.RoomModel()
        self._session = Session(on_state=self._on_session_state, on_closed=self._on_session_closed)
        self._session.build_sync_state = self._sync_state
        self._session.on_rejoined = self._on_rejoined
        self._session.restore = self._restore_after_rejoin
        self._session.on_resumed = self._on_resumed
        self._port = _RoomPort(self)
        self._connection_state: int = ConnectionState.CONN_DISCONNECTED
        self._local_participant: LocalParticipant | None = None
        self._remote_participants: dict[str, RemoteParticipant] = {}
        self._token: str | None = None
        self._url: str | None = None
        self._options = RoomOptions()
        self._rpc: RpcManager | None = None
        self._streams: StreamManager | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._requests = RequestTracker()
        self._e2ee: E2EEController | None = None
        self._e2ee_manager = E2EEManager(None)
        # remote identity -> whether all its tracks (and data) are encrypted, and whether
        # its data packets are (None until one arrived)
        self._encryption_status: dict[str, bool] = {}
        self._data_encrypted: dict[str, bool] = {}
        # data tracks (session/data_tracks.py): theirs appear and go as events
        self._data_tracks = DataTrackManager(self._session, e2ee=lambda: self._e2ee)
        self._data_tracks.on_published = lambda track: self.emit("data_track_published", track)
        self._data_tracks.on_unpublished = lambda sid: self.emit("data_track_unpublished", sid)

    # -- properties -------------------------------------------------------------

    @property
    def _info(self) -> proto_models.Room:
        return self._model.room

    @property
    def _server_info(self) -> proto_models.ServerInfo:
        return self._model.server_info

    @property
    def _subscription_allowed(self) -> Mapping[str, bool]:
        """Track sid -> whether its publisher lets us subscribe (what the server said)."""
        return self._model.subscription_allowed

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def sid(self) -> str:
        """The room's server id (``RM_...``); empty before the first connect."""
        return self._info.sid

    @property
    def metadata(self) -> str:
        return self._info.metadata

    @property
    def connection_state(self) -> int:
        """A :class:`ConnectionState` value."""
        return self._connection_state

    def isconnected(self) -> bool:
        return self._connection_state != ConnectionState.CONN_DISCONNECTED

    @property
    def local_participant(self) -> LocalParticipant:
        """This client's participant; raises when the room was never connected."""
        if self._local_participant is None:
            raise RuntimeError("the room is not connected")
        return self._local_participant

    @property
    def remote_participants(self) -> Mapping[str, RemoteParticipant]:
        """Other participants keyed by identity (a snapshot)."""
        return dict(self._remote_participants)

    @property
    def num_participants(self) -> int:
        """How many participants the server counts in the room (updated by the server)."""
        return self._info.num_participants

    @property
    def num_publishers(self) -> int:
        return self._info.num_publishers

    @property
    def creation_time(self) -> datetime.datetime:
        """When the room was created on the server (UTC)."""
        ms = self._info.creation_time_ms or self._info.creation_time * 1000
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)

    @property
    def is_recording(self) -> bool:
        return self._info.active_recording

    @property
    def departure_timeout(self) -> float:
        """Seconds the room stays open after the last participant leaves."""
        return float(self._info.departure_timeout)

    @property
    def empty_timeout(self) -> float:
        """Seconds an empty room stays open before anyone joined."""
        return float(self._info.empty_timeout)

    @property
    def e2ee_manager(self) -> E2EEManager:
        """The room's end-to-end encryption: keys, frame cryptors, on/off.

        Disabled, with no key provider, on a room connected without
        ``RoomOptions.encryption``.
        """
        return self._e2ee_manager

    # -- RPC and data streams (session/rpc.py, session/stream_manager.py) -------------

    def _rpc_manager(self) -> RpcManager:
        if self._rpc is None:
            # RPC v2 rides on data streams: the manager claims its topics on the receiver
            streams = self._stream_manager()  # which may have made the RPC manager already
            if self._rpc is None:
                self._rpc = RpcManager(self._port, streams=streams, peers=self._port)
        return self._rpc

    def _stream_manager(self) -> StreamManager:
        if self._streams is None:
            options = self._options.data_stream
            self._streams = StreamManager(
                self._port,
                peers=self._port,
                max_payload_byte_length=options.max_payload_byte_length if options else None,
            )
            self._rpc_manager()  # its topics are claimed before any stream arrives
        return self._streams

    def register_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> None:
        """Call ``handler(reader, participant_identity)`` for text streams on ``topic``.

        Args:
            topic: The topic the streams are sent on.
            handler: Called with a TextStreamReader and the sender's identity as each
                stream opens; it may also be a coroutine function (then it is run).

        Raises:
            ValueError: A text stream handler is already registered for ``topic``.
        """
        self._stream_manager().register_text_stream_handler(topic, handler)

    def unregister_text_stream_handler(self, topic: str) -> None:
        """Stop handling text streams on ``topic``; later ones are ignored."""
        self._stream_manager().unregister_text_stream_handler(topic)

    def register_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> None:
        """Call ``handler(reader, participant_identity)`` for byte streams on ``topic``.

        Args:
            topic: The topic the streams are sent on.
            handler: Called with a ByteStreamReader and the sender's identity as each
                stream opens; it may also be a coroutine function (then it is run).

        Raises:
            ValueError: A byte stream handler is already registered for ``topic``.
        """
        self._stream_manager().register_byte_stream_handler(topic, handler)

    def unregister_byte_stream_handler(self, topic: str) -> None:
        """Stop handling byte streams on ``topic``; later ones are ignored."""
        self._stream_manager().unregister_byte_stream_handler(topic)

    async def get_rtc_stats(self) -> RtcStats:
        """Statistics of the publisher and subscriber peer connections."""
        engine = self._session.engine
        if engine is None or not self.isconnected():
            raise RuntimeError("the room isn't connected")
        decoded = {
            track._receiver: track._reader
            for rp in self._remote_participants.values()
            for pub in rp._track_publications.values()
            if isinstance(track := pub.track, RemoteTrack) and track._receiver is not None
        }
        publisher, subscriber = await engine.get_stats(decoded)
        return RtcStats(publisher, subscriber)

    def on(
        self, event: EventTypes, callback: Callable[..., Any] | None = None
    ) -> Callable[..., Any]:
        """Register a plain (non-async) ``callback`` for ``event``, or use as a decorator."""
        return super().on(event, callback)

    def emit(self, event: EventTypes, *args: Any) -> None:
        """Call the callbacks of ``event``; a ``TypeError`` one raises is logged.

        The room emits from inside the session's handling of server messages and state
        changes, so, like the official room's event loop, it logs what the emitter raises
        (a callback that takes more arguments than the event has) instead of letting it
        break that handling.
        """
        try:
            super().emit(event, *args)
        except TypeError:
            logger.exception("error running user callback for %s", event)

    # -- connect / disconnect -----------------------------------------------------------

    async def connect(self, url: str, token: str, options: RoomOptions | None = None) -> None:
        """Join the room at ``url`` with the access ``token``.

        Returns once the signal session is up and the primary peer connection is
        connected. Raises ConnectError with the reason (rejected token,
        unreachable server, timeout). If the call is cancelled, e.g. by
        ``asyncio.wait_for``, everything it opened is closed before the
        cancellation propagates.
        """
        options = options or RoomOptions()
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty access token string")
        if self._session.state is not SessionState.DISCONNECTED:
            raise RuntimeError("the room is already connected or connecting")
        if options.e2ee is not None:
            warnings.warn(
                "options.e2ee is deprecated, use options.encryption instead",
                DeprecationWarning,
                stacklevel=2,
            )
        encryption = options.encryption or options.e2ee
        controller: E2EEController | None = None
        if encryption is not None:
            # data packets are encrypted with `encryption` only, as in the Rust SDK
            controller = make_controller(encryption, encrypt_data=options.encryption is not None)
            controller.on_state = self._on_e2ee_state
        self._e2ee = controller
        self._e2ee_manager = E2EEManager(encryption, controller)
        self._options = options
        if self._streams is not None:  # made before this connect (a handler registered)
            limits = options.data_stream
            self._streams.receiver.max_payload_byte_length = (
                limits.max_payload_byte_length if limits else None
            )
        timeout = options.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        try:
            await self._session.connect(
                url,
                token,
                SignalOptions(
                    auto_subscribe=options.auto_subscribe,
                    adaptive_stream=options.adaptive_stream,
                    connect_timeout=timeout,
                    single_peer_connection=options.single_peer_connection is not False,
                ),
                self._engine_config(options, e2ee=controller is not None),
                timeout=timeout,
                on_joined=lambda join, signal, engine: self._on_joined(
                    url, token, join, signal, engine
                ),
            )
            if controller is not None:
                await controller.keys.settled()  # the shared key, derived while joining
        except BaseException:
            if controller is not None and self._session.state is SessionState.DISCONNECTED:
                controller.close()
            raise

    def _engine_config(self, options: RoomOptions, *, e2ee: bool = False) -> EngineConfig:
        rc = options.rtc_config
        if rc is None:
            return EngineConfig(e2ee=e2ee, dynacast=options.dynacast)
        return EngineConfig(
            e2ee=e2ee,
            dynacast=options.dynacast,
            ice_servers=[
                RTCIceServer(
                    urls=list(s.urls), username=s.username or None, credential=s.password or None
                )
                for s in rc.ice_servers
            ],
            ice_transport_type=rc.ice_transport_type,
            continual_gathering_policy=rc.continual_gathering_policy,
        )

    async def simulate_scenario(self, scenario: int) -> None:
        """Trigger a reconnection / chaos scenario, for tests (the official numbering).

        ``scenario`` is a :class:`SimulateScenarioKind` value: 0 signal reconnect (the socket
        dropped here: a resume), 1 speaker, 2 node failure, 3 server leave (the
        server sends a leave with action DISCONNECT: the room disconnects, as the
        official SDK does), 4 migration, 5 force TCP, 6 force TLS, 7 full
        reconnect (started here, like the official SDK: it does not depend on the
        server), 8 disconnect the signal on the next resume (then a resume is
        triggered here). 1 to 6 and 8 are asked of the server
        (``SignalRequest.simulate``).

        Raises:
            RuntimeError: If the room is not connected.
            ValueError: For an unknown scenario.
        """
        signal = self._session.signal
        if signal is None or self._session.state is not SessionState.CONNECTED:
            raise RuntimeError("simulate_scenario requires a connected room")
        protocol = proto_rtc.CandidateProtocol
        kind = SimulateScenarioKind
        requests: dict[int, proto_rtc.SimulateScenario | None] = {
            kind.SIMULATE_SIGNAL_RECONNECT: None,
            kind.SIMULATE_SPEAKER: proto_rtc.SimulateScenario(speaker_update=3),
            kind.SIMULATE_NODE_FAILURE: proto_rtc.SimulateScenario(node_failure=True),
            kind.SIMULATE_SERVER_LEAVE: proto_rtc.SimulateScenario(server_leave=True),
            kind.SIMULATE_MIGRATION: proto_rtc.SimulateScenario(migration=True),
            kind.SIMULATE_FORCE_TCP: proto_rtc.SimulateScenario(
                switch_candidate_protocol=protocol.TCP
            ),
            kind.SIMULATE_FORCE_TLS: proto_rtc.SimulateScenario(
                switch_candidate_protocol=protocol.TLS
            ),
            kind.SIMULATE_FULL_RECONNECT: None,
            kind.SIMULATE_DISCONNECT_SIGNAL_ON_RESUME: proto_rtc.SimulateScenario(
                disconnect_signal_on_resume=True
            ),
        }
        if scenario not in requests:
            raise ValueError(f"unknown SimulateScenarioKind {scenario!r}")
        request = requests[scenario]
        if request is not None:
            await signal.send(proto_rtc.SignalRequest(simulate=request))
        if scenario in (0, 8):
            await signal.abort()
        elif scenario == 7:
            self._session.reconnect_now("simulated full reconnect", full=True)

    async def disconnect(self, *, reason: int = DisconnectReason.CLIENT_INITIATED) -> None:
        """Leave the room. Safe to call more than once and when not connected."""
        await self._session.disconnect(reason)

    def _on_joined(
        self,
        url: str,
        token: str,
        join: proto_rtc.JoinResponse,
        signal: SignalClient,
        engine: RtcEngine,
    ) -> None:
        """The session joined: build the model and listen to the server and the engine."""
        self._url, self._token = url, token
        if self._e2ee is not None:
            self._e2ee.local_identity = join.participant.identity
            self._e2ee.sif_trailer = join.sif_trailer
        self._on_join(join)
        self._listen(signal, engine)
        logger.debug(
            "joined room %r (%s) as %r, server %s, %d other participant(s)",
            join.room.name,
            join.room.sid,
            join.participant.identity,
            self._model.server_version,
            len(join.other_participants),
        )

    def _on_rejoined(
        self, join: proto_rtc.JoinResponse, signal: SignalClient, engine: RtcEngine
    ) -> None:
        """A full reconnect joined again: apply the differences, listen to the new session."""
        if self._e2ee is not None:
            self._e2ee.sif_trailer = join.sif_trailer
        self._listen(signal, engine)
        self._data_tracks.rejoined()
        self._dispatch(self._model.apply_rejoin(join))
        self._reconcile_data_tracks()
        # before the subscriptions are bound: the server keeps settings that arrive
        # first and applies them when it subscribes us
        self._spawn(self._send_track_settings(signal))
        logger.info(
            "joined room %r again as %r (%s), %d other participant(s)",
            join.room.name,
            join.participant.identity,
            join.participant.sid,
            len(join.other_participants),
        )

    def _on_resumed(self) -> None:
        """A resume succeeded: say again what we chose for our subscriptions, as the JS SDK
        does (the server turns some resumes into a new session that knows nothing of it)."""
        signal = self._session.signal
        if signal is not None:
            self._spawn(self._send_track_settings(signal))

    def _track_settings_to_restore(self) -> list[proto_rtc.UpdateTrackSettings]:
        """The settings asked for (quality, paused) of every remote publication."""
        out: list[proto_rtc.UpdateTrackSettings] = []
        for rp in self._remote_participants.values():
            for pub in rp._track_publications.values():
                if isinstance(pub, RemoteTrackPublication):
                    settings = pub._chosen_track_settings()
                    if settings is not None:
                        out.append(settings)
        return out

    async def _send_track_settings(self, signal: SignalClient) -> None:
        for settings in self._track_settings_to_restore():
            try:
                await signal.send(proto_rtc.SignalRequest(track_setting=settings))
            except ConnectionError as e:  # the next reconnect sends them again
                logger.debug("subscription settings not sent again: %s", e)
                return

    async def _restore_after_rejoin(self, engine: RtcEngine) -> None:
        """Republish our tracks (the same publication objects) and restore subscriptions."""
        lp = self._local_participant
        republished: list[tuple[LocalTrackPublication, str]] = []
        if lp is not None:
            pubs = [
                p for p in lp._track_publications.values() if isinstance(p, LocalTrackPublication)
            ]
            for pub in pubs:
                track = pub.track
                media = track._media_track() if track is not None else None
                if track is None or media is None:
                    continue
                previous_sid = pub.sid
                options = pub._options
                add_track = lp._add_track_request(track, options)
                self._e2ee_announce(add_track)
                info = await engine.add_track(add_track)
                transceiver = engine.add_publisher_track(
                    media, track._encoder_config(options), track_sid=info.sid
                )
                self._e2ee_encrypt(previous_sid, info, transceiver)
                lp._pop_publication(previous_sid)
                pub._info = info
                pub._transceiver = transceiver
                pub._subscribed.clear()
                track._sid = info.sid
                track._sender = transceiver.sender
                track._stats_source = functools.partial(engine.transceiver_stats, transceiver)
                lp._add_publication(pub)
                republished.append((pub, previous_sid))
            if republished:
                if self._e2ee is not None:
                    await self._e2ee.keys.settled()
                await engine.negotiate_publisher()
        signal = self._session.signal
        if signal is not None:
            for request in self._subscriptions_to_restore():
                await signal.send(proto_rtc.SignalRequest(subscription=request))
        for pub, previous_sid in republished:
            self._dispatch(self._model.local_track_republished(previous_sid, pub._info))
        await self._data_tracks.restore()

    def _subscriptions_to_restore(self) -> list[proto_rtc.UpdateSubscription]:
        """With auto-subscribe, the tracks we turned off; without, the ones we turned on."""
        auto = self._options.auto_subscribe
        tracks: list[proto_models.ParticipantTracks] = []
        for rp in self._remote_participants.values():
            sids = [
                pub.sid
                for pub in rp._track_publications.values()
                if isinstance(pub, RemoteTrackPublication)
                and (pub._wants_subscription is False if auto else bool(pub._wants_subscription))
            ]
            if sids:
                tracks.append(
                    proto_models.ParticipantTracks(participant_sid=rp.sid, track_sids=sids)
                )
        if not tracks:
            return []
        return [
            proto_rtc.UpdateSubscription(
                track_sids=[sid for t in tracks for sid in t.track_sids],
                subscribe=not auto,
                participant_tracks=tracks,
            )
        ]

    def _listen(self, signal: SignalClient, engine: RtcEngine) -> None:
        """Handle the server's messages and the engine's media and data."""
        handlers: dict[str, Any] = {
            "update": self._on_participant_update,
            "speakers_changed": self._on_speakers_changed,
            "room_update": self._on_room_update,
            "connection_quality": self._on_connection_quality,
            "refresh_token": self._on_refresh_token,
            "mute": self._on_server_mute,
            "track_unpublished": self._on_server_unpublish,
            "track_subscribed": self._on_local_track_subscribed,
            "subscription_response": self._on_subscription_response,
            "stream_state_update": self._on_stream_state_update,
            "request_response": self._on_request_response,
            "subscription_permission_update": self._on_subscription_permission_update,
        }
        for kind, handler in handlers.items():
            signal.on(kind, handler)
        engine.on_data_packet = self._on_data_packet
        engine.on_remote_track = self._on_remote_track
        engine.on_remote_track_ended = self._on_remote_track_ended
        engine.on_remote_track_rejected = self._on_remote_track_rejected
        self._data_tracks.listen(signal, engine)

    def _on_join(self, join: proto_rtc.JoinResponse) -> None:
        """Start the model (and the participant views) from a JoinResponse."""
        self._dispatch(self._model.apply_join(join))
        local = self._model.local
        assert local is not None
        lp = LocalParticipant(local, self._port, events=self)
        self._local_participant = lp
        self._remote_participants = {
            identity: self._remote_view(record) for identity, record in self._model.remote.items()
        }
        self._data_encrypted.clear()
        self._encryption_status = {
            identity: self._tracks_encrypted(rp)
            for identity, rp in self._remote_participants.items()
        }
        self._reconcile_data_tracks()

    def _reconcile_data_tracks(self) -> None:
        """Tell the data tracks what every remote participant publishes now."""
        self._data_tracks.reconcile(
            {identity: record.info.data_tracks for identity, record in self._model.remote.items()}
        )

    def _remote_view(self, record: m.ParticipantRecord) -> RemoteParticipant:
        return RemoteParticipant(record, signal=self._port, events=self)

    # -- the lifecycle, as the public sees it ------------------------------------------

    def _on_session_state(self, change: StateChange) -> None:
        """Map session transitions to ConnectionState and the lifecycle events."""
        if change.new is SessionState.CONNECTED:
            resumed = change.old is SessionState.RECONNECTING
            self._set_public_state(ConnectionState.CONN_CONNECTED)
            self.emit("reconnected" if resumed else "connected")
        elif change.new is SessionState.RECONNECTING:
            self._set_public_state(ConnectionState.CONN_RECONNECTING)
            self.emit("reconnecting")
        elif change.new is SessionState.DISCONNECTED:
            local = self._model.local
            if local is not None and change.reason is not None:
                local.disconnect_reason = change.reason  # what local_participant reports
            if self._connection_state != ConnectionState.CONN_DISCONNECTED:
                self._set_public_state(ConnectionState.CONN_DISCONNECTED)
                self.emit(
                    "disconnected",
                    change.reason if change.reason is not None else DisconnectReason.UNKNOWN_REASON,
                )

    def _set_public_state(self, state: int) -> None:
        if state != self._connection_state:
            self._connection_state = state
            self.emit("connection_state_changed", state)

    async def _on_session_closed(self) -> None:
        """The engine and the signal client are closed: end what was built on them."""
        for participant in self._remote_participants.values():
            for pub in participant._track_publications.values():
                track = pub._track
                pub._track = None
                if isinstance(track, RemoteTrack):
                    self._spawn(track._end())
        lp = self._local_participant
        if lp is not None:
            for sid in list(lp._track_publications):
                local_pub = lp._pop_publication(sid)
                if isinstance(local_pub, LocalTrackPublication):
                    lp._detach(local_pub)
        self._requests.fail_all(ConnectionError("the room disconnected before the server answered"))
        if self._e2ee is not None:
            self._e2ee.close()
        if lp is not None:
            lp._cancel_waiters()
        self._data_tracks.on_disconnected()
        await self._data_tracks.aclose()
        for manager in (self._rpc, self._streams):
            if manager is not None:
                await manager.on_disconnected()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        self._remote_participants.clear()
        self._model.clear_remote()

    def _sync_state(self, engine: RtcEngine) -> proto_rtc.SyncState:
        """What we had before a resume: descriptions, subscriptions, tracks, data channels."""
        answer, offer = engine.sync_descriptions()
        auto = self._options.auto_subscribe
        track_sids: list[str] = []
        for rp in self._remote_participants.values():
            for pub in rp._track_publications.values():
                if not isinstance(pub, RemoteTrackPublication):
                    continue
                wanted = pub._wants_subscription
                # auto-subscribe: the tracks we turned off; otherwise the ones we turned on
                if (auto and wanted is False) or (not auto and (wanted or pub.subscribed)):
                    track_sids.append(pub.sid)
        published: list[proto_rtc.TrackPublishedResponse] = []
        lp = self._local_participant
        if lp is not None:
            for local_pub in lp._track_publications.values():
                track = local_pub.track if isinstance(local_pub, LocalTrackPublication) else None
                media = track._media_track() if track is not None else None
                if media is not None:
                    published.append(
                        proto_rtc.TrackPublishedResponse(cid=media.id, track=local_pub._info)
                    )
        return proto_rtc.SyncState(
            answer=answer,
            offer=offer,
            subscription=proto_rtc.UpdateSubscription(track_sids=track_sids, subscribe=not auto),
            publish_tracks=published,
            data_channels=engine.data_channel_infos(),
            datachannel_receive_states=engine.reliable_receive_states(),
            publish_data_tracks=self._data_tracks.sync_state_publications(),
        )

    # -- helpers the port uses ---------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; teardown waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _engine_or_raise(self) -> RtcEngine:
        engine = self._session.engine
        if engine is None or self._session.state is not SessionState.CONNECTED:
            raise ConnectionError("the room is not connected")
        return engine

    def _signal_or_raise(self) -> SignalClient:
        signal = self._session.signal
        if signal is None or self._session.state is not SessionState.CONNECTED:
            raise ConnectionError("the room is not connected")
        return signal

    # -- server messages -> the model -> events ----------------------------------------

    def _on_participant_update(self, update: proto_rtc.ParticipantUpdate) -> None:
        self._dispatch(self._model.apply_participant_update(update))
        self._reconcile_data_tracks()

    def _on_speakers_changed(self, msg: proto_rtc.SpeakersChanged) -> None:
        self._dispatch(self._model.apply_speakers(msg))

    def _on_room_update(self, msg: proto_rtc.RoomUpdate) -> None:
        self._dispatch(self._model.apply_room_update(msg))

    def _on_connection_quality(self, msg: proto_rtc.ConnectionQualityUpdate) -> None:
        self._dispatch(self._model.apply_connection_quality(msg))

    def _on_subscription_response(self, msg: proto_rtc.SubscriptionResponse) -> None:
        self._dispatch(self._model.apply_subscription_response(msg))

    def _on_stream_state_update(self, msg: proto_rtc.StreamStateUpdate) -> None:
        self._dispatch(self._model.apply_stream_states(msg))

    def _on_subscription_permission_update(
        self, msg: proto_rtc.SubscriptionPermissionUpdate
    ) -> None:
        # the server sends "allowed" with every subscription: only a refusal is news
        logger.log(
            logging.DEBUG if msg.allowed else logging.INFO,
            "%s to subscribe to %s of %s",
            "allowed" if msg.allowed else "not allowed",
            msg.track_sid,
            msg.participant_sid,
        )
        self._dispatch(self._model.apply_subscription_permission(msg))

    def _on_server_mute(self, msg: proto_rtc.MuteTrackRequest) -> None:
        self._dispatch(self._model.apply_mute_request(msg))

    def _on_server_unpublish(self, msg: proto_rtc.TrackUnpublishedResponse) -> None:
        self._dispatch(self._model.apply_local_unpublished(msg))

    def _on_local_track_subscribed(self, msg: proto_rtc.TrackSubscribed) -> None:
        self._dispatch(self._model.apply_local_subscribed(msg))

    def _on_remote_track(
        self, track_sid: str, rtc_track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> None:
        self._dispatch(self._model.remote_track_started(track_sid, (rtc_track, transceiver)))

    def _on_remote_track_ended(self, track_sid: str) -> None:
        self._dispatch(self._model.remote_track_ended(track_sid))

    def _on_remote_track_rejected(self, track_sid: str, reason: str) -> None:
        self._dispatch(self._model.remote_track_rejected(track_sid, reason))

    def _on_refresh_token(self, token: str) -> None:
        self._token = token
        self._session.token = token  # a resume presents the newest token
        self.emit("token_refreshed")

    def _on_request_response(self, msg: proto_rtc.RequestResponse) -> None:
        if self._data_tracks.handle_request_response(msg) or self._requests.handle(msg):
            return
        reasons = proto_rtc.RequestResponse.Reason
        if msg.reason not in (reasons.OK, reasons.QUEUED):
            logger.warning(
                "the server refused a %s request: %s (%s)",
                msg.WhichOneof("request") or "signal",
                msg.message,
                reason_name(msg.reason),
            )

    # -- the one place model events become public state and events ---------------------

    def _view(self, identity: str) -> Participant | None:
        lp = self._local_participant
        if lp is not None and lp.identity == identity:
            return lp
        return self._remote_participants.get(identity)

    def _dispatch(self, events: list[m.ModelEvent[_Media]]) -> None:
        """Apply model events to the views and emit the public events, in order."""
        for event in events:
            self._apply(event)

    def _apply(self, event: m.ModelEvent[_Media]) -> None:
        if isinstance(event, m.ParticipantConnected):
            joined = self._remote_view(self._model.remote[event.identity])
            self._remote_participants[event.identity] = joined
            self.emit("participant_connected", joined)
            self._update_encryption_status(event.identity)
        elif isinstance(event, m.ParticipantDisconnected):
            for manager in (self._rpc, self._streams):
                if manager is not None:
                    manager.on_participant_left(event.identity)
            gone = self._remote_participants.pop(event.identity, None)
            self._encryption_status.pop(event.identity, None)
            self._data_encrypted.pop(event.identity, None)
            if gone is not None:
                self.emit("participant_disconnected", gone)
        elif isinstance(event, m.ParticipantMetadataChanged):
            self._emit_for(event.identity, "participant_metadata_changed", event.old, event.new)
        elif isinstance(event, m.ParticipantNameChanged):
            self._emit_for(event.identity, "participant_name_changed", event.old, event.new)
        elif isinstance(event, m.ParticipantAttributesChanged):
            participant = self._view(event.identity)
            if participant is not None:
                self.emit("participant_attributes_changed", event.changed, participant)
        elif isinstance(event, m.LocalParticipantUpdated):
            if self._local_participant is not None:
                self._local_participant._info_updated()
        elif isinstance(event, m.TrackPublished):
            rp = self._remote_participants.get(event.identity)
            if rp is None:
                return
            pub = rp._track_publications.get(event.track_sid)
            if pub is None:
                pub = rp._new_publication(
                    self._model.remote[event.identity].tracks[event.track_sid]
                )
                rp._add_publication(pub)
            self.emit("track_published", pub, rp)
            self._update_encryption_status(event.identity)
        elif isinstance(event, m.TrackUnpublished):
            owner = self._remote_participants.get(event.identity)
            removed = owner._pop_publication(event.track_sid) if owner is not None else None
            if removed is not None:
                self.emit("track_unpublished", removed, owner)
                self._update_encryption_status(event.identity)
        elif isinstance(event, m.TrackMuted | m.TrackUnmuted):
            self._apply_mute(event.identity, event.track_sid, isinstance(event, m.TrackMuted))
        elif isinstance(event, m.TrackSubscribed):
            self._subscribe(event.identity, event.track_sid, event.media)
        elif isinstance(event, m.TrackUnsubscribed):
            self._unsubscribe(event.identity, event.track_sid)
        elif isinstance(event, m.TrackSubscriptionFailed):
            who = self._remote_participants.get(event.identity) if event.identity else None
            self.emit("track_subscription_failed", who, event.track_sid, event.error)
        elif isinstance(event, m.StreamStateChanged):
            track = self._remote_track(event.identity, event.track_sid)
            if track is not None:
                paused = StreamState.STATE_PAUSED if event.paused else StreamState.STATE_ACTIVE
                track._stream_state = paused
        elif isinstance(event, m.ActiveSpeakersChanged):
            speakers = [p for p in map(self._view, event.identities) if p is not None]
            self.emit("active_speakers_changed", speakers)
        elif isinstance(event, m.ConnectionQualityChanged):
            quality = ConnectionQuality._from_report(event.quality)
            self._emit_for(event.identity, "connection_quality_changed", quality)
        elif isinstance(event, m.ParticipantPermissionsChanged):
            participant = self._view(event.identity)
            if participant is not None:
                self.emit("participant_permissions_changed", participant, participant.permissions)
        elif isinstance(event, m.RoomMetadataChanged):
            self.emit("room_metadata_changed", event.old, event.new)
        elif isinstance(event, m.RoomUpdated):
            self.emit("room_updated")
        else:
            self._apply_local(event)

    def _apply_local(self, event: m.ModelEvent[_Media]) -> None:
        lp = self._local_participant
        if lp is None:
            return
        if isinstance(event, m.LocalTrackPublished):
            pub = lp._track_publications.get(event.track_sid)
            if isinstance(pub, LocalTrackPublication):
                self.emit("local_track_published", pub, pub.track)
        elif isinstance(event, m.LocalTrackUnpublished):
            pub = lp._pop_publication(event.track_sid)
            if not isinstance(pub, LocalTrackPublication):
                return
            if event.by_server:
                logger.info("the server unpublished our track %s", event.track_sid)
                engine = self._session.engine
                if engine is not None:
                    self._spawn(engine.remove_publisher_track(pub._transceiver, renegotiate=True))
            if self._e2ee is not None:
                self._e2ee.remove(lp.identity, event.track_sid)
            lp._detach(pub)
            self.emit("local_track_unpublished", pub)
        elif isinstance(event, m.LocalTrackRepublished):
            pub = lp._track_publications.get(event.track_sid)
            if isinstance(pub, LocalTrackPublication):
                self.emit("local_track_republished", pub, event.previous_sid)
        elif isinstance(event, m.LocalTrackMuteRequested):
            pub = lp._track_publications.get(event.track_sid)
            track = pub.track if isinstance(pub, LocalTrackPublication) else None
            if track is None:
                logger.debug("server mute for unknown local track %s", event.track_sid)
            elif event.muted:
                track.mute()
            else:
                track.unmute()
        elif isinstance(event, m.LocalTrackSubscribed):
            pub = lp._track_publications.get(event.track_sid)
            if isinstance(pub, LocalTrackPublication):
                pub._subscribed.set()
                if pub.track is not None:
                    self.emit("local_track_subscribed", pub.track)

    def _emit_for(self, identity: str, name: EventTypes, *args: Any) -> None:
        participant = self._view(identity)
        if participant is not None:
            self.emit(name, participant, *args)

    def _remote_track(self, identity: str, track_sid: str) -> RemoteTrack | None:
        rp = self._remote_participants.get(identity)
        pub = rp._track_publications.get(track_sid) if rp is not None else None
        return pub.track if isinstance(pub, RemoteTrackPublication) else None

    def _apply_mute(self, identity: str, track_sid: str, muted: bool) -> None:
        participant = self._view(identity)
        pub = participant._track_publications.get(track_sid) if participant else None
        if participant is None or pub is None:
            return
        if isinstance(pub, RemoteTrackPublication) and pub.track is not None:
            pub.track._muted = muted
        self.emit("track_muted" if muted else "track_unmuted", participant, pub)

    def _subscribe(self, identity: str, track_sid: str, media: _Media) -> None:
        rp = self._remote_participants.get(identity)
        pub = rp._track_publications.get(track_sid) if rp is not None else None
        if rp is None or not isinstance(pub, RemoteTrackPublication):
            return
        old = pub.track
        if old is not None:
            pub._track = None
            remote_audio.track_unsubscribed(old)
            self._spawn(old._end())
        rtc_track, transceiver = media
        self._e2ee_decrypt(identity, pub, transceiver)
        cls = RemoteAudioTrack if pub.kind == TrackKind.KIND_AUDIO else RemoteVideoTrack
        track = cls(pub._info, rtc_track)
        track._receiver = transceiver.receiver
        engine = self._session.engine
        if isinstance(track, RemoteVideoTrack) and engine is not None:
            track._read_frame_metadata(engine.frame_metadata(transceiver))
        if engine is not None:
            track._stats_source = functools.partial(
                engine.transceiver_stats, transceiver, track._reader
            )
        track._start()
        pub._track = track
        logger.debug("subscribed to %s of %s", track_sid, identity)
        if isinstance(track, RemoteAudioTrack):
            remote_audio.track_subscribed(track)  # played out while a PlatformAudio exists
        self.emit("track_subscribed", track, pub, rp)

    def _unsubscribe(self, identity: str, track_sid: str) -> None:
        rp = self._remote_participants.get(identity)
        pub = rp._track_publications.get(track_sid) if rp is not None else None
        track = pub.track if isinstance(pub, RemoteTrackPublication) else None
        if rp is None or pub is None or track is None:
            return
        pub._track = None
        if self._e2ee is not None:
            self._e2ee.remove(identity, track_sid)
        remote_audio.track_unsubscribed(track)
        self._spawn(track._end())
        self.emit("track_unsubscribed", track, pub, rp)

    # -- end-to-end encryption ----------------------------------------------------------

    def _e2ee_announce(self, request: proto_rtc.AddTrackRequest) -> None:
        """Announce a track we publish as encrypted (and without RED, as the other SDKs)."""
        controller = self._e2ee
        if controller is not None and controller.encrypt_tracks:
            request.encryption = proto_models.Encryption.Type.GCM
            request.disable_red = True

    def _e2ee_encrypt(
        self, previous_sid: str | None, info: proto_models.TrackInfo, transceiver: RTCRtpTransceiver
    ) -> None:
        """Encrypt what a publication sends, from its first frame (before negotiating)."""
        controller = self._e2ee
        if controller is None:
            return
        if previous_sid is not None:
            controller.remove(controller.local_identity, previous_sid)
        if info.encryption != proto_models.Encryption.Type.NONE:
            controller.encrypt_sender(info.sid, transceiver.sender)

    def _e2ee_decrypt(
        self, identity: str, pub: RemoteTrackPublication, transceiver: RTCRtpTransceiver
    ) -> None:
        """Tell a receiving m-line how the frames of the track it now carries are encrypted."""
        engine = self._session.engine
        decryption = engine.receive_decryption(transceiver) if engine is not None else None
        if decryption is None:
            return  # no end-to-end encryption in this room: frames go to the decoder as they are
        controller = self._e2ee
        if controller is None or pub._info.encryption == proto_models.Encryption.Type.NONE:
            decryption.bind(None)
            return
        try:
            controller.decrypt_receiver(identity, pub.sid, decryption, pub.mime_type)
        except ValueError as e:
            logger.warning("cannot decrypt %s of %s: %s", pub.sid, identity, e)

    def _on_e2ee_state(self, identity: str, track_sid: str, state: int) -> None:
        participant = self._view(identity)
        if participant is not None:
            self.emit("e2ee_state_changed", participant, int(state))

    @staticmethod
    def _tracks_encrypted(rp: RemoteParticipant) -> bool:
        pubs = list(rp._track_publications.values())
        return bool(pubs) and all(
            p._info.encryption != proto_models.Encryption.Type.NONE for p in pubs
        )

    def _update_encryption_status(self, identity: str) -> None:
        """``participant_encryption_status_changed`` when a remote participant's status changes.

        As the Rust SDK: encrypted when all its tracks are (and it has some) and its data
        packets are (once one arrived; one in clear makes it unencrypted for good).
        """
        rp = self._remote_participants.get(identity)
        if rp is None:
            return
        data = self._data_encrypted.get(identity, True)
        encrypted = self._tracks_encrypted(rp) and data
        if encrypted != self._encryption_status.get(identity, False):
            self._encryption_status[identity] = encrypted
            self.emit("participant_encryption_status_changed", rp, encrypted)

    def _data_encryption_seen(self, identity: str, encrypted: bool) -> None:
        before = self._data_encrypted.get(identity)
        if before is None or (before and not encrypted):
            self._data_encrypted[identity] = encrypted
            self._update_encryption_status(identity)

    # -- data packets ----------------------------------------------------------------------

    def _on_data_packet(self, packet: proto_models.DataPacket, kind: int) -> None:
        which = packet.WhichOneof("value")
        encrypted = which == "encrypted_packet"
        if encrypted:
            controller = self._e2ee
            if controller is None:
                logger.warning(
                    "dropping an encrypted data packet from %r: end-to-end encryption is off",
                    packet.participant_identity,
                )
                return
            decrypted = controller.decrypt_packet(packet)
            if decrypted is None:
                return
            packet = decrypted
            which = packet.WhichOneof("value")
        identity = packet.participant_identity
        if which in ENCRYPTED_PACKET_KINDS and identity in self._remote_participants:
            self._data_encryption_seen(identity, encrypted)
        if which == "user":
            identity = identity or packet.user.participant_identity
            self.emit(
                "data_received",
                DataPacket(
                    data=bytes(packet.user.payload),
                    kind=_DATA_KIND.get(kind, DataPacketKind.KIND_RELIABLE),
                    participant=self._remote_participants.get(identity),
                    topic=packet.user.topic,
                ),
            )
        elif which == "sip_dtmf":
            self.emit(
                "sip_dtmf_received",
                SipDTMF(
                    code=packet.sip_dtmf.code,
                    digit=packet.sip_dtmf.digit,
                    participant=self._remote_participants.get(identity),
                ),
            )
        elif which == "transcription":
            self._on_transcription(packet.transcription)
        elif which in ("rpc_request", "rpc_ack", "rpc_response"):
            self._rpc_manager().handle_packet(packet)
        elif which in ("stream_header", "stream_chunk", "stream_trailer"):
            self._stream_manager().handle_packet(packet)
        else:
            logger.debug("data packet %s from %r not handled", which, identity)

    def _on_transcription(self, message: proto_models.Transcription) -> None:
        participant = self._view(message.transcribed_participant_identity)
        publication = None
        if participant is not None:
            publication = participant._track_publications.get(message.track_id)
        self.emit("transcription_received", segments_from_proto(message), participant, publication)

    # -- misc ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = ConnectionState.Name(self._connection_state)
        return f"Room(sid={self.sid!r}, name={self.name!r}, state={state})"

    def _repr_html_(self) -> str:
        """A table of who is in the room and what each publishes, for notebooks."""
        from .jupyter import table_html
        from .participant import _publications_summary

        state = ConnectionState.Name(self._connection_state).removeprefix("CONN_").lower()
        caption = f"Room {self.name!r}, {state}" if self.name else f"Room (not joined), {state}"
        if self.sid:
            caption += f", {self.sid}"
        people: list[Participant] = list(self.remote_participants.values())
        if self._local_participant is not None:
            people.insert(0, self._local_participant)
        rows = [
            [
                p.identity,
                p.name,
                "local" if isinstance(p, LocalParticipant) else "remote",
                _publications_summary(p),
            ]
            for p in people
        ]
        return table_html(caption, ["identity", "name", "", "publishes"], rows)


class _RoomPort:
    """The session as the public objects see it (the protocols of session/ports.py).

    Participants, publications and the RPC/data-stream managers hold this, not the
    room: it is the only way they reach the connection.
    """

    def __init__(self, room: Room) -> None:
        self._room = room

    # DataPort

    @property
    def local_identity(self) -> str:
        local = self._room._model.local
        return local.identity if local is not None else ""

    @property
    def server_version(self) -> str:
        return self._room._model.server_version

    # RemotePeers

    def remote_identities(self) -> tuple[str, ...]:
        return tuple(self._room._model.remote)

    def remote_client_protocol(self, identity: str) -> int:
        record = self._room._model.remote.get(identity)
        return record.info.client_protocol if record is not None else 0

    def remote_capabilities(self, identity: str) -> frozenset[int]:
        record = self._room._model.remote.get(identity)
        return frozenset(record.info.capabilities) if record is not None else frozenset()

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        controller = self._room._e2ee
        if controller is not None:
            packet = await controller.encrypt_packet(packet)
        session = self._room._session
        if session.state is SessionState.RECONNECTING:
            engine = session.engine
            reliable = kind == proto_models.DataPacket.Kind.RELIABLE
            if engine is not None and reliable and engine.data_suspended:
                # the engine holds it back and resends it as the reconnect requires
                await engine.send_data(packet, kind)
                return
            await session.wait_connected(RECONNECT_SEND_WAIT)
        await self._room._engine_or_raise().send_data(packet, kind)

    # SignalPort

    async def send_signal(self, request: proto_rtc.SignalRequest) -> None:
        await self._room._signal_or_raise().send(request)

    def send_signal_soon(self, request: proto_rtc.SignalRequest) -> None:
        signal = self._room._signal_or_raise()

        async def send() -> None:
            try:
                await signal.send(request)
            except ConnectionError as e:
                logger.warning("could not send %s: %s", request.WhichOneof("message"), e)

        self._room._spawn(send())

    # LocalParticipantPort

    @property
    def requests(self) -> RequestTracker:
        return self._room._requests

    @property
    def rpc(self) -> RpcManager:
        return self._room._rpc_manager()

    @property
    def streams(self) -> StreamManager:
        return self._room._stream_manager()

    async def publish_data_track(self, name: str) -> LocalDataTrack:
        return await self._room._data_tracks.publish(name)

    async def publish_track(
        self,
        request: proto_rtc.AddTrackRequest,
        media: MediaStreamTrack,
        encoder: EncoderConfig,
    ) -> PublishedTrack:
        room = self._room
        engine = room._engine_or_raise()
        room._e2ee_announce(request)
        info = await engine.add_track(request)
        transceiver = engine.add_publisher_track(media, encoder, track_sid=info.sid)
        try:
            room._e2ee_encrypt(None, info, transceiver)
            if room._e2ee is not None:
                await room._e2ee.keys.settled()  # the first frames go out encrypted
            await engine.negotiate_publisher()
        except BaseException:
            if room._e2ee is not None:
                room._e2ee.remove(room._e2ee.local_identity, info.sid)
            await engine.remove_publisher_track(transceiver, renegotiate=False)
            raise
        return PublishedTrack(
            info, transceiver, stats=functools.partial(engine.transceiver_stats, transceiver)
        )

    async def unpublish_track(self, transceiver: RTCRtpTransceiver) -> None:
        engine = self._room._engine_or_raise()
        await engine.remove_publisher_track(transceiver, renegotiate=True)

    def local_track_published(self, info: proto_models.TrackInfo) -> None:
        room = self._room
        room._dispatch(room._model.local_track_published(info))

    def local_track_unpublished(self, track_sid: str) -> None:
        room = self._room
        room._dispatch(room._model.local_track_unpublished(track_sid))

    def local_track_muted(self, track_sid: str, muted: bool) -> None:
        room = self._room
        room._dispatch(room._model.local_track_muted(track_sid, muted))
