"""The session lifecycle: its transitions, what each one emits, teardown and the grace wait.

The signal client and engine are fakes (tests/unit/session_fakes.py); the grace
timer sleeps through a controllable function, not the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.errors import ConnectError
from livekit_py.session.session import (
    TRANSITIONS,
    TRANSPORT_GRACE,
    IllegalTransition,
    Session,
    SessionState,
    StateChange,
)
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, fake_room, join_response

S = SessionState
LIFECYCLE = ["connection_state_changed", "connected", "disconnected", "reconnecting", "reconnected"]


class ManualSleep:
    """A sleep that returns only when the test says so."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)
        await self.release.wait()


def states(changes: list[StateChange]) -> list[tuple[SessionState, SessionState, int | None]]:
    return [(c.old, c.new, c.reason) for c in changes]


async def _closed() -> None:
    pass


# -- the transition table --------------------------------------------------------------


@pytest.mark.parametrize("old,new", list(itertools.product(SessionState, SessionState)))
def test_only_the_listed_transitions_are_legal(old: SessionState, new: SessionState) -> None:
    changes: list[StateChange] = []
    session = Session(on_state=changes.append, on_closed=_closed)
    session._state = old
    if new in TRANSITIONS[old]:
        session._set_state(new, "test", reason=3)
        assert session.state is new and changes == [StateChange(old, new, "test", 3)]
    else:
        with pytest.raises(IllegalTransition, match=f"from {old.value} to {new.value}"):
            session._set_state(new, "test")
        assert session.state is old and changes == []


def test_the_table_is_the_documented_lifecycle() -> None:
    assert TRANSITIONS == {
        S.DISCONNECTED: {S.CONNECTING},
        S.CONNECTING: {S.CONNECTED, S.DISCONNECTING},
        S.CONNECTED: {S.RECONNECTING, S.DISCONNECTING},
        S.RECONNECTING: {S.CONNECTED, S.DISCONNECTING},
        S.DISCONNECTING: {S.DISCONNECTED},
    }


# -- connect and disconnect through the room -----------------------------------------------


def record_states(room: rtc.Room) -> list[StateChange]:
    changes: list[StateChange] = []
    original = room._session._on_state

    def both(change: StateChange) -> None:
        changes.append(change)
        original(change)

    room._session._on_state = both
    return changes


async def test_connect_then_disconnect() -> None:
    room, signal, engine = fake_room(join_response())
    changes = record_states(room)
    log = EventLog(room, LIFECYCLE)
    await room.connect("ws://fake.invalid", "token")
    assert states(changes) == [
        (S.DISCONNECTED, S.CONNECTING, None),
        (S.CONNECTING, S.CONNECTED, None),
    ]
    assert log.items == [
        ("connection_state_changed", (rtc.ConnectionState.CONN_CONNECTED,)),
        ("connected", ()),
    ]
    assert room.isconnected() and room.connection_state == rtc.ConnectionState.CONN_CONNECTED
    with pytest.raises(RuntimeError, match="already connected"):
        await room.connect("ws://fake.invalid", "token")

    await asyncio.gather(room.disconnect(), room.disconnect())  # twice at once: one report
    client = rtc.DisconnectReason.CLIENT_INITIATED
    assert states(changes)[2:] == [
        (S.CONNECTED, S.DISCONNECTING, None),
        (S.DISCONNECTING, S.DISCONNECTED, client),
    ]
    assert log.items[2:] == [
        ("connection_state_changed", (rtc.ConnectionState.CONN_DISCONNECTED,)),
        ("disconnected", (client,)),
    ]
    (leave,) = signal.closed_with
    assert leave is not None and leave.action == proto_rtc.LeaveRequest.Action.DISCONNECT
    assert engine.closed and not room.isconnected()
    assert room.local_participant.disconnect_reason == client
    await room.disconnect()  # safe when disconnected
    assert len(log.items) == 4


async def test_a_connect_that_fails_closes_everything_and_reports_nothing() -> None:
    room, signal, engine = fake_room(join_response())
    engine.connected.clear()  # the media never connects
    changes = record_states(room)
    log = EventLog(room, LIFECYCLE)
    with pytest.raises(ConnectError, match="media connection"):
        await room.connect("ws://fake.invalid", "token", rtc.RoomOptions(connect_timeout=0.01))
    assert states(changes) == [
        (S.DISCONNECTED, S.CONNECTING, None),
        (S.CONNECTING, S.DISCONNECTING, None),
        (S.DISCONNECTING, S.DISCONNECTED, None),
    ]
    assert log.items == [] and engine.closed and len(signal.closed_with) == 1
    assert room._session.signal is None and room._session.engine is None


async def test_a_cancelled_connect_closes_everything() -> None:
    room, signal, engine = fake_room(join_response())
    engine.connected.clear()
    log = EventLog(room, LIFECYCLE)
    task = asyncio.ensure_future(room.connect("ws://fake.invalid", "token"))
    await engine.started.wait()  # joined, waiting for the media connection
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert room._session.state is S.DISCONNECTED
    assert engine.closed and signal.closed_with and not signal.open
    assert log.items == []
    # and the room can connect again
    engine.connected.set()
    await room.connect("ws://fake.invalid", "token")
    assert room.isconnected()
    await room.disconnect()


# -- what ends a session from inside -------------------------------------------------------


async def test_a_server_leave_disconnects_at_once_with_its_reason() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    removed = proto_models.DisconnectReason.PARTICIPANT_REMOVED
    signal.deliver(leave=proto_rtc.LeaveRequest(reason=removed))
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(removed,)] and sleep.calls == []
    assert signal.closed_with == [None]  # no leave sent back: the server asked


async def test_a_lost_socket_waits_the_grace_for_the_servers_reason() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    signal.drop("socket closed")
    await asyncio.sleep(0)
    assert sleep.calls == [TRANSPORT_GRACE]
    # still connected while waiting; the server's leave arrives meanwhile
    assert room.isconnected() and log.items == []
    duplicate = proto_models.DisconnectReason.DUPLICATE_IDENTITY
    signal.deliver(leave=proto_rtc.LeaveRequest(reason=duplicate))
    signal.drop("socket closed again")  # a second failure does not start a second timer
    for _ in range(5):
        await asyncio.sleep(0)
    assert log.items == [] and sleep.calls == [TRANSPORT_GRACE]
    sleep.release.set()
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(duplicate,)]


@pytest.mark.parametrize(
    "fail,reason",
    [
        ("signal", rtc.DisconnectReason.SIGNAL_CLOSE),
        ("engine", rtc.DisconnectReason.MEDIA_FAILURE),
    ],
)
async def test_a_transport_failure_without_a_leave_reports_the_transport(
    fail: str, reason: int
) -> None:
    room, signal, engine = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    if fail == "signal":
        signal.drop()
    else:
        engine.on_failure("the subscriber peer connection failed")
    await asyncio.sleep(0)
    assert sleep.calls == [TRANSPORT_GRACE] and log.items == []
    sleep.release.set()
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(reason,)]
    assert room.local_participant.disconnect_reason == reason


async def test_a_disconnect_during_the_grace_wins() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    signal.drop()
    await asyncio.sleep(0)
    await room.disconnect()
    sleep.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log.args("disconnected") == [(rtc.DisconnectReason.CLIENT_INITIATED,)]
