"""Complete encoded video frames from received RTP packets, released at their last packet.

aiortc's receive jitter buffer (1.14 to 1.16) finds the end of a video frame only
when the first packet of the *next* frame arrives (a timestamp change; it ignores
the RTP marker bit), so every frame waits one frame interval (33 ms at 30 fps)
before it is decoded, and after a loss it waits until its 512 packets are full.
:class:`FrameAssembler` takes its place on our video receivers
(:func:`ensure_frame_assembler`, through the adapter's jitter buffer slot):

* A frame is complete when its packets are contiguous (16-bit sequence numbers,
  unwrapped) from its first packet to the one with the marker bit, all with one
  timestamp; it is released at that packet. A sender that never sets the marker
  still gets its frames, at the next frame's first packet (aiortc's rule).
* The first packet of a frame is known when the packet before it ended a frame
  (marker bit, or another timestamp, or padding). The first packet after a reset
  (the first packet of a stream, a new SSRC, a sequence jump) is taken as a
  frame start; a packet just before it with the same timestamp, arriving
  before anything was released, moves that start back.
* Reordered packets wait in the buffer; duplicates and packets of frames already
  released or dropped are counted and dropped. Padding-only packets (no
  payload; LiveKit probes with them between frames) fill their sequence number.
* Loss: aiortc itself NACKs every gap, so a frame with a hole waits for the
  retransmission, at most ``max_wait`` from the moment the hole was seen, and
  while the buffer spans at most ``capacity`` sequence numbers. Then the stuck
  frame is dropped, up to the next packet known to start a frame, and a PLI is
  requested. From then on, and from a reset, frames are discarded until a key
  frame (``keyframe_test``): a delta frame after a loss would decode into a
  corrupt picture, or not at all. A PLI is requested again every
  ``pli_interval`` while no key frame arrives (not while one is being received),
  and never more often than that.

One ``add_frames`` call may complete several frames (a retransmission filling a
hole ahead of complete frames). The adapter's slot decodes them all at once
(:class:`~livekit_py.webrtc.aiortc_adapter.FrameBatchBuffer`); :meth:`FrameAssembler.add`
is aiortc's one-frame-per-packet contract, with a queue for the rest (which
would hold each of those frames back by a packet or more, so the slot does not use it).

Pure logic: no sockets, no asyncio; time comes from an injectable clock.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from aiortc import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from ..media.rtp_numbers import wrapped_delta
from .aiortc_adapter import (
    EncodedFrame,
    depayloaded,
    install_receive_buffer,
    installed_receive_buffer,
)

__all__ = [
    "CAPACITY",
    "MAX_WAIT",
    "PLI_INTERVAL",
    "CodecKeyframeTest",
    "FrameAssembler",
    "FrameAssemblerStats",
    "KeyframeTest",
    "ensure_frame_assembler",
    "h264_is_keyframe",
    "vp8_is_keyframe",
]

logger = get_logger("webrtc.frame_assembler")

MAX_WAIT = 0.25
"""Seconds a frame with a hole waits for the retransmission aiortc NACKs.

aiortc sends one NACK as soon as a later packet shows the gap (and again only
with a new gap); the LiveKit server answers it from its own packet cache, so
the retransmission is back one subscriber round trip later (tens of ms, 100 to
200 ms on long paths). 250 ms lets that one retransmission arrive on such paths
while a lost one freezes the picture for no more than about a quarter second
(then a key frame is requested), and keeps the audio/video offset small."""

CAPACITY = 1024
"""Sequence numbers the buffer may span: above a 1080p key frame (a few hundred
packets) plus ``MAX_WAIT`` of packets at several Mbit/s; about 1.2 MB at most."""

PLI_INTERVAL = 0.5
"""Seconds between two picture loss indications (a key frame takes a round trip
and its own transmission time to arrive; asking faster only costs bitrate)."""

# RFC 3550 A.1: a sequence number this far from the expected one is taken as a
# restart of the sender once the packet after it follows it.
_MAX_DROPOUT = 3000
_SEQ_MOD = 1 << 16

KeyframeTest = Callable[[int, bytes], bool]
"""Whether a complete frame (its RTP payload type, its depayloaded data) is a key frame.

