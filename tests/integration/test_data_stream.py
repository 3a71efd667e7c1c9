"""Data streams through a real server, with the official SDK (livekit==1.2.1) as the peer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc as official
from livekit.protocol import models as proto_models

from livekit_py import rtc
from livekit_py.rtc.data_stream import ByteStreamReader, StreamError, TextStreamReader
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.wire_tap import WireTap

pytestmark = [pytest.mark.server, pytest.mark.interop]

logger = logging.getLogger(__name__)

FILE_SIZE = 5 * 1024 * 1024
NONE = proto_models.DataStream.NONE
DEFLATE_RAW = proto_models.DataStream.DEFLATE_RAW


def multibyte_text(size: int) -> str:
    """At least ``size`` UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters."""
    unit = "plain ascii, accentué, ελληνικά, 中文字符, emoji \N{GRINNING FACE}\N{ROCKET}\n"
    return unit * (size // len(unit.encode()) + 1)


@asynccontextmanager
async def joined(
    server_url: str, make_token: TokenFactory, *names: str
) -> AsyncIterator[dict[str, Any]]:
    """Rooms for ``names``: those starting with "official" use the official SDK."""
    rooms: dict[str, Any] = {}
    try:
        for name in names:
            room = official.Room() if name.startswith("official") else rtc.Room()
            rooms[name] = room
            await room.connect(server_url, make_token(name))
        for name, room in rooms.items():
            others = set(rooms) - {name}
            await wait_until(
                lambda room=room, others=others: others <= set(room.remote_participants),
                what=f"{name} sees everyone",
            )
        yield rooms
    finally:
        for room in rooms.values():
            await room.disconnect()


class Readers:
    """A stream handler collecting (reader, sender identity) pairs."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []

    def __call__(self, reader: Any, identity: str) -> None:
        self.calls.append((reader, identity))

    async def next(self, timeout: float = 10.0) -> tuple[Any, str]:
        await wait_until(lambda: bool(self.calls), timeout=timeout, what="a stream")
        return self.calls.pop(0)


async def read_bytes(reader: Any) -> tuple[bytes, float]:
    received = bytearray()
    async for chunk in reader:
        received += chunk
    return bytes(received), time.monotonic()


async def test_text_both_ways(server_url: str, make_token: TokenFactory) -> None:
    text = multibyte_text(100 * 1024)
    assert 100 * 1024 <= len(text.encode()) < 110 * 1024 and len(text.encode()) != len(text)
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours, theirs = rooms["ours"], rooms["official"]
        their_readers, our_readers = Readers(), Readers()
        theirs.register_text_stream_handler("chat", their_readers)
        ours.register_text_stream_handler("chat", our_readers)

        # ours -> official
        info = await ours.local_participant.send_text(
            text, topic="chat", attributes={"lang": "mixed"}, reply_to_id="earlier-id"
        )
        reader, sender = await their_readers.next()
        assert sender == "ours"
        assert await asyncio.wait_for(reader.read_all(), 20) == text
        assert reader.info.stream_id == info.stream_id
        assert reader.info.topic == "chat" and reader.info.mime_type == "text/plain"
        assert reader.info.attributes == {"lang": "mixed"}
        assert reader.info.size == len(text.encode()) == info.size
        assert reader.info.timestamp == info.timestamp
        assert abs(info.timestamp - time.time() * 1000) < 60_000

        # official -> ours
        their_info = await theirs.local_participant.send_text(
            text, topic="chat", attributes={"from": "official"}, reply_to_id=info.stream_id
        )
        reader, sender = await our_readers.next()
        assert sender == "official" and isinstance(reader, TextStreamReader)
        assert await asyncio.wait_for(reader.read_all(), 20) == text
        assert reader.info.stream_id == their_info.stream_id
        assert reader.info.attributes == {"from": "official"}
        assert reader.info.topic == "chat" and reader.info.timestamp == their_info.timestamp

        # a topic nobody handles is dropped without disturbing the next stream
        await theirs.local_participant.send_text("nobody listens", topic="elsewhere")
        await theirs.local_participant.send_text("short", topic="chat")
        reader, _ = await our_readers.next()
        assert await reader.read_all() == "short"


