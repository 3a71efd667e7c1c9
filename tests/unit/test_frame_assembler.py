"""The video frame assembler, fed synthetic depayloaded RTP packets and a hand-moved clock."""

from __future__ import annotations

import itertools

import pytest
from aiortc.rtp import RtpPacket

from livekit_py.webrtc.frame_assembler import (
    CodecKeyframeTest,
    FrameAssembler,
    h264_is_keyframe,
    vp8_is_keyframe,
)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never awaited here
        self.t += seconds


def packet(
    seq: int, ts: int, *, marker: bool = False, data: bytes = b"d", ssrc: int = 1, pt: int = 96
) -> RtpPacket:
    p = RtpPacket(
        payload_type=pt,
        marker=int(marker),
        sequence_number=seq % 65536,
        timestamp=ts % (1 << 32),
        ssrc=ssrc,
        payload=data,
    )
    p._data = data  # test-only: what aiortc's packet handler attaches (depayloaded)
    return p


def is_key(pt: int, data: bytes) -> bool:
    return data.startswith(b"K")


def frame_packets(
    first_seq: int, ts: int, count: int, *, key: bool = False, ssrc: int = 1
) -> list[RtpPacket]:
    """One frame of ``count`` packets (data: K/D, the frame's ts, the index), marker on the last."""
    tag = b"K" if key else b"D"
    return [
        packet(
            first_seq + i,
            ts,
            marker=i == count - 1,
            data=tag + f"{ts}.{i};".encode(),
            ssrc=ssrc,
        )
        for i in range(count)
    ]


def joined(packets: list[RtpPacket]) -> bytes:
    return b"".join(p._data for p in packets)


def make(**kwargs: object) -> tuple[FrameAssembler, Clock]:
    clock = Clock()
    return FrameAssembler(is_key, clock=clock, **kwargs), clock  # type: ignore[arg-type]


def feed(assembler: FrameAssembler, packets: list[RtpPacket]) -> list[tuple[bool, list[bytes]]]:
    out = []
    for p in packets:
        pli, frames = assembler.add_frames(p)
        out.append((pli, [f.data for f in frames]))
    return out


def released(assembler: FrameAssembler, packets: list[RtpPacket]) -> list[bytes]:
    return [data for _, frames in feed(assembler, packets) for data in frames]


# ---------------------------------------------------------------------- release at the marker


def test_a_single_packet_frame_is_released_at_its_own_packet() -> None:
    assembler, _ = make()
    key = frame_packets(10, 3000, 1, key=True)
    pli, frames = assembler.add_frames(key[0])
    assert not pli
    assert [(f.data, f.timestamp, f.payload_type) for f in frames] == [(joined(key), 3000, 96)]


def test_a_multi_packet_frame_is_released_at_the_marker_not_at_the_next_frame() -> None:
    assembler, _ = make()
    key = frame_packets(10, 3000, 4, key=True)
    delta = frame_packets(14, 6000, 3)
    results = feed(assembler, key + delta)
    # nothing until the marker, then the frame at once; the next frame likewise
    assert [frames for _, frames in results] == [
        [],
        [],
        [],
        [joined(key)],
        [],
        [],
        [joined(delta)],
    ]
    stats = assembler.stats
    assert stats.frames_assembled == 2
    assert stats.plis_requested == 0
    assert assembler.buffered == 0


def test_without_markers_a_frame_ends_at_the_next_frames_first_packet() -> None:
    assembler, _ = make()
    first = [packet(1, 0, data=b"Ka"), packet(2, 0, data=b"b")]
    second = [packet(3, 90, data=b"Dc")]
    assert released(assembler, first + second) == [b"Kab"]


def test_reordered_packets_inside_a_frame() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 5, key=True)
    order = [key[0], key[3], key[1], key[4], key[2]]
    results = feed(assembler, order)
    assert [frames for _, frames in results] == [[], [], [], [], [joined(key)]]


def test_reordering_across_frames() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 2, key=True)
    delta = frame_packets(102, 3000, 2)
    # the next frame's packets come before the key frame's last one
    out = feed(assembler, [key[0], delta[0], delta[1], key[1]])
    assert out[-1][1] == [joined(key), joined(delta)]  # both, in order, with one packet


