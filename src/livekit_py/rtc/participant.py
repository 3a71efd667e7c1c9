"""Participants of a room: the local one (us) and the remote ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..log import get_logger
from ..session.requests import SignalRequestError, reason_name
from ..session.rpc import F
from ..types import (
    ConnectionQuality,
    DisconnectReason,
    ParticipantKind,
    ParticipantTrackPermission,
    TrackPublishOptions,
    TrackSource,
)
from .data_stream import ByteStreamInfo, ByteStreamWriter, TextStreamInfo, TextStreamWriter
from .track import LocalTrack
from .track_publication import (
    SOURCE_TO_PROTO,
    LocalTrackPublication,
    RemoteTrackPublication,
    TrackPublication,
)
from .transcription import Transcription, transcription_to_proto

if TYPE_CHECKING:
    from ..media.frame_source import FrameFanout
    from .room import Room

logger = get_logger("room.participant")

# How long set_metadata/set_name/set_attributes wait for the server's answer, and
# then (once it accepted) for the participant update that carries the change.
UPDATE_RESPONSE_TIMEOUT = 10.0
UPDATE_APPLY_TIMEOUT = 5.0

_UINT32_MAX = 2**32 - 1


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


class Participant:
    """State shared by local and remote participants, kept from the server's ParticipantInfo."""

    def __init__(self, info: proto_models.ParticipantInfo) -> None:
        self._info = proto_models.ParticipantInfo()
        self._info.CopyFrom(info)
        self._track_publications: dict[str, TrackPublication] = {}
        self._disconnect_reason: int | None = None
        self._connection_quality: int = ConnectionQuality.QUALITY_GOOD
        self._room: Room | None = None
        self._audio_level = 0.0

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
    def track_publications(self) -> Mapping[str, TrackPublication]:
        """The participant's publications keyed by track sid."""
        return dict(self._track_publications)

    @property
    def disconnect_reason(self) -> int | None:
        """Why the participant left (a :class:`DisconnectReason`), None while present."""
        return self._disconnect_reason

    @property
    def connection_quality(self) -> int:
        """The last :class:`ConnectionQuality` the server reported."""
        return self._connection_quality

    @property
    def audio_level(self) -> float:
        """The audio level from the last active-speaker update (0 when not speaking)."""
        return self._audio_level

    @property
    def is_speaking(self) -> bool:
        return self._audio_level > 0

    def _follow_track(self, source: int, kind: int) -> FrameFanout:
        """Frames of this participant's current track of ``source`` (see track_follower)."""
        from ..session.track_follower import ParticipantTrackFollower

        return ParticipantTrackFollower(self._room, self, source, kind)

    def _apply_info(self, info: proto_models.ParticipantInfo, room: Room) -> None:
        """Take a newer ParticipantInfo and emit the room events for what changed."""
        old = self._info
        self._info = proto_models.ParticipantInfo()
        self._info.CopyFrom(info)
        if old.metadata != info.metadata:
            room.emit("participant_metadata_changed", self, old.metadata, info.metadata)
        if old.name != info.name:
            room.emit("participant_name_changed", self, old.name, info.name)
        changed = _changed_attributes(dict(old.attributes), dict(info.attributes))
        if changed:
            room.emit("participant_attributes_changed", changed, self)

    def __repr__(self) -> str:
        cls = type(self).__name__
        return f"{cls}(sid={self.sid!r}, identity={self.identity!r}, name={self.name!r})"


