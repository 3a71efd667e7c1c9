"""RPC through a real livekit-server, with the official SDK (livekit==1.2.1) as the peer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc as official
from livekit.protocol import models as proto_models

from livekit_py import rtc
from livekit_py.rtc.rpc import RpcError, RpcInvocationData
from livekit_py.session.rpc import RpcManager
from livekit_py.signal import client_protocol
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.wire_tap import WireTap

pytestmark = [pytest.mark.server, pytest.mark.interop]

Code = RpcError.ErrorCode
DEFLATE_RAW = proto_models.DataStream.DEFLATE_RAW
NO_COMPRESSION = proto_models.DataStream.NONE
BIG = "x" * (15 * 1024 + 1)  # more than RPC v1 allows
# 100 kB that does not compress much (RPC v2 streams are deflated when both sides can)
HUNDRED_KB = "".join(f"{(i * 2654435761) % 4294967296:08x}é" for i in range(10_000))


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
        await wait_until(lambda: "official" in ours.remote_participants, what="we see official")
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
    wire = WireTap(ours)

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
    # RPC v2: no payload limit either way, requests and responses are data streams
    assert await call_them("huge") == BIG
    assert await call_them("reverse", HUNDRED_KB) == HUNDRED_KB[::-1]
    assert WireTap.kinds(wire.sent).count("rpc_request") == 0
    requests = WireTap.headers(wire.sent, "lk.rpc_request")
    assert [h.attributes["lk.rpc_request_method"] for h in requests] == [
        "reverse",
        "fail",
        "crash",
        "missing",
        "huge",
        "reverse",
    ]
    assert {h.attributes["lk.rpc_request_version"] for h in requests} == {"2"}
    assert requests[0].attributes["lk.rpc_request_response_timeout_ms"] == "8000"
    responses = WireTap.headers(wire.received, "lk.rpc_response")
    assert [h.attributes["lk.rpc_request_id"] for h in responses] == [
        requests[i].attributes["lk.rpc_request_id"] for i in (0, 4, 5)
    ]
    # errors came back as v1 RpcResponse packets
    errors = [p.rpc_response for p in wire.received if p.WhichOneof("value") == "rpc_response"]
    assert [r.error.code for r in errors] == [4001, 1500, 1400]
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
    wire.clear()
    assert await call_us("huge") == BIG
    assert await call_us("upper", HUNDRED_KB) == HUNDRED_KB.upper()
    # the official SDK called us over v2: request streams in, acks and response streams out
    requests = WireTap.headers(wire.received, "lk.rpc_request")
    assert [h.attributes["lk.rpc_request_method"] for h in requests] == ["huge", "upper"]
    ids = [h.attributes["lk.rpc_request_id"] for h in requests]
    acks = [p.rpc_ack.request_id for p in wire.sent if p.WhichOneof("value") == "rpc_ack"]
    assert acks == ids
    responses = WireTap.headers(wire.sent, "lk.rpc_response")
    assert [h.attributes["lk.rpc_request_id"] for h in responses] == ids
    assert all(h.compression == DEFLATE_RAW for h in responses)  # they advertise it
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
        # both are ours, both speak RPC v2: no payload limit
        big = await a.perform_rpc(destination_identity="bob", method="echo", payload=HUNDRED_KB)
        assert big == f"alice:{HUNDRED_KB}"
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


async def connect_legacy(server_url: str, token: str) -> rtc.Room:
    """One of our rooms made to look and act like a client from before RPC v2: it joins
    without ``client_protocol`` (so the others see 0) and its RPC speaks version 1 only."""
    room = rtc.Room()
    room._rpc = RpcManager(room._port)  # no streams: v1 only, as an old SDK
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_protocol, "CLIENT_PROTOCOL", client_protocol.CLIENT_PROTOCOL_DEFAULT)
        patch.setattr(client_protocol, "CLIENT_CAPABILITIES", ())
        await room.connect(server_url, token)
    return room


async def test_v1_toward_a_peer_from_before_rpc_v2(
    server_url: str, make_token: TokenFactory
) -> None:
    theirs = official.Room()
    ours = rtc.Room()
    legacy: rtc.Room | None = None
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        legacy = await connect_legacy(server_url, make_token("legacy"))
        for room in (theirs, ours, legacy):
            await wait_until(lambda room=room: len(room.remote_participants) == 2, what="all")
        assert ours._model.remote["legacy"].info.client_protocol == 0
        assert ours._model.remote["official"].info.client_protocol == 2
        assert legacy._model.remote["ours"].info.client_protocol == 2
        wire = WireTap(legacy)

        async def their_upper(data: official.RpcInvocationData) -> str:
            return data.payload.upper()

        theirs.local_participant.register_rpc_method("upper", their_upper)
        theirs.local_participant.register_rpc_method("huge", lambda data: BIG)
        ours.local_participant.register_rpc_method("upper", lambda data: data.payload.upper())
        ours.local_participant.register_rpc_method("huge", lambda data: BIG)
        legacy.local_participant.register_rpc_method("echo", lambda data: data.payload)

        # ours and the official SDK call the legacy peer with RpcRequest packets ...
        for caller in (ours, theirs):
            out = await caller.local_participant.perform_rpc(
                destination_identity="legacy", method="echo", payload="héllo"
            )
            assert out == "héllo"
        assert WireTap.kinds(wire.received).count("rpc_request") == 2
        assert WireTap.headers(wire.received) == []
        # ... within the v1 limit, which both check before sending
        for caller, error in ((ours, RpcError), (theirs, official.RpcError)):
            with pytest.raises(error) as err:  # type: ignore[call-overload]
                await caller.local_participant.perform_rpc(
                    destination_identity="legacy", method="echo", payload=BIG
                )
            assert err.value.code == Code.REQUEST_PAYLOAD_TOO_LARGE
        assert WireTap.kinds(wire.received).count("rpc_request") == 2

        # the legacy peer calls them with v1; the responses are v1 and limited
        for callee in ("ours", "official"):
            lp = legacy.local_participant
            assert await lp.perform_rpc(destination_identity=callee, method="upper", payload="a")
            with pytest.raises(RpcError) as e:
                await lp.perform_rpc(destination_identity=callee, method="huge", payload="")
            assert (e.value.code, e.value.message) == (1504, "Response payload too large")
        kinds = WireTap.kinds(wire.received)
        assert kinds.count("rpc_response") == 4 and "stream_header" not in kinds

        # data streams to it are in the format every client reads: no inline, no deflate
        wire.clear()
        got: list[str] = []

        async def read(reader: rtc.TextStreamReader, identity: str) -> None:
            got.append(await reader.read_all())

        legacy.register_text_stream_handler("chat", read)
        text = "compressible " * 2000
        await ours.local_participant.send_text(text, topic="chat")
        await theirs.local_participant.send_text(text, topic="chat")
        await wait_until(lambda: len(got) == 2, what="both texts")
        assert got == [text, text]
        headers = WireTap.headers(wire.received, "chat")
        assert len(headers) == 2
        assert all(
            h.compression == NO_COMPRESSION and not h.HasField("inline_content") for h in headers
        )
    finally:
        for room in (ours, legacy, theirs):
            if room is not None:
                await room.disconnect()


class Recorder(rtc.RpcInterceptor):
    """Ours: logs both directions, and tags the payloads of outgoing calls."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    async def intercept_outgoing(self, call: rtc.RpcCallInfo, next: Any) -> str:
        self.log.append(("out", call.destination_identity, call.method))
        result: str = await next(dataclasses.replace(call, payload=f"[tagged]{call.payload}"))
        self.log.append(("out done", call.method, len(result)))
        return result

    async def intercept_incoming(self, invocation: RpcInvocationData, next: Any) -> str | None:
        self.log.append(("in", invocation.caller_identity, invocation.method))
        try:
            result: str | None = await next(invocation)
        except asyncio.CancelledError:
            self.log.append(("in cancelled", invocation.method, invocation.cancel_reason))
            raise
        except RpcError as e:
            self.log.append(("in error", invocation.method, e.code))
            raise
        self.log.append(("in done", invocation.method, result))
        return result


