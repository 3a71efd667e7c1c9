"""The engine's data path without a server.

First with fake data channels (what ``send_data`` puts on them, the suspended
data path of a reconnect, the resend after a resume, the receive dedupe), then
over real aiortc data channels between two local peer connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from pyee.asyncio import AsyncIOEventEmitter

from livekit_py.engine import engine as engine_module
from livekit_py.engine.engine import RELIABLE_LABEL, RtcEngine
from livekit_py.session.reliable_buffer import ReliableBufferFullError, ReliableSendBuffer
from livekit_py.signal.client import Handler

RELIABLE = proto_models.DataPacket.Kind.RELIABLE
LOSSY = proto_models.DataPacket.Kind.LOSSY


def user(payload: bytes) -> proto_models.DataPacket:
    return proto_models.DataPacket(
        kind=RELIABLE, participant_identity="me", user=proto_models.UserPacket(payload=payload)
    )


class NoSignal:
    def on(self, kind: str, handler: Handler) -> None:
        pass

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        pass


class WireChannel(AsyncIOEventEmitter):
    """A data channel that records what is sent and lets the test drain it."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.readyState = "open"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.wire: list[proto_models.DataPacket] = []

    def send(self, data: bytes) -> None:
        packet = proto_models.DataPacket()
        packet.ParseFromString(data)
        self.wire.append(packet)
        self.bufferedAmount += len(data)

    def drain(self, to: int = 0) -> None:
        was = self.bufferedAmount
        self.bufferedAmount = to
        if was > self.bufferedAmountLowThreshold >= to:
            self.emit("bufferedamountlow")

    def close(self) -> None:
        self.readyState = "closed"
        self.emit("close")

    @property
    def sequences(self) -> list[int]:
        return [p.sequence for p in self.wire]


class Wired:
    def __init__(self, engine: RtcEngine) -> None:
        self.engine = engine
        self.reliable = WireChannel("_reliable")
        self.lossy = WireChannel("_lossy")
        self.reliable.bufferedAmountLowThreshold = engine_module.RELIABLE_BUFFER_LOW
        engine._reliable = self.reliable  # type: ignore[assignment]
        engine._lossy = self.lossy  # type: ignore[assignment]
        engine._publisher_ready.set()


def wired(**kwargs: Any) -> Wired:
    return Wired(RtcEngine(NoSignal(), **kwargs))


async def idle(turns: int = 50) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------- numbering on the wire


async def test_reliable_packets_are_numbered_from_1_and_lossy_ones_are_not() -> None:
    w = wired()
    for i in range(3):
        await w.engine.send_data(user(b"r%d" % i), RELIABLE)
        await w.engine.send_data(user(b"l%d" % i), LOSSY)
    assert w.reliable.sequences == [1, 2, 3]
    assert [p.user.payload for p in w.reliable.wire] == [b"r0", b"r1", b"r2"]
    assert w.lossy.sequences == [0, 0, 0]
    # the official SDKs leave participant_sid to the server, which stamps it
    assert all(p.participant_sid == "" for p in w.reliable.wire)


async def test_sent_packets_are_kept_until_the_channel_has_drained_them() -> None:
    w = wired()
    for i in range(3):
        await w.engine.send_data(user(b"%d" % i), RELIABLE)
    buffer = w.engine.reliable_send_buffer
    assert buffer.pending_sequences == [1, 2, 3]
    w.reliable.drain(0)
    await w.engine.send_data(user(b"3"), RELIABLE)
    assert buffer.pending_sequences == [4]
    assert [p.sequence for p in w.engine.undelivered_reliable()] == [4]


async def test_concurrent_sends_behind_a_full_channel_go_out_in_sequence_order() -> None:
    w = wired()
    w.reliable.bufferedAmount = engine_module.RELIABLE_BUFFER_HIGH + 1
    sends = [asyncio.ensure_future(w.engine.send_data(user(b"%d" % i), RELIABLE)) for i in range(5)]
    await idle()
    assert w.reliable.wire == []
    w.reliable.drain(0)
    await asyncio.wait_for(asyncio.gather(*sends), 10)
    assert w.reliable.sequences == [1, 2, 3, 4, 5]
    assert [p.user.payload for p in w.reliable.wire] == [b"0", b"1", b"2", b"3", b"4"]


async def test_a_send_on_a_closed_channel_raises_at_once_and_uses_no_sequence() -> None:
    w = wired()
    w.reliable.readyState = "closed"
    with pytest.raises(ConnectionError, match="not open"):
        await w.engine.send_data(user(b"x"), RELIABLE)
    w.reliable.readyState = "open"
    await w.engine.send_data(user(b"y"), RELIABLE)
    assert w.reliable.sequences == [1]


