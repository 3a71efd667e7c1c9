"""Pre-encoded video: access units encoded elsewhere, published without decoding them.

:class:`EncodedVideoSource` takes complete encoded access units (:class:`EncodedVideoFrame`,
VP8 or H.264) from :meth:`EncodedVideoSource.capture_frame` and hands each one on at
once, through a :class:`~livekit_py.media.frame_source.FrameFanout`, to the tracks attached
to it (:mod:`livekit_py.webrtc.pre_encoded`), which give them to aiortc's sender to be
packetized as they are. The sender side posts what the upstream encoder should do
(produce a key frame, aim at a bitrate) into the source's mailbox, which
:meth:`EncodedVideoSource.take_feedback` empties.

Publish a ``LocalVideoTrack`` of this source with ``TrackPublishOptions(video_codec=...,
video_encoder=VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED, simulcast=False)``, as in
the official SDK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from ..media.frame_source import FrameFanout
from ..types import EncodedFrameType, FrameMetadata, VideoCodec

__all__ = [
    "CapturedEncodedFrame",
    "EncodedRateControl",
    "EncodedVideoFrame",
    "EncodedVideoSource",
    "EncodedVideoSourceFeedback",
    "SENDABLE_CODECS",
]

logger = get_logger("media.encoded_video")

SENDABLE_CODECS = frozenset({int(VideoCodec.VP8), int(VideoCodec.H264)})
"""The ``VideoCodec`` values livekit-py can send pre-encoded: aiortc packetizes VP8 and H.264."""

_CODECS = frozenset(int(value) for _, value in VideoCodec.items())
_FRAME_TYPES = frozenset(int(value) for _, value in EncodedFrameType.items())


def _codec_name(codec: int) -> str:
    return VideoCodec.Name(codec) if codec in _CODECS else str(codec)


def _check_dimension(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class EncodedVideoFrame:
    """One complete encoded access unit, without a container or RTP headers.

    ``data`` holds a single frame in ``codec``: for H.264 an Annex-B access unit (NAL
    units after 3- or 4-byte start codes; a key frame carries its SPS and PPS), for VP8
    one frame as libvpx writes it. ``timestamp_us`` is its capture time in microseconds,
    increasing along the stream (0: the time :meth:`EncodedVideoSource.capture_frame` is
    called). The codec must match the publication and stay the same for the source's
    lifetime. ``metadata`` is sent with the frame as a packet trailer when the
    publication asked for ``frame_metadata_features``.

    Raises:
        TypeError: If ``data`` is not ``bytes`` (as in the official SDK).
        ValueError: If ``data`` is empty, a dimension is not a positive int, ``codec`` is
            not a ``VideoCodec`` value, ``frame_type`` not an ``EncodedFrameType`` value,
            ``timestamp_us`` not an int or ``metadata`` not a ``FrameMetadata``.
    """

    data: bytes
    width: int
    height: int
    codec: int
    frame_type: int
    timestamp_us: int
    metadata: FrameMetadata | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise TypeError(f"encoded frame data must be bytes, got {type(self.data).__name__}")
        if not self.data:
            raise ValueError("encoded frame data must not be empty")
        width = _check_dimension("width", self.width)
        height = _check_dimension("height", self.height)
        if width <= 0 or height <= 0:
            raise ValueError(f"encoded frame dimensions must be positive, got {width}x{height}")
        if isinstance(self.codec, bool) or self.codec not in _CODECS:
            raise ValueError(f"codec must be a VideoCodec value, got {self.codec!r}")
        if isinstance(self.frame_type, bool) or self.frame_type not in _FRAME_TYPES:
            raise ValueError(
                f"frame_type must be an EncodedFrameType value, got {self.frame_type!r}"
            )
        if isinstance(self.timestamp_us, bool) or not isinstance(self.timestamp_us, int):
            raise ValueError(
                "timestamp_us must be an int (microseconds), "
                f"got {type(self.timestamp_us).__name__}"
            )
        if self.metadata is not None and not isinstance(self.metadata, FrameMetadata):
            raise ValueError(
                f"metadata must be a FrameMetadata or None, got {type(self.metadata).__name__}"
            )

    @property
    def is_keyframe(self) -> bool:
        """Whether ``frame_type`` is ``ENCODED_FRAME_KEY``."""
        return self.frame_type == EncodedFrameType.ENCODED_FRAME_KEY


@dataclass(frozen=True)
class EncodedRateControl:
    """The latest bitrate and frame-rate targets for the upstream encoder.

    Attributes:
        target_bitrate_bps: The bitrate to aim at, in bits per second.
        framerate_fps: The frame rate to aim at, in frames per second.
    """

    target_bitrate_bps: int
    framerate_fps: float


@dataclass(frozen=True)
class EncodedVideoSourceFeedback:
    """Encoder feedback consumed since the previous call to ``take_feedback``.

    Attributes:
        keyframe_requested: Whether a key frame was asked for: a receiver lost the
            picture (PLI/FIR from the server, a subscriber joining late), frames were
            dropped before sending, or no key frame was sent yet while delta frames were.
        rate_control: The newest rate-control target, None when it did not change.
    """

    keyframe_requested: bool
    rate_control: EncodedRateControl | None


@dataclass(frozen=True, eq=False)
class CapturedEncodedFrame:
    """One frame given to :meth:`EncodedVideoSource.capture_frame`, as its fan-out carries it.

    Attributes:
        frame: The frame (immutable: its bytes are shared, not copied).
        capture_time: The source clock's time of the capture, in seconds.
    """

    frame: EncodedVideoFrame
    capture_time: float


class EncodedVideoSource:
    """Publish pre-encoded video without decoding or re-encoding it.

    Create a ``LocalVideoTrack`` with this source and publish it with a matching
    ``video_codec`` (VP8 or H264), ``video_encoder=ENCODER_BACKEND_PRE_ENCODED`` and
    ``simulcast=False``. Feed complete access units at the intended playback rate: this
    source does not pace or buffer a file for playback, and every frame is sent as soon
    as the sender takes it (no frame-rate cap applies). Use H.264 without B-frames
    (baseline or constrained baseline profile, as WebRTC receivers expect).

    Poll :meth:`take_feedback` and forward key-frame and rate-control requests to the
    upstream encoder: a demuxer alone cannot produce a new key frame or adapt the
    encoded bitrate. Call :meth:`capture_frame` from a single producer.
    """

    def __init__(self, width: int, height: int, *, clock: MediaClock | None = None) -> None:
        """Create a source with the initial encoded frame dimensions.

        Args:
            width: Width in pixels of the encoded pictures (announced to the server).
            height: Height in pixels of the encoded pictures.
            clock: Where capture times come from (they time frames captured with
                ``timestamp_us == 0``); the running event loop's time when omitted.

        Raises:
            ValueError: If a dimension is not a positive int.
        """
        width = _check_dimension("width", width)
        height = _check_dimension("height", height)
        if width <= 0 or height <= 0:
            raise ValueError(f"encoded source dimensions must be positive, got {width}x{height}")
        self._width = width
        self._height = height
        self._clock = resolve_clock(clock)
        self._fanout = FrameFanout()  # its sinks take CapturedEncodedFrame objects
        self._codec: int | None = None
        self._keyframe_requested = False
        self._rate_control: EncodedRateControl | None = None
        self._closed = False

    @property
    def width(self) -> int:
        """The width given at construction, in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """The height given at construction, in pixels."""
        return self._height

    @property
    def codec(self) -> int | None:
        """The ``VideoCodec`` of this source's frames: fixed by the first frame captured or
        the first publication, whichever comes first; None before either."""
        return self._codec

    def capture_frame(self, frame: EncodedVideoFrame) -> bool:
        """Submit a frame; return whether the source accepted it.

        The frame is handed to the attached tracks at once (its bytes are not copied:
        ``bytes`` cannot change). Acceptance does not guarantee delivery to subscribers:
        a frame captured while no track is published, or while the track is muted, goes
        nowhere. After :meth:`aclose` nothing is accepted and False is returned.

        Raises:
            ValueError: If ``frame`` is not an :class:`EncodedVideoFrame`, its codec cannot
                be sent (livekit-py sends VP8 and H264), or it is not the codec of the
                source's earlier frames or of its publication.
        """
        if not isinstance(frame, EncodedVideoFrame):
            raise ValueError(f"frame must be an EncodedVideoFrame, got {type(frame).__name__}")
        if self._closed:
            return False
        self._bind_codec(frame.codec, "frame")
        self._fanout.publish_item(CapturedEncodedFrame(frame, self._clock.now()))
        return True

    def take_feedback(self) -> EncodedVideoSourceFeedback:
        """Consume pending feedback, including requests from late subscribers.

        A key-frame request stays pending until taken, however many were made; the
        rate control is the newest target posted since the previous call.
        """
        feedback = EncodedVideoSourceFeedback(self._keyframe_requested, self._rate_control)
        self._keyframe_requested = False
        self._rate_control = None
        return feedback

    async def aclose(self) -> None:
        """Close the source: attached tracks end, later captures are refused. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fanout.end()

    # -- for the sender side (livekit_py.webrtc.pre_encoded) and the track -------------

    def _bind_codec(self, codec: int, what: str) -> None:
        """Fix the source's codec to ``codec`` or check that it already is.

        Raises:
            ValueError: If ``codec`` cannot be sent, or another codec is already fixed.
        """
        if codec not in SENDABLE_CODECS:
            raise ValueError(
                f"pre-encoded {_codec_name(codec)} cannot be sent: livekit-py (aiortc) "
                "packetizes VP8 and H264 only"
            )
        if self._codec is None:
            self._codec = codec
        elif codec != self._codec:
            raise ValueError(
                f"this {what} is {_codec_name(codec)} but the source's frames are "
                f"{_codec_name(self._codec)}: the codec of an EncodedVideoSource is fixed "
                "for its lifetime and must match the publication's video_codec"
            )

    def _post_feedback(
        self, keyframe_requested: bool, rate_control: EncodedRateControl | None
    ) -> None:
        """What the sender side wants of the upstream encoder, until :meth:`take_feedback`."""
        if keyframe_requested:
            self._keyframe_requested = True
        if rate_control is not None:
            if not (
                rate_control.target_bitrate_bps > 0 and math.isfinite(rate_control.framerate_fps)
            ):
                logger.debug("ignoring a rate control with no target: %s", rate_control)
                return
            self._rate_control = rate_control

    def __repr__(self) -> str:
        return f"rtc.EncodedVideoSource(width={self._width}, height={self._height})"
