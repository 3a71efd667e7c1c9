"""Real-time video source: captured pictures, handed on at once.

:class:`VideoSource` takes pictures from :meth:`VideoSource.capture_frame` without ever
waiting and publishes each one, as a :class:`CapturedVideoFrame`, through a
:class:`~livekit_py.media.frame_source.FrameFanout`. The aiortc track subscribed to that
fan-out, which an ``RTCRtpSender`` reads, lives in :mod:`livekit_py.webrtc.source_tracks`.

What the source's fan-out publishes is a :class:`CapturedVideoFrame` (not a PyAV frame):
the captured picture in its original layout and size, its timestamp and rotation. The
track's ``_sent`` fan-out publishes the :class:`av.VideoFrame` objects it returned, each
carrying a :class:`SentFrameInfo` in its ``opaque`` attribute. A
:class:`~livekit_py.rtc.video_stream.VideoStream` reads either.

Capture times come from the source's clock (a :class:`~livekit_py.media.clock.MediaClock`,
the event loop's by default); its track times what it sends on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._validate import check_int
from ..media.clock import MediaClock, resolve_clock
from ..media.frame_source import FrameFanout
from ..types import FrameMetadata, VideoRotation
from .video_frame import VideoFrame, _buffer_size

__all__ = ["CapturedVideoFrame", "SentFrameInfo", "VideoSource"]

_ROTATIONS = frozenset(int(value) for _, value in VideoRotation.items())


@dataclass(frozen=True, eq=False)
class CapturedVideoFrame:
    """One picture given to :meth:`VideoSource.capture_frame`, as the source publishes it.

    Attributes:
        frame: A private copy of the captured frame, in its own layout and size. It is
            shared by every subscriber: do not modify it.
        timestamp_us: The ``timestamp_us`` given to ``capture_frame`` (0: none given).
        rotation: The ``VideoRotation`` given to ``capture_frame``.
        capture_time: The source clock's time when the frame was captured, in seconds
            (``loop.time()``, that is ``time.monotonic()``, with the default clock).
        metadata: A copy of the ``metadata`` given to ``capture_frame`` (None: none).
    """

    frame: VideoFrame
    timestamp_us: int
    rotation: int
    capture_time: float
    metadata: FrameMetadata | None = None

    @property
    def effective_timestamp_us(self) -> int:
        """``timestamp_us`` when given, else the capture time in microseconds."""
        return self.timestamp_us if self.timestamp_us > 0 else int(self.capture_time * 1e6)


@dataclass(frozen=True, eq=False)
class SentFrameInfo:
    """Attached (as ``opaque``) to each frame a :class:`VideoSourceTrack` returns.

    Attributes:
        timestamp_us: The capture timestamp of the picture (see
            :attr:`CapturedVideoFrame.effective_timestamp_us`); for black (muted) and
            repeated pictures, the source clock's time they were made at, in microseconds.
        rotation: The ``VideoRotation`` the picture was captured with.
    """

    timestamp_us: int
    rotation: int


class VideoSource:
    """A real-time video source: pictures captured by the application.

    :meth:`capture_frame` never waits: each call hands the picture on at once. An attached
    track sends the pictures in capture order, as fast as its encoder allows; a picture
    still waiting when it is more than 100 ms older than the newest captured is dropped,
    so that a burst of captures (after a blocked event loop, say) is sent whole while an
    encoder slower than the captures adds no more than that to the latency.

    Pictures of any size and any ``VideoBufferType`` are accepted. A picture whose size
    differs from the source's is scaled (stretched, aspect ratio not kept) to the
    source's width and height before it is encoded; the scaling and the conversion to
    I420 happen off the event loop, in worker threads the track starts as pictures are
    captured, not in :meth:`capture_frame`. The ``rotation`` is kept with the picture for
    local readers; it is not sent to remote participants. The ``metadata`` of a picture
    is sent with it (in a packet trailer) when the track was published with
    ``TrackPublishOptions.frame_metadata_features``.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        is_screencast: bool = False,
        clock: MediaClock | None = None,
    ) -> None:
        """Create a source.

        Args:
            width: Width in pixels of the video sent from this source.
            height: Height in pixels of the video sent from this source.
            is_screencast: The pictures are screen content (text, windows). As the
                official SDK (whose libwebrtc then treats the content as screen), a
                track of this source is encoded for it: the resolution is never
                lowered (livekit-py never lowers it anyway), the bitrate stays at or
                above 1.2 Mbps (or the publication's cap, if lower) whatever the
                bandwidth estimate, and VP8 runs libvpx's screen-content mode without
                denoising. Like the official SDK, it changes neither the layers nor the
                presets: those follow the publication's ``source``
                (``SOURCE_SCREENSHARE``). When nothing is captured the last picture is
                sent again once a second, for every source.
            clock: Where capture times (and the timing of the attached tracks) come
                from; the running event loop's time when omitted.

        Raises:
            ValueError: If a dimension is not a positive int or ``is_screencast`` is
                not a bool.
        """
        self._width = check_int("width", width)
        self._height = check_int("height", height)
        if not isinstance(is_screencast, bool):
            raise ValueError(f"is_screencast must be a bool, got {type(is_screencast).__name__}")
        self._is_screencast = is_screencast
        self._clock = resolve_clock(clock)
        # its sinks take CapturedVideoFrame objects (publish_item)
        self._fanout = FrameFanout()
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

    @property
    def is_screencast(self) -> bool:
        """Whether the source holds screen content (see the constructor)."""
        return self._is_screencast

    def capture_frame(
        self,
        frame: VideoFrame,
        *,
        timestamp_us: int = 0,
        rotation: int = VideoRotation.VIDEO_ROTATION_0,
        metadata: FrameMetadata | None = None,
    ) -> None:
        """Hand a picture to the attached tracks; returns at once, never waits.

        The picture's bytes are copied, so the caller may reuse ``frame`` right away.
        Nothing else is done here: conversion and scaling to the source's size happen in
        a worker thread an attached track starts, off the event loop. Pictures captured
        while no track is attached, or after :meth:`aclose`, are dropped.

        Args:
            frame: The picture, in any size and layout. Other sizes than the source's are
                scaled to the source's size (aspect ratio not kept).
            timestamp_us: Capture time in microseconds, on any clock that increases; 0
                (the default) uses the time of this call. Sent pictures are timed by it.
            rotation: A ``VideoRotation`` value, kept with the picture for local readers.
            metadata: Sent with this picture to the subscribers (``user_timestamp``,
                ``frame_id``, ``user_data``; as the official SDK, whatever fields are set
                and not zero or empty), on every simulcast layer, when the track was
                published with ``frame_metadata_features``; ignored otherwise. User
                data beyond what the packet trailer has room for (248 bytes less 10
                with a timestamp, less 6 with a frame id) is dropped with a warning.

        Raises:
            ValueError: If ``frame`` is not a VideoFrame, ``timestamp_us`` is not an int
                of at least 0, ``rotation`` is not a ``VideoRotation`` value, or
                ``metadata`` is not a ``FrameMetadata``.
        """
        if not isinstance(frame, VideoFrame):
            raise ValueError(f"frame must be a VideoFrame, got {type(frame).__name__}")
        if isinstance(timestamp_us, bool) or not isinstance(timestamp_us, int):
            raise ValueError(f"timestamp_us must be an int, got {type(timestamp_us).__name__}")
        if timestamp_us < 0:
            raise ValueError(f"timestamp_us must not be negative, got {timestamp_us}")
        if isinstance(rotation, bool) or rotation not in _ROTATIONS:
            raise ValueError(f"rotation must be a VideoRotation value, got {rotation!r}")
        if metadata is not None and not isinstance(metadata, FrameMetadata):
            raise ValueError(f"metadata must be a FrameMetadata, got {type(metadata).__name__}")
        if self._closed or self._fanout.subscriber_count == 0:
            return
        kept: FrameMetadata | None = None
        if metadata is not None:
            kept = FrameMetadata()
            kept.CopyFrom(metadata)
        now = self._clock.now()
        size = _buffer_size(frame.type, frame.width, frame.height)
        # one memory copy: the caller may refill its buffer as soon as this returns
        copy = VideoFrame._wrap(frame.width, frame.height, frame.type, bytearray(frame.data[:size]))
        self._captured += 1
        self._fanout.publish_item(CapturedVideoFrame(copy, timestamp_us, int(rotation), now, kept))

    async def aclose(self) -> None:
        """Close the source: attached tracks end, later captures are ignored."""
        if self._closed:
            return
        self._closed = True
        self._fanout.end()

    def __repr__(self) -> str:
        screencast = ", is_screencast=True" if self._is_screencast else ""
        return f"rtc.VideoSource(width={self._width}, height={self._height}{screencast})"
