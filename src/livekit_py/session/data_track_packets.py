"""The packets of data tracks: their header, their extensions, frames split and reassembled.

Pure: no I/O, no asyncio, no clock (the caller passes each frame's timestamp). The format
is LiveKit's data track packet, version 0 (the Rust SDK's ``livekit-datatrack``
``docs/packet-v0.md``, the server's ``pkg/rtc/datatrack/packet.go``); all numbers are
big-endian::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-----+-+-+-+-------------------+-------------------------------+
    | V=0 |S|F|X|     reserved      |         track handle          |
    +-----+-+-+-+-------------------+-------------------------------+
    |        sequence number        |         frame number          |
    +-------------------------------+-------------------------------+
    |                   timestamp (90 kHz clock)                    |
    +-------------------------------+-------------------------------+
    | extension words - 1 (if X)    | extensions, then zero padding |
    +-------------------------------+-------------------------------+
    |                            payload                            |

* S and F, read as one 2-bit *marker*: 2 start of a frame, 1 its final packet, 0 a packet
  in between, 3 a frame in one packet.
* X set: a 16-bit count ``L`` follows; the count, the extensions and their padding fill
  ``(L + 1) * 4`` bytes. Each extension is a tag byte, a length byte and that many bytes:
  tag 1 end-to-end encryption (key index, 12-byte IV: 13 bytes), tag 2 a user timestamp
  (u64: 8 bytes). Unknown tags are skipped, as are known ones shorter than their length;
  bytes beyond a known extension's length are ignored (a newer version's). Tag 0 is a
  padding byte. We write padding only after the last extension, as the server does when
  it forwards a packet (it reads a 0 tag as "padding up to the end").
* The handle is the publisher's (1 to 65535, chosen when publishing) on the way to the
  server, and the subscriber's (assigned by the server) on the way from it: the server
  rewrites it and forwards the rest.
* A packet is at most :data:`MAX_PACKET_SIZE` bytes, header included.

A frame is split into as few packets as fit, of equal size, that share its frame number,
timestamp and extensions and take consecutive sequence numbers (:class:`Packetizer`).
:class:`Depacketizer` reassembles them as the official SDKs do: the packets of a frame are
put in sequence order; a frame whose final packet arrives while one of its packets is
missing is dropped, as is one whose first packet never came or that is still incomplete
when too many newer frames started.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from dataclasses import dataclass, field

__all__ = [
    "E2EE_IV_SIZE",
    "HEADER_SIZE",
    "MAX_PACKETS_PER_FRAME",
    "MAX_PACKET_SIZE",
    "AssembledFrame",
    "Depacketizer",
    "DroppedFrame",
    "E2eeExtension",
    "FrameMarker",
    "Packet",
    "PacketError",
    "PacketHeader",
    "Packetizer",
    "PushResult",
    "decode_packet",
]

VERSION = 0
"""The packet format version we write and the newest we read."""
HEADER_SIZE = 12
"""Bytes of the base header (without extensions)."""
MAX_PACKET_SIZE = 16_000
"""Largest packet, header included (the official SDKs' transport MTU)."""
E2EE_IV_SIZE = 12
MAX_PACKETS_PER_FRAME = 128
"""Packets of one frame the depacketizer keeps before it drops the frame (as the official)."""

_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF

_BASE = struct.Struct(">BBHHHI")
_TAG_PADDING = 0
_TAG_E2EE = 1
_TAG_USER_TIMESTAMP = 2
_E2EE_LENGTH = 1 + E2EE_IV_SIZE
_USER_TIMESTAMP_LENGTH = 8
_MARKER_SHIFT = 3
_EXTENSION_FLAG = 0x04
_VERSION_SHIFT = 5


class PacketError(ValueError):
    """Bytes that are not a data track packet we can read (too short, a newer version,
    handle 0, extensions overrunning the packet)."""


class FrameMarker(enum.IntEnum):
    """Where a packet sits in its frame (the header's S and F bits, as one number)."""

    MIDDLE = 0
    FINAL = 1
    START = 2
    SINGLE = 3


def _check_uint(name: str, value: object, maximum: int, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be {minimum} to {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class E2eeExtension:
    """The end-to-end encryption extension: the key index and the IV of the payload."""

    key_index: int
    iv: bytes

    def __post_init__(self) -> None:
        _check_uint("key_index", self.key_index, 0xFF)
        if not isinstance(self.iv, bytes) or len(self.iv) != E2EE_IV_SIZE:
            raise ValueError(f"the E2EE IV must be {E2EE_IV_SIZE} bytes")

    def __repr__(self) -> str:  # keep the IV out of logs
        return f"E2eeExtension(key_index={self.key_index})"


@dataclass(frozen=True)
class PacketHeader:
    """One packet's header.

    Raises:
        ValueError: If a field is out of its range (the handle must be 1 to 65535; the
            sequence and frame numbers are u16, the timestamp u32, the user timestamp u64).
    """

    marker: FrameMarker
    handle: int
    sequence: int
    frame_number: int
    timestamp: int
    e2ee: E2eeExtension | None = None
    user_timestamp: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "marker", FrameMarker(self.marker))
        _check_uint("handle", self.handle, _U16, minimum=1)
        _check_uint("sequence", self.sequence, _U16)
        _check_uint("frame_number", self.frame_number, _U16)
        _check_uint("timestamp", self.timestamp, _U32)
        if self.user_timestamp is not None:
            _check_uint("user_timestamp", self.user_timestamp, _U64)

    def _extension_bytes(self) -> bytes:
        out = bytearray()
        if self.e2ee is not None:
            out += bytes((_TAG_E2EE, _E2EE_LENGTH, self.e2ee.key_index)) + self.e2ee.iv
        if self.user_timestamp is not None:
            out += bytes((_TAG_USER_TIMESTAMP, _USER_TIMESTAMP_LENGTH))
            out += self.user_timestamp.to_bytes(8, "big")
        return bytes(out)

    @property
    def size(self) -> int:
        """Encoded length in bytes."""
        extensions = len(self._extension_bytes())
        if not extensions:
            return HEADER_SIZE
        return HEADER_SIZE + -(-(2 + extensions) // 4) * 4

    def encode(self) -> bytes:
        extensions = self._extension_bytes()
        first = (VERSION << _VERSION_SHIFT) | (int(self.marker) << _MARKER_SHIFT)
        if extensions:
            first |= _EXTENSION_FLAG
        out = bytearray(
            _BASE.pack(first, 0, self.handle, self.sequence, self.frame_number, self.timestamp)
        )
        if extensions:
            words = -(-(2 + len(extensions)) // 4)
            out += (words - 1).to_bytes(2, "big")
            out += extensions
            out += bytes(words * 4 - 2 - len(extensions))
        return bytes(out)


@dataclass(frozen=True)
class Packet:
    """A header and its payload."""

    header: PacketHeader
    payload: bytes

    def encode(self) -> bytes:
        return self.header.encode() + self.payload


def _read_extensions(block: bytes) -> tuple[E2eeExtension | None, int | None]:
    e2ee: E2eeExtension | None = None
    user_timestamp: int | None = None
    pos = 0
    while pos < len(block):
        tag = block[pos]
        if tag == _TAG_PADDING:
            pos += 1
            continue
        if pos + 2 > len(block):
            raise PacketError(f"extension {tag} has no length byte")
        length = block[pos + 1]
        start, end = pos + 2, pos + 2 + length
        if end > len(block):
            raise PacketError(f"extension {tag} ({length} bytes) overruns the extension block")
        data = block[start:end]
        if tag == _TAG_E2EE and length >= _E2EE_LENGTH:
            e2ee = E2eeExtension(data[0], bytes(data[1:_E2EE_LENGTH]))
        elif tag == _TAG_USER_TIMESTAMP and length >= _USER_TIMESTAMP_LENGTH:
            user_timestamp = int.from_bytes(data[:_USER_TIMESTAMP_LENGTH], "big")
        pos = end
    return e2ee, user_timestamp


def decode_packet(data: bytes | bytearray | memoryview) -> Packet:
    """Read one packet.

    Raises:
        PacketError: If ``data`` is not a packet of a version we know, its handle is 0,
            or its extensions are malformed.
    """
    raw = bytes(data)
    if len(raw) < HEADER_SIZE:
        raise PacketError(f"{len(raw)} bytes are too short for a data track packet header")
    first, _reserved, handle, sequence, frame_number, timestamp = _BASE.unpack_from(raw)
    version = first >> _VERSION_SHIFT
    if version > VERSION:
        raise PacketError(f"unsupported data track packet version {version}")
    if handle == 0:
        raise PacketError("a data track packet with track handle 0")
    marker = FrameMarker((first >> _MARKER_SHIFT) & 0x3)
    e2ee: E2eeExtension | None = None
    user_timestamp: int | None = None
    end = HEADER_SIZE
    if first & _EXTENSION_FLAG:
        if len(raw) < HEADER_SIZE + 2:
            raise PacketError("the extension flag is set but the extension length is missing")
        words = int.from_bytes(raw[HEADER_SIZE : HEADER_SIZE + 2], "big")
        end = HEADER_SIZE + (words + 1) * 4
        if end > len(raw):
            raise PacketError(f"the extensions ({words + 1} words) overrun the packet")
        e2ee, user_timestamp = _read_extensions(raw[HEADER_SIZE + 2 : end])
    header = PacketHeader(
        marker, handle, sequence, frame_number, timestamp, e2ee=e2ee, user_timestamp=user_timestamp
    )
    return Packet(header, raw[end:])


class Packetizer:
    """Splits one track's frames into packets: consecutive sequence numbers, one frame
    number per frame (both wrap at 65536, both start at 0 as in the official SDKs).

    Args:
        handle: The publisher's track handle (1 to 65535).
        max_packet_size: Largest packet, header included.

    Raises:
        ValueError: If the handle or the packet size is out of range.
    """

    def __init__(self, handle: int, *, max_packet_size: int = MAX_PACKET_SIZE) -> None:
        self.handle = _check_uint("handle", handle, _U16, minimum=1)
        self.max_packet_size = _check_uint(
            "max_packet_size", max_packet_size, 1 << 30, minimum=HEADER_SIZE + 1
        )
        self.sequence = 0
        """The sequence number of the next packet."""
        self.frame_number = 0
        """The frame number of the next frame."""

    def packetize(
        self,
        payload: bytes,
        *,
        timestamp: int,
        user_timestamp: int | None = None,
        e2ee: E2eeExtension | None = None,
    ) -> list[bytes]:
        """The encoded packets of one frame (none for an empty payload, as the official).

        Args:
            payload: The frame's (possibly encrypted) payload.
            timestamp: The frame's 90 kHz timestamp (u32).
            user_timestamp: The frame's user timestamp (u64), carried by every packet.
            e2ee: How the payload is encrypted, carried by every packet.

        Raises:
            ValueError: If a timestamp is out of range, or the extensions leave no room
                for payload in ``max_packet_size``.
        """
        if not payload:
            return []
        first = PacketHeader(
            FrameMarker.SINGLE,
            self.handle,
            self.sequence,
            self.frame_number,
            timestamp,
            e2ee=e2ee,
            user_timestamp=user_timestamp,
        )
        room = self.max_packet_size - first.size
        if room <= 0:
            raise ValueError(f"{self.max_packet_size}-byte packets leave no room for payload")
        count = -(-len(payload) // room)
        # as few packets as the size allows, of (nearly) equal size: a frame of 16,001
        # bytes goes as two of 8,000-odd, not 16,000 and 1, so that no packet is larger
        # than needed (the server forwards a packet only while its send buffer to the
        # subscriber holds less than its latency target)
        room = -(-len(payload) // count)
        view = memoryview(payload)
        packets: list[bytes] = []
        for index in range(count):
            if count == 1:
                marker = FrameMarker.SINGLE
            elif index == 0:
                marker = FrameMarker.START
            elif index == count - 1:
                marker = FrameMarker.FINAL
            else:
                marker = FrameMarker.MIDDLE
            header = dataclasses.replace(first, marker=marker, sequence=self.sequence)
            packets.append(header.encode() + view[index * room : (index + 1) * room])
            self.sequence = (self.sequence + 1) & _U16
        self.frame_number = (self.frame_number + 1) & _U16
        return packets


@dataclass(frozen=True)
class AssembledFrame:
    """A whole frame, as its first packet described it."""

    payload: bytes
    frame_number: int
    timestamp: int
    e2ee: E2eeExtension | None = None
    user_timestamp: int | None = None


@dataclass(frozen=True)
class DroppedFrame:
    """A frame given up: ``reason`` is "interrupted" (too many newer frames started),
    "unknown frame" (its first packet never came), "buffer full" (more than
    :data:`MAX_PACKETS_PER_FRAME` packets) or "incomplete" (a packet is missing)."""

    frame_number: int
    reason: str


@dataclass
class PushResult:
    """What one packet completed (a frame) and what it made us give up (dropped frames)."""

    frame: AssembledFrame | None = None
    dropped: list[DroppedFrame] = field(default_factory=list)


@dataclass
class _Partial:
    start_sequence: int
    first: PacketHeader
    payloads: dict[int, bytes]


class Depacketizer:
    """Reassembles one track's frames from its packets.

    Args:
        max_partial_frames: How many incomplete frames are kept at once (at least 1;
            0 counts as 1, as in the official SDK). When a frame starts and that many are
            being assembled, the oldest is dropped.
    """

    def __init__(self, max_partial_frames: int = 1) -> None:
        self._max_partial = 1
        self.max_partial_frames = max_partial_frames
        # frame number -> partial frame, oldest first (dicts keep insertion order)
        self._partials: dict[int, _Partial] = {}

    @property
    def max_partial_frames(self) -> int:
        return self._max_partial

    @max_partial_frames.setter
    def max_partial_frames(self, value: int) -> None:
        self._max_partial = max(1, _check_uint("max_partial_frames", value, 1 << 31))

    @property
    def partial_frames(self) -> int:
        """How many frames are being assembled."""
        return len(self._partials)

    def push(self, packet: Packet) -> PushResult:
        """Add one packet; the result holds the frame it completed, if any."""
        header = packet.header
        if header.marker == FrameMarker.SINGLE:
            result = PushResult()
            if len(self._partials) >= self._max_partial:
                result.dropped.extend(self._evict(1))
            result.frame = AssembledFrame(
                packet.payload,
                header.frame_number,
                header.timestamp,
                header.e2ee,
                header.user_timestamp,
            )
            return result
        if header.marker == FrameMarker.START:
            result = PushResult()
            excess = len(self._partials) - self._max_partial + 1
            if excess > 0:
                result.dropped.extend(self._evict(excess))
            self._partials.pop(header.frame_number, None)
            self._partials[header.frame_number] = _Partial(
                header.sequence, header, {header.sequence: packet.payload}
            )
            return result
        partial = self._partials.get(header.frame_number)
        if partial is None:
            return PushResult(dropped=[DroppedFrame(header.frame_number, "unknown frame")])
        if len(partial.payloads) >= MAX_PACKETS_PER_FRAME:
            del self._partials[header.frame_number]
            return PushResult(dropped=[DroppedFrame(header.frame_number, "buffer full")])
        partial.payloads[header.sequence] = packet.payload
        if header.marker != FrameMarker.FINAL:
            return PushResult()
        del self._partials[header.frame_number]
        count = ((header.sequence - partial.start_sequence) & _U16) + 1
        parts: list[bytes] = []
        for offset in range(count):
            part = partial.payloads.get((partial.start_sequence + offset) & _U16)
            if part is None:
                return PushResult(dropped=[DroppedFrame(header.frame_number, "incomplete")])
            parts.append(part)
        first = partial.first
        return PushResult(
            frame=AssembledFrame(
                b"".join(parts),
                first.frame_number,
                first.timestamp,
                first.e2ee,
                first.user_timestamp,
            )
        )

    def _evict(self, count: int) -> list[DroppedFrame]:
        dropped = []
        for frame_number in list(self._partials)[:count]:
            del self._partials[frame_number]
            dropped.append(DroppedFrame(frame_number, "interrupted"))
        return dropped

    def reset(self) -> None:
        """Forget every incomplete frame."""
        self._partials.clear()
