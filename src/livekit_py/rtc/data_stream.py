"""Data streams: text and byte streams carried over the reliable data channel.

A stream is a sequence of DataPackets sharing one ``stream_id``:

* a ``stream_header`` describing it (topic, MIME type, attributes, optional
  total length, and a text or byte sub-header),
* any number of ``stream_chunk`` packets whose ``chunk_index`` counts up from 0,
  each carrying at most :data:`STREAM_CHUNK_SIZE` bytes of content (text is
  UTF-8 and never split inside a character),
* a ``stream_trailer`` ending it; a non-empty ``reason`` marks an abnormal end,
  and its attributes are merged into the stream's attributes.

Two variants come from clients that advertise data streams v2 and go only to such
recipients: a whole short stream in the header alone (``inline_content``, no chunks, no
trailer), and content compressed with raw DEFLATE (``compression = DEFLATE_RAW``; the
chunks then carry consecutive pieces of one deflate stream, and ``total_length`` is the
uncompressed size).

Outgoing streams are written by :class:`TextStreamWriter` and
:class:`ByteStreamWriter` (or the one-shot ``send_text`` / ``send_file`` /
``send_bytes``); incoming streams are handed to the handler registered for
their topic as a :class:`TextStreamReader` or :class:`ByteStreamReader`,
which yields content as it arrives.

This module holds the public classes only. Opening streams is
``livekit_py.session.stream_sender``'s job, reassembling incoming ones
``livekit_py.session.stream_receiver``'s; writers send through a
:class:`~livekit_py.session.ports.DataPort`.
"""

from __future__ import annotations

import asyncio
import codecs
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from livekit.protocol import models as proto_models

from ..log import get_logger
from ..session.ports import DataPort

__all__ = [
    "STREAM_CHUNK_SIZE",
    "BaseStreamInfo",
    "BaseStreamWriter",
    "ByteStreamHandler",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "StreamError",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
]

logger = get_logger("room.data_stream")

STREAM_CHUNK_SIZE = 15_000
"""Largest content, in bytes, of one stream chunk; also the budget for a header packet."""

_DataStream = proto_models.DataStream
_RELIABLE = proto_models.DataPacket.Kind.RELIABLE
_TEXT_MIME_TYPE = "text/plain"
_BYTE_MIME_TYPE = "application/octet-stream"
# Chunks read from a file per worker-thread call by send_file.
_FILE_READ_CHUNKS = 4
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
    size: int | None
    """The total length in bytes announced by the sender, 0 when not announced."""
    attributes: dict[str, str] | None


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
_Item = bytes | StreamError | None


