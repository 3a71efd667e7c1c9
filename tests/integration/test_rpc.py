"""RPC through a real livekit-server, with the official SDK (livekit==1.2.1) as the peer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.rtc.rpc import RpcError, RpcInvocationData
from tests.conftest import TokenFactory
from tests.helpers import wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]

Code = RpcError.ErrorCode
BIG = "x" * (15 * 1024 + 1)


def assert_no_rpc_leftovers(room: rtc.Room) -> None:
    manager = room._rpc_manager()
    assert manager.pending_calls == ()
    assert manager.running_tasks == 0


async def connect_ours(server_url: str, token: str) -> rtc.Room:
    room = rtc.Room()
    await room.connect(server_url, token)
    return room


@pytest.fixture
async def rooms(
    server_url: str, make_token: TokenFactory
) -> AsyncIterator[tuple[rtc.Room, official.Room]]:
    """Our room ("ours") and the official SDK's ("official"), each seeing the other."""
    theirs = official.Room()
    ours = rtc.Room()
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        await wait_until(lambda: "ours" in theirs.remote_participants, what="official sees us")
        yield ours, theirs
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_rpc_both_ways_with_the_official_sdk(
    rooms: tuple[rtc.Room, official.Room],
) -> None:
    ours, theirs = rooms
    seen_by_them: list[official.RpcInvocationData] = []
    seen_by_us: list[RpcInvocationData] = []

    # -- the official SDK serves ------------------------------------------------------
    @theirs.local_participant.register_rpc_method("reverse")
    async def reverse(data: official.RpcInvocationData) -> str:
        seen_by_them.append(data)
        return data.payload[::-1]

    async def fail(data: official.RpcInvocationData) -> str:
        raise official.RpcError(4001, "their failure", '{"side": "official"}')

    async def crash(data: official.RpcInvocationData) -> str:
        raise ValueError("bug")

    async def slow(data: official.RpcInvocationData) -> str:
        await asyncio.sleep(5)
        return "late"

    async def huge(data: official.RpcInvocationData) -> str:
        return BIG

    theirs.local_participant.register_rpc_method("fail", fail)
    theirs.local_participant.register_rpc_method("crash", crash)
    theirs.local_participant.register_rpc_method("slow", slow)
    theirs.local_participant.register_rpc_method("huge", huge)

    lp = ours.local_participant

    async def call_them(method: str, payload: str = "", timeout: float | None = None) -> str:
        return await lp.perform_rpc(
            destination_identity="official",
            method=method,
            payload=payload,
            response_timeout=timeout,
        )

    async def their_error(method: str, payload: str = "", timeout: float | None = None) -> RpcError:
        with pytest.raises(RpcError) as err:
            await call_them(method, payload, timeout)
        return err.value

    assert await call_them("reverse", "héllo wörld") == "dlröw olléh"
    (data,) = seen_by_them
    assert data.caller_identity == "ours" and data.payload == "héllo wörld"
    assert data.response_timeout == pytest.approx(8.0)  # 15 s default minus the 7 s ack allowance
    assert data.request_id

    e = await their_error("fail")
    assert (e.code, e.message, e.data) == (4001, "their failure", '{"side": "official"}')
    e = await their_error("crash")
    assert (e.code, e.message) == (1500, "Application error in method handler")
    e = await their_error("missing")
    assert (e.code, e.message) == (1400, "Method not supported at destination")
    e = await their_error("huge")
    assert (e.code, e.message) == (1504, "Response payload too large")
    e = await their_error("reverse", BIG)
    assert (e.code, e.message) == (1402, "Request payload too large")
    start = time.monotonic()
    e = await their_error("slow", timeout=1.5)
    assert (e.code, e.message) == (1502, "Response timeout")
    assert time.monotonic() - start < 3
    # a very short timeout: the right error, nothing pending, the room still works
    # (a fast handler may still win: its response can arrive with the ack)
    e = await their_error("slow", "abc", timeout=0.001)
    assert (e.code, e.message) == (1502, "Response timeout")
    assert_no_rpc_leftovers(ours)
    assert await call_them("reverse", "ok") == "ko"

    # -- we serve ---------------------------------------------------------------------
    @lp.register_rpc_method("upper")
    async def upper(data: RpcInvocationData) -> str:
        seen_by_us.append(data)
        return data.payload.upper()

    async def our_fail(data: RpcInvocationData) -> str:
        raise RpcError(4002, "our failure", '{"side": "ours"}')

    async def our_crash(data: RpcInvocationData) -> str:
        raise RuntimeError("bug")

    async def our_slow(data: RpcInvocationData) -> str:
        await asyncio.sleep(5)
        return "late"

    lp.register_rpc_method("fail", our_fail)
    lp.register_rpc_method("crash", our_crash)
    lp.register_rpc_method("slow", our_slow)
    lp.register_rpc_method("huge", lambda data: BIG)
    lp.register_rpc_method("sync", lambda data: f"sync {data.payload}")

    their_lp = theirs.local_participant

    async def call_us(method: str, payload: str = "", timeout: float | None = None) -> str:
        return await their_lp.perform_rpc(
            destination_identity="ours", method=method, payload=payload, response_timeout=timeout
        )

    async def our_error(
        method: str, payload: str = "", timeout: float | None = None
    ) -> official.RpcError:
        with pytest.raises(official.RpcError) as err:
            await call_us(method, payload, timeout)
        return err.value

    assert await call_us("upper", "héllo") == "HÉLLO"
    (mine,) = seen_by_us
    assert mine.caller_identity == "official" and mine.payload == "héllo"
    assert mine.response_timeout == pytest.approx(8.0)
    assert await call_us("sync", "x") == "sync x"

    oe = await our_error("fail")
    assert (oe.code, oe.message, oe.data) == (4002, "our failure", '{"side": "ours"}')
    oe = await our_error("crash")
    assert (oe.code, oe.message) == (1500, "Application error in method handler")
    oe = await our_error("missing")
    assert (oe.code, oe.message) == (1400, "Method not supported at destination")
    oe = await our_error("huge")
    assert (oe.code, oe.message) == (1504, "Response payload too large")
    oe = await our_error("upper", BIG)
    assert oe.code == 1402
    start = time.monotonic()
    oe = await our_error("slow", timeout=1.5)
    assert (oe.code, oe.message) == (1502, "Response timeout")
    assert time.monotonic() - start < 3
    await asyncio.sleep(0.1)
    assert_no_rpc_leftovers(ours)


