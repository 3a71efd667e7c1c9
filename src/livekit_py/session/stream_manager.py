"""The data streams of one room: a :class:`StreamSender` and a :class:`StreamReceiver`
behind the single object the room holds."""

from __future__ import annotations

from livekit.protocol import models as proto_models

from ..rtc.data_stream import (
    ByteStreamHandler,
    ByteStreamInfo,
    ByteStreamWriter,
    TextStreamHandler,
    TextStreamInfo,
    TextStreamWriter,
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

    # -- sending ---------------------------------------------------------------------

    async def stream_text(
        self,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        total_size: int | None = None,
        sender_identity: str | None = None,
    ) -> TextStreamWriter:
        """See :meth:`StreamSender.stream_text`."""
        return await self.sender.stream_text(
            destination_identities=destination_identities,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            reply_to_id=reply_to_id,
            total_size=total_size,
            sender_identity=sender_identity,
        )

    async def send_text(
        self,
        text: str,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        reply_to_id: str | None = None,
        compress: bool = True,
    ) -> TextStreamInfo:
        """See :meth:`StreamSender.send_text`."""
        return await self.sender.send_text(
            text,
            destination_identities=destination_identities,
            topic=topic,
            attributes=attributes,
            reply_to_id=reply_to_id,
            compress=compress,
        )

    async def stream_bytes(
        self,
        name: str,
        *,
        total_size: int | None = None,
        mime_type: str = "application/octet-stream",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> ByteStreamWriter:
        """See :meth:`StreamSender.stream_bytes`."""
        return await self.sender.stream_bytes(
            name,
            total_size=total_size,
            mime_type=mime_type,
            attributes=attributes,
            stream_id=stream_id,
            destination_identities=destination_identities,
            topic=topic,
        )

    async def send_file(
        self,
        file_path: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """See :meth:`StreamSender.send_file`."""
        return await self.sender.send_file(
            file_path,
            topic=topic,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
            compress=compress,
        )

    async def send_bytes(
        self,
        data: bytes,
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """See :meth:`StreamSender.send_bytes`."""
        return await self.sender.send_bytes(
            data,
            topic=topic,
            name=name,
            mime_type=mime_type,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
            compress=compress,
        )

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