class _ReaderBase:
    """Buffers the content of one incoming stream until the application reads it.

    Content is queued as it arrives and handed out in arrival order; the end of
    the stream (or the error that ended it) comes after all content received
    before it. Nothing is kept once read.
    """

    _info: BaseStreamInfo

    def __init__(
        self,
        header: proto_models.DataStream.Header,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._header = header
        self._on_close = on_close
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._ended = False  # the manager delivered the end (or an error)
        self._done = False  # iteration consumed the end
        self._closed = False  # the application closed the reader
        self._error: StreamError | None = None
        self._buffered = 0
        self._warned = False

    # The feed, called by the session's stream receiver from the event loop.

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
        self._closed_now()
        if item is not None:
            raise item
        return None

    def _closed_now(self) -> None:
        """Tell ``on_close`` (once) that the reader is done."""
        callback, self._on_close = self._on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception(
                    "the on_close callback of stream %s raised", self._header.stream_id
                )

    def close(self) -> None:
        """Stop receiving this stream: unread content is dropped and later content
        ignored. Iterating a closed reader ends at once (raising the stream's error if
        it had already failed). Closing twice, or after the end, does nothing."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._buffered = 0
        self._queue.put_nowait(None)  # wake a read that is waiting
        self._closed_now()

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

    def __init__(
        self,
        header: proto_models.DataStream.Header,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(header, on_close=on_close)
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
                self._closed_now()
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

    def __init__(
        self,
        header: proto_models.DataStream.Header,
        capacity: int = 0,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(header, on_close=on_close)
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


@runtime_checkable
class _SendsData(Protocol):
    """A local participant, as a writer sees it: the port it sends through."""

    @property
    def _data_port(self) -> DataPort:
        """Where the participant's data packets go."""
        ...


def _data_port_of(local_participant: _SendsData | DataPort) -> DataPort:
    if isinstance(local_participant, _SendsData):
        return local_participant._data_port
    return local_participant


class BaseStreamWriter:
    """Sends one outgoing stream: the header, then chunks, then the trailer.

    Writers are opened by ``LocalParticipant.stream_text`` / ``stream_bytes``,
    which send the header before returning them. As in the official SDK a writer
    is made for a ``local_participant`` (or directly for the session's data port)
    and sends as ``sender_identity``, by default the participant's identity, read
    when the writer is made.
    """

    def __init__(
        self,
        local_participant: _SendsData | DataPort,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        mime_type: str = "",
        destination_identities: list[str] | None = None,
        sender_identity: str | None = None,
    ) -> None:
        if not isinstance(topic, str):
            raise ValueError("topic must be a str")
        destinations = list(destination_identities or [])
        if not all(isinstance(d, str) for d in destinations):
            raise ValueError("destination_identities must be a list of identity strings")
        port = _data_port_of(local_participant)
        self._port = port
        self._destinations = destinations
        self._sender_identity = sender_identity or port.local_identity
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
        try:
            await self._port.send_data(packet, _RELIABLE)
        except StreamError:
            raise
        except ConnectionError as e:
            raise StreamError(f"could not send stream {self._stream_id}: {e}") from e

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

    async def _send_inline(self, content: bytes) -> bool:
        """Send the whole stream as its header with ``content`` inline, if that packet
        fits in :data:`STREAM_CHUNK_SIZE`; False (nothing sent) when it does not.

        Only for recipients that all read inline streams (client protocol 2).
        """
        packet = self._packet()
        packet.stream_header.CopyFrom(self._header)
        packet.stream_header.inline_content = content
        if packet.ByteSize() > STREAM_CHUNK_SIZE:
            return False
        await self._send(packet)
        self._opened = True
        self._closed = True
        return True

    async def _send_raw_chunks(self, data: bytes) -> None:
        """Send already encoded content (compressed, or bytes) in full-size chunks."""
        async with self._write_lock:
            self._check_writable()
            for chunk in _byte_chunks(data):
                await self._send_chunk(chunk)

    async def _send_chunk(self, content: bytes) -> None:
        packet = self._packet()
        packet.stream_chunk.stream_id = self._stream_id
        packet.stream_chunk.chunk_index = self._next_chunk_index
        packet.stream_chunk.content = content
        await self._send(packet)
        self._next_chunk_index += 1

    async def _send_trailer(self, reason: str, attributes: dict[str, str] | None) -> None:
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

    async def aclose(self, *, reason: str = "", attributes: dict[str, str] | None = None) -> None:
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
        local_participant: _SendsData | DataPort,
        *,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        reply_to_id: str | None = None,
        destination_identities: list[str] | None = None,
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
        local_participant: _SendsData | DataPort,
        *,
        name: str,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        mime_type: str = _BYTE_MIME_TYPE,
        destination_identities: list[str] | None = None,
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

    async def _write_file(self, f: BinaryIO, size: int, *, deflate: bool = False) -> None:
        """Send ``size`` bytes read from ``f`` in a worker thread, a few chunks at a time;
        with ``deflate``, compressed as one raw DEFLATE stream (in the worker too)."""
        deflater = zlib.compressobj(wbits=-15) if deflate else None

        def read(n: int) -> tuple[int, bytes]:
            """(bytes read, what to send for them)"""
            block = f.read(n)
            if deflater is None or not block:
                return len(block), block
            return len(block), deflater.compress(block)

        remaining = size
        pending = b""
        while remaining > 0:
            want = min(remaining, STREAM_CHUNK_SIZE * _FILE_READ_CHUNKS)
            consumed, block = await asyncio.to_thread(read, want)
            if not consumed:
                raise StreamError(
                    f"the file of stream {self._stream_id} shrank while it was being sent"
                )
            remaining -= consumed
            pending += block
            cut = len(pending) - len(pending) % STREAM_CHUNK_SIZE
            if cut:
                await self._send_raw_chunks(pending[:cut])
                pending = pending[cut:]
        if deflater is not None:
            pending += deflater.flush()
        if pending:
            await self._send_raw_chunks(pending)
