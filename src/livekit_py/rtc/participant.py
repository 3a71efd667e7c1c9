"""Participants of a room: the local one (us) and the remote ones."""

from __future__ import annotations

import asyncio
import datetime
import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._proto.livekit_py_types_pb2 import DegradationPreference as _ProtoDegradation
from ..log import get_logger
from ..session.model import ParticipantRecord
from ..session.ports import DataPort, LocalParticipantPort, RoomEvents, SignalPort
from ..session.requests import SignalRequestError, reason_name
from ..session.rpc import F
from ..session.track_follower import ParticipantTrackFollower
from ..types import ConnectionQuality as _ProtoConnectionQuality
from ..types import DisconnectReason as DisconnectReason  # the official module exports it
from ..types import (
    ParticipantKind,
    ParticipantKindDetail,
    ParticipantState,
    ParticipantTrackPermission,
    TrackKind,
    TrackPublishOptions,
    TrackSource,
)
from .data_stream import ByteStreamInfo, ByteStreamWriter, TextStreamInfo, TextStreamWriter
from .data_track import LocalDataTrack
from .data_track import PublishDataTrackError as PublishDataTrackError  # the official's home
from .rpc import RpcInterceptor
from .track import LocalTrack, packet_trailer_features
from .track_publication import (
    SOURCE_TO_PROTO,
    LocalTrackPublication,
    RemoteTrackPublication,
    TrackPublication,
)
from .transcription import Transcription, transcription_to_proto

if TYPE_CHECKING:
    from ..media.frame_source import FrameFanout

logger = get_logger("room.participant")

# How long set_metadata/set_name/set_attributes wait for the server's answer, and
# then (once it accepted) for the participant update that carries the change.
UPDATE_RESPONSE_TIMEOUT = 10.0
UPDATE_APPLY_TIMEOUT = 5.0

_UINT32_MAX = 2**32 - 1


class ConnectionQuality(enum.IntEnum):
    """A participant's connection quality, as the server reports it.

    As in the official SDK an ``IntEnum``, with ``QUALITY_UNKNOWN`` (-1) until the server's
    first report.  ``Name``/``Value``/``keys``/``values``/``items`` are kept from the
    protobuf enum it used to be, so code written against that keeps working.
    """

    QUALITY_UNKNOWN = -1
    QUALITY_POOR = _ProtoConnectionQuality.QUALITY_POOR
    QUALITY_GOOD = _ProtoConnectionQuality.QUALITY_GOOD
    QUALITY_EXCELLENT = _ProtoConnectionQuality.QUALITY_EXCELLENT
    QUALITY_LOST = _ProtoConnectionQuality.QUALITY_LOST

    @classmethod
    def Name(cls, number: int) -> str:
        """The member name of ``number``.

        Raises:
            ValueError: If no member has that value.
        """
        try:
            return cls(number).name
        except ValueError:
            raise ValueError(f"ConnectionQuality has no value {number!r}") from None

    @classmethod
    def Value(cls, name: str) -> int:
        """The value of the member called ``name``.

        Raises:
            ValueError: If no member has that name.
        """
        member = cls.__members__.get(name)
        if member is None:
            raise ValueError(f"ConnectionQuality has no member {name!r}")
        return int(member)

    @classmethod
    def keys(cls) -> list[str]:
        return list(cls.__members__)

    @classmethod
    def values(cls) -> list[int]:
        return [int(member) for member in cls]

    @classmethod
    def items(cls) -> list[tuple[str, int]]:
        return [(member.name, int(member)) for member in cls]

    @classmethod
    def _from_report(cls, value: int) -> ConnectionQuality:
        """A reported quality; numbers this SDK does not know read as QUALITY_UNKNOWN."""
        try:
            return cls(value)
        except ValueError:
            return cls.QUALITY_UNKNOWN


