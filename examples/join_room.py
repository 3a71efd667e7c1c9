"""Join a room and print what happens in it: who comes and goes, what they publish and say.

    python examples/join_room.py --room my-room
    python examples/join_room.py --room my-room --send "hello" --duration 30

Every room event this example listens to is printed as one line, ``event <name>: ...``.
With ``--send TEXT`` it also sends TEXT as reliable data (topic ``chat``) to everyone
when it joins and to each participant who joins after it.
"""

from __future__ import annotations

import argparse
import asyncio

from _common import connect, parser, run, say

from livekit_py import rtc


def who(participant: rtc.Participant | None) -> str:
    # None: sent by the server API, or by a participant not announced to us yet
    return participant.identity if participant is not None else "(unknown sender)"


def describe(publication: rtc.TrackPublication) -> str:
    kind = "audio" if publication.kind == rtc.TrackKind.KIND_AUDIO else "video"
    source = rtc.TrackSource.Name(publication.source).removeprefix("SOURCE_").lower()
    return f"{kind} track {publication.name!r} ({source}, {publication.sid})"


def watch(room: rtc.Room, send: str | None) -> None:
    """Print every event of ``room``."""
    sending: set[asyncio.Task[None]] = set()

    @room.on("participant_connected")
    def on_participant_connected(participant: rtc.RemoteParticipant) -> None:
        say(f"event participant_connected: {participant.identity} ({participant.name!r})")
        if send is not None:
            task = asyncio.get_running_loop().create_task(
                room.local_participant.publish_data(
                    send, topic="chat", destination_identities=[participant.identity]
                )
            )
            sending.add(task)
            task.add_done_callback(sending.discard)

    @room.on("participant_disconnected")
    def on_participant_disconnected(participant: rtc.RemoteParticipant) -> None:
        reason = participant.disconnect_reason
        why = rtc.DisconnectReason.Name(reason) if reason is not None else "unknown"
        say(f"event participant_disconnected: {participant.identity} ({why})")

    @room.on("track_published")
    def on_track_published(
        publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        say(f"event track_published: {participant.identity} publishes {describe(publication)}")

    @room.on("track_unpublished")
    def on_track_unpublished(
        publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        say(f"event track_unpublished: {participant.identity} stopped {describe(publication)}")

    @room.on("track_subscribed")
    def on_track_subscribed(
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        say(
            f"event track_subscribed: {describe(publication)} of {participant.identity}"
            f" ({publication.mime_type})"
        )

    @room.on("track_unsubscribed")
    def on_track_unsubscribed(
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        say(f"event track_unsubscribed: {describe(publication)} of {participant.identity}")

    @room.on("track_muted")
    def on_track_muted(participant: rtc.Participant, publication: rtc.TrackPublication) -> None:
        say(f"event track_muted: {describe(publication)} of {participant.identity}")

    @room.on("track_unmuted")
    def on_track_unmuted(participant: rtc.Participant, publication: rtc.TrackPublication) -> None:
        say(f"event track_unmuted: {describe(publication)} of {participant.identity}")

    @room.on("active_speakers_changed")
    def on_active_speakers_changed(speakers: list[rtc.Participant]) -> None:
        say(f"event active_speakers_changed: {[p.identity for p in speakers]}")

    @room.on("data_received")
    def on_data_received(packet: rtc.DataPacket) -> None:
        try:
            text = repr(packet.data.decode())
        except UnicodeDecodeError:
            text = f"{len(packet.data)} bytes"
        say(f"event data_received: from {who(packet.participant)} on {packet.topic!r}: {text}")

    @room.on("participant_metadata_changed")
    def on_metadata(participant: rtc.Participant, old: str, new: str) -> None:
        say(f"event participant_metadata_changed: {participant.identity}: {old!r} -> {new!r}")

    @room.on("participant_name_changed")
    def on_name(participant: rtc.Participant, old: str, new: str) -> None:
        say(f"event participant_name_changed: {participant.identity}: {old!r} -> {new!r}")

    @room.on("participant_attributes_changed")
    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        say(f"event participant_attributes_changed: {participant.identity}: {changed}")

    @room.on("room_metadata_changed")
    def on_room_metadata(old: str, new: str) -> None:
        say(f"event room_metadata_changed: {old!r} -> {new!r}")

    @room.on("connection_state_changed")
    def on_state(state: int) -> None:
        say(f"event connection_state_changed: {rtc.ConnectionState.Name(state)}")

    @room.on("reconnecting")
    def on_reconnecting() -> None:
        say("event reconnecting")

    @room.on("reconnected")
    def on_reconnected() -> None:
        say("event reconnected")

    @room.on("disconnected")
    def on_disconnected(reason: int) -> None:
        say(f"event disconnected: {rtc.DisconnectReason.Name(reason)}")


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    room = rtc.Room()
    watch(room, args.send)
    await connect(room, args, name="Event printer")
    for participant in room.remote_participants.values():
        for publication in participant.track_publications.values():
            say(f"already published: {participant.identity}'s {describe(publication)}")
    if args.send is not None:
        await room.local_participant.publish_data(args.send, topic="chat")
    await stop.wait()
    await room.disconnect()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="event-printer")
    cli.add_argument("--send", metavar="TEXT", help="send TEXT as data to everyone who joins")
    run(cli.parse_args(), main)
