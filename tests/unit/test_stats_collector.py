"""The statistics of two real aiortc peer connections on this machine, as ``stats`` messages.

No server: one connection sends audio and a data channel message to the other, and
each one's statistics are read as official SDK code reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from livekit_py.rtc import stats
from livekit_py.webrtc.aiortc_adapter import ice_connections, observe_ice_checks
from livekit_py.webrtc.data_channel_counts import DataChannelCounter
from livekit_py.webrtc.ice_checks import IceCheckLog
from livekit_py.webrtc.stats_collector import (
    StatsSources,
    peer_connection_stats,
    transceiver_stats,
)
from tests import stats_reading as read

_Pair = tuple[RTCPeerConnection, RTCPeerConnection, StatsSources, StatsSources, Any]


def _observe(pc: RTCPeerConnection, log: IceCheckLog) -> None:
    for connection in ice_connections(pc):
        observe_ice_checks(connection, log)


@pytest.fixture
async def pair() -> AsyncIterator[_Pair]:
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    a_sources = StatsSources(ice=IceCheckLog(), channels=DataChannelCounter())
    b_sources = StatsSources(ice=IceCheckLog(), channels=DataChannelCounter())
    assert b_sources.channels is not None and a_sources.channels is not None
    received: asyncio.Queue[Any] = asyncio.Queue()

    @b.on("datachannel")
    def on_channel(channel: Any) -> None:
        b_sources.channels.watch(channel)  # type: ignore[union-attr]
        channel.on("message", received.put_nowait)

    opened = asyncio.Event()
    channel = a.createDataChannel("_reliable")
    a_sources.channels.watch(channel)
    channel.on("open", opened.set)
    track = AudioStreamTrack()
    a.addTrack(track)
    try:
        await a.setLocalDescription(await a.createOffer())
        _observe(a, a_sources.ice)  # type: ignore[arg-type]
        await b.setRemoteDescription(a.localDescription)
        _observe(b, b_sources.ice)  # type: ignore[arg-type]
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(opened.wait(), 30)
        channel.send("hello")
        assert await asyncio.wait_for(received.get(), 30) == "hello"
        yield a, b, a_sources, b_sources, channel
    finally:
        track.stop()
        await a.close()
        await b.close()


async def _until(condition: Any, what: str, timeout: float = 30.0) -> list[Any]:
    """Poll a coroutine returning (ok, stats) until ok; the last stats."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ok, result = await condition()
        if ok:
            return list(result)
        if loop.time() > deadline:
            raise AssertionError(f"never: {what}; last stats:\n{result}")
        await asyncio.sleep(0.1)


async def test_the_sender_and_the_receiver_read_as_the_official_stats(pair: _Pair) -> None:
    a, b, a_sources, b_sources, _ = pair

    async def sent() -> tuple[bool, list[Any]]:
        out = await peer_connection_stats(a, a_sources)
        streams = read.outbound(out, "audio")
        return bool(streams and streams[0].sent.packets_sent > 0), out

    async def received() -> tuple[bool, list[Any]]:
        out = await peer_connection_stats(b, b_sources)
        streams = read.inbound(out, "audio")
        return bool(streams and streams[0].received.packets_received > 0), out

    sender = await _until(sent, "packets sent")
    receiver = await _until(received, "packets received")
    for side in (sender, receiver):
        assert read.dangling_references(side) == []
        # one transport (everything bundled), DTLS up, both certificates
        (transport,) = read.entries(side, "transport")
        t = transport.transport
        assert t.dtls_state == stats.DTLS_TRANSPORT_CONNECTED
        assert t.ice_state == stats.ICE_TRANSPORT_COMPLETED
        assert t.local_certificate_id and t.remote_certificate_id
        assert t.tls_version == "FEFD" and t.dtls_cipher.startswith("TLS_")
        assert t.srtp_cipher and t.dtls_role in (stats.DTLS_CLIENT, stats.DTLS_SERVER)
        assert len(read.entries(side, "certificate")) == 2
        # the selected pair was checked: it has a round-trip time
        (selected,) = read.selected_pairs(side)
        assert selected.state == stats.PAIR_SUCCEEDED and selected.nominated
        assert selected.HasField("current_round_trip_time")
        assert selected.current_round_trip_time >= 0 and selected.responses_received >= 1
        assert read.entries(side, "local_candidate") and read.entries(side, "remote_candidate")
        (pc,) = read.entries(side, "peer_connection")
        assert pc.pc.data_channels_opened == 1
    # the DTLS roles are opposite, each side's certificates are the other's
    (ta,) = read.entries(sender, "transport")
    (tb,) = read.entries(receiver, "transport")
    assert ta.transport.dtls_role != tb.transport.dtls_role
    assert ta.transport.local_certificate_id == tb.transport.remote_certificate_id
    assert ta.transport.ice_role != tb.transport.ice_role

    (out,) = read.outbound(sender, "audio")
    assert read.codec_of(sender, out).mime_type.lower() == "audio/opus"
    assert out.sent.bytes_sent > 0 and out.outbound.mid == "0"
    (inbound,) = read.inbound(receiver, "audio")
    assert read.codec_of(receiver, inbound).clock_rate == 48000
    assert inbound.received.HasField("jitter") and inbound.received.jitter >= 0
    assert inbound.inbound.mid == "0"
    # aiortc's own receive path (no playout of ours here): our jitter buffer fields unset
    assert not inbound.inbound.HasField("jitter_buffer_emitted_count")

    sent_dc = read.data_channel(sender, "_reliable")
    got_dc = read.data_channel(receiver, "_reliable")
    assert sent_dc is not None and got_dc is not None
    assert (sent_dc.messages_sent, sent_dc.bytes_sent, sent_dc.state) == (1, 5, stats.DC_OPEN)
    assert (got_dc.messages_received, got_dc.bytes_received) == (1, 5)


async def test_one_transceivers_stats_are_its_streams_and_the_selected_path(pair: _Pair) -> None:
    a, b, a_sources, b_sources, _ = pair
    (sending,) = a.getTransceivers()
    (receiving,) = b.getTransceivers()

    async def received() -> tuple[bool, list[Any]]:
        out = await transceiver_stats(b, receiving, b_sources)
        streams = read.inbound(out, "audio")
        return bool(streams and streams[0].received.packets_received > 0), out

    mine = await _until(received, "packets received")
    assert read.dangling_references(mine) == []
    kinds = {s.WhichOneof("stats") for s in mine}
    assert {"codec", "inbound_rtp", "transport", "candidate_pair", "certificate"} <= kinds
    assert "outbound_rtp" not in kinds  # b sends nothing on it
    assert "peer_connection" not in kinds and "data_channel" not in kinds
    assert len(read.entries(mine, "candidate_pair")) == 1  # only the selected one
    assert len(read.entries(mine, "local_candidate")) == 1
    sent = await transceiver_stats(a, sending, a_sources)
    assert read.outbound(sent, "audio") and not read.inbound(sent, "audio")
    with pytest.raises(ValueError, match="not one of"):
        await transceiver_stats(a, receiving, a_sources)
