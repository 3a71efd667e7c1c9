"""Outgoing data streams: opening writers and the one-shot sends.

:class:`StreamSender` opens :class:`~livekit_py.rtc.data_stream.TextStreamWriter` /
:class:`~livekit_py.rtc.data_stream.ByteStreamWriter` streams (header sent before
they are returned) and sends whole texts, files and buffers as complete streams,
ending them abnormally when the send fails or is cancelled. Everything goes out
through a :class:`~livekit_py.session.ports.DataPort`.

The one-shot sends pick the wire format from what every recipient understands
(:func:`send_policy`, as the official SDKs do): when all of them advertise data streams
v2 (client protocol 2), a stream whose header packet fits in one packet is sent as that
header alone, its content inline; when all of them also advertise
``CAP_COMPRESSION_DEFLATE_RAW`` and ``compress`` is set, ``send_text`` and
``send_bytes`` compress with raw DEFLATE when that makes the content smaller, and
``send_file`` always does. Otherwise, and for the incremental writers, the stream is a
plain header, chunks and trailer, which every client reads.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from livekit.protocol import models as proto_models

from ..log import get_logger
from ..rtc.data_stream import (
    BaseStreamWriter,
    ByteStreamInfo,
    ByteStreamWriter,
    TextStreamInfo,
    TextStreamWriter,
    _utf8_chunks,
)
from ..signal.client_protocol import CAP_COMPRESSION_DEFLATE_RAW, CLIENT_PROTOCOL_DATA_STREAM_V2
from .ports import DataPort, RemotePeers

logger = get_logger("room.data_stream")

__all__ = ["SendPolicy", "StreamSender", "deflate_raw", "send_policy"]

_BYTE_MIME_TYPE = "application/octet-stream"
_DEFLATE_RAW = proto_models.DataStream.DEFLATE_RAW
# Content larger than this is compressed in a worker thread rather than on the loop.
_THREAD_DEFLATE_BYTES = 1 << 20


@dataclass(frozen=True)
class SendPolicy:
    """How a one-shot send may encode its stream for its recipients."""

    inline: bool
    """Every recipient reads a stream carried whole in its header (client protocol 2)."""
    compress: bool
    """Every recipient also inflates raw DEFLATE (``CAP_COMPRESSION_DEFLATE_RAW``)."""


def send_policy(peers: RemotePeers | None, destinations: Sequence[str]) -> SendPolicy:
    """What the recipients of a send all understand.

    The recipients are ``destinations``, or every other participant when it is empty (a
    room with nobody else allows everything, as in the official SDKs). Without ``peers``
    nothing is known and the plain format is used.
    """
    if peers is None:
        return SendPolicy(inline=False, compress=False)
    recipients = tuple(destinations) or peers.remote_identities()
    inline = all(
        peers.remote_client_protocol(identity) >= CLIENT_PROTOCOL_DATA_STREAM_V2
        for identity in recipients
    )
    compress = inline and all(
        CAP_COMPRESSION_DEFLATE_RAW in peers.remote_capabilities(identity)
        for identity in recipients
    )
    return SendPolicy(inline=inline, compress=compress)


def deflate_raw(data: bytes) -> bytes:
    """``data`` compressed as raw DEFLATE (RFC 1951: no zlib header or checksum)."""
    deflater = zlib.compressobj(wbits=-15)
    return deflater.compress(data) + deflater.flush()


class StreamSender:
    """The outgoing data streams of one room.

    Args:
        port: Where the streams' packets go, and whose identity they carry.
        peers: What the other participants understand; None: nothing is known, and
            every stream is sent in the plain format.
    """

    def __init__(self, port: DataPort, *, peers: RemotePeers | None = None) -> None:
        self._port = port
        self._peers = peers
        self._tasks: set[asyncio.Future[Any]] = set()

    def policy(self, destinations: Sequence[str] | None) -> SendPolicy:
        """What the recipients of a send to ``destinations`` all understand."""
        return send_policy(self._peers, destinations or ())

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
        """Open a text stream: its header is sent before the writer is returned."""
        writer = TextStreamWriter(
            self._port,
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
        """Send ``text`` as one complete stream: inline and compressed (when
        ``compress`` and it helps) for recipients that all read those, else plain."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        data = text.encode("utf-8")
        writer = TextStreamWriter(
            self._port,
            topic=topic,
            attributes=attributes,
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
        )
        writer._header.total_length = len(data)
        writer._info.size = len(data)
        policy = self.policy(destination_identities)
        content = await _compressed(data) if compress and policy.compress else None
        if content is not None:
            writer._header.compression = _DEFLATE_RAW
        if policy.inline and await writer._send_inline(data if content is None else content):
            return writer.info
        await writer._send_header()
        async with self._aborting_on_cancel(writer):
            if content is not None:
                await writer._send_raw_chunks(content)
            else:
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
        """Open a byte stream: its header is sent before the writer is returned."""
        writer = ByteStreamWriter(
            self._port,
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
        (and, with ``compress`` and recipients that all inflate it, compressing) it a
        few chunks at a time in a worker thread. Never inline, as in the official SDK."""
        path = os.fspath(file_path)
        f: BinaryIO = await asyncio.to_thread(open, path, "rb")
        try:
            size = (await asyncio.to_thread(os.fstat, f.fileno())).st_size
            mime_type = mimetypes.guess_type(path)[0] or _BYTE_MIME_TYPE
            writer = ByteStreamWriter(
                self._port,
                name=os.path.basename(path),
                topic=topic,
                attributes=attributes,
                stream_id=stream_id,
                total_size=size,
                mime_type=mime_type,
                destination_identities=destination_identities,
            )
            deflate = compress and self.policy(destination_identities).compress
            if deflate:
                writer._header.compression = _DEFLATE_RAW
            await writer._send_header()
            async with self._aborting_on_cancel(writer):
                await writer._write_file(f, size, deflate=deflate)
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
        to ``"unknown"``): inline and compressed (when ``compress`` and it helps) for
        recipients that all read those, else plain."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        raw = data if isinstance(data, bytes) else bytes(data)
        writer = ByteStreamWriter(
            self._port,
            name=name if name is not None else "unknown",
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=len(raw),
            mime_type=mime_type or _BYTE_MIME_TYPE,
            destination_identities=destination_identities,
        )
        policy = self.policy(destination_identities)
        content = await _compressed(raw) if compress and policy.compress else None
        if content is not None:
            writer._header.compression = _DEFLATE_RAW
        if policy.inline and await writer._send_inline(raw if content is None else content):
            return writer.info
        await writer._send_header()
        async with self._aborting_on_cancel(writer):
            await writer._send_raw_chunks(raw if content is None else content)
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


async def _compressed(data: bytes) -> bytes | None:
    """``data`` deflated, or None when that does not make it smaller."""
    if len(data) > _THREAD_DEFLATE_BYTES:
        packed = await asyncio.to_thread(deflate_raw, data)
    else:
        packed = deflate_raw(data)
    return packed if len(packed) < len(data) else None


class _AbortOnCancel:
    """If the body fails or is cancelled, end the stream abnormally (best effort) so
    that its readers get an error instead of waiting for the rest."""

    def __init__(self, sender: StreamSender, writer: BaseStreamWriter) -> None:
        self._sender = sender
        self._writer = writer

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"failed: {exc}"
        self._sender._abort_soon(self._writer, reason)
