"""Data streams without a server: a fake DataPort captures the packets we send and
another manager receives them."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import models as proto_models

from livekit_py.rtc.data_stream import (
    STREAM_CHUNK_SIZE,
    ByteStreamReader,
    ByteStreamWriter,
    StreamError,
    TextStreamReader,
    TextStreamWriter,
    _utf8_chunks,
)
from livekit_py.session.stream_manager import StreamManager
from livekit_py.session.stream_receiver import DEFAULT_MAX_PAYLOAD_BYTE_LENGTH, StreamReceiver
from livekit_py.session.stream_sender import StreamSender
from tests.unit.fake_data_port import FakeDataPort

DS = proto_models.DataStream
RELIABLE = proto_models.DataPacket.Kind.RELIABLE


def manager(identity: str = "me") -> tuple[StreamManager, FakeDataPort]:
    port = FakeDataPort(identity)
    return StreamManager(port), port


def linked() -> tuple[StreamManager, StreamManager, FakeDataPort]:
    """A sending manager whose packets are delivered at once to a receiving one."""
    sender, port = manager("me")
    receiver, _ = manager("peer")
    port.deliver = receiver.handle_packet
    return sender, receiver, port


def values(packets: list[proto_models.DataPacket]) -> list[str]:
    return [p.WhichOneof("value") or "" for p in packets]


def header_packet(
    stream_id: str = "s1",
    *,
    text: bool = True,
    topic: str = "t",
    total: int | None = None,
    sender: str = "alice",
    **kw: Any,
) -> proto_models.DataPacket:
    header = DS.Header(stream_id=stream_id, topic=topic, timestamp=1234, **kw)
    if text:
        header.mime_type = "text/plain"
        header.text_header.SetInParent()
    else:
        header.mime_type = "application/octet-stream"
        header.byte_header.name = "f.bin"
    if total is not None:
        header.total_length = total
    return proto_models.DataPacket(participant_identity=sender, stream_header=header)


def chunk_packet(index: int, content: bytes, stream_id: str = "s1") -> proto_models.DataPacket:
    return proto_models.DataPacket(
        participant_identity="alice",
        stream_chunk=DS.Chunk(stream_id=stream_id, chunk_index=index, content=content),
    )


def trailer_packet(
    stream_id: str = "s1", reason: str = "", attributes: dict[str, str] | None = None
) -> proto_models.DataPacket:
    return proto_models.DataPacket(
        participant_identity="alice",
        stream_trailer=DS.Trailer(stream_id=stream_id, reason=reason, attributes=attributes or {}),
    )


class Collect:
    """A handler that keeps the readers it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []

    def __call__(self, reader: Any, identity: str) -> None:
        self.calls.append((reader, identity))

    @property
    def reader(self) -> Any:
        assert len(self.calls) == 1
        return self.calls[0][0]


async def drain(reader: Any) -> list[Any]:
    return [chunk async for chunk in reader]


# -- chunking -----------------------------------------------------------------------------


def test_utf8_chunks_never_split_a_character() -> None:
    text = "a" * 14_999 + "\N{GRINNING FACE}" + "b" * 10
    chunks = list(_utf8_chunks(text.encode()))
    assert [len(c) for c in chunks] == [14_999, 14]
    assert "".join(c.decode() for c in chunks) == text

    rng = random.Random(7)
    alphabet = "aé€\N{GRINNING FACE}ж中"
    for _ in range(20):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40_000)))
        chunks = list(_utf8_chunks(text.encode(), 1000))
        assert all(0 < len(c) <= 1000 for c in chunks)
        assert "".join(c.decode("utf-8") for c in chunks) == text  # each decodes alone


