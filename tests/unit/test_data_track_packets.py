"""The data track packet format, byte for byte, and frames split and reassembled.

The byte vectors are written out from the format's description (the Rust SDK's
``livekit-datatrack/docs/packet-v0.md`` and the server's ``pkg/rtc/datatrack/packet.go``),
so that a change in our encoding shows up as a wrong byte, not as a round trip that
still agrees with itself.
"""

from __future__ import annotations

import pytest

from livekit_py.session.data_track_packets import (
    MAX_PACKET_SIZE,
    MAX_PACKETS_PER_FRAME,
    Depacketizer,
    E2eeExtension,
    FrameMarker,
    Packet,
    PacketError,
    PacketHeader,
    Packetizer,
    decode_packet,
)

IV = bytes([0x3C] * 12)

# A final packet of track 0x8811, sequence 0x4422, frame 0x4411, timestamp 0x44221188,
# with both extensions and 1024 bytes of payload (40 bytes of header in all).
FULL_HEADER = bytes.fromhex(
    "0c"  # version 0, marker final (01), extension flag
    "00"  # reserved
    "8811"  # track handle
    "4422"  # sequence
    "4411"  # frame number
    "44221188"  # timestamp
    "0006"  # 7 words of extensions (2 + 15 + 10 bytes, 1 of padding)
    "010dfa"  # E2EE extension (tag 1, 13 bytes): key index 0xfa, then the IV
    "3c3c3c3c3c3c3c3c3c3c3c3c"
    "02084411221111118811"  # user timestamp extension (tag 2, 8 bytes)
    "00"  # padding
)


def full_packet() -> Packet:
    header = PacketHeader(
        FrameMarker.FINAL,
        0x8811,
        0x4422,
        0x4411,
        0x44221188,
        e2ee=E2eeExtension(0xFA, IV),
        user_timestamp=0x4411221111118811,
    )
    return Packet(header, bytes([0xFA]) * 1024)


def base(first: int = 0x00, handle: int = 1) -> bytearray:
    """A 12-byte base header with the first byte ``first``."""
    return bytearray([first, 0]) + handle.to_bytes(2, "big") + bytes(8)


# -- encoding --------------------------------------------------------------------------------


def test_a_packet_with_both_extensions_encodes_to_the_documented_bytes() -> None:
    packet = full_packet()
    encoded = packet.encode()
    assert packet.header.size == 40 == len(FULL_HEADER)
    assert encoded == FULL_HEADER + bytes([0xFA]) * 1024


def test_each_marker_has_its_two_bits() -> None:
    firsts = {
        marker: PacketHeader(marker, 1, 0, 0, 0).encode()[0]
        for marker in (FrameMarker.START, FrameMarker.MIDDLE, FrameMarker.FINAL)
    }
    firsts[FrameMarker.SINGLE] = PacketHeader(FrameMarker.SINGLE, 1, 0, 0, 0).encode()[0]
    assert firsts == {
        FrameMarker.START: 0x10,
        FrameMarker.MIDDLE: 0x00,
        FrameMarker.FINAL: 0x08,
        FrameMarker.SINGLE: 0x18,
    }


def test_a_header_without_extensions_is_twelve_bytes() -> None:
    header = PacketHeader(FrameMarker.SINGLE, 0xFFFF, 0xFFFF, 0, 0xFFFFFFFF)
    assert header.encode() == bytes.fromhex("1800ffffffff0000ffffffff")
    assert header.size == 12


def test_one_extension_is_padded_to_whole_words() -> None:
    only_e2ee = PacketHeader(FrameMarker.SINGLE, 1, 0, 0, 0, e2ee=E2eeExtension(7, IV))
    assert only_e2ee.encode()[12:] == bytes.fromhex("0004010d07") + IV + bytes(3)
    only_stamp = PacketHeader(FrameMarker.SINGLE, 1, 0, 0, 0, user_timestamp=5)
    assert only_stamp.encode()[12:] == bytes.fromhex("000202080000000000000005")
    assert only_stamp.encode()[0] == 0x1C