class TheirRecorder(official.RpcInterceptor):
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    async def intercept_incoming(
        self, invocation: official.RpcInvocationData, next: Any
    ) -> str | None:
        self.log.append(("in", invocation.caller_identity, invocation.method, invocation.payload))
        result: str | None = await next(invocation)
        return result


async def test_interceptors_with_the_official_sdk(
    rooms: tuple[rtc.Room, official.Room],
) -> None:
    ours, theirs = rooms
    mine, their_side = Recorder(), TheirRecorder()
    ours.local_participant.add_rpc_interceptor(mine)
    theirs.local_participant.add_rpc_interceptor(their_side)

    async def their_echo(data: official.RpcInvocationData) -> str:
        return data.payload

    theirs.local_participant.register_rpc_method("echo", their_echo)

    async def slow(data: RpcInvocationData) -> str:
        await asyncio.sleep(10)
        return "late"

    ours.local_participant.register_rpc_method("upper", lambda data: data.payload.upper())
    ours.local_participant.register_rpc_method("slow", slow)

    # outgoing: the interceptor changed the payload the official handler saw
    out = await ours.local_participant.perform_rpc(
        destination_identity="official", method="echo", payload=HUNDRED_KB
    )
    assert out == f"[tagged]{HUNDRED_KB}"
    assert mine.log == [("out", "official", "echo"), ("out done", "echo", len(out))]
    assert their_side.log == [("in", "ours", "echo", f"[tagged]{HUNDRED_KB}")]

    # incoming: method and caller as the official SDK gives them; errors and the deadline
    mine.log.clear()
    their = theirs.local_participant
    assert await their.perform_rpc(destination_identity="ours", method="upper", payload="x") == "X"
    with pytest.raises(official.RpcError) as err:
        await their.perform_rpc(destination_identity="ours", method="missing", payload="")
    assert err.value.code == Code.UNSUPPORTED_METHOD
    with pytest.raises(official.RpcError) as err:
        await their.perform_rpc(
            destination_identity="ours", method="slow", payload="", response_timeout=1.5
        )
    assert err.value.code == Code.RESPONSE_TIMEOUT
    await wait_until(lambda: len(mine.log) == 6, what="the cancelled chain unwound")
    assert mine.log == [
        ("in", "official", "upper"),
        ("in done", "upper", "X"),
        ("in", "official", "missing"),
        ("in error", "missing", Code.UNSUPPORTED_METHOD),
        ("in", "official", "slow"),
        ("in cancelled", "slow", Code.RESPONSE_TIMEOUT),
    ]

    # removed: later calls go straight through
    ours.local_participant.remove_rpc_interceptor(mine)
    mine.log.clear()
    assert await ours.local_participant.perform_rpc(
        destination_identity="official", method="echo", payload="plain"
    ) == ("plain")
    assert mine.log == []
    assert_no_rpc_leftovers(ours)


