"""A DataPort without a connection, for the RPC and data-stream manager tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit.protocol import models as proto_models


class FakeDataPort:
    """Implements ``livekit_py.session.ports.DataPort``.

    Every packet sent is recorded as the wire would carry it (``sent``, with its
    ``kinds``) and then handed to ``deliver`` when set. ``connected = False`` makes
    ``send_data`` raise ConnectionError like a room that is not connected; ``fail``
    makes it raise that exception instead of sending.
    """

    def __init__(self, identity: str = "me", *, server_version: str = "1.9.0") -> None:
        self.local_identity = identity
        self.server_version = server_version
        self.connected = True
        self.fail: Exception | None = None
        self.sent: list[proto_models.DataPacket] = []
        self.kinds: list[int] = []
        self.deliver: Callable[[proto_models.DataPacket], None] | None = None

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        if not self.connected:
            raise ConnectionError("the room is not connected")
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        wire = proto_models.DataPacket.FromString(packet.SerializeToString())
        self.sent.append(wire)
        self.kinds.append(kind)
        if self.deliver is not None:
            self.deliver(wire)


class FakePeers:
    """Implements ``livekit_py.session.ports.RemotePeers`` from a dict:
    identity -> (client_protocol, capabilities)."""

    def __init__(self, peers: dict[str, tuple[int, frozenset[int]]] | None = None) -> None:
        self.peers: dict[str, tuple[int, frozenset[int]]] = dict(peers or {})

    def add(self, identity: str, client_protocol: int, *capabilities: int) -> FakePeers:
        self.peers[identity] = (client_protocol, frozenset(capabilities))
        return self

    def remote_identities(self) -> tuple[str, ...]:
        return tuple(self.peers)

    def remote_client_protocol(self, identity: str) -> int:
        return self.peers.get(identity, (0, frozenset()))[0]

    def remote_capabilities(self, identity: str) -> frozenset[int]:
        return self.peers.get(identity, (0, frozenset()))[1]
