"""Pre-encoded video on aiortc's sender: the track, the pass-through encoders, the feedback.

When a track's ``recv()`` returns an :class:`av.Packet` instead of a frame, aiortc's
``RTCRtpSender`` hands it to its encoder's ``pack()``, which only packetizes it. So an
:class:`~livekit_py.rtc.encoded_video.EncodedVideoSource` is published through:

* :class:`EncodedSourceTrack`, the aiortc track of the source: it returns each captured
  access unit, in capture order and as soon as the sender asks, as an ``av.Packet`` on
  the 90 kHz RTP clock (:class:`PtsMapper`), with ``is_keyframe`` from the frame type;
* :class:`PreEncodedVp8Encoder` / :class:`PreEncodedH264Encoder`, installed on the sender
  (:func:`~.encoders.configure_sender`), whose ``pack()`` is aiortc's through our
  :class:`~.aiortc_adapter.TransformingVp8Encoder` / ``TransformingH264Encoder``, so a
  ``frame_transform`` (end-to-end encryption) sees each access unit as it sees encoded
  ones. No frame-rate cap and no bitrate control apply: the bytes go out as given;
* :class:`PassthroughFeedback`, which turns what the sender learns into what the source's
  :meth:`~livekit_py.rtc.encoded_video.EncodedVideoSource.take_feedback` reports, the way
  the official SDK's pass-through encoder (libwebrtc) does: a request is handed on when
  the next frame reaches the encoder. Key-frame requests are the server's PLI/FIR (seen
  through :func:`~.aiortc_adapter.watch_keyframe_requests`); until a first key frame is
  sent, and after frames were dropped, every delta frame asks for one. The rate-control
  target is the publication's ``max_bitrate`` (``video_encoding``, else LiveKit's preset
  for the size) and its ``max_framerate`` (else the preset's), lowered by a receiver
  estimate (REMB) when one reaches the sender; the LiveKit server sends this publisher
  receiver reports and PLI/FIR only, so in practice the target stays the cap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import ClassVar

import av
from aiortc import RTCRtpSender
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from ..media.frame_source import AVFrame, FrameSink
from ..rtc.encoded_video import (
    CapturedEncodedFrame,
    EncodedRateControl,
    EncodedVideoSource,
)
from ..types import VideoCodec
from .aiortc_adapter import (
    TransformingH264Encoder,
    TransformingVp8Encoder,
    watch_keyframe_requests,
)
from .frame_metadata import FrameMetadataSender
from .video_codecs import VIDEO_CLOCK_RATE

__all__ = [
    "EncodedSourceTrack",
    "MAX_FRAME_WAIT",
    "MAX_FRAMES_WAITING",
    "PassthroughFeedback",
    "PreEncodedH264Encoder",
    "PreEncodedVp8Encoder",
    "PtsMapper",
    "attach_pre_encoded",
    "make_pre_encoded_encoder",
]

logger = get_logger("webrtc.pre_encoded")

VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)

# A captured access unit waits for the sender while it is at most this much older (capture
# time) than the newest one, and at most this many wait. The sender packs each at once,
# so a queue forms only before the publication is negotiated (or while the loop is
# starved); a dropped frame breaks the decoding of the ones after it, so the window is
# wider than a raw track's, and a drop asks the upstream encoder for a key frame.
MAX_FRAME_WAIT = 0.5
MAX_FRAMES_WAITING = 60

FeedbackPost = Callable[[bool, EncodedRateControl | None], None]
"""Takes (a key frame is requested, the new rate control or None): the source's mailbox."""