async def test_send_text_packets() -> None:
    mgr, port = manager()
    text = "héllo \N{GRINNING FACE} " * 3000  # multi-byte, > 2 chunks
    data = text.encode()
    before = int(time.time() * 1000)
    info = await mgr.sender.send_text(
        text,
        topic="chat",
        attributes={"k": "v"},
        reply_to_id="prev-stream",
        destination_identities=["bob", "carol"],
    )
    sent = port.sent
    assert values(sent) == ["stream_header"] + ["stream_chunk"] * (len(sent) - 2) + [
        "stream_trailer"
    ]
    assert all(k == RELIABLE for k in port.kinds)
    for p in sent:
        assert p.kind == RELIABLE
        assert p.participant_identity == "me"
        assert list(p.destination_identities) == ["bob", "carol"]
    header = sent[0].stream_header
    assert header.stream_id == info.stream_id and len(header.stream_id) == 36  # a UUID
    assert header.topic == "chat" and header.mime_type == "text/plain"
    assert dict(header.attributes) == {"k": "v"}
    assert header.HasField("total_length") and header.total_length == len(data)
    assert header.WhichOneof("content_header") == "text_header"
    assert header.text_header.reply_to_stream_id == "prev-stream"
    assert header.text_header.operation_type == DS.OperationType.CREATE
    assert before <= header.timestamp <= int(time.time() * 1000)
    chunks = [p.stream_chunk for p in sent[1:-1]]
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert all(c.stream_id == info.stream_id for c in chunks)
    assert all(len(c.content) <= STREAM_CHUNK_SIZE for c in chunks)
    assert b"".join(c.content for c in chunks) == data
    assert all(c.content.decode() for c in chunks)
    trailer = sent[-1].stream_trailer
    assert trailer.stream_id == info.stream_id and trailer.reason == ""
    assert (info.topic, info.mime_type, info.size, info.attributes) == (
        "chat",
        "text/plain",
        len(data),
        {"k": "v"},
    )
    assert info.timestamp == header.timestamp and info.attachments == []


async def test_send_text_empty_and_small() -> None:
    mgr, port = manager()
    await mgr.sender.send_text("")
    assert values(port.sent) == ["stream_header", "stream_trailer"]
    assert port.sent[0].stream_header.total_length == 0
    assert port.sent[0].destination_identities == []


async def test_send_file_packets(tmp_path: Path) -> None:
    mgr, port = manager()
    data = os.urandom(3 * STREAM_CHUNK_SIZE + 123)
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    info = await mgr.sender.send_file(str(path), topic="files", attributes={"a": "1"})
    sent = port.sent
    assert values(sent) == ["stream_header"] + ["stream_chunk"] * 4 + ["stream_trailer"]
    header = sent[0].stream_header
    assert header.byte_header.name == "photo.png" and header.mime_type == "image/png"
    assert header.total_length == len(data) and header.topic == "files"
    assert [len(p.stream_chunk.content) for p in sent[1:-1]] == [STREAM_CHUNK_SIZE] * 3 + [123]
    assert b"".join(p.stream_chunk.content for p in sent[1:-1]) == data
    assert (info.name, info.size, info.mime_type, info.attributes) == (
        "photo.png",
        len(data),
        "image/png",
        {"a": "1"},
    )

    unknown = tmp_path / "blob.unknownext"
    unknown.write_bytes(b"x")
    info = await mgr.sender.send_file(str(unknown))
    assert info.mime_type == "application/octet-stream"
    with pytest.raises(FileNotFoundError):
        await mgr.sender.send_file(str(tmp_path / "missing"))


async def test_send_file_reads_the_file_a_few_chunks_at_a_time() -> None:
    mgr, port = manager()
    data = os.urandom(1_000_000)

    class File:
        def __init__(self) -> None:
            self.pos = 0
            self.reads: list[int] = []

        def read(self, n: int) -> bytes:
            self.reads.append(n)
            out = data[self.pos : self.pos + n]
            self.pos += len(out)
            return out

    writer = await mgr.sender.stream_bytes("f", total_size=len(data))
    f = File()
    await writer._write_file(f, len(data))  # type: ignore[arg-type]
    await writer.aclose()
    assert max(f.reads) <= 4 * STREAM_CHUNK_SIZE and len(f.reads) > 10
    assert b"".join(p.stream_chunk.content for p in port.sent[1:-1]) == data

    # a file that turns out shorter than its size ends the stream abnormally
    writer = await mgr.sender.stream_bytes("g", total_size=10)
    f = File()
    f.pos = len(data) - 4
    with pytest.raises(StreamError, match="shrank"):
        await writer._write_file(f, 10)  # type: ignore[arg-type]


