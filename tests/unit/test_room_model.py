"""The pure room model fed with protocol messages: the exact events each one causes.

The last tests check that Room turns those events into the public events with the
official arguments (through a fake signal client and engine, no network).
"""

from __future__ import annotations

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.session import model as m
from livekit_py.session.model import RoomModel
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, join_response

DISCONNECTED = proto_models.ParticipantInfo.State.DISCONNECTED
AUDIO = proto_models.TrackType.AUDIO
VIDEO = proto_models.TrackType.VIDEO


def info(identity: str, sid: str, **kw: object) -> proto_models.ParticipantInfo:
    return proto_models.ParticipantInfo(identity=identity, sid=sid, **kw)  # type: ignore[arg-type]


def track(sid: str, kind: int = AUDIO, **kw: object) -> proto_models.TrackInfo:
    return proto_models.TrackInfo(sid=sid, type=kind, **kw)  # type: ignore[arg-type]


def update(*infos: proto_models.ParticipantInfo) -> proto_rtc.ParticipantUpdate:
    return proto_rtc.ParticipantUpdate(participants=list(infos))


def joined(*others: proto_models.ParticipantInfo) -> RoomModel[str]:
    model: RoomModel[str] = RoomModel()
    join = proto_rtc.JoinResponse(
        room=proto_models.Room(sid="RM_1", name="r", metadata="m0"),
        participant=info("me", "PA_me"),
        other_participants=list(others),
        server_info=proto_models.ServerInfo(version="1.9.0"),
    )
    assert model.apply_join(join) == []
    return model


# -- participants ------------------------------------------------------------------------


def test_join_builds_the_state_without_events() -> None:
    model = joined(info("a", "PA_a", name="A", tracks=[track("TR_a")]))
    assert (model.room.sid, model.room.metadata, model.server_version) == ("RM_1", "m0", "1.9.0")
    assert model.local is not None and model.local.identity == "me"
    assert set(model.remote) == {"a"} and set(model.remote["a"].tracks) == {"TR_a"}


def test_a_participant_joins_with_tracks_then_leaves() -> None:
    model = joined()
    events = model.apply_participant_update(
        update(info("b", "PA_b", version=1, tracks=[track("TR_1"), track("TR_2", VIDEO)]))
    )
    assert events == [
        m.ParticipantConnected("b"),
        m.TrackPublished("b", "TR_1"),
        m.TrackPublished("b", "TR_2"),
    ]
    # we receive one of them, then b leaves
    assert model.remote_track_started("TR_1", "media-1") == [
        m.TrackSubscribed("b", "TR_1", "media-1")
    ]
    events = model.apply_participant_update(
        update(info("b", "PA_b", version=2, state=DISCONNECTED, disconnect_reason=1))
    )
    assert events == [
        m.TrackUnsubscribed("b", "TR_1"),
        m.TrackUnpublished("b", "TR_1"),
        m.TrackUnpublished("b", "TR_2"),
        m.ParticipantDisconnected("b", proto_models.DisconnectReason.CLIENT_INITIATED),
    ]
    assert "b" not in model.remote
    # a leave for someone we do not know (or an old session of b) changes nothing
    assert model.apply_participant_update(update(info("zz", "PA_zz", state=DISCONNECTED))) == []
    assert model.apply_participant_update(update(info("b", "PA_old", state=DISCONNECTED))) == []


def test_a_leave_without_reason_reports_unknown() -> None:
    model = joined(info("a", "PA_a"))
    assert model.apply_participant_update(update(info("a", "PA_a", state=DISCONNECTED))) == [
        m.ParticipantDisconnected("a", proto_models.DisconnectReason.UNKNOWN_REASON)
    ]


def test_same_identity_new_session_replaces_the_participant() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_old")]))
    old = model.remote["a"]
    events = model.apply_participant_update(update(info("a", "PA_a2", tracks=[track("TR_new")])))
    assert events == [
        m.TrackUnpublished("a", "TR_old"),
        m.ParticipantDisconnected("a", proto_models.DisconnectReason.DUPLICATE_IDENTITY),
        m.ParticipantConnected("a"),
        m.TrackPublished("a", "TR_new"),
    ]
    assert model.remote["a"] is not old and model.remote["a"].sid == "PA_a2"
    assert old.disconnect_reason == proto_models.DisconnectReason.DUPLICATE_IDENTITY


