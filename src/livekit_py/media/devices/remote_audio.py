"""The remote audio tracks subscribed in any room, for ``PlatformAudio``'s automatic playout.

As the official SDK's platform audio device module plays every subscribed remote audio
track while a ``PlatformAudio`` exists, rooms report their subscribed remote audio tracks
here (:func:`track_subscribed` / :func:`track_unsubscribed`, on the event loop) and a
``PlatformAudio`` registers a :class:`RemoteAudioSink` to be told.  Media knows nothing of
rooms: a track is only something an ``AudioStream`` can read.
"""

from __future__ import annotations

import weakref
from typing import Protocol

from ...log import get_logger

__all__ = [
    "RemoteAudioSink",
    "add_sink",
    "remove_sink",
    "subscribed_tracks",
    "track_subscribed",
    "track_unsubscribed",
]

logger = get_logger("media.media_devices")


class RemoteAudioSink(Protocol):
    """Told about remote audio tracks as they are subscribed and unsubscribed."""

    def remote_audio_added(self, track: object) -> None:
        """``track`` was subscribed (called on the event loop)."""

    def remote_audio_removed(self, track: object) -> None:
        """``track`` was unsubscribed (called on the event loop)."""


# the subscribed tracks, in subscription order (a dict used as an ordered weak set)
_tracks: weakref.WeakKeyDictionary[object, None] = weakref.WeakKeyDictionary()
_sinks: list[RemoteAudioSink] = []


def subscribed_tracks() -> list[object]:
    """The remote audio tracks subscribed now, oldest first."""
    return list(_tracks)


def add_sink(sink: RemoteAudioSink) -> list[object]:
    """Register ``sink``; returns the tracks subscribed already (it is not told of them)."""
    if sink not in _sinks:
        _sinks.append(sink)
    return subscribed_tracks()


def remove_sink(sink: RemoteAudioSink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def track_subscribed(track: object) -> None:
    """A room subscribed to a remote audio track."""
    _tracks[track] = None
    for sink in list(_sinks):
        try:
            sink.remote_audio_added(track)
        except Exception:
            logger.exception("platform audio playout: cannot play a subscribed track")


def track_unsubscribed(track: object) -> None:
    """A room's remote audio track was unsubscribed (or replaced)."""
    if _tracks.pop(track, "absent") == "absent":
        return
    for sink in list(_sinks):
        try:
            sink.remote_audio_removed(track)
        except Exception:
            logger.exception("platform audio playout: cannot stop playing a track")