async def test_concurrent_calls_both_ways_with_the_official_sdk(
    rooms: tuple[rtc.Room, official.Room],
) -> None:
    ours, theirs = rooms

    async def their_square(data: official.RpcInvocationData) -> str:
        await asyncio.sleep(0.01 * (int(data.payload) % 4))
        return str(int(data.payload) ** 2)

    async def our_square(data: RpcInvocationData) -> str:
        await asyncio.sleep(0.01 * (int(data.payload) % 4))
        return str(int(data.payload) ** 2)

    theirs.local_participant.register_rpc_method("square", their_square)
    ours.local_participant.register_rpc_method("square", our_square)

    ours_to_them = [
        ours.local_participant.perform_rpc(
            destination_identity="official", method="square", payload=str(i)
        )
        for i in range(20)
    ]
    them_to_us = [
        theirs.local_participant.perform_rpc(
            destination_identity="ours", method="square", payload=str(i)
        )
        for i in range(20)
    ]
    results = await asyncio.gather(*ours_to_them, *them_to_us)
    assert results == [str(i * i) for i in range(20)] * 2
    assert_no_rpc_leftovers(ours)


async def test_callee_disconnecting_mid_call(server_url: str, make_token: TokenFactory) -> None:
    caller = rtc.Room()
    callee_ours = rtc.Room()
    callee_official = official.Room()
    started: set[str] = set()

    async def hang_official(data: official.RpcInvocationData) -> str:
        started.add("official")
        await asyncio.sleep(30)
        return ""

    async def hang_ours(data: RpcInvocationData) -> str:
        started.add("ours-callee")
        await asyncio.sleep(30)
        return ""

    try:
        await callee_official.connect(server_url, make_token("official"))
        await callee_ours.connect(server_url, make_token("ours-callee"))
        await caller.connect(server_url, make_token("caller"))
        callee_official.local_participant.register_rpc_method("hang", hang_official)
        callee_ours.local_participant.register_rpc_method("hang", hang_ours)

        calls = {
            identity: asyncio.ensure_future(
                caller.local_participant.perform_rpc(
                    destination_identity=identity, method="hang", payload="", response_timeout=20
                )
            )
            for identity in ("official", "ours-callee")
        }
        await wait_until(lambda: len(started) == 2, what="both handlers running")
        start = time.monotonic()
        await callee_official.disconnect()
        await callee_ours.disconnect()
        # our callee stopped its handler and left nothing running
        assert_no_rpc_leftovers(callee_ours)
        for identity, call in calls.items():
            with pytest.raises(RpcError) as err:
                await call
            assert err.value.code == Code.RECIPIENT_DISCONNECTED, identity
            assert err.value.message == "Recipient disconnected"
        assert time.monotonic() - start < 5
        assert_no_rpc_leftovers(caller)
    finally:
        await caller.disconnect()
        await callee_ours.disconnect()
        await callee_official.disconnect()