@pytest.mark.parametrize(
    "fields",
    [
        {"handle": 0},
        {"handle": 65536},
        {"sequence": -1},
        {"sequence": 65536},
        {"frame_number": 65536},
        {"timestamp": 2**32},
        {"user_timestamp": 2**64},
        {"user_timestamp": -1},
        {"handle": True},
        {"handle": 1.0},
    ],
)
def test_header_fields_out_of_range_are_refused(fields: dict[str, object]) -> None:
    values: dict[str, object] = {
        "marker": FrameMarker.SINGLE,
        "handle": 1,
        "sequence": 0,
        "frame_number": 0,
        "timestamp": 0,
    }
    values.update(fields)
    name = next(iter(fields))
    with pytest.raises(ValueError, match=name):
        PacketHeader(**values)  # type: ignore[arg-type]


def test_an_e2ee_extension_needs_a_twelve_byte_iv_and_a_byte_key_index() -> None:
    with pytest.raises(ValueError, match="IV"):
        E2eeExtension(0, bytes(11))
    with pytest.raises(ValueError, match="key_index"):
        E2eeExtension(256, IV)
    assert "3c" not in repr(E2eeExtension(1, IV)).lower()  # the IV stays out of logs


# -- decoding --------------------------------------------------------------------------------


def test_the_documented_bytes_decode_to_the_packet() -> None:
    packet = decode_packet(FULL_HEADER + b"payload")
    assert packet.header == full_packet().header
    assert packet.payload == b"payload"


def test_a_base_header_decodes_field_by_field() -> None:
    raw = bytes.fromhex("080088114422441144221188")
    packet = decode_packet(raw)
    header = packet.header
    assert header.marker == FrameMarker.FINAL
    assert (header.handle, header.sequence, header.frame_number) == (0x8811, 0x4422, 0x4411)
    assert header.timestamp == 0x44221188
    assert header.e2ee is None and header.user_timestamp is None
    assert packet.payload == b""


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (bytes(11), "too short"),
        (bytes([0x20, 0]) + bytes([0, 1]) + bytes(8), "version 1"),
        (bytes(12), "handle 0"),
        (bytes(base(0x04)), "extension length is missing"),
        (bytes(base(0x04)) + bytes.fromhex("0001"), "overrun the packet"),
        (bytes(base(0x04)) + bytes.fromhex("0000") + b"\x00", "overrun the packet"),
        (bytes(base(0x04)) + bytes.fromhex("0001020900000000"), "overruns"),
        (bytes(base(0x04)) + bytes.fromhex("00000005"), "no length byte"),
    ],
)
def test_malformed_packets_are_refused(raw: bytes, match: str) -> None:
    with pytest.raises(PacketError, match=match):
        decode_packet(raw)
    assert issubclass(PacketError, ValueError)


@pytest.mark.parametrize("words", [0, 1, 24])
def test_padding_alone_is_skipped(words: int) -> None:
    raw = bytes(base(0x04)) + words.to_bytes(2, "big") + bytes((words + 1) * 4 - 2) + b"data"
    packet = decode_packet(raw)
    assert packet.payload == b"data"
    assert packet.header.e2ee is None and packet.header.user_timestamp is None


def test_unknown_extensions_and_short_known_ones_are_skipped() -> None:
    raw = bytes(base(0x04)) + bytes.fromhex(
        "0005"  # 6 words: 2 + 22 bytes
        "ff03504100"  # tag 255 (the server's participant sid), 3 bytes
        "02043c3c3c3c"  # a user timestamp too short to be one: skipped
        "02080000000000000009"  # a real one
        "00"  # padding
    )
    header = decode_packet(raw).header
    assert header.user_timestamp == 9 and header.e2ee is None


def test_extensions_longer_than_known_keep_their_known_part() -> None:
    raw = bytes(base(0x04)) + bytes.fromhex("0003020c4411221111118811ffffffff")
    assert decode_packet(raw).header.user_timestamp == 0x4411221111118811


# -- packetizing -----------------------------------------------------------------------------