def _changed_attributes(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Keys added or changed in ``new`` with their values; removed keys map to ""."""
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    changed.update({k: "" for k in old if k not in new})
    return changed


class RemoteParticipant(Participant):
    """Another participant in the room."""

    def __init__(self, info: proto_models.ParticipantInfo, room: Room | None = None) -> None:
        super().__init__(info)
        self._room = room
        self._track_publications = {t.sid: RemoteTrackPublication(t, self) for t in info.tracks}

    @property
    def track_publications(self) -> Mapping[str, RemoteTrackPublication]:
        """The participant's publications keyed by track sid."""
        return {
            sid: pub
            for sid, pub in self._track_publications.items()
            if isinstance(pub, RemoteTrackPublication)
        }

    def _mark_disconnected(self, reason: int) -> None:
        self._disconnect_reason = reason or DisconnectReason.UNKNOWN_REASON

    def _sync_tracks(self, info: proto_models.ParticipantInfo, room: Room) -> None:
        """Bring publications in line with ``info.tracks`` and emit the events."""
        current = {t.sid: t for t in info.tracks}
        for sid in [s for s in self._track_publications if s not in current]:
            room._remove_remote_publication(self, sid)
        for sid, track_info in current.items():
            pub = self._track_publications.get(sid)
            if not isinstance(pub, RemoteTrackPublication):
                pub = RemoteTrackPublication(track_info, self)
                self._track_publications[sid] = pub
                room.emit("track_published", pub, self)
                room._attach_pending_track(self, pub)
                continue
            was_muted = pub.muted
            pub._update_info(track_info)
            if track_info.muted != was_muted:
                track = pub.track
                if track is not None:
                    track._muted = track_info.muted
                room.emit("track_muted" if track_info.muted else "track_unmuted", self, pub)


class LocalParticipant(Participant):
    """This client's participant: publishes tracks and data."""

    def __init__(self, info: proto_models.ParticipantInfo, room: Room) -> None:
        super().__init__(info)
        self._room = room
        self._local_room: Room = room
        # (condition, future) pairs resolved when a server update makes condition() true
        self._info_waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._subscription_permission: proto_rtc.SubscriptionPermission | None = None

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
        room = self._local_room
        signal = room._signal_or_raise()
        tracker = room._requests
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
                    signal.send(proto_rtc.SignalRequest(update_metadata=update)),
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

    def _apply_info(self, info: proto_models.ParticipantInfo, room: Room) -> None:
        super()._apply_info(info, room)
        for condition, future in list(self._info_waiters):
            if not future.done() and condition():
                future.set_result(None)

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
        engine = self._local_room._engine_or_raise()
        await engine.send_data(packet, proto_models.DataPacket.Kind.RELIABLE)

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
        self._local_room._send_soon(proto_rtc.SignalRequest(subscription_permission=message))
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
        await self._local_room._engine_or_raise().send_data(packet, kind)

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
    ) -> str:
        """Call ``method`` on another participant and return its response payload.

        Args:
            destination_identity: The identity of the participant to call.
            method: The name of the method to call.
            payload: The request payload (at most 15 KiB of UTF-8).
            response_timeout: Seconds to wait for the response once the callee has
                acknowledged the request (default 15).

        Returns:
            The response payload.

        Raises:
            RpcError: The call failed (with one of the standard codes, or the error
                the remote handler raised).
            ValueError: The arguments are malformed.
        """
        return await self._local_room._rpc_manager().perform_rpc(
            destination_identity=destination_identity,
            method=method,
            payload=payload,
            response_timeout=response_timeout,
        )

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
        return self._local_room._rpc_manager().register_rpc_method(method_name, handler)

    def unregister_rpc_method(self, method: str) -> None:
        """Stop serving ``method``; later calls get ``UNSUPPORTED_METHOD``."""
        self._local_room._rpc_manager().unregister_rpc_method(method)

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

        ``compress`` is accepted for compatibility; streams are sent uncompressed,
        which every client reads. Raises StreamError when the stream cannot be sent.
        """
        return await self._local_room._stream_manager().send_text(
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
        return await self._local_room._stream_manager().stream_text(
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

        ``compress`` is accepted for compatibility; streams are sent uncompressed.
        """
        return await self._local_room._stream_manager().send_file(
            file_path,
            topic=topic,
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
        return await self._local_room._stream_manager().stream_bytes(
            name,
            total_size=total_size,
            mime_type=mime_type,
            attributes=attributes,
            stream_id=stream_id,
            destination_identities=destination_identities,
            topic=topic,
        )

    async def publish_track(
        self, track: LocalTrack, options: TrackPublishOptions | None = None
    ) -> LocalTrackPublication:
        """Publish ``track`` to the room and return its publication.

        ``options`` is a :class:`TrackPublishOptions`. For audio, ``source``,
        ``stream``, ``dtx`` and ``audio_encoding.max_bitrate`` are honoured (DTX
        is announced to the server but the Opus encoder does not skip silent
        frames); RED is not available from aiortc, so audio is published without
        it. Raises ValueError for a track that is not ours to publish or is
        already published, and ConnectionError when the room is not connected.
        """
        if options is None:
            options = TrackPublishOptions()
        if not isinstance(track, LocalTrack):
            raise ValueError(f"publish_track needs a local track, not {type(track).__name__}")
        if track._participant is not None and track.sid:
            raise ValueError(f"track {track.name!r} is already published as {track.sid}")
        room = self._local_room
        engine = room._engine_or_raise()
        request = self._add_track_request(track, options)
        media = track._media_track()
        assert media is not None
        info = await engine.add_track(request)
        transceiver = engine.add_publisher_track(media, track._encoder_config(options))
        try:
            await engine.negotiate_publisher()
        except BaseException:
            await engine.remove_publisher_track(transceiver, renegotiate=False)
            raise
        track._sid = info.sid
        track._participant = self
        track._sender = transceiver.sender
        publication = LocalTrackPublication(info, track)
        publication._transceiver = transceiver
        self._track_publications[info.sid] = publication
        logger.info("published %s track %r as %s", info.mime_type or "a", track.name, info.sid)
        room.emit("local_track_published", publication, track)
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
        track._fill_add_track_request(request, options)
        return request

    async def unpublish_track(self, track_sid: str) -> None:
        """Stop publishing the track ``track_sid``; raises ValueError for an unknown sid."""
        publication = self._track_publications.get(track_sid)
        if not isinstance(publication, LocalTrackPublication):
            raise ValueError(f"no published track with sid {track_sid!r}")
        room = self._local_room
        engine = room._engine_or_raise()
        del self._track_publications[track_sid]
        await engine.remove_publisher_track(publication._transceiver, renegotiate=True)
        self._detach(publication)
        room.emit("local_track_unpublished", publication)

    def _detach(self, publication: LocalTrackPublication) -> None:
        track = publication.track
        if track is not None:
            track._participant = None
            track._sender = None
            track._sid = ""

    def _on_local_mute(self, track: LocalTrack, muted: bool) -> None:
        publication = self._track_publications.get(track.sid)
        if publication is None:
            return
        publication._info.muted = muted
        room = self._local_room
        room._send_soon(
            proto_rtc.SignalRequest(mute=proto_rtc.MuteTrackRequest(sid=track.sid, muted=muted))
        )
        room.emit("track_muted" if muted else "track_unmuted", self, publication)
