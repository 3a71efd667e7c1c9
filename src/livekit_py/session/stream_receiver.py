"""Incoming data streams: reassembly of header, chunks and trailer, and dispatch.

:class:`StreamReceiver` does no I/O: it is fed the ``stream_header`` / ``stream_chunk``
/ ``stream_trailer`` packets the room receives, checks their order, lengths and
compression, and hands each new stream to the handler registered for its topic as
a :class:`~livekit_py.rtc.data_stream.TextStreamReader` or
:class:`~livekit_py.rtc.data_stream.ByteStreamReader`, which it then feeds. It
sends nothing and needs no connection (a coroutine handler is run as a task).
"""

from __future__ import annotations

import asyncio
import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.protocol import models as proto_models

from ..log import get_logger
from ..rtc.data_stream import (
    ByteStreamHandler,
    ByteStreamReader,
    StreamError,
    TextStreamHandler,
    TextStreamReader,
)

logger = get_logger("room.data_stream")

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTE_LENGTH", "StreamReceiver"]

#: The most content an incoming stream may carry unless the room says otherwise.
DEFAULT_MAX_PAYLOAD_BYTE_LENGTH = 5_000_000_000

_DataStream = proto_models.DataStream
_DEFLATE_RAW = _DataStream.CompressionType.Value("DEFLATE_RAW")
_NO_COMPRESSION = _DataStream.CompressionType.Value("NONE")

# What the receiver feeds (through the readers' _push / _end / _merge_attributes).
_Reader = TextStreamReader | ByteStreamReader


@dataclass
class _Incoming:
    """Receive-side state of one open stream."""

    reader: TextStreamReader | ByteStreamReader
    sender: str
    total: int | None
    limit: int
    inflater: Any = None  # a zlib decompressor for deflate-raw streams
    next_index: int = 0
    received: int = 0


