"""Seeing what one of our rooms sends and receives on the data channel (RPC and data
stream packets), to check which version of a protocol a test used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.protocol import models as proto_models

from livekit_py import rtc


def _copy(packet: proto_models.DataPacket) -> proto_models.DataPacket:
    return proto_models.DataPacket.FromString(packet.SerializeToString())


class WireTap:
    """Records the DataPackets ``room`` sends, and the RPC and stream packets it gets.

    Install it before the room is used (it wraps the room's port and its managers).
    """

    def __init__(self, room: rtc.Room) -> None:
        self.sent: list[proto_models.DataPacket] = []
        self.received: list[proto_models.DataPacket] = []
        port: Any = room._port
        send = port.send_data

        async def send_data(packet: proto_models.DataPacket, kind: int) -> None:
            self.sent.append(_copy(packet))
            await send(packet, kind)

        port.send_data = send_data
        managers: list[Any] = [room._rpc_manager(), room._stream_manager()]
        for manager in managers:
            manager.handle_packet = self._recording(manager.handle_packet)

    def _recording(
        self, handle: Callable[[proto_models.DataPacket], None]
    ) -> Callable[[proto_models.DataPacket], None]:
        def record(packet: proto_models.DataPacket) -> None:
            self.received.append(_copy(packet))
            handle(packet)

        return record

    def clear(self) -> None:
        self.sent.clear()
        self.received.clear()

    @staticmethod
    def kinds(packets: list[proto_models.DataPacket]) -> list[str]:
        return [p.WhichOneof("value") or "" for p in packets]

    @staticmethod
    def headers(
        packets: list[proto_models.DataPacket], topic: str | None = None
    ) -> list[proto_models.DataStream.Header]:
        return [
            p.stream_header
            for p in packets
            if p.WhichOneof("value") == "stream_header"
            and (topic is None or p.stream_header.topic == topic)
        ]
