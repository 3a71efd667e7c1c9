"""AudioJitterBuffer on synthetic RTP: exact decisions, delay adaptation and stats.

Packets come from a small generator (20 ms Opus-sized packets, a delay model per packet,
a set of lost indices); a driver pushes every packet whose arrival has come and pops at a
fixed period, as a consumer on its own clock would. Nothing here reads the real clock.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest

from livekit_py.media.jitter_buffer import (
    Action,
    AudioJitterBuffer,
    Decision,
    JitterBufferStats,
    PushResult,
)

RATE = 48000
FRAME = 960  # 20 ms
PERIOD = 0.02


@dataclass(frozen=True)
class Packet:
    index: int
    seq: int  # 16-bit
    timestamp: int  # 32-bit
    payload: bytes
    arrival: float


def payload(index: int, size: int = 40) -> bytes:
    """A payload naming its packet (so decisions can be traced back), ``size`` >= 2 bytes."""
    return index.to_bytes(4, "big") + bytes(size - 4) if size >= 4 else index.to_bytes(size, "big")


def index_of(d: Decision) -> int:
    assert d.payload is not None
    return int.from_bytes(d.payload[:4], "big")


def generate(
    count: int,
    *,
    delay: Callable[[int], float] | float = 0.03,
    lost: Iterable[int] = (),
    seq0: int = 1000,
    ts0: int = 5_000_000,
    start: float = 0.0,
    period: float = PERIOD,
    step: int = FRAME,
    sizes: Callable[[int], int] | None = None,
) -> list[Packet]:
    """``count`` packets sent every ``period`` s from ``start``, arriving after ``delay``."""
    lost = set(lost)
    out = []
    for i in range(count):
        if i in lost:
            continue
        d = delay(i) if callable(delay) else delay
        out.append(
            Packet(
                i,
                (seq0 + i) & 0xFFFF,
                (ts0 + i * step) & 0xFFFFFFFF,
                payload(i, sizes(i) if sizes else 40),
                start + i * period + d,
            )
        )
    return out


def drive(
    buffer: AudioJitterBuffer,
    packets: Sequence[Packet],
    until: float,
    *,
    pop_period: float = 0.01,
    start: float = 0.0,
    on_pop: Callable[[float, list[Decision]], None] | None = None,
    options: Callable[[Packet], dict[str, bool]] | None = None,
) -> list[Decision]:
    """Push each packet once its arrival has come, pop every ``pop_period`` s.

    ``options`` gives the keyword arguments of each push (``silent``, ``fec``).
    """
    ordered = sorted(packets, key=lambda p: p.arrival)
    decisions: list[Decision] = []
    i = 0
    steps = round((until - start) / pop_period)
    for n in range(steps + 1):
        now = start + n * pop_period
        while i < len(ordered) and ordered[i].arrival <= now:
            p = ordered[i]
            buffer.push(p.seq, p.timestamp, p.payload, p.arrival, **(options(p) if options else {}))
            i += 1
        popped = buffer.pop(now)
        decisions.extend(popped)
        if on_pop is not None:
            on_pop(now, popped)
    return decisions


def assert_continuous(decisions: Sequence[Decision]) -> None:
    """Stream timestamps tile within each stream; output times tile throughout."""
    for prev, d in itertools.pairwise(decisions):
        assert d.due == pytest.approx(prev.due + prev.output_samples / RATE, abs=1e-9)
        if not d.new_stream:
            assert d.timestamp == prev.timestamp + prev.samples, (prev, d)
        assert d.samples > 0 or d.output_samples > 0


def played(decisions: Iterable[Decision]) -> list[int]:
    return [index_of(d) for d in decisions if d.action is Action.PLAY]


def stream_part(decisions: Sequence[Decision]) -> list[Decision]:
    """The decisions from the first of the stream on."""
    first = next(i for i, d in enumerate(decisions) if d.new_stream)
    return list(decisions[first:])


def in_order(indices: Iterable[int], skipped: Iterable[int] = ()) -> bool:
    """``indices`` are 0, 1, 2... without ``skipped``, up to some point."""
    got = list(indices)
    skipped = set(skipped)
    expected = [i for i in range(max(got, default=-1) + 1) if i not in skipped]
    return got == expected


# -- the basics ------------------------------------------------------------------------


def test_a_clean_stream_plays_every_packet_in_order_one_packet_after_arrival() -> None:
    buffer = AudioJitterBuffer()
    packets = generate(200, delay=0.0303)
    decisions = drive(buffer, packets, 2.0)
    assert_continuous(decisions)
    assert stream_part(decisions)[0].timestamp == 5_000_000
    first = decisions.index(next(d for d in decisions if d.action is Action.PLAY))
    # silence before the first packet (and a pre-roll), then nothing but the packets
    assert all(d.action is Action.SILENCE and d.inserted for d in decisions[:first])
    rest = decisions[first:]
    assert all(d.action is Action.PLAY and d.samples == d.output_samples == FRAME for d in rest)
    assert in_order(played(rest)) and len(rest) >= 95
    # the first packet is due one packet (20 ms) after it arrived, to the 2.5 ms step
    assert rest[0].due - packets[0].arrival == pytest.approx(0.02, abs=0.0026)
    stats = buffer.stats()
    assert stats.packets_played == len(rest)
    assert stats.packets_lost == stats.concealed_samples == stats.packets_late == 0
    assert stats.target_delay == pytest.approx(0.02, abs=1e-6)
    assert stats.current_delay == pytest.approx(0.02, abs=0.0026)
    assert stats.jitter_buffer_delay / stats.jitter_buffer_emitted_count == pytest.approx(
        0.02, abs=0.0026
    )
    assert stats.jitter == pytest.approx(0.0, abs=1e-9)


def test_before_the_first_packet_pop_emits_silence_paced_by_the_consumer_clock() -> None:
    buffer = AudioJitterBuffer()
    assert buffer.next_due is None
    first = buffer.pop(10.0)
    assert [(d.action, d.samples, d.output_samples, d.due) for d in first] == [
        (Action.SILENCE, 0, FRAME, 10.0)
    ]
    assert buffer.pop(10.019) == []
    assert buffer.next_due == pytest.approx(10.02)
    assert [d.due for d in buffer.pop(10.06)] == pytest.approx([10.02, 10.04, 10.06])


def test_pop_called_early_returns_nothing_and_called_late_catches_up() -> None:
    buffer = AudioJitterBuffer(min_delay=0.04)
    packets = generate(100, delay=0.01)
    decisions = drive(buffer, [p for p in packets if p.arrival <= 0.3], 0.3)
    assert buffer.pop(0.3) == []  # nothing new is due
    # the consumer stalls 200 ms; the packets arrive meanwhile
    for p in packets:
        if 0.3 < p.arrival <= 0.5:
            buffer.push(p.seq, p.timestamp, p.payload, p.arrival)
    late = buffer.pop(0.5)
    assert len(late) == 10
    assert all(d.action is Action.PLAY and d.output_samples == FRAME for d in late)
    decisions += late
    decisions += drive(buffer, [p for p in packets if p.arrival > 0.5], 1.5, start=0.51)
    assert_continuous(decisions)
    assert in_order(played(decisions)) and len(played(decisions)) > 60
    assert buffer.stats().packets_lost == buffer.stats().concealed_samples == 0


def test_a_reordered_packet_that_arrives_before_its_slot_is_played_in_order() -> None:
    buffer = AudioJitterBuffer(min_delay=0.06)
    # packet 10 comes 30 ms late, after 11 and 12
    packets = generate(60, delay=lambda i: 0.04 if i == 10 else 0.01)
    assert [p.index for p in sorted(packets, key=lambda p: p.arrival)][9:13] == [9, 11, 10, 12]
    decisions = drive(buffer, packets, 1.0)
    assert_continuous(decisions)
    assert in_order(played(decisions)) and 10 in played(decisions)
    assert buffer.stats().packets_lost == buffer.stats().packets_late == 0


def test_a_packet_reordered_before_the_first_play_moves_the_start_back() -> None:
    buffer = AudioJitterBuffer()
    packets = generate(50, delay=lambda i: 0.035 if i == 0 else 0.01)
    decisions = drive(buffer, packets, 0.8)
    assert_continuous(decisions)
    assert played(decisions)[:3] == [0, 1, 2]
    assert stream_part(decisions)[0].timestamp == 5_000_000


def test_duplicates_are_dropped_whether_still_buffered_or_already_played() -> None:
    buffer = AudioJitterBuffer(min_delay=0.04)
    p = generate(3)
    assert buffer.push(p[0].seq, p[0].timestamp, p[0].payload, 0.0) is PushResult.BUFFERED
    assert buffer.push(p[0].seq, p[0].timestamp, p[0].payload, 0.001) is PushResult.DUPLICATE
    assert buffer.push(p[1].seq, p[1].timestamp, p[1].payload, 0.02) is PushResult.BUFFERED
    decisions = buffer.pop(0.0) + buffer.pop(0.1)
    assert played(decisions) == [0, 1]
    assert buffer.push(p[0].seq, p[0].timestamp, p[0].payload, 0.1) is PushResult.DUPLICATE
    assert buffer.push(p[1].seq, p[1].timestamp, p[1].payload, 0.1) is PushResult.DUPLICATE
    stats = buffer.stats()
    assert (stats.packets_received, stats.packets_duplicated, stats.packets_played) == (5, 3, 2)


# -- loss, FEC and late packets ----------------------------------------------------------


@pytest.mark.parametrize("fec", [True, False])
def test_a_loss_burst_is_concealed_slot_by_slot_and_fec_recovers_its_last_packet(
    fec: bool,
) -> None:
    # 100 ms of delay: the packet after the burst is buffered when the burst's slots come;
    # loss_memory=0: no extra packet of delay after the loss, so every output stays 20 ms
    buffer = AudioJitterBuffer(min_delay=0.1, fec=fec, loss_memory=0)
    lost = {20, 21, 22}
    decisions = drive(buffer, generate(100, lost=lost), 1.4)
    assert_continuous(decisions)
    stream = stream_part(decisions)
    around = stream[stream.index(next(d for d in stream if d.seq == 1020)) :][:4]
    base = 5_000_000
    expected = [
        (Action.CONCEAL, base + 20 * FRAME, 1020, 1),
        (Action.CONCEAL, base + 21 * FRAME, 1021, 2),
        (Action.FEC, base + 22 * FRAME, 1022, 0)
        if fec
        else (Action.CONCEAL, base + 22 * FRAME, 1022, 3),
        (Action.PLAY, base + 23 * FRAME, 1023, 0),
    ]  # fmt: skip
    assert [(d.action, d.timestamp, d.seq, d.run) for d in around] == expected
    assert all(d.samples == d.output_samples == FRAME for d in around)
    if fec:
        assert index_of(around[2]) == 23  # the next packet's payload carries the FEC
    assert in_order(played(decisions), lost)
    conceals = [d for d in decisions if d.action is Action.CONCEAL]
    assert len(conceals) == (2 if fec else 3)
    stats = buffer.stats()
    assert stats.packets_lost == 3
    assert stats.fec_recovered == (1 if fec else 0)
    assert stats.concealment_events == 1
    assert (
        stats.concealed_samples == sum(d.output_samples for d in conceals) == len(conceals) * FRAME
    )
    assert [d.run_samples for d in conceals] == [FRAME * (k + 1) for k in range(len(conceals))]


def test_fec_is_not_chosen_when_the_consumer_says_the_next_packet_has_none() -> None:
    buffer = AudioJitterBuffer(min_delay=0.1)
    decisions = drive(
        buffer, generate(60, lost={10}), 0.8, options=lambda p: {"fec": p.index != 11}
    )
    kinds = Counter(d.action for d in decisions if d.seq is not None)
    assert kinds[Action.FEC] == 0 and kinds[Action.CONCEAL] == 1


def test_a_loss_at_one_packet_of_delay_is_waited_for_then_recovered_by_fec() -> None:
    buffer = AudioJitterBuffer()
    assert buffer.target_delay == pytest.approx(0.02)
    # the packet after the lost one is 3 ms late: not there yet when the lost one is due
    packets = generate(250, lost={50}, delay=lambda i: 0.033 if i == 51 else 0.03)
    decisions = drive(buffer, packets, 4.0)
    assert_continuous(decisions)
    stream = stream_part(decisions)
    i = next(k for k, d in enumerate(stream) if d.action is not Action.PLAY and k > 5)
    wait, fec, after = stream[i : i + 3]
    assert (wait.action, wait.inserted, wait.run) == (Action.CONCEAL, True, 1)
    assert (fec.action, fec.seq, index_of(fec)) == (Action.FEC, 1050, 51)
    assert (after.action, index_of(after)) == (Action.PLAY, 51)
    # a loss was seen: one more packet of delay, so that the next packet's FEC is there;
    # waiting for the lost packet gave it
    stats = buffer.stats()
    assert 0.04 <= stats.target_delay <= 0.04 + 0.003  # and the late packet's 3 ms
    assert stats.current_delay == pytest.approx(0.04, abs=0.0026)
    assert stats.packets_lost == 1 and stats.concealed_samples == FRAME
    assert in_order(played(decisions), {50})


def test_the_loss_aware_delay_lets_the_next_isolated_loss_use_fec_without_waiting() -> None:
    buffer = AudioJitterBuffer()
    late_next = {51, 201}
    packets = generate(300, lost={50, 200}, delay=lambda i: 0.033 if i in late_next else 0.03)
    stream = stream_part(drive(buffer, packets, 5.5))
    assert_continuous(stream)
    assert [d.seq for d in stream if d.action is Action.FEC] == [1050, 1200]
    assert [d.seq for d in stream if d.action is Action.CONCEAL] == [None]  # the first wait


def test_no_extra_delay_for_losses_when_the_packets_carry_no_fec() -> None:
    for buffer, options in [
        (AudioJitterBuffer(fec=False), None),
        (AudioJitterBuffer(), lambda p: {"fec": False}),
    ]:
        packets = generate(200, lost={50}, delay=lambda i: 0.033 if i == 51 else 0.03)
        decisions = drive(buffer, packets, 3.0, options=options)
        assert Counter(d.action for d in decisions if d.seq is not None)[Action.FEC] == 0
        assert buffer.stats().target_delay == pytest.approx(0.02, abs=0.003)
        assert buffer.stats().packets_lost == 1


def test_the_loss_aware_delay_is_given_back_after_calm() -> None:
    buffer = AudioJitterBuffer(loss_memory=5.0)
    decisions = drive(buffer, generate(700, lost={50}, delay=0.0351), 12.0)
    assert_continuous(decisions)
    assert buffer.stats().target_delay == pytest.approx(0.02, abs=1e-6)
    assert buffer.stats().current_delay == pytest.approx(0.02, abs=0.006)


def test_a_packet_arriving_after_its_slot_was_decided_is_dropped_as_late() -> None:
    buffer = AudioJitterBuffer(max_delay=0.1)
    # packet 20 comes 300 ms late: more than the buffer waits for (max_delay)
    packets = generate(100, delay=lambda i: 0.33 if i == 20 else 0.03)
    decisions = drive(buffer, packets, 1.5)
    assert_continuous(decisions)
    assert 20 not in played(decisions) and in_order(played(decisions), {20})
    stats = buffer.stats()
    assert stats.packets_late == stats.packets_lost == stats.packets_discarded == 1


# -- delay adaptation --------------------------------------------------------------------


def _stall(i: int) -> float:
    """30 ms, but at 2 s the network stalls 150 ms and then delivers the held packets."""
    sent = i * PERIOD
    return 0.03 + (2.15 - sent if 2.0 <= sent < 2.15 else 0.0)


def test_a_delay_spike_is_waited_out_then_the_target_shrinks_back_after_calm() -> None:
    buffer = AudioJitterBuffer()
    targets: list[tuple[float, float, float]] = []
    decisions = drive(
        buffer,
        generate(3100, delay=_stall),
        60.0,
        on_pop=lambda now, _: targets.append((now, buffer.target_delay, buffer.current_delay)),
    )
    assert_continuous(decisions)
    assert in_order(played(decisions)) and len(played(decisions)) > 2900  # nothing lost
    stats = buffer.stats()
    assert stats.packets_lost == stats.packets_late == 0
    assert 0.15 <= max(t for _, t, _ in targets) <= 0.2
    # the stall was concealed by waiting (inserted decisions), never by skipping a slot
    conceals = [d for d in decisions if d.action is Action.CONCEAL]
    assert conceals and all(d.inserted for d in conceals)
    assert 0.12 * RATE <= sum(d.output_samples for d in conceals) <= 0.17 * RATE
    # calm for a while: the target and the delay come back to one packet
    calm = [(t, c) for now, t, c in targets if now > 40]
    assert max(t for t, _ in calm) < 0.021
    assert max(c for _, c in calm) < 0.021 + 0.005
    # ... smoothly: by time scaling, at most a quarter of a packet at a time
    scaled = [d for d in decisions if d.action is Action.PLAY and d.output_samples != d.samples]
    assert scaled and all(abs(d.output_samples - d.samples) <= FRAME // 4 for d in scaled)
    removed = sum(d.samples - d.output_samples for d in scaled if d.output_samples < d.samples)
    assert stats.removed_samples_for_acceleration == removed >= 0.1 * RATE


def test_random_jitter_sets_the_target_to_one_packet_plus_its_spread() -> None:
    rng = random.Random(7)
    buffer = AudioJitterBuffer()
    delays = [0.05 + rng.uniform(0, 0.03) for _ in range(1600)]
    decisions = drive(buffer, generate(1600, delay=delays.__getitem__), 30.0)
    assert_continuous(decisions)
    assert buffer.stats().target_delay == pytest.approx(0.02 + 0.03, abs=0.004)
    assert all(d.action is Action.PLAY for d in decisions if d.due > 5)
    assert buffer.stats().packets_late == 0


@pytest.mark.parametrize("drift", [-0.005, 0.005, 0.001])
def test_clock_drift_keeps_the_delay_bounded_without_underruns(drift: float) -> None:
    """The sender's clock runs ``drift`` fast (+) or slow (-), with 10 ms of jitter: ten
    minutes stay bounded, with no concealment."""
    rng = random.Random(3)
    buffer = AudioJitterBuffer()
    count = int(10 * 60 / PERIOD)
    sender_period = PERIOD / (1 + drift)
    jitter = [0.03 + rng.uniform(0, 0.01) for _ in range(count)]
    delays: list[float] = []
    sizes: list[int] = []

    def watch(now: float, _: list[Decision]) -> None:
        if now > 5:
            delays.append(buffer.current_delay)
            sizes.append(len(buffer))

    decisions = drive(
        buffer,
        generate(count, period=sender_period, delay=jitter.__getitem__),
        count * sender_period - 0.2,
        pop_period=0.02,
        on_pop=watch,
    )
    assert_continuous(decisions)
    stats = buffer.stats()
    assert stats.packets_lost == stats.packets_late == stats.packets_overflowed == 0
    assert all(d.action is Action.PLAY for d in decisions if d.due > 1)
    # one packet, the 10 ms of jitter, and (slow sender) the drift over the 2 s window
    assert 0.02 <= min(delays) and max(delays) <= 0.045
    assert max(sizes) <= 3
    # the sender's extra (or missing) audio was removed (or inserted) by time scaling
    change = stats.inserted_samples_for_deceleration - stats.removed_samples_for_acceleration
    assert change == pytest.approx(-drift * count * FRAME, abs=3 * FRAME)


def test_a_lossy_jittery_link_keeps_97_percent_of_the_audio_and_no_long_gap() -> None:
    """100 ms delay with 20 ms jitter (reordering included) and 5 % random loss."""
    rng = random.Random(2024)
    count = 3100  # a minute
    delays = [0.1 + rng.uniform(-0.02, 0.02) for _ in range(count)]
    lost = {i for i in range(count) if rng.random() < 0.05}
    buffer = AudioJitterBuffer()
    decisions = drive(buffer, generate(count, delay=delays.__getitem__, lost=lost), 60.0)
    assert_continuous(decisions)
    steady = [d for d in decisions if d.due >= 10.0]
    good = sum(d.output_samples for d in steady if d.action in (Action.PLAY, Action.FEC))
    assert good / sum(d.output_samples for d in steady) >= 0.97
    covered = sum(d.samples for d in steady if d.action in (Action.PLAY, Action.FEC))
    assert covered / sum(d.samples for d in steady) >= 0.97
    # no run of concealment or silence over 100 ms
    run = longest = 0
    for d in steady:
        run = run + d.output_samples if d.action in (Action.CONCEAL, Action.SILENCE) else 0
        longest = max(longest, run)
    assert longest <= 0.1 * RATE
    last = max(played(decisions))
    lost_so_far = len([i for i in lost if i < last])
    stats = buffer.stats()
    assert stats.packets_lost == lost_so_far
    assert stats.fec_recovered >= 0.85 * lost_so_far
    assert stats.packets_late == 0
    assert 0.06 <= stats.target_delay <= 0.085  # two packets and the 40 ms spread


# -- DTX, pauses, outages ----------------------------------------------------------------


@pytest.mark.parametrize("flagged", [False, True])
def test_a_dtx_gap_is_silence_not_loss_and_the_next_talkspurt_starts_at_the_target(
    flagged: bool,
) -> None:
    """Packets 0..49 speech, 50 a DTX frame (2 bytes, or flagged silent), the next one
    400 ms later with the next sequence number."""
    buffer = AudioJitterBuffer()
    speech = generate(51, delay=0.0351, sizes=lambda i: 2 if i == 50 and not flagged else 40)
    resumed = generate(80, delay=0.0351, seq0=1051, ts0=5_000_000 + 51 * FRAME + 19200, start=1.42)
    decisions = drive(
        buffer,
        [*speech, *resumed],
        2.5,
        options=lambda p: {"silent": True} if flagged and p.seq == 1050 else {},
    )
    assert_continuous(decisions)
    assert {d.action for d in decisions} == {Action.PLAY, Action.SILENCE}
    stats = buffer.stats()
    assert stats.packets_lost == stats.concealed_samples == 0
    gap = [d for d in decisions if d.action is Action.SILENCE and d.timestamp > 5_000_000]
    assert sum(d.samples for d in gap) == 19200  # the gap's timestamps
    first = next(d for d in decisions if d.seq == 1051)
    assert first.due - resumed[0].arrival == pytest.approx(0.02, abs=0.0026)
    assert played(decisions)[:51] == list(range(51))
    assert in_order(played(decisions)[51:])


def test_a_paused_sender_without_dtx_is_concealed_briefly_then_silent() -> None:
    buffer = AudioJitterBuffer()
    before = generate(50, delay=0.0351)
    after = generate(80, delay=0.0351, seq0=1050, ts0=5_000_000 + 50 * FRAME + 3 * RATE, start=4.0)
    decisions = drive(buffer, [*before, *after], 5.0)
    assert_continuous(decisions)
    stats = buffer.stats()
    assert stats.packets_lost == 0
    assert stats.concealed_samples == 0.2 * RATE  # then the stream counts as quiet
    first = next(d for d in decisions if d.seq == 1050)
    assert first.due - after[0].arrival == pytest.approx(0.02, abs=0.0026)
    assert played(decisions)[:50] == list(range(50)) and in_order(played(decisions)[50:])


def test_a_network_outage_is_waited_for_up_to_max_delay_then_the_delay_returns() -> None:
    buffer = AudioJitterBuffer()
    lost = set(range(100, 250))  # three seconds of packets lost
    decisions = drive(buffer, generate(500, lost=lost, delay=0.0351), 8.0)
    assert_continuous(decisions)
    stats = buffer.stats()
    assert stats.packets_lost == 150
    assert stats.current_delay == pytest.approx(stats.target_delay, abs=0.006)
    assert in_order(played(decisions), lost)
    outage = [d for d in decisions if 2 < d.due < 5.03]
    waited = sum(d.output_samples for d in outage if d.inserted)
    assert 0.45 * RATE <= waited <= 0.5 * RATE
    # the lost slots that come after the waiting are skipped, not concealed again
    slots = [d for d in decisions if d.action is Action.CONCEAL and d.seq is not None]
    assert slots and sum(d.output_samples for d in slots) <= 2 * FRAME


# -- wrap-around, restarts, durations ----------------------------------------------------


def test_sequence_and_timestamp_wrap_around() -> None:
    buffer = AudioJitterBuffer()
    packets = generate(200, seq0=65500, ts0=(1 << 32) - 20 * FRAME, lost={50})
    decisions = drive(buffer, packets, 2.2)
    assert_continuous(decisions)
    assert in_order(played(decisions), {50}) and len(played(decisions)) > 100
    seqs = [d.seq for d in decisions if d.seq is not None]
    assert seqs == list(range(65500, 65500 + len(seqs)))
    stream = stream_part(decisions)
    assert stream[0].timestamp == (1 << 32) - 20 * FRAME
    assert stream[-1].end_timestamp > 1 << 32
    assert buffer.stats().packets_lost == 1 and buffer.stats().stream_resets == 0


def test_a_sender_restart_starts_a_new_stream_after_one_confirming_packet() -> None:
    buffer = AudioJitterBuffer()
    old = generate(50, delay=0.0351)
    new = generate(80, delay=0.0351, seq0=40000, ts0=123, start=1.0)
    results: list[PushResult] = []
    decisions: list[Decision] = []
    ordered = sorted([*old, *new], key=lambda p: p.arrival)
    i = 0
    for n in range(230):
        now = n * 0.01
        while i < len(ordered) and ordered[i].arrival <= now:
            p = ordered[i]
            results.append(buffer.push(p.seq, p.timestamp, p.payload, p.arrival))
            i += 1
        decisions += buffer.pop(now)
    assert set(results[:50]) == {PushResult.BUFFERED}
    assert results[50:53] == [PushResult.HELD, PushResult.RESTARTED, PushResult.BUFFERED]
    assert_continuous(decisions)
    starts = [d for d in decisions if d.new_stream]
    assert [(d.timestamp, d.seq) for d in starts[1:]] == [(123, 40000)]
    assert played(decisions)[:50] == list(range(50)) and in_order(played(decisions)[50:])
    stats = buffer.stats()
    assert stats.stream_resets == 1 and stats.packets_lost == stats.concealed_samples == 0


def test_a_single_stray_jump_is_discarded_and_the_stream_goes_on() -> None:
    buffer = AudioJitterBuffer()
    decisions: list[Decision] = []
    for p in generate(60, delay=0.0351):
        buffer.push(p.seq, p.timestamp, p.payload, p.arrival)
        if p.index == 30:
            assert buffer.push(9, 77, b"stray", p.arrival) is PushResult.HELD
        decisions += buffer.pop(p.arrival)
    assert in_order(played(decisions)) and len(played(decisions)) > 55
    stats = buffer.stats()
    assert stats.stream_resets == 0 and stats.packets_discarded == 1


def test_a_timestamp_jump_with_continuing_sequence_numbers_is_a_restart() -> None:
    buffer = AudioJitterBuffer()
    old = generate(50, delay=0.0351)
    new = generate(80, delay=0.0351, seq0=1050, ts0=77, start=1.0)  # the clock restarted
    decisions = drive(buffer, [*old, *new], 2.3)
    assert_continuous(decisions)
    assert [d.timestamp for d in decisions if d.new_stream][1:] == [77]
    assert buffer.stats().stream_resets == 1


def test_reset_discards_the_buffered_packets_and_starts_over() -> None:
    buffer = AudioJitterBuffer(min_delay=0.1)
    decisions = drive(buffer, generate(20, delay=0.0351), 0.4)
    pending = len(buffer)
    first = len(played(decisions))
    assert pending > 0 and first > 10
    buffer.reset()
    later = generate(80, seq0=7, ts0=9, start=0.41, delay=0.0351)
    decisions += drive(buffer, later, 1.5, start=0.41)
    assert_continuous(decisions)
    starts = [d for d in decisions if d.new_stream]
    assert [(d.timestamp, d.seq) for d in starts] == [(5_000_000, 1000), (9, 7)]
    assert played(decisions)[:first] == list(range(first))
    assert in_order(played(decisions)[first:]) and len(played(decisions)) > first + 40
    stats = buffer.stats()
    assert stats.stream_resets == 1 and stats.packets_discarded == pending


@pytest.mark.parametrize("ms", [10, 40, 60])
def test_the_packet_duration_is_learned_from_the_timestamps(ms: int) -> None:
    step = RATE * ms // 1000
    buffer = AudioJitterBuffer()
    count = 100
    packets = generate(count, period=ms / 1000, step=step, lost={30}, delay=0.0351)
    decisions = drive(buffer, packets, count * ms / 1000 * 0.8)
    assert_continuous(decisions)
    slots = [d for d in decisions if d.seq is not None and d.seq > 1001]
    assert len(slots) > 60 and all(d.samples == step for d in slots)
    assert [d.action for d in slots if d.seq == 1030] == [Action.FEC]
    # a packet, and one more after the loss
    assert buffer.stats().target_delay == pytest.approx(2 * ms / 1000, abs=1e-6)


def test_a_duration_told_by_the_consumer_is_used_at_once() -> None:
    buffer = AudioJitterBuffer()
    packets = generate(40, period=0.04, step=1920, delay=0.0351)
    decisions = drive(buffer, packets, 1.2, options=lambda p: {"samples": 1920})  # type: ignore[dict-item]
    assert_continuous(decisions)
    assert {d.samples for d in decisions if d.action is Action.PLAY} == {1920}
    assert {d.action for d in stream_part(decisions)} == {Action.PLAY}


# -- quiet packets, overflow, stats ------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_packets_are_dropped_whole_to_shrink_the_delay(quiet: bool) -> None:
    """A loss at 1.2 s adds a packet of delay for 1 s; it is given back at about 2.25 s,
    when packets 100..149 are quiet (2 bytes) or not."""
    buffer = AudioJitterBuffer(loss_memory=1.0)
    sizes = (lambda i: 2 if 100 <= i < 150 else 40) if quiet else (lambda i: 40)
    packets = generate(300, lost={60}, delay=0.0351, sizes=sizes)
    decisions = drive(buffer, packets, 4.0)
    assert_continuous(decisions)
    shrunk = [d for d in decisions if d.action is Action.PLAY and d.output_samples < d.samples]
    if quiet:
        assert [(d.samples, d.output_samples) for d in shrunk] == [(FRAME, 0)]
        assert 100 <= index_of(shrunk[0]) < 150
        assert buffer.stats().current_delay == pytest.approx(0.02, abs=0.0026)
    else:  # a quarter of a packet at a time, to within a quarter of a packet
        assert [(d.samples, d.output_samples) for d in shrunk] == [(FRAME, FRAME - 240)] * 3
        assert buffer.stats().current_delay == pytest.approx(0.02 + 0.005, abs=0.0026)
    removed = sum(d.samples - d.output_samples for d in shrunk)
    assert buffer.stats().removed_samples_for_acceleration == removed


def test_overflow_drops_the_oldest_packets() -> None:
    buffer = AudioJitterBuffer(capacity=5)
    for p in generate(20):
        assert buffer.push(p.seq, p.timestamp, p.payload, p.arrival) is PushResult.BUFFERED
    stats = buffer.stats()
    assert len(buffer) == stats.buffered_packets == 5
    assert stats.packets_overflowed == stats.packets_discarded == 15
    assert set(played(buffer.pop(0.4) + buffer.pop(0.6))) <= set(range(15, 20))


def test_packets_overflowed_while_the_consumer_stalls_are_not_counted_lost() -> None:
    buffer = AudioJitterBuffer(capacity=10)
    packets = generate(200, delay=0.0351)
    decisions = drive(buffer, [p for p in packets if p.arrival <= 1.0], 1.0)
    for p in packets:
        if 1.0 < p.arrival <= 2.0:
            buffer.push(p.seq, p.timestamp, p.payload, p.arrival)
    decisions += buffer.pop(2.0)
    decisions += drive(buffer, [p for p in packets if p.arrival > 2.0], 3.0, start=2.01)
    assert_continuous(decisions)
    stats = buffer.stats()
    assert stats.packets_overflowed > 30 and stats.packets_lost == 0
    # the slots of the dropped packets are concealed (the last one from the next's FEC)
    skipped = [d for d in decisions if d.action is not Action.PLAY and d.seq is not None]
    assert len(skipped) == stats.packets_overflowed
    assert len(played(decisions)) + stats.packets_overflowed + len(buffer) == stats.packets_received


def test_stats_add_up_over_a_lossy_run() -> None:
    rng = random.Random(5)
    count = 1100
    delays = [0.06 + rng.expovariate(1 / 0.01) for _ in range(count)]
    lost = {i for i in range(count) if rng.random() < 0.08}
    buffer = AudioJitterBuffer()
    decisions = drive(buffer, generate(count, delay=delays.__getitem__, lost=lost), 21.0)
    assert_continuous(decisions)
    stats = buffer.stats()
    by = Counter(d.action for d in decisions)
    conceals = [d for d in decisions if d.action is Action.CONCEAL]
    audio = [d for d in decisions if d.action in (Action.PLAY, Action.FEC)]
    assert stats.packets_played == by[Action.PLAY]
    assert stats.fec_recovered == by[Action.FEC]
    assert stats.concealed_samples == sum(d.output_samples for d in conceals)
    assert stats.concealment_events == sum(1 for d in conceals if d.run == 1)
    silences = [d for d in decisions if d.action is Action.SILENCE]
    assert stats.silence_samples == sum(d.output_samples for d in silences)
    assert stats.jitter_buffer_emitted_count == sum(d.output_samples for d in audio)
    grown = sum(max(0, d.output_samples - d.samples) for d in audio)
    shrunk = sum(max(0, d.samples - d.output_samples) for d in audio)
    assert (stats.inserted_samples_for_deceleration, stats.removed_samples_for_acceleration) == (
        grown,
        shrunk,
    )
    lost_slots = [d for d in decisions if d.seq is not None and d.action is not Action.PLAY]
    assert stats.packets_lost == len(lost_slots) > 0
    assert stats.packets_received == len(
        [i for i in range(count) if i not in lost and i * PERIOD + delays[i] <= 21.0]
    )
    assert stats.packets_played + stats.packets_discarded + len(buffer) == stats.packets_received
    assert 0.005 < stats.jitter < 0.02  # RFC 3550, of exponential delays (mean 10 ms)
    assert 0.02 < stats.jitter_buffer_target_delay / stats.jitter_buffer_emitted_count < 0.2
    assert 0.01 < stats.jitter_buffer_delay / stats.jitter_buffer_emitted_count < 0.2
    assert isinstance(stats, JitterBufferStats) and stats is not buffer.stats()


@pytest.mark.parametrize("seed", range(12))
def test_random_abuse_keeps_the_decisions_continuous_and_the_counts_balanced(seed: int) -> None:
    """Restarts, DTX gaps, backward timestamps, seq jumps, odd durations, loss, duplicates,
    heavy jitter, resets and an erratic consumer: nothing breaks the two time lines."""
    rng = random.Random(seed)
    buffer = AudioJitterBuffer(
        max_delay=rng.choice([0.1, 0.5]), capacity=rng.choice([None, 3]), min_delay=0.0
    )
    seq, ts, t = rng.randrange(65536), rng.randrange(1 << 32), 0.0
    events: list[tuple[float, int, int, bytes, int | None]] = []
    for _ in range(400):
        r = rng.random()
        step = rng.choice([120, 480, 960, 960, 1920, 2880])
        if r < 0.02:
            seq, ts = rng.randrange(65536), rng.randrange(1 << 32)  # a new sender
        elif r < 0.04:
            ts += rng.randrange(1, 96000)  # DTX
        elif r < 0.05:
            ts -= rng.randrange(1, 96000)
        elif r < 0.06:
            seq += rng.randrange(2, 5000)
        t += step / RATE * rng.choice([1, 0.995, 1.005])
        if rng.random() >= 0.1:
            arrival = t + rng.expovariate(50) * rng.choice([0, 1, 5])
            packet = (arrival, seq & 0xFFFF, ts & 0xFFFFFFFF, bytes(rng.choice([1, 40])))
            events.append((*packet, rng.choice([None, step])))
            if rng.random() < 0.05:
                events.append((arrival + rng.random() * 0.3, *packet[1:], None))
        seq, ts = seq + 1, ts + step
    events.sort()
    decisions: list[Decision] = []
    i, now = 0, 0.0
    while i < len(events):
        now += rng.choice([0.001, 0.01, 0.02, 0.05, 0.3])
        while i < len(events) and events[i][0] <= now:
            arrival, s, x, data, samples = events[i]
            buffer.push(s, x, data, arrival, samples=samples)
            i += 1
        if rng.random() < 0.003:
            buffer.reset()
        decisions += buffer.pop(now)
    assert_continuous(decisions)
    stats = buffer.stats()
    unplayed = stats.packets_received - stats.packets_played - stats.packets_discarded
    assert unplayed - stats.packets_duplicated - len(buffer) in (0, 1)  # one may be held


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"clock_rate": 0}, "clock_rate"),
        ({"max_delay": 0}, "max_delay"),
        ({"min_delay": 1.0}, "min_delay"),
        ({"capacity": 1}, "capacity"),
        ({"packet_duration": 0.5}, "packet_duration"),
        ({"jitter_half_life": 0}, "jitter_half_life"),
        ({"loss_memory": -1}, "loss_memory"),
        ({"max_delay": float("nan")}, "max_delay"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        AudioJitterBuffer(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "word"),
    [
        ((70000, 0, b"x", 0.0), {}, "seq"),
        ((1, -1, b"x", 0.0), {}, "timestamp"),
        ((1, 0, "x", 0.0), {}, "payload"),
        ((1, 0, b"x", float("inf")), {}, "arrival"),
        ((1, 0, b"x", 0.0), {"samples": 0}, "samples"),
    ],
)
def test_bad_packets_are_named(args: tuple[object, ...], kwargs: dict[str, int], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        AudioJitterBuffer().push(*args, **kwargs)  # type: ignore[arg-type]


def test_a_bad_pop_time_is_named() -> None:
    with pytest.raises(ValueError, match="now"):
        AudioJitterBuffer().pop(float("nan"))