async def test_file_both_ways(server_url: str, make_token: TokenFactory, tmp_path: Path) -> None:
    data = os.urandom(FILE_SIZE)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours, theirs = rooms["ours"], rooms["official"]
        their_readers, our_readers = Readers(), Readers()
        theirs.register_byte_stream_handler("files", their_readers)
        ours.register_byte_stream_handler("files", our_readers)

        # ours -> official
        start = time.monotonic()
        send = asyncio.create_task(
            ours.local_participant.send_file(str(path), topic="files", attributes={"n": "1"})
        )
        reader, sender = await their_readers.next()
        received, end = await asyncio.wait_for(read_bytes(reader), 40)
        info = await send
        assert sender == "ours" and hashlib.sha256(received).hexdigest() == expected
        assert reader.info.name == "payload.bin" and reader.info.size == FILE_SIZE
        assert reader.info.attributes == {"n": "1"} and reader.info.stream_id == info.stream_id
        out_rate = FILE_SIZE / (end - start) / 1e6
        logger.info("5 MB ours -> official: %.2f s, %.2f MB/s", end - start, out_rate)

        # official -> ours
        start = time.monotonic()
        send = asyncio.create_task(theirs.local_participant.send_file(str(path), topic="files"))
        reader, sender = await our_readers.next()
        assert isinstance(reader, ByteStreamReader)
        received, end = await asyncio.wait_for(read_bytes(reader), 40)
        info = await send
        assert sender == "official" and hashlib.sha256(received).hexdigest() == expected
        assert reader.info.name == "payload.bin" and reader.info.size == FILE_SIZE
        assert reader.info.stream_id == info.stream_id
        in_rate = FILE_SIZE / (end - start) / 1e6
        logger.info("5 MB official -> ours: %.2f s, %.2f MB/s", end - start, in_rate)
        print(f"\n5 MB file: ours->official {out_rate:.2f} MB/s, official->ours {in_rate:.2f} MB/s")


async def consume(reader: Any, seen: list[Any]) -> None:
    async for chunk in reader:
        seen.append(chunk)


async def test_incremental_writes_are_read_as_they_arrive(
    server_url: str, make_token: TokenFactory
) -> None:
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours, theirs = rooms["ours"], rooms["official"]
        their_text, their_bytes, our_text = Readers(), Readers(), Readers()
        theirs.register_text_stream_handler("llm", their_text)
        theirs.register_byte_stream_handler("raw", their_bytes)
        ours.register_text_stream_handler("llm", our_text)

        pairs = ((ours, their_text, "ours"), (theirs, our_text, "official"))
        for writer_room, readers, sender in pairs:
            writer = await writer_room.local_participant.stream_text(
                topic="llm", attributes={"kind": "tokens"}
            )
            await writer.write("Hello, ")
            reader, identity = await readers.next()
            assert identity == sender and reader.info.attributes == {"kind": "tokens"}
            seen: list[str] = []
            reading = asyncio.create_task(consume(reader, seen))
            # each piece is read while the writer is still open
            await wait_until(lambda seen=seen: seen == ["Hello, "], what="the first piece")
            await writer.write("wörld ")
            await writer.write("\N{GRINNING FACE}")
            await wait_until(
                lambda seen=seen: "".join(seen) == "Hello, wörld \N{GRINNING FACE}",
                what="the later pieces",
            )
            assert not reading.done()
            await writer.aclose(attributes={"finished": "yes"})
            await asyncio.wait_for(reading, 10)
            assert reader.info.attributes == {"kind": "tokens", "finished": "yes"}

        # a byte stream written in pieces, with its size announced
        writer = await ours.local_participant.stream_bytes(
            "pieces.bin", total_size=40_000, mime_type="application/x-test", topic="raw"
        )
        await writer.write(b"\x01" * 20_000)
        reader, _ = await their_bytes.next()
        assert reader.info.size == 40_000 and reader.info.mime_type == "application/x-test"
        assert reader.info.name == "pieces.bin"
        pieces: list[bytes] = []
        reading = asyncio.create_task(consume(reader, pieces))
        await wait_until(lambda: len(b"".join(pieces)) == 20_000, what="the first write")
        assert not reading.done()
        await writer.write(b"\x02" * 20_000)
        await writer.aclose()
        await asyncio.wait_for(reading, 10)
        assert b"".join(pieces) == b"\x01" * 20_000 + b"\x02" * 20_000


