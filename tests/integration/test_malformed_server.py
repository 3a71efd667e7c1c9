"""A broken or hostile signal server: bad input fails fast, clearly, and leaks nothing.

The server here is a fake one (the ``websockets`` library on 127.0.0.1) that accepts
the WebSocket and then misbehaves in one way per test. Times are measured with the
loop clock from the moment the fake server sent its bad frame; the bound asserted is
generous for a loaded machine, while the design makes the failure immediate (no
waiting for a timeout or for a close handshake the server may never complete).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from websockets.asyncio.server import ServerConnection, serve

from livekit_py import rtc
from livekit_py.errors import ConnectError
from livekit_py.signal.client import MAX_MESSAGE_SIZE, SignalClient, SignalOptions
from tests.helpers import socket_count, wait_until

TOKEN = "not-a-real-token-but-secret"
BOUND = 5.0  # seconds; the failure is immediate by design, this is for the loaded CI machine
HUGE = 50 * 1024 * 1024

Behaviour = Callable[[ServerConnection, "FakeServer"], Awaitable[None]]


@dataclass
class FakeServer:
    url: str = ""
    behaviour: Behaviour | None = None
    sent_bad_at: float | None = None  # loop time the bad frame (or close) went out
    client_gone_at: float | None = None  # loop time the server saw the connection end
    bytes_written: int = 0
    handlers_done: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def mark_sent(self) -> None:
        self.sent_bad_at = asyncio.get_running_loop().time()


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    state = FakeServer()

    async def handler(ws: ServerConnection) -> None:
        try:
            assert state.behaviour is not None
            await state.behaviour(ws, state)
            await asyncio.wait_for(ws.wait_closed(), 30)
        except BaseException as e:
            state.errors.append(e)
        finally:
            state.client_gone_at = asyncio.get_running_loop().time()
            state.handlers_done += 1

    async with serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        state.url = f"ws://127.0.0.1:{port}"
        yield state


def _our_tasks() -> list[asyncio.Task[object]]:
    """Pending tasks running livekit-py code."""
    out = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "livekit_py" in code.co_filename:
            out.append(task)
    return out


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _join_response() -> proto_rtc.SignalResponse:
    return proto_rtc.SignalResponse(
        join=proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_fake", name="fake-room"),
            participant=proto_models.ParticipantInfo(sid="PA_fake", identity="alice"),
            server_version="1.13.5",
        )
    )


async def _send_huge_frame_header(ws: ServerConnection, state: FakeServer) -> None:
    """A binary frame announcing 50 MB, its payload streamed under flow control.

    Nothing of 50 MB is ever allocated here: the payload goes out 64 KiB at a time
    while the client reads, and stops when the client drops the connection.
    """
    transport = ws.transport
    transport.write(bytes([0x82, 127]) + struct.pack("!Q", HUGE))
    state.mark_sent()
    chunk = bytes(64 * 1024)
    while state.bytes_written < HUGE and not transport.is_closing():
        transport.write(chunk)
        state.bytes_written += len(chunk)
        # polling a raw transport's buffer: it has no event to wait on
        while transport.get_write_buffer_size() > 1024 * 1024 and not transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)


def _send(frame: str | bytes) -> Behaviour:
    async def behaviour(ws: ServerConnection, state: FakeServer) -> None:
        await ws.send(frame)
        state.mark_sent()

    return behaviour


def _close(code: int, reason: str) -> Behaviour:
    async def behaviour(ws: ServerConnection, state: FakeServer) -> None:
        state.mark_sent()
        await ws.close(code, reason)

    return behaviour


_TRUNCATED = _join_response().SerializeToString()[:-7]
_NOT_A_JOIN = proto_rtc.SignalResponse(
    update=proto_rtc.ParticipantUpdate(
        participants=[proto_models.ParticipantInfo(sid="PA_x", identity="x")]
    )
).SerializeToString()

CASES: dict[str, tuple[Behaviour, list[str]]] = {
    "garbage": (
        _send(b"\xff\xfe garbage \x00\x01" * 3),
        ["before the JoinResponse", "does not parse as a SignalResponse"],
    ),
    "truncated": (
        _send(_TRUNCATED),
        [f"a {len(_TRUNCATED)}-byte frame that does not parse as a SignalResponse"],
    ),
    "text": (_send("hello, I am text"), ["a text frame (16 characters)"]),
    "invalid-utf8-text": (
        # a text frame that is not even UTF-8: websockets itself rejects it (1007)
        lambda ws, st: _raw_frame(ws, st, bytes([0x81, 3]) + b"\xff\xfe\xfd"),
        ["text frame that is not valid UTF-8"],
    ),
    "huge": (
        _send_huge_frame_header,
        [f"over the {MAX_MESSAGE_SIZE // 2**20} MiB size limit", str(HUGE)],
    ),
    "close-1008": (_close(1008, "go away"), ["code 1008 (policy violation) go away"]),
    "close-1011": (_close(1011, "oops"), ["code 1011 (internal error) oops"]),
    "close-4000": (_close(4000, "custom"), ["code 4000 (private use) custom"]),
    "not-a-join": (_send(_NOT_A_JOIN), ["'update' message where the JoinResponse was expected"]),
}


async def _raw_frame(ws: ServerConnection, state: FakeServer, data: bytes) -> None:
    ws.transport.write(data)
    state.mark_sent()


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input_before_the_join_fails_fast(fake_server: FakeServer, case: str) -> None:
    behaviour, named = CASES[case]
    fake_server.behaviour = behaviour
    loop = asyncio.get_running_loop()
    baseline_sockets = socket_count()
    rss_before = _rss_bytes()
    room = rtc.Room()

    with pytest.raises(ConnectError) as info:
        await room.connect(fake_server.url, TOKEN, rtc.RoomOptions(connect_timeout=30))
    failed_at = loop.time()

    message = str(info.value)
    for part in named:
        assert part in message, f"{part!r} not in {message!r}"
    assert TOKEN not in message
    assert fake_server.sent_bad_at is not None, "the fake server never misbehaved"
    took = failed_at - fake_server.sent_bad_at
    assert took < BOUND, f"ConnectError {took:.2f}s after the bad frame: {message}"
    assert not room.isconnected()

    # nothing left behind: the server saw the socket end, no task of ours, no socket
    await wait_until(lambda: fake_server.handlers_done == 1, BOUND, "the server to see the close")
    assert fake_server.client_gone_at is not None
    assert fake_server.client_gone_at - fake_server.sent_bad_at < BOUND
    assert _our_tasks() == []
    await wait_until(lambda: socket_count() <= baseline_sockets, BOUND, "sockets to be closed")
    if case == "huge":
        # rejected from the frame header: neither the 50 MB payload nor most of it
        # reached memory (the server streams it under flow control)
        assert fake_server.bytes_written < HUGE
        assert _rss_bytes() - rss_before < 32 * 1024 * 1024


async def test_a_join_response_that_never_comes_times_out_clearly(
    fake_server: FakeServer,
) -> None:
    async def silent(ws: ServerConnection, state: FakeServer) -> None:
        state.mark_sent()

    fake_server.behaviour = silent
    with pytest.raises(ConnectError, match=r"timed out after 1s .* JoinResponse"):
        await rtc.Room().connect(fake_server.url, TOKEN, rtc.RoomOptions(connect_timeout=1))
    await wait_until(lambda: fake_server.handlers_done == 1, BOUND, "the server to see the close")
    assert _our_tasks() == []


AFTER_JOIN: dict[str, tuple[Callable[[ServerConnection, FakeServer], Awaitable[None]], str]] = {
    "garbage": (_send(b"\xff\xff\xff\xff"), "4-byte frame that does not parse"),
    "text": (_send("text"), "a text frame (4 characters)"),
    "huge": (_send_huge_frame_header, f"over the {MAX_MESSAGE_SIZE // 2**20} MiB size limit"),
}


@pytest.mark.parametrize("case", list(AFTER_JOIN))
async def test_bad_input_after_the_join_breaks_the_stream(
    fake_server: FakeServer, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad, named = AFTER_JOIN[case]

    async def behaviour(ws: ServerConnection, state: FakeServer) -> None:
        await ws.send(_join_response().SerializeToString())
        await ws.recv()  # the client's first request: it is reading now
        await bad(ws, state)

    fake_server.behaviour = behaviour
    caplog.set_level(logging.WARNING, logger="livekit_py.signal")
    loop = asyncio.get_running_loop()
    client = SignalClient()
    closed: list[tuple[float, str]] = []
    join = await client.join(fake_server.url, TOKEN, SignalOptions(connect_timeout=30))
    client.on_close = lambda why: closed.append((loop.time(), why))
    assert join.participant.sid == "PA_fake"
    try:
        await client.send(proto_rtc.SignalRequest(ping=1))
        await wait_until(lambda: bool(closed), 10, "on_close after the bad frame")
        ((at, why),) = closed
        assert named in why and "broken" in why, why
        assert fake_server.sent_bad_at is not None and at - fake_server.sent_bad_at < BOUND
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any(named in r.getMessage() for r in warnings), [r.getMessage() for r in warnings]
        assert all(TOKEN not in r.getMessage() for r in caplog.records)
        assert not client.connected
        await wait_until(lambda: fake_server.handlers_done == 1, BOUND, "the socket to close")
    finally:
        await client.close()
    assert len(closed) == 1
    assert _our_tasks() == []


@pytest.mark.parametrize("how", ["aborted", "closed", "silent"])
async def test_close_with_a_leave_never_hangs_on_a_dead_socket(
    fake_server: FakeServer, how: str
) -> None:
    """close(leave) is bounded whether the socket is gone, closed, or the server is mute."""

    async def behaviour(ws: ServerConnection, state: FakeServer) -> None:
        await ws.send(_join_response().SerializeToString())
        await ws.recv()
        state.mark_sent()
        if how == "aborted":
            ws.transport.abort()
        elif how == "closed":
            await ws.close(1001, "going away")
        # silent: reads nothing more and never closes; the client must not wait for it

    fake_server.behaviour = behaviour
    client = SignalClient()
    closed: list[str] = []
    await client.join(fake_server.url, TOKEN, SignalOptions(connect_timeout=30))
    client.on_close = closed.append
    await client.send(proto_rtc.SignalRequest(ping=1))
    await wait_until(lambda: fake_server.sent_bad_at is not None, BOUND, "the server to act")
    if how != "silent":
        await wait_until(lambda: bool(closed), BOUND, "on_close for the dead socket")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.close(
        proto_rtc.LeaveRequest(reason=proto_models.DisconnectReason.CLIENT_INITIATED)
    )
    took = loop.time() - started
    # with the socket gone there is nothing to wait for; a mute server costs the bounded
    # wait for its acknowledgement and for the close handshake, never more
    assert took < (BOUND if how != "silent" else 3.0 + BOUND), took
    assert _our_tasks() == []
    await wait_until(lambda: fake_server.handlers_done == 1, 35, "the server to see the close")


@pytest.mark.parametrize("case", ["garbage", "text", "huge"])
async def test_bad_input_while_resuming_fails_the_attempt_clearly(
    fake_server: FakeServer, case: str
) -> None:
    """A resume is held to the same input rules as a join: a ConnectError naming the frame."""

    async def behaviour(ws: ServerConnection, state: FakeServer) -> None:
        if "reconnect=1" not in (ws.request.path if ws.request else ""):
            await ws.send(_join_response().SerializeToString())
            await ws.wait_closed()
            return
        if case == "garbage":
            await ws.send(b"\xff\x00\xfe not a protobuf")
        elif case == "text":
            await ws.send("hello")
        else:
            await ws.send(os.urandom(MAX_MESSAGE_SIZE + 1))
        state.mark_sent()

    fake_server.behaviour = behaviour
    client = SignalClient()
    join = await client.join(fake_server.url, TOKEN, SignalOptions(connect_timeout=30))
    named = {"garbage": "does not parse", "text": "text frame", "huge": "size limit"}[case]
    try:
        options = SignalOptions(
            reconnect=True, participant_sid=join.participant.sid, connect_timeout=30
        )
        with pytest.raises(ConnectError, match=named):
            await client.resume(fake_server.url, TOKEN, options)
    finally:
        await client.close()
    assert _our_tasks() == []
