"""The reliable-data bookkeeping on its own: numbering, keeping, releasing, resending, dedupe."""

from __future__ import annotations

import pytest
from livekit.protocol import models as proto_models

from livekit_py.session.reliable_buffer import (
    MAX_SEQUENCE,
    ReceiveDeduper,
    ReliableBufferFullError,
    ReliableSendBuffer,
)


def user(payload: bytes = b"x", topic: str = "") -> proto_models.DataPacket:
    return proto_models.DataPacket(
        kind=proto_models.DataPacket.Kind.RELIABLE,
        participant_identity="me",
        user=proto_models.UserPacket(payload=payload, topic=topic),
    )


def record_all(buffer: ReliableSendBuffer, n: int, size: int = 10) -> list[int]:
    return [buffer.record(user(bytes(size))) for _ in range(n)]


# ---------------------------------------------------------------------- numbering


def test_sequences_start_at_1_and_go_up_by_one() -> None:
    buffer = ReliableSendBuffer()
    assert buffer.next_sequence == 1 and buffer.last_sequence == 0
    packets = [user(b"a"), user(b"b"), user(b"c")]
    assert [buffer.record(p) for p in packets] == [1, 2, 3]
    assert [p.sequence for p in packets] == [1, 2, 3]
    assert buffer.last_sequence == 3 and buffer.next_sequence == 4


def test_the_kept_payload_is_the_packet_with_its_sequence() -> None:
    buffer = ReliableSendBuffer()
    packet = user(b"hello", topic="t")
    seq = buffer.record(packet)
    sent = proto_models.DataPacket()
    sent.ParseFromString(buffer.payload(seq))
    assert sent.sequence == seq == 1
    assert sent.user.payload == b"hello" and sent.user.topic == "t"
    assert buffer.pending_bytes == len(buffer.payload(seq))
    with pytest.raises(KeyError):
        buffer.payload(2)
    with pytest.raises(KeyError):
        buffer.payload(0)


def test_a_previous_sequence_on_the_packet_is_replaced() -> None:
    buffer = ReliableSendBuffer()
    packet = user()
    packet.sequence = 77
    assert buffer.record(packet) == 1 and packet.sequence == 1


def test_large_sequences_up_to_uint32_max() -> None:
    buffer = ReliableSendBuffer(first_sequence=MAX_SEQUENCE - 2)
    assert record_all(buffer, 3) == [MAX_SEQUENCE - 2, MAX_SEQUENCE - 1, MAX_SEQUENCE]
    packet = proto_models.DataPacket()
    packet.ParseFromString(buffer.payload(MAX_SEQUENCE))
    assert packet.sequence == MAX_SEQUENCE
    # no wrap-around: uint32 sequences are used up, which is refused clearly
    refused = user()
    with pytest.raises(ReliableBufferFullError, match="used up"):
        buffer.record(refused)
    assert refused.sequence == 0
    assert buffer.sequences_after(MAX_SEQUENCE - 2) == [MAX_SEQUENCE - 1, MAX_SEQUENCE]
    assert buffer.delivered_through(MAX_SEQUENCE - 1) == 2
    assert buffer.pending_sequences == [MAX_SEQUENCE]


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"max_packets": -1}, {"first_sequence": 0}])
def test_bad_settings_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ReliableSendBuffer(**kwargs)


# ---------------------------------------------------------------------- delivery


def test_delivered_through_forgets_up_to_and_including_the_sequence() -> None:
    buffer = ReliableSendBuffer()
    record_all(buffer, 5)
    assert buffer.delivered_through(0) == 0
    assert buffer.delivered_through(3) == 3
    assert buffer.pending_sequences == [4, 5]
    assert buffer.delivered_through(3) == 0  # again: nothing more
    assert buffer.delivered_through(100) == 2
    assert buffer.pending_count == 0 and buffer.pending_bytes == 0
    assert buffer.record(user()) == 6  # numbering goes on


def test_resend_after_a_sequence_gives_the_rest_in_order() -> None:
    buffer = ReliableSendBuffer()
    for i in range(1, 6):
        buffer.record(user(f"p{i}".encode()))
    rest = buffer.pending_after(2)
    assert [p.sequence for p in rest] == [3, 4, 5]
    assert [p.user.payload for p in rest] == [b"p3", b"p4", b"p5"]
    assert buffer.sequences_after(2) == [3, 4, 5]
    assert buffer.pending_after(5) == [] and buffer.sequences_after(9) == []
    assert [p.sequence for p in buffer.pending_after(0)] == [1, 2, 3, 4, 5]
    # pending_after does not forget anything; delivered_through does
    assert buffer.pending_count == 5