async def test_stream_bytes_and_stream_text_headers() -> None:
    mgr, port = manager()
    writer = await mgr.sender.stream_bytes(
        "clip.bin",
        total_size=40_000,
        mime_type="video/mp4",
        attributes={"x": "y"},
        stream_id="my-id",
        destination_identities=["bob"],
        topic="up",
    )
    assert isinstance(writer, ByteStreamWriter)
    header = port.sent[0].stream_header
    assert header.stream_id == "my-id" and header.total_length == 40_000
    assert header.mime_type == "video/mp4" and header.byte_header.name == "clip.bin"
    assert writer.info.size == 40_000 and writer.info.name == "clip.bin"
    await writer.write(b"\x01" * 20_000)
    await writer.write(bytearray(b"\x02" * 20_000))
    await writer.aclose(attributes={"done": "yes"})
    sent = port.sent
    assert [len(p.stream_chunk.content) for p in sent[1:-1]] == [15_000, 5_000, 15_000, 5_000]
    assert [p.stream_chunk.chunk_index for p in sent[1:-1]] == [0, 1, 2, 3]
    assert dict(sent[-1].stream_trailer.attributes) == {"done": "yes"}
    assert all(list(p.destination_identities) == ["bob"] for p in sent)

    port.sent.clear()
    text_writer = await mgr.sender.stream_text(total_size=99, sender_identity="agent-proxy")
    assert isinstance(text_writer, TextStreamWriter)
    header = port.sent[0].stream_header
    # the length of an incrementally written text is not announced
    assert not header.HasField("total_length") and text_writer.info.size == 99
    assert header.mime_type == "text/plain" and header.text_header.reply_to_stream_id == ""
    await text_writer.write("x")
    await text_writer.aclose()
    assert {p.participant_identity for p in port.sent} == {"agent-proxy"}


async def test_writer_misuse_and_errors() -> None:
    mgr, port = manager()
    writer = await mgr.sender.stream_text()
    await writer.aclose()
    with pytest.raises(RuntimeError):
        await writer.write("late")
    with pytest.raises(RuntimeError):
        await writer.aclose()
    with pytest.raises(TypeError):
        await (await mgr.sender.stream_text()).write(b"bytes")  # type: ignore[arg-type]

    port.connected = False
    with pytest.raises(StreamError) as err:
        await mgr.sender.send_text("hi")
    assert isinstance(err.value, ConnectionError) and "not connected" in err.value.description

    port.connected = True
    port.sent.clear()
    with pytest.raises(StreamError, match="header"):
        await mgr.sender.stream_text(attributes={"big": "x" * 20_000})
    assert port.sent == []


async def test_cancelled_send_file_aborts_the_stream(tmp_path: Path) -> None:
    mgr, port = manager()
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(50 * STREAM_CHUNK_SIZE))
    three_sent = asyncio.Event()
    port.deliver = lambda _: three_sent.set() if len(port.sent) >= 3 else None
    task = asyncio.create_task(mgr.sender.send_file(str(path)))
    await three_sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(10):
        await asyncio.sleep(0)
    last = port.sent[-1]
    assert last.WhichOneof("value") == "stream_trailer"
    assert last.stream_trailer.reason == "cancelled"


# -- loopback: our sender, our receiver ---------------------------------------------------


async def test_loopback_text_and_bytes(tmp_path: Path) -> None:
    sender, receiver, _ = linked()
    texts, files = Collect(), Collect()
    receiver.register_text_stream_handler("chat", texts)
    receiver.register_byte_stream_handler("files", files)

    text = "日本語 and ascii \N{GRINNING FACE}" * 5000
    info = await sender.sender.send_text(text, topic="chat", attributes={"a": "b"})
    reader, identity = texts.calls[0]
    assert isinstance(reader, TextStreamReader) and identity == "me"
    assert await reader.read_all() == text
    assert reader.info.stream_id == info.stream_id and reader.info.attributes == {"a": "b"}
    assert reader.info.size == len(text.encode()) and reader.info.timestamp == info.timestamp

    data = os.urandom(200_000)
    path = tmp_path / "d.bin"
    path.write_bytes(data)
    await sender.sender.send_file(str(path), topic="files")
    reader = files.reader
    assert isinstance(reader, ByteStreamReader)
    chunks = await drain(reader)
    assert b"".join(chunks) == data and all(len(c) <= STREAM_CHUNK_SIZE for c in chunks)
    assert reader.info.name == "d.bin" and reader.info.size == len(data)


