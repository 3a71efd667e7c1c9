"""``VideoStream``: the pictures of a video track as an async iterator of frame events."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av

from ..log import get_logger
from ..media.frame_source import AVFrame, FrameFanout, Subscription, fanout_of
from ..session.ports import FollowsTracks
from ..types import FrameMetadata, TrackKind, VideoBufferType, VideoRotation
from .video_frame import VideoFrame, _from_av_frame
from .video_source import CapturedVideoFrame, SentFrameInfo

if TYPE_CHECKING:
    from .participant import Participant
    from .track import Track

__all__ = ["VideoFrameEvent", "VideoStream"]

logger = get_logger("media.video_stream")

# Pictures up to this many pixels are converted on the event loop (a conversion costs
# well under 0.1 ms at this size, less than a trip through the executor); larger ones in
# the loop's default executor.
_INLINE_MAX_PIXELS = 160 * 120

_RTP_WRAP = 1 << 32
_RTP_TIME_BASE = Fraction(1, 90000)

_BUFFER_TYPES = frozenset(int(value) for _, value in VideoBufferType.items())
_I420 = int(VideoBufferType.I420)


@dataclass
class VideoFrameEvent:
    """One picture from a :class:`VideoStream`.

    Attributes:
        frame: The picture, in the stream's format (I420 when none was asked for).
        timestamp_us: When the picture was taken, in microseconds: the capture timestamp
            for a local track, the RTP timestamp (90 kHz clock, converted) for a remote one.
        rotation: The picture's ``VideoRotation`` (always 0 for remote tracks: rotation
            is not received).
        metadata: The frame metadata the publisher sent with this picture (user
            timestamp, frame id, user data: the fields it set), or None when the frame
            carried none; always None for local tracks, as in the official SDK.
    """

    frame: VideoFrame
    timestamp_us: int
    rotation: int
    metadata: FrameMetadata | None = None


@dataclass
class _Pending:
    """A picture waiting for the reader, not converted yet."""

    item: av.VideoFrame | VideoFrame
    timestamp_us: int
    rotation: int
    metadata: FrameMetadata | None = None


def _convert(item: av.VideoFrame | VideoFrame, format: int | None) -> VideoFrame:
    """The picture as a new VideoFrame in ``format`` (I420 when None)."""
    if isinstance(item, av.VideoFrame):
        frame = _from_av_frame(item)  # a new I420 frame
        if format is None or format == _I420:
            return frame
        return frame.convert(format)
    # a captured picture shared with other readers: always a new frame
    return item.convert(_I420 if format is None else format)


def _pixels(item: av.VideoFrame | VideoFrame) -> int:
    return int(item.width) * int(item.height)


class _RtpUnwrapper:
    """Turns 32-bit RTP timestamps (which wrap every 13 hours) into ever-growing ones."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._cycles = 0

    def reset(self) -> None:
        self._last = None
        self._cycles = 0

    def unwrap(self, pts: int) -> int:
        last = self._last
        if last is not None and pts < last and last - pts > _RTP_WRAP // 2:
            self._cycles += 1
        self._last = pts
        return pts + self._cycles * _RTP_WRAP


def _check_format(format: object) -> int | None:
    if format is None:
        return None
    to_index = getattr(format, "__index__", None)
    if isinstance(format, bool) or to_index is None or int(to_index()) not in _BUFFER_TYPES:
        raise ValueError(f"format must be a VideoBufferType value or None, got {format!r}")
    return int(to_index())


def _fanout_of(track: object) -> FrameFanout:
    return fanout_of(track, TrackKind.KIND_VIDEO)


