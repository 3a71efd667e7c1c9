"""Real-time video source: the newest captured picture, and the aiortc track that sends it.

:class:`VideoSource` takes pictures from :meth:`VideoSource.capture_frame` without ever
waiting and publishes each one, as a :class:`CapturedVideoFrame`, through a
:class:`~.frame_source.FrameFanout`. :class:`VideoSourceTrack` is an aiortc
``MediaStreamTrack`` subscribed to that fan-out: it keeps only the newest picture not yet
sent, and an ``RTCRtpSender`` reads it as ``yuv420p`` :class:`av.VideoFrame` objects on
the 90 kHz RTP clock.

What the source's fan-out publishes is a :class:`CapturedVideoFrame` (not a PyAV frame):
the captured picture in its original layout and size, its timestamp and rotation. The
track's ``_sent`` fan-out publishes the :class:`av.VideoFrame` objects it returned, each
carrying a :class:`SentFrameInfo` in its ``opaque`` attribute. A
:class:`~.video_stream.VideoStream` reads either.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..log import get_logger
from ..media.frame_source import AVFrame, FrameFanout, FrameSink
from ..types import VideoRotation
from .video_frame import VideoFrame, _buffer_size, _to_av_frame

__all__ = ["CapturedVideoFrame", "SentFrameInfo", "VideoSource", "VideoSourceTrack"]

logger = get_logger("media.video_source")

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)

# While muted, a track sends a black picture this often (frames per second). Black
# pictures cost next to nothing to encode and send, and a keyframe request made while
# muted is answered with the next one.
MUTED_FRAME_RATE = 1.0
# When nothing was captured for this long (seconds), the track sends its last picture
# again, so that a receiver asking for a keyframe (one joining late) gets a picture of a
# source that only captures when the picture changes.
IDLE_REPEAT_INTERVAL = 1.0

_ROTATIONS = frozenset(int(value) for _, value in VideoRotation.items())


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


@dataclass(frozen=True, eq=False)
class CapturedVideoFrame:
    """One picture given to :meth:`VideoSource.capture_frame`, as the source publishes it.

    Attributes:
        frame: A private copy of the captured frame, in its own layout and size. It is
            shared by every subscriber: do not modify it.
        timestamp_us: The ``timestamp_us`` given to ``capture_frame`` (0: none given).
        rotation: The ``VideoRotation`` given to ``capture_frame``.
        capture_time: ``time.monotonic()`` when the frame was captured, in seconds.
    """

    frame: VideoFrame
    timestamp_us: int
    rotation: int
    capture_time: float

    @property
    def effective_timestamp_us(self) -> int:
        """``timestamp_us`` when given, else the monotonic capture time in microseconds."""
        return self.timestamp_us if self.timestamp_us > 0 else int(self.capture_time * 1e6)


@dataclass(frozen=True, eq=False)
class SentFrameInfo:
    """Attached (as ``opaque``) to each frame a :class:`VideoSourceTrack` returns.

    Attributes:
        timestamp_us: The capture timestamp of the picture (see
            :attr:`CapturedVideoFrame.effective_timestamp_us`); for black (muted) and
            repeated pictures, the monotonic time they were made at, in microseconds.
        rotation: The ``VideoRotation`` the picture was captured with.
    """

    timestamp_us: int
    rotation: int


class _CaptureFanout(FrameFanout):
    """The source's fan-out, carrying :class:`CapturedVideoFrame` objects."""

    def publish_captured(self, captured: CapturedVideoFrame) -> None:
        # Sinks of this fan-out take CapturedVideoFrame as well as PyAV frames; the
        # delivery itself (order, error isolation) is FrameFanout's.
        item: object = captured
        self.publish(item)  # type: ignore[arg-type]


