"""Data tracks: named, lossy, low-latency streams of frames between participants.

A participant publishes a data track by name (``LocalParticipant.publish_data_track``)
and pushes frames on it (:meth:`LocalDataTrack.try_push`); the others learn of it from
the room's ``data_track_published`` event (a :class:`RemoteDataTrack`), subscribe
(:meth:`RemoteDataTrack.subscribe`, an async iterator of :class:`DataTrackFrame`) and
see ``data_track_unpublished`` (its sid) when it goes. The server forwards a track's
frames only to the participants subscribed to it.

Delivery is as the official SDKs give it: each frame is sent once, never retransmitted,
on an unordered data channel; frames arrive whole and in the order they were pushed, or
not at all. A frame pushed while the previous one is still waiting for the connection
replaces it (the connection carries the newest frames, not a backlog), a frame the
subscriber reads too slowly is dropped from its buffer (the oldest first), and a frame
of which one packet is lost is dropped whole. With end-to-end encryption on in the room
(``RoomOptions.encryption``), every frame's payload is encrypted (AES-GCM, the sender's
key, as data packets are) and ``uses_e2ee`` is True.

This module holds the public classes; ``livekit_py.session.data_tracks`` publishes,
subscribes and moves the frames, through the
:class:`~livekit_py.session.ports.DataTrackPort` the tracks hold.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..log import get_logger
from ..session.ports import DataTrackPort

__all__ = [
    "DataTrackFrame",
    "DataTrackInfo",
    "DataTrackStream",
    "FrameFeed",
    "LocalDataTrack",
    "PublishDataTrackError",
    "PushFrameError",
    "RemoteDataTrack",
    "SubscribeDataTrackError",
]

logger = get_logger("room.data_track")

DEFAULT_BUFFER_SIZE = 16
"""Frames a stream keeps for its reader when ``subscribe`` is not told (as the official)."""

_U64 = 0xFFFF_FFFF_FFFF_FFFF


class SubscribeDataTrackError(Exception):
    """An error that can occur when subscribing to a data track: the track is unknown or
    was unpublished, the room is not connected, or the server did not answer in time.
    Raised when a :class:`DataTrackStream`'s iteration ends; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PushFrameError(Exception):
    """Frame could not be pushed to a data track.

    Pushing a frame can fail for several reasons:

    - The track has been unpublished by the local participant or SFU
    - The room is no longer connected
    - The track is being published again after a full reconnect
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PublishDataTrackError(Exception):
    """A data track could not be published: its name is invalid or taken, the token does
    not allow publishing data, the room is not connected, or the server did not answer.

    ``livekit_py.rtc.participant`` exports it, as the official module does. An invalid
    name (empty, or more than 256 UTF-8 bytes) is refused before anything is sent, with a
    ``PublishDataTrackError`` that is also a ``ValueError``; not being connected raises
    one that is also a ``ConnectionError``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class DataTrackInfo:
    """Information about a published data track."""

    sid: str
    """Unique track identifier assigned by the SFU.

    This identifier may change if a reconnect occurs. Use ``name`` if a
    stable identifier is needed.
    """

    name: str
    """Name of the track assigned by the publisher."""

    uses_e2ee: bool
    """Whether or not frames sent on the track use end-to-end encryption."""


@dataclass
class DataTrackFrame:
    """A frame published on a data track, consisting of a payload and optional metadata."""

    payload: bytes
    """The frame's payload."""

    user_timestamp: int | None = None
    """The frame's user timestamp (an unsigned 64-bit number), if one is associated."""


def _frame_parts(frame: object) -> tuple[bytes, int | None]:
    """The payload and user timestamp of a frame to push, checked."""
    if not isinstance(frame, DataTrackFrame):
        raise ValueError(f"try_push needs a DataTrackFrame, got {type(frame).__name__}")
    payload = frame.payload
    if isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise ValueError(
            f"DataTrackFrame.payload must be bytes, bytearray or memoryview, "
            f"got {type(payload).__name__}"
        )
    stamp = frame.user_timestamp
    if stamp is not None and (
        isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp <= _U64
    ):
        raise ValueError(
            f"DataTrackFrame.user_timestamp must be None or an int from 0 to 2**64 - 1, "
            f"got {stamp!r}"
        )
    return payload, stamp


class LocalDataTrack:
    """Data track published by the local participant (``publish_data_track`` makes it).

    Keep a reference while the track is to stay published: dropping the last one
    unpublishes it, as in the official SDK.
    """

    def __init__(self, info: DataTrackInfo, *, handle: int, port: DataTrackPort) -> None:
        self._info = info
        self._handle = handle
        self._port = port

    @property
    def info(self) -> DataTrackInfo:
        """Information about the data track."""
        return self._info

    def try_push(self, frame: DataTrackFrame) -> None:
        """Try pushing a frame to subscribers of the track.

        Returns at once: the frame goes out as soon as the connection takes it, unless a
        newer frame replaces it first (see the module docstring). An empty payload
        sends nothing, as in the official SDK.

        Args:
            frame: The data track frame to send.

        Raises:
            PushFrameError: If the push fails (the track is unpublished, the room is
                disconnected, or it is being published again after a full reconnect).
            ValueError: If ``frame`` is not a DataTrackFrame with a bytes-like payload
                and a user timestamp that fits in 64 unsigned bits.
        """
        payload, stamp = _frame_parts(frame)
        self._port.push_data_track_frame(self._handle, payload, stamp)

    def is_published(self) -> bool:
        """Whether or not the track is still published."""
        return self._port.local_data_track_published(self._handle)

    async def unpublish(self) -> None:
        """Unpublishes the track (the server is told; frames pushed later are refused)."""
        await self._port.unpublish_data_track(self._handle)

    def __repr__(self) -> str:
        return f"rtc.LocalDataTrack(sid={self._info.sid}, name={self._info.name})"


class RemoteDataTrack:
    """Data track published by a remote participant (from ``data_track_published``)."""

    def __init__(
        self, info: DataTrackInfo, *, publisher_identity: str, key: int, port: DataTrackPort
    ) -> None:
        self._info = info
        self._publisher_identity = publisher_identity
        self._key = key
        self._port = port

    @property
    def info(self) -> DataTrackInfo:
        """Information about the data track."""
        return self._info

    @property
    def publisher_identity(self) -> str:
        """Identity of the participant who published the track."""
        return self._publisher_identity

    def subscribe(self, *, buffer_size: int | None = None) -> DataTrackStream:
        """Subscribes to the data track to receive frames.

        The subscription is set up in the background; the stream yields the frames that
        arrive once it is (every stream of the track gets each frame). Closing the last
        stream of the track, or dropping it, unsubscribes.

        Args:
            buffer_size: Maximum number of received frames the stream keeps for its
                reader (the oldest is dropped when it is full). When ``None``, the
                default buffer size (16) is used. Zero is not a valid buffer size; if
                a value of zero is provided, it will be clamped to one.

        Returns a :class:`DataTrackStream` that yields :class:`DataTrackFrame` instances
        as they arrive. If the subscription encounters an error, it is raised as
        :class:`SubscribeDataTrackError` when iteration ends.

        Raises:
            ValueError: If ``buffer_size`` is not None or a non-negative int.
        """
        if buffer_size is None:
            size = DEFAULT_BUFFER_SIZE
        elif isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0:
            raise ValueError(f"buffer_size must be None or a non-negative int, not {buffer_size!r}")
        else:
            size = max(1, buffer_size)
        return DataTrackStream(self._port.subscribe_data_track(self._key, size))

    def is_published(self) -> bool:
        """Whether or not the track is still published."""
        return self._port.remote_data_track_published(self._key)

    def set_pipeline_options(self, *, max_partial_frames: int | None = None) -> None:
        """Configures options for the pipeline handling incoming packets for this track.

        These options apply to all current and future subscriptions of this track, and
        may be set at any time. New options take effect with the next received packet.

        Args:
            max_partial_frames: Maximum number of partial frames the depacketizer will
                track concurrently for this track. Defaults to 1. Higher values give more
                out-of-order tolerance for high-frequency senders at the cost of additional
                buffering. Zero is not a valid value; if a value of zero is provided, it
                will be clamped to one. When ``None``, the current value is kept.

        Raises:
            ValueError: If ``max_partial_frames`` is not None or a non-negative int.
        """
        if max_partial_frames is None:
            return
        if (
            isinstance(max_partial_frames, bool)
            or not isinstance(max_partial_frames, int)
            or not 0 <= max_partial_frames <= 1 << 31
        ):
            raise ValueError(
                f"max_partial_frames must be None or a non-negative int, not {max_partial_frames!r}"
            )
        self._port.set_data_track_pipeline(self._key, max(1, max_partial_frames))

    def __repr__(self) -> str:
        return (
            f"rtc.RemoteDataTrack(sid={self._info.sid}, name={self._info.name}, "
            f"publisher_identity={self._publisher_identity})"
        )


