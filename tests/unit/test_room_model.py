"""The room model fed with protocol messages directly (no server, no network)."""

from __future__ import annotations

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.signal.client import SignalClient
from tests.helpers import EventLog

ALL = [
    "participant_connected",
    "participant_disconnected",
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "active_speakers_changed",
    "connection_quality_changed",
    "room_metadata_changed",
    "room_updated",
    "data_received",
    "sip_dtmf_received",
    "token_refreshed",
]


def info(identity: str, sid: str, **kw: object) -> proto_models.ParticipantInfo:
    return proto_models.ParticipantInfo(identity=identity, sid=sid, **kw)  # type: ignore[arg-type]


def joined_room() -> tuple[rtc.Room, EventLog]:
    room = rtc.Room()
    room._signal = SignalClient()
    room._on_join(
        proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_1", name="r", metadata="m0", creation_time_ms=1000),
            participant=info("me", "PA_me"),
            other_participants=[info("a", "PA_a", name="A", metadata="x")],
        )
    )
    return room, EventLog(room, ALL)


def update(*infos: proto_models.ParticipantInfo) -> proto_rtc.ParticipantUpdate:
    return proto_rtc.ParticipantUpdate(participants=list(infos))


def test_join_builds_the_model_without_events() -> None:
    room, log = joined_room()
    assert (room.sid, room.name, room.metadata) == ("RM_1", "r", "m0")
    assert room.creation_time.timestamp() == 1.0
    assert set(room.remote_participants) == {"a"}
    assert room.local_participant.identity == "me"
    assert log.items == []


def test_participant_updates() -> None:
    room, log = joined_room()
    room._on_participant_update(update(info("b", "PA_b", version=1)))
    assert log.names() == ["participant_connected"]
    b = room.remote_participants["b"]

    room._on_participant_update(
        update(info("b", "PA_b", version=2, metadata="m", name="B", attributes={"k": "v"}))
    )
    assert log.names()[1:] == [
        "participant_metadata_changed",
        "participant_name_changed",
        "participant_attributes_changed",
    ]
    assert log.args("participant_metadata_changed") == [(b, "", "m")]
    assert log.args("participant_attributes_changed") == [({"k": "v"}, b)]

    # stale versions are ignored
    room._on_participant_update(update(info("b", "PA_b", version=1, metadata="old")))
    assert b.metadata == "m"

    disconnected = proto_models.ParticipantInfo.State.DISCONNECTED
    room._on_participant_update(
        update(info("b", "PA_b", version=3, state=disconnected, disconnect_reason=1))
    )
    assert log.names()[-1] == "participant_disconnected"
    assert b.disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
    assert "b" not in room.remote_participants
    # a leave for someone we do not know changes nothing
    room._on_participant_update(update(info("zz", "PA_zz", state=disconnected)))
    assert log.names()[-1] == "participant_disconnected" and len(log.items) == 5


def test_same_identity_new_session_replaces_participant() -> None:
    room, log = joined_room()
    old = room.remote_participants["a"]
    room._on_participant_update(update(info("a", "PA_a2")))
    assert log.names() == ["participant_disconnected", "participant_connected"]
    assert room.remote_participants["a"] is not old and room.remote_participants["a"].sid == "PA_a2"


def test_local_participant_updates_emit_for_local() -> None:
    room, log = joined_room()
    room._on_participant_update(update(info("me", "PA_me", name="Me")))
    assert log.args("participant_name_changed") == [(room.local_participant, "", "Me")]


def test_active_speakers_are_deltas_sorted_by_level() -> None:
    room, log = joined_room()
    room._on_participant_update(update(info("b", "PA_b")))
    speakers = proto_rtc.SpeakersChanged(
        speakers=[
            proto_models.SpeakerInfo(sid="PA_a", level=0.2, active=True),
            proto_models.SpeakerInfo(sid="PA_me", level=0.9, active=True),
        ]
    )
    room._on_speakers_changed(speakers)
    (first,) = log.args("active_speakers_changed")[-1]
    assert [p.identity for p in first] == ["me", "a"]
    assert abs(room.remote_participants["a"].audio_level - 0.2) < 1e-6
    room._on_speakers_changed(
        proto_rtc.SpeakersChanged(
            speakers=[
                proto_models.SpeakerInfo(sid="PA_me", active=False),
                proto_models.SpeakerInfo(sid="PA_b", level=0.5, active=True),
            ]
        )
    )
    (second,) = log.args("active_speakers_changed")[-1]
    assert [p.identity for p in second] == ["b", "a"]
    assert not room.local_participant.is_speaking


def test_connection_quality_room_update_and_token() -> None:
    room, log = joined_room()
    room._on_connection_quality(
        proto_rtc.ConnectionQualityUpdate(
            updates=[
                proto_rtc.ConnectionQualityInfo(
                    participant_sid="PA_a", quality=proto_models.ConnectionQuality.POOR
                ),
                proto_rtc.ConnectionQualityInfo(participant_sid="PA_unknown", quality=2),
            ]
        )
    )
    a = room.remote_participants["a"]
    assert log.args("connection_quality_changed") == [(a, rtc.ConnectionQuality.QUALITY_POOR)]
    assert a.connection_quality == rtc.ConnectionQuality.QUALITY_POOR

    room._on_room_update(proto_rtc.RoomUpdate(room=proto_models.Room(sid="RM_1", metadata="m1")))
    assert log.names()[-2:] == ["room_metadata_changed", "room_updated"]
    assert log.args("room_metadata_changed") == [("m0", "m1")]
    room._on_room_update(proto_rtc.RoomUpdate(room=proto_models.Room(sid="RM_1", metadata="m1")))
    assert log.names()[-1] == "room_updated" and len(log.args("room_metadata_changed")) == 1

    room._on_refresh_token("new-token")
    assert room._token == "new-token" and log.names()[-1] == "token_refreshed"


def test_data_packets_become_events() -> None:
    room, log = joined_room()
    user = proto_models.DataPacket(
        participant_identity="a",
        user=proto_models.UserPacket(payload=b"hi", topic="t"),
    )
    room._on_data_packet(user, proto_models.DataPacket.Kind.LOSSY)
    (packet,) = log.args("data_received")[0]
    assert packet.data == b"hi" and packet.topic == "t"
    assert packet.kind == rtc.DataPacketKind.KIND_LOSSY
    assert packet.participant is room.remote_participants["a"]

    dtmf = proto_models.DataPacket(
        participant_identity="a", sip_dtmf=proto_models.SipDTMF(code=1, digit="1")
    )
    room._on_data_packet(dtmf, proto_models.DataPacket.Kind.RELIABLE)
    (event,) = log.args("sip_dtmf_received")[0]
    assert (event.code, event.digit, event.participant.identity) == (1, "1", "a")

    # packet types the room does not surface (yet) are ignored
    room._on_data_packet(
        proto_models.DataPacket(speaker=proto_models.ActiveSpeakerUpdate()),
        proto_models.DataPacket.Kind.RELIABLE,
    )
    assert len(log.items) == 2
