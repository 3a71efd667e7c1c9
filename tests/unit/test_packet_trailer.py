"""The LKTS packet trailer: byte layout, parsing, and frames the official SDK sent.

``tests/vectors/official_trailer.json`` holds video frames the official SDK 1.2.1
published with frame metadata, in clear and end-to-end encrypted, as livekit-py
received them (written by ``tests/vectors/record_official_trailer.py``).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from livekit_py.media.frame_crypto import FrameDecryptor, KeyRing, MediaKind
from livekit_py.media.packet_trailer import (
    ENVELOPE_SIZE,
    TRAILER_MAGIC,
    build_trailer,
    parse_trailer,
    split_trailer,
    strip_length,
    trailer_for,
    user_data_budget,
)
from livekit_py.types import FrameMetadata

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "official_trailer.json").read_text()
)

# user timestamp 1700000000000000 (0x00060A24181E4000) and frame id 42, every byte ^ 0xFF:
# FE F7 | FF F9 F5 DB E7 E1 BF FF   (tag 1, length 8, the timestamp big-endian)
# FD FB | FF FF FF D5               (tag 2, length 4, the frame id big-endian)
# EA    | "LKTS"                    (the trailer's length, 21, and the magic)
BOTH = bytes.fromhex("fef7fff9f5dbe7e1bffffdfbffffffd5ea") + b"LKTS"


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in bytes((tag, len(value))) + value)


def _envelope(tlvs: bytes) -> bytes:
    return tlvs + bytes((((len(tlvs) + ENVELOPE_SIZE) ^ 0xFF),)) + TRAILER_MAGIC


def test_the_layout_byte_by_byte() -> None:
    assert build_trailer(1_700_000_000_000_000, 42) == BOTH
    assert len(BOTH) == 21  # as the server's own test counts: (1+1+8) + (1+1+4) + 5
    assert build_trailer(1_700_000_000_000_000) == BOTH[:10] + bytes((15 ^ 0xFF,)) + b"LKTS"
    assert build_trailer(frame_id=42) == BOTH[10:16] + bytes((11 ^ 0xFF,)) + b"LKTS"
    assert build_trailer(user_data=b"hi") == _envelope(_tlv(3, b"hi"))
    assert build_trailer(1, 2, b"x") == _envelope(
        _tlv(1, (1).to_bytes(8, "big")) + _tlv(2, (2).to_bytes(4, "big")) + _tlv(3, b"x")
    )
    # nothing to carry: no trailer at all
    assert build_trailer() == b"" and build_trailer(0, 0, b"") == b""


def test_parsing_gives_back_the_fields_set() -> None:
    metadata = parse_trailer(BOTH)
    assert metadata == FrameMetadata(user_timestamp=1_700_000_000_000_000, frame_id=42)
    assert metadata is not None and not metadata.HasField("user_data")
    full = build_trailer(2**64 - 1, 2**32 - 1, bytes(range(256))[:232])
    assert parse_trailer(full) == FrameMetadata(
        user_timestamp=2**64 - 1, frame_id=2**32 - 1, user_data=bytes(range(232))
    )
    frame, found = split_trailer(b"\x10\x02\x00encoded" + full)
    assert frame == b"\x10\x02\x00encoded" and found is not None and found.frame_id == 2**32 - 1


def test_the_user_data_budget_follows_the_one_byte_length() -> None:
    assert user_data_budget(has_timestamp=False, has_frame_id=False) == 248
    assert user_data_budget(has_timestamp=True, has_frame_id=False) == 238
    assert user_data_budget(has_timestamp=False, has_frame_id=True) == 242
    assert user_data_budget(has_timestamp=True, has_frame_id=True) == 232
    assert len(build_trailer(user_data=bytes(248))) == 255
    with pytest.raises(ValueError, match="at most 232 bytes"):
        build_trailer(1, 1, bytes(233))
    with pytest.raises(ValueError, match="64 unsigned bits"):
        build_trailer(2**64)
    with pytest.raises(ValueError, match="32 unsigned bits"):
        build_trailer(frame_id=-1)
    with pytest.raises(ValueError, match="user_data must be bytes"):
        build_trailer(user_data="text")  # type: ignore[arg-type]


def test_too_much_user_data_is_dropped_as_the_official_sdk_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="livekit_py.media.packet_trailer"):
        trailer = trailer_for(FrameMetadata(frame_id=7, user_data=bytes(243)))
    assert parse_trailer(trailer) == FrameMetadata(frame_id=7)
    assert "dropping 243 bytes of user_data" in caplog.text
    assert trailer_for(FrameMetadata()) == b""
    assert trailer_for(FrameMetadata(user_timestamp=0, frame_id=0)) == b""


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"LKTS",
        b"an ordinary frame",
        b"\x00" * 30
        + bytes(
            (ENVELOPE_SIZE - 1) ^ 0xFF,
        )
        + b"LKTS",  # length below 5
        b"xy" + bytes((200 ^ 0xFF,)) + b"LKTS",  # length beyond the frame
        b"x" + _envelope(b""),  # an envelope without TLVs: nothing recognised
        b"x" + _envelope(_tlv(9, b"unknown")),  # only an unknown tag
        b"x" + _envelope(_tlv(1, b"\x01\x02")),  # a timestamp of the wrong length
        b"x" + _envelope(bytes((0x01 ^ 0xFF, 8 ^ 0xFF)) + b"\xff\xff"),  # runs past the end
    ],
)
def test_frames_without_a_valid_trailer_stay_whole(frame: bytes) -> None:
    assert split_trailer(frame) == (frame, None)


def test_unknown_tags_are_skipped_and_the_server_test_reads_only_the_envelope() -> None:
    trailer = _envelope(_tlv(9, b"later") + _tlv(2, (5).to_bytes(4, "big")))
    assert parse_trailer(trailer) == FrameMetadata(frame_id=5)
    # the server strips what the envelope says, TLVs unread (an envelope alone too)
    assert strip_length(b"frame" + trailer) == len(trailer)
    assert strip_length(b"x" + _envelope(b"")) == ENVELOPE_SIZE
    assert strip_length(b"frame") == 0


def _expected(n: int) -> dict[str, Any]:
    """The metadata the recorder captured frame ``n`` with (see record_official_trailer)."""
    epoch = VECTORS["epoch_us"]
    kind = n % 5
    fields: dict[str, Any] = {}
    if kind in (1, 2):
        fields["user_timestamp"] = epoch + n * 1000
    if kind in (1, 3):
        fields["frame_id"] = n
    if kind in (1, 4):
        fields["user_data"] = f"frame {n}".encode()
    return fields


def _number_of(metadata: FrameMetadata) -> int:
    if metadata.HasField("frame_id"):
        return metadata.frame_id
    if metadata.HasField("user_data"):
        return int(metadata.user_data.decode().split()[1])
    return (metadata.user_timestamp - VECTORS["epoch_us"]) // 1000


@pytest.mark.parametrize("scenario", VECTORS["scenarios"], ids=lambda s: s["name"])
def test_the_official_sdks_trailers_are_ours_byte_for_byte(scenario: dict[str, Any]) -> None:
    frames = [base64.b64decode(f) for f in scenario["frames"]]
    assert VECTORS["official_version"] == "1.2.1"
    numbers = []
    plain_frames = 0
    decryptor: FrameDecryptor | None = None
    if scenario["encrypted"]:
        ring = KeyRing()
        ring.set_key(base64.b64decode(VECTORS["shared_key"]), 0)
        kind = MediaKind.VP8 if scenario["video_codec"] == "VP8" else MediaKind.H264
        decryptor = FrameDecryptor(kind, ring)
    for frame in frames:
        rest, metadata = split_trailer(frame)
        if metadata is None:
            plain_frames += 1  # a frame captured without metadata: no trailer at all
            assert strip_length(frame) == 0
        else:
            n = _number_of(metadata)
            numbers.append(n)
            fields = _expected(n)
            assert metadata == FrameMetadata(**fields)
            assert frame[len(rest) :] == build_trailer(**fields)  # the very same bytes
        if decryptor is not None:
            # the trailer sits after the encryption: what is left ends with the E2EE
            # trailer (IV length, key index) and decrypts
            assert rest[-2:] == b"\x0c\x00"
            assert decryptor.decrypt(rest) is not None
    assert numbers == sorted(numbers) and len(numbers) >= 10
    assert {n % 5 for n in numbers} == {1, 2, 3, 4}
    assert plain_frames >= 2
