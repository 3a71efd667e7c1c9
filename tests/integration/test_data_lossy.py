"""Lossy data (publish_data(reliable=False)) at full speed through a real livekit-server.

Lossy packets may be dropped, but not by us: with the sender and the receiver on
one event loop, the receiving UDP socket used to fall behind (asyncio reads one
datagram per turn) and the kernel dropped what overflowed its default buffer.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from livekit_py import rtc
from livekit_py.engine.transport import UDP_RECEIVE_BUFFER
from livekit_py.webrtc import aiortc_adapter
from livekit_py.webrtc.aiortc_adapter import ice_connections
from tests.conftest import TokenFactory
from tests.helpers import wait_until

pytestmark = [pytest.mark.server]

COUNT = 10_000


def _udp_sockets(room: rtc.Room) -> list[tuple[object, socket.socket]]:
    engine = room._session.engine
    assert engine is not None, "not connected"
    out = []
    for transport in (engine.publisher, engine.subscriber):
        if transport is None:
            continue
        for connection in ice_connections(transport.pc):
            for protocol in getattr(connection, aiortc_adapter._ICE_PROTOCOLS):
                sock = protocol.transport.get_extra_info("socket")
                if sock is not None and sock.type == socket.SOCK_DGRAM:
                    out.append((protocol, sock))
    return out


def _expected_buffer() -> int:
    try:
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return 0
    return 2 * min(UDP_RECEIVE_BUFFER, rmem_max)  # Linux doubles the capped request


async def test_a_full_speed_lossy_burst_between_two_rooms_of_one_loop_arrives(
    server_url: str, make_token: TokenFactory
) -> None:
    sender, receiver = rtc.Room(), rtc.Room()
    received: list[bytes] = []

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == "burst":
            received.append(packet.data)

    receiver.on("data_received", on_data)
    try:
        await sender.connect(server_url, make_token("sender"))
        await receiver.connect(server_url, make_token("receiver"))
        await wait_until(
            lambda: "sender" in receiver.remote_participants,
            timeout=30,
            what="receiver sees sender",
        )
        # every ICE socket has the larger buffer and is read as fast as datagrams arrive
        for room in (sender, receiver):
            sockets = _udp_sockets(room)
            assert sockets
            for protocol, sock in sockets:
                assert protocol in aiortc_adapter._draining
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= _expected_buffer()

        payload = bytes(200)
        for i in range(COUNT):  # as fast as publish_data lets us, like a game or a sensor feed
            await sender.local_participant.publish_data(
                i.to_bytes(4, "big") + payload, reliable=False, topic="burst"
            )
        try:  # all of them on loopback, but lossy is allowed a few losses
            await wait_until(lambda: len(received) >= COUNT, timeout=30, what="every packet")
        except AssertionError:
            pass
        assert len(received) >= 0.95 * COUNT, f"received {len(received)} of {COUNT}"
        assert len(set(received)) == len(received)  # none twice
    finally:
        await sender.disconnect()
        await receiver.disconnect()