async def test_incremental_writes_are_read_as_they_arrive() -> None:
    sender, receiver, _ = linked()
    got = Collect()
    receiver.register_text_stream_handler("", got)
    writer = await sender.sender.stream_text(reply_to_id="r1")
    reader = got.reader
    assert reader.info.size == 0
    await writer.write("first ")
    assert await reader.__anext__() == "first "
    await writer.write("second")
    assert await reader.__anext__() == "second"
    await writer.aclose(attributes={"final": "1"})
    assert await drain(reader) == []
    assert reader.info.attributes == {"final": "1"}


async def test_handler_called_synchronously_and_async_handlers_run() -> None:
    sender, receiver, _ = linked()
    calls: list[str] = []

    def handler(reader: TextStreamReader, identity: str) -> None:
        calls.append(identity)

    results: list[str] = []

    async def async_handler(reader: TextStreamReader, identity: str) -> None:
        results.append(await reader.read_all())

    receiver.register_text_stream_handler("sync", handler)
    receiver.register_text_stream_handler("async", async_handler)  # type: ignore[arg-type]
    receiver.handle_packet(header_packet(topic="sync"))
    assert calls == ["alice"]  # before handle_packet returned
    await sender.sender.send_text("via async", topic="async")
    for _ in range(20):
        await asyncio.sleep(0)
    assert results == ["via async"]


def test_register_twice_raises() -> None:
    mgr, _ = manager()
    mgr.register_text_stream_handler("t", Collect())
    with pytest.raises(ValueError):
        mgr.register_text_stream_handler("t", Collect())
    mgr.register_byte_stream_handler("t", Collect())  # another kind, same topic: fine
    with pytest.raises(ValueError):
        mgr.register_byte_stream_handler("t", Collect())
    mgr.unregister_text_stream_handler("t")
    mgr.unregister_text_stream_handler("t")  # unknown: no error
    mgr.register_text_stream_handler("t", Collect())


def test_stream_without_handler_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    mgr, _ = manager()
    mgr.register_byte_stream_handler("t", Collect())  # bytes, but a text stream comes
    with caplog.at_level(logging.INFO, logger="livekit_py.rtc.data_stream"):
        mgr.handle_packet(header_packet(topic="t"))
        mgr.handle_packet(chunk_packet(0, b"x"))
        mgr.handle_packet(trailer_packet())
    assert "no handler" in caplog.text
    assert mgr.receiver.open_streams == ()


def test_handler_exception_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    mgr, _ = manager()

    def bad(reader: TextStreamReader, identity: str) -> None:
        raise RuntimeError("boom")

    mgr.register_text_stream_handler("t", bad)
    mgr.handle_packet(header_packet(topic="t"))
    assert "raised" in caplog.text


# -- reader endings and protocol errors ---------------------------------------------------


async def receiving(**kw: Any) -> tuple[StreamManager, Any]:
    mgr, _ = manager()
    got = Collect()
    mgr.register_text_stream_handler("t", got)
    mgr.register_byte_stream_handler("t", got)
    mgr.handle_packet(header_packet(**kw))
    return mgr, got.reader


async def test_sender_leaving_ends_the_stream_with_an_error() -> None:
    mgr, reader = await receiving()
    mgr.handle_packet(chunk_packet(0, b"partial "))
    mgr.on_participant_left("someone-else")
    mgr.on_participant_left("alice")
    assert await reader.__anext__() == "partial "  # what arrived first is still read
    with pytest.raises(StreamError, match="alice left"):
        await reader.__anext__()
    with pytest.raises(StreamError):  # and again
        await reader.__anext__()
    mgr.handle_packet(chunk_packet(1, b"late"))  # ignored
    assert mgr.receiver.open_streams == ()