async def test_a_closed_engine_refuses_promptly() -> None:
    w = wired()
    w.engine.begin_close()
    with pytest.raises(ConnectionError, match="closed"):
        await asyncio.wait_for(w.engine.send_data(user(b"x"), RELIABLE), 5)
    assert w.reliable.wire == []


async def test_a_full_send_buffer_raises_after_waiting_for_the_channel() -> None:
    w = wired(send_buffer=ReliableSendBuffer(max_packets=2))
    await w.engine.send_data(user(b"1"), RELIABLE)
    await w.engine.send_data(user(b"2"), RELIABLE)
    # the channel holds both and is below its low threshold: nothing to wait for
    with pytest.raises(ReliableBufferFullError, match="full"):
        await w.engine.send_data(user(b"3"), RELIABLE)
    # above the threshold, the send waits for the drain and then goes out
    w.reliable.bufferedAmount = engine_module.RELIABLE_BUFFER_LOW + 10
    send = asyncio.ensure_future(w.engine.send_data(user(b"3"), RELIABLE))
    await idle()
    assert not send.done()
    w.reliable.drain(0)
    await asyncio.wait_for(send, 10)
    assert w.reliable.sequences == [1, 2, 3]


# ---------------------------------------------------------------------- a reconnect


async def test_a_send_while_suspended_waits_and_goes_out_after_the_resend() -> None:
    w = wired()
    for i in range(1, 4):
        await w.engine.send_data(user(b"%d" % i), RELIABLE)
    w.engine.suspend_data()
    assert w.engine.data_suspended
    waiting = asyncio.ensure_future(w.engine.send_data(user(b"4"), RELIABLE))
    await idle()
    assert not waiting.done() and w.reliable.sequences == [1, 2, 3]
    # resumed: the server had up to 1; 2 and 3 go again, then the waiting send
    assert await w.engine.resend_reliable_after(1) == 2
    await asyncio.wait_for(waiting, 10)
    assert w.reliable.sequences == [1, 2, 3, 2, 3, 4]
    assert not w.engine.data_suspended
    assert w.engine.reliable_send_buffer.pending_sequences == [2, 3, 4]


async def test_the_resend_goes_before_any_send_released_by_it() -> None:
    w = wired()
    await w.engine.send_data(user(b"1"), RELIABLE)
    w.engine.suspend_data()
    waiting = [asyncio.ensure_future(w.engine.send_data(user(b"n"), RELIABLE)) for _ in range(3)]
    await idle()
    resend = asyncio.ensure_future(w.engine.resend_reliable_after(0))
    await asyncio.wait_for(asyncio.gather(resend, *waiting), 10)
    assert w.reliable.sequences == [1, 1, 2, 3, 4]


async def test_a_suspended_send_gives_up_after_the_bounded_wait() -> None:
    w = wired(data_resume_wait=0.05)
    w.engine.suspend_data()
    with pytest.raises(ConnectionError, match="not restored within"):
        await asyncio.wait_for(w.engine.send_data(user(b"x"), RELIABLE), 10)
    assert w.reliable.wire == []


async def test_closing_the_engine_fails_the_suspended_sends() -> None:
    w = wired()
    w.engine.suspend_data()
    waiting = asyncio.ensure_future(w.engine.send_data(user(b"x"), RELIABLE))
    await idle()
    await w.engine.close()
    with pytest.raises(ConnectionError, match="closed"):
        await asyncio.wait_for(waiting, 10)
    assert w.reliable.wire == []


async def test_a_reconnect_starting_during_a_drain_wait_holds_the_send_back() -> None:
    w = wired()
    w.reliable.bufferedAmount = engine_module.RELIABLE_BUFFER_HIGH + 1
    send = asyncio.ensure_future(w.engine.send_data(user(b"x"), RELIABLE))
    await idle()
    w.engine.suspend_data()
    w.reliable.drain(0)
    await idle()
    assert not send.done() and w.reliable.wire == []
    await w.engine.resend_reliable_after(0)
    await asyncio.wait_for(send, 10)
    assert w.reliable.sequences == [1]


async def test_resend_on_a_closed_channel_raises_and_stays_suspended() -> None:
    w = wired()
    await w.engine.send_data(user(b"1"), RELIABLE)
    w.engine.suspend_data()
    w.reliable.readyState = "closed"
    with pytest.raises(ConnectionError, match="nothing resent"):
        await w.engine.resend_reliable_after(0)
    assert w.engine.data_suspended
    assert [p.sequence for p in w.engine.undelivered_reliable()] == [1]


async def test_resume_without_resend_lets_sends_through() -> None:
    w = wired()
    w.engine.suspend_data()
    waiting = asyncio.ensure_future(w.engine.send_data(user(b"x"), RELIABLE))
    await idle()
    w.engine.resume_data()
    await asyncio.wait_for(waiting, 10)
    assert w.reliable.sequences == [1]