def test_drain_releases_a_packet_once_all_its_bytes_left_the_channel() -> None:
    buffer = ReliableSendBuffer()
    sizes = []
    for _ in range(3):
        seq = buffer.record(user(bytes(100)))
        sizes.append(len(buffer.payload(seq)))
    total = sum(sizes)
    # everything still queued in the channel
    assert buffer.delivered_by_drain(total) == 0
    # one byte of the first packet still queued: it stays
    assert buffer.delivered_by_drain(total - sizes[0] + 1) == 0
    # the first packet's bytes are all gone
    assert buffer.delivered_by_drain(total - sizes[0]) == 1
    assert buffer.pending_sequences == [2, 3]
    # a half-sent second packet stays
    assert buffer.delivered_by_drain(sizes[2] + sizes[1] // 2) == 0
    assert buffer.delivered_by_drain(0) == 2
    assert buffer.pending_count == 0


def test_drain_counts_resent_bytes_again() -> None:
    buffer = ReliableSendBuffer()
    record_all(buffer, 3, size=50)
    size = len(buffer.payload(1))
    # after a resume the channel still holds all three and they are resent
    for seq in buffer.sequences_after(0):
        buffer.mark_resent(seq)
    # 6 copies were handed over; with 4 still queued, the resent 1 and 2 are not out yet
    assert buffer.delivered_by_drain(4 * size) == 0
    assert buffer.delivered_by_drain(2 * size) == 1  # resent copy of 1 has left
    assert buffer.pending_sequences == [2, 3]
    assert buffer.delivered_by_drain(0) == 2
    with pytest.raises(KeyError):
        buffer.mark_resent(1)


def test_a_negative_or_oversized_buffered_amount_is_harmless() -> None:
    buffer = ReliableSendBuffer()
    record_all(buffer, 2)
    assert buffer.delivered_by_drain(10**9) == 0
    assert buffer.delivered_by_drain(-5) == 2


# ---------------------------------------------------------------------- bounds


def test_the_packet_bound_refuses_without_numbering() -> None:
    buffer = ReliableSendBuffer(max_packets=3)
    record_all(buffer, 3)
    refused = user()
    with pytest.raises(ReliableBufferFullError, match="3 packets") as caught:
        buffer.record(refused)
    assert isinstance(caught.value, ConnectionError)
    assert refused.sequence == 0 and buffer.next_sequence == 4 and buffer.pending_count == 3
    buffer.delivered_through(1)
    assert buffer.record(refused) == 4


def test_the_byte_bound_refuses_without_numbering() -> None:
    buffer = ReliableSendBuffer(max_bytes=250)
    buffer.record(user(bytes(100)))
    buffer.record(user(bytes(100)))
    with pytest.raises(ReliableBufferFullError, match="bytes"):
        buffer.record(user(bytes(100)))
    assert buffer.pending_sequences == [1, 2]
    assert buffer.delivered_by_drain(0) == 2
    assert buffer.record(user(bytes(100))) == 3


def test_a_packet_larger_than_the_byte_bound_is_refused() -> None:
    buffer = ReliableSendBuffer(max_bytes=50)
    with pytest.raises(ReliableBufferFullError):
        buffer.record(user(bytes(100)))
    assert buffer.next_sequence == 1


def test_clear_forgets_but_numbering_goes_on() -> None:
    buffer = ReliableSendBuffer()
    record_all(buffer, 4)
    buffer.clear()
    assert buffer.pending_count == 0 and buffer.pending_bytes == 0
    assert buffer.record(user()) == 5
    assert buffer.pending_sequences == [5]


# ---------------------------------------------------------------------- receiving


def test_dedupe_drops_what_is_not_newer_from_the_same_sender() -> None:
    deduper = ReceiveDeduper()
    assert [deduper.accept_sequence("PA_a", s) for s in (1, 2, 3)] == [True, True, True]
    assert deduper.accept_sequence("PA_a", 3) is False  # duplicate
    assert deduper.accept_sequence("PA_a", 2) is False  # older
    assert deduper.accept_sequence("PA_a", 5) is True  # a gap is fine (sender's sends failed)
    assert deduper.accept_sequence("PA_a", 4) is False  # late, behind the gap
    assert deduper.last_sequence("PA_a") == 5


def test_dedupe_keeps_each_sender_apart() -> None:
    deduper = ReceiveDeduper()
    assert deduper.accept_sequence("PA_a", 10)
    assert deduper.accept_sequence("PA_b", 1)
    assert deduper.accept_sequence("PA_b", 2)
    assert not deduper.accept_sequence("PA_a", 9)
    assert deduper.last_sequences() == {"PA_a": 10, "PA_b": 2}
    assert deduper.last_sequence("PA_c") == 0


def test_sequence_0_and_a_missing_sid_always_pass() -> None:
    deduper = ReceiveDeduper()
    for _ in range(3):
        assert deduper.accept_sequence("PA_old", 0)  # a sender that does not number
        assert deduper.accept_sequence("", 7)  # no sender sid (server-made packet)
    assert deduper.last_sequences() == {}
    assert deduper.accept_sequence("PA_a", 4)
    assert deduper.accept_sequence("PA_a", 0)  # numbering off again: still passes
    assert deduper.last_sequence("PA_a") == 4


def test_dedupe_reads_the_packet_fields() -> None:
    deduper = ReceiveDeduper()
    packet = user()
    packet.participant_sid = "PA_x"
    packet.sequence = 1
    assert deduper.accept(packet)
    assert not deduper.accept(packet)
    packet.sequence = MAX_SEQUENCE
    assert deduper.accept(packet)
    assert not deduper.accept(packet)


def test_dedupe_remembers_a_bounded_number_of_senders() -> None:
    deduper = ReceiveDeduper(max_senders=2)
    deduper.accept_sequence("PA_a", 5)
    deduper.accept_sequence("PA_b", 5)
    deduper.accept_sequence("PA_a", 6)  # a heard most recently
    deduper.accept_sequence("PA_c", 1)  # b forgotten
    assert set(deduper.last_sequences()) == {"PA_a", "PA_c"}
    assert deduper.accept_sequence("PA_b", 5)  # forgotten: accepted again
    with pytest.raises(ValueError):
        ReceiveDeduper(max_senders=0)


def test_forget_and_clear() -> None:
    deduper = ReceiveDeduper()
    deduper.accept_sequence("PA_a", 3)
    deduper.accept_sequence("PA_b", 3)
    deduper.forget("PA_a")
    deduper.forget("PA_unknown")
    assert deduper.accept_sequence("PA_a", 1)
    deduper.clear()
    assert deduper.last_sequences() == {}
