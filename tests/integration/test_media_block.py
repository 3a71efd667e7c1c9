"""The media path blocked with firewall rules, then unblocked: the session survives.

The server runs in a network namespace of its own (``signaling/netns.py``); the
block drops all UDP and the ICE/TCP port inside it, both ways (or only the UDP of
our ICE sockets), while the signal WebSocket keeps working. Ours and the official
SDK (1.2.1) are in one room; each publishes a sine (ours 440 Hz, theirs 660 Hz)
and sends a numbered reliable packet every 100 ms from before the block until
after the recovery.

Checked: during the block no audio gets through (the harness really blocks);
after the unblock ours is connected (still, or again after ``reconnecting`` /
``reconnected``), audio flows both ways again, and every reliable packet sent
either way arrives exactly once, in order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from signaling import local_server, netns
from tests.conftest import TokenFactory
from tests.helpers import EventLog, our_ice_ports, room_ice_connections, wait_until
from tests.integration.audio_utils import dominant_frequency, feed_sine, rms_dbfs

pytestmark = [pytest.mark.server, pytest.mark.interop, pytest.mark.wallclock]

log = logging.getLogger(__name__)

#: A frame counts as "audio got through" above this level (the sines are at -9 dBFS;
#: concealment after a loss fades far below it within a few hundred ms).
LOUD_DBFS = -25.0
#: After the block starts, what is still buffered may play out for this long.
DRAIN_SECONDS = 1.0
SEND_INTERVAL = 0.1
# how long the reliable packets of both directions may take to arrive after the unblock
# (past an SCTP retransmission timer at its longest: RTO.Max is 60 s in RFC 4960)
DELIVERY_TIMEOUT = 130.0


@dataclass
class AudioMonitor:
    """Times, levels and (loud ones only) samples of the frames an AudioStream delivers."""

    frames: list[tuple[float, float, np.ndarray | None]] = field(default_factory=list)

    async def run(self, stream: Any) -> None:
        async for event in stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16)
            level = rms_dbfs(samples)
            self.frames.append((time.monotonic(), level, samples if level > LOUD_DBFS else None))

    def loud(self, start: float, end: float = float("inf")) -> list[float]:
        """When loud frames arrived within [start, end)."""
        return [t for t, level, _ in self.frames if start <= t < end and level > LOUD_DBFS]

    def describe_after(self, start: float) -> str:
        """What arrived since ``start``: frame count, loud count, first loud frames' pitch."""
        after = [(t, level, s) for t, level, s in self.frames if t >= start]
        chunks = [s for _, _, s in after if s is not None][:20]
        pitch = f"{dominant_frequency(np.concatenate(chunks), 48000):.0f} Hz" if chunks else "none"
        levels = ",".join(f"{level:.0f}" for _, level, _ in after[:30])
        return f"{len(after)} frames, {len(chunks)} loud (pitch {pitch}); levels: {levels}"

    def heard_after(self, start: float, freq: float) -> bool:
        """0.2 s of loud frames since ``start`` whose dominant frequency is ``freq``.

        Any such 0.2 s among the first second of loud audio counts: the first frames
        after an outage may be the receiver's transition from concealment (a fade or a
        concealed frame), which pulls the pitch of a window that includes them.
        """
        chunks = [s for t, _, s in self.frames if t >= start and s is not None][:100]
        return any(
            abs(dominant_frequency(np.concatenate(chunks[i : i + 20]), 48000) - freq) < 10
            for i in range(0, len(chunks) - 19, 5)
        )

    def gap_after(self, start: float) -> float:
        """Seconds from ``start`` to the first loud frame after it (inf if none)."""
        times = self.loud(start)
        return times[0] - start if times else float("inf")


@dataclass
class Sender:
    """Sends b"<prefix><n>" every 100 ms until stopped; keeps what was reported sent."""

    prefix: bytes
    send: Callable[[bytes], Awaitable[None]]
    sent: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            payload = self.prefix + b"%d" % n
            n += 1
            try:
                await self.send(payload)
            except Exception as exc:  # the test asserts there are none
                self.errors.append(f"{payload!r}: {exc!r}")
            else:
                self.sent.append(payload)
            await asyncio.sleep(SEND_INTERVAL)


