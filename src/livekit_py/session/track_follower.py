"""Following "the microphone of participant X" across track changes.

``AudioStream.from_participant``/``VideoStream.from_participant`` do not read one
track: they read whichever track of the given source the participant has at the
moment, waiting for one to be subscribed (or published, for the local
participant), moving to the next one when it changes, and ending when the
participant leaves or the room disconnects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from ..log import get_logger
from ..media.frame_source import AVFrame, FrameFanout, Subscription
from .ports import RoomEvents


class Track(Protocol):
    """What the follower reads of a track (livekit_py.rtc.track.Track satisfies it)."""

    @property
    def sid(self) -> str: ...

    @property
    def kind(self) -> int: ...

    def _frame_source(self) -> FrameFanout: ...


class _Publication(Protocol):
    @property
    def source(self) -> int: ...

    @property
    def track(self) -> Track | None: ...


class _Participant(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def track_publications(self) -> Mapping[str, _Publication]: ...


logger = get_logger("room.follow")


class _Relay:
    """Sink on the current track: frames go to the follower; the track's end detaches."""

    def __init__(self, follower: ParticipantTrackFollower, track: Track) -> None:
        self.follower = follower
        self.track = track

    def on_frame(self, frame: AVFrame) -> None:
        self.follower.publish(frame)

    def on_end(self) -> None:
        self.follower._detach(self.track)


class ParticipantTrackFollower(FrameFanout):
    """A FrameFanout carrying the frames of ``participant``'s current track of ``source``.

    ``room`` is where the room's events come from (None: the participant is in no
    room, only its current track can be read); ``local`` says the participant is
    the local one (its tracks come with ``local_track_published``).
    """

    def __init__(
        self,
        room: RoomEvents | None,
        participant: _Participant,
        source: int,
        kind: int,
        *,
        local: bool = False,
    ) -> None:
        super().__init__()
        self._room = room
        self._local = local
        self._participant = participant
        self._source = source
        self._kind = kind
        self._current: Subscription | None = None
        self._current_track: Track | None = None
        self._listeners: list[tuple[str, Callable[..., None]]] = []
        events: tuple[tuple[str, Callable[..., None]], ...] = (
            ("track_subscribed", self._on_subscribed),
            ("local_track_published", self._on_local_published),
            ("participant_disconnected", self._on_participant_left),
            ("disconnected", self._on_room_disconnected),
        )
        if room is not None:
            for event, callback in events:
                room.on(event, callback)
                self._listeners.append((event, callback))
        for publication in participant.track_publications.values():
            track = publication.track
            if track is not None and self._matches(publication.source, track):
                self._attach(track)
                break
        if room is None and self._current_track is None:
            self.end()  # no room: no track can come

    def _matches(self, source: int, track: Track) -> bool:
        return source == self._source and track.kind == self._kind

    def _on_subscribed(self, track: Track, publication: _Publication, participant: object) -> None:
        if participant is self._participant and self._matches(publication.source, track):
            self._attach(track)

    def _on_local_published(self, publication: _Publication, track: Track) -> None:
        if self._local and self._matches(publication.source, track):
            self._attach(track)

    def _on_participant_left(self, participant: object) -> None:
        if participant is self._participant:
            self.end()

    def _on_room_disconnected(self, reason: int) -> None:
        self.end()

    def _attach(self, track: Track) -> None:
        if self._current_track is track or self.ended:
            return
        self._detach(self._current_track)
        logger.debug("following %s of %s", track.sid, self._participant.identity)
        self._current_track = track
        self._current = track._frame_source().subscribe(_Relay(self, track))

    def _detach(self, track: Track | None) -> None:
        if track is None or track is not self._current_track:
            return
        current, self._current, self._current_track = self._current, None, None
        if current is not None:
            current.close()
        if self._room is None:
            self.end()  # no room: this was the only track that could come

    def end(self) -> None:
        self._detach(self._current_track)
        room = self._room
        for event, callback in self._listeners:
            if room is not None:
                room.off(event, callback)
        self._listeners.clear()
        super().end()

    def _subscribers_changed(self) -> None:
        # The last reader went away: stop following.
        if self.subscriber_count == 0 and not self.ended:
            self.end()