class PtsMapper:
    """Capture times of access units → strictly increasing timestamps on the 90 kHz clock.

    The first frame gets 0. A frame with a ``timestamp_us`` later than the previous one's
    is placed by its distance in microseconds from the start of the run of such frames,
    rounded to the nearest tick (so no rounding error builds up along a long stream);
    otherwise (``timestamp_us``
    0, or not increasing) by how much later it was captured on the source's clock. Either
    way a frame is at least one tick after the previous one.
    """

    def __init__(self) -> None:
        self._last_pts: int | None = None
        self._last_clock = 0.0
        self._last_user_us: int | None = None
        self._anchor: tuple[int, int] | None = None  # (pts, timestamp_us) of a run's start

    def stamp(self, timestamp_us: int, capture_time: float) -> int:
        """The timestamp of the next frame.

        Args:
            timestamp_us: The frame's ``timestamp_us`` (0: none given).
            capture_time: When it was captured on the source's clock, in seconds.
        """
        user_us = timestamp_us if timestamp_us != 0 else None
        last_pts = self._last_pts
        if last_pts is None:
            pts = 0
            self._anchor = (0, user_us) if user_us is not None else None
        else:
            pts = -1
            anchor = self._anchor
            last_user = self._last_user_us
            if (
                user_us is not None
                and anchor is not None
                and last_user is not None
                and user_us > last_user
            ):
                ticks = ((user_us - anchor[1]) * VIDEO_CLOCK_RATE + 500_000) // 1_000_000
                pts = anchor[0] + ticks
                if pts <= last_pts:
                    pts = last_pts + 1
                    self._anchor = (pts, user_us)
            else:
                delta = round((capture_time - self._last_clock) * VIDEO_CLOCK_RATE)
                pts = last_pts + max(1, delta)
                self._anchor = (pts, user_us) if user_us is not None else None
        self._last_pts = pts
        self._last_clock = max(capture_time, self._last_clock)
        self._last_user_us = user_us
        return pts


class PassthroughFeedback:
    """What one sender of pre-encoded frames asks of the upstream encoder, and when.

    Pure bookkeeping, as libwebrtc's pass-through encoder in the official SDK does it:
    requests are handed to ``post`` (the source's mailbox) when a frame reaches the
    encoder (:meth:`frame_sent`), not when they arrive.

    * A key-frame request (:meth:`request_keyframe`, a PLI/FIR) is handed on with the
      next frame if that frame is a delta frame; a key frame answers it.
    * Until a first key frame is sent, and after frames were lost before sending
      (:meth:`frames_lost`), every delta frame asks for a key frame, up to the next key
      frame.
    * The newest rate control (:meth:`set_rates`) is handed on with the next frame.
    """

    def __init__(self, post: FeedbackPost) -> None:
        self._post = post
        self._until_key = True  # no key frame sent yet, or frames lost since the last one
        self._requested = False
        self._rates: EncodedRateControl | None = None

    @property
    def keyframe_pending(self) -> bool:
        """Whether the next delta frame will ask for a key frame."""
        return self._until_key or self._requested

    def request_keyframe(self) -> None:
        """A receiver asked for a key frame (PLI or FIR)."""
        self._requested = True

    def frames_lost(self) -> None:
        """Frames of the stream were dropped before they were sent."""
        self._until_key = True

    def set_rates(self, rates: EncodedRateControl) -> None:
        """A new target for the upstream encoder (the newest wins)."""
        self._rates = rates

    def frame_sent(self, is_keyframe: bool) -> None:
        """A frame reaches the encoder: hand on what is pending."""
        if is_keyframe:
            ask = False
            self._until_key = False
        else:
            ask = self._until_key or self._requested
        self._requested = False
        rates, self._rates = self._rates, None
        if ask or rates is not None:
            self._post(ask, rates)