async def _wait(
    predicate: Callable[[], bool],
    timeout: float,
    what: Callable[[], str],
    *,
    gave_up: Callable[[], bool] = lambda: False,
) -> None:
    """Like wait_until, with a failure message made when it fails (the state then).

    Fails at once when ``gave_up()`` (say, ours is disconnected: nothing will come).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if gave_up():
            raise AssertionError(f"gave up waiting for {what()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what()}")
        await asyncio.sleep(0.02)


def _remote_track(room: official.Room, identity: str) -> official.Track | None:
    p = room.remote_participants.get(identity)
    if p is None:
        return None
    return next((pub.track for pub in p.track_publications.values() if pub.track), None)


def _server_candidate_hosts(room: rtc.Room) -> set[str]:
    """The addresses in the ICE candidates the server gave our peer connections."""
    return {
        c.host for connection in room_ice_connections(room) for c in connection.remote_candidates
    }


async def _run_block(
    server: netns.NetnsServer,
    make_token: TokenFactory,
    block_seconds: float,
    *,
    only_ours: bool = False,
) -> None:
    """Block (everyone's, or only our) media path for ``block_seconds``; check the recovery."""
    ours, theirs = rtc.Room(), official.Room()
    our_log = EventLog(
        ours, ["reconnecting", "reconnected", "disconnected", "connection_state_changed"]
    )
    our_heard, their_heard = AudioMonitor(), AudioMonitor()
    tasks: list[asyncio.Task[Any]] = []
    monitors: list[asyncio.Task[Any]] = []
    our_events: list[tuple[float, str]] = []
    their_events: list[tuple[float, str]] = []
    for name in (
        "reconnecting",
        "reconnected",
        "disconnected",
        "track_subscribed",
        "track_unsubscribed",
        "participant_connected",
        "participant_disconnected",
        "local_track_republished",
    ):
        ours.on(name, lambda *_, n=name: our_events.append((time.monotonic(), n)))
        theirs.on(name, lambda *_, n=name: their_events.append((time.monotonic(), n)))

    # every (re)subscription is followed: a full reconnect brings new track objects
    def our_subscribed(track: rtc.Track, *_: object) -> None:
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        monitors.append(asyncio.ensure_future(our_heard.run(stream)))

    def their_subscribed(track: official.Track, *_: object) -> None:
        stream = official.AudioStream(track, sample_rate=48000, num_channels=1)
        monitors.append(asyncio.ensure_future(their_heard.run(stream)))

    ours.on("track_subscribed", our_subscribed)
    theirs.on("track_subscribed", their_subscribed)
    our_data: list[bytes] = []
    ours.on("data_received", lambda p: our_data.append(p.data) if p.topic == "seq" else None)
    their_data: list[bytes] = []
    theirs.on("data_received", lambda p: their_data.append(p.data) if p.topic == "seq" else None)

    our_source = rtc.AudioSource(48000, 1)
    their_source = official.AudioSource(48000, 1)
    senders: list[Sender] = []
    try:
        await theirs.connect(server.url, make_token("official"))
        await ours.connect(server.url, make_token("ours"))
        assert _server_candidate_hosts(ours) == {server.host}, (
            f"the server's ICE candidates should all be its namespace address {server.host}"
        )
        tasks.append(asyncio.ensure_future(feed_sine(our_source, rtc.AudioFrame, 440.0)))
        tasks.append(asyncio.ensure_future(feed_sine(their_source, official.AudioFrame, 660.0)))
        await ours.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("ours-sine", our_source)
        )
        await theirs.local_participant.publish_track(
            official.LocalAudioTrack.create_audio_track("their-sine", their_source)
        )
        start = time.monotonic()
        await wait_until(
            lambda: their_heard.heard_after(start, 440) and our_heard.heard_after(start, 660),
            timeout=30,
            what="audio both ways before the block",
        )

        async def our_send(data: bytes) -> None:
            await ours.local_participant.publish_data(data, reliable=True, topic="seq")

        async def their_send(data: bytes) -> None:
            await theirs.local_participant.publish_data(data, reliable=True, topic="seq")

        senders = [Sender(b"o", our_send), Sender(b"t", their_send)]
        tasks.extend(asyncio.ensure_future(s.run()) for s in senders)
        await asyncio.sleep(2.0)

        blocked_at = time.monotonic()
        server.block_media(our_ice_ports(ours) if only_ours else None)
        log.info("media blocked for %.0f s (only ours: %s)", block_seconds, only_ours)
        await asyncio.sleep(block_seconds)
        dropped = server.dropped_packets()
        server.unblock_media()
        unblocked_at = time.monotonic()

        def timeline(events: list[tuple[float, str]]) -> list[tuple[float, str]]:
            return [(round(t - blocked_at, 2), n) for t, n in events]

        log.info(
            "media unblocked; %d packets dropped; since the block, ours: %s; official: %s",
            dropped,
            timeline(our_events),
            timeline(their_events),
        )

        # the harness really blocked the media path
        assert dropped > 0, "the fault rules dropped nothing"
        assert not their_heard.loud(blocked_at + DRAIN_SECONDS, unblocked_at), (
            "our audio reached the official SDK while the media path was blocked"
        )
        assert not our_heard.loud(blocked_at + DRAIN_SECONDS, unblocked_at), (
            "the official SDK's audio reached us while the media path was blocked"
        )

        # the session comes back: audio both ways again
        def events() -> str:
            return f"events since the block, ours: {timeline(our_events)}; official: " + str(
                timeline(their_events)
            )

        def audio_state() -> str:
            return (
                f"official hears us: {their_heard.heard_after(unblocked_at, 440)}, "
                f"we hear it: {our_heard.heard_after(unblocked_at, 660)} "
                f"({our_heard.describe_after(unblocked_at)}); "
                f"data received by official {len(their_data)}/{len(senders[0].sent)}, "
                f"by ours {len(our_data)}/{len(senders[1].sent)}"
            )

        await _wait(
            lambda: (
                their_heard.heard_after(unblocked_at, 440)
                and our_heard.heard_after(unblocked_at, 660)
            ),
            60,
            lambda: f"audio both ways after the unblock ({audio_state()}; {events()})",
            gave_up=lambda: ours.connection_state == rtc.ConnectionState.CONN_DISCONNECTED,
        )
        recovered_at = time.monotonic()
        log.info(
            "events since the block, ours: %s; official: %s",
            timeline(our_events),
            timeline(their_events),
        )
        log.info(
            "audio back both ways %.2f s after the unblock (official hears us from %.2f s, "
            "we hear it from %.2f s)",
            recovered_at - unblocked_at,
            their_heard.gap_after(unblocked_at),
            our_heard.gap_after(unblocked_at),
        )
        await asyncio.sleep(1.0)
        for s in senders:
            s.stop.set()
        await asyncio.gather(*tasks[-2:])

        assert ours.connection_state == rtc.ConnectionState.CONN_CONNECTED
        names = our_log.names()
        assert "disconnected" not in names, f"ours disconnected: {our_log.items}"
        if "reconnecting" in names:
            assert names.index("reconnected") > names.index("reconnecting"), names
        assert not senders[0].errors, f"publish_data raised: {senders[0].errors[:5]}"
        assert not senders[1].errors, f"official publish_data raised: {senders[1].errors[:5]}"
        sent_during = int(block_seconds / SEND_INTERVAL) // 2
        assert len(senders[0].sent) > sent_during and len(senders[1].sent) > sent_during

        # every reliable packet arrives exactly once, in order, both ways. Not a race:
        # what the server forwarded into the block is resent by its SCTP (pion) on its
        # retransmission timer, which doubled through the block, so the first resend
        # after the unblock can be tens of seconds away on a slow machine.
        await wait_until(
            lambda: len(their_data) >= len(senders[0].sent),
            timeout=DELIVERY_TIMEOUT,
            what=f"the official SDK receives our {len(senders[0].sent)} packets "
            f"(got {len(their_data)})",
        )
        await wait_until(
            lambda: len(our_data) >= len(senders[1].sent),
            timeout=DELIVERY_TIMEOUT,
            what=f"ours receives the official SDK's {len(senders[1].sent)} packets "
            f"(got {len(our_data)})",
        )
        await asyncio.sleep(0.5)  # no late duplicates
        assert their_data == senders[0].sent
        assert our_data == senders[1].sent
    finally:
        for s in senders:
            s.stop.set()
        for task in tasks + monitors:
            task.cancel()
        for task in tasks + monitors:
            try:
                await task
            except BaseException:  # cancelled, or failed already
                pass
        await ours.disconnect()
        await theirs.disconnect()
        await our_source.aclose()
        await their_source.aclose()


def _our_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [
        line.split()[0]
        for line in out.stdout.splitlines()
        if line.startswith(f"lkpy-{os.getpid()}-")
    ]


def test_the_harness_blocks_media_but_not_the_signal_port(
    netns_server: netns.NetnsServer,
) -> None:
    ns = netns_server.namespace
    assert ns.name in _our_namespaces()
    assert ipaddress.ip_address(netns_server.host).is_private
    netns_server.block_media()
    # UDP towards the server is dropped (and counted) ...
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            s.sendto(b"x", (netns_server.host, netns_server.udp_port))
    deadline = time.monotonic() + 10
    while netns_server.dropped_packets() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert netns_server.dropped_packets() >= 3
    # ... so is the ICE/TCP port, while the signal port answers
    with pytest.raises(OSError):
        socket.create_connection((netns_server.host, netns_server.tcp_port), timeout=1).close()
    with urllib.request.urlopen(netns_server.http_url, timeout=10) as res:
        assert res.status == 200
    # scoped to some client ports: only those packets are dropped
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.bind((ns.host_ip, 0))
        b.bind((ns.host_ip, 0))
        netns_server.block_media([a.getsockname()[1]])
        for _ in range(5):
            a.sendto(b"x", (netns_server.host, netns_server.udp_port))
            b.sendto(b"x", (netns_server.host, netns_server.udp_port))
        time.sleep(0.5)
        assert netns_server.dropped_packets() == 5
    with pytest.raises(ValueError):
        netns_server.block_media([])
    # a lossy link drops about that share of the packets
    netns_server.set_media_loss(50)
    assert netns_server.media_loss == 50
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(400):
            s.sendto(b"x", (netns_server.host, netns_server.udp_port))
    time.sleep(0.5)
    assert 120 <= netns_server.dropped_packets() <= 280  # 200 expected; sd 10
    netns_server.unblock_media()
    assert netns_server.media_loss is None and netns_server.dropped_packets() == 0
    assert netns.FAULT_TABLE not in ns.exec(["nft", "list", "tables"])
    socket.create_connection((netns_server.host, netns_server.tcp_port), timeout=10).close()
    with pytest.raises(ValueError):
        netns_server.set_media_loss(101)