async def test_lossy_sends_are_not_held_by_a_suspension() -> None:
    w = wired()
    w.engine.suspend_data()
    await asyncio.wait_for(w.engine.send_data(user(b"x"), LOSSY), 5)
    assert len(w.lossy.wire) == 1


async def test_a_lossy_send_waits_for_a_full_channel_to_drain() -> None:
    w = wired()
    w.lossy.bufferedAmountLowThreshold = engine_module.LOSSY_BUFFER_LOW
    w.lossy.bufferedAmount = engine_module.LOSSY_BUFFER_HIGH + 1
    waiting = asyncio.ensure_future(w.engine.send_data(user(b"x"), LOSSY))
    await idle()
    assert not waiting.done() and w.lossy.wire == []
    w.lossy.drain()
    await asyncio.wait_for(waiting, 10)
    assert [p.user.payload for p in w.lossy.wire] == [b"x"]
    assert w.engine.lossy_dropped == 0


async def test_a_lossy_send_on_a_channel_that_stays_full_is_dropped_not_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "LOSSY_DRAIN_WAIT", 0.05)
    w = wired()
    w.lossy.bufferedAmountLowThreshold = engine_module.LOSSY_BUFFER_LOW
    w.lossy.bufferedAmount = engine_module.LOSSY_BUFFER_HIGH + 1
    for _ in range(2):
        await asyncio.wait_for(w.engine.send_data(user(b"x"), LOSSY), 10)
    assert w.lossy.wire == []
    assert w.engine.lossy_dropped == 2
    w.lossy.drain()
    await asyncio.wait_for(w.engine.send_data(user(b"y"), LOSSY), 10)
    assert [p.user.payload for p in w.lossy.wire] == [b"y"]


async def test_what_never_left_the_channel_is_handed_over_after_close() -> None:
    w = wired()
    for i in range(4):
        await w.engine.send_data(user(b"%d" % i), RELIABLE)
    # the first two left the channel, the last two never did (the link died)
    size = len(w.engine.reliable_send_buffer.payload(3))
    w.reliable.bufferedAmount = 2 * size
    await w.engine.close()
    undelivered = w.engine.undelivered_reliable()
    assert [p.sequence for p in undelivered] == [3, 4]
    assert [p.user.payload for p in undelivered] == [b"2", b"3"]
    # a new engine sends them under its own numbering
    new = wired()
    for packet in undelivered:
        await new.engine.send_data(packet, RELIABLE)
    assert new.reliable.sequences == [1, 2]
    assert [p.user.payload for p in new.reliable.wire] == [b"2", b"3"]


def test_a_negative_resume_wait_is_refused() -> None:
    with pytest.raises(ValueError):
        RtcEngine(NoSignal(), data_resume_wait=-1)


# ---------------------------------------------------------------------- receiving


def incoming(sid: str, seq: int, payload: bytes) -> bytes:
    packet = user(payload)
    packet.participant_sid = sid
    packet.sequence = seq
    return packet.SerializeToString()


async def test_received_reliable_copies_are_dropped_and_lossy_ones_pass() -> None:
    e = RtcEngine(NoSignal())
    got: list[tuple[bytes, int]] = []
    e.on_data_packet = lambda packet, kind: got.append((packet.user.payload, kind))
    reliable = WireChannel("_reliable")
    lossy = WireChannel("_lossy")
    e._watch_channel(reliable)  # type: ignore[arg-type]
    e._watch_channel(lossy)  # type: ignore[arg-type]
    for sid, seq, payload in [
        ("PA_a", 1, b"a1"),
        ("PA_a", 2, b"a2"),
        ("PA_b", 1, b"b1"),
        ("PA_a", 2, b"a2 again"),
        ("PA_a", 1, b"a1 again"),
        ("PA_a", 3, b"a3"),
        ("PA_old", 0, b"unnumbered"),
        ("PA_old", 0, b"unnumbered"),
    ]:
        reliable.emit("message", incoming(sid, seq, payload))
    lossy.emit("message", incoming("PA_a", 1, b"lossy"))
    await idle()
    assert got == [
        (b"a1", RELIABLE),
        (b"a2", RELIABLE),
        (b"b1", RELIABLE),
        (b"a3", RELIABLE),
        (b"unnumbered", RELIABLE),
        (b"unnumbered", RELIABLE),
        (b"lossy", LOSSY),
    ]
    states = {s.publisher_sid: s.last_seq for s in e.reliable_receive_states()}
    assert states == {"PA_a": 3, "PA_b": 1}


# ---------------------------------------------------------------------- real data channels


