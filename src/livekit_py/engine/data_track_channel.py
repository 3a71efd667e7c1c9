"""The ``_data_track`` data channels: data track packets out on ours, in on the server's.

Each side of a LiveKit session opens one: we on the publisher connection (our frames to
the server), the server on the subscriber connection (the frames of the tracks we
subscribe to); both unordered with no retransmission, like ``_lossy``. The packets are
opaque here (``session/data_track_packets.py`` makes and reads them).

Sending works as in the official SDKs (the Rust SDK's ``DataChannelSender``), frame by
frame: a frame's packets go out in order, never interleaved with another frame's, each
handed to the channel only while its send buffer holds at most :data:`SEND_BUFFER_LOW`
bytes (in aiortc the buffer holds what waits behind the message SCTP is transmitting, so
a frame's next packet goes in once the one before it is on the wire). A frame pushed while
another is going out waits, and a newer frame replaces the one waiting: the connection
carries the newest frames instead of queueing a backlog (frames are sent once; a stale one
is worth less than a new one). Everything runs on the event loop; no task is needed (the
channel's ``bufferedamountlow`` event sends on).
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from aiortc import RTCDataChannel

from ..log import get_logger

__all__ = ["DATA_TRACK_LABEL", "SEND_BUFFER_LOW", "DataTrackChannel"]

logger = get_logger("engine.data_track")

DATA_TRACK_LABEL = "_data_track"
SEND_BUFFER_LOW = 8 * 1024
"""A packet is handed to our channel only while at most this many bytes wait in it (the
Rust SDK's threshold)."""

PacketHandler = Callable[[bytes], None]


class DataTrackChannel:
    """Our ``_data_track`` channel and the server's, for one engine."""

    def __init__(self) -> None:
        self._local: RTCDataChannel | None = None
        self._remote: RTCDataChannel | None = None
        self._waiting: list[bytes] | None = None
        self._in_flight: collections.deque[bytes] = collections.deque()
        self._closed = False
        self.frames_sent = 0
        self.frames_replaced = 0
        """Frames dropped because a newer one replaced them while the channel was busy."""
        self.on_packet: PacketHandler | None = None
        """Called with every packet the server sends us (and any on our channel)."""

    # -- the channels ----------------------------------------------------------------------

    def attach_local(self, channel: RTCDataChannel) -> None:
        """Our channel (on the publisher connection), just created."""
        self._local = channel
        channel.bufferedAmountLowThreshold = SEND_BUFFER_LOW
        channel.on("bufferedamountlow", self._drain)
        channel.on("open", self._drain)
        self._watch(channel)

    def attach_remote(self, channel: RTCDataChannel) -> None:
        """The server's channel (on the subscriber connection), just announced."""
        logger.debug("the server opened its data track channel")
        self._remote = channel
        self._watch(channel)

    def _watch(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def _on_message(message: bytes | str) -> None:
            if isinstance(message, str):
                logger.debug("ignoring a text message on %s", channel.label)
                return
            handler = self.on_packet
            if handler is not None and not self._closed:
                handler(message)

    @property
    def is_open(self) -> bool:
        """Whether our channel can send."""
        return self._local is not None and self._local.readyState == "open"

    # -- sending --------------------------------------------------------------------------

    def send_frame(self, packets: list[bytes]) -> None:
        """Send one frame's packets, in order, as the channel takes them; a frame still
        waiting to start is replaced. Dropped when the channel is closed or closing."""
        if not packets or self._closed:
            return
        if self._waiting is not None:
            self.frames_replaced += 1
        self._waiting = list(packets)
        self._drain()

    def _drain(self) -> None:
        channel = self._local
        if channel is None or self._closed:
            return
        if channel.readyState in ("closing", "closed"):
            self._waiting = None
            self._in_flight.clear()
            return
        if channel.readyState != "open":
            return
        while channel.bufferedAmount <= SEND_BUFFER_LOW:
            if not self._in_flight:
                if self._waiting is None:
                    return
                self._in_flight.extend(self._waiting)
                self._waiting = None
            channel.send(self._in_flight.popleft())
            if not self._in_flight:
                self.frames_sent += 1

    def close(self) -> None:
        """Stop: nothing more is sent or reported."""
        self._closed = True
        self._waiting = None
        self._in_flight.clear()
        self.on_packet = None
