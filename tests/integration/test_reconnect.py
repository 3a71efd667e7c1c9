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
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background, dominant_frequency, feed_sine
from tests.integration.tcp_proxy import TcpProxy

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


async def _official_audio(room: official.Room, identity: str) -> official.Track:
    def find() -> official.Track | None:
        p = room.remote_participants.get(identity)
        if p is None:
            return None
        return next((pub.track for pub in p.track_publications.values() if pub.track), None)

    await wait_until(
        lambda: find() is not None, timeout=20, what=f"official subscribed to {identity}"
    )
    track = find()
    assert track is not None
    return track


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
            counter = AudioCounter(await _official_audio(theirs, "ours"))
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
