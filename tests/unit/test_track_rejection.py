"""A track the engine cannot receive becomes TrackSubscriptionFailed, even before its publisher.

(The SDP side, answering such an m-line rejected, is in test_engine.py.)
"""

from __future__ import annotations

from livekit_py import rtc
from livekit_py.session import model as m
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, join_response
from tests.unit.test_room_model import VIDEO, info, joined, track, update


def test_a_rejected_track_fails_to_subscribe() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_v", VIDEO)]))
    events = model.remote_track_rejected("TR_v", "no codec")
    assert events == [m.TrackSubscriptionFailed("a", "TR_v", "no codec")]
    assert model.remote["a"].subscribed == set()


def test_a_subscribed_track_then_rejected_is_unsubscribed_first() -> None:
    model = joined(info("a", "PA_a", tracks=[track("TR_v", VIDEO)]))
    model.remote_track_started("TR_v", "media")
    assert model.remote_track_rejected("TR_v", "no codec") == [
        m.TrackUnsubscribed("a", "TR_v"),
        m.TrackSubscriptionFailed("a", "TR_v", "no codec"),
    ]


def test_a_rejection_before_the_publisher_is_known_waits_for_it() -> None:
    model = joined()
    assert model.remote_track_rejected("TR_v", "no codec") == []
    events = model.apply_participant_update(
        update(info("b", "PA_b", version=1, tracks=[track("TR_v", VIDEO)]))
    )
    assert events == [
        m.ParticipantConnected("b"),
        m.TrackPublished("b", "TR_v"),
        m.TrackSubscriptionFailed("b", "TR_v", "no codec"),
    ]
    assert model.pending_rejections == {}


async def test_the_room_emits_track_subscription_failed_for_a_rejected_track() -> None:
    room, _, engine = await connected_room(
        join_response(info("a", "PA_a", tracks=[track("TR_v", VIDEO)]))
    )
    log = EventLog(room, ["track_subscription_failed"])
    engine.on_remote_track_rejected("TR_v", "cannot receive video m-line 2")
    participant, sid, error = log.args("track_subscription_failed")[0]
    assert participant is room.remote_participants["a"]
    assert (sid, error) == ("TR_v", "cannot receive video m-line 2")
    assert isinstance(participant, rtc.RemoteParticipant)
    await room.disconnect()
