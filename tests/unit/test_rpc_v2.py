"""RPC version 2 (over data streams) and interceptors, without a server: RpcManagers
over StreamManagers and fake DataPorts joined by an in-memory "network"."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from typing import Any

import pytest
from livekit.protocol import models as proto_models

from livekit_py.rtc.rpc import (
    RpcCallInfo,
    RpcError,
    RpcInterceptor,
    RpcInvocationData,
    _chain_incoming,
    _chain_outgoing,
)
from livekit_py.session import rpc
from livekit_py.session.rpc import RpcManager
from livekit_py.session.stream_manager import StreamManager
from livekit_py.signal.client_protocol import (
    CAP_COMPRESSION_DEFLATE_RAW,
    CLIENT_PROTOCOL_DATA_STREAM_RPC,
    CLIENT_PROTOCOL_DATA_STREAM_V2,
    CLIENT_PROTOCOL_DEFAULT,
)
from tests.unit.fake_data_port import FakeDataPort, FakePeers

Code = RpcError.ErrorCode
DS = proto_models.DataStream
_RNG = random.Random(1)
BIG = "".join(_RNG.choice("abcé€\N{GRINNING FACE}") for _ in range(60_000))


class Peer:
    """One participant: an RpcManager riding on a StreamManager, as the room makes them
    (a client of protocol 0 gets an RpcManager of version 1 only, as an old SDK)."""

    def __init__(self, identity: str, network: Network, client_protocol: int) -> None:
        self.identity = identity
        self.client_protocol = client_protocol
        self.port = FakeDataPort(identity)
        self.peers = FakePeers()
        self.streams = StreamManager(self.port, peers=self.peers)
        if client_protocol == CLIENT_PROTOCOL_DEFAULT:
            self.manager = RpcManager(self.port)
        else:
            self.manager = RpcManager(self.port, streams=self.streams, peers=self.peers)
        self.received: list[proto_models.DataPacket] = []
        network.join(self)

    def dispatch(self, packet: proto_models.DataPacket) -> None:
        self.received.append(packet)
        which = packet.WhichOneof("value") or ""
        if which.startswith("rpc_"):
            self.manager.handle_packet(packet)
        elif which.startswith("stream_"):
            self.streams.handle_packet(packet)

    def sent(self, which: str) -> list[Any]:
        return [getattr(p, which) for p in self.port.sent if p.WhichOneof("value") == which]

    def sent_headers(self) -> list[proto_models.DataStream.Header]:
        return self.sent("stream_header")


class Network:
    """Delivers packets to their destinations on the next loop iteration, like a server,
    and tells each peer what the others advertise."""

    def __init__(self) -> None:
        self.peers: dict[str, Peer] = {}

    def join(self, peer: Peer) -> None:
        for other in self.peers.values():
            other.peers.add(peer.identity, peer.client_protocol, CAP_COMPRESSION_DEFLATE_RAW)
            peer.peers.add(other.identity, other.client_protocol, CAP_COMPRESSION_DEFLATE_RAW)
        self.peers[peer.identity] = peer
        peer.port.deliver = lambda packet: self.deliver(peer.identity, packet)

    def deliver(self, sender: str, packet: proto_models.DataPacket) -> None:
        packet.participant_identity = sender
        loop = asyncio.get_running_loop()
        for identity in packet.destination_identities:
            peer = self.peers.get(identity)
            if peer is not None:
                loop.call_soon(peer.dispatch, packet)


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def assert_clean(*peers: Peer) -> None:
    await settle()
    for peer in peers:
        assert peer.manager.pending_calls == ()
        assert peer.manager.running_tasks == 0
        assert peer.streams.receiver.open_streams == ()
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def pair(network: Network) -> tuple[Peer, Peer]:
    """Two clients that both speak RPC v2 and data streams v2."""
    return (
        Peer("alice", network, CLIENT_PROTOCOL_DATA_STREAM_V2),
        Peer("bob", network, CLIENT_PROTOCOL_DATA_STREAM_V2),
    )


# -- version 2 -------------------------------------------------------------------------


async def test_protocol_names_are_the_official_ones() -> None:
    assert (rpc.RPC_REQUEST_TOPIC, rpc.RPC_RESPONSE_TOPIC) == ("lk.rpc_request", "lk.rpc_response")
    assert (rpc.ATTR_REQUEST_ID, rpc.ATTR_METHOD) == ("lk.rpc_request_id", "lk.rpc_request_method")
    assert rpc.ATTR_RESPONSE_TIMEOUT_MS == "lk.rpc_request_response_timeout_ms"
    assert rpc.ATTR_VERSION == "lk.rpc_request_version"
    assert (rpc.RPC_VERSION, rpc.RPC_VERSION_V2) == (1, 2)
    assert rpc.MAX_V1_PAYLOAD_BYTES == 15_360


async def test_v2_round_trip_with_large_payloads(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    seen: list[RpcInvocationData] = []

    @bob.manager.register_rpc_method("reverse")
    async def reverse(data: RpcInvocationData) -> str:
        seen.append(data)
        return data.payload[::-1]

    out = await alice.manager.perform_rpc(destination_identity="bob", method="reverse", payload=BIG)
    assert out == BIG[::-1]
    assert len(BIG.encode()) > 100_000
    (data,) = seen
    assert (data.caller_identity, data.payload, data.method) == ("alice", BIG, "reverse")
    assert data.response_timeout == 8.0  # 15 s less the 7 s round trip allowance

    # on the wire: a request stream, a v1 ack, a response stream; no RpcRequest/RpcResponse
    assert alice.sent("rpc_request") == [] and bob.sent("rpc_response") == []
    (request,) = alice.sent_headers()
    assert request.topic == "lk.rpc_request"
    assert dict(request.attributes) == {
        "lk.rpc_request_id": data.request_id,
        "lk.rpc_request_method": "reverse",
        "lk.rpc_request_response_timeout_ms": "8000",
        "lk.rpc_request_version": "2",
    }
    assert request.compression == DS.DEFLATE_RAW  # both sides advertise deflate
    (ack,) = bob.sent("rpc_ack")
    assert ack.request_id == data.request_id
    (response,) = bob.sent_headers()
    assert response.topic == "lk.rpc_response"
    assert dict(response.attributes) == {"lk.rpc_request_id": data.request_id}
    for peer, other in ((alice, "bob"), (bob, "alice")):
        assert {tuple(p.destination_identities) for p in peer.port.sent} == {(other,)}
    await assert_clean(alice, bob)


async def test_v2_short_payloads_are_single_packets(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    bob.manager.register_rpc_method("echo", lambda data: data.payload)
    for payload in ("", "hi"):
        out = await alice.manager.perform_rpc(
            destination_identity="bob", method="echo", payload=payload
        )
        assert out == payload
    # a whole request or response is its header (inline), no chunk or trailer
    assert {p.WhichOneof("value") for p in alice.port.sent} == {"stream_header"}
    assert {p.WhichOneof("value") for p in bob.port.sent} == {"stream_header", "rpc_ack"}
    assert [h.inline_content for h in bob.sent_headers()] == [b"", b"hi"]
    await assert_clean(alice, bob)


async def test_v2_errors_are_v1_responses(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    async def fail(data: RpcInvocationData) -> str:
        raise RpcError(4001, "nope", "why")

    async def crash(data: RpcInvocationData) -> str:
        raise ValueError("bug")

    bob.manager.register_rpc_method("fail", fail)
    bob.manager.register_rpc_method("crash", crash)
    bob.manager.register_rpc_method("huge", lambda data: BIG)

    async def error(method: str, **kw: Any) -> RpcError:
        with pytest.raises(RpcError) as err:
            await alice.manager.perform_rpc(destination_identity="bob", method=method, **kw)
        return err.value

    e = await error("fail", payload=BIG)
    assert (e.code, e.message, e.data) == (4001, "nope", "why")
    assert (await error("crash", payload="")).code == Code.APPLICATION_ERROR
    assert (await error("missing", payload="")).code == Code.UNSUPPORTED_METHOD
    # every error went back as an RpcResponse packet, no response stream
    assert [r.error.code for r in bob.sent("rpc_response")] == [4001, 1500, 1400]
    assert bob.sent_headers() == []
    # a large response has no limit over v2
    assert await alice.manager.perform_rpc(destination_identity="bob", method="huge", payload="")
    assert bob.sent_headers()[0].topic == "lk.rpc_response"
    await assert_clean(alice, bob)


async def test_v2_deadline(pair: tuple[Peer, Peer]) -> None:
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
    # the handler gets the 1 s minimum; the caller stops listening before that
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(
            destination_identity="bob", method="slow", payload="x", response_timeout=0.05
        )
    assert err.value.code == Code.RESPONSE_TIMEOUT
    assert alice.sent_headers()[0].attributes["lk.rpc_request_response_timeout_ms"] == "1000"
    # the callee answers RESPONSE_TIMEOUT itself once its deadline passes
    for _ in range(400):
        if bob.sent("rpc_response"):
            break
        await asyncio.sleep(0.01)
    (late,) = bob.sent("rpc_response")
    assert late.error.code == Code.RESPONSE_TIMEOUT
    assert cancelled.is_set()
    await assert_clean(alice, bob)


async def test_v1_toward_a_peer_without_client_protocol(network: Network) -> None:
    alice = Peer("alice", network, CLIENT_PROTOCOL_DATA_STREAM_V2)
    old = Peer("old", network, CLIENT_PROTOCOL_DEFAULT)
    old.manager.register_rpc_method("echo", lambda data: data.payload)
    alice.manager.register_rpc_method("huge", lambda data: BIG)

    assert await alice.manager.perform_rpc(destination_identity="old", method="echo", payload="a")
    (request,) = alice.sent("rpc_request")
    assert (request.method, request.payload, request.version) == ("echo", "a", 1)
    assert alice.sent_headers() == [] and old.sent_headers() == []
    # the 15 KiB limit stays, for the request (locally) and the response (remotely)
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(
            destination_identity="old", method="echo", payload="x" * 15_361
        )
    assert err.value.code == Code.REQUEST_PAYLOAD_TOO_LARGE
    assert await alice.manager.perform_rpc(
        destination_identity="old", method="echo", payload="x" * 15_360
    )
    with pytest.raises(RpcError) as err:
        await old.manager.perform_rpc(destination_identity="alice", method="huge", payload="")
    assert err.value.code == Code.RESPONSE_PAYLOAD_TOO_LARGE
    # the old peer called us with a v1 request: it got a v1 response
    assert alice.sent_headers() == []
    await assert_clean(alice, old)


@pytest.mark.parametrize("client_protocol", [CLIENT_PROTOCOL_DATA_STREAM_RPC])
async def test_v2_toward_client_protocol_1_without_inline_streams(
    network: Network, client_protocol: int
) -> None:
    alice = Peer("alice", network, CLIENT_PROTOCOL_DATA_STREAM_V2)
    bob = Peer("bob", network, client_protocol)
    bob.manager.register_rpc_method("echo", lambda data: data.payload)
    assert await alice.manager.perform_rpc(destination_identity="bob", method="echo", payload="a")
    assert alice.sent("rpc_request") == []
    # a plain stream (header, chunk, trailer), uncompressed, as protocol 1 reads it
    assert [p.WhichOneof("value") for p in alice.port.sent] == [
        "stream_header",
        "stream_chunk",
        "stream_trailer",
    ]
    assert alice.sent_headers()[0].compression == DS.NONE
    await assert_clean(alice, bob)


async def test_v2_request_of_another_version_or_broken_is_refused(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    bob.manager.register_rpc_method("echo", lambda data: data.payload)

    def request_header(stream_id: str, **attributes: str) -> proto_models.DataPacket:
        header = DS.Header(stream_id=stream_id, topic="lk.rpc_request", mime_type="text/plain")
        header.text_header.SetInParent()
        header.attributes.update(attributes)
        return proto_models.DataPacket(participant_identity="alice", stream_header=header)

    attrs = {
        "lk.rpc_request_id": "r1",
        "lk.rpc_request_method": "echo",
        "lk.rpc_request_response_timeout_ms": "5000",
    }
    bob.dispatch(request_header("s1", **attrs, **{"lk.rpc_request_version": "3"}))
    bob.dispatch(request_header("s2", **{**attrs, "lk.rpc_request_id": "r2"}))
    await settle()
    # the broken one: aborted by its sender mid-way
    bob.dispatch(
        request_header("s3", **{**attrs, "lk.rpc_request_id": "r3", "lk.rpc_request_version": "2"})
    )
    bob.dispatch(
        proto_models.DataPacket(
            participant_identity="alice",
            stream_trailer=DS.Trailer(stream_id="s3", reason="gave up"),
        )
    )
    # without a request id nothing can be answered
    bob.dispatch(request_header("s4", **{"lk.rpc_request_version": "2"}))
    bob.dispatch(
        proto_models.DataPacket(
            participant_identity="alice", stream_trailer=DS.Trailer(stream_id="s4")
        )
    )
    await settle()
    assert [a.request_id for a in bob.sent("rpc_ack")] == ["r1", "r2", "r3"]
    errors = {r.request_id: r.error for r in bob.sent("rpc_response")}
    assert errors["r1"].code == errors["r2"].code == Code.UNSUPPORTED_VERSION
    assert errors["r3"].code == Code.APPLICATION_ERROR
    assert errors["r3"].data.startswith("Failed to read request stream: ")
    bob.dispatch(
        proto_models.DataPacket(
            participant_identity="alice", stream_trailer=DS.Trailer(stream_id="s1")
        )
    )
    bob.dispatch(
        proto_models.DataPacket(
            participant_identity="alice", stream_trailer=DS.Trailer(stream_id="s2")
        )
    )
    await assert_clean(alice, bob)


async def test_rpc_topics_are_hidden_from_the_application(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    seen: list[str] = []
    bob.streams.register_text_stream_handler("lk.rpc_request", lambda r, i: seen.append("text"))
    bob.streams.register_byte_stream_handler("lk.rpc_request", lambda r, i: seen.append("byte"))
    alice.streams.register_text_stream_handler("lk.rpc_response", lambda r, i: seen.append("x"))
    bob.manager.register_rpc_method("echo", lambda data: data.payload)
    assert await alice.manager.perform_rpc(destination_identity="bob", method="echo", payload="a")
    await alice.streams.sender.send_bytes(
        b"123", topic="lk.rpc_request", destination_identities=["bob"]
    )
    await settle()
    assert seen == []
    await assert_clean(alice, bob)


async def test_stray_response_streams_are_ignored(
    pair: tuple[Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair
    caplog.set_level(logging.DEBUG, "livekit_py")
    await bob.streams.sender.send_text(
        "x",
        topic="lk.rpc_response",
        attributes={"lk.rpc_request_id": "nope"},
        destination_identities=["alice"],
    )
    await bob.streams.sender.send_text(
        "y", topic="lk.rpc_response", destination_identities=["alice"]
    )
    await settle()
    assert "unexpected response stream" in caplog.text
    await assert_clean(alice, bob)


async def test_response_stream_that_fails_is_an_application_error(
    pair: tuple[Peer, Peer],
) -> None:
    alice, bob = pair
    release = asyncio.Event()

    async def handler(data: RpcInvocationData) -> str:
        await release.wait()
        return "never sent"

    bob.manager.register_rpc_method("m", handler)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    )
    await settle()
    (request_id,) = alice.manager.pending_calls
    # bob starts a response stream and aborts it
    header = DS.Header(stream_id="resp", topic="lk.rpc_response", mime_type="text/plain")
    header.text_header.SetInParent()
    header.attributes["lk.rpc_request_id"] = request_id
    alice.dispatch(proto_models.DataPacket(participant_identity="bob", stream_header=header))
    alice.dispatch(
        proto_models.DataPacket(
            participant_identity="bob", stream_trailer=DS.Trailer(stream_id="resp", reason="oops")
        )
    )
    with pytest.raises(RpcError) as err:
        await call
    assert err.value.code == Code.APPLICATION_ERROR
    assert err.value.data is not None and "Failed to read response stream" in err.value.data
    release.set()
    await settle()
    await assert_clean(alice, bob)


async def test_max_round_trip_latency(network: Network) -> None:
    alice = Peer("alice", network, CLIENT_PROTOCOL_DATA_STREAM_V2)
    # nobody answers "carol": the wait for the ack is max_round_trip_latency
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(
            destination_identity="carol", method="m", payload="", max_round_trip_latency=0.02
        )
    assert err.value.code == Code.CONNECTION_TIMEOUT
    # it is also what the handler's time leaves out: 20 s - 12 s
    with pytest.raises(RpcError):
        await alice.manager.perform_rpc(
            destination_identity="carol",
            method="m",
            payload="",
            response_timeout=20,
            max_round_trip_latency=0.02,
        )
    assert alice.sent("rpc_request")[1].response_timeout_ms == 19_980
    assert rpc._handler_timeout_ms(20.0, 12.0) == 8000
    for bad in (-1, float("nan"), "7", True):
        with pytest.raises(ValueError, match="max_round_trip_latency"):
            await alice.manager.perform_rpc(
                destination_identity="carol",
                method="m",
                payload="",
                max_round_trip_latency=bad,  # type: ignore[arg-type]
            )
    await assert_clean(alice)


# -- interceptors ----------------------------------------------------------------------


class Recorder(RpcInterceptor):
    """Logs what it sees into a shared list, tagged with its name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def intercept_outgoing(self, call: RpcCallInfo, next: Any) -> str:
        self.log.append(f"{self.name}>out {call.method}")
        try:
            result: str = await next(call)
        except RpcError as e:
            self.log.append(f"{self.name}<out error {e.code}")
            raise
        self.log.append(f"{self.name}<out {result}")
        return result

    async def intercept_incoming(self, invocation: RpcInvocationData, next: Any) -> str | None:
        self.log.append(f"{self.name}>in {invocation.method}")
        try:
            result: str | None = await next(invocation)
        except asyncio.CancelledError:
            self.log.append(f"{self.name}<in cancelled {invocation.cancel_reason!r}")
            raise
        except Exception as e:
            self.log.append(f"{self.name}<in {type(e).__name__}")
            raise
        self.log.append(f"{self.name}<in {result}")
        return result