async def test_destinations_ours_to_ours_and_senders_leaving(
    server_url: str, make_token: TokenFactory
) -> None:
    async with joined(server_url, make_token, "ours", "ours2", "official") as rooms:
        ours, ours2, theirs = rooms["ours"], rooms["ours2"], rooms["official"]
        got2, got_official = Readers(), Readers()
        ours2.register_text_stream_handler("dm", got2)
        ours2.register_byte_stream_handler("up", got2)
        theirs.register_text_stream_handler("dm", got_official)
        theirs.register_byte_stream_handler("up", got_official)

        # to ours2 only: the official peer gets nothing
        await ours.local_participant.send_text(
            "for ours2 only", topic="dm", destination_identities=["ours2"]
        )
        reader, sender = await got2.next()
        assert sender == "ours" and await reader.read_all() == "for ours2 only"
        # to the official peer only
        await ours2.local_participant.send_text(
            "for official only", topic="dm", destination_identities=["official"]
        )
        reader, sender = await got_official.next()
        assert sender == "ours2" and await reader.read_all() == "for official only"
        await asyncio.sleep(0.3)
        assert got2.calls == [] and got_official.calls == []

        # ours opens a byte stream to both, writes part of it, then leaves
        writer = await ours.local_participant.stream_bytes("partial.bin", topic="up")
        await writer.write(b"abc" * 10_000)
        our_reader, _ = await got2.next()
        their_reader, _ = await got_official.next()
        our_read = asyncio.create_task(read_bytes(our_reader))
        their_read = asyncio.create_task(read_bytes(their_reader))
        await asyncio.sleep(0.3)
        await ours.disconnect()
        with pytest.raises(StreamError, match="ours left"):
            await asyncio.wait_for(our_read, 10)
        with pytest.raises(official.StreamError):
            await asyncio.wait_for(their_read, 10)
        with pytest.raises(ConnectionError):
            await writer.write(b"after leaving")

        # the official peer does the same to ours2
        their_writer = await theirs.local_participant.stream_bytes("partial.bin", topic="up")
        await their_writer.write(b"xyz" * 10_000)
        our_reader, sender = await got2.next()
        assert sender == "official"
        our_read = asyncio.create_task(read_bytes(our_reader))
        await asyncio.sleep(0.3)
        await theirs.disconnect()
        with pytest.raises(StreamError, match="official left"):
            await asyncio.wait_for(our_read, 10)


