"""Data streams: text and byte streams carried over the reliable data channel.

A stream is a sequence of DataPackets sharing one ``stream_id``:

* a ``stream_header`` describing it (topic, MIME type, attributes, optional
  total length, and a text or byte sub-header),
* any number of ``stream_chunk`` packets whose ``chunk_index`` counts up from 0,
  each carrying at most :data:`STREAM_CHUNK_SIZE` bytes of content (text is
  UTF-8 and never split inside a character),
* a ``stream_trailer`` ending it; a non-empty ``reason`` marks an abnormal end,
  and its attributes are merged into the stream's attributes.

Outgoing streams are written by :class:`TextStreamWriter` and
:class:`ByteStreamWriter` (or the one-shot ``send_text`` / ``send_file`` /
``send_bytes``); incoming streams are handed to the handler registered for
their topic as a :class:`TextStreamReader` or :class:`ByteStreamReader`,
which yields content as it arrives.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import mimetypes
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, Union

from livekit.protocol import models as proto_models

from ..log import get_logger

if TYPE_CHECKING:
    from .participant import LocalParticipant
    from .room import Room

logger = get_logger("room.data_stream")

STREAM_CHUNK_SIZE = 15_000
"""Largest content, in bytes, of one stream chunk; also the budget for a header packet."""

_DataStream = proto_models.DataStream
_RELIABLE = proto_models.DataPacket.Kind.RELIABLE
_TEXT_MIME_TYPE = "text/plain"
_BYTE_MIME_TYPE = "application/octet-stream"
_DEFLATE_RAW = _DataStream.CompressionType.Value("DEFLATE_RAW")
_NO_COMPRESSION = _DataStream.CompressionType.Value("NONE")
# Chunks read from a file per worker-thread call by send_file.
_FILE_READ_CHUNKS = 4
# The most content an incoming stream may carry unless RoomOptions.data_stream says otherwise.
DEFAULT_MAX_PAYLOAD_BYTE_LENGTH = 5_000_000_000
# Unread content a reader holds before it warns (once) that nobody is consuming it.
_BUFFER_WARNING_BYTES = 64 * 1024 * 1024


class StreamError(ConnectionError):
    """A data stream failed: it ended abnormally (the sender aborted it, left the
    room, or the room disconnected), its packets were inconsistent, or it could
    not be sent. ``description`` says which."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass
class BaseStreamInfo:
    """What is known about a stream from its header."""

    stream_id: str
    mime_type: str
    topic: str
    timestamp: int
    """When the stream was opened, in milliseconds since the Unix epoch."""
    size: Optional[int]
    """The total length in bytes announced by the sender, 0 when not announced."""
    attributes: Optional[dict[str, str]]


@dataclass
class TextStreamInfo(BaseStreamInfo):
    attachments: list[str]
    """Ids of byte streams attached to this text stream."""


@dataclass
class ByteStreamInfo(BaseStreamInfo):
    name: str


def _text_info(header: proto_models.DataStream.Header) -> TextStreamInfo:
    return TextStreamInfo(
        stream_id=header.stream_id,
        mime_type=header.mime_type,
        topic=header.topic,
        timestamp=header.timestamp,
        size=header.total_length if header.HasField("total_length") else 0,
        attributes=dict(header.attributes),
        attachments=list(header.text_header.attached_stream_ids),
    )


def _byte_info(header: proto_models.DataStream.Header) -> ByteStreamInfo:
    return ByteStreamInfo(
        stream_id=header.stream_id,
        mime_type=header.mime_type,
        topic=header.topic,
        timestamp=header.timestamp,
        size=header.total_length if header.HasField("total_length") else 0,
        attributes=dict(header.attributes),
        name=header.byte_header.name,
    )


# -- readers -------------------------------------------------------------------------------

# What a reader's queue holds: content, then None (normal end) or the error that ended it.
_Item = Union[bytes, StreamError, None]