class DegradationPreference(enum.IntEnum):
    """What a video encoder gives up first when it cannot keep up (the official names).

    Given as ``TrackPublishOptions.degradation_preference``; unset, a camera track
    uses MAINTAIN_FRAMERATE, a screen share MAINTAIN_RESOLUTION and any other source
    BALANCED (the Rust SDK's defaults). In the official SDK libwebrtc acts on it. In
    livekit-py every value is accepted and the encoders act the same for all: the
    resolution is never lowered, a lower bandwidth estimate lowers the bitrate (the
    picture quality) rather than the frame rate, and frames that wait longer than
    100 ms for a busy encoder are dropped before encoding. That is what
    MAINTAIN_RESOLUTION and MAINTAIN_FRAMERATE_AND_RESOLUTION ask for; with BALANCED
    and MAINTAIN_FRAMERATE the resolution is kept too.
    """

    BALANCED = _ProtoDegradation.DEGRADATION_PREFERENCE_BALANCED
    """Trade some frame rate and some resolution (livekit-py keeps the resolution)."""
    MAINTAIN_FRAMERATE = _ProtoDegradation.DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE
    """Lower the resolution to keep the frame rate (livekit-py keeps the resolution)."""
    MAINTAIN_RESOLUTION = _ProtoDegradation.DEGRADATION_PREFERENCE_MAINTAIN_RESOLUTION
    """Lower the frame rate to keep the resolution."""
    MAINTAIN_FRAMERATE_AND_RESOLUTION = (
        _ProtoDegradation.DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE_AND_RESOLUTION
    )
    """Keep both; frames may be dropped before encoding when the encoder falls behind."""


class PublishDTMFError(Exception):
    """A DTMF tone could not be sent (e.g. the room is not connected)."""


class PublishTranscriptionError(Exception):
    """A transcription could not be sent (e.g. the room is not connected)."""


# livekit-protocol's ParticipantInfo.Kind numbers -> the public ParticipantKind.
_KIND_FROM_PROTO: dict[int, int] = {
    proto_models.ParticipantInfo.Kind.STANDARD: ParticipantKind.PARTICIPANT_KIND_STANDARD,
    proto_models.ParticipantInfo.Kind.INGRESS: ParticipantKind.PARTICIPANT_KIND_INGRESS,
    proto_models.ParticipantInfo.Kind.EGRESS: ParticipantKind.PARTICIPANT_KIND_EGRESS,
    proto_models.ParticipantInfo.Kind.SIP: ParticipantKind.PARTICIPANT_KIND_SIP,
    proto_models.ParticipantInfo.Kind.AGENT: ParticipantKind.PARTICIPANT_KIND_AGENT,
}
_CONNECTOR_KIND = proto_models.ParticipantInfo.Kind.Value("CONNECTOR")
_KIND_FROM_PROTO[_CONNECTOR_KIND] = ParticipantKind.PARTICIPANT_KIND_CONNECTOR
if "BRIDGE" in proto_models.ParticipantInfo.Kind.keys():
    _KIND_FROM_PROTO[proto_models.ParticipantInfo.Kind.Value("BRIDGE")] = (
        ParticipantKind.PARTICIPANT_KIND_BRIDGE
    )
# ParticipantInfo.State and .KindDetail have the public enums' numbers
_STATES = frozenset(ParticipantState.values())
_KIND_DETAILS = frozenset(ParticipantKindDetail.values())


