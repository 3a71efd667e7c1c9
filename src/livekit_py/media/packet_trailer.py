"""The LiveKit packet trailer ("LKTS"): per-frame metadata appended to an encoded video frame.

The official SDKs (Rust/Python 1.2.1, JS) carry a frame's :class:`FrameMetadata` (the
user timestamp, a frame id, a few bytes of user data) at the very end of the encoded
frame, after end-to-end encryption::

    frame bytes | TLV ... | trailer_len ^ 0xFF | "LKTS"

* Each TLV is one tag byte, one length byte and the value, **every byte XORed with
  0xFF** (so that the trailer holds no H.264 start code). Tag 1: the user timestamp,
  8 bytes big-endian (omitted when 0); tag 2: the frame id, 4 bytes big-endian (omitted
  when 0); tag 3: the user data, its bytes (omitted when empty). A receiver skips tags
  it does not know and stops at a TLV that runs past the trailer.
* ``trailer_len`` counts the whole trailer, TLVs plus the 5-byte envelope (the length
  byte and the magic); being one byte, a trailer is at most 255 bytes, so user data
  that does not fit what the other fields leave is dropped (never truncated).
* A frame with nothing to carry gets no trailer at all.

A receiver recognises a trailer by the magic at the end, a ``trailer_len`` between 5 and
the frame's length, and at least one TLV of a known tag; anything else is an ordinary
frame and is left whole. The server strips the trailer (from the frame's last RTP
packet, by the magic and the length byte alone) for subscribers that do not advertise
``ClientInfo.CAP_PACKET_TRAILER``.

Pure: bytes in, bytes out; no I/O.
"""

from __future__ import annotations

import struct

from ..log import get_logger
from ..types import FrameMetadata

__all__ = [
    "ENVELOPE_SIZE",
    "MAX_TRAILER_SIZE",
    "TAG_FRAME_ID",
    "TAG_USER_DATA",
    "TAG_USER_TIMESTAMP",
    "TRAILER_MAGIC",
    "build_trailer",
    "parse_trailer",
    "split_trailer",
    "strip_length",
    "trailer_for",
    "user_data_budget",
]

logger = get_logger("media.packet_trailer")

TRAILER_MAGIC = b"LKTS"
"""The last four bytes of a frame that carries a trailer ("LiveKit TimeStamp")."""
ENVELOPE_SIZE = 5
"""The XORed trailer length byte and the magic, ending every trailer."""
MAX_TRAILER_SIZE = 255
"""The longest trailer: its length is one byte."""

TAG_USER_TIMESTAMP = 0x01
TAG_FRAME_ID = 0x02
TAG_USER_DATA = 0x03

_TIMESTAMP_TLV = 2 + 8
_FRAME_ID_TLV = 2 + 4
_TLV_HEADER = 2
_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
# byte -> byte ^ 0xFF, for bytes.translate (one C call per field, no Python loop)
_INVERT = bytes(range(255, -1, -1))


def _xor(data: bytes) -> bytes:
    return data.translate(_INVERT)


def user_data_budget(*, has_timestamp: bool, has_frame_id: bool) -> int:
    """How many bytes of user data fit in a trailer that also has the given fields."""
    fixed = ENVELOPE_SIZE + (_TIMESTAMP_TLV if has_timestamp else 0)
    fixed += _FRAME_ID_TLV if has_frame_id else 0
    return MAX_TRAILER_SIZE - fixed - _TLV_HEADER


