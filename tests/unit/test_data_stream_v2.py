"""Data streams v2 on the sending side: inline single-packet streams and raw DEFLATE
compression, chosen from what the recipients advertise (as the official SDKs choose),
and read back by our receiver."""

from __future__ import annotations

import asyncio
import random
import zlib
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import models as proto_models

from livekit_py.rtc.data_stream import STREAM_CHUNK_SIZE, ByteStreamReader, TextStreamReader
from livekit_py.session.stream_manager import StreamManager
from livekit_py.session.stream_sender import SendPolicy, deflate_raw, send_policy
from livekit_py.signal.client_protocol import (
    CAP_COMPRESSION_DEFLATE_RAW,
    CLIENT_PROTOCOL_DATA_STREAM_RPC,
    CLIENT_PROTOCOL_DATA_STREAM_V2,
    CLIENT_PROTOCOL_DEFAULT,
)
from tests.unit.fake_data_port import FakeDataPort, FakePeers

DS = proto_models.DataStream
V2 = CLIENT_PROTOCOL_DATA_STREAM_V2
DEFLATE = CAP_COMPRESSION_DEFLATE_RAW


def linked(peers: FakePeers) -> tuple[StreamManager, StreamManager, FakeDataPort]:
    """Our sending manager, its packets delivered at once to a receiving one."""
    port = FakeDataPort("me")
    sender = StreamManager(port, peers=peers)
    receiver = StreamManager(FakeDataPort("peer"))
    port.deliver = receiver.handle_packet
    return sender, receiver, port


def headers(port: FakeDataPort) -> list[proto_models.DataStream.Header]:
    return [p.stream_header for p in port.sent if p.WhichOneof("value") == "stream_header"]


def kinds(port: FakeDataPort) -> list[str]:
    return [p.WhichOneof("value") or "" for p in port.sent]


def words_text(n: int, seed: int = 5) -> str:
    """Text that compresses to about 40 % (so that it still takes several chunks)."""
    rng = random.Random(seed)
    words = ["café", "€", "\N{GRINNING FACE}", "rpc", "stream", "data", "über", "niño"]
    return " ".join(rng.choice(words) + str(rng.randrange(10**6)) for _ in range(n))


class Collect:
    def __init__(self) -> None:
        self.readers: list[Any] = []

    def __call__(self, reader: Any, identity: str) -> None:
        self.readers.append(reader)


def test_policy_follows_every_recipient() -> None:
    room = (
        FakePeers()
        .add("old", CLIENT_PROTOCOL_DEFAULT)
        .add("rpc", CLIENT_PROTOCOL_DATA_STREAM_RPC)
        .add("v2", V2)
        .add("v2z", V2, DEFLATE)
        .add("v2z2", V2, DEFLATE)
    )
    assert send_policy(room, ["v2z", "v2z2"]) == SendPolicy(inline=True, compress=True)
    assert send_policy(room, ["v2z", "v2"]) == SendPolicy(inline=True, compress=False)
    assert send_policy(room, ["v2z", "rpc"]) == SendPolicy(inline=False, compress=False)
    assert send_policy(room, ["v2z", "old"]) == SendPolicy(inline=False, compress=False)
    # an unknown identity is taken as an old client
    assert send_policy(room, ["nobody"]) == SendPolicy(inline=False, compress=False)
    # no destinations: everybody in the room
    assert send_policy(room, []) == SendPolicy(inline=False, compress=False)
    assert send_policy(FakePeers().add("a", V2, DEFLATE), []) == SendPolicy(True, True)
    # an empty room allows everything (as the official SDKs); nothing known, nothing
    assert send_policy(FakePeers(), []) == SendPolicy(inline=True, compress=True)
    assert send_policy(None, ["v2z"]) == SendPolicy(inline=False, compress=False)


def test_deflate_raw_is_raw_deflate() -> None:
    data = b"hello hello hello hello " * 100
    packed = deflate_raw(data)
    assert len(packed) < len(data)
    assert zlib.decompress(packed, wbits=-15) == data
    with pytest.raises(zlib.error):
        zlib.decompress(packed)  # no zlib header: not the zlib format


async def test_short_text_goes_inline_and_compressed_when_it_helps() -> None:
    sender, receiver, port = linked(FakePeers().add("peer", V2, DEFLATE))
    got = Collect()
    receiver.register_text_stream_handler("chat", got)

    text = "compressible " * 50
    info = await sender.sender.send_text(text, topic="chat", destination_identities=["peer"])
    (header,) = headers(port)
    assert kinds(port) == ["stream_header"]  # one packet: no chunk, no trailer
    assert header.compression == DS.DEFLATE_RAW
    assert header.total_length == len(text.encode()) == info.size
    assert zlib.decompress(header.inline_content, wbits=-15) == text.encode()

    await sender.sender.send_text("short", topic="chat", destination_identities=["peer"])
    second = headers(port)[1]
    assert kinds(port) == ["stream_header", "stream_header"]
    assert second.compression == DS.NONE  # deflate would not make it smaller
    assert second.inline_content == b"short"

    texts = [await r.read_all() for r in got.readers]
    assert texts == [text, "short"]