async def test_max_round_trip_latency_both_ways(rooms: tuple[rtc.Room, official.Room]) -> None:
    ours, theirs = rooms
    seen: list[float] = []

    async def their_timeout(data: official.RpcInvocationData) -> str:
        seen.append(data.response_timeout)
        return "ok"

    theirs.local_participant.register_rpc_method("t", their_timeout)
    ours.local_participant.register_rpc_method("t", lambda d: seen.append(d.response_timeout))
    # the handler's time is the response timeout less the round trip allowance
    for caller, callee in ((ours, "official"), (theirs, "ours")):
        await caller.local_participant.perform_rpc(
            destination_identity=callee,
            method="t",
            payload="",
            response_timeout=10,
            max_round_trip_latency=2.5,
        )
    assert seen == [pytest.approx(7.5), pytest.approx(7.5)]
    # nobody acknowledges a call to an absent participant within the allowance
    for caller, error in ((ours, RpcError), (theirs, official.RpcError)):
        with pytest.raises(error) as err:  # type: ignore[call-overload]
            await caller.local_participant.perform_rpc(
                destination_identity="nobody", method="t", payload="", max_round_trip_latency=0.3
            )
        assert err.value.code == Code.CONNECTION_TIMEOUT
    assert_no_rpc_leftovers(ours)