def build_trailer(user_timestamp: int = 0, frame_id: int = 0, user_data: bytes = b"") -> bytes:
    """The trailer carrying these fields (b"" when all are 0 or empty).

    Args:
        user_timestamp: The user timestamp (the official SDKs use microseconds), a u64.
        frame_id: The frame id, a u32.
        user_data: Bytes for the receiver, at most :func:`user_data_budget` of them.

    Raises:
        ValueError: If a number is out of its range, or the user data does not fit.
    """
    if isinstance(user_timestamp, bool) or not isinstance(user_timestamp, int):
        raise ValueError(f"user_timestamp must be an int, got {type(user_timestamp).__name__}")
    if not 0 <= user_timestamp <= _U64:
        raise ValueError(f"user_timestamp must fit in 64 unsigned bits, got {user_timestamp}")
    if isinstance(frame_id, bool) or not isinstance(frame_id, int):
        raise ValueError(f"frame_id must be an int, got {type(frame_id).__name__}")
    if not 0 <= frame_id <= _U32:
        raise ValueError(f"frame_id must fit in 32 unsigned bits, got {frame_id}")
    if not isinstance(user_data, (bytes, bytearray, memoryview)):
        raise ValueError(f"user_data must be bytes, got {type(user_data).__name__}")
    data = bytes(user_data)
    budget = user_data_budget(has_timestamp=user_timestamp != 0, has_frame_id=frame_id != 0)
    if len(data) > budget:
        raise ValueError(
            f"user_data of {len(data)} bytes does not fit in a packet trailer "
            f"(at most {budget} bytes with the other fields given)"
        )
    parts: list[bytes] = []
    if user_timestamp:
        parts.append(bytes((TAG_USER_TIMESTAMP, 8)) + struct.pack(">Q", user_timestamp))
    if frame_id:
        parts.append(bytes((TAG_FRAME_ID, 4)) + struct.pack(">I", frame_id))
    if data:
        parts.append(bytes((TAG_USER_DATA, len(data))) + data)
    if not parts:
        return b""
    tlvs = b"".join(parts)
    length = len(tlvs) + ENVELOPE_SIZE
    return _xor(tlvs + bytes((length,))) + TRAILER_MAGIC


def trailer_for(metadata: FrameMetadata) -> bytes:
    """The trailer of ``metadata`` (b"" when it carries nothing), as the official SDK builds it.

    User data too long for the trailer is dropped with a warning, as the official SDK
    does; the other fields are still sent.
    """
    timestamp = metadata.user_timestamp if metadata.HasField("user_timestamp") else 0
    frame_id = metadata.frame_id if metadata.HasField("frame_id") else 0
    data = metadata.user_data if metadata.HasField("user_data") else b""
    budget = user_data_budget(has_timestamp=timestamp != 0, has_frame_id=frame_id != 0)
    if len(data) > budget:
        logger.warning(
            "frame metadata: dropping %d bytes of user_data, more than the %d a packet "
            "trailer has room for",
            len(data),
            budget,
        )
        data = b""
    return build_trailer(timestamp, frame_id, data)


def strip_length(frame: bytes) -> int:
    """How many bytes at the end of ``frame`` the server would strip as a trailer (0: none).

    The server's test: the magic at the end and a trailer length byte between
    :data:`ENVELOPE_SIZE` and the frame's length; the TLVs are not read.
    """
    if len(frame) < ENVELOPE_SIZE or frame[-4:] != TRAILER_MAGIC:
        return 0
    length = frame[-ENVELOPE_SIZE] ^ 0xFF
    if length < ENVELOPE_SIZE or length > len(frame):
        return 0
    return length


def parse_trailer(trailer: bytes) -> FrameMetadata | None:
    """The metadata in ``trailer`` (exactly one trailer, envelope included), or None.

    None when the envelope is wrong or no TLV of a known tag is complete. Fields whose
    value is 0 or empty are left unset, as in the official SDK; a timestamp or frame id
    TLV of the wrong length and unknown tags are skipped.
    """
    if strip_length(trailer) != len(trailer):
        return None
    region = _xor(trailer[: len(trailer) - ENVELOPE_SIZE])
    metadata = FrameMetadata()
    found = False
    pos = 0
    while pos + _TLV_HEADER <= len(region):
        tag, size = region[pos], region[pos + 1]
        pos += _TLV_HEADER
        if pos + size > len(region):
            break
        value = region[pos : pos + size]
        pos += size
        if tag == TAG_USER_TIMESTAMP and size == 8:
            (timestamp,) = struct.unpack(">Q", value)
            if timestamp:
                metadata.user_timestamp = timestamp
            found = True
        elif tag == TAG_FRAME_ID and size == 4:
            (frame_id,) = struct.unpack(">I", value)
            if frame_id:
                metadata.frame_id = frame_id
            found = True
        elif tag == TAG_USER_DATA:
            if value:
                metadata.user_data = value
            found = True
    return metadata if found else None


def split_trailer(frame: bytes) -> tuple[bytes, FrameMetadata | None]:
    """``frame`` without its trailer, and the trailer's metadata.

    A frame without a (valid) trailer comes back whole, with None.
    """
    length = strip_length(frame)
    if not length:
        return frame, None
    metadata = parse_trailer(frame[len(frame) - length :])
    if metadata is None:
        return frame, None
    return frame[: len(frame) - length], metadata