async def test_disconnect_ends_waiting_readers() -> None:
    mgr, reader = await receiving(text=False)
    waiting = asyncio.create_task(drain(reader))
    await asyncio.sleep(0)
    await mgr.on_disconnected()
    with pytest.raises(StreamError, match="disconnected"):
        await waiting


async def test_trailer_reason_and_attributes() -> None:
    mgr, reader = await receiving(attributes={"h": "1"})
    mgr.handle_packet(trailer_packet(reason="user aborted", attributes={"t": "2"}))
    with pytest.raises(StreamError, match="user aborted"):
        await reader.read_all()
    assert reader.info.attributes == {"h": "1", "t": "2"}


async def test_missing_chunk_and_length_errors() -> None:
    mgr, reader = await receiving()
    mgr.handle_packet(chunk_packet(0, b"a"))
    mgr.handle_packet(chunk_packet(0, b"a"))  # duplicate: dropped
    mgr.handle_packet(chunk_packet(2, b"c"))  # 1 is missing
    assert await reader.__anext__() == "a"
    with pytest.raises(StreamError, match="expected"):
        await reader.__anext__()

    mgr, reader = await receiving(stream_id="s2", total=3, text=False)
    mgr.handle_packet(chunk_packet(0, b"abcd", stream_id="s2"))
    with pytest.raises(StreamError, match="more than"):
        await drain(reader)

    mgr, reader = await receiving(stream_id="s3", total=3, text=False)
    mgr.handle_packet(chunk_packet(0, b"ab", stream_id="s3"))
    mgr.handle_packet(trailer_packet("s3"))
    with pytest.raises(StreamError, match="2 of the 3"):
        await drain(reader)


async def test_text_split_inside_a_character_by_another_sender() -> None:
    mgr, reader = await receiving()
    data = "é\N{GRINNING FACE}z".encode()
    for i, byte in enumerate(data):
        mgr.handle_packet(chunk_packet(i, bytes([byte])))
    mgr.handle_packet(trailer_packet())
    assert await drain(reader) == ["é", "\N{GRINNING FACE}", "z"]


async def test_invalid_utf8_raises() -> None:
    mgr, reader = await receiving()
    mgr.handle_packet(chunk_packet(0, b"ok\xff"))
    mgr.handle_packet(trailer_packet())
    with pytest.raises(StreamError, match="UTF-8"):
        await reader.read_all()

    mgr, reader = await receiving(stream_id="s2")
    mgr.handle_packet(chunk_packet(0, "€".encode()[:2], stream_id="s2"))  # truncated
    mgr.handle_packet(trailer_packet("s2"))
    with pytest.raises(StreamError, match="UTF-8"):
        await reader.read_all()


async def test_compressed_and_inline_streams() -> None:
    text = "compress me " * 5000

    def deflate_raw(data: bytes) -> bytes:
        c = zlib.compressobj(wbits=-15)
        return c.compress(data) + c.flush()

    compressed = deflate_raw(text.encode())
    mgr, reader = await receiving(
        total=len(text.encode()), compression=DS.CompressionType.DEFLATE_RAW
    )
    parts = [compressed[i : i + 100] for i in range(0, len(compressed), 100)]
    for i, part in enumerate(parts):
        mgr.handle_packet(chunk_packet(i, part))
    mgr.handle_packet(trailer_packet())
    assert await reader.read_all() == text

    mgr, reader = await receiving(text=False, inline_content=b"all at once", total=11)
    assert await drain(reader) == [b"all at once"]
    assert mgr.receiver.open_streams == ()

    mgr, reader = await receiving(
        inline_content=deflate_raw(b"tiny"), compression=DS.CompressionType.DEFLATE_RAW
    )
    assert await reader.read_all() == "tiny"


async def test_closed_reader_drops_content() -> None:
    mgr, reader = await receiving(text=False)
    mgr.handle_packet(chunk_packet(0, b"x" * 100))
    reader.close()
    mgr.handle_packet(chunk_packet(1, b"y" * 100))
    assert reader._buffered == 0
    assert await drain(reader) == []
    mgr.handle_packet(trailer_packet())
    assert mgr.receiver.open_streams == ()


