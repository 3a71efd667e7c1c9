"""LocalParticipant updates, transcriptions, DTMF and track permissions without a server.

A fake signal client records the requests and lets the test answer them the
way livekit-server does; a fake engine records the data packets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.rtc import participant as participant_module
from livekit_py.rtc.participant import PublishDTMFError, PublishTranscriptionError
from livekit_py.rtc.transcription import Transcription, TranscriptionSegment
from livekit_py.session.requests import RequestTracker, SignalRequestError
from livekit_py.types import ParticipantTrackPermission
from tests.helpers import EventLog
from tests.unit.session_fakes import FakeEngine, FakeSignal, connected_room, join_response

EVENTS = [
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "transcription_received",
    "sip_dtmf_received",
    "track_subscription_failed",
    "track_unsubscribed",
]
OK = proto_rtc.RequestResponse.Reason.OK
NOT_ALLOWED = proto_rtc.RequestResponse.Reason.NOT_ALLOWED


async def make_room() -> tuple[rtc.Room, FakeSignal, FakeEngine, EventLog]:
    room, signal, engine = await connected_room(
        join_response(
            proto_models.ParticipantInfo(
                identity="a",
                sid="PA_a",
                tracks=[proto_models.TrackInfo(sid="TR_a", type=proto_models.TrackType.AUDIO)],
            )
        )
    )
    return room, signal, engine, EventLog(room, EVENTS)


def server_like(
    room: rtc.Room,
    signal: FakeSignal,
    *,
    allowed: bool = True,
    broadcast: bool = True,
    respond: bool = True,
) -> Any:
    """React to update_metadata like livekit-server: update broadcast, then the response."""
    version = 1

    def answer(request: proto_rtc.SignalRequest) -> None:
        nonlocal version
        if request.WhichOneof("message") != "update_metadata":
            return
        update = request.update_metadata
        if allowed and broadcast:
            lp = room.local_participant
            info = proto_models.ParticipantInfo(
                identity=lp.identity,
                sid=lp.sid,
                name=lp.name,
                metadata=lp.metadata,
                attributes=lp.attributes,
            )
            if update.name:
                info.name = update.name
            if update.metadata:
                info.metadata = update.metadata
            for key, value in update.attributes.items():
                if value:
                    info.attributes[key] = value
                else:
                    info.attributes.pop(key, None)
            version += 1
            info.version = version
            signal.deliver(update=proto_rtc.ParticipantUpdate(participants=[info]))
        if not respond:
            return
        response = proto_rtc.RequestResponse(
            request_id=update.request_id,
            reason=OK if allowed else NOT_ALLOWED,
            message="" if allowed else "does not have permission to update own metadata",
        )
        signal.deliver(request_response=response)

    return answer


async def test_set_metadata_name_attributes_send_one_field_with_a_request_id() -> None:
    room, signal, _, log = await make_room()
    signal.answer = server_like(room, signal)
    lp = room.local_participant

    await lp.set_metadata("m1")
    assert lp.metadata == "m1"
    assert log.args("participant_metadata_changed") == [(lp, "", "m1")]

    await lp.set_name("Bob")
    assert lp.name == "Bob"
    assert log.args("participant_name_changed") == [(lp, "Me", "Bob")]

    await lp.set_attributes({"a": "1", "b": "2"})
    await lp.set_attributes({"a": ""})
    assert lp.attributes == {"b": "2"}
    assert log.args("participant_attributes_changed") == [
        ({"a": "1", "b": "2"}, lp),
        ({"a": ""}, lp),
    ]

    updates = [r.update_metadata for r in signal.sent]
    assert [u.metadata for u in updates] == ["m1", "", "", ""]
    assert [u.name for u in updates] == ["", "Bob", "", ""]
    assert [dict(u.attributes) for u in updates] == [{}, {}, {"a": "1", "b": "2"}, {"a": ""}]
    ids = [u.request_id for u in updates]
    assert all(ids) and len(set(ids)) == 4
    assert room._requests._waiting == {}
    assert lp._info_waiters == []


async def test_refusal_raises_a_clear_error_quickly() -> None:
    room, signal, _, log = await make_room()
    signal.answer = server_like(room, signal, allowed=False)
    lp = room.local_participant
    for call in (lp.set_metadata("x"), lp.set_name("y"), lp.set_attributes({"k": "v"})):
        with pytest.raises(SignalRequestError) as info:
            await asyncio.wait_for(call, 1)
        assert info.value.reason == "NOT_ALLOWED"
        assert "permission" in str(info.value) and "'me'" in str(info.value)
    assert (lp.metadata, lp.name, lp.attributes) == ("", "Me", {})
    assert log.items == []
    assert room._requests._waiting == {}


async def test_the_participant_update_alone_is_enough() -> None:
    room, signal, _, _ = await make_room()
    signal.answer = server_like(room, signal, respond=False)
    await asyncio.wait_for(room.local_participant.set_metadata("m"), 1)
    assert room.local_participant.metadata == "m"


async def test_no_answer_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(participant_module, "UPDATE_RESPONSE_TIMEOUT", 0.2)
    room, _, _, _ = await make_room()
    with pytest.raises(TimeoutError, match="did not answer"):
        await room.local_participant.set_metadata("m")
    # no answer but nothing to change: not an error
    await room.local_participant.set_name("Me")


async def test_accepted_without_update_returns_after_the_grace(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    grace = 0.2
    monkeypatch.setattr(participant_module, "UPDATE_APPLY_TIMEOUT", grace)
    room, signal, _, _ = await make_room()
    signal.answer = server_like(room, signal, broadcast=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(room.local_participant.set_metadata("m"), 5)
    # it waited the whole grace for the participant update (a lower bound only: a
    # loaded machine makes it longer, never shorter) and said it gave up
    assert loop.time() - started >= grace
    assert any("sent no participant update" in r.getMessage() for r in caplog.records)
    assert signal.sent[-1].update_metadata.metadata == "m"


async def test_disconnect_while_waiting_raises_connection_error() -> None:
    room, _, _, _ = await make_room()
    task = asyncio.ensure_future(room.local_participant.set_metadata("m"))
    await asyncio.sleep(0.05)
    await room.disconnect()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(task, 1)


async def test_argument_validation() -> None:
    room, signal, _, _ = await make_room()
    lp = room.local_participant
    bad: list[Any] = [
        lp.set_metadata(1),  # type: ignore[arg-type]
        lp.set_name(None),  # type: ignore[arg-type]
        lp.set_attributes(["a"]),  # type: ignore[arg-type]
        lp.set_attributes({"k": 1}),  # type: ignore[dict-item]
        lp.set_attributes({"": "v"}),
        lp.publish_dtmf(code=-1, digit="1"),
        lp.publish_dtmf(code=1, digit=1),  # type: ignore[arg-type]
        lp.publish_transcription("text"),  # type: ignore[arg-type]
        lp.publish_transcription(Transcription("me", "TR", ["x"])),  # type: ignore[list-item]
        lp.publish_transcription(
            Transcription("me", "TR", [TranscriptionSegment("1", "t", -1, 0, "en", True)])
        ),
    ]
    for call in bad:
        with pytest.raises(ValueError):
            await call
    with pytest.raises(ValueError):
        lp.set_track_subscription_permissions(allow_all_participants=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lp.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[ParticipantTrackPermission()],
        )
    assert signal.sent == []


async def test_not_connected() -> None:
    room, _, engine, _ = await make_room()
    lp = room.local_participant
    engine.fail = True
    with pytest.raises(PublishDTMFError):
        await lp.publish_dtmf(code=1, digit="1")
    with pytest.raises(PublishTranscriptionError):
        await lp.publish_transcription(Transcription("me", "", []))
    await room.disconnect()
    with pytest.raises(ConnectionError):
        await lp.set_metadata("m")
    with pytest.raises(ConnectionError):
        lp.set_track_subscription_permissions(allow_all_participants=True)


async def test_publish_transcription_and_dtmf_packets() -> None:
    room, _, engine, _ = await make_room()
    lp = room.local_participant
    segments = [
        TranscriptionSegment("s1", "hello", 10, 500, "en", False),
        TranscriptionSegment(
            id="s2", text="world", start_time=500, end_time=900, language="en", final=True
        ),
    ]
    await lp.publish_transcription(Transcription("a", "TR_a", segments))
    await lp.publish_dtmf(code=11, digit="#")

    reliable = proto_models.DataPacket.Kind.RELIABLE
    (t, t_kind), (d, d_kind) = engine.packets
    assert (t_kind, d_kind) == (reliable, reliable)
    assert t.kind == reliable and t.participant_identity == "me"
    assert t.transcription.transcribed_participant_identity == "a"
    assert t.transcription.track_id == "TR_a"
    assert [
        (s.id, s.text, s.start_time, s.end_time, s.language, s.final)
        for s in t.transcription.segments
    ] == [("s1", "hello", 10, 500, "en", False), ("s2", "world", 500, 900, "en", True)]
    assert d.WhichOneof("value") == "sip_dtmf"
    assert (d.sip_dtmf.code, d.sip_dtmf.digit, d.participant_identity) == (11, "#", "me")


async def test_received_transcriptions_and_dtmf() -> None:
    room, _, engine, log = await make_room()
    a = room.remote_participants["a"]
    reliable = proto_models.DataPacket.Kind.RELIABLE
    segment = proto_models.TranscriptionSegment(
        id="s", text="hi", start_time=1, end_time=2, final=True, language="fr"
    )
    for identity, track in (("a", "TR_a"), ("me", "TR_x"), ("nobody", "TR_n")):
        packet = proto_models.DataPacket(
            participant_identity="agent",
            transcription=proto_models.Transcription(
                transcribed_participant_identity=identity, track_id=track, segments=[segment]
            ),
        )
        engine.on_data_packet(packet, reliable)
    engine.on_data_packet(
        proto_models.DataPacket(
            participant_identity="a", sip_dtmf=proto_models.SipDTMF(code=3, digit="3")
        ),
        reliable,
    )
    expected = [TranscriptionSegment("s", "hi", 1, 2, "fr", True)]
    assert log.args("transcription_received") == [
        (expected, a, a.track_publications["TR_a"]),
        (expected, room.local_participant, None),
        (expected, None, None),
    ]
    (dtmf,) = log.args("sip_dtmf_received")
    assert dtmf[0] == rtc.SipDTMF(code=3, digit="3", participant=a)


async def test_set_track_subscription_permissions_message() -> None:
    room, signal, _, _ = await make_room()
    lp = room.local_participant
    lp.set_track_subscription_permissions(
        allow_all_participants=False,
        participant_permissions=[
            ParticipantTrackPermission(participant_identity="x", allow_all=True),
            ParticipantTrackPermission(participant_identity="y", allowed_track_sids=["TR_1"]),
        ],
    )
    lp.set_track_subscription_permissions(allow_all_participants=True)
    await asyncio.sleep(0.05)
    first, second = (r.subscription_permission for r in signal.sent)
    assert not first.all_participants
    assert [
        (p.participant_identity, p.all_tracks, list(p.track_sids)) for p in first.track_permissions
    ] == [
        ("x", True, []),
        ("y", False, ["TR_1"]),
    ]
    assert second.all_participants and not second.track_permissions


async def test_subscription_permission_update() -> None:
    room, signal, _, log = await make_room()
    a = room.remote_participants["a"]
    signal.deliver(
        subscription_permission_update=proto_rtc.SubscriptionPermissionUpdate(
            participant_sid="PA_a", track_sid="TR_a", allowed=True
        )
    )
    assert log.items == [] and room._model.subscription_allowed == {"TR_a": True}
    signal.deliver(
        subscription_permission_update=proto_rtc.SubscriptionPermissionUpdate(
            participant_sid="PA_a", track_sid="TR_a", allowed=False
        )
    )
    (failed,) = log.args("track_subscription_failed")
    assert failed[:2] == (a, "TR_a") and "does not allow" in failed[2]
    assert log.args("track_unsubscribed") == []  # it was not subscribed
    assert room._model.subscription_allowed == {"TR_a": False}
    # unknown tracks are remembered but produce no event
    signal.deliver(
        subscription_permission_update=proto_rtc.SubscriptionPermissionUpdate(
            participant_sid="PA_z", track_sid="TR_z", allowed=False
        )
    )
    assert len(log.items) == 1


async def test_request_tracker_ids_and_unknown_responses() -> None:
    tracker = RequestTracker()
    tracker._last_id = 2**32 - 2
    assert [tracker.next_id(), tracker.next_id()] == [2**32 - 1, 1]
    assert not tracker.handle(proto_rtc.RequestResponse(request_id=7))
    assert not tracker.handle(proto_rtc.RequestResponse(request_id=0))
    future = tracker.expect(5)
    assert tracker.handle(proto_rtc.RequestResponse(request_id=5, reason=NOT_ALLOWED))
    assert future.result().reason == NOT_ALLOWED