class Participant:
    """State shared by local and remote participants: a view of the room model's record."""

    def __init__(
        self,
        info: ParticipantRecord | proto_models.ParticipantInfo,
        *,
        events: RoomEvents | None = None,
    ) -> None:
        self._record = (
            info if isinstance(info, ParticipantRecord) else ParticipantRecord.from_info(info)
        )
        self._track_publications: dict[str, TrackPublication] = {}
        # the room's events, for following this participant's tracks (None: no room)
        self._events = events

    @property
    def _info(self) -> proto_models.ParticipantInfo:
        return self._record.info

    @property
    def sid(self) -> str:
        """The participant's server id (``PA_...``)."""
        return self._info.sid

    @property
    def identity(self) -> str:
        """The identity from the participant's access token; unique in the room."""
        return self._info.identity

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def metadata(self) -> str:
        return self._info.metadata

    @property
    def attributes(self) -> dict[str, str]:
        """The participant's key/value attributes (a copy)."""
        return dict(self._info.attributes)

    @property
    def kind(self) -> int:
        """A :class:`ParticipantKind` value."""
        return _KIND_FROM_PROTO.get(self._info.kind, ParticipantKind.PARTICIPANT_KIND_STANDARD)

    @property
    def kind_details(self) -> list[int]:
        """:class:`ParticipantKindDetail` values refining :attr:`kind` (e.g. a cloud agent,
        a forwarded participant, a WhatsApp or Twilio connector, an RTSP bridge)."""
        return [detail for detail in self._info.kind_details if detail in _KIND_DETAILS]

    @property
    def state(self) -> int:
        """The participant's :class:`ParticipantState` on the server: joining, joined,
        active (media connected) or disconnected."""
        state = int(self._info.state)
        return state if state in _STATES else ParticipantState.PARTICIPANT_STATE_JOINING

    @property
    def joined_at(self) -> datetime.datetime | None:
        """When the participant joined the room (UTC, millisecond precision), or None
        when the server has not said."""
        info = self._info
        millis = info.joined_at_ms or info.joined_at * 1000
        if millis == 0:
            return None
        return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)

    @property
    def permissions(self) -> proto_models.ParticipantPermission:
        """The participant's permissions in the room (a copy of the server's
        ``ParticipantPermission``: ``can_subscribe``, ``can_publish``,
        ``can_publish_data``, ``can_publish_sources``, ``hidden``,
        ``can_update_metadata``, ``can_subscribe_metrics``, ...)."""
        permission = proto_models.ParticipantPermission()
        permission.CopyFrom(self._info.permission)
        return permission

    @property
    def track_publications(self) -> Mapping[str, TrackPublication]:
        """The participant's publications keyed by track sid."""
        return dict(self._track_publications)

    @property
    def disconnect_reason(self) -> int | None:
        """Why the participant left (a :class:`DisconnectReason`), None while present."""
        return self._record.disconnect_reason

    @property
    def connection_quality(self) -> ConnectionQuality:
        """The last :class:`ConnectionQuality` the server reported;
        ``QUALITY_UNKNOWN`` before its first report."""
        return ConnectionQuality._from_report(self._record.connection_quality)

    @property
    def audio_level(self) -> float:
        """The audio level from the last active-speaker update (0 when not speaking)."""
        return self._record.audio_level

    @property
    def is_speaking(self) -> bool:
        return self.audio_level > 0

    def _follow_track(self, source: int, kind: int) -> FrameFanout:
        """Frames of this participant's current track of ``source`` (see track_follower)."""
        return ParticipantTrackFollower(
            self._events, self, source, kind, local=isinstance(self, LocalParticipant)
        )

    def _add_publication(self, publication: TrackPublication) -> None:
        self._track_publications[publication.sid] = publication

    def _pop_publication(self, track_sid: str) -> TrackPublication | None:
        return self._track_publications.pop(track_sid, None)

    def __repr__(self) -> str:
        cls = type(self).__name__
        return f"{cls}(sid={self.sid!r}, identity={self.identity!r}, name={self.name!r})"

    def _repr_html_(self) -> str:
        """A table of what the participant publishes, for rich display in notebooks."""
        from .jupyter import table_html

        caption = f"{type(self).__name__} {self.identity!r}"
        if self.name and self.name != self.identity:
            caption += f" ({self.name})"
        caption += f", {self.sid or 'no sid yet'}"
        rows = [[pub.sid, *_publication_cells(pub)] for pub in self._track_publications.values()]
        if not rows:
            caption += ": publishes nothing"
        return table_html(caption, ["track", "kind", "source", "name", "details"], rows)


class RemoteParticipant(Participant):
    """Another participant in the room."""

    def __init__(
        self,
        info: ParticipantRecord | proto_models.ParticipantInfo,
        *,
        signal: SignalPort | None = None,
        events: RoomEvents | None = None,
    ) -> None:
        super().__init__(info, events=events)
        self._signal = signal
        for track_info in self._record.tracks.values():
            self._add_publication(self._new_publication(track_info))

    def _new_publication(self, info: proto_models.TrackInfo) -> RemoteTrackPublication:
        """A view of ``info`` (the model's TrackInfo of one of this participant's tracks)."""
        return RemoteTrackPublication(info, self.sid, self._signal)

    @property
    def track_publications(self) -> Mapping[str, RemoteTrackPublication]:
        """The participant's publications keyed by track sid."""
        return {
            sid: pub
            for sid, pub in self._track_publications.items()
            if isinstance(pub, RemoteTrackPublication)
        }