class EncodedSourceTrack(MediaStreamTrack):
    """The aiortc track of an :class:`EncodedVideoSource`: what an ``RTCRtpSender`` sends.

    :meth:`recv` returns the captured access units in capture order, as soon as they are
    captured (the caller paces them), each as an :class:`av.Packet` with ``pts`` on the
    90 kHz clock (``time_base`` 1/90000, see :class:`PtsMapper`) and ``is_keyframe`` from
    the frame type. A unit still waiting when it is more than :data:`MAX_FRAME_WAIT`
    older than the newest captured (or beyond :data:`MAX_FRAMES_WAITING`) is dropped.
    While :attr:`muted` is true captured units are dropped (nothing is sent). A drop
    makes the next delta frames ask for a key frame (:attr:`feedback`). The track ends
    when it is stopped or its source is closed.

    The metadata captured with a frame goes to :attr:`frame_metadata` under the frame's
    90 kHz timestamp (the one the sender's frame transforms get), for the encoder to
    append as a packet trailer when the publication sends frame metadata.
    """

    kind = "video"

    def __init__(self, source: EncodedVideoSource, *, clock: MediaClock | None = None) -> None:
        """Attach a new track to ``source``; frames captured from now on are kept.

        Args:
            source: The source to send.
            clock: Where the track's timing comes from; the source's clock when omitted
                (capture times are on the source's clock, so they should be the same).

        Raises:
            ValueError: If ``source`` is not an EncodedVideoSource.
        """
        if not isinstance(source, EncodedVideoSource):
            raise ValueError(f"source must be an EncodedVideoSource, got {type(source).__name__}")
        super().__init__()
        self._source = source
        self._clock = source._clock if clock is None else resolve_clock(clock)
        self.feedback = PassthroughFeedback(source._post_feedback)
        self.frame_metadata = FrameMetadataSender()
        self._pts = PtsMapper()
        self._muted = False
        self._backlog: deque[CapturedEncodedFrame] = deque()
        self._wake = asyncio.Event()
        self._source_ended = False
        self._stopped = False
        self._dropped = 0
        sink: FrameSink = self
        self._subscription = source._fanout.subscribe(sink)

    @property
    def source(self) -> EncodedVideoSource:
        """The source sent by this track."""
        return self._source

    @property
    def muted(self) -> bool:
        """Whether captured frames are dropped instead of sent."""
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        value = bool(value)
        if value != self._muted:
            self._muted = value
            if value and self._backlog:
                self._drop(len(self._backlog))

    @property
    def dropped_frames(self) -> int:
        """Captured frames dropped before they were sent (too old, or muted)."""
        return self._dropped

    def _drop(self, count: int) -> None:
        for _ in range(count):
            self._backlog.popleft()
        self._count_drops(count)

    def _count_drops(self, count: int) -> None:
        self._dropped += count
        self.feedback.frames_lost()
        if self._dropped == count or self._dropped % 300 < count:
            logger.debug(
                "pre-encoded track %s: %d frame(s) dropped before sending, a key frame is asked",
                self.id,
                self._dropped,
            )

    # ------------------------------------------------------------------ sink side

    def on_frame(self, frame: AVFrame | CapturedEncodedFrame) -> None:
        if not isinstance(frame, CapturedEncodedFrame) or self._stopped:
            return
        if self._muted:
            self._count_drops(1)
            return
        backlog = self._backlog
        backlog.append(frame)
        newest = frame.capture_time
        stale = 0
        while len(backlog) > 1 and (
            newest - backlog[0].capture_time > MAX_FRAME_WAIT + 1e-9
            or len(backlog) > MAX_FRAMES_WAITING
        ):
            backlog.popleft()
            stale += 1
        if stale:
            self._count_drops(stale)
        self._wake.set()

    def on_end(self) -> None:
        self._source_ended = True
        self._wake.set()

    # ------------------------------------------------------------------ reader side

    async def recv(self) -> AVFrame | Packet[Stream]:
        """The next access unit to send, as an ``av.Packet``.

        Raises:
            MediaStreamError: Once the track is stopped, or its source closed and the
                frames captured before have been returned.
        """
        while True:
            if self._stopped or self.readyState != "live":
                raise MediaStreamError
            if self._backlog:
                break
            if self._source_ended:
                self.stop()
                raise MediaStreamError
            self._wake.clear()
            await self._wake.wait()
        captured = self._backlog.popleft()
        frame = captured.frame
        pts = self._pts.stamp(frame.timestamp_us, captured.capture_time)
        packet = av.Packet(frame.data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = frame.is_keyframe
        if frame.metadata is not None:
            self.frame_metadata.put(pts, frame.metadata)
        return packet

    def stop(self) -> None:
        """Detach from the source and end the track."""
        if not self._stopped:
            self._stopped = True
            self._subscription.close()
            self._backlog.clear()
            self._wake.set()
        super().stop()


class _Passthrough:
    """What both pre-encoded encoders add to aiortc's: feedback, and no encoding.

    Listed before the aiortc encoder class in the bases.
    """

    _codec_name: ClassVar[str]

    def __init__(self, *, max_bitrate: int, framerate: float) -> None:
        """Create the encoder.

        Args:
            max_bitrate: The publication's bitrate cap, in bits/s: the rate-control target
                reported to the source (a receiver estimate may lower it).
            framerate: The frame rate reported with it, in frames per second.

        Raises:
            ValueError: If a value is not positive.
        """
        if isinstance(max_bitrate, bool) or not isinstance(max_bitrate, int) or max_bitrate <= 0:
            raise ValueError(f"max_bitrate must be a positive int, got {max_bitrate!r}")
        if not isinstance(framerate, (int, float)) or not framerate > 0:
            raise ValueError(f"framerate must be positive, got {framerate!r}")
        self._max_bitrate = max_bitrate
        self._target = max_bitrate
        self._framerate = float(framerate)
        self._feedback: PassthroughFeedback | None = None
        self._warned_raw = False
        super().__init__()

    @property
    def feedback(self) -> PassthroughFeedback | None:
        """Where this encoder reports what it learns (set by :func:`attach_pre_encoded`)."""
        return self._feedback

    def attach(self, feedback: PassthroughFeedback) -> None:
        """Report to ``feedback``: the current rate control now, then as it changes."""
        self._feedback = feedback
        feedback.set_rates(self.rate_control)

    @property
    def rate_control(self) -> EncodedRateControl:
        """The current target for the upstream encoder."""
        return EncodedRateControl(self._target, self._framerate)

    @property
    def target_bitrate(self) -> int:
        """The bitrate reported to the upstream encoder, in bits/s (at most ``max_bitrate``).

        aiortc's sender sets it from a receiver's estimate (REMB).
        """
        return self._target

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        value = max(1, min(int(bitrate), self._max_bitrate))
        if value != self._target:
            self._target = value
            if self._feedback is not None:
                self._feedback.set_rates(self.rate_control)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Raw frames are not encoded here: nothing is sent for them."""
        if not self._warned_raw:
            self._warned_raw = True
            logger.warning(
                "a pre-encoded %s sender got a raw picture; only av.Packet access units are sent",
                self._codec_name,
            )
        return [], 0

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        """Packetize one access unit (after the ``frame_transform``, if any)."""
        feedback = self._feedback
        if feedback is not None:
            feedback.frame_sent(bool(packet.is_keyframe))
        payloads: tuple[list[bytes], int] = super().pack(packet)  # type: ignore[misc]
        return payloads


class PreEncodedVp8Encoder(_Passthrough, TransformingVp8Encoder):
    """Sends VP8 frames encoded elsewhere (aiortc's VP8 packetizer, no libvpx)."""

    _codec_name: ClassVar[str] = "VP8"


class PreEncodedH264Encoder(_Passthrough, TransformingH264Encoder):
    """Sends H.264 Annex-B access units encoded elsewhere (aiortc's packetizer, no libx264)."""

    _codec_name: ClassVar[str] = "H264"


def make_pre_encoded_encoder(codec: int, max_bitrate: int, framerate: float) -> Encoder:
    """A pass-through encoder for ``RTCRtpSender`` sending pre-encoded ``codec``.

    Raises:
        ValueError: If ``codec`` is not VP8 or H264, or a value is not positive.
    """
    if codec == VideoCodec.VP8:
        return PreEncodedVp8Encoder(max_bitrate=max_bitrate, framerate=framerate)
    if codec == VideoCodec.H264:
        return PreEncodedH264Encoder(max_bitrate=max_bitrate, framerate=framerate)
    raise ValueError(f"pre-encoded video codec {codec!r} cannot be sent: VP8 and H264 can")


def attach_pre_encoded(sender: RTCRtpSender, encoder: Encoder) -> None:
    """Link a sender's pass-through encoder and its track's feedback.

    The encoder reports its rate control to the track's :class:`PassthroughFeedback`,
    and the sender's key-frame requests (PLI/FIR) reach it.

    Raises:
        ValueError: If ``sender`` does not send an :class:`EncodedSourceTrack` or
            ``encoder`` is not a pre-encoded encoder.
    """
    track = sender.track
    if not isinstance(track, EncodedSourceTrack):
        raise ValueError(
            "a pre-encoded encoder needs a track of an EncodedVideoSource, "
            f"not {type(track).__name__}"
        )
    if not isinstance(encoder, _Passthrough):
        raise ValueError(f"{type(encoder).__name__} is not a pre-encoded encoder")
    feedback = track.feedback
    encoder.attach(feedback)
    watch_keyframe_requests(sender, feedback.request_keyframe)
