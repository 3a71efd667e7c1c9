"""Frame metadata (user timestamps, frame ids, user data) on our video send and receive paths.

The metadata travels in the LKTS packet trailer (:mod:`livekit_py.media.packet_trailer`)
at the end of each encoded frame, after end-to-end encryption:

* Sending, a published video track's :class:`FrameMetadataSender` holds the metadata of
  the frames it is about to send, keyed by each frame's media timestamp on the 90 kHz
  video clock (the frame's ``pts``, which is what every encoder's
  :data:`~.frame_transform.FrameTransform` gets as ``timestamp``: the RTP timestamp
  without the sender's random offset). Whoever makes the frame (the
  :class:`~.source_tracks.VideoSourceTrack` of a ``VideoSource``, a pre-encoded
  source) calls :meth:`FrameMetadataSender.put`; every encoder of the sender (each
  simulcast layer's too) appends the same trailer to its frame of that timestamp,
  after encrypting it (:class:`~.frame_transform.SendTransforms`). Entries are not
  consumed (all layers read them) and the oldest are evicted beyond ``capacity``.
* Receiving, a :class:`FrameMetadataReceiver` sits first in a video receiver's frame
  filter chain (before decryption): it strips the trailer of each assembled frame and
  keeps its metadata by RTP timestamp, and :meth:`FrameMetadataReceiver.annotate` puts
  it on the decoded picture of that frame (``av.VideoFrame.opaque``), where
  :class:`~livekit_py.rtc.video_stream.VideoStream` finds it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import av
from aiortc import RTCRtpReceiver

from ..log import get_logger
from ..media.packet_trailer import split_trailer, trailer_for
from ..types import FrameMetadata
from .aiortc_adapter import EncodedFrame, received_rtp_timestamp

__all__ = ["METADATA_CAPACITY", "FrameMetadataReceiver", "FrameMetadataSender"]

logger = get_logger("webrtc.frame_metadata")

METADATA_CAPACITY = 300
"""Frames whose metadata is kept, on either side (the official SDK keeps as many)."""


class FrameMetadataSender:
    """The packet trailers of the frames one video track is about to send.

    Thread-safe: :meth:`put` is called where frames are made (the event loop), and
    :meth:`trailer` from the encoders' threads.
    """

    def __init__(self, capacity: int = METADATA_CAPACITY) -> None:
        """Create an empty store.

        Args:
            capacity: How many frames' trailers are kept; the oldest go first.

        Raises:
            ValueError: If ``capacity`` is not a positive int.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self._capacity = capacity
        self._trailers: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, timestamp: int, metadata: FrameMetadata) -> None:
        """Send ``metadata`` with the frame of media time ``timestamp`` (90 kHz ticks).

        The trailer is built here; metadata that carries nothing (no field set, or only
        zeros) sends no trailer. User data too long for the trailer is dropped with a
        warning, as the official SDK does.

        Raises:
            ValueError: If ``timestamp`` is not an int of at least 0 or ``metadata`` is
                not a ``FrameMetadata``.
        """
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise ValueError(f"timestamp must be an int >= 0, got {timestamp!r}")
        if not isinstance(metadata, FrameMetadata):
            raise ValueError(f"metadata must be a FrameMetadata, got {type(metadata).__name__}")
        trailer = trailer_for(metadata)
        with self._lock:
            if not trailer:
                self._trailers.pop(timestamp, None)
                return
            self._trailers[timestamp] = trailer
            self._trailers.move_to_end(timestamp)
            while len(self._trailers) > self._capacity:
                self._trailers.popitem(last=False)

    def trailer(self, timestamp: int) -> bytes:
        """The trailer of the frame of ``timestamp`` (b"" for none). The entry stays."""
        with self._lock:
            return self._trailers.get(timestamp, b"")

    def clear(self) -> None:
        """Forget every entry (the frames' timestamps start over)."""
        with self._lock:
            self._trailers.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._trailers)


class FrameMetadataReceiver:
    """Strips the packet trailers of one video receiver's frames and keeps their metadata.

    Everything runs on the event loop: :meth:`filter_frames` in the receiver's frame
    filter slot, :meth:`annotate` where the decoded pictures are read.

    Args:
        receiver: The receiver whose frames pass :meth:`filter_frames` (its timestamp
            mapping ties decoded pictures to their frames).
        capacity: How many frames' metadata is kept until their pictures are decoded.
    """

    def __init__(self, receiver: RTCRtpReceiver, capacity: int = METADATA_CAPACITY) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self._receiver = receiver
        self._capacity = capacity
        self._pending: OrderedDict[int, FrameMetadata] = OrderedDict()
        self.frames_with_metadata = 0
        """Frames whose trailer was stripped."""

    def filter_frames(self, frames: Sequence[EncodedFrame]) -> tuple[bool, Sequence[EncodedFrame]]:
        """The frame filter: each frame without its trailer; the metadata kept by timestamp."""
        for frame in frames:
            data, metadata = split_trailer(frame.data)
            if metadata is None:
                continue
            frame.data = data
            self.frames_with_metadata += 1
            pending = self._pending
            pending[frame.timestamp] = metadata
            pending.move_to_end(frame.timestamp)
            while len(pending) > self._capacity:
                pending.popitem(last=False)
        return False, frames

    def take(self, rtp_timestamp: int) -> FrameMetadata | None:
        """The metadata of the frame of ``rtp_timestamp``, removed (None if it had none).

        Entries of earlier frames are dropped with it: pictures are decoded in order, so
        those frames were never decoded (lost, not decrypted).
        """
        pending = self._pending
        metadata = pending.pop(rtp_timestamp, None)
        if metadata is None:
            return None
        while pending:
            oldest = next(iter(pending))
            if ((rtp_timestamp - oldest) & 0xFFFFFFFF) >= 1 << 31:
                break  # not older (a later frame, or one across the wrap)
            del pending[oldest]
        return metadata

    def annotate(self, picture: av.VideoFrame | av.AudioFrame) -> None:
        """Put the metadata of the decoded ``picture``'s frame in its ``opaque`` (or None)."""
        if not isinstance(picture, av.VideoFrame):
            return
        rtp_timestamp = received_rtp_timestamp(self._receiver, picture.pts)
        if rtp_timestamp is None:
            return
        metadata = self.take(rtp_timestamp)
        if metadata is not None:
            picture.opaque = metadata

    def clear(self) -> None:
        """Forget the metadata kept (the m-line now carries another track)."""
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)
