"""The STUN checks of one peer connection's ICE agent, per candidate pair.

aioice keeps no statistics of its connectivity and consent checks. An
:class:`IceCheckLog` is told of each one by
:func:`~.aiortc_adapter.observe_ice_checks` and keeps, per pair (our candidate, the
remote address), what W3C ``RTCIceCandidatePairStats`` reports: the requests sent,
the success responses received and their round-trip times. A round trip is timed from
the start of the transaction to its success response, so it includes the waits of
aioice's retransmissions when the first request was lost.

Pure bookkeeping: no sockets, no clock of its own.
"""

from __future__ import annotations

import dataclasses

from aioice.candidate import Candidate

__all__ = ["IceCheckLog", "PairChecks", "pair_key"]

PairKey = tuple[str, int, str, str, int]
"""Our candidate's (host, port, transport) and the remote (host, port)."""


def pair_key(local: Candidate, remote: tuple[str, int]) -> PairKey:
    """How :class:`IceCheckLog` names the pair from ``local`` to the address ``remote``."""
    return (local.host, local.port, local.transport.lower(), remote[0], remote[1])


@dataclasses.dataclass
class PairChecks:
    """The checks of one candidate pair so far."""

    requests_sent: int = 0
    """Check and consent requests started (aioice's retransmissions not counted)."""
    responses_received: int = 0
    """Success responses to them."""
    total_round_trip_time: float = 0.0
    """Sum of the round-trip times of the answered requests, in seconds."""
    current_round_trip_time: float | None = None
    """The round-trip time of the latest answered request (None before the first)."""


class IceCheckLog:
    """Per pair counts of the checks of one ICE agent (a :class:`~.aiortc_adapter.StunObserver`)."""

    def __init__(self) -> None:
        self._pairs: dict[PairKey, PairChecks] = {}

    def request_sent(self, local: Candidate, remote: tuple[str, int]) -> None:
        """A request from ``local`` to ``remote`` started."""
        self._pairs.setdefault(pair_key(local, remote), PairChecks()).requests_sent += 1

    def response_received(self, local: Candidate, remote: tuple[str, int], rtt: float) -> None:
        """A request from ``local`` to ``remote`` was answered ``rtt`` seconds after it started.

        Raises:
            ValueError: If ``rtt`` is negative.
        """
        if rtt < 0:
            raise ValueError(f"a round-trip time cannot be negative, got {rtt}")
        checks = self._pairs.setdefault(pair_key(local, remote), PairChecks())
        checks.responses_received += 1
        checks.total_round_trip_time += rtt
        checks.current_round_trip_time = rtt

    def checks(self, local: Candidate, remote: tuple[str, int]) -> PairChecks | None:
        """What was seen of the pair from ``local`` to ``remote`` (None: nothing)."""
        found = self._pairs.get(pair_key(local, remote))
        return dataclasses.replace(found) if found is not None else None