Also asked about the first packet of a frame in progress (whether a key frame is
being received), so it should answer from the start of the data."""

_VP8_START_CODE = b"\x9d\x01\x2a"
_H264_IDR = 5
_H264_SPS = 7


def vp8_is_keyframe(data: bytes) -> bool:
    """Whether VP8 frame data (payload descriptor stripped) starts a key frame (RFC 6386 9.1).

    The frame tag's first bit is 0 for a key frame, which then carries the start
    code 9d 01 2a after the 3-byte tag.
    """
    return len(data) >= 6 and data[0] & 1 == 0 and data[3:6] == _VP8_START_CODE


def h264_is_keyframe(data: bytes) -> bool:
    """Whether H.264 Annex-B data (as aiortc depayloads it) has an IDR slice or an SPS.

    An IDR picture starts a coded video sequence; encoders send the SPS (and PPS)
    right before it, in the same access unit, often in a packet of its own, so
    an SPS is also how the first packet of a key frame shows.
    """
    position = data.find(b"\x00\x00\x01")
    while position >= 0 and position + 3 < len(data):
        nal_type = data[position + 3] & 0x1F
        if nal_type in (_H264_IDR, _H264_SPS):
            return True
        position = data.find(b"\x00\x00\x01", position + 3)
    return False


_TESTS_BY_CODEC: dict[str, Callable[[bytes], bool]] = {
    "video/vp8": vp8_is_keyframe,
    "video/h264": h264_is_keyframe,
}


@dataclasses.dataclass(frozen=True)
class CodecKeyframeTest:
    """The key frame test of each negotiated payload type (a :data:`KeyframeTest`).

    Payload types of a codec with no test here (none for VP8/H.264 receivers)
    count as key frames: frames are then never held back.
    """

    codecs: Mapping[int, str]
    """Payload type to MIME type (``video/VP8``), as negotiated."""

    def __call__(self, payload_type: int, data: bytes) -> bool:
        mime = self.codecs.get(payload_type)
        test = _TESTS_BY_CODEC.get(mime.lower()) if mime is not None else None
        return True if test is None else test(data)


@dataclasses.dataclass(frozen=True)
class FrameAssemblerStats:
    """What a :class:`FrameAssembler` did so far."""

    frames_assembled: int = 0
    """Complete frames handed on to be decoded."""
    frames_dropped: int = 0
    """Frames given up incomplete (a packet never came in time, or room ran out)."""
    frames_discarded: int = 0
    """Complete frames thrown away while waiting for a key frame."""
    packets_late: int = 0
    """Packets of frames already released or dropped (and strays of a sequence jump)."""
    packets_duplicate: int = 0
    """Packets received twice."""
    packets_dropped: int = 0
    """Buffered packets thrown away with dropped frames."""
    plis_requested: int = 0
    """Picture loss indications asked for."""
    resets: int = 0
    """Times a new stream started (a new SSRC, a sequence jump); not the first."""
    bytes_received: int = 0
    """RTP payload bytes of every packet handed in (headers and padding not counted)."""
    frames_assembled_from_multiple_packets: int = 0
    """Frames assembled (handed on) that were made of more than one packet."""
    assembly_delay_sum: float = 0.0
    """Seconds from the first packet's arrival to the release, summed over the frames
    assembled."""
    total_assembly_time: float = 0.0
    """Seconds from the first packet's arrival to the last one's, summed over the frames
    assembled from more than one packet (W3C ``totalAssemblyTime``)."""


_TIMES = ("assembly_delay_sum", "total_assembly_time")
_COUNTS = tuple(f.name for f in dataclasses.fields(FrameAssemblerStats) if f.name not in _TIMES)


class _Packet(NamedTuple):
    timestamp: int
    marker: bool
    data: bytes
    arrival: float
    payload_type: int


class FrameAssembler:
    """Video frames from depayloaded RTP packets (see the module docstring).

    Args:
        keyframe_test: Tells key frames, after a loss or a reset (see
            :class:`CodecKeyframeTest`).
        clock: Where time comes from (``now()``); the event loop's by default.
        max_wait: Seconds a frame with a hole waits for retransmission.
        capacity: Sequence numbers the buffer may span.
        pli_interval: Minimum seconds between two PLIs, and how long a key frame
            may take before it is asked for again.

    Raises:
        ValueError: If a number is out of range.
    """

    def __init__(
        self,
        keyframe_test: KeyframeTest,
        *,
        clock: MediaClock | None = None,
        max_wait: float = MAX_WAIT,
        capacity: int = CAPACITY,
        pli_interval: float = PLI_INTERVAL,
    ) -> None:
        if not callable(keyframe_test):
            raise ValueError("keyframe_test must be callable (payload type, data) -> bool")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"capacity must be an int of at least 2, got {capacity!r}")
        for name, value in (("max_wait", max_wait), ("pli_interval", pli_interval)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.keyframe_test: KeyframeTest = keyframe_test
        self._clock = resolve_clock(clock)
        self._max_wait = float(max_wait)
        self._capacity = capacity
        self._pli_interval = float(pli_interval)
        # buffered packets by unwrapped sequence number, all at or after _next
        self._packets: dict[int, _Packet] = {}
        self._ssrc: int | None = None
        self._highest = 0  # the highest unwrapped sequence number seen
        self._next = 0  # the first sequence number not yet released or dropped
        self._start_known = False  # whether _next starts a frame
        self._tentative = False  # _next was only assumed to start one (after a reset)
        self._prev: _Packet | None = None  # the packet at _next - 1, when known
        self._scan = 0  # the last packet known to continue the frame that starts at _next
        self._stuck_since: float | None = None  # when the frame at _next showed a hole
        self._need_keyframe = True
        self._keyframe_since = 0.0
        self._last_pli: float | None = None
        self._candidate: tuple[int, _Packet] | None = None  # a jump, until confirmed
        self._pli = False
        self._out: list[EncodedFrame] = []
        self._ready: deque[EncodedFrame] = deque()
        self._counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._delay_sum = 0.0
        self._assembly_time = 0.0
        self.payload_type: int | None = None
        """The RTP payload type of the latest packet (None before the first)."""

    @property
    def stats(self) -> FrameAssemblerStats:
        """The counts so far (a snapshot)."""
        return FrameAssemblerStats(
            **self._counts,
            assembly_delay_sum=self._delay_sum,
            total_assembly_time=self._assembly_time,
        )

    @property
    def buffered(self) -> int:
        """Packets waiting in the buffer."""
        return len(self._packets)

    # -- the two entry points ----------------------------------------------------------

    def add(self, packet: RtpPacket) -> tuple[bool, EncodedFrame | None]:
        """aiortc's jitter buffer contract: at most one frame per packet.

        Frames completed together wait in order and come out one per later call.
        """
        pli, frames = self.add_frames(packet)
        self._ready.extend(frames)
        return pli, self._ready.popleft() if self._ready else None

    def add_frames(self, packet: RtpPacket) -> tuple[bool, list[EncodedFrame]]:
        """Take one received packet (depayloaded by aiortc).

        Returns:
            Whether to send a PLI now, and the frames this packet completed, in
            decoding order.
        """
        now = self._clock.now()
        self._pli = False
        self._out = []
        self._count("bytes_received", len(packet.payload))
        self.payload_type = packet.payload_type
        record = _Packet(
            packet.timestamp, bool(packet.marker), depayloaded(packet), now, packet.payload_type
        )
        seq = packet.sequence_number & 0xFFFF
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                logger.debug("new SSRC %d: starting over", packet.ssrc)
                self._count("resets")
            self._reset(packet.ssrc, seq, now)
            self._store(self._next, record)
            self._collect(now)
        elif self._accept(seq, record, now):
            self._collect(now)
            self._bound(now)
        if self._need_keyframe:
            self._ask_keyframe_again(now)
        return self._pli, self._out

    # -- packets in ------------------------------------------------------------------------

    def _unwrap(self, seq: int) -> int:
        return self._highest + wrapped_delta(seq, self._highest, 16)

    def _accept(self, seq: int, record: _Packet, now: float) -> bool:
        """Put one packet of the current stream in the buffer; whether it was new."""
        ext = self._unwrap(seq)
        if ext > self._highest + _MAX_DROPOUT or ext < self._next - _MAX_DROPOUT:
            candidate = self._candidate
            if candidate is not None and seq == (candidate[0] + 1) % _SEQ_MOD:
                logger.debug("sequence jump to %d: starting over", candidate[0])
                self._count("resets")
                self._reset(self._ssrc, candidate[0], now)
                self._store(self._next, candidate[1])
                ext = self._unwrap(seq)
            else:
                if candidate is not None:
                    self._count("packets_late")
                self._candidate = (seq, record)
                return False
        elif self._candidate is not None:
            self._candidate = None
            self._count("packets_late")
        if ext < self._next:
            self._early_packet(ext, record)
            return False
        if ext in self._packets:
            self._count("packets_duplicate")
            return False
        self._store(ext, record)
        return True

    def _early_packet(self, ext: int, record: _Packet) -> None:
        """A packet before _next: late, or the real start of the first frame after a reset."""
        if ext == self._next - 1 and self._tentative:
            first = self._packets.get(self._next)
            if first is not None and not record.marker and record.timestamp == first.timestamp:
                self._store(ext, record)  # the frame began earlier than assumed
                self._set_next(ext, start_known=True)
                self._tentative = True
                return
            self._tentative = False  # the frame before ended there: the start is confirmed
        if ext == self._next - 1 and self._prev is None:
            self._prev = record
        self._count("packets_late")

    def _store(self, ext: int, record: _Packet) -> None:
        self._packets[ext] = record
        if ext > self._highest:
            self._highest = ext

    def _reset(self, ssrc: int | None, seq: int, now: float) -> None:
        dropped = len(self._packets)
        if dropped:
            self._count("packets_dropped", dropped)
            self._count("frames_dropped", self._frames_in(self._packets.values()))
        self._packets.clear()
        self._ssrc = ssrc
        self._highest = seq
        self._candidate = None
        self._prev = None
        self._set_next(seq, start_known=True)
        self._tentative = True
        self._need_keyframe = True
        self._keyframe_since = now

    # -- frames out ------------------------------------------------------------------------

    def _set_next(self, ext: int, *, start_known: bool) -> None:
        self._next = ext
        self._scan = ext
        self._start_known = start_known
        self._tentative = False
        self._stuck_since = None

    def _collect(self, now: float) -> None:
        """Release every frame now complete at the head of the buffer."""
        packets = self._packets
        while packets:
            if not self._start_known and not self._find_start():
                break
            first = packets.get(self._next)
            if first is None:
                break
            if not first.data:  # padding between frames
                del packets[self._next]
                self._set_next(self._next + 1, start_known=True)
                continue
            ext = max(self._scan, self._next)
            end: int | None = None
            while True:
                current = packets[ext]
                if current.marker:
                    end = ext
                    break
                following = packets.get(ext + 1)
                if following is None:
                    break
                if following.timestamp != first.timestamp:
                    end = ext  # no marker: the next frame's first packet ends this one
                    break
                ext += 1
            self._scan = ext
            if end is None:
                break
            self._release(end, now)
        if packets and self._stuck_since is None and self._has_hole():
            self._stuck_since = now

    def _has_hole(self) -> bool:
        """Whether the frame at _next waits for a missing packet (not just for more)."""
        if not self._start_known or self._next not in self._packets:
            return True
        return self._highest > self._scan

    def _release(self, end: int, now: float) -> None:
        records = [self._packets.pop(ext) for ext in range(self._next, end + 1)]
        self._prev = records[-1]
        self._set_next(end + 1, start_known=True)
        first = records[0]
        frame = EncodedFrame(b"".join(r.data for r in records), first.timestamp, first.payload_type)
        if self._need_keyframe:
            if not self.keyframe_test(frame.payload_type, frame.data):
                self._count("frames_discarded")
                self._request_pli(now)
                return
            self._need_keyframe = False
        self._count("frames_assembled")
        first_arrival = min(r.arrival for r in records)
        self._delay_sum += now - first_arrival
        if len(records) > 1:
            self._count("frames_assembled_from_multiple_packets")
            self._assembly_time += max(r.arrival for r in records) - first_arrival
        self._out.append(frame)

    def _starts_frame(self, ext: int, record: _Packet) -> bool:
        """Whether the packet before ``ext`` is known and ended a frame."""
        before = self._packets.get(ext - 1)
        if before is None and ext == self._next:
            before = self._prev
        if before is None:
            return False
        return before.marker or not before.data or before.timestamp != record.timestamp

    def _next_start(self, after: int) -> int | None:
        """The first buffered packet after ``after`` known to start a frame."""
        found: int | None = None
        for ext, record in self._packets.items():
            if ext > after and (found is None or ext < found) and self._starts_frame(ext, record):
                found = ext
        return found

    def _find_start(self) -> bool:
        """After a drop: skip to the first packet known to start a frame, if there is one."""
        first = self._packets.get(self._next)
        if first is not None and self._starts_frame(self._next, first):
            self._set_next(self._next, start_known=True)
            return True
        start = self._next_start(self._next)
        if start is None:
            return False
        # what comes before it is the rest of a frame already dropped
        self._count("packets_dropped", len(self._remove_until(start)))
        self._set_next(start, start_known=True)
        return True

    def _remove_until(self, end: int) -> list[_Packet]:
        """Take the buffered packets before ``end`` out; the one at ``end - 1`` becomes _prev."""
        before = self._packets.get(end - 1)
        removed = [self._packets.pop(e) for e in range(self._next, end) if e in self._packets]
        self._prev = before
        return removed

    # -- loss --------------------------------------------------------------------------------

    def _bound(self, now: float) -> None:
        """Drop stuck frames: past ``max_wait`` with a hole, or beyond ``capacity``."""
        while self._packets:
            over = self._highest - self._next + 1 > self._capacity
            waited = self._stuck_since is not None and now - self._stuck_since >= self._max_wait
            if not (over or waited):
                return
            self._drop_stuck(now, "no room" if over else "a packet never came")
            self._collect(now)

    def _drop_stuck(self, now: float, why: str) -> None:
        start = self._next_start(self._next)
        end = self._highest + 1 if start is None else start
        first = self._next
        removed = self._remove_until(end)
        self._count("packets_dropped", len(removed))
        self._count("frames_dropped", max(1, self._frames_in(removed)))
        logger.debug(
            "dropped %d packets from %d (%s); waiting for a key frame", len(removed), first, why
        )
        self._set_next(end, start_known=start is not None)
        if not self._need_keyframe:
            self._need_keyframe = True
            self._keyframe_since = now
        self._request_pli(now)

    @staticmethod
    def _frames_in(records: Iterable[_Packet]) -> int:
        return len({r.timestamp for r in records if r.data})

    def _ask_keyframe_again(self, now: float) -> None:
        """While waiting for a key frame: ask again every ``pli_interval``, unless one is coming."""
        since = (
            self._keyframe_since
            if self._last_pli is None
            else max(self._keyframe_since, self._last_pli)
        )
        if now - since < self._pli_interval:
            return
        first = self._packets.get(self._next)
        if self._start_known and first is not None and first.data:
            if self.keyframe_test(first.payload_type, first.data):
                return  # a key frame is being received
        self._request_pli(now)

    def _request_pli(self, now: float) -> None:
        if self._last_pli is not None and now - self._last_pli < self._pli_interval:
            return
        self._last_pli = now
        self._pli = True
        self._count("plis_requested")

    def _count(self, name: str, amount: int = 1) -> None:
        self._counts[name] += amount


def ensure_frame_assembler(
    transceiver: RTCRtpTransceiver,
    codecs: Mapping[int, str],
    *,
    clock: MediaClock | None = None,
) -> FrameAssembler:
    """Make a video transceiver's receiver assemble its frames with a :class:`FrameAssembler`.

    Installs one (before packets arrive, when the transceiver appears) unless the
    receiver has one already; that one then takes the key frame tests of
    ``codecs`` (an m-line reused for another track may have other codecs).

    Args:
        transceiver: A video transceiver of the subscriber connection.
        codecs: The negotiated payload types and their MIME types (``video/VP8``).
        clock: Where the assembler's time comes from (the loop's by default).

    Returns:
        The receiver's assembler (its :attr:`FrameAssembler.stats` for statistics).

    Raises:
        ValueError: If ``transceiver`` is not a video transceiver.
    """
    if transceiver.kind != "video":
        raise ValueError(f"a frame assembler goes on a video receiver only, not {transceiver.kind}")
    receiver = transceiver.receiver
    test = CodecKeyframeTest(dict(codecs))
    current = installed_receive_buffer(receiver)
    if isinstance(current, FrameAssembler):
        if current.keyframe_test != test:
            current.keyframe_test = test
        return current
    assembler = FrameAssembler(test, clock=clock)
    install_receive_buffer(receiver, assembler)
    return assembler