def test_metadata_name_and_attributes_changes() -> None:
    model = joined(info("a", "PA_a", version=1, name="A", attributes={"k": "v", "gone": "x"}))
    events = model.apply_participant_update(
        update(
            info("a", "PA_a", version=2, name="A2", metadata="md", attributes={"k": "w", "n": "1"})
        )
    )
    assert events == [
        m.ParticipantMetadataChanged("a", "", "md"),
        m.ParticipantNameChanged("a", "A", "A2"),
        m.ParticipantAttributesChanged("a", {"k": "w", "n": "1", "gone": ""}),
    ]
    # the same info again: nothing changed
    same = info("a", "PA_a", version=3, name="A2", metadata="md", attributes={"k": "w", "n": "1"})
    assert model.apply_participant_update(update(same)) == []


def test_older_participant_info_is_ignored() -> None:
    model = joined(info("a", "PA_a", version=5, metadata="new"))
    events = model.apply_participant_update(
        update(info("a", "PA_a", version=4, metadata="old", tracks=[track("TR_x")]))
    )
    assert events == []
    assert model.remote["a"].info.metadata == "new" and model.remote["a"].tracks == {}
    # the same version is applied (the server reuses versions for some updates)
    assert model.apply_participant_update(update(info("a", "PA_a", version=5, metadata="m"))) == [
        m.ParticipantMetadataChanged("a", "new", "m")
    ]


def test_updates_about_us_have_no_version_check_and_always_report() -> None:
    model = joined()
    assert model.apply_participant_update(update(info("me", "PA_me", name="Me"))) == [
        m.ParticipantNameChanged("me", "", "Me"),
        m.LocalParticipantUpdated(),
    ]
    assert model.apply_participant_update(update(info("me", "PA_me", name="Me"))) == [
        m.LocalParticipantUpdated()
    ]
    # our own DISCONNECTED info is not a leave of a remote participant
    assert model.apply_participant_update(update(info("me", "PA_me", state=DISCONNECTED))) == []


def test_one_update_about_several_participants_keeps_their_order() -> None:
    model = joined(info("a", "PA_a", version=1))
    events = model.apply_participant_update(
        update(
            info("b", "PA_b"),
            info("a", "PA_a", version=2, metadata="x"),
            info("a", "PA_a", version=3, state=DISCONNECTED),
        )
    )
    assert [type(e) for e in events] == [
        m.ParticipantConnected,
        m.ParticipantMetadataChanged,
        m.ParticipantDisconnected,
    ]


# -- tracks ------------------------------------------------------------------------------


def test_track_published_muted_unmuted_unpublished() -> None:
    model = joined(info("a", "PA_a", version=1))
    assert model.apply_participant_update(
        update(info("a", "PA_a", version=2, tracks=[track("TR_1")]))
    ) == [m.TrackPublished("a", "TR_1")]
    published = model.remote["a"].tracks["TR_1"]
    assert model.apply_participant_update(
        update(info("a", "PA_a", version=3, tracks=[track("TR_1", muted=True)]))
    ) == [m.TrackMuted("a", "TR_1")]
    assert published.muted  # updated in place: views holding it see the change
    assert (
        model.apply_participant_update(
            update(info("a", "PA_a", version=4, tracks=[track("TR_1", muted=True, width=640)]))
        )
        == []
    )
    assert model.apply_participant_update(
        update(info("a", "PA_a", version=5, tracks=[track("TR_1")]))
    ) == [m.TrackUnmuted("a", "TR_1")]
    assert model.apply_participant_update(update(info("a", "PA_a", version=6))) == [
        m.TrackUnpublished("a", "TR_1")
    ]


def test_a_track_arriving_before_its_publication_waits() -> None:
    model = joined(info("a", "PA_a", version=1))
    assert model.remote_track_started("TR_1", "early") == []
    assert model.pending_media == {"TR_1": "early"}
    events = model.apply_participant_update(
        update(info("a", "PA_a", version=2, tracks=[track("TR_1")]))
    )
    assert events == [m.TrackPublished("a", "TR_1"), m.TrackSubscribed("a", "TR_1", "early")]
    assert model.pending_media == {}
    # and for a participant that is new too
    assert model.remote_track_started("TR_b", "early-b") == []
    assert model.apply_participant_update(update(info("b", "PA_b", tracks=[track("TR_b")]))) == [
        m.ParticipantConnected("b"),
        m.TrackPublished("b", "TR_b"),
        m.TrackSubscribed("b", "TR_b", "early-b"),
    ]


def test_a_track_arriving_after_its_publication_then_ending() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_1")]))
    assert model.remote_track_ended("TR_1") == []  # not subscribed: nothing to end
    assert model.remote_track_started("TR_1", "x") == [m.TrackSubscribed("a", "TR_1", "x")]
    # a new transceiver for the same track replaces the media
    assert model.remote_track_started("TR_1", "y") == [m.TrackSubscribed("a", "TR_1", "y")]
    assert model.remote_track_ended("TR_1") == [m.TrackUnsubscribed("a", "TR_1")]
    assert model.remote_track_ended("TR_1") == []
    # a pending track that ends before its publication is forgotten
    model.remote_track_started("TR_9", "z")
    assert model.remote_track_ended("TR_9") == [] and model.pending_media == {}