class _ReaderBase:
    """Buffers the content of one incoming stream until the application reads it.

    Content is queued as it arrives and handed out in arrival order; the end of
    the stream (or the error that ended it) comes after all content received
    before it. Nothing is kept once read.
    """

    _info: BaseStreamInfo

    def __init__(self, header: proto_models.DataStream.Header) -> None:
        self._header = header
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._ended = False  # the manager delivered the end (or an error)
        self._done = False  # iteration consumed the end
        self._closed = False  # the application closed the reader
        self._error: StreamError | None = None
        self._buffered = 0
        self._warned = False

    # Called by the StreamManager, from the event loop.

    def _push(self, data: bytes) -> None:
        if self._ended or self._closed or not data:
            return
        self._buffered += len(data)
        if self._buffered > _BUFFER_WARNING_BYTES and not self._warned:
            self._warned = True
            logger.warning(
                "stream %s has %d MB of unread content: read it, or close() the reader",
                self._header.stream_id,
                self._buffered // (1024 * 1024),
            )
        self._queue.put_nowait(data)

    def _end(self, error: StreamError | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._closed:
            self._queue.put_nowait(error)

    def _merge_attributes(self, attributes: dict[str, str]) -> None:
        """Add the trailer's attributes to the stream's info."""
        self._info.attributes = {**(self._info.attributes or {}), **attributes}

    async def _next_bytes(self) -> bytes | None:
        """The next piece of content, None at the end; raises the stream's error."""
        if self._done or self._closed:
            if self._error is not None:
                raise self._error
            return None
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._buffered -= len(item)
            return item
        self._done = True
        self._error = item
        if item is not None:
            raise item
        return None

    def close(self) -> None:
        """Stop receiving this stream: unread content is dropped and later content
        ignored. Iterating a closed reader ends at once."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._buffered = 0
        self._queue.put_nowait(None)  # wake a read that is waiting

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self.close()


class TextStreamReader(_ReaderBase):
    """An incoming text stream, read with ``async for chunk in reader`` or
    :meth:`read_all`.

    Iteration yields text as it arrives (never a partial character) and stops
    when the sender closes the stream; if the stream ends abnormally (the
    sender aborted it or left, or the room disconnected) :class:`StreamError`
    is raised after the text received before that.
    """

    _info: TextStreamInfo

    def __init__(self, header: proto_models.DataStream.Header) -> None:
        super().__init__(header)
        self._info = _text_info(header)
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    @property
    def info(self) -> TextStreamInfo:
        return self._info

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while True:
            data = await self._next_bytes()
            try:
                if data is None:
                    if not self._closed:
                        self._decoder.decode(b"", final=True)  # no partial character left
                    raise StopAsyncIteration
                text = self._decoder.decode(data)
            except UnicodeDecodeError as e:
                self._done = True
                self._error = StreamError(f"stream {self._info.stream_id} is not valid UTF-8: {e}")
                raise self._error from None
            if text:
                return text

    async def read_all(self) -> str:
        """Wait for the end of the stream and return all of its text."""
        parts = [chunk async for chunk in self]
        return "".join(parts)


class ByteStreamReader(_ReaderBase):
    """An incoming byte stream, read with ``async for chunk in reader``.

    Iteration yields bytes as they arrive and stops when the sender closes the
    stream; if the stream ends abnormally (the sender aborted it or left, or the
    room disconnected) :class:`StreamError` is raised after the bytes received
    before that. ``capacity`` is accepted for compatibility and not used: the
    data channel cannot be paused, so content is queued until read.
    """

    _info: ByteStreamInfo

    def __init__(self, header: proto_models.DataStream.Header, capacity: int = 0) -> None:
        super().__init__(header)
        self._info = _byte_info(header)

    @property
    def info(self) -> ByteStreamInfo:
        return self._info

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        data = await self._next_bytes()
        if data is None:
            raise StopAsyncIteration
        return data


TextStreamHandler = Callable[[TextStreamReader, str], None]
ByteStreamHandler = Callable[[ByteStreamReader, str], None]


# -- writers -------------------------------------------------------------------------------


def _utf8_chunks(data: bytes, limit: int = STREAM_CHUNK_SIZE) -> Iterator[bytes]:
    """Split UTF-8 ``data`` into pieces of at most ``limit`` bytes, each ending on a
    character boundary (a split never lands before a continuation byte)."""
    view = memoryview(data)
    start, n = 0, len(data)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            cut = end
            while cut > start and (data[cut] & 0xC0) == 0x80:
                cut -= 1
            if cut > start:
                end = cut
        yield bytes(view[start:end])
        start = end


def _byte_chunks(data: bytes | bytearray | memoryview) -> Iterator[bytes]:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), STREAM_CHUNK_SIZE):
        yield bytes(view[start : start + STREAM_CHUNK_SIZE])


def _now_ms() -> int:
    return int(time.time() * 1000)


class BaseStreamWriter:
    """Sends one outgoing stream: the header, then chunks, then the trailer.

    Writers are opened by ``LocalParticipant.stream_text`` / ``stream_bytes``,
    which send the header before returning them.
    """

    def __init__(
        self,
        local_participant: LocalParticipant,
        topic: str = "",
        attributes: Optional[dict[str, str]] = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        mime_type: str = "",
        destination_identities: Optional[list[str]] = None,
        sender_identity: str | None = None,
    ) -> None:
        if not isinstance(topic, str):
            raise ValueError("topic must be a str")
        destinations = list(destination_identities or [])
        if not all(isinstance(d, str) for d in destinations):
            raise ValueError("destination_identities must be a list of identity strings")
        self._local_participant = local_participant
        self._room: Room = local_participant._local_room
        self._destinations = destinations
        self._sender_identity = sender_identity or local_participant.identity
        self._header = _DataStream.Header(
            stream_id=stream_id or str(uuid.uuid4()),
            timestamp=_now_ms(),
            topic=topic,
            mime_type=mime_type,
            attributes=dict(attributes or {}),
        )
        if total_size is not None:
            self._header.total_length = total_size
        self._next_chunk_index = 0
        self._write_lock = asyncio.Lock()
        self._opened = False
        self._closed = False

    @property
    def _stream_id(self) -> str:
        return self._header.stream_id

    def _packet(self) -> proto_models.DataPacket:
        return proto_models.DataPacket(
            kind=_RELIABLE,
            participant_identity=self._sender_identity,
            destination_identities=self._destinations,
        )

    async def _send(self, packet: proto_models.DataPacket) -> None:
        await _send_packet(self._room, packet, self._stream_id)

    async def _send_header(self) -> None:
        """Open the stream: send its header."""
        packet = self._packet()
        packet.stream_header.CopyFrom(self._header)
        size = packet.ByteSize()
        if size > STREAM_CHUNK_SIZE:
            raise StreamError(
                f"the header of stream {self._stream_id} is {size} bytes, more than the "
                f"{STREAM_CHUNK_SIZE} allowed: use fewer or shorter attributes"
            )
        await self._send(packet)
        self._opened = True

    async def _send_chunk(self, content: bytes) -> None:
        packet = self._packet()
        packet.stream_chunk.stream_id = self._stream_id
        packet.stream_chunk.chunk_index = self._next_chunk_index
        packet.stream_chunk.content = content
        await self._send(packet)
        self._next_chunk_index += 1

    async def _send_trailer(self, reason: str, attributes: Optional[dict[str, str]]) -> None:
        packet = self._packet()
        packet.stream_trailer.stream_id = self._stream_id
        packet.stream_trailer.reason = reason
        packet.stream_trailer.attributes.update(attributes or {})
        await self._send(packet)

    def _check_writable(self) -> None:
        if self._closed:
            raise RuntimeError("Cannot write after stream is closed")
        if not self._opened:
            raise RuntimeError("Stream is not open")

    async def aclose(
        self, *, reason: str = "", attributes: Optional[dict[str, str]] = None
    ) -> None:
        """End the stream. A non-empty ``reason`` ends it abnormally: readers raise
        an error carrying it. ``attributes`` are added to the stream's attributes
        on the receiving side."""
        async with self._write_lock:
            if self._closed:
                raise RuntimeError("Stream already closed")
            if not self._opened:
                raise RuntimeError("Stream is not open")
            self._closed = True
            await self._send_trailer(reason, attributes)


class TextStreamWriter(BaseStreamWriter):
    """An outgoing text stream: :meth:`write` text as it becomes available, then
    :meth:`aclose`. Each write is sent at once, in chunks of at most
    :data:`STREAM_CHUNK_SIZE` UTF-8 bytes."""

    def __init__(
        self,
        local_participant: LocalParticipant,
        *,
        topic: str = "",
        attributes: Optional[dict[str, str]] = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        reply_to_id: str | None = None,
        destination_identities: Optional[list[str]] = None,
        sender_identity: str | None = None,
    ) -> None:
        # An incrementally written text has no known length: total_size is kept
        # in the local info only (as the official SDK does), never sent.
        super().__init__(
            local_participant,
            topic,
            attributes,
            stream_id,
            None,
            _TEXT_MIME_TYPE,
            destination_identities,
            sender_identity,
        )
        self._header.text_header.operation_type = _DataStream.OperationType.CREATE
        if reply_to_id:
            self._header.text_header.reply_to_stream_id = reply_to_id
        self._info = _text_info(self._header)
        if total_size is not None:
            self._info.size = total_size

    @property
    def info(self) -> TextStreamInfo:
        return self._info

    async def write(self, text: str) -> None:
        """Send ``text`` (split at character boundaries into chunks as needed)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        async with self._write_lock:
            self._check_writable()
            for chunk in _utf8_chunks(text.encode("utf-8")):
                await self._send_chunk(chunk)


class ByteStreamWriter(BaseStreamWriter):
    """An outgoing byte stream: :meth:`write` bytes as they become available, then
    :meth:`aclose`. Each write is sent at once, in chunks of at most
    :data:`STREAM_CHUNK_SIZE` bytes. When ``total_size`` is given it is announced
    to the receivers, and exactly that many bytes must be written."""

    def __init__(
        self,
        local_participant: LocalParticipant,
        *,
        name: str,
        topic: str = "",
        attributes: Optional[dict[str, str]] = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        mime_type: str = _BYTE_MIME_TYPE,
        destination_identities: Optional[list[str]] = None,
    ) -> None:
        super().__init__(
            local_participant,
            topic,
            attributes,
            stream_id,
            total_size,
            mime_type or _BYTE_MIME_TYPE,
            destination_identities,
        )
        self._header.byte_header.name = name
        self._info = _byte_info(self._header)

    @property
    def info(self) -> ByteStreamInfo:
        return self._info

    async def write(self, data: bytes) -> None:
        """Send ``data`` (bytes, bytearray or memoryview)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        async with self._write_lock:
            self._check_writable()
            for chunk in _byte_chunks(data):
                await self._send_chunk(chunk)

    async def _write_file(self, f: BinaryIO, size: int) -> None:
        """Send ``size`` bytes read from ``f`` in a worker thread, a few chunks at a time."""
        remaining = size
        while remaining > 0:
            block = await asyncio.to_thread(
                f.read, min(remaining, STREAM_CHUNK_SIZE * _FILE_READ_CHUNKS)
            )
            if not block:
                raise StreamError(
                    f"the file of stream {self._stream_id} shrank while it was being sent"
                )
            remaining -= len(block)
            async with self._write_lock:
                self._check_writable()
                for chunk in _byte_chunks(block):
                    await self._send_chunk(chunk)


async def _send_packet(room: Room, packet: proto_models.DataPacket, stream_id: str) -> None:
    try:
        await room._engine_or_raise().send_data(packet, _RELIABLE)
    except StreamError:
        raise
    except ConnectionError as e:
        raise StreamError(f"could not send stream {stream_id}: {e}") from e


# -- the manager ---------------------------------------------------------------------------


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


class StreamManager:
    """The data streams of one room: sending, and dispatching incoming streams to
    the handlers registered per topic."""

    def __init__(self, room: Room, *, max_payload_byte_length: int | None = None) -> None:
        self._room = room
        self._max_payload_byte_length = max_payload_byte_length
        self._text_handlers: dict[str, TextStreamHandler] = {}
        self._byte_handlers: dict[str, ByteStreamHandler] = {}
        self._incoming: dict[str, _Incoming] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- handlers --------------------------------------------------------------------

    def register_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> None:
        if topic in self._text_handlers:
            raise ValueError(f"text stream handler for topic '{topic}' already set")
        self._text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self._text_handlers.pop(topic, None)

    def register_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> None:
        if topic in self._byte_handlers:
            raise ValueError(f"byte stream handler for topic '{topic}' already set")
        self._byte_handlers[topic] = handler

    def unregister_byte_stream_handler(self, topic: str) -> None:
        self._byte_handlers.pop(topic, None)

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
        writer = TextStreamWriter(
            self._room.local_participant,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
            sender_identity=sender_identity,
        )
        await writer._send_header()
        return writer

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
        """Send ``text`` as one complete stream. ``compress`` is accepted for
        compatibility; streams are sent uncompressed, which every client reads."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        data = text.encode("utf-8")
        writer = TextStreamWriter(
            self._room.local_participant,
            topic=topic,
            attributes=attributes,
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
        )
        writer._header.total_length = len(data)
        writer._info.size = len(data)
        await writer._send_header()
        async with self._aborting_on_cancel(writer):
            async with writer._write_lock:
                for chunk in _utf8_chunks(data):
                    await writer._send_chunk(chunk)
            await writer.aclose()
        return writer.info

    async def stream_bytes(
        self,
        name: str,
        *,
        total_size: int | None = None,
        mime_type: str = _BYTE_MIME_TYPE,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> ByteStreamWriter:
        writer = ByteStreamWriter(
            self._room.local_participant,
            name=name,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            mime_type=mime_type,
            destination_identities=destination_identities,
        )
        await writer._send_header()
        return writer

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
        """Send the file at ``file_path`` as a byte stream named after it, reading
        it a few chunks at a time in a worker thread. ``compress`` is accepted for
        compatibility; streams are sent uncompressed."""
        path = os.fspath(file_path)
        f: BinaryIO = await asyncio.to_thread(open, path, "rb")
        try:
            size = (await asyncio.to_thread(os.fstat, f.fileno())).st_size
            mime_type = mimetypes.guess_type(path)[0] or _BYTE_MIME_TYPE
            writer = ByteStreamWriter(
                self._room.local_participant,
                name=os.path.basename(path),
                topic=topic,
                attributes=attributes,
                stream_id=stream_id,
                total_size=size,
                mime_type=mime_type,
                destination_identities=destination_identities,
            )
            await writer._send_header()
            async with self._aborting_on_cancel(writer):
                await writer._write_file(f, size)
                await writer.aclose()
        finally:
            await asyncio.to_thread(f.close)
        return writer.info

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
        """Send an in-memory buffer as one complete byte stream (``name`` defaults
        to ``"unknown"``)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        writer = ByteStreamWriter(
            self._room.local_participant,
            name=name if name is not None else "unknown",
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=memoryview(data).nbytes,
            mime_type=mime_type or _BYTE_MIME_TYPE,
            destination_identities=destination_identities,
        )
        await writer._send_header()
        async with self._aborting_on_cancel(writer):
            await writer.write(data)
            await writer.aclose()
        return writer.info

    def _aborting_on_cancel(self, writer: BaseStreamWriter) -> _AbortOnCancel:
        return _AbortOnCancel(self, writer)

    def _abort_soon(self, writer: BaseStreamWriter, reason: str) -> None:
        """End ``writer``'s stream abnormally in the background (best effort)."""
        if writer._closed or not writer._opened:
            return
        writer._closed = True

        async def abort() -> None:
            try:
                await writer._send_trailer(reason, None)
            except (ConnectionError, RuntimeError) as e:
                logger.debug("could not abort stream %s: %s", writer._stream_id, e)

        task = asyncio.get_running_loop().create_task(abort())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- receiving -------------------------------------------------------------------

    def _max_payload(self) -> int:
        """The most content one incoming stream may carry: the constructor's value,
        else ``RoomOptions.data_stream.max_payload_byte_length`` when the room's
        options have it, else :data:`DEFAULT_MAX_PAYLOAD_BYTE_LENGTH`."""
        limit: Any = self._max_payload_byte_length
        if limit is None:
            options = getattr(getattr(self._room, "_options", None), "data_stream", None)
            limit = getattr(options, "max_payload_byte_length", None)
        if isinstance(limit, int) and limit > 0:
            return limit
        return DEFAULT_MAX_PAYLOAD_BYTE_LENGTH

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
        reader: TextStreamReader | ByteStreamReader
        handler: Callable[[Any, str], Any] | None
        if kind == "text_header":
            handler = self._text_handlers.get(header.topic)
            reader = TextStreamReader(header)
        else:
            handler = self._byte_handlers.get(header.topic)
            reader = ByteStreamReader(header)
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
        limit = self._max_payload()
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
        header: proto_models.DataStream.Header, reader: _ReaderBase, limit: int
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
        self, handler: Callable[[Any, str], Any], reader: _ReaderBase, sender: str
    ) -> None:
        try:
            result = handler(reader, sender)
        except Exception:
            logger.exception("stream handler for topic %r raised", reader._header.topic)
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
                content = state.inflater.decompress(content)
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


class _AbortOnCancel:
    """If the body fails or is cancelled, end the stream abnormally (best effort) so
    that its readers get an error instead of waiting for the rest."""

    def __init__(self, manager: StreamManager, writer: BaseStreamWriter) -> None:
        self._manager = manager
        self._writer = writer

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"failed: {exc}"
        self._manager._abort_soon(self._writer, reason)