async def test_ours_to_ours(server_url: str, make_token: TokenFactory) -> None:
    alice = await connect_ours(server_url, make_token("alice"))
    bob = await connect_ours(server_url, make_token("bob"))
    try:
        await wait_until(lambda: "bob" in alice.remote_participants, what="alice sees bob")

        async def echo(data: RpcInvocationData) -> str:
            await asyncio.sleep(0.005 * (len(data.payload) % 3))
            return f"{data.caller_identity}:{data.payload}"

        async def fail(data: RpcInvocationData) -> str:
            raise RpcError(4100, "nope", "details")

        async def slow(data: RpcInvocationData) -> str:
            await asyncio.sleep(5)
            return ""

        for room in (alice, bob):
            room.local_participant.register_rpc_method("echo", echo)
            room.local_participant.register_rpc_method("fail", fail)
            room.local_participant.register_rpc_method("slow", slow)

        a, b = alice.local_participant, bob.local_participant
        assert await a.perform_rpc(destination_identity="bob", method="echo", payload="hi") == (
            "alice:hi"
        )
        assert await b.perform_rpc(destination_identity="alice", method="echo", payload="yo") == (
            "bob:yo"
        )

        async def error(method: str, payload: str = "", timeout: float | None = None) -> RpcError:
            with pytest.raises(RpcError) as err:
                await a.perform_rpc(
                    destination_identity="bob",
                    method=method,
                    payload=payload,
                    response_timeout=timeout,
                )
            return err.value

        e = await error("fail")
        assert (e.code, e.message, e.data) == (4100, "nope", "details")
        assert (await error("missing")).code == Code.UNSUPPORTED_METHOD
        assert (await error("echo", BIG)).code == Code.REQUEST_PAYLOAD_TOO_LARGE
        assert (await error("slow", timeout=1.2)).code == Code.RESPONSE_TIMEOUT
        assert (await error("slow", "x", timeout=0.001)).code == Code.RESPONSE_TIMEOUT

        calls = [
            caller.perform_rpc(destination_identity=callee, method="echo", payload=str(i))
            for i in range(20)
            for caller, callee in ((a, "bob"), (b, "alice"))
        ]
        results = await asyncio.gather(*calls)
        assert results == [f"{who}:{i}" for i in range(20) for who in ("alice", "bob")]
        await asyncio.sleep(0.1)
        assert_no_rpc_leftovers(alice)
    finally:
        await alice.disconnect()
        await bob.disconnect()
    assert_no_rpc_leftovers(alice)
    assert_no_rpc_leftovers(bob)
