"""The room as the server describes it: a pure model fed with signal messages.

:class:`RoomModel` holds the room's state (room info, the local participant, the
remote participants and their tracks, active speakers, subscription permissions)
and has one method per server message. Each method applies the message and
RETURNS the events it causes, in order, the way websockets' ``receive_data`` is
followed by ``events_received``: no I/O, no asyncio, no aiortc. ``Room`` feeds
the messages and turns the events into its public objects and events in one
place (``Room._dispatch``).

Remote media is opaque here: the engine reports "track sid X started" with a
handle (for livekit-py, the aiortc track and transceiver) that the model keeps
until the publication is known and hands back in :class:`TrackSubscribed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

MediaT = TypeVar("MediaT")

_DISCONNECTED = proto_models.ParticipantInfo.State.DISCONNECTED
_DUPLICATE_IDENTITY = proto_models.DisconnectReason.DUPLICATE_IDENTITY
_UNKNOWN_REASON = proto_models.DisconnectReason.UNKNOWN_REASON
# connection quality before the server's first report (the official QUALITY_UNKNOWN)
_QUALITY_UNKNOWN = -1


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantConnected:
    identity: str


@dataclass(frozen=True)
class ParticipantDisconnected:
    identity: str
    reason: int


@dataclass(frozen=True)
class ParticipantMetadataChanged:
    identity: str
    old: str
    new: str


@dataclass(frozen=True)
class ParticipantNameChanged:
    identity: str
    old: str
    new: str


@dataclass(frozen=True)
class ParticipantAttributesChanged:
    identity: str
    changed: dict[str, str]


@dataclass(frozen=True)
class ParticipantPermissionsChanged:
    """The participant's ``ParticipantInfo.permission`` changed (the record has the new one)."""

    identity: str


@dataclass(frozen=True)
class LocalParticipantUpdated:
    """The server sent a ParticipantInfo about us (whether or not anything changed)."""


@dataclass(frozen=True)
class TrackPublished:
    identity: str
    track_sid: str


@dataclass(frozen=True)
class TrackUnpublished:
    identity: str
    track_sid: str


@dataclass(frozen=True)
class TrackMuted:
    identity: str
    track_sid: str


@dataclass(frozen=True)
class TrackUnmuted:
    identity: str
    track_sid: str


@dataclass(frozen=True)
class TrackSubscribed(Generic[MediaT]):
    """The media of a known publication arrived (``media`` is the engine's handle)."""

    identity: str
    track_sid: str
    media: MediaT


@dataclass(frozen=True)
class TrackUnsubscribed:
    identity: str
    track_sid: str


@dataclass(frozen=True)
class TrackSubscriptionFailed:
    """``identity`` is None when the track's publisher is unknown."""

    identity: str | None
    track_sid: str
    error: str


@dataclass(frozen=True)
class StreamStateChanged:
    identity: str
    track_sid: str
    paused: bool


@dataclass(frozen=True)
class ActiveSpeakersChanged:
    """Identities of the speaking participants, loudest first."""

    identities: tuple[str, ...]


@dataclass(frozen=True)
class ConnectionQualityChanged:
    identity: str
    quality: int


@dataclass(frozen=True)
class RoomMetadataChanged:
    old: str
    new: str


@dataclass(frozen=True)
class RoomUpdated:
    pass


@dataclass(frozen=True)
class LocalTrackPublished:
    """We published a track."""

    track_sid: str


@dataclass(frozen=True)
class LocalTrackUnpublished:
    """One of our tracks was unpublished (by us, or by the server: ``by_server``)."""

    track_sid: str
    by_server: bool = False


@dataclass(frozen=True)
class LocalTrackRepublished:
    """One of our tracks was published again after a full reconnect."""

    track_sid: str
    previous_sid: str


@dataclass(frozen=True)
class LocalTrackMuteRequested:
    """The server asks us to mute (or unmute) one of our tracks."""

    track_sid: str
    muted: bool


@dataclass(frozen=True)
class LocalTrackSubscribed:
    """Someone subscribed to one of our tracks for the first time."""

    track_sid: str


ModelEvent = (
    ParticipantConnected
    | ParticipantDisconnected
    | ParticipantMetadataChanged
    | ParticipantNameChanged
    | ParticipantAttributesChanged
    | LocalParticipantUpdated
    | TrackPublished
    | TrackUnpublished
    | TrackMuted
    | TrackUnmuted
    | TrackSubscribed[MediaT]
    | TrackUnsubscribed
    | TrackSubscriptionFailed
    | StreamStateChanged
    | ActiveSpeakersChanged
    | ConnectionQualityChanged
    | ParticipantPermissionsChanged
    | RoomMetadataChanged
    | RoomUpdated
    | LocalTrackPublished
    | LocalTrackUnpublished
    | LocalTrackRepublished
    | LocalTrackMuteRequested
    | LocalTrackSubscribed
)