async def test_chains_run_the_first_added_outermost() -> None:
    log: list[str] = []

    async def last_out(call: RpcCallInfo) -> str:
        log.append("call")
        return "r"

    async def last_in(invocation: RpcInvocationData) -> str | None:
        log.append("handler")
        return "h"

    first, second = Recorder("1", log), Recorder("2", log)
    assert await _chain_outgoing([first, second], last_out)(RpcCallInfo("d", "m", "p")) == "r"
    assert log == ["1>out m", "2>out m", "call", "2<out r", "1<out r"]
    log.clear()
    inv = RpcInvocationData("id", "c", "p", 1.0, method="m")
    assert await _chain_incoming([first, second], last_in)(inv) == "h"
    assert log == ["1>in m", "2>in m", "handler", "2<in h", "1<in h"]
    # the default interceptor passes everything through
    assert await _chain_outgoing([RpcInterceptor()], last_out)(RpcCallInfo("d", "m", "p")) == "r"
    assert await _chain_incoming([RpcInterceptor()], last_in)(inv) == "h"


async def test_interceptors_both_ways(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    log: list[str] = []
    alice.manager.add_rpc_interceptor(Recorder("a", log))
    outer, inner = Recorder("b1", log), Recorder("b2", log)
    bob.manager.add_rpc_interceptor(outer)
    bob.manager.add_rpc_interceptor(inner)
    bob.manager.add_rpc_interceptor(outer)  # the same object twice: once
    assert bob.manager.interceptors == (outer, inner)

    async def fail(data: RpcInvocationData) -> str:
        raise RpcError(4000, "no")

    async def crash(data: RpcInvocationData) -> str:
        raise KeyError("k")

    bob.manager.register_rpc_method("echo", lambda data: data.payload)
    bob.manager.register_rpc_method("fail", fail)
    bob.manager.register_rpc_method("crash", crash)

    assert await alice.manager.perform_rpc(destination_identity="bob", method="echo", payload="x")
    assert log == [
        "a>out echo",
        "b1>in echo",
        "b2>in echo",
        "b2<in x",
        "b1<in x",
        "a<out x",
    ]
    for method, seen, code in (
        ("fail", "RpcError", 4000),
        ("crash", "KeyError", Code.APPLICATION_ERROR),
        ("missing", "RpcError", Code.UNSUPPORTED_METHOD),  # next raises UNSUPPORTED_METHOD
    ):
        log.clear()
        with pytest.raises(RpcError) as err:
            await alice.manager.perform_rpc(destination_identity="bob", method=method, payload="")
        assert err.value.code == code
        # the handler's own exception is what the interceptors see; the SDK maps it after
        assert log == [
            f"a>out {method}",
            f"b1>in {method}",
            f"b2>in {method}",
            f"b2<in {seen}",
            f"b1<in {seen}",
            f"a<out error {code}",
        ]

    bob.manager.remove_rpc_interceptor(outer)
    bob.manager.remove_rpc_interceptor(outer)  # not there any more: nothing happens
    assert bob.manager.interceptors == (inner,)
    with pytest.raises(ValueError, match="RpcInterceptor"):
        bob.manager.add_rpc_interceptor(object())  # type: ignore[arg-type]
    await assert_clean(alice, bob)


async def test_interceptors_may_change_or_answer_a_call(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair

    class Rename(RpcInterceptor):
        async def intercept_outgoing(self, call: RpcCallInfo, next: Any) -> str:
            result: str = await next(
                dataclasses.replace(call, method="echo", payload="<" + call.payload)
            )
            return result + ">"

    class Cache(RpcInterceptor):
        async def intercept_incoming(self, invocation: RpcInvocationData, next: Any) -> str | None:
            if invocation.payload == "<cached":
                return "from cache"
            result: str | None = await next(invocation)
            return result

    class Refuse(RpcInterceptor):
        async def intercept_outgoing(self, call: RpcCallInfo, next: Any) -> str:
            raise RpcError(4100, "not allowed")

    alice.manager.add_rpc_interceptor(Rename())
    bob.manager.add_rpc_interceptor(Cache())
    bob.manager.register_rpc_method("echo", lambda data: data.payload)
    assert (
        await alice.manager.perform_rpc(destination_identity="bob", method="anything", payload="p")
        == "<p>"
    )
    assert (
        await alice.manager.perform_rpc(destination_identity="bob", method="x", payload="cached")
        == "from cache>"
    )
    refuse = Refuse()
    alice.manager.add_rpc_interceptor(refuse)
    sent = len(alice.port.sent)
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="x", payload="")
    assert err.value.code == 4100
    assert len(alice.port.sent) == sent  # short-circuited: nothing was sent
    alice.manager.remove_rpc_interceptor(refuse)
    await assert_clean(alice, bob)


async def test_interceptor_sees_the_cancel_reason(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    log: list[str] = []
    bob.manager.add_rpc_interceptor(Recorder("b", log))
    started = asyncio.Event()

    async def hang(data: RpcInvocationData) -> str:
        started.set()
        await asyncio.sleep(30)
        return ""

    bob.manager.register_rpc_method("hang", hang)
    # the deadline: RESPONSE_TIMEOUT (the callee's deadline is the 1 s minimum)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(
            destination_identity="bob", method="hang", payload="", response_timeout=30
        )
    )
    await started.wait()
    (running,) = [t for t in asyncio.all_tasks() if "serve.hang" in t.get_name()]
    # simulate the deadline quickly: a handler whose response_timeout is tiny
    log.clear()
    started.clear()
    inv = RpcInvocationData("id", "alice", "", 0.01, method="hang")
    assert isinstance(await bob.manager._invoke(inv), RpcError)
    assert inv.cancel_reason == Code.RESPONSE_TIMEOUT
    assert log == ["b>in hang", f"b<in cancelled {Code.RESPONSE_TIMEOUT!r}"]
    # the room disconnecting: RECIPIENT_DISCONNECTED
    log.clear()
    await bob.manager.on_disconnected()
    assert log == [f"b<in cancelled {Code.RECIPIENT_DISCONNECTED!r}"]
    assert running.done()
    await alice.manager.on_disconnected()
    with pytest.raises(RpcError) as err:
        await call
    assert err.value.code == Code.RECIPIENT_DISCONNECTED
    await assert_clean(alice, bob)


