"""The numbers of ``load-test``: read from the SDK's statistics, kept per participant, summed.

:func:`traffic` reads one participant's :meth:`rtc.Room.get_rtc_stats` (the official
``livekit.rtc.stats`` messages): RTP packets and bytes sent (``outbound_rtp``) and
received (``inbound_rtp``), packets lost, and the round-trip time of the selected ICE
candidate pair.  :class:`ParticipantStats` turns successive readings into bitrates and
keeps the one-way latencies of the probe data packets (sent and received in this one
process, so both ends read the same clock).  :func:`summarize` adds everything up.
All pure, unit-tested with hand-made statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from livekit_py import rtc

__all__ = ["ParticipantStats", "Traffic", "percentile", "summarize", "traffic"]


@dataclass(frozen=True)
class Traffic:
    """Cumulative RTP counters of one participant, and its current ICE round trip."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_lost: int = 0
    rtt: float | None = None  # seconds


def _rtt(stats: Iterable[rtc.stats.RtcStats]) -> float | None:
    listed = list(stats)
    pairs = {
        s.candidate_pair.rtc.id: s.candidate_pair.candidate_pair
        for s in listed
        if s.WhichOneof("stats") == "candidate_pair"
    }
    for s in listed:
        if s.WhichOneof("stats") != "transport":
            continue
        pair = pairs.get(s.transport.transport.selected_candidate_pair_id)
        if pair is not None and pair.HasField("current_round_trip_time"):
            return float(pair.current_round_trip_time)
    for pair in pairs.values():  # no transport entry names one: any nominated pair
        if pair.nominated and pair.HasField("current_round_trip_time"):
            return float(pair.current_round_trip_time)
    return None


def traffic(
    publisher: Sequence[rtc.stats.RtcStats], subscriber: Sequence[rtc.stats.RtcStats]
) -> Traffic:
    """Sum the RTP streams of both peer connections' statistics."""
    sent_packets = sent_bytes = received_packets = received_bytes = lost = 0
    for s in (*publisher, *subscriber):
        which = s.WhichOneof("stats")
        if which == "outbound_rtp":
            sent_packets += s.outbound_rtp.sent.packets_sent
            sent_bytes += s.outbound_rtp.sent.bytes_sent
        elif which == "inbound_rtp":
            received_packets += s.inbound_rtp.received.packets_received
            received_bytes += s.inbound_rtp.inbound.bytes_received
            lost += max(0, s.inbound_rtp.received.packets_lost)
    rtt = _rtt(subscriber)
    if rtt is None:
        rtt = _rtt(publisher)
    return Traffic(sent_packets, sent_bytes, received_packets, received_bytes, lost, rtt)


@dataclass
class ParticipantStats:
    """What one simulated participant did so far."""

    identity: str
    state: str = "waiting"  # waiting, joining, joined, failed, left
    join_time: float | None = None  # seconds from connect() to connected
    error: str = ""
    published: int = 0
    subscribed: int = 0
    traffic: Traffic = field(default_factory=Traffic)
    tx_bps: float = 0.0
    rx_bps: float = 0.0
    latencies: list[float] = field(default_factory=list)
    probes_sent: int = 0
    _last: tuple[float, Traffic] | None = None
    _first: tuple[float, Traffic] | None = None

    def update(self, now: float, reading: Traffic) -> None:
        """A new reading at time ``now`` (seconds): bitrates from the previous one."""
        if self._last is not None:
            then, before = self._last
            span = now - then
            if span > 0:
                self.tx_bps = max(0, reading.bytes_sent - before.bytes_sent) * 8 / span
                self.rx_bps = max(0, reading.bytes_received - before.bytes_received) * 8 / span
        if self._first is None:
            self._first = (now, reading)
        self._last = (now, reading)
        self.traffic = reading

    def average_bps(self) -> tuple[float, float]:
        """Mean (sent, received) bitrate between the first and the last reading."""
        if self._first is None or self._last is None or self._last[0] <= self._first[0]:
            return (0.0, 0.0)
        (t0, a), (t1, b) = self._first, self._last
        span = t1 - t0
        return (
            (b.bytes_sent - a.bytes_sent) * 8 / span,
            (b.bytes_received - a.bytes_received) * 8 / span,
        )

    @property
    def latency(self) -> float | None:
        """The median one-way latency of the probes received (seconds)."""
        return percentile(self.latencies, 50) if self.latencies else None


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (nearest rank) of non-empty ``values``.

    Raises:
        ValueError: If ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarize(
    participants: Sequence[ParticipantStats], *, room: str, duration: float
) -> dict[str, object]:
    """The summary of a run (what ``--json`` prints)."""
    joined = [p for p in participants if p.join_time is not None]
    joins = [p.join_time for p in joined if p.join_time is not None]
    sent = sum(p.traffic.packets_sent for p in participants)
    received = sum(p.traffic.packets_received for p in participants)
    lost = sum(p.traffic.packets_lost for p in participants)
    latencies = [x for p in participants for x in p.latencies]
    rtts = [p.traffic.rtt for p in participants if p.traffic.rtt is not None]
    averages = [p.average_bps() for p in joined]
    summary: dict[str, object] = {
        "room": room,
        "participants": len(participants),
        "joined": len(joined),
        "failed": sum(1 for p in participants if p.state == "failed"),
        "duration_s": round(duration, 1),
        "join_time_ms": {
            "mean": _ms(sum(joins) / len(joins)) if joins else None,
            "max": _ms(max(joins)) if joins else None,
        },
        "tracks_published": sum(p.published for p in participants),
        "tracks_subscribed": sum(p.subscribed for p in participants),
        "packets_sent": sent,
        "packets_received": received,
        "packets_lost": lost,
        "loss_percent": round(100 * lost / (received + lost), 2) if received + lost else 0.0,
        "send_kbps_per_participant": round(sum(a[0] for a in averages) / len(averages) / 1000, 1)
        if averages
        else 0.0,
        "receive_kbps_per_participant": round(sum(a[1] for a in averages) / len(averages) / 1000, 1)
        if averages
        else 0.0,
        "rtt_ms": {
            "mean": _ms(sum(rtts) / len(rtts)) if rtts else None,
            "max": _ms(max(rtts)) if rtts else None,
        },
        "data_latency_ms": {
            "count": len(latencies),
            "p50": _ms(percentile(latencies, 50)) if latencies else None,
            "p95": _ms(percentile(latencies, 95)) if latencies else None,
            "max": _ms(max(latencies)) if latencies else None,
        },
        "errors": [f"{p.identity}: {p.error}" for p in participants if p.error],
    }
    return summary
