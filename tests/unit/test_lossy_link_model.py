"""The lossy link's per-direction model (signaling/lossy_link.py), without devices."""

from __future__ import annotations

import random
import struct

import pytest

from signaling.lossy_link import Impairment, _Direction, _port_key


def _udp(sport: int, dport: int) -> bytes:
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    return ip + struct.pack("!HHHH", sport, dport, 8, 0)


def _direction(imp: Impairment, name: str = "up", seed: int = 7) -> _Direction:
    d = _Direction(name, random.Random(seed))
    d.set(imp)
    return d


def test_impairments_are_checked() -> None:
    assert Impairment().to_json() == {
        "delay_ms": 0.0,
        "jitter_ms": 0.0,
        "loss": 0.0,
        "burst": None,
        "reorder": False,
    }
    imp = Impairment(100, jitter_ms=5, loss=0.05, burst=3)
    assert Impairment.from_json(imp.to_json()) == imp
    for bad in (
        {"delay_ms": -1},
        {"jitter_ms": float("nan")},
        {"loss": 1.5},
        {"loss": -0.1},
        {"burst": 0.5},
        {"loss": 0.8, "burst": 2},  # needs runs of 4 on average
    ):
        with pytest.raises(ValueError):
            Impairment(**bad)  # type: ignore[arg-type]


def test_independent_loss_drops_that_share() -> None:
    d = _direction(Impairment(loss=0.05))
    lost = [d.admit(0.0, _udp(1, 2)) is None for _ in range(40000)]
    assert d.received == 40000 and d.dropped == sum(lost)
    assert 0.045 < sum(lost) / len(lost) < 0.055  # sd 0.0011
    runs = _runs(lost)
    assert 1.0 < sum(runs) / len(runs) < 1.1  # independent: runs of about 1/(1-p)


def test_burst_loss_keeps_the_share_with_longer_runs() -> None:
    d = _direction(Impairment(loss=0.05, burst=4))
    lost = [d.admit(0.0, _udp(1, 2)) is None for _ in range(100000)]
    assert 0.04 < sum(lost) / len(lost) < 0.06
    runs = _runs(lost)
    assert 3.5 < sum(runs) / len(runs) < 4.5


def test_no_loss_and_all_loss() -> None:
    assert all(_direction(Impairment()).admit(1.0, b"x") == 1.0 for _ in range(100))
    d = _direction(Impairment(loss=1.0))
    assert all(d.admit(1.0, b"x") is None for _ in range(100))


def test_delay_and_jitter_without_reordering() -> None:
    d = _direction(Impairment(100, jitter_ms=20))
    dues = [d.admit(t * 0.001, _udp(1, 2)) for t in range(2000)]
    assert all(due is not None for due in dues)
    assert dues == sorted(dues)  # never overtakes
    for t, due in enumerate(dues):
        assert due is not None and due >= t * 0.001 + 0.08 - 1e-9
    # with reordering allowed, some do overtake, each within its own bounds
    r = _direction(Impairment(100, jitter_ms=20, reorder=True))
    dues = [r.admit(t * 0.001, _udp(1, 2)) for t in range(2000)]
    assert dues != sorted(dues)
    for t, due in enumerate(dues):
        assert due is not None and t * 0.001 + 0.08 - 1e-9 <= due <= t * 0.001 + 0.12 + 1e-9


def test_counts_by_client_port_and_lateness() -> None:
    up, down = _direction(Impairment(), "up"), _direction(Impairment(), "down")
    up.admit(0.0, _udp(5000, 7882))
    down.admit(0.0, _udp(7882, 5000))
    assert up.ports == {"udp:5000": 1} and down.ports == {"udp:5000": 1}
    assert _port_key(b"\x60" + bytes(40), True) is None  # IPv6: not counted
    for lateness in (0.0001, 0.0002, 0.0002, 0.0031):
        up.sent(lateness)
    stats = up.stats(queued=0)
    assert stats["forwarded"] == 4 and stats["late_max_ms"] == pytest.approx(3.1)
    assert stats["late_p50_ms"] == pytest.approx(0.3)
    up.reset()
    assert up.stats(0)["received"] == 0 and up.ports == {}


def _runs(lost: list[bool]) -> list[int]:
    runs, n = [], 0
    for x in lost:
        if x:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs
