"""Surviving network faults made for real: a TCP proxy in front of the signal port.

Ours connects through the proxy, the official SDK (1.2.1) directly; media goes
straight to the server's UDP port, so cutting the proxy cuts only the signal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import numpy as np
import pytest
import pytest_asyncio
from livekit import rtc as official

from livekit_py import rtc
from signaling.tcp_proxy import TcpProxy
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import (
    background,
    dominant_frequency,
    feed_sine,
    subscribed_track,
)

pytestmark = [pytest.mark.server, pytest.mark.interop]

LIFECYCLE = ["connection_state_changed", "reconnecting", "reconnected", "disconnected"]


@pytest_asyncio.fixture
async def proxy(server_url: str) -> AsyncIterator[TcpProxy]:
    target = urlparse(server_url)
    assert target.hostname is not None and target.port is not None
    p = TcpProxy(target.hostname, target.port)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


class AudioCounter:
    """Collects the official side's received audio (as 48 kHz mono int16)."""

    def __init__(self, track: official.Track) -> None:
        self.stream = official.AudioStream(track, sample_rate=48000, num_channels=1)
        self.chunks: list[tuple[float, np.ndarray]] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for event in self.stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            self.chunks.append((time.monotonic(), data))

    def since(self, t: float) -> np.ndarray:
        parts = [d for when, d in self.chunks if when >= t]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.stream.aclose()