# -- state ---------------------------------------------------------------------------------


@dataclass(eq=False)
class ParticipantRecord:
    """One participant's state. ``info`` and the ``tracks`` values are updated in place,
    so views holding them always read the current state."""

    info: proto_models.ParticipantInfo
    tracks: dict[str, proto_models.TrackInfo] = field(default_factory=dict)
    connection_quality: int = _QUALITY_UNKNOWN
    audio_level: float = 0.0
    disconnect_reason: int | None = None
    # track sids whose media we receive (remote) or someone subscribed to (local)
    subscribed: set[str] = field(default_factory=set)

    @property
    def identity(self) -> str:
        return self.info.identity

    @property
    def sid(self) -> str:
        return self.info.sid

    @classmethod
    def from_info(cls, info: proto_models.ParticipantInfo) -> ParticipantRecord:
        """A record of ``info`` (copied), with its tracks."""
        return _record(info, with_tracks=True)


def _record(info: proto_models.ParticipantInfo, *, with_tracks: bool) -> ParticipantRecord:
    copy = proto_models.ParticipantInfo()
    copy.CopyFrom(info)
    record = ParticipantRecord(copy)
    if with_tracks:
        for track in info.tracks:
            record.tracks[track.sid] = _copy_track(track)
    return record


def _copy_track(info: proto_models.TrackInfo) -> proto_models.TrackInfo:
    copy = proto_models.TrackInfo()
    copy.CopyFrom(info)
    return copy