def test_duplicates_and_late_packets_are_dropped() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 3, key=True)
    delta = frame_packets(103, 3000, 2)
    assert released(assembler, [key[0], key[1], key[1], key[2]]) == [joined(key)]
    assert released(assembler, [key[2], key[0], delta[0], delta[1]]) == [joined(delta)]
    stats = assembler.stats
    assert stats.packets_duplicate == 1
    assert stats.packets_late == 2
    assert stats.frames_assembled == 2


def test_padding_between_frames_is_skipped() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 2, key=True)
    padding = [packet(102, 0, data=b""), packet(103, 0, data=b"")]
    delta = frame_packets(104, 3000, 2)
    assert released(assembler, key + padding + delta) == [joined(key), joined(delta)]
    assert assembler.buffered == 0


# ---------------------------------------------------------------------- loss


def test_a_retransmission_in_time_completes_the_frame() -> None:
    assembler, clock = make()
    key = frame_packets(100, 0, 3, key=True)
    delta = frame_packets(103, 3000, 3)
    after = frame_packets(106, 6000, 2)
    assert released(assembler, key) == [joined(key)]
    lost = delta[1]
    assert released(assembler, [delta[0], delta[2], *after]) == []  # waits behind the hole
    clock.t += 0.2
    pli, frames = assembler.add_frames(lost)  # the retransmission
    assert not pli
    assert [f.data for f in frames] == [joined(delta), joined(after)]
    stats = assembler.stats
    assert (stats.frames_assembled, stats.frames_dropped, stats.plis_requested) == (3, 0, 0)


def test_a_lost_packet_drops_its_frame_after_the_wait_and_holds_until_a_key_frame() -> None:
    assembler, clock = make(max_wait=0.25, pli_interval=0.5)
    key = frame_packets(100, 0, 2, key=True)
    broken = frame_packets(102, 3000, 3)
    assert released(assembler, key) == [joined(key)]
    # its middle packet never comes; later frames keep coming (delta frames)
    out = feed(assembler, [broken[0], broken[2]])
    seq, ts = 105, 6000
    plis = 0
    got: list[bytes] = []
    for _ in range(12):  # 0.36 s of delta frames, 30 ms apart
        clock.t += 0.03
        for pli, frames in feed(assembler, frame_packets(seq, ts, 2)):
            plis += pli
            got += frames
        seq, ts = seq + 2, ts + 3000
    assert all(not pli for pli, _ in out)
    assert plis == 1  # once, when the broken frame was given up (after 0.25 s)
    assert got == []  # the deltas behind it were discarded: no key frame yet
    stats = assembler.stats
    assert stats.frames_dropped == 1
    assert stats.frames_discarded == 12
    assert stats.packets_dropped == 2
    assert assembler.buffered == 0
    # the key frame the PLI asked for
    clock.t += 0.03
    key2 = frame_packets(seq, ts, 3, key=True)
    delta2 = frame_packets(seq + 3, ts + 3000, 1)
    assert released(assembler, key2 + delta2) == [joined(key2), joined(delta2)]


def test_no_key_frame_in_time_asks_again_but_not_on_every_packet() -> None:
    assembler, clock = make(max_wait=0.25, pli_interval=0.5)
    key = frame_packets(100, 0, 1, key=True)
    assert released(assembler, key) == [joined(key)]
    feed(assembler, [packet(102, 3000, marker=True, data=b"D")])  # 101 is lost
    seq, ts = 103, 6000
    plis: list[float] = []
    for _ in range(100):  # 2 s of delta frames, 2 packets each, 20 ms apart
        clock.t += 0.02
        for pli, frames in feed(assembler, frame_packets(seq, ts, 2)):
            assert frames == []
            if pli:
                plis.append(round(clock.t - 100.0, 2))
        seq, ts = seq + 2, ts + 1800
    assert len(plis) == 4  # the drop, then one every 0.5 s
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(plis))
    assert assembler.stats.plis_requested == 4