def test_subscription_permission_denial() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_1"), track("TR_2")]))
    model.remote_track_started("TR_1", "x")
    allowed = proto_rtc.SubscriptionPermissionUpdate(
        participant_sid="PA_a", track_sid="TR_2", allowed=True
    )
    assert model.apply_subscription_permission(allowed) == []
    denied = proto_rtc.SubscriptionPermissionUpdate(
        participant_sid="PA_a", track_sid="TR_1", allowed=False
    )
    events = model.apply_subscription_permission(denied)
    assert events[0] == m.TrackUnsubscribed("a", "TR_1")
    failed = events[1]
    assert isinstance(failed, m.TrackSubscriptionFailed) and len(events) == 2
    assert (failed.identity, failed.track_sid) == ("a", "TR_1")
    assert "does not allow" in failed.error
    assert model.subscription_allowed == {"TR_1": False, "TR_2": True}
    # unknown tracks are remembered but cause nothing
    unknown = proto_rtc.SubscriptionPermissionUpdate(track_sid="TR_z", allowed=False)
    assert model.apply_subscription_permission(unknown) == []
    assert model.subscription_allowed["TR_z"] is False
    # unpublishing forgets the permission
    model.apply_participant_update(update(info("a", "PA_a", version=1, tracks=[track("TR_2")])))
    assert "TR_1" not in model.subscription_allowed


def test_subscription_errors_and_stream_states() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_1"), track("TR_2")]))
    error = proto_models.SubscriptionError.SE_TRACK_NOTFOUND
    assert model.apply_subscription_response(
        proto_rtc.SubscriptionResponse(track_sid="TR_1", err=error)
    ) == [m.TrackSubscriptionFailed("a", "TR_1", "SE_TRACK_NOTFOUND")]
    assert model.apply_subscription_response(
        proto_rtc.SubscriptionResponse(track_sid="TR_x", err=error)
    ) == [m.TrackSubscriptionFailed(None, "TR_x", "SE_TRACK_NOTFOUND")]
    assert model.apply_subscription_response(proto_rtc.SubscriptionResponse(track_sid="TR_1")) == []
    model.remote_track_started("TR_1", "x")
    states = proto_rtc.StreamStateUpdate(
        stream_states=[
            proto_rtc.StreamStateInfo(track_sid="TR_1", state=proto_rtc.StreamState.PAUSED),
            proto_rtc.StreamStateInfo(track_sid="TR_2", state=proto_rtc.StreamState.PAUSED),
        ]
    )
    assert model.apply_stream_states(states) == [m.StreamStateChanged("a", "TR_1", True)]


# -- room-wide ---------------------------------------------------------------------------


def test_active_speakers_are_deltas_sorted_by_level() -> None:
    model = joined(info("a", "PA_a"), info("b", "PA_b"))
    first = proto_rtc.SpeakersChanged(
        speakers=[
            proto_models.SpeakerInfo(sid="PA_a", level=0.2, active=True),
            proto_models.SpeakerInfo(sid="PA_me", level=0.9, active=True),
            proto_models.SpeakerInfo(sid="PA_unknown", level=0.5, active=True),
        ]
    )
    assert model.apply_speakers(first) == [m.ActiveSpeakersChanged(("me", "a"))]
    assert abs(model.remote["a"].audio_level - 0.2) < 1e-6
    second = proto_rtc.SpeakersChanged(
        speakers=[
            proto_models.SpeakerInfo(sid="PA_me", active=False),
            proto_models.SpeakerInfo(sid="PA_b", level=0.5, active=True),
        ]
    )
    assert model.apply_speakers(second) == [m.ActiveSpeakersChanged(("b", "a"))]
    assert model.local is not None and model.local.audio_level == 0.0
    # a speaker who leaves stops being one
    model.apply_participant_update(update(info("b", "PA_b", state=DISCONNECTED)))
    assert model.apply_speakers(proto_rtc.SpeakersChanged()) == [m.ActiveSpeakersChanged(("a",))]