def changed_attributes(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Keys added or changed in ``new`` with their values; removed keys map to ""."""
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    changed.update({k: "" for k in old if k not in new})
    return changed


class RoomModel(Generic[MediaT]):
    """The room's state; every ``apply_*``/``on_*`` method returns the events it caused."""

    def __init__(self) -> None:
        self.room = proto_models.Room()
        self.server_info = proto_models.ServerInfo()
        self.server_version = ""
        self.local: ParticipantRecord | None = None
        self.remote: dict[str, ParticipantRecord] = {}
        # speaker sid -> level of the speakers the server last called active
        self.active_speakers: dict[str, float] = {}
        # track sid -> whether its publisher lets us subscribe (absent: never said)
        self.subscription_allowed: dict[str, bool] = {}
        # track sid -> media that arrived before the publication was announced
        self.pending_media: dict[str, MediaT] = {}
        self.pending_rejections: dict[str, str] = {}
        """Tracks the engine could not receive, by sid, before their publisher was known."""

    # -- lookups ---------------------------------------------------------------------------

    def participant(self, identity: str) -> ParticipantRecord | None:
        """The local or a remote participant by identity."""
        local = self.local
        if local is not None and local.identity == identity:
            return local
        return self.remote.get(identity)

    def participant_by_sid(self, sid: str) -> ParticipantRecord | None:
        local = self.local
        if local is not None and local.sid == sid:
            return local
        return next((p for p in self.remote.values() if p.sid == sid), None)

    def find_remote_track(self, track_sid: str) -> ParticipantRecord | None:
        """The remote participant publishing ``track_sid``."""
        return next((p for p in self.remote.values() if track_sid in p.tracks), None)

    # -- join ------------------------------------------------------------------------------

    def apply_join(self, join: proto_rtc.JoinResponse) -> list[ModelEvent[MediaT]]:
        """Start over from a JoinResponse (no events: the room is new)."""
        self.room.CopyFrom(join.room)
        self.server_info.CopyFrom(join.server_info)
        self.server_version = join.server_info.version or join.server_version
        self.local = _record(join.participant, with_tracks=False)
        self.remote = {
            info.identity: _record(info, with_tracks=True) for info in join.other_participants
        }
        self.active_speakers.clear()
        self.subscription_allowed.clear()
        self.pending_media.clear()
        self.pending_rejections.clear()
        return []

    def apply_rejoin(self, join: proto_rtc.JoinResponse) -> list[ModelEvent[MediaT]]:
        """A full reconnect: the room and everyone from a new JoinResponse, as differences.

        The previous connection's media is gone, so every subscription ends
        (``TrackUnsubscribed``; the new connection subscribes again). Participants
        the new join lacks leave, new ones join, the others are updated like a
        ParticipantUpdate. Our own record is updated in place (a new sid) and
        keeps its published tracks, which are republished by sid later
        (:meth:`local_track_republished`).
        """
        events: list[ModelEvent[MediaT]] = []
        for record in self.remote.values():
            for sid in sorted(record.subscribed):
                events.append(TrackUnsubscribed(record.identity, sid))
            record.subscribed.clear()
        self.pending_media.clear()
        self.active_speakers.clear()
        self.subscription_allowed.clear()
        old_metadata = self.room.metadata
        self.room.CopyFrom(join.room)
        if old_metadata != join.room.metadata:
            events.append(RoomMetadataChanged(old_metadata, join.room.metadata))
        self.server_info.CopyFrom(join.server_info)
        self.server_version = join.server_info.version or join.server_version
        local = self.local
        if local is None:
            self.local = _record(join.participant, with_tracks=False)
        else:
            local.info.CopyFrom(join.participant)
            local.subscribed.clear()
            local.disconnect_reason = None
        present = {info.identity: info for info in join.other_participants}
        for identity, record in list(self.remote.items()):
            if identity not in present:
                events.extend(self._participant_left(record, _UNKNOWN_REASON))
        for info in join.other_participants:
            events.extend(self._apply_participant(info))
        return events

    def local_track_republished(
        self, previous_sid: str, info: proto_models.TrackInfo
    ) -> list[ModelEvent[MediaT]]:
        """One of our tracks was published again (a full reconnect) under ``info.sid``."""
        local = self.local
        if local is None:
            return []
        local.tracks.pop(previous_sid, None)
        local.subscribed.discard(previous_sid)
        local.tracks[info.sid] = info
        return [LocalTrackRepublished(info.sid, previous_sid)]

    def clear_remote(self) -> None:
        """Forget the remote side (the session ended); the local participant stays."""
        self.remote.clear()
        self.active_speakers.clear()
        self.subscription_allowed.clear()
        self.pending_media.clear()
        self.pending_rejections.clear()
        if self.local is not None:
            self.local.tracks.clear()
            self.local.subscribed.clear()

    # -- participants ----------------------------------------------------------------------

    def apply_participant_update(
        self, update: proto_rtc.ParticipantUpdate
    ) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        for info in update.participants:
            events.extend(self._apply_participant(info))
        return events

    def _apply_participant(self, info: proto_models.ParticipantInfo) -> list[ModelEvent[MediaT]]:
        local = self.local
        if local is not None and (info.identity == local.identity or info.sid == local.sid):
            if info.state == _DISCONNECTED:
                return []
            events = self._apply_info(local, info)
            events.append(LocalParticipantUpdated())
            return events
        record = self.remote.get(info.identity)
        if info.state == _DISCONNECTED:
            if record is not None and record.sid == info.sid:
                return self._participant_left(record, info.disconnect_reason)
            return []
        events = []
        if record is not None and record.sid != info.sid:
            # Same identity, new session: the old one is gone.
            events.extend(self._participant_left(record, _DUPLICATE_IDENTITY))
            record = None
        if record is None:
            record = _record(info, with_tracks=True)
            self.remote[info.identity] = record
            events.append(ParticipantConnected(info.identity))
            for sid in record.tracks:
                events.append(TrackPublished(info.identity, sid))
                events.extend(self._attach_pending(record, sid))
            return events
        if info.version < record.info.version:
            return events  # an older ParticipantInfo than the one we have
        events.extend(self._apply_info(record, info))
        events.extend(self._sync_tracks(record, info))
        return events

    @staticmethod
    def _apply_info(
        record: ParticipantRecord, info: proto_models.ParticipantInfo
    ) -> list[ModelEvent[MediaT]]:
        old_metadata, old_name = record.info.metadata, record.info.name
        old_attributes = dict(record.info.attributes)
        old_permission = proto_models.ParticipantPermission()
        old_permission.CopyFrom(record.info.permission)
        record.info.CopyFrom(info)
        events: list[ModelEvent[MediaT]] = []
        identity = record.identity
        if old_metadata != info.metadata:
            events.append(ParticipantMetadataChanged(identity, old_metadata, info.metadata))
        if old_name != info.name:
            events.append(ParticipantNameChanged(identity, old_name, info.name))
        changed = changed_attributes(old_attributes, dict(info.attributes))
        if changed:
            events.append(ParticipantAttributesChanged(identity, changed))
        if old_permission != info.permission:
            events.append(ParticipantPermissionsChanged(identity))
        return events

    def _sync_tracks(
        self, record: ParticipantRecord, info: proto_models.ParticipantInfo
    ) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        current = {t.sid: t for t in info.tracks}
        for sid in [s for s in record.tracks if s not in current]:
            events.extend(self._remove_track(record, sid))
        for sid, track_info in current.items():
            known = record.tracks.get(sid)
            if known is None:
                record.tracks[sid] = _copy_track(track_info)
                events.append(TrackPublished(record.identity, sid))
                events.extend(self._attach_pending(record, sid))
                continue
            was_muted = known.muted
            known.CopyFrom(track_info)
            if track_info.muted != was_muted:
                cls = TrackMuted if track_info.muted else TrackUnmuted
                events.append(cls(record.identity, sid))
        return events

    def _remove_track(self, record: ParticipantRecord, sid: str) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        if sid in record.subscribed:
            record.subscribed.discard(sid)
            events.append(TrackUnsubscribed(record.identity, sid))
        del record.tracks[sid]
        self.subscription_allowed.pop(sid, None)
        events.append(TrackUnpublished(record.identity, sid))
        return events

    def _participant_left(self, record: ParticipantRecord, reason: int) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        for sid in list(record.tracks):
            events.extend(self._remove_track(record, sid))
        self.remote.pop(record.identity, None)
        self.active_speakers.pop(record.sid, None)
        record.disconnect_reason = reason or _UNKNOWN_REASON
        events.append(ParticipantDisconnected(record.identity, record.disconnect_reason))
        return events

    # -- remote media ----------------------------------------------------------------------

    def _attach_pending(self, record: ParticipantRecord, sid: str) -> list[ModelEvent[MediaT]]:
        reason = self.pending_rejections.pop(sid, None)
        if reason is not None:
            return [TrackSubscriptionFailed(record.identity, sid, reason)]
        if sid not in self.pending_media:
            return []
        media = self.pending_media.pop(sid)
        record.subscribed.add(sid)
        return [TrackSubscribed(record.identity, sid, media)]

    def remote_track_started(self, track_sid: str, media: MediaT) -> list[ModelEvent[MediaT]]:
        """The engine receives the media of ``track_sid``."""
        self.pending_rejections.pop(track_sid, None)
        record = self.find_remote_track(track_sid)
        if record is None:
            # The participant update announcing the track has not arrived yet.
            self.pending_media[track_sid] = media
            return []
        record.subscribed.add(track_sid)
        return [TrackSubscribed(record.identity, track_sid, media)]

    def remote_track_ended(self, track_sid: str) -> list[ModelEvent[MediaT]]:
        """The engine no longer receives ``track_sid``."""
        self.pending_media.pop(track_sid, None)
        record = self.find_remote_track(track_sid)
        if record is None or track_sid not in record.subscribed:
            return []
        record.subscribed.discard(track_sid)
        return [TrackUnsubscribed(record.identity, track_sid)]

    def remote_track_rejected(self, track_sid: str, reason: str) -> list[ModelEvent[MediaT]]:
        """The engine cannot receive ``track_sid`` (its offer was answered rejected)."""
        self.pending_media.pop(track_sid, None)
        record = self.find_remote_track(track_sid)
        if record is None:
            # The participant update announcing the track has not arrived yet.
            self.pending_rejections[track_sid] = reason
            return []
        events: list[ModelEvent[MediaT]] = []
        if track_sid in record.subscribed:
            record.subscribed.discard(track_sid)
            events.append(TrackUnsubscribed(record.identity, track_sid))
        events.append(TrackSubscriptionFailed(record.identity, track_sid, reason))
        return events

    def apply_subscription_response(
        self, msg: proto_rtc.SubscriptionResponse
    ) -> list[ModelEvent[MediaT]]:
        if not msg.err:
            return []
        record = self.find_remote_track(msg.track_sid)
        error = proto_models.SubscriptionError.Name(msg.err)
        identity = record.identity if record is not None else None
        return [TrackSubscriptionFailed(identity, msg.track_sid, error)]

    def apply_subscription_permission(
        self, msg: proto_rtc.SubscriptionPermissionUpdate
    ) -> list[ModelEvent[MediaT]]:
        self.subscription_allowed[msg.track_sid] = msg.allowed
        record = self.find_remote_track(msg.track_sid)
        if record is None or msg.allowed:
            return []
        # The server stops forwarding the track; drop it now rather than when the
        # subscriber transceiver goes away.
        events: list[ModelEvent[MediaT]] = []
        self.pending_media.pop(msg.track_sid, None)
        if msg.track_sid in record.subscribed:
            record.subscribed.discard(msg.track_sid)
            events.append(TrackUnsubscribed(record.identity, msg.track_sid))
        events.append(
            TrackSubscriptionFailed(
                record.identity,
                msg.track_sid,
                f"{record.identity} does not allow us to subscribe to track {msg.track_sid}",
            )
        )
        return events

    def apply_stream_states(self, msg: proto_rtc.StreamStateUpdate) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        for info in msg.stream_states:
            record = self.find_remote_track(info.track_sid)
            if record is not None and info.track_sid in record.subscribed:
                paused = info.state == proto_rtc.StreamState.PAUSED
                events.append(StreamStateChanged(record.identity, info.track_sid, paused))
        return events

    # -- room-wide -------------------------------------------------------------------------

    def apply_speakers(self, msg: proto_rtc.SpeakersChanged) -> list[ModelEvent[MediaT]]:
        """Speaker updates are deltas; the event lists every active speaker, loudest first."""
        for speaker in msg.speakers:
            if speaker.active:
                self.active_speakers[speaker.sid] = speaker.level
            else:
                self.active_speakers.pop(speaker.sid, None)
        identities: list[str] = []
        for sid in sorted(self.active_speakers, key=lambda s: -self.active_speakers[s]):
            record = self.participant_by_sid(sid)
            if record is not None:
                identities.append(record.identity)
        for record in self._everyone():
            record.audio_level = self.active_speakers.get(record.sid, 0.0)
        return [ActiveSpeakersChanged(tuple(identities))]

    def apply_room_update(self, msg: proto_rtc.RoomUpdate) -> list[ModelEvent[MediaT]]:
        old_metadata = self.room.metadata
        self.room.CopyFrom(msg.room)
        events: list[ModelEvent[MediaT]] = []
        if old_metadata != msg.room.metadata:
            events.append(RoomMetadataChanged(old_metadata, msg.room.metadata))
        events.append(RoomUpdated())
        return events

    def apply_connection_quality(
        self, msg: proto_rtc.ConnectionQualityUpdate
    ) -> list[ModelEvent[MediaT]]:
        events: list[ModelEvent[MediaT]] = []
        for update in msg.updates:
            record = self.participant_by_sid(update.participant_sid)
            if record is None:
                continue
            record.connection_quality = int(update.quality)
            events.append(ConnectionQualityChanged(record.identity, int(update.quality)))
        return events

    def _everyone(self) -> Iterable[ParticipantRecord]:
        if self.local is not None:
            yield self.local
        yield from self.remote.values()

    # -- local tracks ----------------------------------------------------------------------

    def local_track_published(self, info: proto_models.TrackInfo) -> list[ModelEvent[MediaT]]:
        """We published a track; ``info`` (kept, not copied) is its publication's TrackInfo."""
        if self.local is None:
            return []
        self.local.tracks[info.sid] = info
        return [LocalTrackPublished(info.sid)]

    def local_track_unpublished(self, track_sid: str) -> list[ModelEvent[MediaT]]:
        """We unpublished a track."""
        if not self._remove_local_track(track_sid):
            return []
        return [LocalTrackUnpublished(track_sid)]

    def local_track_muted(self, track_sid: str, muted: bool) -> list[ModelEvent[MediaT]]:
        """We muted (or unmuted) one of our tracks."""
        local = self.local
        track = local.tracks.get(track_sid) if local is not None else None
        if local is None or track is None:
            return []
        track.muted = muted
        cls = TrackMuted if muted else TrackUnmuted
        return [cls(local.identity, track_sid)]

    def _remove_local_track(self, track_sid: str) -> bool:
        local = self.local
        if local is None or track_sid not in local.tracks:
            return False
        del local.tracks[track_sid]
        local.subscribed.discard(track_sid)
        return True

    def apply_local_unpublished(
        self, msg: proto_rtc.TrackUnpublishedResponse
    ) -> list[ModelEvent[MediaT]]:
        if not self._remove_local_track(msg.track_sid):
            return []
        return [LocalTrackUnpublished(msg.track_sid, by_server=True)]

    def apply_mute_request(self, msg: proto_rtc.MuteTrackRequest) -> list[ModelEvent[MediaT]]:
        local = self.local
        if local is None or msg.sid not in local.tracks:
            return []
        return [LocalTrackMuteRequested(msg.sid, msg.muted)]

    def apply_local_subscribed(self, msg: proto_rtc.TrackSubscribed) -> list[ModelEvent[MediaT]]:
        local = self.local
        if local is None or msg.track_sid not in local.tracks:
            return []
        if msg.track_sid in local.subscribed:
            return []
        local.subscribed.add(msg.track_sid)
        return [LocalTrackSubscribed(msg.track_sid)]