class VideoSource:
    """A real-time video source: pictures captured by the application, newest first.

    :meth:`capture_frame` never waits: each call hands the picture on at once. An attached
    track sends pictures as fast as its encoder allows; when pictures come faster, the
    ones not yet picked up are replaced by newer ones (the newest always wins).

    Pictures of any size and any ``VideoBufferType`` are accepted. A picture whose size
    differs from the source's is scaled (stretched, aspect ratio not kept) to the
    source's width and height before it is encoded; the scaling and the conversion to
    I420 happen off the event loop, in the track's executor job, not in
    :meth:`capture_frame`. The ``rotation`` is kept with the picture for local readers;
    it is not sent to remote participants.
    """

    def __init__(self, width: int, height: int) -> None:
        """Create a source.

        Args:
            width: Width in pixels of the video sent from this source.
            height: Height in pixels of the video sent from this source.

        Raises:
            ValueError: If a dimension is not a positive int.
        """
        self._width = _check_size("width", width)
        self._height = _check_size("height", height)
        self._fanout: _CaptureFanout = _CaptureFanout()
        self._captured = 0
        self._closed = False

    @property
    def width(self) -> int:
        """Width of the video sent from this source, in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Height of the video sent from this source, in pixels."""
        return self._height

    def capture_frame(
        self,
        frame: VideoFrame,
        *,
        timestamp_us: int = 0,
        rotation: int = VideoRotation.VIDEO_ROTATION_0,
    ) -> None:
        """Hand a picture to the attached tracks; returns at once, never waits.

        The picture's bytes are copied, so the caller may reuse ``frame`` right away.
        Nothing else is done here: conversion and scaling to the source's size happen when
        a track sends the picture, off the event loop. Pictures captured while no track is
        attached, or after :meth:`aclose`, are dropped.

        Args:
            frame: The picture, in any size and layout. Other sizes than the source's are
                scaled to the source's size (aspect ratio not kept).
            timestamp_us: Capture time in microseconds, on any clock that increases; 0
                (the default) uses the time of this call. Sent pictures are timed by it.
            rotation: A ``VideoRotation`` value, kept with the picture for local readers.

        Raises:
            ValueError: If ``frame`` is not a VideoFrame, ``timestamp_us`` is not an int
                of at least 0, or ``rotation`` is not a ``VideoRotation`` value.
        """
        if not isinstance(frame, VideoFrame):
            raise ValueError(f"frame must be a VideoFrame, got {type(frame).__name__}")
        if isinstance(timestamp_us, bool) or not isinstance(timestamp_us, int):
            raise ValueError(f"timestamp_us must be an int, got {type(timestamp_us).__name__}")
        if timestamp_us < 0:
            raise ValueError(f"timestamp_us must not be negative, got {timestamp_us}")
        if isinstance(rotation, bool) or rotation not in _ROTATIONS:
            raise ValueError(f"rotation must be a VideoRotation value, got {rotation!r}")
        if self._closed or self._fanout.subscriber_count == 0:
            return
        now = time.monotonic()
        size = _buffer_size(frame.type, frame.width, frame.height)
        # one memory copy: the caller may refill its buffer as soon as this returns
        copy = VideoFrame._wrap(frame.width, frame.height, frame.type, bytearray(frame.data[:size]))
        self._captured += 1
        self._fanout.publish_captured(CapturedVideoFrame(copy, timestamp_us, int(rotation), now))

    async def aclose(self) -> None:
        """Close the source: attached tracks end, later captures are ignored."""
        if self._closed:
            return
        self._closed = True
        self._fanout.end()

    def __repr__(self) -> str:
        return f"rtc.VideoSource(width={self._width}, height={self._height})"