def test_connection_quality() -> None:
    model = joined(info("a", "PA_a"))
    msg = proto_rtc.ConnectionQualityUpdate(
        updates=[
            proto_rtc.ConnectionQualityInfo(
                participant_sid="PA_a", quality=proto_models.ConnectionQuality.POOR
            ),
            proto_rtc.ConnectionQualityInfo(participant_sid="PA_unknown", quality=2),
            proto_rtc.ConnectionQualityInfo(participant_sid="PA_me", quality=2),
        ]
    )
    assert model.apply_connection_quality(msg) == [
        m.ConnectionQualityChanged("a", proto_models.ConnectionQuality.POOR),
        m.ConnectionQualityChanged("me", 2),
    ]
    assert model.remote["a"].connection_quality == proto_models.ConnectionQuality.POOR


def test_room_metadata() -> None:
    model = joined()
    msg = proto_rtc.RoomUpdate(room=proto_models.Room(sid="RM_1", metadata="m1"))
    assert model.apply_room_update(msg) == [m.RoomMetadataChanged("m0", "m1"), m.RoomUpdated()]
    assert model.apply_room_update(msg) == [m.RoomUpdated()]
    assert model.room.metadata == "m1"


# -- local tracks ------------------------------------------------------------------------


def test_local_tracks() -> None:
    model = joined()
    ours = track("TR_me")
    assert model.local_track_published(ours) == [m.LocalTrackPublished("TR_me")]
    assert model.local_track_muted("TR_me", True) == [m.TrackMuted("me", "TR_me")]
    assert ours.muted
    assert model.apply_mute_request(proto_rtc.MuteTrackRequest(sid="TR_me", muted=False)) == [
        m.LocalTrackMuteRequested("TR_me", False)
    ]
    assert model.apply_mute_request(proto_rtc.MuteTrackRequest(sid="TR_x", muted=True)) == []
    subscribed = proto_rtc.TrackSubscribed(track_sid="TR_me")
    assert model.apply_local_subscribed(subscribed) == [m.LocalTrackSubscribed("TR_me")]
    assert model.apply_local_subscribed(subscribed) == []  # only the first one
    assert model.apply_local_unpublished(proto_rtc.TrackUnpublishedResponse(track_sid="TR_me")) == [
        m.LocalTrackUnpublished("TR_me", by_server=True)
    ]
    assert (
        model.apply_local_unpublished(proto_rtc.TrackUnpublishedResponse(track_sid="TR_me")) == []
    )
    model.local_track_published(track("TR_2"))
    assert model.local_track_unpublished("TR_2") == [m.LocalTrackUnpublished("TR_2")]
    assert model.local_track_unpublished("TR_2") == []


# -- the room turns model events into the public events ----------------------------------

ALL = [
    "participant_connected",
    "participant_disconnected",
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "track_published",
    "track_unpublished",
    "track_muted",
    "track_unmuted",
    "track_subscription_failed",
    "active_speakers_changed",
    "connection_quality_changed",
    "room_metadata_changed",
    "room_updated",
    "data_received",
    "sip_dtmf_received",
    "token_refreshed",
]


async def test_room_emits_the_official_events_with_the_official_arguments() -> None:
    room, signal, _ = await connected_room(join_response(info("a", "PA_a", name="A")))
    log = EventLog(room, ALL)
    assert room.creation_time.timestamp() == 0.0 and room.metadata == "m0"
    signal.deliver(update=update(info("b", "PA_b", version=1, tracks=[track("TR_b")])))
    b = room.remote_participants["b"]
    pub = b.track_publications["TR_b"]
    signal.deliver(
        update=update(info("b", "PA_b", version=2, metadata="m", attributes={"k": "v"}, tracks=[]))
    )
    signal.deliver(update=update(info("me", "PA_me", name="Me2")))
    assert log.items == [
        ("participant_connected", (b,)),
        ("track_published", (pub, b)),
        ("participant_metadata_changed", (b, "", "m")),
        ("participant_attributes_changed", ({"k": "v"}, b)),
        ("track_unpublished", (pub, b)),
        ("participant_name_changed", (room.local_participant, "Me", "Me2")),
    ]
    assert b.metadata == "m" and b.track_publications == {}
    del log.items[:]

    signal.deliver(
        speakers_changed=proto_rtc.SpeakersChanged(
            speakers=[proto_models.SpeakerInfo(sid="PA_b", level=0.5, active=True)]
        )
    )
    signal.deliver(
        connection_quality=proto_rtc.ConnectionQualityUpdate(
            updates=[proto_rtc.ConnectionQualityInfo(participant_sid="PA_b", quality=0)]
        )
    )
    signal.deliver(room_update=proto_rtc.RoomUpdate(room=proto_models.Room(metadata="m1")))
    signal.deliver(refresh_token="new-token")
    signal.deliver(update=update(info("b", "PA_b", version=3, state=DISCONNECTED)))
    assert log.items == [
        ("active_speakers_changed", ([b],)),
        ("connection_quality_changed", (b, rtc.ConnectionQuality.QUALITY_POOR)),
        ("room_metadata_changed", ("m0", "m1")),
        ("room_updated", ()),
        ("token_refreshed", ()),
        ("participant_disconnected", (b,)),
    ]
    assert b.is_speaking and b.connection_quality == rtc.ConnectionQuality.QUALITY_POOR
    assert b.disconnect_reason == rtc.DisconnectReason.UNKNOWN_REASON
    assert room._token == "new-token"
    await room.disconnect()


