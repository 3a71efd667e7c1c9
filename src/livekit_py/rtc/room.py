"""The Room: joining a LiveKit room and keeping an accurate model of who is in it."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import MediaStreamTrack, RTCIceServer, RTCRtpTransceiver
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._compat import timeout as connect_timeout
from ..engine.engine import EngineConfig, RtcEngine
from ..errors import ConnectError
from ..log import get_logger
from ..session.requests import RequestTracker, reason_name
from ..session.rpc import RpcManager
from ..session.stream_manager import StreamManager
from ..signal.client import SignalClient, SignalOptions
from ..types import (
    ConnectionState,
    ContinualGatheringPolicy,
    DataPacketKind,
    DisconnectReason,
    IceServer,
    IceTransportType,
    StreamState,
    TrackKind,
)
from .data_stream import ByteStreamHandler, TextStreamHandler
from .e2ee import E2EEOptions
from .event_emitter import EventEmitter
from .participant import LocalParticipant, Participant, RemoteParticipant
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
class RoomOptions:
    """How :meth:`Room.connect` joins.

    ``connect_timeout`` bounds each step of the join (the signal handshake, then
    the media connection); None means 10 seconds each. E2EE options are accepted
    for API compatibility; livekit-py does not encrypt media end to end and
    rejects a connect that asks for it.
    """

    auto_subscribe: bool = True
    dynacast: bool = False
    e2ee: E2EEOptions | None = None
    encryption: E2EEOptions | None = None
    rtc_config: RtcConfiguration | None = None
    connect_timeout: float | None = None


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
    """Statistics of both peer connections.

    Each list holds aiortc's stats objects (``RTCOutboundRtpStreamStats``,
    ``RTCInboundRtpStreamStats``, ``RTCTransportStats``, ...), whose fields
    follow the W3C WebRTC statistics names, rather than the official SDK's
    protobuf ``RtcStats`` messages.
    """

    publisher_stats: list[Any]
    subscriber_stats: list[Any]


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
]

# How long a transport failure waits for the server's leave message (and its reason).
TRANSPORT_GRACE = 0.5

_EVENT_NAMES: frozenset[str] = frozenset(EventTypes.__args__)  # type: ignore[attr-defined]

# livekit-protocol DataPacket.Kind -> public DataPacketKind (same numbers, kept explicit).
_DATA_KIND: dict[int, int] = {
    proto_models.DataPacket.Kind.RELIABLE: DataPacketKind.KIND_RELIABLE,
    proto_models.DataPacket.Kind.LOSSY: DataPacketKind.KIND_LOSSY,
}


class Room(EventEmitter[EventTypes]):
    """A LiveKit room as seen by one participant.

    ``connect`` joins; the room then mirrors the server's view of participants
    and emits events (see :data:`EventTypes`) as they change. Event handlers are
    plain functions registered with :meth:`on`.
    """

    _valid_events = _EVENT_NAMES

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        self._loop = loop
        self._info = proto_models.Room()
        self._connection_state: int = ConnectionState.CONN_DISCONNECTED
        self._local_participant: LocalParticipant | None = None
        self._remote_participants: dict[str, RemoteParticipant] = {}
        self._signal: SignalClient | None = None
        self._engine: RtcEngine | None = None
        self._token: str | None = None
        self._url: str | None = None
        self._options = RoomOptions()
        self._active_speakers: dict[str, float] = {}
        self._connecting = False
        self._leaving: asyncio.Event | None = None
        self._disconnect_reason: int | None = None
        self._disconnect_task: asyncio.Task[None] | None = None
        self._server_info = proto_models.ServerInfo()
        self._pending_remote: dict[str, tuple[MediaStreamTrack, RTCRtpTransceiver]] = {}
        self._rpc: RpcManager | None = None
        self._streams: StreamManager | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._requests = RequestTracker()
        # track sid -> whether the publisher lets us subscribe (from the server's
        # SubscriptionPermissionUpdate); tracks the server said nothing about are absent
        self._subscription_allowed: dict[str, bool] = {}

    # -- properties -------------------------------------------------------------

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
    def e2ee_manager(self) -> None:
        """End-to-end encryption is not available in livekit-py: always None."""
        return None

    # -- RPC and data streams (session/rpc.py, session/stream_manager.py) -------------

    def _rpc_manager(self) -> RpcManager:
        if self._rpc is None:
            self._rpc = RpcManager(_RoomDataPort(self))
        return self._rpc

    def _stream_manager(self) -> StreamManager:
        if self._streams is None:
            self._streams = StreamManager(_RoomDataPort(self))
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
        engine = self._engine
        if engine is None or not self.isconnected():
            raise RuntimeError("the room isn't connected")
        publisher, subscriber = await engine.get_stats()
        return RtcStats(list(publisher.values()), list(subscriber.values()))

    def on(self, event: EventTypes, callback: Any = None) -> Any:
        """Register a plain (non-async) ``callback`` for ``event``, or use as a decorator."""
        return super().on(event, callback)

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
        if options.e2ee is not None or options.encryption is not None:
            raise ValueError("livekit-py does not support end-to-end encryption (e2ee/encryption)")
        if self._connecting or self.isconnected():
            raise RuntimeError("the room is already connected or connecting")
        self._connecting = True
        self._options = options
        timeout = options.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        signal = SignalClient()
        engine: RtcEngine | None = None
        try:
            join = await signal.join(
                url,
                token,
                SignalOptions(auto_subscribe=options.auto_subscribe, connect_timeout=timeout),
            )
            self._signal = signal
            self._url, self._token = url, token
            self._on_join(join)
            engine = RtcEngine(signal, self._engine_config(options))
            self._engine = engine
            engine.on_data_packet = self._on_data_packet
            engine.on_failure = self._on_engine_failure
            engine.on_remote_track = self._on_remote_track
            engine.on_remote_track_ended = self._on_remote_track_ended
            signal.on_close = self._on_signal_closed
            engine.start(join)
            try:
                async with connect_timeout(timeout):
                    await engine.wait_connected()
            except asyncio.TimeoutError:
                raise ConnectError(
                    f"the media connection to the LiveKit server was not established within "
                    f"{timeout:g}s (ICE/DTLS did not complete)"
                ) from None
        except BaseException:
            await self._teardown(send_leave=True)
            raise
        finally:
            self._connecting = False

        self._set_state(ConnectionState.CONN_CONNECTED)
        self.emit("connected")

    def _engine_config(self, options: RoomOptions) -> EngineConfig:
        rc = options.rtc_config
        if rc is None:
            return EngineConfig()
        return EngineConfig(
            ice_servers=[
                RTCIceServer(
                    urls=list(s.urls), username=s.username or None, credential=s.password or None
                )
                for s in rc.ice_servers
            ],
            ice_transport_type=rc.ice_transport_type,
            continual_gathering_policy=rc.continual_gathering_policy,
        )

    async def disconnect(self, *, reason: int = DisconnectReason.CLIENT_INITIATED) -> None:
        """Leave the room. Safe to call more than once and when not connected."""
        if not self.isconnected() and self._signal is None:
            return
        await self._disconnect(reason, send_leave=True)

    async def _disconnect(self, reason: int, *, send_leave: bool) -> None:
        if self._leaving is not None:
            # Another path is already leaving (e.g. the server's reply to our
            # leave request): let that one finish and report.
            await self._leaving.wait()
            return
        was_connected = self.isconnected()
        self._leaving = asyncio.Event()
        try:
            await self._teardown(send_leave=send_leave)
        finally:
            self._leaving.set()
            self._leaving = None
        if self._local_participant is not None:
            self._local_participant._disconnect_reason = reason
        if was_connected:
            self._set_state(ConnectionState.CONN_DISCONNECTED)
            self.emit("disconnected", reason)

    async def _teardown(self, *, send_leave: bool) -> None:
        """Close the engine and the signal socket and forget the remote participants."""
        engine, signal = self._engine, self._signal
        self._engine = None
        self._signal = None
        if signal is not None:
            signal.on_close = None
        if engine is not None:
            engine.on_failure = None
        leave = (
            proto_rtc.LeaveRequest(
                can_reconnect=False,
                reason=proto_models.DisconnectReason.CLIENT_INITIATED,
                action=proto_rtc.LeaveRequest.Action.DISCONNECT,
            )
            if send_leave
            else None
        )
        # Shield the cleanup so that a cancelled connect still closes everything.
        cleanup = asyncio.ensure_future(self._close_parts(engine, signal, leave))
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup
            raise
        self._end_all_tracks()
        self._requests.fail_all(ConnectionError("the room disconnected before the server answered"))
        lp = self._local_participant
        if lp is not None:
            for _, waiter in lp._info_waiters:
                waiter.cancel()
        for manager in (self._rpc, self._streams):
            if manager is not None:
                await manager.on_disconnected()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        self._remote_participants.clear()
        self._active_speakers.clear()
        self._pending_remote.clear()
        self._subscription_allowed.clear()

    def _end_all_tracks(self) -> None:
        """Remote tracks end (their streams stop); local publications are dropped."""
        for participant in self._remote_participants.values():
            for pub in participant._track_publications.values():
                track = pub._track
                pub._track = None
                if isinstance(track, RemoteTrack):
                    self._spawn(track._end())
        lp = self._local_participant
        if lp is not None:
            for pub in list(lp._track_publications.values()):
                if isinstance(pub, LocalTrackPublication):
                    lp._detach(pub)
            lp._track_publications.clear()

    @staticmethod
    async def _close_parts(
        engine: RtcEngine | None, signal: SignalClient | None, leave: proto_rtc.LeaveRequest | None
    ) -> None:
        if engine is not None:
            engine.begin_close()
        if signal is not None:
            await signal.close(leave)
        if engine is not None:
            await engine.close()

    def _schedule_disconnect(self, reason: int, why: str, *, grace: float = 0.0) -> None:
        """Disconnect from inside a callback (server leave, lost socket, failed media).

        The server closes the media connections right after telling us why we
        are leaving, and the two can arrive in either order; a disconnect caused
        by a transport waits ``grace`` seconds so that the server's reason, if
        one is on its way, is the one reported.
        """
        if not self.isconnected() or self._leaving is not None:
            return
        if grace == 0.0 or self._disconnect_reason is None:
            self._disconnect_reason = reason
        if self._disconnect_task is not None and not self._disconnect_task.done():
            return
        logger.info("disconnecting: %s", why)

        async def run() -> None:
            if grace:
                await asyncio.sleep(grace)
            final = self._disconnect_reason
            self._disconnect_reason = None
            await self._disconnect(final if final is not None else reason, send_leave=False)

        self._disconnect_task = asyncio.get_running_loop().create_task(
            run(), name="livekit_py.room.disconnect"
        )

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background; teardown waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _send_soon(self, request: proto_rtc.SignalRequest) -> None:
        """Send a signal request from synchronous code (errors are logged)."""
        signal = self._signal_or_raise()

        async def send() -> None:
            try:
                await signal.send(request)
            except ConnectionError as e:
                logger.warning("could not send %s: %s", request.WhichOneof("message"), e)

        self._spawn(send())

    def _set_state(self, state: int) -> None:
        if state != self._connection_state:
            self._connection_state = state
            self.emit("connection_state_changed", state)

    def _engine_or_raise(self) -> RtcEngine:
        if self._engine is None or not self.isconnected():
            raise ConnectionError("the room is not connected")
        return self._engine

    def _signal_or_raise(self) -> SignalClient:
        if self._signal is None or not self.isconnected():
            raise ConnectionError("the room is not connected")
        return self._signal

    # -- the model ------------------------------------------------------------------------

    def _on_join(self, join: proto_rtc.JoinResponse) -> None:
        self._info.CopyFrom(join.room)
        self._server_info.CopyFrom(join.server_info)
        self._local_participant = LocalParticipant(join.participant, self)
        self._remote_participants = {}
        for info in join.other_participants:
            self._remote_participants[info.identity] = RemoteParticipant(info, self)
        signal = self._signal
        assert signal is not None
        signal.on("update", self._on_participant_update)
        signal.on("leave", self._on_leave)
        signal.on("speakers_changed", self._on_speakers_changed)
        signal.on("room_update", self._on_room_update)
        signal.on("connection_quality", self._on_connection_quality)
        signal.on("refresh_token", self._on_refresh_token)
        signal.on("mute", self._on_server_mute)
        signal.on("track_unpublished", self._on_server_unpublish)
        signal.on("track_subscribed", self._on_local_track_subscribed)
        signal.on("subscription_response", self._on_subscription_response)
        signal.on("stream_state_update", self._on_stream_state_update)
        signal.on("request_response", self._on_request_response)
        signal.on("subscription_permission_update", self._on_subscription_permission_update)
        logger.info(
            "joined room %r (%s) as %r, server %s, %d other participant(s)",
            self._info.name,
            self._info.sid,
            join.participant.identity,
            join.server_info.version or join.server_version,
            len(join.other_participants),
        )

    def _participant_by_sid(self, sid: str) -> Participant | None:
        lp = self._local_participant
        if lp is not None and lp.sid == sid:
            return lp
        return next((p for p in self._remote_participants.values() if p.sid == sid), None)

    def _participant_by_identity(self, identity: str) -> Participant | None:
        lp = self._local_participant
        if lp is not None and lp.identity == identity:
            return lp
        return self._remote_participants.get(identity)

    def _on_participant_update(self, update: proto_rtc.ParticipantUpdate) -> None:
        lp = self._local_participant
        for info in update.participants:
            if lp is not None and (info.identity == lp.identity or info.sid == lp.sid):
                if info.state != proto_models.ParticipantInfo.State.DISCONNECTED:
                    lp._apply_info(info, self)
                continue
            rp = self._remote_participants.get(info.identity)
            if info.state == proto_models.ParticipantInfo.State.DISCONNECTED:
                if rp is not None and rp.sid == info.sid:
                    self._participant_left(rp, info.disconnect_reason)
                continue
            if rp is not None and rp.sid != info.sid:
                # Same identity, new session: the old one is gone.
                self._participant_left(rp, proto_models.DisconnectReason.DUPLICATE_IDENTITY)
                rp = None
            if rp is None:
                rp = RemoteParticipant(info, self)
                self._remote_participants[info.identity] = rp
                self.emit("participant_connected", rp)
                for pub in list(rp.track_publications.values()):
                    self.emit("track_published", pub, rp)
                    self._attach_pending_track(rp, pub)
            elif info.version >= rp._info.version:
                rp._apply_info(info, self)
                rp._sync_tracks(info, self)

    def _participant_left(self, rp: RemoteParticipant, reason: int) -> None:
        for sid in list(rp._track_publications):
            self._remove_remote_publication(rp, sid)
        for manager in (self._rpc, self._streams):
            if manager is not None:
                manager.on_participant_left(rp.identity)
        self._remote_participants.pop(rp.identity, None)
        self._active_speakers.pop(rp.sid, None)
        rp._mark_disconnected(reason)
        self.emit("participant_disconnected", rp)

    # -- remote tracks ------------------------------------------------------------------

    def _find_publication(
        self, track_sid: str
    ) -> tuple[RemoteParticipant, RemoteTrackPublication] | None:
        for rp in self._remote_participants.values():
            pub = rp._track_publications.get(track_sid)
            if isinstance(pub, RemoteTrackPublication):
                return rp, pub
        return None

    def _on_remote_track(
        self, track_sid: str, rtc_track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> None:
        found = self._find_publication(track_sid)
        if found is None:
            # The participant update announcing the track has not arrived yet.
            self._pending_remote[track_sid] = (rtc_track, transceiver)
            return
        self._subscribe(found[0], found[1], rtc_track, transceiver)

    def _attach_pending_track(self, rp: RemoteParticipant, pub: RemoteTrackPublication) -> None:
        pending = self._pending_remote.pop(pub.sid, None)
        if pending is not None:
            self._subscribe(rp, pub, *pending)

    def _subscribe(
        self,
        rp: RemoteParticipant,
        pub: RemoteTrackPublication,
        rtc_track: MediaStreamTrack,
        transceiver: RTCRtpTransceiver,
    ) -> None:
        old = pub.track
        if old is not None:
            pub._track = None
            self._spawn(old._end())
        cls = RemoteAudioTrack if pub.kind == TrackKind.KIND_AUDIO else RemoteVideoTrack
        track = cls(pub._info, rtc_track)
        track._receiver = transceiver.receiver
        track._start()
        pub._track = track
        logger.debug("subscribed to %s of %s", pub.sid, rp.identity)
        self.emit("track_subscribed", track, pub, rp)

    def _on_remote_track_ended(self, track_sid: str) -> None:
        self._pending_remote.pop(track_sid, None)
        found = self._find_publication(track_sid)
        if found is not None:
            self._unsubscribe(*found)

    def _unsubscribe(self, rp: RemoteParticipant, pub: RemoteTrackPublication) -> None:
        track = pub.track
        if track is None:
            return
        pub._track = None
        self._spawn(track._end())
        self.emit("track_unsubscribed", track, pub, rp)

    def _remove_remote_publication(self, rp: RemoteParticipant, track_sid: str) -> None:
        pub = rp._track_publications.get(track_sid)
        if not isinstance(pub, RemoteTrackPublication):
            return
        self._unsubscribe(rp, pub)
        del rp._track_publications[track_sid]
        self._subscription_allowed.pop(track_sid, None)
        self.emit("track_unpublished", pub, rp)

    def _on_subscription_response(self, msg: proto_rtc.SubscriptionResponse) -> None:
        if not msg.err:
            return
        found = self._find_publication(msg.track_sid)
        error = proto_models.SubscriptionError.Name(msg.err)
        participant = found[0] if found is not None else None
        self.emit("track_subscription_failed", participant, msg.track_sid, error)

    def _on_stream_state_update(self, msg: proto_rtc.StreamStateUpdate) -> None:
        for info in msg.stream_states:
            found = self._find_publication(info.track_sid)
            track = found[1].track if found is not None else None
            if track is not None:
                paused = info.state == proto_rtc.StreamState.PAUSED
                track._stream_state = (
                    StreamState.STATE_PAUSED if paused else StreamState.STATE_ACTIVE
                )

    # -- local tracks, as the server sees them ------------------------------------------

    def _on_server_mute(self, msg: proto_rtc.MuteTrackRequest) -> None:
        lp = self._local_participant
        pub = lp._track_publications.get(msg.sid) if lp is not None else None
        track = pub.track if isinstance(pub, LocalTrackPublication) else None
        if track is None:
            logger.debug("server mute for unknown local track %s", msg.sid)
            return
        if msg.muted:
            track.mute()
        else:
            track.unmute()

    def _on_server_unpublish(self, msg: proto_rtc.TrackUnpublishedResponse) -> None:
        lp = self._local_participant
        pub = lp._track_publications.get(msg.track_sid) if lp is not None else None
        if lp is None or not isinstance(pub, LocalTrackPublication):
            return
        logger.info("the server unpublished our track %s", msg.track_sid)
        del lp._track_publications[msg.track_sid]
        engine = self._engine
        if engine is not None:
            self._spawn(engine.remove_publisher_track(pub._transceiver, renegotiate=True))
        lp._detach(pub)
        self.emit("local_track_unpublished", pub)

    def _on_local_track_subscribed(self, msg: proto_rtc.TrackSubscribed) -> None:
        lp = self._local_participant
        pub = lp._track_publications.get(msg.track_sid) if lp is not None else None
        if not isinstance(pub, LocalTrackPublication):
            return
        first = not pub._subscribed.is_set()
        pub._subscribed.set()
        if first and pub.track is not None:
            self.emit("local_track_subscribed", pub.track)

    def _on_leave(self, leave: proto_rtc.LeaveRequest) -> None:
        reason = leave.reason or DisconnectReason.UNKNOWN_REASON
        action = proto_rtc.LeaveRequest.Action.Name(leave.action)
        self._schedule_disconnect(
            reason,
            f"the server asked us to leave ({proto_models.DisconnectReason.Name(leave.reason)}, "
            f"action {action})",
        )

    def _on_signal_closed(self, why: str) -> None:
        self._schedule_disconnect(DisconnectReason.SIGNAL_CLOSE, why, grace=TRANSPORT_GRACE)

    def _on_engine_failure(self, why: str) -> None:
        self._schedule_disconnect(DisconnectReason.MEDIA_FAILURE, why, grace=TRANSPORT_GRACE)

    def _on_speakers_changed(self, msg: proto_rtc.SpeakersChanged) -> None:
        for speaker in msg.speakers:
            if speaker.active:
                self._active_speakers[speaker.sid] = speaker.level
            else:
                self._active_speakers.pop(speaker.sid, None)
        speakers: list[Participant] = []
        for sid in sorted(self._active_speakers, key=lambda s: -self._active_speakers[s]):
            participant = self._participant_by_sid(sid)
            if participant is not None:
                speakers.append(participant)
        for participant in [self._local_participant, *self._remote_participants.values()]:
            if participant is not None:
                participant._audio_level = self._active_speakers.get(participant.sid, 0.0)
        self.emit("active_speakers_changed", speakers)

    def _on_room_update(self, msg: proto_rtc.RoomUpdate) -> None:
        old_metadata = self._info.metadata
        self._info.CopyFrom(msg.room)
        if old_metadata != msg.room.metadata:
            self.emit("room_metadata_changed", old_metadata, msg.room.metadata)
        self.emit("room_updated")

    def _on_connection_quality(self, msg: proto_rtc.ConnectionQualityUpdate) -> None:
        for update in msg.updates:
            participant = self._participant_by_sid(update.participant_sid)
            if participant is None:
                continue
            participant._connection_quality = int(update.quality)
            self.emit("connection_quality_changed", participant, int(update.quality))

    def _on_refresh_token(self, token: str) -> None:
        self._token = token
        self.emit("token_refreshed")

    def _on_data_packet(self, packet: proto_models.DataPacket, kind: int) -> None:
        which = packet.WhichOneof("value")
        identity = packet.participant_identity
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
        participant = self._participant_by_identity(message.transcribed_participant_identity)
        publication = None
        if participant is not None:
            publication = participant._track_publications.get(message.track_id)
        self.emit("transcription_received", segments_from_proto(message), participant, publication)

    # -- request responses and subscription permissions ---------------------------------

    def _on_request_response(self, msg: proto_rtc.RequestResponse) -> None:
        if self._requests.handle(msg):
            return
        reasons = proto_rtc.RequestResponse.Reason
        if msg.reason not in (reasons.OK, reasons.QUEUED):
            logger.warning(
                "the server refused a %s request: %s (%s)",
                msg.WhichOneof("request") or "signal",
                msg.message,
                reason_name(msg.reason),
            )

    def _on_subscription_permission_update(
        self, msg: proto_rtc.SubscriptionPermissionUpdate
    ) -> None:
        self._subscription_allowed[msg.track_sid] = msg.allowed
        found = self._find_publication(msg.track_sid)
        if found is None:
            logger.debug("permission update for unknown track %s", msg.track_sid)
            return
        rp, pub = found
        logger.info(
            "%s to subscribe to %s of %s",
            "allowed" if msg.allowed else "not allowed",
            msg.track_sid,
            rp.identity,
        )
        if msg.allowed:
            return
        # The server stops forwarding the track; drop it now rather than when
        # the subscriber transceiver goes away.
        self._pending_remote.pop(msg.track_sid, None)
        self._unsubscribe(rp, pub)
        self.emit(
            "track_subscription_failed",
            rp,
            msg.track_sid,
            f"{rp.identity} does not allow us to subscribe to track {msg.track_sid}",
        )

    # -- misc ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = ConnectionState.Name(self._connection_state)
        return f"Room(sid={self.sid!r}, name={self.name!r}, state={state})"


class _RoomDataPort:
    """The :class:`~livekit_py.session.ports.DataPort` the room's RPC and stream
    managers send through (a stand-in until the session object provides it)."""

    def __init__(self, room: Room) -> None:
        self._room = room

    @property
    def local_identity(self) -> str:
        local = self._room._local_participant
        return local.identity if local is not None else ""

    @property
    def server_version(self) -> str:
        return self._room._server_info.version

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        await self._room._engine_or_raise().send_data(packet, kind)
