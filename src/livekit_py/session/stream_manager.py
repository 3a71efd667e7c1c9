"""The data streams of one room: a :class:`StreamSender` and a :class:`StreamReceiver`
behind the single object the room holds."""

from __future__ import annotations

from livekit.protocol import models as proto_models

from ..rtc.data_stream import (
    ByteStreamHandler,
    TextStreamHandler,
)
from .ports import DataPort, RemotePeers
from .stream_receiver import StreamReceiver
from .stream_sender import StreamSender

__all__ = ["StreamManager"]


class StreamManager:
    """Sending data streams, and dispatching incoming ones to the handlers per topic.

    The room feeds it the stream packets it receives (:meth:`handle_packet`) and
    tells it when a remote participant leaves (:meth:`on_participant_left`) and when
    the room disconnects (:meth:`on_disconnected`).

    Args:
        port: Where outgoing streams go, and whose identity they carry.
        max_payload_byte_length: The most content one incoming stream may carry
            (None: the receiver's default); also settable later through
            :attr:`receiver`.
        peers: What the other participants understand, which decides whether a
            one-shot send goes inline and compressed (None: never).
    """

    def __init__(
        self,
        port: DataPort,
        *,
        max_payload_byte_length: int | None = None,
        peers: RemotePeers | None = None,
    ) -> None:
        self.sender = StreamSender(port, peers=peers)
        self.receiver = StreamReceiver(max_payload_byte_length=max_payload_byte_length)

    # -- handlers --------------------------------------------------------------------

    def register_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> None:
        """Hand text streams on ``topic`` to ``handler``; ValueError if one is set."""
        self.receiver.register_text_stream_handler(topic, handler)

    def unregister_text_stream_handler(self, topic: str) -> None:
        """Forget the text stream handler of ``topic`` (if any)."""
        self.receiver.unregister_text_stream_handler(topic)

    def register_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> None:
        """Hand byte streams on ``topic`` to ``handler``; ValueError if one is set."""
        self.receiver.register_byte_stream_handler(topic, handler)

    def unregister_byte_stream_handler(self, topic: str) -> None:
        """Forget the byte stream handler of ``topic`` (if any)."""
        self.receiver.unregister_byte_stream_handler(topic)

    # -- input from the room ---------------------------------------------------------

    def handle_packet(self, packet: proto_models.DataPacket) -> None:
        """Process a received ``stream_header`` / ``stream_chunk`` / ``stream_trailer``."""
        self.receiver.handle_packet(packet)

    def on_participant_left(self, identity: str) -> None:
        """End the streams ``identity`` was sending with an error."""
        self.receiver.on_participant_left(identity)

    async def on_disconnected(self) -> None:
        """End every stream being received with an error (the room is gone)."""
        await self.receiver.on_disconnected()