def _prepare(frame: VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` as a ``yuv420p`` PyAV frame of ``width`` x ``height`` (runs in a thread)."""
    out = _to_av_frame(frame)
    if out.width != width or out.height != height:
        out = out.reformat(width=width, height=height, format="yuv420p", interpolation="BILINEAR")
    return out


def _black(width: int, height: int) -> av.VideoFrame:
    """A black ``yuv420p`` picture (limited range: Y 16, U and V 128)."""
    out = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(out.planes, (16, 128, 128), strict=True):
        np.frombuffer(memoryview(plane), dtype=np.uint8)[...] = value
    return out


class VideoSourceTrack(MediaStreamTrack):
    """The aiortc track of a :class:`VideoSource`: what an ``RTCRtpSender`` sends.

    :meth:`recv` returns the newest captured picture not sent yet (older unsent pictures
    are dropped), as a ``yuv420p`` :class:`av.VideoFrame` of the source's size, converted
    and scaled in the loop's default executor. Timestamps are on the 90 kHz RTP clock
    (``time_base`` 1/90000) and strictly increase: they follow the captured
    ``timestamp_us`` values while those increase, else the monotonic capture times.

    When no picture was captured for :data:`IDLE_REPEAT_INTERVAL` seconds, the last one is
    sent again. While :attr:`muted` is true, captured pictures are dropped and a black
    picture is returned :data:`MUTED_FRAME_RATE` times per second instead. Every frame
    returned is also published through ``_sent``. The track ends when it is stopped or
    its source is closed.
    """

    kind = "video"

    def __init__(self, source: VideoSource) -> None:
        """Attach a new track to ``source``; pictures captured from now on are kept."""
        if not isinstance(source, VideoSource):
            raise ValueError(f"source must be a VideoSource, got {type(source).__name__}")
        super().__init__()
        self._source = source
        self._sent = FrameFanout()
        self._muted = False
        self._pending: Optional[CapturedVideoFrame] = None
        self._last: Optional[CapturedVideoFrame] = None
        self._wake = asyncio.Event()
        self._source_ended = False
        self._stopped = False
        self._dropped = 0
        # timing of the previous returned frame
        self._last_pts: Optional[int] = None
        self._last_clock = 0.0  # monotonic seconds
        self._last_user_us: Optional[int] = None  # its captured timestamp_us, if given
        self._last_sent_at: Optional[float] = None  # monotonic time recv() returned it
        self._last_black_at: Optional[float] = None
        sink: FrameSink = self
        self._subscription = source._fanout.subscribe(sink)

    @property
    def source(self) -> VideoSource:
        """The source sent by this track."""
        return self._source

    @property
    def muted(self) -> bool:
        """Whether black pictures are sent instead of the captured ones."""
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        value = bool(value)
        if value != self._muted:
            self._muted = value
            self._last_black_at = None
            if value:
                self._pending = None
            self._wake.set()

    @property
    def dropped_frames(self) -> int:
        """Captured pictures replaced by newer ones before they could be sent."""
        return self._dropped

    # ------------------------------------------------------------------ sink side

    def on_frame(self, frame: Union[AVFrame, CapturedVideoFrame]) -> None:
        if not isinstance(frame, CapturedVideoFrame) or self._stopped:
            return
        self._last = frame
        if self._muted:
            return
        if self._pending is not None:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 300 == 0:
                logger.debug(
                    "video track %s: encoder behind the captures, %d picture(s) skipped",
                    self.id,
                    self._dropped,
                )
        self._pending = frame
        self._wake.set()

    def on_end(self) -> None:
        self._source_ended = True
        self._wake.set()

    # ------------------------------------------------------------------ reader side

    async def recv(self) -> AVFrame:
        """The next picture to send.

        A picture that cannot be converted is logged and skipped.

        Raises:
            MediaStreamError: Once the track is stopped or its source closed.
        """
        while True:
            work, captured, repeat_of = await self._next_job()
            try:
                out = await work
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("video track %s: cannot prepare a picture, skipping it", self.id)
                if self._last is (captured or repeat_of):
                    self._last = None  # not to be repeated either
                continue
            if self._stopped:
                raise MediaStreamError
            self._stamp(out, captured, repeat_of)
            self._last_sent_at = time.monotonic()
            self._sent.publish(out)
            return out

    async def _next_job(
        self,
    ) -> tuple[
        asyncio.Future[av.VideoFrame], Optional[CapturedVideoFrame], Optional[CapturedVideoFrame]
    ]:
        """Wait for something to send and start preparing it in the executor.

        Returns:
            The executor job, the newly captured picture it prepares (None for a black or
            repeated picture) and the repeated picture (None otherwise).
        """
        loop = asyncio.get_running_loop()
        width, height = self._source.width, self._source.height
        while True:
            if self._stopped or self.readyState != "live":
                raise MediaStreamError
            if self._source_ended:
                self.stop()
                raise MediaStreamError
            now = time.monotonic()
            if self._muted:
                due = now
                if self._last_black_at is not None:
                    due = self._last_black_at + 1.0 / MUTED_FRAME_RATE
                if now >= due:
                    self._last_black_at = now
                    return loop.run_in_executor(None, _black, width, height), None, None
                await self._sleep(due - now)
            elif self._pending is not None:
                captured, self._pending = self._pending, None
                job = loop.run_in_executor(None, _prepare, captured.frame, width, height)
                return job, captured, None
            elif self._last is not None and self._last_sent_at is not None:
                due = self._last_sent_at + IDLE_REPEAT_INTERVAL
                if now >= due:
                    last = self._last
                    return (
                        loop.run_in_executor(None, _prepare, last.frame, width, height),
                        None,
                        last,
                    )
                await self._sleep(due - now)
            else:
                await self._sleep(None)

    async def _sleep(self, seconds: Optional[float]) -> None:
        """Wait for news (a capture, mute change, the end) or ``seconds``."""
        self._wake.clear()
        if seconds is None:
            await self._wake.wait()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        except asyncio.TimeoutError:
            pass

    def _stamp(
        self,
        out: av.VideoFrame,
        captured: Optional[CapturedVideoFrame],
        repeat_of: Optional[CapturedVideoFrame],
    ) -> None:
        """Give ``out`` its 90 kHz timestamp and its :class:`SentFrameInfo`."""
        if captured is not None:
            clock = captured.capture_time
            user_us: Optional[int] = captured.timestamp_us or None
            info = SentFrameInfo(captured.effective_timestamp_us, captured.rotation)
        else:
            clock = time.monotonic()
            user_us = None
            rotation = repeat_of.rotation if repeat_of is not None else 0
            info = SentFrameInfo(int(clock * 1e6), rotation)
        if self._last_pts is None:
            pts = 0
        else:
            last_user_us = self._last_user_us
            if user_us is not None and last_user_us is not None and user_us > last_user_us:
                delta = (user_us - last_user_us) * VIDEO_CLOCK_RATE // 1_000_000
            else:
                delta = round((clock - self._last_clock) * VIDEO_CLOCK_RATE)
            pts = self._last_pts + max(1, delta)
        self._last_pts = pts
        self._last_clock = max(clock, self._last_clock)
        self._last_user_us = user_us
        out.pts = pts
        out.time_base = VIDEO_TIME_BASE
        out.opaque = info

    def stop(self) -> None:
        """Detach from the source and end the track (and ``_sent``)."""
        if not self._stopped:
            self._stopped = True
            self._subscription.close()
            self._pending = None
            self._last = None
            self._wake.set()
            self._sent.end()
        super().stop()