async def test_compressed_and_single_packet_streams_both_ways(
    server_url: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    """Both SDKs advertise data streams v2 and deflate-raw: one-shot sends go in one
    packet when they fit (compressed when that helps), else compressed in chunks, and
    each side reads the other's."""
    rng = random.Random(11)
    words = ["the", "data", "stream", "accentué", "中文", "\N{ROCKET}", "again", "words"]
    # ~40 % once deflated: still several chunks
    text = " ".join(rng.choice(words) + str(rng.randrange(10**5)) for _ in range(12_000))
    repetitive = "the same words again and again, accentué\n" * 2500  # deflates to ~1 %
    assert len(text.encode()) > 100_000 and len(repetitive.encode()) > 100_000
    blob = bytes(range(256)) * 400  # 100 kB, compressible
    csv = tmp_path / "table.csv"
    csv.write_bytes(b"".join(b"%d,%d,%d\n" % (i, i * i, i % 7) for i in range(60_000)))
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours, theirs = rooms["ours"], rooms["official"]
        wire = WireTap(ours)
        their_text, their_bytes, our_text, our_bytes = Readers(), Readers(), Readers(), Readers()
        theirs.register_text_stream_handler("t", their_text)
        theirs.register_byte_stream_handler("b", their_bytes)
        ours.register_text_stream_handler("t", our_text)
        ours.register_byte_stream_handler("b", our_bytes)
        lp, their_lp = ours.local_participant, theirs.local_participant

        # ours -> official: text and bytes, short and long; a file
        await lp.send_text("hi", topic="t")
        await lp.send_text(text, topic="t", attributes={"n": "2"})
        await lp.send_text(repetitive, topic="t")
        await lp.send_text(text, topic="t", compress=False)
        small = await lp.send_bytes(b"\x00\x01\x02", topic="b", name="tiny.bin")
        big = await lp.send_bytes(blob, topic="b", mime_type="application/x-test")
        await lp.send_file(str(csv), topic="b")
        texts = [
            await asyncio.wait_for((await their_text.next())[0].read_all(), 20) for _ in range(4)
        ]
        assert texts == ["hi", text, repetitive, text]
        got = []
        for _ in range(3):
            reader, _ = await their_bytes.next()
            data, _ = await asyncio.wait_for(read_bytes(reader), 20)
            got.append((reader.info.name, reader.info.mime_type, reader.info.size, data))
        assert got == [
            ("tiny.bin", "application/octet-stream", 3, b"\x00\x01\x02"),
            ("unknown", "application/x-test", len(blob), blob),
            ("table.csv", "text/csv", csv.stat().st_size, csv.read_bytes()),
        ]
        assert (small.size, big.size, big.name) == (3, len(blob), "unknown")
        sent = WireTap.headers(wire.sent)
        assert [(h.compression, h.HasField("inline_content")) for h in sent] == [
            (NONE, True),  # too short to gain from deflate: one packet, as it is
            (DEFLATE_RAW, False),  # compressed, then chunked
            (DEFLATE_RAW, True),  # compressed into one packet
            (NONE, False),  # compress=False
            (NONE, True),
            (DEFLATE_RAW, True),
            (DEFLATE_RAW, False),  # a file: compressed as it is read, never in one packet
        ]
        compressed = [
            p.stream_chunk.content
            for p in wire.sent
            if p.WhichOneof("value") == "stream_chunk"
            and p.stream_chunk.stream_id == sent[1].stream_id
        ]
        assert len(compressed) > 1
        assert sum(map(len, compressed)) < 0.6 * len(text.encode())

        # official -> ours: the same
        wire.clear()
        await their_lp.send_text("hi", topic="t")
        await their_lp.send_text(text, topic="t")
        await their_lp.send_text(repetitive, topic="t")
        await their_lp.send_bytes(blob, topic="b", name="blob.bin")
        await their_lp.send_file(str(csv), topic="b")
        texts = [
            await asyncio.wait_for((await our_text.next())[0].read_all(), 20) for _ in range(3)
        ]
        assert texts == ["hi", text, repetitive]
        got = []
        for _ in range(2):
            reader, _ = await our_bytes.next()
            data, _ = await asyncio.wait_for(read_bytes(reader), 20)
            got.append((reader.info.name, reader.info.size, data))
        assert got == [
            ("blob.bin", len(blob), blob),
            ("table.csv", csv.stat().st_size, csv.read_bytes()),
        ]
        received = WireTap.headers(wire.received)
        assert [(h.compression, h.HasField("inline_content")) for h in received] == [
            (NONE, True),
            (DEFLATE_RAW, False),
            (DEFLATE_RAW, True),
            (DEFLATE_RAW, True),
            (DEFLATE_RAW, False),
        ]


async def test_send_bytes_to_chosen_participants(server_url: str, make_token: TokenFactory) -> None:
    async with joined(server_url, make_token, "ours", "ours2", "official") as rooms:
        ours, ours2, theirs = rooms["ours"], rooms["ours2"], rooms["official"]
        got2, got_official = Readers(), Readers()
        ours2.register_byte_stream_handler("x", got2)
        theirs.register_byte_stream_handler("x", got_official)
        payload = os.urandom(50_000)  # incompressible: sent as it is, in chunks
        info = await ours.local_participant.send_bytes(
            payload,
            topic="x",
            destination_identities=["official"],
            attributes={"k": "v"},
            stream_id="fixed-id",
        )
        reader, sender = await got_official.next()
        data, _ = await asyncio.wait_for(read_bytes(reader), 20)
        assert (sender, data, reader.info.stream_id) == ("ours", payload, "fixed-id")
        assert reader.info.attributes == {"k": "v"} and info.stream_id == "fixed-id"
        await asyncio.sleep(0.3)
        assert got2.calls == []


async def test_the_payload_limit_of_data_stream_options_both_ways(
    server_url: str, make_token: TokenFactory
) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    try:
        limit = 10_000
        await ours.connect(
            server_url,
            make_token("ours"),
            rtc.RoomOptions(data_stream=rtc.DataStreamOptions(max_payload_byte_length=limit)),
        )
        await theirs.connect(
            server_url,
            make_token("official"),
            official.RoomOptions(
                data_stream=official.DataStreamOptions(max_payload_byte_length=limit)
            ),
        )
        await wait_until(lambda: "official" in ours.remote_participants, what="we see them")
        await wait_until(lambda: "ours" in theirs.remote_participants, what="they see us")
        our_readers, their_readers = Readers(), Readers()
        ours.register_byte_stream_handler("b", our_readers)
        theirs.register_byte_stream_handler("b", their_readers)
        payload = os.urandom(limit + 1)
        for sender, readers, error in (
            (theirs, our_readers, StreamError),
            (ours, their_readers, official.StreamError),
        ):
            await sender.local_participant.send_bytes(payload[:limit], topic="b")
            reader, _ = await readers.next()
            data, _ = await asyncio.wait_for(read_bytes(reader), 20)
            assert data == payload[:limit]
            await sender.local_participant.send_bytes(payload, topic="b")
            reader, _ = await readers.next()
            with pytest.raises(error):
                await asyncio.wait_for(read_bytes(reader), 20)
    finally:
        await ours.disconnect()
        await theirs.disconnect()