async def test_without_the_capability_inline_but_not_compressed() -> None:
    sender, receiver, port = linked(FakePeers().add("peer", V2))
    got = Collect()
    receiver.register_byte_stream_handler("b", got)
    data = b"\0" * 1000
    info = await sender.sender.send_bytes(data, topic="b")
    (header,) = headers(port)
    assert kinds(port) == ["stream_header"]
    assert (header.compression, header.inline_content) == (DS.NONE, data)
    assert (info.name, info.mime_type, info.size) == ("unknown", "application/octet-stream", 1000)
    assert b"".join([c async for c in got.readers[0]]) == data


async def test_compress_false_is_honoured() -> None:
    sender, _, port = linked(FakePeers().add("peer", V2, DEFLATE))
    await sender.sender.send_text("a" * 5000, compress=False)
    (header,) = headers(port)
    assert header.compression == DS.NONE and header.inline_content == b"a" * 5000


@pytest.mark.parametrize(
    "client_protocol", [CLIENT_PROTOCOL_DEFAULT, CLIENT_PROTOCOL_DATA_STREAM_RPC]
)
async def test_older_recipients_get_the_plain_format(client_protocol: int) -> None:
    sender, receiver, port = linked(FakePeers().add("peer", client_protocol, DEFLATE))
    got = Collect()
    receiver.register_text_stream_handler("", got)
    await sender.sender.send_text("hello " * 100)
    assert kinds(port) == ["stream_header", "stream_chunk", "stream_trailer"]
    (header,) = headers(port)
    assert header.compression == DS.NONE and not header.HasField("inline_content")
    assert await got.readers[0].read_all() == "hello " * 100