def test_no_second_pli_while_the_key_frame_is_arriving() -> None:
    assembler, clock = make(max_wait=0.25, pli_interval=0.5)
    key = frame_packets(100, 0, 1, key=True)
    released(assembler, key)
    feed(assembler, [packet(102, 3000, marker=True, data=b"D")])  # 101 is lost
    clock.t += 0.3
    assert any(pli for pli, _ in feed(assembler, frame_packets(103, 6000, 1)))  # dropped
    big = frame_packets(104, 9000, 40, key=True)  # a large key frame, slowly paced
    plis = []
    for p in big:
        clock.t += 0.05
        pli, frames = assembler.add_frames(p)
        plis.append(pli)
    assert not any(plis)
    assert [f.data for f in frames] == [joined(big)]


def test_the_first_frame_must_be_a_key_frame() -> None:
    assembler, clock = make(pli_interval=0.5)
    delta = frame_packets(100, 0, 2)
    out = feed(assembler, delta)
    assert out[-1] == (True, [])  # discarded, key frame asked for
    key = frame_packets(102, 3000, 2, key=True)
    clock.t += 0.1
    assert released(assembler, key) == [joined(key)]
    assert assembler.stats.frames_discarded == 1


def test_a_lost_marker_packet_drops_up_to_the_next_known_frame_start() -> None:
    assembler, clock = make(max_wait=0.25)
    released(assembler, frame_packets(100, 0, 1, key=True))
    f1 = frame_packets(101, 3000, 3)  # its marker packet is lost
    f2 = frame_packets(104, 6000, 2)  # whose start cannot be known (103 missing)
    f3 = frame_packets(106, 9000, 2, key=True)
    assert released(assembler, f1[:2] + f2) == []
    clock.t += 0.3
    out = feed(assembler, f3)
    assert out[0][0]  # PLI when dropping
    assert out[-1][1] == [joined(f3)]
    stats = assembler.stats
    assert stats.frames_dropped == 2  # f1 and f2 (f2 could not be known to be whole)
    assert stats.packets_dropped == 4


def test_a_lost_first_packet_resyncs_on_the_next_frame() -> None:
    assembler, clock = make(max_wait=0.25)
    released(assembler, frame_packets(100, 0, 1, key=True))
    f1 = frame_packets(101, 3000, 3)  # its first packet is lost
    f2 = frame_packets(104, 6000, 2, key=True)
    assert released(assembler, f1[1:] + f2) == []  # waiting for 101
    clock.t += 0.3
    pli, frames = assembler.add_frames(packet(106, 9000, marker=True, data=b"D"))
    assert pli
    assert [f.data for f in frames] == [joined(f2), b"D"]


# ---------------------------------------------------------------------- sequence numbers


def test_sequence_numbers_wrap_around() -> None:
    assembler, _ = make()
    key = frame_packets(65533, 0, 3, key=True)  # 65533, 65534, 65535
    delta = frame_packets(65536, 3000, 3)  # 0, 1, 2
    more = frame_packets(65539, 6000, 2)
    assert [p.sequence_number for p in delta] == [0, 1, 2]
    order = [*key, delta[1], delta[0], delta[2], *more]
    assert released(assembler, order) == [joined(key), joined(delta), joined(more)]
    assert assembler.stats.packets_late == 0


def test_timestamps_wrap_around() -> None:
    assembler, _ = make()
    key = frame_packets(10, (1 << 32) - 1500, 2, key=True)
    delta = frame_packets(12, 1500, 2)
    assert released(assembler, key + delta) == [joined(key), joined(delta)]


def test_a_big_sequence_jump_starts_over() -> None:
    assembler, _ = make()
    released(assembler, frame_packets(100, 0, 2, key=True))
    assert released(assembler, [*frame_packets(102, 3000, 1)[:1], packet(103, 6000)]) == [
        b"D3000.0;"
    ]
    # the sender restarts: far-away sequence numbers, a key frame first
    restarted = frame_packets(40000, 500, 3, key=True)
    out = feed(assembler, restarted)
    assert [frames for _, frames in out] == [[], [], [joined(restarted)]]
    assert assembler.stats.resets == 1
    assert released(assembler, frame_packets(40003, 3500, 1)) == [b"D3500.0;"]


def test_one_stray_far_packet_does_not_restart() -> None:
    assembler, _ = make()
    released(assembler, frame_packets(100, 0, 1, key=True))
    assert released(assembler, [packet(30000, 99, marker=True, data=b"K")]) == []
    delta = frame_packets(101, 3000, 2)
    assert released(assembler, delta) == [joined(delta)]
    assert assembler.stats.resets == 0


