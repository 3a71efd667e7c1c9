"""RpcManager without a server: peers with fake DataPorts joined by an in-memory "network"."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.protocol import models as proto_models

from livekit_py.rtc.rpc import RpcError, RpcInvocationData
from livekit_py.session import rpc
from livekit_py.session.rpc import RpcManager
from tests.unit.fake_data_port import FakeDataPort

Code = RpcError.ErrorCode


# -- fakes ------------------------------------------------------------------------------


class Peer:
    """One participant: an RpcManager sending through a fake DataPort."""

    def __init__(
        self, identity: str, network: Network | None = None, server_version: str = "1.9.0"
    ) -> None:
        self.identity = identity
        self.port = FakeDataPort(identity, server_version=server_version)
        self.manager = RpcManager(self.port)
        if network is not None:
            network.peers[identity] = self
            self.port.deliver = lambda packet: network.deliver(identity, packet)

    def sent(self, which: str) -> list[Any]:
        return [getattr(p, which) for p in self.port.sent if p.WhichOneof("value") == which]


class Network:
    """Delivers packets to their destination on the next loop iteration, like a server."""

    def __init__(self) -> None:
        self.peers: dict[str, Peer] = {}
        self.muted: set[str] = set()  # identities whose packets are lost

    def deliver(self, sender: str, packet: proto_models.DataPacket) -> None:
        if sender in self.muted:
            return
        packet.participant_identity = sender
        loop = asyncio.get_running_loop()
        for identity in packet.destination_identities:
            peer = self.peers.get(identity)
            if peer is not None:
                loop.call_soon(peer.manager.handle_packet, packet)

    def leave(self, identity: str) -> None:
        peer = self.peers.pop(identity)
        peer.port.connected = False
        for other in self.peers.values():
            other.manager.on_participant_left(identity)


def request_packet(
    caller: str = "caller",
    *,
    request_id: str = "req-1",
    method: str = "echo",
    payload: str = "hi",
    timeout_ms: int = 5000,
    version: int = 1,
) -> proto_models.DataPacket:
    return proto_models.DataPacket(
        participant_identity=caller,
        rpc_request=proto_models.RpcRequest(
            id=request_id,
            method=method,
            payload=payload,
            response_timeout_ms=timeout_ms,
            version=version,
        ),
    )


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def wait_for_response(room: Peer, count: int = 1) -> list[proto_models.RpcResponse]:
    for _ in range(500):
        responses = room.sent("rpc_response")
        if len(responses) >= count:
            return responses
        await asyncio.sleep(0.005)
    raise AssertionError(f"no response sent; sent {room.port.sent}")


async def assert_clean(*rooms: Peer) -> None:
    """No pending call, task or timer is left behind."""
    await settle()
    for room in rooms:
        assert room.manager.pending_calls == ()
        assert room.manager.running_tasks == 0
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []
    scheduled = getattr(asyncio.get_running_loop(), "_scheduled", [])
    assert [h for h in scheduled if not h.cancelled()] == []


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def pair(network: Network) -> tuple[Peer, Peer]:
    return Peer("alice", network), Peer("bob", network)


@pytest.fixture
def fast_ack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(rpc, "ACK_TIMEOUT", 0.05)
    yield


# -- RpcError and RpcInvocationData ------------------------------------------------------


def test_error_codes_and_messages_match_the_protocol() -> None:
    assert {c.name: int(c) for c in Code} == {
        "APPLICATION_ERROR": 1500,
        "CONNECTION_TIMEOUT": 1501,
        "RESPONSE_TIMEOUT": 1502,
        "RECIPIENT_DISCONNECTED": 1503,
        "RESPONSE_PAYLOAD_TOO_LARGE": 1504,
        "SEND_FAILED": 1505,
        "UNSUPPORTED_METHOD": 1400,
        "RECIPIENT_NOT_FOUND": 1401,
        "REQUEST_PAYLOAD_TOO_LARGE": 1402,
        "UNSUPPORTED_SERVER": 1403,
        "UNSUPPORTED_VERSION": 1404,
    }
    assert RpcError.ErrorMessage == {
        Code.APPLICATION_ERROR: "Application error in method handler",
        Code.CONNECTION_TIMEOUT: "Connection timeout",
        Code.RESPONSE_TIMEOUT: "Response timeout",
        Code.RECIPIENT_DISCONNECTED: "Recipient disconnected",
        Code.RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
        Code.SEND_FAILED: "Failed to send",
        Code.UNSUPPORTED_METHOD: "Method not supported at destination",
        Code.RECIPIENT_NOT_FOUND: "Recipient not found",
        Code.REQUEST_PAYLOAD_TOO_LARGE: "Request payload too large",
        Code.UNSUPPORTED_SERVER: "RPC not supported by server",
        Code.UNSUPPORTED_VERSION: "Unsupported RPC version",
    }


def test_rpc_error_fields_and_built_ins() -> None:
    e = RpcError(42, "custom", '{"x": 1}')
    assert isinstance(e, Exception)
    assert (e.code, e.message, e.data, str(e)) == (42, "custom", '{"x": 1}', "custom")
    assert RpcError(7, "m").data is None
    assert "42" in repr(e) and "custom" in repr(e)

    b = RpcError._built_in(Code.RESPONSE_TIMEOUT)
    assert (b.code, b.message, b.data) == (1502, "Response timeout", None)
    assert RpcError._built_in(Code.SEND_FAILED, "why").data == "why"


def test_rpc_error_copies_and_pickles() -> None:
    import copy
    import pickle

    for e in (RpcError(2001, "m", "d"), RpcError._built_in(Code.SEND_FAILED)):
        for clone in (copy.copy(e), pickle.loads(pickle.dumps(e))):
            assert type(clone) is RpcError
            assert (clone.code, clone.message, clone.data) == (e.code, e.message, e.data)


def test_rpc_error_proto_round_trip_and_limits() -> None:
    e = RpcError(2001, "boom", "details")
    proto = e._to_proto()
    assert isinstance(proto, proto_models.RpcError)
    assert (proto.code, proto.message, proto.data) == (2001, "boom", "details")
    back = RpcError._from_proto(proto)
    assert (back.code, back.message, back.data) == (2001, "boom", "details")
    # no data on the wire is None here
    assert RpcError._from_proto(RpcError(1, "x")._to_proto()).data is None

    # message (256 bytes) and data (15 KiB) are cut on character boundaries
    long = RpcError(1, "é" * 200, "ü" * 10000)._to_proto()
    assert len(long.message.encode()) <= 256 and long.message == "é" * 128
    assert len(long.data.encode()) <= 15360 and set(long.data) == {"ü"}
    # a code that does not fit the wire becomes an application error
    assert RpcError(-5, "neg")._to_proto().code == 1500
    assert RpcError(2**40, "big")._to_proto().code == 1500


def test_invocation_data_fields() -> None:
    data = RpcInvocationData("id", "caller", "payload", 1.5)
    assert (data.request_id, data.caller_identity, data.payload, data.response_timeout) == (
        "id",
        "caller",
        "payload",
        1.5,
    )
    assert (data.method, data.cancel_reason) == ("", None)
    # the official order: the four positional fields, then the two added in 1.2
    assert list(RpcInvocationData.__dataclass_fields__) == [
        "request_id",
        "caller_identity",
        "payload",
        "response_timeout",
        "method",
        "cancel_reason",
    ]


def test_protocol_constants() -> None:
    assert rpc.MAX_PAYLOAD_BYTES == 15360
    assert rpc.ACK_TIMEOUT == 7.0
    assert rpc.DEFAULT_RESPONSE_TIMEOUT == 15.0
    assert rpc.MIN_HANDLER_TIMEOUT == 1.0
    assert rpc.RPC_VERSION == 1
    assert rpc.MIN_SERVER_VERSION == (1, 8, 0)


def test_handler_timeout_written_into_requests() -> None:
    # the callee gets the caller's timeout minus the ack allowance, at least a second
    assert rpc._handler_timeout_ms(15.0) == 8000
    assert rpc._handler_timeout_ms(0.001) == 1000
    assert rpc._handler_timeout_ms(60) == 53000
    assert rpc._handler_timeout_ms(math.inf) == 2**32 - 1
    assert rpc._handler_timeout_ms(1e12) == 2**32 - 1


def test_server_version_parsing() -> None:
    assert rpc._parse_version("1.8.0") == (1, 8, 0)
    assert rpc._parse_version("v1.9") == (1, 9, 0)
    assert rpc._parse_version("1.10.2-rc1") == (1, 10, 2)
    assert rpc._parse_version("") is None
    assert rpc._parse_version("dev") is None


# -- calls between two managers ----------------------------------------------------------


async def test_round_trip_async_and_sync_handlers(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    seen: list[RpcInvocationData] = []

    @bob.manager.register_rpc_method("greet")
    async def greet(data: RpcInvocationData) -> str:
        seen.append(data)
        await asyncio.sleep(0.01)
        return f"hello {data.caller_identity}: {data.payload}"

    def upper(data: RpcInvocationData) -> str:
        return data.payload.upper()

    assert bob.manager.register_rpc_method("upper", upper) is upper
    bob.manager.register_rpc_method("nothing", lambda data: None)

    out = await alice.manager.perform_rpc(
        destination_identity="bob", method="greet", payload="héllo"
    )
    assert out == "hello alice: héllo"
    (data,) = seen
    assert data.caller_identity == "alice" and data.payload == "héllo"
    assert data.response_timeout == 8.0  # default 15 s minus the 7 s ack allowance
    assert data.request_id == alice.sent("rpc_request")[0].id
    assert await alice.manager.perform_rpc(
        destination_identity="bob", method="upper", payload="abc", response_timeout=20
    ) == ("ABC")
    assert bob.sent("rpc_ack")  # acks went out
    assert await alice.manager.perform_rpc(
        destination_identity="bob", method="nothing", payload=""
    ) == ("")

    # what went on the wire
    req = alice.sent("rpc_request")[1]
    assert req.method == "upper" and req.payload == "abc" and req.version == 1
    assert req.response_timeout_ms == 13000
    first = alice.port.sent[0]
    assert list(first.destination_identities) == ["bob"]
    assert set(alice.port.kinds) == {proto_models.DataPacket.Kind.RELIABLE}
    await assert_clean(alice, bob)


async def test_ack_precedes_response_and_handler(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    sent_when_running: list[list[str | None]] = []

    async def handler(data: RpcInvocationData) -> str:
        sent_when_running.append([p.WhichOneof("value") for p in bob.port.sent])
        return "ok"

    bob.manager.register_rpc_method("m", handler)
    assert await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert sent_when_running == [["rpc_ack"]]
    assert [p.WhichOneof("value") for p in bob.port.sent] == ["rpc_ack", "rpc_response"]
    await assert_clean(alice, bob)


async def test_unknown_and_unregistered_methods(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="nope", payload="x")
    assert err.value.code == Code.UNSUPPORTED_METHOD
    assert err.value.message == "Method not supported at destination"

    bob.manager.register_rpc_method("m", lambda d: "ok")
    assert await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    bob.manager.unregister_rpc_method("m")
    bob.manager.unregister_rpc_method("never-registered")  # no error
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert err.value.code == 1400
    await assert_clean(alice, bob)


async def test_handler_errors(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    async def custom(data: RpcInvocationData) -> str:
        raise RpcError(2042, "custom failure", '{"why": "because"}')

    async def crash(data: RpcInvocationData) -> str:
        raise ValueError("bug in handler")

    def sync_crash(data: RpcInvocationData) -> str:
        raise KeyError("sync bug")

    async def wrong_type(data: RpcInvocationData) -> Any:
        return 42

    async def own_timeout(data: RpcInvocationData) -> str:
        raise asyncio.TimeoutError  # not the response deadline

    async def self_cancel(data: RpcInvocationData) -> str:
        raise asyncio.CancelledError

    async def builtin(data: RpcInvocationData) -> str:
        raise RpcError._built_in(Code.RECIPIENT_NOT_FOUND, "x")

    for name, handler in [
        ("custom", custom),
        ("crash", crash),
        ("sync_crash", sync_crash),
        ("wrong_type", wrong_type),
        ("own_timeout", own_timeout),
        ("self_cancel", self_cancel),
        ("builtin", builtin),
    ]:
        bob.manager.register_rpc_method(name, handler)

    async def call(method: str) -> RpcError:
        with pytest.raises(RpcError) as err:
            await alice.manager.perform_rpc(destination_identity="bob", method=method, payload="")
        return err.value

    e = await call("custom")
    assert (e.code, e.message, e.data) == (2042, "custom failure", '{"why": "because"}')
    for method in ("crash", "sync_crash", "wrong_type", "own_timeout", "self_cancel"):
        e = await call(method)
        assert (e.code, e.message, e.data) == (1500, "Application error in method handler", None)
    e = await call("builtin")
    assert (e.code, e.message, e.data) == (1401, "Recipient not found", "x")
    await assert_clean(alice, bob)


async def test_payload_limits(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    bob.manager.register_rpc_method("echo", lambda d: d.payload)
    bob.manager.register_rpc_method("grow", lambda d: d.payload + "x")

    exactly = "a" * 15360
    assert await alice.manager.perform_rpc(
        destination_identity="bob", method="echo", payload=exactly
    ) == (exactly)

    sent_before = len(alice.port.sent)
    # 7681 two-byte characters are 15362 bytes: too large though only 7681 characters
    for too_big in ("a" * 15361, "é" * 7681):
        with pytest.raises(RpcError) as err:
            await alice.manager.perform_rpc(
                destination_identity="bob", method="echo", payload=too_big
            )
        assert err.value.code == Code.REQUEST_PAYLOAD_TOO_LARGE
        assert err.value.message == "Request payload too large"
    assert len(alice.port.sent) == sent_before  # rejected before sending

    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="grow", payload=exactly)
    assert err.value.code == Code.RESPONSE_PAYLOAD_TOO_LARGE
    assert err.value.message == "Response payload too large"
    await assert_clean(alice, bob)


async def test_no_ack_is_a_connection_timeout(
    network: Network, pair: tuple[Peer, Peer], fast_ack: None
) -> None:
    alice, bob = pair
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="carol", method="m", payload="")
    assert err.value.code == Code.CONNECTION_TIMEOUT
    assert err.value.message == "Connection timeout"

    network.muted.add("bob")  # bob's packets are lost
    bob.manager.register_rpc_method("m", lambda d: "ok")
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert err.value.code == 1501
    await assert_clean(alice, bob)


async def test_response_timeout_and_callee_deadline(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    cancelled = asyncio.Event()

    async def slow(data: RpcInvocationData) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    bob.manager.register_rpc_method("slow", slow)
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(
            destination_identity="bob", method="slow", payload="", response_timeout=0.05
        )
    assert err.value.code == Code.RESPONSE_TIMEOUT
    assert err.value.message == "Response timeout"
    # the callee still runs its handler (1 s minimum); stop it by disconnecting
    assert bob.manager.running_tasks
    await bob.manager.on_disconnected()
    assert cancelled.is_set()
    await assert_clean(alice, bob)


async def test_callee_cancels_a_handler_past_its_deadline() -> None:
    room = Peer("callee")
    cancelled = asyncio.Event()

    async def slow(data: RpcInvocationData) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    room.manager.register_rpc_method("slow", slow)
    room.manager.handle_packet(request_packet(method="slow", timeout_ms=30))
    (response,) = await wait_for_response(room)
    assert response.request_id == "req-1"
    assert response.error.code == Code.RESPONSE_TIMEOUT
    assert response.error.message == "Response timeout"
    await settle()
    assert cancelled.is_set()
    ack, resp = room.port.sent
    assert ack.rpc_ack.request_id == "req-1" and list(ack.destination_identities) == ["caller"]
    assert list(resp.destination_identities) == ["caller"]
    assert ack.participant_identity == "callee"
    await assert_clean(room)


async def test_very_short_timeouts(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    async def quick(data: RpcInvocationData) -> str:
        await asyncio.sleep(0.01)
        return "ok"

    bob.manager.register_rpc_method("quick", quick)
    for timeout in (0.001, 0, 1e-9):
        with pytest.raises(RpcError) as err:
            await alice.manager.perform_rpc(
                destination_identity="bob", method="quick", payload="", response_timeout=timeout
            )
        assert err.value.code == Code.RESPONSE_TIMEOUT
    assert all(r.response_timeout_ms == 1000 for r in alice.sent("rpc_request"))
    # late responses are ignored without trouble
    await asyncio.sleep(0.05)
    assert len(bob.sent("rpc_response")) == 3
    await assert_clean(alice, bob)


async def test_recipient_leaving_mid_call(network: Network, pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    started = asyncio.Event()

    async def hang(data: RpcInvocationData) -> str:
        started.set()
        await asyncio.sleep(30)
        return ""

    bob.manager.register_rpc_method("hang", hang)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(destination_identity="bob", method="hang", payload="")
    )
    await started.wait()
    network.leave("bob")
    with pytest.raises(RpcError) as err:
        await call
    assert err.value.code == Code.RECIPIENT_DISCONNECTED
    assert err.value.message == "Recipient disconnected"
    await bob.manager.on_disconnected()
    await assert_clean(alice, bob)


async def test_recipient_leaving_before_the_ack(network: Network) -> None:
    alice = Peer("alice", network)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(destination_identity="ghost", method="m", payload="")
    )
    await settle()
    alice.manager.on_participant_left("someone-else")
    await settle()
    assert not call.done()
    alice.manager.on_participant_left("ghost")
    with pytest.raises(RpcError) as err:
        await call
    assert err.value.code == Code.RECIPIENT_DISCONNECTED
    await assert_clean(alice)


async def test_disconnect_fails_calls_and_stops_handlers(
    pair: tuple[Peer, Peer],
) -> None:
    alice, bob = pair
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def hang(data: RpcInvocationData) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.set()
        return ""

    bob.manager.register_rpc_method("hang", hang)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(destination_identity="bob", method="hang", payload="")
    )
    await started.wait()
    alice.port.connected = False
    await alice.manager.on_disconnected()
    with pytest.raises(RpcError) as err:
        await call
    assert err.value.code == Code.RECIPIENT_DISCONNECTED

    bob.port.connected = False
    await bob.manager.on_disconnected()
    assert stopped.is_set()
    assert bob.sent("rpc_response") == []  # nothing could be sent
    # handlers stay registered for the next connection
    assert "hang" in bob.manager.registered_methods
    await assert_clean(alice, bob)


async def test_disconnect_does_not_wait_forever_for_a_stubborn_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rpc, "HANDLER_UNWIND_TIMEOUT", 0.05)
    room = Peer("callee")
    release = asyncio.Event()

    async def stubborn(data: RpcInvocationData) -> str:
        while True:
            try:
                await release.wait()
                return "done"
            except asyncio.CancelledError:
                continue  # ignores cancellation

    room.manager.register_rpc_method("stubborn", stubborn)
    room.manager.handle_packet(request_packet(method="stubborn"))
    await settle()
    await asyncio.wait_for(room.manager.on_disconnected(), 1.0)
    release.set()
    await settle(10)
    await assert_clean(room)


async def test_send_failure(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    alice.port.connected = False
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert err.value.code == Code.SEND_FAILED
    assert err.value.message == "Failed to send"
    assert err.value.data == "the room is not connected"

    alice.port.connected = True
    alice.port.fail = ConnectionError("the data channel is not open")
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert err.value.code == 1505 and err.value.data == "the data channel is not open"
    await assert_clean(alice, bob)


async def test_unsupported_server(network: Network) -> None:
    for version, supported in [
        ("1.7.2", False),
        ("0.15.0", False),
        ("1.8.0", True),
        ("1.9.11", True),
        ("", True),
        ("unknown", True),
    ]:
        network.peers.clear()
        alice = Peer("alice", network, server_version=version)
        bob = Peer("bob", network)
        bob.manager.register_rpc_method("m", lambda d: "ok")
        if supported:
            assert (
                await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
                == "ok"
            )
        else:
            with pytest.raises(RpcError) as err:
                await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
            assert err.value.code == Code.UNSUPPORTED_SERVER
            assert err.value.message == "RPC not supported by server"
            assert alice.port.sent == []
        await assert_clean(alice, bob)


async def test_request_of_another_version_is_refused() -> None:
    room = Peer("callee")
    called = []
    room.manager.register_rpc_method("echo", lambda d: called.append(d) or "x")
    room.manager.handle_packet(request_packet(version=2))
    (response,) = await wait_for_response(room)
    assert response.error.code == Code.UNSUPPORTED_VERSION
    assert response.error.message == "Unsupported RPC version"
    assert room.sent("rpc_ack")[0].request_id == "req-1"  # still acknowledged
    assert called == []

    # a compressed payload (never sent to us: we do not advertise it) is refused too
    packet = request_packet(request_id="req-2", payload="")
    packet.rpc_request.compressed_payload = b"\x28\xb5\x2f\xfd"
    room.manager.handle_packet(packet)
    responses = await wait_for_response(room, 2)
    assert responses[1].error.code == Code.UNSUPPORTED_VERSION
    await assert_clean(room)


async def test_incoming_request_details() -> None:
    room = Peer("callee")
    seen: list[RpcInvocationData] = []

    async def echo(data: RpcInvocationData) -> str:
        seen.append(data)
        return data.payload

    room.manager.register_rpc_method("echo", echo)
    room.manager.handle_packet(request_packet(timeout_ms=2500, payload="p"))
    room.manager.handle_packet(request_packet(request_id="req-0", timeout_ms=0))
    responses = await wait_for_response(room, 2)
    assert {r.request_id: r.payload for r in responses} == {"req-1": "p", "req-0": "hi"}
    by_id = {d.request_id: d for d in seen}
    assert by_id["req-1"] == RpcInvocationData("req-1", "caller", "p", 2.5, method="echo")
    assert by_id["req-0"].response_timeout == 15.0  # unset: the default

    # a request without a caller cannot be answered: dropped
    room.manager.handle_packet(request_packet(caller=""))
    await settle()
    assert len(room.port.sent) == 4
    await assert_clean(room)


async def test_stray_and_malformed_packets_are_harmless(
    pair: tuple[Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair
    m = alice.manager
    m.handle_packet(
        proto_models.DataPacket(
            participant_identity="bob", rpc_ack=proto_models.RpcAck(request_id="unknown")
        )
    )
    m.handle_packet(
        proto_models.DataPacket(
            participant_identity="bob",
            rpc_response=proto_models.RpcResponse(request_id="unknown", payload="x"),
        )
    )
    m.handle_packet(proto_models.DataPacket(user=proto_models.UserPacket(payload=b"x")))
    m.handle_packet(None)  # type: ignore[arg-type]
    assert "could not process" in caplog.text

    # acks and responses only count from the participant that was called
    bob.manager.register_rpc_method("m", lambda d: "real")
    call = asyncio.ensure_future(m.perform_rpc(destination_identity="bob", method="m", payload=""))
    await asyncio.sleep(0)
    (request_id,) = m.pending_calls
    m.handle_packet(
        proto_models.DataPacket(
            participant_identity="mallory",
            rpc_response=proto_models.RpcResponse(request_id=request_id, payload="fake"),
        )
    )
    assert await call == "real"
    await assert_clean(alice, bob)


async def test_response_may_arrive_without_ack() -> None:
    room = Peer("alice")
    call = asyncio.ensure_future(
        room.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    )
    await settle()
    (request,) = room.sent("rpc_request")
    room.manager.handle_packet(
        proto_models.DataPacket(
            participant_identity="bob",
            rpc_response=proto_models.RpcResponse(
                request_id=request.id, error=proto_models.RpcError(code=3000, message="no")
            ),
        )
    )
    with pytest.raises(RpcError) as err:
        await call
    assert (err.value.code, err.value.message, err.value.data) == (3000, "no", None)
    await assert_clean(room)


async def test_cancelled_caller_leaves_nothing_behind(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    async def slow(data: RpcInvocationData) -> str:
        await asyncio.sleep(0.2)
        return "late"

    bob.manager.register_rpc_method("slow", slow)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(
            alice.manager.perform_rpc(destination_identity="bob", method="slow", payload=""),
            0.02,
        )
    assert alice.manager.pending_calls == ()
    await asyncio.sleep(0.25)  # bob answers into the void
    await assert_clean(alice, bob)


async def test_concurrent_calls_both_ways(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    async def double(data: RpcInvocationData) -> str:
        await asyncio.sleep(0.01 * (int(data.payload) % 3))
        return str(int(data.payload) * 2)

    alice.manager.register_rpc_method("double", double)
    bob.manager.register_rpc_method("double", double)
    calls = [
        caller.manager.perform_rpc(destination_identity=callee, method="double", payload=str(i))
        for i in range(20)
        for caller, callee in ((alice, "bob"), (bob, "alice"))
    ]
    results = await asyncio.gather(*calls)
    assert results == [str(i * 2) for i in range(20) for _ in range(2)]
    assert len({r.id for r in alice.sent("rpc_request")}) == 20
    await assert_clean(alice, bob)


async def test_bad_arguments(pair: tuple[Peer, Peer]) -> None:
    alice, _ = pair
    m = alice.manager
    good: dict[str, Any] = {"destination_identity": "bob", "method": "m", "payload": ""}
    bad_args: list[dict[str, Any]] = [
        {"destination_identity": 1},
        {"destination_identity": None},
        {"destination_identity": ""},
        {"method": None},
        {"method": b"m"},
        {"payload": b"bytes"},
        {"payload": 12},
        {"payload": "\ud800"},  # lone surrogate: not encodable
        {"method": "m\udfff"},
        {"destination_identity": "\ud800bob"},
        {"response_timeout": -1},
        {"response_timeout": -0.001},
        {"response_timeout": math.nan},
        {"response_timeout": "5"},
        {"response_timeout": True},
    ]
    for override in bad_args:
        with pytest.raises(ValueError):
            await m.perform_rpc(**{**good, **override})
    with pytest.raises(ValueError):
        m.register_rpc_method(1, lambda d: "")  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        m.register_rpc_method("m", "not callable")  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        m.register_rpc_method("m")("not callable")  # type: ignore[type-var]
    with pytest.raises(ValueError):
        m.unregister_rpc_method(None)  # type: ignore[arg-type]
    assert alice.port.sent == []
    await assert_clean(alice)


async def test_decorator_returns_the_function(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    @bob.manager.register_rpc_method("a")
    async def a(data: RpcInvocationData) -> str:
        return "A"

    assert asyncio.iscoroutinefunction(a)
    # registering again replaces the handler
    bob.manager.register_rpc_method("a", lambda d: "B")
    assert await alice.manager.perform_rpc(destination_identity="bob", method="a", payload="")
    assert bob.sent("rpc_response")[0].payload == "B"
    await assert_clean(alice, bob)


async def test_requests_go_through_the_port_as_its_identity(fast_ack: None) -> None:
    peer = Peer("alice")  # no network: nobody answers
    with pytest.raises(RpcError) as err:
        await peer.manager.perform_rpc(destination_identity="bob", method="m", payload="p")
    assert err.value.code == Code.CONNECTION_TIMEOUT
    (packet,) = peer.port.sent
    assert packet.participant_identity == "alice"
    assert list(packet.destination_identities) == ["bob"]
    assert packet.kind == proto_models.DataPacket.Kind.RELIABLE
    assert peer.port.kinds == [proto_models.DataPacket.Kind.RELIABLE]
    assert packet.rpc_request.method == "m" and packet.rpc_request.payload == "p"
    await assert_clean(peer)