class LocalParticipant(Participant):
    """This client's participant: publishes tracks and data."""

    def __init__(
        self,
        info: ParticipantRecord | proto_models.ParticipantInfo,
        port: LocalParticipantPort,
        *,
        events: RoomEvents | None = None,
    ) -> None:
        super().__init__(info, events=events)
        self._port = port
        # (condition, future) pairs resolved when a server update makes condition() true
        self._info_waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._subscription_permission: proto_rtc.SubscriptionPermission | None = None
        self._unpublishing: set[str] = set()

    @property
    def _data_port(self) -> DataPort:
        """Where our data packets go (stream writers made for this participant use it)."""
        return self._port

    # -- our own name, metadata and attributes ----------------------------------------

    async def set_metadata(self, metadata: str) -> None:
        """Replace our metadata; the other participants get ``participant_metadata_changed``.

        Needs the ``canUpdateOwnMetadata`` grant. Returns once the server has
        applied the change (``room.local_participant.metadata`` is updated and the
        room's own ``participant_metadata_changed`` was emitted). Raises
        ValueError for a non-str argument, SignalRequestError when the server
        refuses (``reason`` "NOT_ALLOWED" without the grant, "LIMIT_EXCEEDED" for
        oversized metadata), TimeoutError when it does not answer within
        10 seconds and ConnectionError when the room is not connected. The server
        ignores an empty string in client updates, so metadata cannot be cleared
        this way.
        """
        if not isinstance(metadata, str):
            raise ValueError(f"metadata must be a str, not {type(metadata).__name__}")
        if metadata == "" and self.metadata:
            logger.warning(
                "the server ignores empty metadata; %r keeps its metadata", self.identity
            )
        await self._update_own_info(
            proto_rtc.UpdateParticipantMetadata(metadata=metadata),
            lambda: metadata == "" or self._info.metadata == metadata,
            "metadata",
        )

    async def set_name(self, name: str) -> None:
        """Change our display name; the other participants get ``participant_name_changed``.

        Same rules as :meth:`set_metadata` (grant, errors, an empty name is
        ignored by the server).
        """
        if not isinstance(name, str):
            raise ValueError(f"name must be a str, not {type(name).__name__}")
        if name == "" and self.name:
            logger.warning("the server ignores an empty name; %r keeps its name", self.identity)
        await self._update_own_info(
            proto_rtc.UpdateParticipantMetadata(name=name),
            lambda: name == "" or self._info.name == name,
            "name",
        )

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        """Set (merge) attributes: keys not given keep their values, a "" value deletes its key.

        The other participants get ``participant_attributes_changed`` with the
        changed keys. Same grant and errors as :meth:`set_metadata`; ValueError
        for anything but a mapping of non-empty str keys to str values.
        """
        if not isinstance(attributes, Mapping):
            raise ValueError(f"attributes must be a dict, not {type(attributes).__name__}")
        wanted: dict[str, str] = {}
        for key, value in attributes.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"attribute keys must be non-empty strings, not {key!r}")
            if not isinstance(value, str):
                raise ValueError(f"the value of attribute {key!r} must be a str, not {value!r}")
            wanted[key] = value
        await self._update_own_info(
            proto_rtc.UpdateParticipantMetadata(attributes=wanted),
            lambda: all(self._info.attributes.get(k, "") == v for k, v in wanted.items()),
            "attributes",
        )

    async def _update_own_info(
        self,
        update: proto_rtc.UpdateParticipantMetadata,
        applied: Callable[[], bool],
        what: str,
    ) -> None:
        """Send ``update`` and wait until the server accepted and applied it.

        Success is either the server's OK for our request id or a participant
        update about us that satisfies ``applied``; a refusal raises.
        """
        port = self._port
        tracker = port.requests
        request_id = tracker.next_id()
        update.request_id = request_id
        answered = tracker.expect(request_id)
        loop = asyncio.get_running_loop()
        applied_now: asyncio.Future[None] = loop.create_future()
        waiter = (applied, applied_now)
        self._info_waiters.append(waiter)
        try:
            try:
                await asyncio.wait_for(
                    port.send_signal(proto_rtc.SignalRequest(update_metadata=update)),
                    UPDATE_RESPONSE_TIMEOUT,
                )
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"could not send the {what} update of {self.identity!r} "
                    f"within {UPDATE_RESPONSE_TIMEOUT:g}s"
                ) from None
            either: set[asyncio.Future[Any]] = {answered, applied_now}
            await asyncio.wait(
                either,
                timeout=UPDATE_RESPONSE_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if answered.done():
                response = answered.result()  # ConnectionError when the room went away
                if response.reason != proto_rtc.RequestResponse.Reason.OK:
                    reason = reason_name(response.reason)
                    detail = response.message or reason.lower().replace("_", " ")
                    raise SignalRequestError(
                        f"the server refused to update the {what} of {self.identity!r}: "
                        f"{detail} ({reason})",
                        reason,
                    )
                if applied():
                    return
                await asyncio.wait({applied_now}, timeout=UPDATE_APPLY_TIMEOUT)
                if not applied_now.done():
                    logger.warning(
                        "the server accepted the %s update of %r but sent no participant "
                        "update within %gs",
                        what,
                        self.identity,
                        UPDATE_APPLY_TIMEOUT,
                    )
                return
            if applied_now.done():
                return
            if applied():
                logger.debug(
                    "no answer to %s update %d, the value is already set", what, request_id
                )
                return
            raise TimeoutError(
                f"the server did not answer the {what} update of {self.identity!r} "
                f"within {UPDATE_RESPONSE_TIMEOUT:g}s"
            )
        finally:
            tracker.forget(request_id)
            if waiter in self._info_waiters:
                self._info_waiters.remove(waiter)
            if not applied_now.done():
                applied_now.cancel()

    def _info_updated(self) -> None:
        """The server sent our ParticipantInfo: wake the updates it satisfies."""
        for condition, future in list(self._info_waiters):
            if not future.done() and condition():
                future.set_result(None)

    def _cancel_waiters(self) -> None:
        """The session ended: stop waiting for updates."""
        for _, future in self._info_waiters:
            future.cancel()

    # -- transcriptions, DTMF, subscription permissions --------------------------------

    async def publish_transcription(self, transcription: Transcription) -> None:
        """Send ``transcription`` (reliably) to everyone in the room.

        The others get ``transcription_received(segments, participant,
        publication)`` where ``participant`` is the transcribed participant.
        Note: the LiveKit server forwards transcriptions only from agents (a
        token with the ``agent`` video grant or of kind agent); from any other
        participant they are silently dropped. Raises ValueError for a malformed
        transcription and PublishTranscriptionError when it cannot be sent.
        """
        message = transcription_to_proto(transcription)
        packet = proto_models.DataPacket(
            kind=proto_models.DataPacket.Kind.RELIABLE,
            participant_identity=self.identity,
            transcription=message,
        )
        try:
            await self._send_reliable(packet)
        except ConnectionError as e:
            raise PublishTranscriptionError(f"could not publish the transcription: {e}") from e

    async def publish_dtmf(self, *, code: int, digit: str) -> None:
        """Send a SIP DTMF tone (reliably) to everyone in the room.

        The others get ``sip_dtmf_received`` with a SipDTMF. ``code`` is the
        RFC 4733 event code (0-9, 10 for ``*``, 11 for ``#``, 12-15 for A-D) and
        ``digit`` its character. Raises ValueError for bad arguments and
        PublishDTMFError when it cannot be sent.
        """
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= _UINT32_MAX:
            raise ValueError(f"code must be a non-negative int, not {code!r}")
        if not isinstance(digit, str):
            raise ValueError(f"digit must be a str, not {type(digit).__name__}")
        packet = proto_models.DataPacket(
            kind=proto_models.DataPacket.Kind.RELIABLE,
            participant_identity=self.identity,
            sip_dtmf=proto_models.SipDTMF(code=code, digit=digit),
        )
        try:
            await self._send_reliable(packet)
        except ConnectionError as e:
            raise PublishDTMFError(f"could not publish the DTMF tone: {e}") from e

    async def _send_reliable(self, packet: proto_models.DataPacket) -> None:
        await self._port.send_data(packet, proto_models.DataPacket.Kind.RELIABLE)

    def set_track_subscription_permissions(
        self,
        *,
        allow_all_participants: bool,
        participant_permissions: list[ParticipantTrackPermission] | None = None,
    ) -> None:
        """Choose who may subscribe to our tracks.

        With ``allow_all_participants`` True everyone may (the default of a
        session) and ``participant_permissions`` is ignored; otherwise only the
        participants listed, each for all its tracks (``allow_all``) or for the
        ``allowed_track_sids``. The server then stops sending our tracks to the
        others and tells them they are not allowed. Sent in the background;
        raises ValueError for bad arguments and ConnectionError when the room is
        not connected.
        """
        if not isinstance(allow_all_participants, bool):
            raise ValueError("allow_all_participants must be a bool")
        permissions = list(participant_permissions or [])
        track_permissions = []
        for permission in permissions:
            if not isinstance(permission, ParticipantTrackPermission):
                raise ValueError(
                    "participant_permissions must hold ParticipantTrackPermission, "
                    f"not {type(permission).__name__}"
                )
            if not permission.participant_identity:
                raise ValueError("a ParticipantTrackPermission needs a participant_identity")
            track_permissions.append(
                proto_rtc.TrackPermission(
                    participant_identity=permission.participant_identity,
                    all_tracks=permission.allow_all,
                    track_sids=list(permission.allowed_track_sids),
                )
            )
        message = proto_rtc.SubscriptionPermission(
            all_participants=allow_all_participants, track_permissions=track_permissions
        )
        self._port.send_signal_soon(proto_rtc.SignalRequest(subscription_permission=message))
        self._subscription_permission = message

    async def publish_data(
        self,
        payload: bytes | str,
        *,
        reliable: bool = True,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> None:
        """Send ``payload`` to everyone in the room, or only to ``destination_identities``.

        Reliable packets are ordered and retransmitted; lossy ones are not (and
        are dropped when the channel is congested). A ``str`` is sent as UTF-8.
        Raises ConnectionError when the room is not connected.
        """
        if isinstance(payload, str):
            data = payload.encode("utf-8")
        elif isinstance(payload, bytes | bytearray | memoryview):
            data = bytes(payload)
        else:
            raise ValueError(f"payload must be bytes or str, not {type(payload).__name__}")
        if not isinstance(topic, str):
            raise ValueError("topic must be a str")
        destinations = list(destination_identities or [])
        if not all(isinstance(d, str) for d in destinations):
            raise ValueError("destination_identities must be a list of identity strings")
        kind = (
            proto_models.DataPacket.Kind.RELIABLE
            if reliable
            else proto_models.DataPacket.Kind.LOSSY
        )
        packet = proto_models.DataPacket(
            kind=kind,
            participant_identity=self.identity,
            destination_identities=destinations,
            user=proto_models.UserPacket(
                participant_identity=self.identity,
                payload=data,
                destination_identities=destinations,
                topic=topic,
            ),
        )
        await self._port.send_data(packet, kind)

    @property
    def track_publications(self) -> Mapping[str, LocalTrackPublication]:
        """Our own publications keyed by track sid."""
        return {
            sid: pub
            for sid, pub in self._track_publications.items()
            if isinstance(pub, LocalTrackPublication)
        }

    # -- RPC (session/rpc.py) ----------------------------------------------------------

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
        max_round_trip_latency: float | None = None,
    ) -> str:
        """Call ``method`` on another participant and return its response payload.

        Toward a participant that takes RPC over data streams (the official SDKs, and
        ours) the payloads have no size limit; toward an older one the request and the
        response are at most 15 KiB of UTF-8 each.

        Args:
            destination_identity: The identity of the participant to call.
            method: The name of the method to call.
            payload: The request payload.
            response_timeout: Seconds to wait for the response once the callee has
                acknowledged the request (default 15).
            max_round_trip_latency: Seconds to wait for the acknowledgement (default
                7, which covers rare relay retries in LiveKit Cloud); raise it on
                networks where requests queue behind other data.

        Returns:
            The response payload.

        Raises:
            RpcError: The call failed (with one of the standard codes, or the error
                the remote handler raised).
            ValueError: The arguments are malformed.
        """
        return await self._port.rpc.perform_rpc(
            destination_identity=destination_identity,
            method=method,
            payload=payload,
            response_timeout=response_timeout,
            max_round_trip_latency=max_round_trip_latency,
        )

    def add_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Wrap every RPC call this participant makes or serves in ``interceptor``.

        Interceptors run in the order they were added, the first outermost; adding the
        same object twice does nothing.
        """
        self._port.rpc.add_rpc_interceptor(interceptor)

    def remove_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Remove an interceptor added before; calls under way keep their chain."""
        self._port.rpc.remove_rpc_interceptor(interceptor)

    @overload
    def register_rpc_method(self, method_name: str, handler: F) -> F: ...

    @overload
    def register_rpc_method(self, method_name: str, handler: None = None) -> Callable[[F], F]: ...

    def register_rpc_method(
        self, method_name: str, handler: F | None = None
    ) -> F | Callable[[F], F]:
        """Serve calls of ``method_name``; usable as a decorator when ``handler`` is omitted.

        Args:
            method_name: The name callers use.
            handler: Takes an RpcInvocationData and returns (or, as a coroutine
                function, resolves to) the response payload; None counts as empty.
                An RpcError it raises reaches the caller as is, any other exception
                as ``APPLICATION_ERROR``. Registering a name again replaces the
                previous handler.

        Returns:
            The handler, or (without one) a decorator that registers its function.
        """
        return self._port.rpc.register_rpc_method(method_name, handler)

    def unregister_rpc_method(self, method: str) -> None:
        """Stop serving ``method``; later calls get ``UNSUPPORTED_METHOD``."""
        self._port.rpc.unregister_rpc_method(method)

    # -- data streams (session/stream_manager.py) ----------------------------------

    async def send_text(
        self,
        text: str,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        reply_to_id: str | None = None,
        compress: bool = True,
    ) -> TextStreamInfo:
        """Send ``text`` as one complete text stream and return its TextStreamInfo.

        When every recipient reads data streams v2 (the official SDKs, and ours), a
        short text goes in a single packet, and with ``compress`` the text is
        compressed (raw DEFLATE) when every recipient inflates it and it gets smaller;
        otherwise it is sent in the format every client reads. Raises StreamError when
        the stream cannot be sent.
        """
        return await self._port.streams.sender.send_text(
            text,
            destination_identities=destination_identities,
            topic=topic,
            attributes=attributes,
            reply_to_id=reply_to_id,
            compress=compress,
        )

    async def stream_text(
        self,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        total_size: int | None = None,
        sender_identity: str | None = None,
    ) -> TextStreamWriter:
        """Open a TextStreamWriter; ``write`` text to it and ``aclose`` it when done."""
        return await self._port.streams.sender.stream_text(
            destination_identities=destination_identities,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            reply_to_id=reply_to_id,
            total_size=total_size,
            sender_identity=sender_identity,
        )

    async def send_file(
        self,
        file_path: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send a file as a byte stream, read in chunks; returns its ByteStreamInfo.

        With ``compress``, the file is compressed (raw DEFLATE) as it is read when
        every recipient inflates it. Raises StreamError when it cannot be sent.
        """
        return await self._port.streams.sender.send_file(
            file_path,
            topic=topic,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
            compress=compress,
        )

    async def send_bytes(
        self,
        data: bytes,
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send an in-memory buffer as one complete byte stream; returns its ByteStreamInfo.

        ``name`` defaults to ``"unknown"`` and ``mime_type`` to
        ``"application/octet-stream"``. As for :meth:`send_text`, a short buffer goes
        in a single packet and ``compress`` compresses it, when every recipient reads
        those. Raises StreamError when the stream cannot be sent.
        """
        return await self._port.streams.sender.send_bytes(
            data,
            topic=topic,
            name=name,
            mime_type=mime_type,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
            compress=compress,
        )

    async def stream_bytes(
        self,
        name: str,
        *,
        total_size: int | None = None,
        mime_type: str = "application/octet-stream",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> ByteStreamWriter:
        """Open a ByteStreamWriter; ``write`` bytes to it and ``aclose`` it when done."""
        return await self._port.streams.sender.stream_bytes(
            name,
            total_size=total_size,
            mime_type=mime_type,
            attributes=attributes,
            stream_id=stream_id,
            destination_identities=destination_identities,
            topic=topic,
        )

    async def publish_data_track(self, *, name: str) -> LocalDataTrack:
        """Publishes a data track.

        Args:
            name: The track name used to identify the track to other participants.
                Must not be empty, at most 256 bytes of UTF-8, and unique per publisher.

        Returns:
            The published data track. Use :meth:`LocalDataTrack.try_push` to
            send data frames on the track.

        Raises:
            PublishDataTrackError: If there is an error publishing the data track (an
                invalid name raises one that is also a ValueError, a room that is not
                connected one that is also a ConnectionError).
        """
        return await self._port.publish_data_track(name)

    async def publish_track(
        self, track: LocalTrack, options: TrackPublishOptions | None = None
    ) -> LocalTrackPublication:
        """Publish ``track`` to the room and return its publication.

        ``options`` is a :class:`TrackPublishOptions`. For audio, ``source``,
        ``stream``, ``dtx`` (on unless set false) and ``audio_encoding.max_bitrate``
        are honoured; RED is not available from aiortc, so audio is published
        without it. Video is published with simulcast unless ``simulcast=False`` or a
        ``scalability_mode`` is given (see docs/media.md for each field). Raises
        ValueError for a track that is not ours to publish or is already published, for
        options livekit-py cannot honour (a codec other than VP8 and H.264, a
        ``scalability_mode`` that is not one), and ConnectionError when the room is not
        connected.
        """
        if options is None:
            options = TrackPublishOptions()
        if not isinstance(track, LocalTrack):
            raise ValueError(f"publish_track needs a local track, not {type(track).__name__}")
        if track._participant is not None and track.sid:
            raise ValueError(f"track {track.name!r} is already published as {track.sid}")
        request = self._add_track_request(track, options)
        media = track._media_track()
        assert media is not None
        published = await self._port.publish_track(request, media, track._encoder_config(options))
        info = published.info
        track._sid = info.sid
        track._participant = self
        track._sender = published.transceiver.sender
        track._stats_source = published.stats
        publication = LocalTrackPublication(info, track)
        publication._transceiver = published.transceiver
        publication._options = options
        self._add_publication(publication)
        logger.debug("published %s track %r as %s", info.mime_type or "a", track.name, info.sid)
        self._port.local_track_published(publication._info)
        return publication

    def _add_track_request(
        self, track: LocalTrack, options: TrackPublishOptions
    ) -> proto_rtc.AddTrackRequest:
        media = track._media_track()
        assert media is not None
        source = options.source if options.HasField("source") else TrackSource.SOURCE_UNKNOWN
        request = proto_rtc.AddTrackRequest(
            cid=media.id,
            name=track.name,
            source=SOURCE_TO_PROTO.get(source, proto_models.TrackSource.UNKNOWN),  # type: ignore[arg-type]
            muted=track.muted,
            stream=options.stream,
        )
        # as the official SDK, for any kind; only video frames carry trailers
        request.packet_trailer_features.extend(packet_trailer_features(options))  # type: ignore[arg-type]
        track._fill_add_track_request(request, options)
        return request

    async def unpublish_track(self, track_sid: str) -> None:
        """Stop publishing the track ``track_sid``; raises ValueError for an unknown sid."""
        publication = self._track_publications.get(track_sid)
        if not isinstance(publication, LocalTrackPublication) or track_sid in self._unpublishing:
            raise ValueError(f"no published track with sid {track_sid!r}")
        self._unpublishing.add(track_sid)
        try:
            await self._port.unpublish_track(publication._transceiver)
        finally:
            self._unpublishing.discard(track_sid)
        # the room drops the publication and emits local_track_unpublished
        self._port.local_track_unpublished(track_sid)

    def _detach(self, publication: LocalTrackPublication) -> None:
        """The publication ended: its track is no longer published."""
        track = publication.track
        if track is not None:
            track._participant = None
            track._sender = None
            track._stats_source = None
            track._sid = ""

    def _on_local_mute(self, track: LocalTrack, muted: bool) -> None:
        if track.sid not in self._track_publications:
            return
        self._port.send_signal_soon(
            proto_rtc.SignalRequest(mute=proto_rtc.MuteTrackRequest(sid=track.sid, muted=muted))
        )
        self._port.local_track_muted(track.sid, muted)


def _enum_word(name: str) -> str:
    """``KIND_AUDIO`` -> ``audio``, ``SOURCE_SCREENSHARE_AUDIO`` -> ``screenshare audio``."""
    return name.split("_", 1)[-1].lower().replace("_", " ")


def _publication_cells(pub: TrackPublication) -> list[str]:
    """Kind, source, name and details of a publication, for the rich-display tables."""
    details = [pub.mime_type or "codec not known yet"]
    if pub.width and pub.height:
        details.append(f"{pub.width}x{pub.height}")
    if pub.simulcasted:
        details.append("simulcast")
    if pub.muted:
        details.append("muted")
    if pub.encryption_type:
        details.append("encrypted")
    if isinstance(pub, RemoteTrackPublication):
        details.append("subscribed" if pub.subscribed else "not subscribed")
    return [
        _enum_word(TrackKind.Name(pub.kind)),
        _enum_word(TrackSource.Name(pub.source)),
        pub.name,
        ", ".join(details),
    ]


def _publications_summary(participant: Participant) -> str:
    """One line of what ``participant`` publishes, e.g. ``audio 'mic' (microphone, ...)``."""
    parts = []
    for pub in participant.track_publications.values():
        kind, source, name, details = _publication_cells(pub)
        parts.append(f"{kind} {name!r} ({source}; {details})")
    return "; ".join(parts) or "nothing"