class Signal:
    """Hands the engine's offer/answer to a local peer connection playing the server."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.sent: asyncio.Queue[proto_rtc.SignalRequest] = asyncio.Queue()

    def on(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        self.sent.put_nowait(request)

    async def next_sent(self, kind: str) -> proto_rtc.SignalRequest:
        while True:
            request = await asyncio.wait_for(self.sent.get(), 30)
            if request.WhichOneof("message") == kind:
                return request


class Peer:
    """The far side: a plain aiortc connection with LiveKit's two data channels."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received: asyncio.Queue[proto_models.DataPacket] = asyncio.Queue()
        self.channels: dict[str, RTCDataChannel] = {}
        self.pc.on("datachannel", self._on_channel)

    def _on_channel(self, channel: RTCDataChannel) -> None:
        self.channels[channel.label] = channel

        @channel.on("message")
        def _message(message: bytes | str) -> None:
            assert isinstance(message, bytes)
            packet = proto_models.DataPacket()
            packet.ParseFromString(message)
            self.received.put_nowait(packet)

    async def take(self, n: int) -> list[proto_models.DataPacket]:
        return [await asyncio.wait_for(self.received.get(), 30) for _ in range(n)]


@pytest.fixture
async def connected() -> AsyncIterator[tuple[RtcEngine, Peer]]:
    signal = Signal()
    engine = RtcEngine(signal)
    peer = Peer()
    engine.start(proto_rtc.JoinResponse(subscriber_primary=False))
    try:
        offer = await signal.next_sent("offer")
        await peer.pc.setRemoteDescription(RTCSessionDescription(offer.offer.sdp, "offer"))
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        signal.handlers["answer"](
            proto_rtc.SessionDescription(type="answer", sdp=peer.pc.localDescription.sdp)
        )
        await asyncio.wait_for(engine.wait_publisher_ready(30), 40)
        yield engine, peer
    finally:
        await engine.close()
        await peer.pc.close()


async def test_sequences_go_out_on_real_data_channels(connected: tuple[RtcEngine, Peer]) -> None:
    engine, peer = connected
    for i in range(50):
        await engine.send_data(user(b"%d" % i), RELIABLE)
    got = await peer.take(50)
    assert [p.sequence for p in got] == list(range(1, 51))
    assert [p.user.payload for p in got] == [b"%d" % i for i in range(50)]
    # the peer has them all, so their bytes have left our channel: the next send
    # releases them, and only that one is kept
    await engine.send_data(user(b"last"), RELIABLE)
    assert engine.reliable_send_buffer.pending_sequences == [51]
    (last,) = await peer.take(1)
    assert last.sequence == 51


async def test_a_resend_reaches_the_peer_again_with_the_same_sequences(
    connected: tuple[RtcEngine, Peer],
) -> None:
    engine, peer = connected
    for i in range(5):
        await engine.send_data(user(b"%d" % i), RELIABLE)
    await peer.take(5)
    engine.suspend_data()
    later = asyncio.ensure_future(engine.send_data(user(b"after"), RELIABLE))
    kept = engine.reliable_send_buffer.pending_sequences
    assert kept and kept[-1] == 5
    resent = await engine.resend_reliable_after(kept[0] - 1)
    await asyncio.wait_for(later, 30)
    got = await peer.take(resent + 1)
    assert [p.sequence for p in got] == [*kept, 6]


async def test_received_copies_are_dropped_on_real_data_channels() -> None:
    """The far side offers the subscriber's data channels, as the server does."""
    signal = Signal()
    engine = RtcEngine(signal)
    got: list[bytes] = []
    last = asyncio.Event()

    def on_packet(packet: proto_models.DataPacket, kind: int) -> None:
        got.append(packet.user.payload)
        if packet.user.payload == b"4":
            last.set()

    engine.on_data_packet = on_packet
    engine.start(proto_rtc.JoinResponse(subscriber_primary=True))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = server.createDataChannel(RELIABLE_LABEL, ordered=True)
    server.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    try:
        await server.setLocalDescription(await server.createOffer())
        signal.handlers["offer"](
            proto_rtc.SessionDescription(type="offer", sdp=server.localDescription.sdp, id=1)
        )
        answer = await signal.next_sent("answer")
        await server.setRemoteDescription(RTCSessionDescription(answer.answer.sdp, "answer"))
        await asyncio.wait_for(opened.wait(), 30)
        for seq, payload in [(1, b"1"), (2, b"2"), (2, b"dup"), (1, b"old"), (3, b"3")]:
            channel.send(incoming("PA_far", seq, payload))
        channel.send(incoming("PA_far", 4, b"4"))
        await asyncio.wait_for(last.wait(), 30)
        assert got == [b"1", b"2", b"3", b"4"], "the engine's receive dedupe"
    finally:
        await engine.close()
        await server.close()