async def test_a_cut_signal_socket_resumes_and_audio_and_data_keep_flowing(
    proxy: TcpProxy, server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, [*LIFECYCLE, "data_received", "participant_disconnected"])
    their_data: list[official.DataPacket] = []
    theirs.on("data_received", their_data.append)
    their_leaves: list[str] = []
    theirs.on("participant_disconnected", lambda p: their_leaves.append(p.identity))
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("sine", source)
    counter: AudioCounter | None = None
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(proxy.url, make_token("ours"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0, seconds=120)):
            publication = await ours.local_participant.publish_track(track)
            counter = AudioCounter(await subscribed_track(theirs, "ours", timeout=20))
            await wait_until(lambda: len(counter.since(0)) > 48000 // 2, timeout=20, what="audio")

            before = len(log.items)
            assert proxy.cut() >= 1
            cut_at = time.monotonic()
            await log.wait_for("reconnecting", timeout=10)
            await log.wait_for("reconnected", timeout=30)
            resumed_in = time.monotonic() - cut_at
            print(f"signal cut -> reconnected in {resumed_in:.2f}s")
            # the official order (rust-sdks room.rs): the state change, then the event
            assert log.names()[before:] == [
                "connection_state_changed",
                "reconnecting",
                "connection_state_changed",
                "reconnected",
            ]
            states = [a[0] for n, a in log.items[before:] if n == "connection_state_changed"]
            assert states == [
                rtc.ConnectionState.CONN_RECONNECTING,
                rtc.ConnectionState.CONN_CONNECTED,
            ]
            assert "disconnected" not in log.names()
            assert ours.connection_state == rtc.ConnectionState.CONN_CONNECTED
            # the same publication object, still published
            assert ours.local_participant.track_publications[publication.sid] is publication
            assert proxy.accepted >= 2  # a second signal socket was opened

            # audio keeps reaching the official SDK, well after the server's ICE restart
            await asyncio.sleep(3.0)
            after = time.monotonic()
            await wait_until(
                lambda: len(counter.since(after)) >= 48000 * 2,
                timeout=30,
                what="2 s of audio at the official SDK after the resume",
            )
            heard = counter.since(after)
            assert abs(dominant_frequency(heard, 48000) - 440.0) < 5.0

            # data both ways
            await ours.local_participant.publish_data(b"after resume", topic="t")
            await wait_until(
                lambda: any(p.data == b"after resume" for p in their_data),
                timeout=15,
                what="official receives our packet after the resume",
            )
            await theirs.local_participant.publish_data(b"back", topic="r")
            await log.wait_for("data_received", lambda p: p.data == b"back", timeout=15)
            assert their_leaves == [] and "participant_disconnected" not in log.names()
    finally:
        if counter is not None:
            await counter.aclose()
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_a_server_that_stays_unreachable_ends_the_session_with_the_reason(
    proxy: TcpProxy, make_token: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from livekit_py.session import session as session_module

    monkeypatch.setattr(session_module, "RETRY_DELAYS", (0.0, 0.3, 0.3))
    ours = rtc.Room()
    log = EventLog(ours, LIFECYCLE)
    try:
        await ours.connect(proxy.url, make_token("ours"))
        before = len(log.items)
        proxy.refusing = True
        proxy.cut()
        (reason,) = await log.wait_for("disconnected", timeout=60)
        assert reason == rtc.DisconnectReason.SIGNAL_CLOSE
        assert proxy.refused == 3
        assert log.names()[before:] == [
            "connection_state_changed",
            "reconnecting",
            "connection_state_changed",
            "disconnected",
        ]
        assert not ours.isconnected()
    finally:
        await ours.disconnect()


async def _publish_sine(
    room: rtc.Room,
) -> tuple[rtc.AudioSource, rtc.LocalAudioTrack]:
    source = rtc.AudioSource(48000, 1)
    return source, rtc.LocalAudioTrack.create_audio_track("sine", source)


async def test_refused_connections_for_5s_then_reconnected(
    proxy: TcpProxy, server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, [*LIFECYCLE, "local_track_republished"])
    source, track = await _publish_sine(ours)
    counter: AudioCounter | None = None
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(proxy.url, make_token("ours"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0, seconds=120)):
            publication = await ours.local_participant.publish_track(track)
            counter = AudioCounter(await subscribed_track(theirs, "ours", timeout=20))
            proxy.refusing = True
            proxy.cut()
            cut_at = time.monotonic()
            await log.wait_for("reconnecting", timeout=10)
            await asyncio.sleep(5.0)
            proxy.refusing = False
            await log.wait_for("reconnected", timeout=40)
            print(
                f"refused 5 s: reconnected {time.monotonic() - cut_at:.2f}s after the cut, "
                f"{proxy.refused} refused; republished: {log.args('local_track_republished')}"
            )
            assert "disconnected" not in log.names() and proxy.refused >= 1
            assert ours.local_participant.track_publications[publication.sid] is publication
            after = time.monotonic()
            await wait_until(
                lambda: len(counter.since(after)) >= 48000,
                timeout=30,
                what="1 s of audio at the official SDK after reconnecting",
            )
    finally:
        if counter is not None:
            await counter.aclose()
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_a_server_restart_rejoins_and_republishes(
    livekit_server: object, server_url: str, make_token: TokenFactory
) -> None:
    from signaling.local_server import LocalServer

    assert isinstance(livekit_server, LocalServer)
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, [*LIFECYCLE, "local_track_republished"])
    source, track = await _publish_sine(ours)
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0, seconds=120)):
            publication = await ours.local_participant.publish_track(track)
            old_sid = publication.sid
            await subscribed_track(theirs, "ours", timeout=20)
            await asyncio.to_thread(livekit_server.restart, 2.0)
            back_at = time.monotonic()
            await log.wait_for("reconnected", timeout=60)
            took = time.monotonic() - back_at
            print(f"server restart: reconnected {took:.2f}s after it was back")
            (republished, previous) = await log.wait_for("local_track_republished", timeout=30)
            assert republished is publication and previous == old_sid
            assert publication.sid != old_sid
            assert log.args("local_track_republished") == [(publication, old_sid)]
            assert ours.local_participant.track_publications == {publication.sid: publication}
            assert track.sid == publication.sid
            assert "disconnected" not in log.names()

            # the official SDK (itself reconnected) receives the republished track
            def official_sees_it() -> bool:
                p = theirs.remote_participants.get("ours")
                return p is not None and publication.sid in p.track_publications

            await wait_until(
                official_sees_it, timeout=60, what="official sees our republished track"
            )
            remote = theirs.remote_participants["ours"].track_publications[publication.sid]
            await wait_until(
                lambda: remote.track is not None, timeout=30, what="official subscribed"
            )
            counter = AudioCounter(remote.track)
            try:
                await wait_until(
                    lambda: len(counter.since(0)) >= 48000,
                    timeout=30,
                    what="1 s of audio at the official SDK after the restart",
                )
                assert abs(dominant_frequency(counter.since(0)[4800:], 48000) - 440.0) < 5.0
            finally:
                await counter.aclose()
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT, id="signal_reconnect"),
        pytest.param(rtc.SimulateScenarioKind.SIMULATE_NODE_FAILURE, id="node_failure"),
        pytest.param(rtc.SimulateScenarioKind.SIMULATE_MIGRATION, id="migration"),
        pytest.param(
            rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT, id="leave_request_full_reconnect"
        ),
        pytest.param(
            rtc.SimulateScenarioKind.SIMULATE_DISCONNECT_SIGNAL_ON_RESUME,
            id="disconnect_signal_on_resume",
        ),
    ],
)
async def test_simulated_scenarios_end_reconnected(
    scenario: int, server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, [*LIFECYCLE, "local_track_republished", "data_received"])
    their_data: list[official.DataPacket] = []
    theirs.on("data_received", their_data.append)
    source, track = await _publish_sine(ours)
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0, seconds=120)):
            publication = await ours.local_participant.publish_track(track)
            await subscribed_track(theirs, "ours", timeout=20)
            before = len(log.items)
            started = time.monotonic()
            await ours.simulate_scenario(scenario)
            await log.wait_for("reconnected", timeout=60)
            took = time.monotonic() - started
            names = log.names()[before:]
            print(f"scenario {scenario}: reconnected in {took:.2f}s, events {names}")
            assert names[:2] == ["connection_state_changed", "reconnecting"]
            assert "disconnected" not in names
            assert ours.connection_state == rtc.ConnectionState.CONN_CONNECTED
            assert publication in ours.local_participant.track_publications.values()
            await ours.local_participant.publish_data(b"after", topic="t")
            await wait_until(
                lambda: any(p.data == b"after" for p in their_data),
                timeout=20,
                what="official receives our packet after the scenario",
            )
            await theirs.local_participant.publish_data(b"back", topic="r")
            await log.wait_for("data_received", lambda p: p.data == b"back", timeout=20)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_a_simulated_server_leave_disconnects_like_the_official_sdk(
    server_url: str, make_token: TokenFactory
) -> None:
    """server_leave makes the server send a leave with action DISCONNECT (SERVER_SHUTDOWN):
    the official SDK 1.2.1 disconnects too (measured on this server)."""
    ours = rtc.Room()
    log = EventLog(ours, LIFECYCLE)
    try:
        await ours.connect(server_url, make_token("ours"))
        before = len(log.items)
        await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_SERVER_LEAVE)
        (reason,) = await log.wait_for("disconnected", timeout=30)
        assert reason == rtc.DisconnectReason.SERVER_SHUTDOWN
        assert log.names()[before:] == ["connection_state_changed", "disconnected"]
    finally:
        await ours.disconnect()


async def test_no_reliable_packet_is_lost_across_a_signal_cut(
    proxy: TcpProxy, server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, [*LIFECYCLE, "data_received"])
    received: list[bytes] = []
    theirs.on("data_received", lambda p: received.append(p.data))
    total = 150
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(proxy.url, make_token("ours"))
        await wait_until(lambda: "ours" in theirs.remote_participants, what="official sees us")
        for i in range(total):
            if i == 50:
                proxy.cut()
            await ours.local_participant.publish_data(f"p{i}".encode(), topic="seq")
            await asyncio.sleep(0.01)
        await log.wait_for("reconnected", timeout=30)
        await wait_until(
            lambda: len(set(received)) == total,
            timeout=30,
            what=f"all {total} reliable packets at the official SDK (got {len(set(received))})",
        )
        assert [p for p in received if received.count(p) > 1] == []  # none twice
        assert "disconnected" not in log.names()
        # and the other way
        for i in range(20):
            await theirs.local_participant.publish_data(f"b{i}".encode(), topic="back")
        await wait_until(
            lambda: len(log.args("data_received")) >= 20, timeout=20, what="20 packets back"
        )
    finally:
        await ours.disconnect()
        await theirs.disconnect()