async def test_large_content_is_chunked_compressed_and_read_back() -> None:
    sender, receiver, port = linked(FakePeers().add("peer", V2, DEFLATE))
    text_got, bytes_got = Collect(), Collect()
    receiver.register_text_stream_handler("", text_got)
    receiver.register_byte_stream_handler("", bytes_got)

    # >100 kB of text with non-ASCII characters: compressed to several chunks
    text = words_text(12_000)
    assert len(text.encode()) > 100_000
    await sender.sender.send_text(text)
    (header,) = headers(port)
    chunks = [p.stream_chunk for p in port.sent if p.WhichOneof("value") == "stream_chunk"]
    assert header.compression == DS.DEFLATE_RAW and not header.HasField("inline_content")
    assert header.total_length == len(text.encode())
    assert all(len(c.content) <= STREAM_CHUNK_SIZE for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    packed = b"".join(c.content for c in chunks)
    assert zlib.decompress(packed, wbits=-15) == text.encode()
    assert len(packed) < len(text.encode())
    assert await text_got.readers[0].read_all() == text

    # random bytes do not compress: sent as they are, in full chunks
    port.sent.clear()
    noise = random.Random(3).randbytes(40_000)  # incompressible
    await sender.sender.send_bytes(noise, name="n.bin", mime_type="application/x-test")
    (header,) = headers(port)
    assert header.compression == DS.NONE
    assert [len(p.stream_chunk.content) for p in port.sent[1:-1]] == [
        min(STREAM_CHUNK_SIZE, len(noise) - i) for i in range(0, len(noise), STREAM_CHUNK_SIZE)
    ]
    reader: ByteStreamReader = bytes_got.readers[0]
    assert b"".join([c async for c in reader]) == noise
    assert (reader.info.name, reader.info.mime_type) == ("n.bin", "application/x-test")


async def test_a_header_too_big_to_inline_falls_back_to_chunks() -> None:
    sender, receiver, port = linked(FakePeers().add("peer", V2))
    got = Collect()
    receiver.register_text_stream_handler("", got)
    text = "x" * (STREAM_CHUNK_SIZE - 50)  # fits alone, not with the header around it
    await sender.sender.send_text(text, attributes={"k": "v" * 100})
    assert kinds(port) == ["stream_header", "stream_chunk", "stream_trailer"]
    assert await got.readers[0].read_all() == text


async def test_send_file_is_compressed_as_it_is_read(tmp_path: Path) -> None:
    sender, receiver, port = linked(FakePeers().add("peer", V2, DEFLATE))
    got = Collect()
    receiver.register_byte_stream_handler("files", got)
    content = b"".join(b"row %06d: some repetitive content\n" % i for i in range(20_000))
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    info = await sender.sender.send_file(str(path), topic="files")
    header = headers(port)[0]
    assert kinds(port)[0] == "stream_header" and kinds(port)[-1] == "stream_trailer"
    assert header.compression == DS.DEFLATE_RAW and not header.HasField("inline_content")
    assert header.total_length == len(content) == info.size
    assert (info.name, info.mime_type) == ("data.csv", "text/csv")
    chunks = [p.stream_chunk.content for p in port.sent if p.WhichOneof("value") == "stream_chunk"]
    assert all(len(c) == STREAM_CHUNK_SIZE for c in chunks[:-1])
    assert sum(map(len, chunks)) < len(content) // 4
    reader: ByteStreamReader = got.readers[0]
    assert b"".join([c async for c in reader]) == content

    # not to a recipient without the capability (and never inline)
    port.sent.clear()
    sender.sender._peers = FakePeers().add("peer", V2)
    small = tmp_path / "small.txt"
    small.write_bytes(b"tiny")
    await sender.sender.send_file(str(small))
    assert kinds(port) == ["stream_header", "stream_chunk", "stream_trailer"]
    assert headers(port)[0].compression == DS.NONE


async def test_incremental_writers_are_never_inline_or_compressed() -> None:
    sender, _, port = linked(FakePeers().add("peer", V2, DEFLATE))
    writer = await sender.sender.stream_text()
    await writer.write("a" * 1000)
    await writer.aclose()
    assert kinds(port) == ["stream_header", "stream_chunk", "stream_trailer"]
    assert headers(port)[0].compression == DS.NONE


async def test_compressed_stream_beyond_the_limit_is_refused_without_inflating_it() -> None:
    receiver = StreamManager(FakeDataPort("peer"), max_payload_byte_length=10_000)
    got = Collect()
    receiver.register_byte_stream_handler("", got)
    bomb = deflate_raw(b"\0" * 10_000_000)  # ~10 kB on the wire, 10 MB inflated
    header = DS.Header(stream_id="s", mime_type="application/octet-stream")
    header.byte_header.name = "bomb"
    header.compression = DS.DEFLATE_RAW
    receiver.handle_packet(proto_models.DataPacket(participant_identity="a", stream_header=header))
    receiver.handle_packet(
        proto_models.DataPacket(
            participant_identity="a",
            stream_chunk=DS.Chunk(stream_id="s", chunk_index=0, content=bomb),
        )
    )
    reader: ByteStreamReader = got.readers[0]
    with pytest.raises(Exception, match="larger than the 10000 bytes"):
        async for _ in reader:
            pass


async def test_reader_on_close_is_called_once() -> None:
    header = DS.Header(stream_id="s", mime_type="text/plain")
    header.text_header.SetInParent()
    calls: list[str] = []
    reader = TextStreamReader(header, on_close=lambda: calls.append("closed"))
    reader._push(b"abc")
    reader._end()
    assert await reader.read_all() == "abc"
    assert calls == ["closed"]
    reader.close()
    assert calls == ["closed"]

    closed_early = ByteStreamReader(header, on_close=lambda: calls.append("early"))
    closed_early.close()
    closed_early.close()
    assert calls == ["closed", "early"]
    assert [c async for c in closed_early] == []
    await asyncio.sleep(0)


def test_the_room_tells_the_managers_what_the_others_understand() -> None:
    from livekit_py.rtc.room import DataStreamOptions, Room, RoomOptions
    from livekit_py.session.model import ParticipantRecord

    room = Room()
    room._model.remote["new"] = ParticipantRecord.from_info(
        proto_models.ParticipantInfo(identity="new", client_protocol=2, capabilities=[1, 2])
    )
    room._model.remote["old"] = ParticipantRecord.from_info(
        proto_models.ParticipantInfo(identity="old")
    )
    port = room._port
    assert port.remote_identities() == ("new", "old")
    assert (port.remote_client_protocol("new"), port.remote_client_protocol("old")) == (2, 0)
    assert port.remote_client_protocol("nobody") == 0
    assert port.remote_capabilities("new") == frozenset({1, DEFLATE})
    assert port.remote_capabilities("nobody") == frozenset()
    # one RPC manager, riding on the stream manager, made in either order
    assert room._rpc_manager() is room._rpc_manager()
    assert room._rpc_manager()._streams is room._stream_manager()
    assert room._stream_manager().sender.policy(["new"]) == SendPolicy(True, True)
    assert room._stream_manager().sender.policy([]) == SendPolicy(False, False)

    other = Room()
    other._options = RoomOptions(data_stream=DataStreamOptions(max_payload_byte_length=1234))
    streams = other._stream_manager()
    assert streams.receiver.max_payload_byte_length == 1234
    assert other._rpc is not None and other._rpc._streams is streams
    assert DataStreamOptions().max_payload_byte_length is None