def test_the_harness_cleans_up_when_the_server_does_not_start(
    netns_server: netns.NetnsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """(Uses the fixture only for its skip rules.) A failed start leaves nothing behind."""
    before = _our_namespaces()
    monkeypatch.setattr(local_server, "install", lambda: "/bin/false")
    with pytest.raises(RuntimeError, match="exited with code 1"):
        netns.start_server(tmp_path / "failed.log")
    assert _our_namespaces() == before
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert netns_server.namespace.host_if in links
    netns_server.stop()
    assert netns_server.namespace.name not in _our_namespaces()
    netns_server.stop()  # idempotent


@pytest.mark.timeout(420)
@pytest.mark.parametrize("only_ours", [False, True], ids=["everyone", "only-ours"])
async def test_media_blocked_5s_recovers_with_nothing_lost(
    netns_server: netns.NetnsServer, make_token: TokenFactory, only_ours: bool
) -> None:
    """Within the server's patience (it reacts to dead media after ~15 s): plain recovery.

    Measured: 5, 10 and 14 s blocks pass on main; audio is back 0.3 s after the unblock.
    """
    await _run_block(netns_server, make_token, 5.0, only_ours=only_ours)


@pytest.mark.timeout(420)
async def test_our_media_blocked_20s_resumes_with_nothing_lost(
    netns_server: netns.NetnsServer, make_token: TokenFactory
) -> None:
    """Past the server's patience: it sends us a leave (RESUME) at ~15 s, ours must resume.

    Measured: reconnecting at 15.7 s, reconnected 0.1 s after the unblock, audio back
    both ways 0.3 s after it. Without the publisher's ICE restart on resume, aioice's
    consent expires ~30 s after the block began and our audio and data stop for good.

    Only our ICE sockets are blocked, so the official SDK stays in the room and can
    check that nothing we sent is lost (blocked too, it would rejoin, and what we
    send while it is out of the room reaches nobody).
    """
    await _run_block(netns_server, make_token, 20.0, only_ours=True)