class FrameFeed:
    """The session's end of one :class:`DataTrackStream`: frames in, the end, the release.

    The session delivers frames (the oldest is dropped beyond ``buffer_size``) and ends
    the feed (normally, or with the error the subscription failed with); the stream
    reads them and releases the feed when it is closed or garbage collected, which calls
    ``on_release`` once.
    """

    def __init__(self, buffer_size: int, on_release: Callable[[FrameFeed], None]) -> None:
        self.buffer_size = max(1, buffer_size)
        self._frames: collections.deque[DataTrackFrame] = collections.deque(maxlen=self.buffer_size)
        self._on_release: Callable[[FrameFeed], None] | None = on_release
        self._ended = False
        self._error: SubscribeDataTrackError | None = None
        self._wakeup: asyncio.Event | None = None
        self.dropped = 0
        """Frames dropped because the reader did not keep up."""

    @property
    def released(self) -> bool:
        return self._on_release is None

    @property
    def ended(self) -> bool:
        return self._ended

    def deliver(self, frame: DataTrackFrame) -> None:
        if self._ended or self._on_release is None:
            return
        if len(self._frames) == self.buffer_size:
            self.dropped += 1
        self._frames.append(frame)
        self._wake()

    def end(self, error: SubscribeDataTrackError | None = None) -> None:
        """No more frames: the reader gets the buffered ones, then the end (or ``error``)."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._wake()

    def release(self) -> None:
        """The reader is gone: drop what is buffered and tell the session (once)."""
        callback, self._on_release = self._on_release, None
        self._frames.clear()
        self._ended = True
        self._wake()
        if callback is not None:
            callback(self)

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def next(self) -> DataTrackFrame | None:
        """The next frame; None at the end. Raises the error the feed ended with."""
        while True:
            if self._frames:
                return self._frames.popleft()
            if self._ended:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                return None
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()


class DataTrackStream:
    """An active subscription to a remote data track.

    Use as an async iterator to receive frames::

        stream = remote_track.subscribe()
        async for frame in stream:
            process(frame.payload)

    Dropping or closing the stream unsubscribes from the track (once every stream of
    the track is closed). Iteration ends when the track is unpublished or the room
    disconnects.

    If subscribing to the track fails, :class:`SubscribeDataTrackError`
    is raised when iteration ends instead of a normal ``StopAsyncIteration``.
    """

    def __init__(self, feed: FrameFeed) -> None:
        self._feed = feed
        self._closed = False
        # dropping the stream unsubscribes, as in the official SDK
        self._finalizer = weakref.finalize(self, feed.release)

    async def read(self) -> DataTrackFrame | None:
        """Read a single frame, or ``None`` if the stream has ended."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    def __aiter__(self) -> AsyncIterator[DataTrackFrame]:
        return self

    async def __anext__(self) -> DataTrackFrame:
        if self._closed:
            raise StopAsyncIteration
        try:
            frame = await self._feed.next()
        except SubscribeDataTrackError:
            self.close()
            raise
        if frame is None:
            self.close()
            raise StopAsyncIteration
        return frame

    def close(self) -> None:
        """Explicitly close the subscription and unsubscribe."""
        self._closed = True
        self._finalizer()

    async def aclose(self) -> None:
        self.close()
