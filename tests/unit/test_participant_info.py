"""Participant.state / permissions / joined_at / kind_details, ConnectionQuality as the
official IntEnum, participant_permissions_changed: read off the server's ParticipantInfo."""

from __future__ import annotations

import datetime
import enum

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.session import model as m
from livekit_py.session.model import RoomModel
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, join_response

Info = proto_models.ParticipantInfo


def _participant(**kw: object) -> rtc.RemoteParticipant:
    return rtc.RemoteParticipant(Info(identity="p", sid="PA_p", **kw))  # type: ignore[arg-type]


def test_state_follows_participant_info() -> None:
    assert _participant().state == rtc.ParticipantState.PARTICIPANT_STATE_JOINING
    for name in ("JOINED", "ACTIVE", "DISCONNECTED"):
        p = _participant(state=Info.State.Value(name))
        assert p.state == rtc.ParticipantState.Value(f"PARTICIPANT_STATE_{name}")


def test_joined_at_is_an_aware_utc_datetime_with_milliseconds() -> None:
    assert _participant().joined_at is None
    p = _participant(joined_at=1_700_000_000, joined_at_ms=1_700_000_000_123)
    assert p.joined_at == datetime.datetime(
        2023, 11, 14, 22, 13, 20, 123000, tzinfo=datetime.timezone.utc
    )
    # an older server sends seconds only
    only_seconds = _participant(joined_at=1_700_000_000)
    assert only_seconds.joined_at == datetime.datetime.fromtimestamp(
        1_700_000_000, tz=datetime.timezone.utc
    )


def test_kind_details_and_bridge_kind() -> None:
    details = [Info.KindDetail.CLOUD_AGENT, Info.KindDetail.FORWARDED]
    p = _participant(kind=Info.Kind.AGENT, kind_details=details)
    assert p.kind_details == [
        rtc.ParticipantKindDetail.PARTICIPANT_KIND_DETAIL_CLOUD_AGENT,
        rtc.ParticipantKindDetail.PARTICIPANT_KIND_DETAIL_FORWARDED,
    ]
    assert isinstance(p.kind_details, list)
    assert _participant().kind_details == []
    bridge = _participant(kind=Info.Kind.Value("BRIDGE"))
    assert bridge.kind == rtc.ParticipantKind.PARTICIPANT_KIND_BRIDGE


def test_permissions_are_a_copy_of_the_servers() -> None:
    permission = proto_models.ParticipantPermission(
        can_subscribe=True,
        can_publish=True,
        can_publish_data=False,
        can_publish_sources=[proto_models.TrackSource.MICROPHONE],
        can_update_metadata=True,
    )
    p = _participant(permission=permission)
    got = p.permissions
    assert got.can_subscribe and got.can_publish and not got.can_publish_data
    assert list(got.can_publish_sources) == [rtc.TrackSource.SOURCE_MICROPHONE]
    assert got.can_update_metadata and not got.hidden
    got.can_publish = False  # the participant's own state is not changed through it
    assert p.permissions.can_publish


def test_connection_quality_is_the_official_int_enum() -> None:
    cq = rtc.ConnectionQuality
    assert issubclass(cq, enum.IntEnum)
    assert [(q.name, int(q)) for q in cq] == [
        ("QUALITY_UNKNOWN", -1),
        ("QUALITY_POOR", 0),
        ("QUALITY_GOOD", 1),
        ("QUALITY_EXCELLENT", 2),
        ("QUALITY_LOST", 3),
    ]
    assert rtc.participant.ConnectionQuality is cq
    assert cq.QUALITY_GOOD == 1 and cq(2) is cq.QUALITY_EXCELLENT
    # what the protobuf enum offered keeps working
    assert cq.Name(0) == "QUALITY_POOR" and cq.Value("QUALITY_LOST") == 3
    assert ("QUALITY_UNKNOWN", -1) in cq.items() and -1 in cq.values()
    assert cq.keys()[0] == "QUALITY_UNKNOWN"
    with pytest.raises(ValueError, match="7"):
        cq.Name(7)
    with pytest.raises(ValueError, match="QUALITY_BAD"):
        cq.Value("QUALITY_BAD")


def test_connection_quality_is_unknown_until_reported() -> None:
    p = _participant()
    assert p.connection_quality is rtc.ConnectionQuality.QUALITY_UNKNOWN


def test_model_reports_a_permission_change_only() -> None:
    model: RoomModel[str] = RoomModel()
    other = Info(identity="b", sid="PA_b", version=1)
    model.apply_join(
        proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_1", name="r"),
            participant=Info(identity="me", sid="PA_me"),
            other_participants=[other],
        )
    )
    same = Info(identity="b", sid="PA_b", version=2)
    assert model.apply_participant_update(proto_rtc.ParticipantUpdate(participants=[same])) == []
    changed = Info(
        identity="b",
        sid="PA_b",
        version=3,
        permission=proto_models.ParticipantPermission(can_publish=True),
    )
    assert model.apply_participant_update(proto_rtc.ParticipantUpdate(participants=[changed])) == [
        m.ParticipantPermissionsChanged("b")
    ]
    assert model.remote["b"].info.permission.can_publish
    about_us = Info(
        identity="me", sid="PA_me", permission=proto_models.ParticipantPermission(hidden=True)
    )
    assert model.apply_participant_update(proto_rtc.ParticipantUpdate(participants=[about_us])) == [
        m.ParticipantPermissionsChanged("me"),
        m.LocalParticipantUpdated(),
    ]


async def test_room_emits_permissions_and_quality_as_the_official() -> None:
    room, signal, _ = await connected_room(join_response(Info(identity="b", sid="PA_b")))
    log = EventLog(room, ["participant_permissions_changed", "connection_quality_changed"])
    b = room.remote_participants["b"]
    assert b.connection_quality is rtc.ConnectionQuality.QUALITY_UNKNOWN
    permission = proto_models.ParticipantPermission(can_subscribe=True, can_publish_data=True)
    signal.deliver(
        update=proto_rtc.ParticipantUpdate(
            participants=[Info(identity="b", sid="PA_b", version=1, permission=permission)]
        )
    )
    signal.deliver(
        connection_quality=proto_rtc.ConnectionQualityUpdate(
            updates=[proto_rtc.ConnectionQualityInfo(participant_sid="PA_b", quality=2)]
        )
    )
    assert log.items == [
        ("participant_permissions_changed", (b, permission)),
        ("connection_quality_changed", (b, rtc.ConnectionQuality.QUALITY_EXCELLENT)),
    ]
    quality = log.items[1][1][1]
    assert type(quality) is rtc.ConnectionQuality
    assert b.connection_quality is rtc.ConnectionQuality.QUALITY_EXCELLENT
    assert b.permissions == permission
    await room.disconnect()
