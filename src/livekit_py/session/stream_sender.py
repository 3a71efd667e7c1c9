"""Outgoing data streams: opening writers and the one-shot sends.

:class:`StreamSender` opens :class:`~livekit_py.rtc.data_stream.TextStreamWriter` /
:class:`~livekit_py.rtc.data_stream.ByteStreamWriter` streams (header sent before
they are returned) and sends whole texts, files and buffers as complete streams,
ending them abnormally when the send fails or is cancelled. Everything goes out
through a :class:`~livekit_py.session.ports.DataPort`.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from typing import Any, BinaryIO

from ..log import get_logger
from ..rtc.data_stream import (
    BaseStreamWriter,
    ByteStreamInfo,
    ByteStreamWriter,
    TextStreamInfo,
    TextStreamWriter,
    _utf8_chunks,
)
from .ports import DataPort

logger = get_logger("room.data_stream")

__all__ = ["StreamSender"]

_BYTE_MIME_TYPE = "application/octet-stream"


class StreamSender:
    """The outgoing data streams of one room.

    Args:
        port: Where the streams' packets go, and whose identity they carry.
    """

    def __init__(self, port: DataPort) -> None:
        self._port = port
        self._tasks: set[asyncio.Future[Any]] = set()

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
        """Send ``text`` as one complete stream. ``compress`` is accepted for
        compatibility; streams are sent uncompressed, which every client reads."""
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
        it a few chunks at a time in a worker thread. ``compress`` is accepted for
        compatibility; streams are sent uncompressed."""
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
            self._port,
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
