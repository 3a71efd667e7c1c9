"""Data tracks (``livekit.rtc.data_track``): so far only the error a push raises."""

from __future__ import annotations

__all__ = ["PushFrameError"]


class PushFrameError(Exception):
    """A frame could not be pushed to a data track: the track was unpublished (by us or
    the server), the room is no longer connected, or frames are pushed too fast."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