def test_an_empty_frame_sends_nothing() -> None:
    packetizer = Packetizer(3)
    assert packetizer.packetize(b"", timestamp=0) == []
    assert (packetizer.sequence, packetizer.frame_number) == (0, 0)


@pytest.mark.parametrize("size", [1, 100, 15_988, 15_989, 16_000, 50_000, 100_000])
def test_frames_split_into_packets_of_at_most_16000_bytes(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    packets = Packetizer(9).packetize(payload, timestamp=1234, user_timestamp=99)
    room = MAX_PACKET_SIZE - 24  # 12 of header, 12 of user timestamp extension
    assert len(packets) == -(-size // room)
    assert all(len(p) <= MAX_PACKET_SIZE for p in packets)
    decoded = [decode_packet(p) for p in packets]
    markers = [d.header.marker for d in decoded]
    if len(packets) == 1:
        assert markers == [FrameMarker.SINGLE]
    else:
        middle = [FrameMarker.MIDDLE] * (len(packets) - 2)
        assert markers == [FrameMarker.START, *middle, FrameMarker.FINAL]
    assert [d.header.sequence for d in decoded] == list(range(len(packets)))
    assert {(d.header.frame_number, d.header.timestamp) for d in decoded} == {(0, 1234)}
    assert {d.header.user_timestamp for d in decoded} == {99}
    assert b"".join(d.payload for d in decoded) == payload


def test_a_frame_is_split_into_as_few_packets_as_possible_of_equal_size() -> None:
    e2ee = E2eeExtension(1, IV)
    packets = Packetizer(1).packetize(bytes(40_000), timestamp=0, user_timestamp=1, e2ee=e2ee)
    # 40 bytes of header each: 15,960 of payload would fit, 40,000 need 3 packets
    assert [len(p) for p in packets] == [13_334 + 40, 13_334 + 40, 13_332 + 40]
    sizes = [len(p) for p in Packetizer(1).packetize(bytes(16_001), timestamp=0)]
    assert sizes == [8_001 + 12, 8_000 + 12]


def test_sequence_and_frame_numbers_count_on_and_wrap() -> None:
    packetizer = Packetizer(1, max_packet_size=12 + 10)
    packetizer.sequence = 65534
    packetizer.frame_number = 65535
    first = [decode_packet(p).header for p in packetizer.packetize(bytes(25), timestamp=0)]
    second = [decode_packet(p).header for p in packetizer.packetize(b"x", timestamp=0)]
    assert [h.sequence for h in first] == [65534, 65535, 0]
    assert [h.frame_number for h in first] == [65535] * 3
    assert [(h.sequence, h.frame_number, h.marker) for h in second] == [(1, 0, FrameMarker.SINGLE)]


def test_a_packetizer_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="handle"):
        Packetizer(0)
    with pytest.raises(ValueError, match="no room"):
        Packetizer(1, max_packet_size=20).packetize(
            b"x", timestamp=0, e2ee=E2eeExtension(0, IV), user_timestamp=1
        )


# -- depacketizing ---------------------------------------------------------------------------


def split(payload: bytes, *, size: int = 34, frame: int = 0, sequence: int = 0) -> list[Packet]:
    packetizer = Packetizer(5, max_packet_size=size)
    packetizer.frame_number, packetizer.sequence = frame, sequence
    return [decode_packet(p) for p in packetizer.packetize(payload, timestamp=7, user_timestamp=3)]


def test_a_frame_comes_back_whole() -> None:
    payload = bytes(range(100))
    depacketizer = Depacketizer()
    results = [depacketizer.push(p) for p in split(payload)]
    assert all(r.frame is None for r in results[:-1])
    frame = results[-1].frame
    assert frame is not None and frame.payload == payload
    assert (frame.user_timestamp, frame.timestamp, frame.frame_number) == (3, 7, 0)
    assert depacketizer.partial_frames == 0


def test_packets_of_a_frame_may_come_out_of_order_before_its_final_one() -> None:
    payload = bytes(range(40))
    start, *middle, final = split(payload)
    depacketizer = Depacketizer()
    for packet in [start, *reversed(middle)]:
        assert depacketizer.push(packet).frame is None
    result = depacketizer.push(final)
    assert result.frame is not None and result.frame.payload == payload


def test_a_missing_packet_drops_the_frame_and_the_next_one_is_fine() -> None:
    depacketizer = Depacketizer()
    packets = split(bytes(50))
    del packets[1]
    results = [depacketizer.push(p) for p in packets]
    assert all(r.frame is None for r in results)
    assert [(d.frame_number, d.reason) for d in results[-1].dropped] == [(0, "incomplete")]
    nxt = [depacketizer.push(p) for p in split(b"next", frame=1, sequence=10)]
    assert nxt[-1].frame is not None and nxt[-1].frame.payload == b"next"


def test_a_frame_without_its_first_packet_is_dropped() -> None:
    depacketizer = Depacketizer()
    packets = split(bytes(50))
    results = [depacketizer.push(p) for p in packets[1:]]
    assert all(r.frame is None for r in results)
    assert {d.reason for r in results for d in r.dropped} == {"unknown frame"}


def test_a_new_frame_interrupts_an_incomplete_one_unless_more_are_allowed() -> None:
    one = split(bytes([1]) * 30, frame=1, sequence=0)
    two = split(bytes([2]) * 30, frame=2, sequence=100)
    interleaved = [one[0], two[0], *one[1:], *two[1:]]

    strict = Depacketizer()
    results = [strict.push(p) for p in interleaved]
    frames = [r.frame.payload for r in results if r.frame is not None]
    assert frames == [bytes([2]) * 30]
    assert [(d.frame_number, d.reason) for d in results[1].dropped] == [(1, "interrupted")]

    tolerant = Depacketizer(max_partial_frames=2)
    frames = [r.frame.payload for p in interleaved if (r := tolerant.push(p)).frame is not None]
    assert frames == [bytes([1]) * 30, bytes([2]) * 30]


def test_a_single_packet_frame_at_capacity_evicts_the_oldest_incomplete_one() -> None:
    depacketizer = Depacketizer()
    depacketizer.push(split(bytes(30), frame=1)[0])
    result = depacketizer.push(split(b"solo", frame=2, sequence=50)[0])
    assert result.frame is not None and result.frame.payload == b"solo"
    assert [(d.frame_number, d.reason) for d in result.dropped] == [(1, "interrupted")]
    assert depacketizer.partial_frames == 0


def test_a_frame_may_span_the_sequence_wrap() -> None:
    payload = bytes(range(60))
    packets = split(payload, sequence=65534)
    assert [p.header.sequence for p in packets][:3] == [65534, 65535, 0]
    depacketizer = Depacketizer()
    frame = [depacketizer.push(p) for p in packets][-1].frame
    assert frame is not None and frame.payload == payload


def test_more_than_128_packets_drop_the_frame() -> None:
    packets = split(bytes(10 * (MAX_PACKETS_PER_FRAME + 1)))
    assert len(packets) == MAX_PACKETS_PER_FRAME + 1
    depacketizer = Depacketizer()
    results = [depacketizer.push(p) for p in packets]
    assert results[-1].frame is None
    assert [d.reason for r in results for d in r.dropped] == ["buffer full"]
    assert depacketizer.partial_frames == 0


def test_the_first_packet_carries_the_frame_extensions() -> None:
    depacketizer = Depacketizer()
    packets = [
        decode_packet(p)
        for p in Packetizer(1, max_packet_size=60).packetize(
            bytes(50), timestamp=5, user_timestamp=8, e2ee=E2eeExtension(2, IV)
        )
    ]
    frame = [depacketizer.push(p) for p in packets][-1].frame
    assert frame is not None and frame.e2ee == E2eeExtension(2, IV) and frame.user_timestamp == 8


def test_max_partial_frames_is_at_least_one() -> None:
    assert Depacketizer(0).max_partial_frames == 1
    depacketizer = Depacketizer(3)
    depacketizer.max_partial_frames = 0
    assert depacketizer.max_partial_frames == 1
    with pytest.raises(ValueError, match="max_partial_frames"):
        Depacketizer(-1)
