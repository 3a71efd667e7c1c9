"""A cancelled ``connect()`` leaves no participant on the real server, and nothing in-process.

Once the server has answered the join it has a participant for us; once ICE is up it
keeps that participant for a resume if the socket just closes. Only a LeaveRequest
removes it at once, so a cancelled connect must send one (and wait, bounded, for the
server to act on it). The server's own RoomService is the judge.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

import pytest
from aiortc import RTCPeerConnection
from livekit import api

from livekit_py import rtc
from livekit_py.engine.engine import EngineConfig, RtcEngine
from livekit_py.signal.client import SignalClient, SignalOptions
from tests.conftest import TokenFactory
from tests.helpers import socket_count

pytestmark = pytest.mark.server

ATTEMPTS = 20


def _live_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    ]


def _ice_state(engine: RtcEngine) -> str:
    states = [t.pc.iceConnectionState for t in (engine.subscriber, engine.publisher) if t]
    return ",".join(states)


def _hook(room: rtc.Room, point: str, cancel: Callable[[], None]) -> None:
    """Make ``room``'s next connect call ``cancel()`` at ``point``."""
    session = room._session

    class CancellingSignal(SignalClient):
        async def join(self, url: str, token: str, options: SignalOptions):  # type: ignore[no-untyped-def]
            join = await super().join(url, token, options)
            if point == "after-join":
                cancel()  # lands at connect()'s next await: the engine start
            return join

    def engine_factory(signal: SignalClient, config: EngineConfig) -> RtcEngine:
        engine = RtcEngine(signal, config)
        if point != "after-join":
            wanted = {"during-ice": ("checking",), "ice-connected": ("connected", "completed")}
            targets = wanted[point]

            async def watch() -> None:
                # the peer connections appear only in engine.start(): poll their state
                while not any(s in targets for s in _ice_state(engine).split(",")):  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                cancel()

            task = asyncio.get_running_loop().create_task(watch())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return engine

    tasks: set[asyncio.Task[None]] = set()
    session.signal_factory = CancellingSignal
    session.engine_factory = engine_factory


async def test_cancelled_connect_leaves_no_participant_on_the_server(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    warm = rtc.Room()
    await warm.connect(server_url, make_token("warm"))
    t0 = time.monotonic()
    await warm.disconnect()
    disconnect_took = time.monotonic() - t0
    await asyncio.sleep(0.2)
    baseline_tasks = {t for t in asyncio.all_tasks() if not t.done()}
    baseline_sockets = socket_count()

    cancelled: dict[str, int] = {}
    for point in ("after-join", "during-ice", "ice-connected", "timed"):
        cancelled[point] = 0
        for i in range(ATTEMPTS * 2 if point == "timed" else ATTEMPTS):
            room = rtc.Room()
            task = asyncio.create_task(room.connect(server_url, make_token(f"cancel-{point}-{i}")))
            if point == "timed":
                # as a user would: a timeout of a few milliseconds, landing anywhere
                # (before the socket, waiting for the join response, ICE, DTLS)
                # (0 to 10 ms; a whole join takes tens of milliseconds here)
                asyncio.get_running_loop().call_later(i * 0.00025, task.cancel)
            else:
                _hook(room, point, task.cancel)
            try:
                await asyncio.wait_for(asyncio.shield(task), 30)
            except asyncio.CancelledError:
                cancelled[point] += 1
                assert task.cancelled()
                assert not room.isconnected()
            else:
                await room.disconnect()  # too late to cancel: connected, then left
    # most attempts really were cancelled at the point named (a fast join may win a race)
    hooked = [n for point, n in cancelled.items() if point != "timed"]
    assert all(n >= ATTEMPTS // 2 for n in hooked), cancelled

    http_url = server_url.replace("ws://", "http://")
    lkapi = api.LiveKitAPI(url=http_url, api_key="devkey", api_secret="secret")
    try:
        ours: list[str] = []
        deadline = time.monotonic() + 10
        while True:
            res = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room_name))
            ours = [p.identity for p in res.participants if p.identity.startswith("cancel-")]
            if not ours or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert ours == [], f"participants left on the server 10 s after cancelling: {ours}"
    finally:
        await lkapi.aclose()

    await asyncio.sleep(0.3)
    leftover = {t for t in asyncio.all_tasks() if not t.done()} - baseline_tasks
    leftover.discard(asyncio.current_task())  # type: ignore[arg-type]
    assert not leftover, f"tasks left behind: {leftover}"
    assert socket_count() <= baseline_sockets, "sockets left open"
    assert _live_peer_connections() == []
    # the leave is acknowledged by the server closing the socket: no wait for a timeout
    assert disconnect_took < 5, disconnect_took