class _Sink:
    """Subscribed to one fan-out on behalf of a stream (the stream may switch tracks)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: VideoStream) -> None:
        self._stream = stream

    def on_frame(self, frame: AVFrame | CapturedVideoFrame) -> None:
        self._stream._on_frame(self, frame)

    def on_end(self) -> None:
        self._stream._on_source_end(self)


class VideoStream:
    """Receives the pictures of a video track as an async iterator of
    :class:`VideoFrameEvent`.

    Pictures come in the requested ``format`` (I420 when none is given), at the size they
    were received (remote tracks) or sent (local tracks). Conversion of pictures larger
    than 160x120 runs in the event loop's default executor, one picture at a time, so the
    order is kept. Iteration ends when the track's video ends (unsubscribed, unpublished,
    disconnected) or after :meth:`aclose`.
    """

    def __init__(
        self,
        track: Track | FrameFanout | None,
        loop: asyncio.AbstractEventLoop | None = None,
        capacity: int = 0,
        format: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Start receiving pictures from a track.

        Args:
            track: The video track to read (local or remote). May be ``None`` when
                ``participant`` and ``track_source`` are given in ``kwargs``.
            loop: The event loop the stream is used on; the running loop when omitted.
            capacity: How many pictures wait for the reader; 0 means no limit. When full,
                the oldest waiting picture is dropped.
            format: The ``VideoBufferType`` of the yielded frames; I420 when None.
            **kwargs: ``participant`` and ``track_source`` (see :meth:`from_participant`).

        Raises:
            ValueError: If an argument is out of range or of the wrong kind.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be an int >= 0, got {capacity!r}")
        self._format = _check_format(format)
        participant = kwargs.pop("participant", None)
        track_source = kwargs.pop("track_source", None)
        if kwargs:
            logger.warning("VideoStream: ignoring unknown argument(s) %s", ", ".join(kwargs))

        self._loop = loop
        self._capacity = capacity
        self._queue: deque[_Pending] = deque()
        self._ready = asyncio.Event()
        self._read_lock = asyncio.Lock()
        self._converting: asyncio.Future[VideoFrame] | None = None
        self._sink: _Sink | None = None
        self._subscription: Subscription | None = None
        self._unwrapper = _RtpUnwrapper()
        self._ended = False
        self._closed = False
        self._dropped = 0

        if participant is not None:
            if track_source is None:
                raise ValueError("track_source is required with participant")
            if isinstance(track_source, bool) or not isinstance(track_source, int):
                raise ValueError(f"track_source must be a TrackSource value, got {track_source!r}")
            if not isinstance(participant, FollowsTracks):
                raise ValueError(
                    f"participant must be a Participant, got {type(participant).__name__}"
                )
            # the room-level follower moves between the participant's tracks and ends
            # when the participant leaves
            self._attach(participant._follow_track(track_source, TrackKind.KIND_VIDEO))
        elif track is None:
            raise ValueError("track is required (or participant and track_source)")
        else:
            self._attach(_fanout_of(track))

    @classmethod
    def from_participant(
        cls,
        *,
        participant: Participant,
        track_source: int,
        loop: asyncio.AbstractEventLoop | None = None,
        format: int | None = None,
        capacity: int = 0,
    ) -> VideoStream:
        """A stream of the participant's video track of the given source.

        As in the official SDK, the track need not be there yet: the stream reads the
        participant's current track of that source, if any, then each track of that
        source it gets subscribed to later. It ends when the participant leaves or the
        room disconnects (or on :meth:`aclose`).

        Args:
            participant: The participant whose video to receive.
            track_source: Which of its tracks, e.g. ``TrackSource.SOURCE_CAMERA``.
            loop: See :class:`VideoStream`.
            format: See :class:`VideoStream`.
            capacity: See :class:`VideoStream`.

        Raises:
            ValueError: If ``participant`` is not a participant or ``track_source`` is not
                a ``TrackSource`` value.
        """
        return cls(
            None,
            loop=loop,
            capacity=capacity,
            format=format,
            participant=participant,
            track_source=track_source,
        )

    @classmethod
    def from_track(
        cls,
        *,
        track: Track,
        loop: asyncio.AbstractEventLoop | None = None,
        format: int | None = None,
        capacity: int = 0,
    ) -> VideoStream:
        """A stream of ``track``'s pictures; the arguments are those of :class:`VideoStream`."""
        return cls(track, loop=loop, capacity=capacity, format=format)

    # ------------------------------------------------------------------ sources

    def _attach(self, fanout: FrameFanout) -> None:
        """Read ``fanout`` from now on, instead of the current one."""
        if self._closed or self._ended:
            return
        self._detach()
        self._unwrapper.reset()
        sink = _Sink(self)
        self._sink = sink
        self._subscription = fanout.subscribe(sink)

    def _detach(self) -> None:
        subscription = self._subscription
        self._subscription = None
        self._sink = None
        if subscription is not None:
            subscription.close()

    def _end(self) -> None:
        """No picture follows the ones already waiting."""
        self._detach()
        self._ended = True
        self._ready.set()

    def _on_source_end(self, sink: _Sink) -> None:
        if sink is not self._sink:
            return  # a source we switched away from
        self._subscription = None
        self._sink = None
        self._end()

    def _on_frame(self, sink: _Sink, frame: AVFrame | CapturedVideoFrame) -> None:
        if self._closed or sink is not self._sink:
            return
        if isinstance(frame, av.VideoFrame):
            pending = self._pending_from_av(frame)
        elif isinstance(frame, CapturedVideoFrame):
            pending = _Pending(frame.frame, frame.effective_timestamp_us, frame.rotation)
        else:
            return  # audio
        if self._capacity and len(self._queue) >= self._capacity:
            self._queue.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 300 == 0:
                logger.debug("VideoStream: reader too slow, %d frame(s) dropped", self._dropped)
        self._queue.append(pending)
        self._ready.set()

    def _pending_from_av(self, frame: av.VideoFrame) -> _Pending:
        info = frame.opaque
        if isinstance(info, SentFrameInfo):
            return _Pending(frame, info.timestamp_us, info.rotation)
        timestamp_us = 0
        pts, time_base = frame.pts, frame.time_base
        if pts is not None and time_base is not None:
            if time_base == _RTP_TIME_BASE:
                pts = self._unwrapper.unwrap(pts)
            timestamp_us = int(pts * time_base * 1_000_000)
        metadata: FrameMetadata | None = None
        if isinstance(info, FrameMetadata):  # what the receiver found in the frame's trailer
            metadata = FrameMetadata()
            metadata.CopyFrom(info)  # each reader its own
        return _Pending(frame, timestamp_us, VideoRotation.VIDEO_ROTATION_0, metadata)

    # ------------------------------------------------------------------ reader side

    def __aiter__(self) -> AsyncIterator[VideoFrameEvent]:
        return self

    async def __anext__(self) -> VideoFrameEvent:
        async with self._read_lock:
            while True:
                if self._closed:
                    raise StopAsyncIteration
                if self._queue:
                    pending = self._queue.popleft()
                    break
                if self._ended:
                    raise StopAsyncIteration
                self._ready.clear()
                await self._ready.wait()
            if _pixels(pending.item) <= _INLINE_MAX_PIXELS:
                frame = _convert(pending.item, self._format)
            else:
                loop = self._loop or asyncio.get_running_loop()
                future = loop.run_in_executor(None, _convert, pending.item, self._format)
                self._converting = future
                try:
                    frame = await future
                finally:
                    self._converting = None
                if self._closed:
                    raise StopAsyncIteration
            return VideoFrameEvent(frame, pending.timestamp_us, pending.rotation, pending.metadata)

    async def aclose(self) -> None:
        """Stop receiving; iteration ends, pictures not yet read are discarded.

        A conversion under way in the executor is waited for (its result is dropped).
        """
        if self._closed:
            return
        self._closed = True
        self._detach()
        self._queue.clear()
        self._ready.set()
        future = self._converting
        if future is not None and not future.done():
            with contextlib.suppress(Exception):
                await asyncio.wait({future})

    def __repr__(self) -> str:
        name = "I420" if self._format is None else VideoBufferType.Name(self._format)
        return f"rtc.VideoStream(format={name}, capacity={self._capacity})"