async def test_payload_limit() -> None:
    mgr = StreamManager(FakeDataPort(), max_payload_byte_length=10)
    got = Collect()
    mgr.register_byte_stream_handler("t", got)
    mgr.handle_packet(header_packet(text=False, total=11))
    with pytest.raises(StreamError, match="larger than the 10 bytes"):
        await drain(got.reader)
    assert mgr.receiver.open_streams == ()

    got.calls.clear()
    mgr.handle_packet(header_packet("s2", text=False))
    mgr.handle_packet(chunk_packet(0, b"123456", stream_id="s2"))
    mgr.handle_packet(chunk_packet(1, b"789012", stream_id="s2"))
    with pytest.raises(StreamError, match="larger than"):
        await drain(got.reader)

    got.calls.clear()
    mgr.handle_packet(header_packet("s3", text=False, total=5, inline_content=b"abc"))
    with pytest.raises(StreamError, match="not the 5 announced"):
        await drain(got.reader)


# -- the two halves alone -----------------------------------------------------------------


async def test_receiver_reassembles_without_a_connection() -> None:
    receiver = StreamReceiver()
    got = Collect()
    receiver.register_text_stream_handler("t", got)
    receiver.handle_packet(header_packet(total=5))
    assert receiver.open_streams == ("s1",)
    receiver.handle_packet(chunk_packet(0, b"he"))
    receiver.handle_packet(chunk_packet(1, b"llo"))
    receiver.handle_packet(trailer_packet(attributes={"k": "v"}))
    assert not receiver.open_streams
    reader, identity = got.calls[0]
    assert identity == "alice"
    assert await reader.read_all() == "hello"
    assert reader.info.attributes == {"k": "v"}


def test_receiver_payload_limit_setting() -> None:
    receiver = StreamReceiver()
    assert receiver.max_payload_byte_length == DEFAULT_MAX_PAYLOAD_BYTE_LENGTH
    receiver.max_payload_byte_length = 10
    assert receiver.max_payload_byte_length == 10
    for bad in (None, 0, -1, True):
        receiver.max_payload_byte_length = bad
        assert receiver.max_payload_byte_length == DEFAULT_MAX_PAYLOAD_BYTE_LENGTH
    assert StreamReceiver(max_payload_byte_length=7).max_payload_byte_length == 7
    mgr = StreamManager(FakeDataPort(), max_payload_byte_length=7)
    assert mgr.receiver.max_payload_byte_length == 7


async def test_sender_uses_the_ports_identity() -> None:
    port = FakeDataPort("")  # before the first join
    sender = StreamSender(port)
    early = await sender.stream_text()
    port.local_identity = "later"
    await early.write("x")
    await early.aclose()
    assert {p.participant_identity for p in port.sent} == {""}  # read when opened
    port.sent.clear()
    await sender.send_bytes(b"abc", name="n", destination_identities=["bob"])
    assert values(port.sent) == ["stream_header", "stream_chunk", "stream_trailer"]
    assert {p.participant_identity for p in port.sent} == {"later"}
    assert all(list(p.destination_identities) == ["bob"] for p in port.sent)
    assert set(port.kinds) == {RELIABLE}


async def test_writers_are_made_for_a_local_participant_as_in_the_official_sdk() -> None:
    """``TextStreamWriter(room.local_participant, topic=...)`` as official code writes it."""
    from livekit_py.rtc.participant import LocalParticipant

    port = FakeDataPort("alice")
    participant = LocalParticipant(
        proto_models.ParticipantInfo(identity="alice", sid="PA_a"),
        port,  # type: ignore[arg-type]  # the fake has the DataPort part of the port
    )
    text = TextStreamWriter(local_participant=participant, topic="chat")
    await text._send_header()
    await text.write("hi")
    await text.aclose()
    data = ByteStreamWriter(participant, name="f.bin")
    await data._send_header()
    await data.write(b"\x00\x01")
    await data.aclose()
    assert values(port.sent) == ["stream_header", "stream_chunk", "stream_trailer"] * 2
    assert {p.participant_identity for p in port.sent} == {"alice"}