async def test_data_packets_become_events() -> None:
    room, _, engine = await connected_room(join_response(info("a", "PA_a")))
    log = EventLog(room, ALL)
    user = proto_models.DataPacket(
        participant_identity="a",
        user=proto_models.UserPacket(payload=b"hi", topic="t"),
    )
    engine.on_data_packet(user, proto_models.DataPacket.Kind.LOSSY)
    (packet,) = log.args("data_received")[0]
    assert packet.data == b"hi" and packet.topic == "t"
    assert packet.kind == rtc.DataPacketKind.KIND_LOSSY
    assert packet.participant is room.remote_participants["a"]

    dtmf = proto_models.DataPacket(
        participant_identity="a", sip_dtmf=proto_models.SipDTMF(code=1, digit="1")
    )
    engine.on_data_packet(dtmf, proto_models.DataPacket.Kind.RELIABLE)
    (event,) = log.args("sip_dtmf_received")[0]
    assert (event.code, event.digit, event.participant.identity) == (1, "1", "a")

    # packet types the room does not surface (yet) are ignored
    engine.on_data_packet(
        proto_models.DataPacket(speaker=proto_models.ActiveSpeakerUpdate()),
        proto_models.DataPacket.Kind.RELIABLE,
    )
    assert len(log.items) == 2
    await room.disconnect()


# -- a full reconnect (re-join) ----------------------------------------------------------------


def test_a_rejoin_reports_the_differences_and_ends_every_subscription() -> None:
    model = joined(
        info("bob", "PA_bob", tracks=[track("TR_b")], version=1),
        info("dan", "PA_dan", version=1),
    )
    assert model.remote_track_started("TR_b", "media-b") == [
        m.TrackSubscribed("bob", "TR_b", "media-b")
    ]
    local_track = track("TR_mine")
    model.local_track_published(local_track)
    rejoin = proto_rtc.JoinResponse(
        room=proto_models.Room(sid="RM_1", name="r", metadata="m1"),
        participant=info("me", "PA_me2"),
        other_participants=[
            info("bob", "PA_bob", tracks=[track("TR_b"), track("TR_b2")], version=2),
            info("carol", "PA_carol", tracks=[track("TR_c")], version=1),
        ],
        server_info=proto_models.ServerInfo(version="1.9.1"),
    )
    assert model.apply_rejoin(rejoin) == [
        m.TrackUnsubscribed("bob", "TR_b"),
        m.RoomMetadataChanged("m0", "m1"),
        m.ParticipantDisconnected("dan", proto_models.DisconnectReason.UNKNOWN_REASON),
        m.TrackPublished("bob", "TR_b2"),
        m.ParticipantConnected("carol"),
        m.TrackPublished("carol", "TR_c"),
    ]
    assert sorted(model.remote) == ["bob", "carol"] and model.remote["bob"].subscribed == set()
    assert model.local is not None and model.local.sid == "PA_me2"
    assert list(model.local.tracks) == ["TR_mine"]  # ours stay until republished
    # the new connection subscribes again
    assert model.remote_track_started("TR_b", "new-b") == [
        m.TrackSubscribed("bob", "TR_b", "new-b")
    ]
    republished = track("TR_mine2")
    assert model.local_track_republished("TR_mine", republished) == [
        m.LocalTrackRepublished("TR_mine2", "TR_mine")
    ]
    assert model.local.tracks == {"TR_mine2": republished}


def test_a_rejoin_with_the_same_participant_in_a_new_session_reports_it_left() -> None:
    model = joined(info("bob", "PA_bob", version=3))
    rejoin = proto_rtc.JoinResponse(
        room=proto_models.Room(sid="RM_1", name="r", metadata="m0"),
        participant=info("me", "PA_me"),
        other_participants=[info("bob", "PA_bob2", version=1)],
    )
    assert model.apply_rejoin(rejoin) == [
        m.ParticipantDisconnected("bob", proto_models.DisconnectReason.DUPLICATE_IDENTITY),
        m.ParticipantConnected("bob"),
    ]