class StreamReceiver:
    """The incoming data streams of one room, dispatched to handlers per topic.

    Args:
        max_payload_byte_length: The most content one incoming stream may carry, in
            bytes; None (or not a positive int) means
            :data:`DEFAULT_MAX_PAYLOAD_BYTE_LENGTH`. A larger stream ends with a
            StreamError.
    """

    def __init__(self, *, max_payload_byte_length: int | None = None) -> None:
        self._max_payload_byte_length = DEFAULT_MAX_PAYLOAD_BYTE_LENGTH
        self.max_payload_byte_length = max_payload_byte_length
        self._text_handlers: dict[str, TextStreamHandler] = {}
        self._byte_handlers: dict[str, ByteStreamHandler] = {}
        # topics the SDK itself uses (RPC v2): never handed to the application
        self._claimed: dict[str, TextStreamHandler] = {}
        self._incoming: dict[str, _Incoming] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def max_payload_byte_length(self) -> int:
        """The most content one incoming stream may carry; applies to streams whose
        header arrives after it is set."""
        return self._max_payload_byte_length

    @max_payload_byte_length.setter
    def max_payload_byte_length(self, value: int | None) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            self._max_payload_byte_length = value
        else:
            self._max_payload_byte_length = DEFAULT_MAX_PAYLOAD_BYTE_LENGTH

    @property
    def open_streams(self) -> tuple[str, ...]:
        """The ids of the streams being received (header seen, trailer not yet)."""
        return tuple(self._incoming)

    # -- handlers --------------------------------------------------------------------

    def register_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> None:
        """Hand text streams on ``topic`` to ``handler``; ValueError if one is set."""
        if topic in self._text_handlers:
            raise ValueError(f"text stream handler for topic '{topic}' already set")
        self._text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        """Forget the text stream handler of ``topic`` (if any)."""
        self._text_handlers.pop(topic, None)

    def register_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> None:
        """Hand byte streams on ``topic`` to ``handler``; ValueError if one is set."""
        if topic in self._byte_handlers:
            raise ValueError(f"byte stream handler for topic '{topic}' already set")
        self._byte_handlers[topic] = handler

    def unregister_byte_stream_handler(self, topic: str) -> None:
        """Forget the byte stream handler of ``topic`` (if any)."""
        self._byte_handlers.pop(topic, None)

    def claim_text_topic(self, topic: str, handler: TextStreamHandler) -> None:
        """Keep ``topic`` for the SDK: its text streams go to ``handler``, its byte
        streams are dropped, and the application's handlers for it never see either
        (the official SDKs hide their RPC topics the same way)."""
        self._claimed[topic] = handler

    # -- input from the room -------------------------------------------------------

    def handle_packet(self, packet: proto_models.DataPacket) -> None:
        """Process a received ``stream_header`` / ``stream_chunk`` / ``stream_trailer``."""
        which = packet.WhichOneof("value")
        if which == "stream_header":
            self._on_header(packet.stream_header, packet.participant_identity)
        elif which == "stream_chunk":
            self._on_chunk(packet.stream_chunk)
        elif which == "stream_trailer":
            self._on_trailer(packet.stream_trailer)

    def _on_header(self, header: proto_models.DataStream.Header, sender: str) -> None:
        stream_id = header.stream_id
        kind = header.WhichOneof("content_header")
        if kind not in ("text_header", "byte_header"):
            logger.warning(
                "stream %s from %r has neither a text nor a byte header", stream_id, sender
            )
            return
        if header.compression not in (_NO_COMPRESSION, _DEFLATE_RAW):
            logger.warning(
                "stream %s from %r uses unknown compression %d: ignored",
                stream_id,
                sender,
                header.compression,
            )
            return
        if stream_id in self._incoming:
            logger.warning("stream %s from %r is already open: header ignored", stream_id, sender)
            return
        reader: _Reader
        handler: Callable[[Any, str], Any] | None
        claimed = header.topic in self._claimed
        if kind == "text_header":
            handler = self._claimed.get(header.topic) or self._text_handlers.get(header.topic)
            reader = TextStreamReader(header)
        else:
            handler = None if claimed else self._byte_handlers.get(header.topic)
            reader = ByteStreamReader(header)
        if handler is None and claimed:
            logger.debug("byte stream %s on the SDK's topic %r dropped", stream_id, header.topic)
            return
        if handler is None:
            logger.info(
                "ignoring %s stream from %r with topic %r: no handler registered",
                "text" if kind == "text_header" else "byte",
                sender,
                header.topic,
            )
            return
        compressed = header.compression == _DEFLATE_RAW
        total = header.total_length if header.HasField("total_length") else None
        limit = self._max_payload_byte_length
        if total is not None and total > limit:
            reader._end(StreamError(_too_large(stream_id, limit)))
        elif header.HasField("inline_content"):
            # The whole payload came with the header: the stream is already complete.
            reader._end(self._inline(header, reader, limit))
        else:
            self._incoming[stream_id] = _Incoming(
                reader=reader,
                sender=sender,
                total=total,
                limit=limit,
                inflater=zlib.decompressobj(wbits=-15) if compressed else None,
            )
        self._call_handler(handler, reader, sender)

    @staticmethod
    def _inline(
        header: proto_models.DataStream.Header, reader: _Reader, limit: int
    ) -> StreamError | None:
        """Deliver a header's inline content; the error that ends the stream, if any."""
        stream_id = header.stream_id
        content = header.inline_content
        if header.compression == _DEFLATE_RAW:
            inflater = zlib.decompressobj(wbits=-15)
            try:
                content = inflater.decompress(content, limit + 1)
            except zlib.error as e:
                return StreamError(f"stream {stream_id} could not be decompressed: {e}")
        if len(content) > limit:
            return StreamError(_too_large(stream_id, limit))
        if header.HasField("total_length") and len(content) != header.total_length:
            return StreamError(
                f"stream {stream_id} carries {len(content)} bytes, not the "
                f"{header.total_length} announced"
            )
        reader._push(content)
        return None

    def _call_handler(
        self, handler: Callable[[Any, str], Any], reader: _Reader, sender: str
    ) -> None:
        try:
            result = handler(reader, sender)
        except Exception:
            logger.exception("stream handler for topic %r raised", reader.info.topic)
            return
        if inspect.isawaitable(result):
            # An async handler: run it rather than leaving the coroutine unawaited.
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream handler raised", exc_info=task.exception())

    def _fail(self, stream_id: str, description: str) -> None:
        state = self._incoming.pop(stream_id, None)
        if state is not None:
            logger.warning("%s", description)
            state.reader._end(StreamError(description))

    def _on_chunk(self, chunk: proto_models.DataStream.Chunk) -> None:
        stream_id = chunk.stream_id
        state = self._incoming.get(stream_id)
        if state is None:
            return  # a stream nobody handles, or one that already ended
        if chunk.chunk_index < state.next_index:
            logger.debug("stream %s: duplicate chunk %d dropped", stream_id, chunk.chunk_index)
            return
        if chunk.chunk_index > state.next_index:
            self._fail(
                stream_id,
                f"stream {stream_id}: chunk {chunk.chunk_index} arrived when "
                f"{state.next_index} was expected (chunks were lost)",
            )
            return
        state.next_index += 1
        content = chunk.content
        if state.inflater is not None:
            try:
                # never inflate more than the limit allows (plus one byte, to notice)
                content = state.inflater.decompress(content, state.limit - state.received + 1)
            except zlib.error as e:
                self._fail(stream_id, f"stream {stream_id} could not be decompressed: {e}")
                return
        state.received += len(content)
        if state.received > state.limit:
            self._fail(stream_id, _too_large(stream_id, state.limit))
            return
        if state.total is not None and state.received > state.total:
            self._fail(
                stream_id,
                f"stream {stream_id}: received more than the {state.total} bytes announced",
            )
            return
        state.reader._push(content)

    def _on_trailer(self, trailer: proto_models.DataStream.Trailer) -> None:
        stream_id = trailer.stream_id
        state = self._incoming.get(stream_id)
        if state is None:
            return
        if state.inflater is not None:
            try:
                rest = state.inflater.flush()
            except zlib.error as e:
                self._fail(stream_id, f"stream {stream_id} could not be decompressed: {e}")
                return
            state.received += len(rest)
            if state.received > state.limit:
                self._fail(stream_id, _too_large(stream_id, state.limit))
                return
            state.reader._push(rest)
        state.reader._merge_attributes(dict(trailer.attributes))
        if trailer.reason:
            self._fail(stream_id, f"stream {stream_id} was ended by its sender: {trailer.reason}")
        elif state.total is not None and state.received < state.total:
            self._fail(
                stream_id,
                f"stream {stream_id} ended after {state.received} of the "
                f"{state.total} bytes announced",
            )
        else:
            del self._incoming[stream_id]
            state.reader._end()

    def on_participant_left(self, identity: str) -> None:
        """End the streams ``identity`` was sending with an error."""
        for stream_id, state in list(self._incoming.items()):
            if state.sender == identity:
                self._fail(
                    stream_id,
                    f"participant {identity} left the room in the middle of sending "
                    f"stream {stream_id}",
                )

    async def on_disconnected(self) -> None:
        """End every stream being received with an error (the room is gone)."""
        incoming, self._incoming = self._incoming, {}
        for stream_id, state in incoming.items():
            state.reader._end(
                StreamError(f"disconnected from the room while receiving stream {stream_id}")
            )


def _too_large(stream_id: str, limit: int) -> str:
    return f"stream {stream_id} is larger than the {limit} bytes allowed"
