"""``livekit-py join``: join a room, print what happens in it, optionally send messages.

Each event is one line on standard output (``--json``: one JSON object), made by
:mod:`livekit_py.cli.events`.  Messages to send come from ``--send`` (once joined) and,
with ``--stdin``, from standard input line by line (read on a daemon thread, so a
blocked read never holds the program up); they go out as data packets, text streams
or chat (text streams on ``lk.chat``) as ``--send-as`` says.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from livekit_py import rtc

from .events import (
    CHAT_TOPIC,
    LEGACY_CHAT_TOPIC,
    TRANSCRIPTION_TOPIC,
    enum_name,
    format_record,
    json_record,
    parse_legacy_chat,
    participant_fields,
    payload_fields,
    publication_fields,
    record,
)
from .runtime import Consoles, run_command, setup_logging
from .settings import connection_from_args, identity_from_args

__all__ = ["STDIN_LINGER", "run"]

STDIN_LINGER = 1.0
"""Seconds ``--stdin`` stays in the room after the end of its input, so that the last
messages reach the others before they see this participant leave."""

Emit = Callable[[dict[str, object]], None]


def _printer(consoles: Consoles, as_json: bool) -> Emit:
    def emit(rec: dict[str, object]) -> None:
        consoles.line(json_record(rec) if as_json else format_record(rec))

    return emit


def _wire(
    room: rtc.Room, emit: Emit, args: argparse.Namespace, stop: asyncio.Event
) -> set[asyncio.Task[None]]:
    """Print the room's events; returns the set that keeps stream-reading tasks alive."""
    tasks: set[asyncio.Task[None]] = set()

    def keep(coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @room.on("participant_connected")
    def _joined(p: rtc.RemoteParticipant) -> None:
        emit(record("participant_connected", **participant_fields(p)))

    @room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        emit(record("participant_disconnected", **participant_fields(p)))

    @room.on("track_published")
    def _published(pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        emit(record("track_published", **participant_fields(p), **publication_fields(pub)))

    @room.on("track_unpublished")
    def _unpublished(pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        emit(record("track_unpublished", **participant_fields(p), **publication_fields(pub)))

    @room.on("track_subscribed")
    def _subscribed(
        track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        emit(record("track_subscribed", **participant_fields(p), **publication_fields(pub)))

    @room.on("track_unsubscribed")
    def _unsubscribed(
        track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        emit(record("track_unsubscribed", **participant_fields(p), **publication_fields(pub)))

    @room.on("track_subscription_failed")
    def _failed(p: rtc.RemoteParticipant, track_sid: str, error: str) -> None:
        emit(
            record(
                "track_subscription_failed",
                **participant_fields(p),
                track_sid=track_sid,
                error=error,
            )
        )

    @room.on("track_muted")
    def _muted(p: rtc.Participant, pub: rtc.TrackPublication) -> None:
        emit(record("track_muted", **participant_fields(p), **publication_fields(pub)))

    @room.on("track_unmuted")
    def _unmuted(p: rtc.Participant, pub: rtc.TrackPublication) -> None:
        emit(record("track_unmuted", **participant_fields(p), **publication_fields(pub)))

    @room.on("data_received")
    def _data(packet: rtc.DataPacket) -> None:
        fields = participant_fields(packet.participant)
        if packet.topic == LEGACY_CHAT_TOPIC:
            message = parse_legacy_chat(packet.data)
            if message is not None:
                emit(record("chat", **fields, topic=packet.topic, text=message))
                return
        emit(
            record(
                "data_received",
                **fields,
                topic=packet.topic or "",
                reliable=packet.kind == rtc.DataPacketKind.KIND_RELIABLE,
                **payload_fields(packet.data),
            )
        )

    @room.on("participant_metadata_changed")
    def _metadata(p: rtc.Participant, old: str, new: str) -> None:
        emit(record("participant_metadata_changed", **participant_fields(p), metadata=new))

    @room.on("participant_name_changed")
    def _name(p: rtc.Participant, old: str, new: str) -> None:
        emit(record("participant_name_changed", **participant_fields(p), new_name=new))

    @room.on("participant_attributes_changed")
    def _attributes(changed: dict[str, str], p: rtc.Participant) -> None:
        emit(record("participant_attributes_changed", **participant_fields(p), changed=changed))

    @room.on("room_metadata_changed")
    def _room_metadata(old: str, new: str) -> None:
        emit(record("room_metadata_changed", metadata=new))

    @room.on("transcription_received")
    def _transcription(
        segments: list[rtc.TranscriptionSegment],
        p: rtc.Participant | None,
        pub: rtc.TrackPublication | None,
    ) -> None:
        for segment in segments:
            if segment.final:
                emit(record("transcription", **participant_fields(p), text=segment.text))

    @room.on("sip_dtmf_received")
    def _dtmf(dtmf: rtc.SipDTMF) -> None:
        emit(record("sip_dtmf", **participant_fields(dtmf.participant), digit=dtmf.digit))

    if args.speakers:

        @room.on("active_speakers_changed")
        def _speakers(speakers: list[rtc.Participant]) -> None:
            emit(record("active_speakers", identities=[s.identity for s in speakers]))

    @room.on("reconnecting")
    def _reconnecting() -> None:
        emit(record("reconnecting"))

    @room.on("reconnected")
    def _reconnected() -> None:
        emit(record("reconnected"))

    @room.on("disconnected")
    def _disconnected(reason: int) -> None:
        emit(record("disconnected", reason=enum_name(rtc.DisconnectReason, reason)))
        stop.set()

    def identity_fields(identity: str) -> dict[str, object]:
        found = room.remote_participants.get(identity)
        return participant_fields(found) if found is not None else {"identity": identity}

    async def read_text(reader: rtc.TextStreamReader, identity: str) -> None:
        info = reader.info
        text = await reader.read_all()
        event = "chat" if info.topic == CHAT_TOPIC else "text_stream"
        extra: dict[str, object] = {}
        if info.attributes:
            extra["attributes"] = dict(info.attributes)
        emit(
            record(
                event,
                **identity_fields(identity),
                topic=info.topic,
                stream_id=info.stream_id,
                **extra,
                text=text,
            )
        )

    async def read_bytes(reader: rtc.ByteStreamReader, identity: str) -> None:
        info = reader.info
        size = 0
        async for chunk in reader:
            size += len(chunk)
        emit(
            record(
                "byte_stream",
                **identity_fields(identity),
                topic=info.topic,
                stream_id=info.stream_id,
                file_name=info.name,
                mime_type=info.mime_type,
                size=size,
            )
        )

    def on_text(reader: rtc.TextStreamReader, identity: str) -> None:
        keep(read_text(reader, identity))

    def on_bytes(reader: rtc.ByteStreamReader, identity: str) -> None:
        keep(read_bytes(reader, identity))

    for topic in dict.fromkeys([CHAT_TOPIC, TRANSCRIPTION_TOPIC, *args.text_topic]):
        room.register_text_stream_handler(topic, on_text)
    for topic in dict.fromkeys(args.byte_topic):
        room.register_byte_stream_handler(topic, on_bytes)
    return tasks


async def _send(room: rtc.Room, text: str, args: argparse.Namespace, emit: Emit) -> None:
    lp = room.local_participant
    to = list(args.to) or None
    if args.send_as == "data":
        await lp.publish_data(
            text, reliable=not args.lossy, topic=args.topic, destination_identities=to
        )
    else:
        topic = CHAT_TOPIC if args.send_as == "chat" else args.topic
        await lp.send_text(text, topic=topic, destination_identities=to)
    fields: dict[str, object] = {"identity": lp.identity, "send_as": args.send_as}
    topic_sent = CHAT_TOPIC if args.send_as == "chat" else args.topic
    if topic_sent:
        fields["topic"] = topic_sent
    if to:
        fields["to"] = to
    emit(record("sent", **fields, **payload_fields(text.encode())))


def _read_stdin_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """On a daemon thread: put each line of stdin (without its newline), then None."""

    def reader() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(lines.put_nowait, None)
            except RuntimeError:  # the loop is closed already
                pass

    threading.Thread(target=reader, name="livekit-py stdin", daemon=True).start()


async def _session(args: argparse.Namespace, env: dict[str, str], stop: asyncio.Event) -> int:
    consoles = Consoles(no_color=args.no_color)
    setup_logging(args.verbose, consoles.err)
    conn = connection_from_args(args, env)
    identity = identity_from_args(args)
    token = conn.token_for(
        identity, args.room, name=args.name, metadata=args.metadata, attributes=dict(args.attribute)
    )
    emit = _printer(consoles, args.json)
    room = rtc.Room()
    tasks = _wire(room, emit, args, stop)
    try:
        await room.connect(conn.url, token, rtc.RoomOptions(auto_subscribe=not args.no_subscribe))
    except (rtc.ConnectError, OSError, asyncio.TimeoutError) as exc:
        consoles.status(f"[red]could not join {args.room!r} at {conn.url}: {exc}[/]")
        return 1
    lp = room.local_participant
    emit(record("connected", room=room.name, identity=lp.identity, participant_sid=lp.sid))
    for p in list(room.remote_participants.values()):
        emit(record("participant_present", **participant_fields(p)))
        for pub in list(p.track_publications.values()):
            emit(record("track_present", **participant_fields(p), **publication_fields(pub)))
    try:
        for text in args.send:
            await _send(room, text, args, emit)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if args.duration is not None:
            waiters.append(asyncio.ensure_future(asyncio.sleep(args.duration)))
        if args.stdin:
            lines: asyncio.Queue[str | None] = asyncio.Queue()
            _read_stdin_lines(asyncio.get_running_loop(), lines)

            async def pump() -> None:
                while (line := await lines.get()) is not None:
                    if line:
                        await _send(room, line, args, emit)
                # what was just sent is still on its way: leave a moment later
                await asyncio.sleep(STDIN_LINGER)

            waiters.append(asyncio.ensure_future(pump()))
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for fut in pending:
            fut.cancel()
        for fut in done:
            error = None if fut.cancelled() else fut.exception()
            if error is not None:
                raise error
    finally:
        for task in list(tasks):
            task.cancel()
        await room.disconnect()
    emit(record("left", room=room.name or args.room, identity=lp.identity or identity))
    return 0


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``join``; the exit status."""
    return run_command(lambda stop: _session(args, env, stop))