def test_a_new_ssrc_starts_over() -> None:
    assembler, _ = make()
    released(assembler, frame_packets(100, 0, 1, key=True))
    feed(assembler, frame_packets(101, 3000, 2)[:1])  # a frame in progress
    other = frame_packets(7, 123, 2, key=True, ssrc=2)
    assert released(assembler, other) == [joined(other)]
    assert assembler.stats.resets == 1
    assert assembler.stats.packets_dropped == 1


def test_the_first_frame_starting_earlier_than_its_first_arrival() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 3, key=True)
    assert released(assembler, [key[1], key[0], key[2]]) == [joined(key)]


# ---------------------------------------------------------------------- bounds and contract


def test_the_buffer_never_spans_more_than_its_capacity() -> None:
    assembler, _ = make(capacity=16, max_wait=100.0)
    released(assembler, frame_packets(100, 0, 1, key=True))
    plis = 0
    seq, ts = 102, 3000  # 101 never comes
    for _ in range(20):
        for pli, _frames in feed(assembler, frame_packets(seq, ts, 2)):
            plis += pli
            assert assembler.buffered <= 16
        seq, ts = seq + 2, ts + 3000
    assert plis == 1
    assert assembler.stats.frames_dropped >= 1
    key = frame_packets(seq, ts, 2, key=True)
    assert released(assembler, key) == [joined(key)]


def test_add_hands_out_one_frame_per_packet_in_order() -> None:
    assembler, _ = make()
    key = frame_packets(100, 0, 2, key=True)
    d1 = frame_packets(102, 3000, 1)
    d2 = frame_packets(103, 6000, 1)
    nxt = frame_packets(104, 9000, 2)
    results = [assembler.add(p) for p in [key[0], d1[0], d2[0], key[1], *nxt]]
    frames = [f.data if f is not None else None for _, f in results]
    assert frames == [None, None, None, joined(key), joined(d1), joined(d2)]
    assert assembler.add(packet(106, 12000, marker=True, data=b"D"))[1] is not None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FrameAssembler(is_key, capacity=1)
    with pytest.raises(ValueError, match="max_wait"):
        FrameAssembler(is_key, max_wait=0)
    with pytest.raises(ValueError, match="keyframe_test"):
        FrameAssembler(None)  # type: ignore[arg-type]


def test_assembly_delay_is_the_time_from_the_first_packet() -> None:
    assembler, clock = make()
    key = frame_packets(100, 0, 3, key=True)
    for p in key:
        assembler.add_frames(p)
        clock.t += 0.004
    assert assembler.stats.assembly_delay_sum == pytest.approx(0.008)


# ---------------------------------------------------------------------- key frame tests


def test_vp8_key_frames() -> None:
    key = bytes([0x50, 0x2D, 0x01, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
    assert vp8_is_keyframe(key)
    assert not vp8_is_keyframe(bytes([0x51]) + key[1:])  # inter frame bit
    assert not vp8_is_keyframe(b"\x50\x2d\x01")  # too short to say


def test_h264_key_frames() -> None:
    sps = b"\x00\x00\x00\x01\x67\x42\xc0\x1f"
    pps = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
    idr = b"\x00\x00\x00\x01\x65\x88\x84\x00"
    non_idr = b"\x00\x00\x00\x01\x41\x9a\x00\x00"
    assert h264_is_keyframe(sps + pps + idr)
    assert h264_is_keyframe(idr)
    assert h264_is_keyframe(sps)  # how a key frame's first packet shows
    assert not h264_is_keyframe(non_idr)
    assert not h264_is_keyframe(b"\x9a\x00\x00\x65")  # FU-A continuation data: no start code


def test_codec_key_frame_test_by_payload_type() -> None:
    test = CodecKeyframeTest({96: "video/VP8", 102: "video/H264", 97: "video/rtx"})
    vp8_key = bytes([0x50, 0x2D, 0x01, 0x9D, 0x01, 0x2A])
    assert test(96, vp8_key)
    assert not test(102, vp8_key)
    assert test(102, b"\x00\x00\x00\x01\x65\x88")
    assert test(45, b"anything")  # unknown: never held back
    assert test == CodecKeyframeTest({96: "video/VP8", 102: "video/H264", 97: "video/rtx"})