async def test_a_cancelled_error_from_the_chain_is_an_application_error(
    pair: tuple[Peer, Peer],
) -> None:
    alice, bob = pair

    class Cancels(RpcInterceptor):
        async def intercept_incoming(self, invocation: RpcInvocationData, next: Any) -> str | None:
            raise asyncio.CancelledError

    bob.manager.add_rpc_interceptor(Cancels())
    bob.manager.register_rpc_method("m", lambda data: "ok")
    with pytest.raises(RpcError) as err:
        await alice.manager.perform_rpc(destination_identity="bob", method="m", payload="")
    assert err.value.code == Code.APPLICATION_ERROR
    await assert_clean(alice, bob)


async def test_calls_under_way_keep_their_chain(pair: tuple[Peer, Peer]) -> None:
    alice, bob = pair
    log: list[str] = []
    late = Recorder("late", log)
    release = asyncio.Event()

    async def wait(data: RpcInvocationData) -> str:
        await release.wait()
        return "done"

    bob.manager.register_rpc_method("wait", wait)
    first = Recorder("first", log)
    alice.manager.add_rpc_interceptor(first)
    call = asyncio.ensure_future(
        alice.manager.perform_rpc(destination_identity="bob", method="wait", payload="")
    )
    await settle()
    alice.manager.add_rpc_interceptor(late)
    alice.manager.remove_rpc_interceptor(first)
    release.set()
    assert await call == "done"
    assert log == ["first>out wait", "first<out done"]
    await assert_clean(alice, bob)
