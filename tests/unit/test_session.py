"""The session lifecycle: its transitions, what each one emits, teardown and the grace wait.

The signal client and engine are fakes (tests/unit/session_fakes.py); the grace
timer sleeps through a controllable function, not the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.errors import ConnectError
from livekit_py.session.session import (
    MAX_RECONNECT_DURATION,
    REFUSED_RETRY_DELAY,
    TRANSITIONS,
    TRANSPORT_GRACE,
    IllegalTransition,
    Session,
    SessionState,
    StateChange,
    connection_refused,
    retry_delay,
)
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, fake_room, join_response

S = SessionState
LIFECYCLE = ["connection_state_changed", "connected", "disconnected", "reconnecting", "reconnected"]


class ManualSleep:
    """A sleep that returns only when the test says so."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)
        await self.release.wait()


def states(changes: list[StateChange]) -> list[tuple[SessionState, SessionState, int | None]]:
    return [(c.old, c.new, c.reason) for c in changes]


async def _closed() -> None:
    pass


# -- the transition table --------------------------------------------------------------


@pytest.mark.parametrize("old,new", list(itertools.product(SessionState, SessionState)))
def test_only_the_listed_transitions_are_legal(old: SessionState, new: SessionState) -> None:
    changes: list[StateChange] = []
    session = Session(on_state=changes.append, on_closed=_closed)
    session._state = old
    if new in TRANSITIONS[old]:
        session._set_state(new, "test", reason=3)
        assert session.state is new and changes == [StateChange(old, new, "test", 3)]
    else:
        with pytest.raises(IllegalTransition, match=f"from {old.value} to {new.value}"):
            session._set_state(new, "test")
        assert session.state is old and changes == []


def test_the_table_is_the_documented_lifecycle() -> None:
    assert TRANSITIONS == {
        S.DISCONNECTED: {S.CONNECTING},
        S.CONNECTING: {S.CONNECTED, S.DISCONNECTING},
        S.CONNECTED: {S.RECONNECTING, S.DISCONNECTING},
        S.RECONNECTING: {S.CONNECTED, S.DISCONNECTING},
        S.DISCONNECTING: {S.DISCONNECTED},
    }


# -- connect and disconnect through the room -----------------------------------------------


def record_states(room: rtc.Room) -> list[StateChange]:
    changes: list[StateChange] = []
    original = room._session._on_state

    def both(change: StateChange) -> None:
        changes.append(change)
        original(change)

    room._session._on_state = both
    return changes


async def test_connect_then_disconnect() -> None:
    room, signal, engine = fake_room(join_response())
    changes = record_states(room)
    log = EventLog(room, LIFECYCLE)
    await room.connect("ws://fake.invalid", "token")
    assert states(changes) == [
        (S.DISCONNECTED, S.CONNECTING, None),
        (S.CONNECTING, S.CONNECTED, None),
    ]
    assert log.items == [
        ("connection_state_changed", (rtc.ConnectionState.CONN_CONNECTED,)),
        ("connected", ()),
    ]
    assert room.isconnected() and room.connection_state == rtc.ConnectionState.CONN_CONNECTED
    with pytest.raises(RuntimeError, match="already connected"):
        await room.connect("ws://fake.invalid", "token")

    await asyncio.gather(room.disconnect(), room.disconnect())  # twice at once: one report
    client = rtc.DisconnectReason.CLIENT_INITIATED
    assert states(changes)[2:] == [
        (S.CONNECTED, S.DISCONNECTING, None),
        (S.DISCONNECTING, S.DISCONNECTED, client),
    ]
    assert log.items[2:] == [
        ("connection_state_changed", (rtc.ConnectionState.CONN_DISCONNECTED,)),
        ("disconnected", (client,)),
    ]
    (leave,) = signal.closed_with
    assert leave is not None and leave.action == proto_rtc.LeaveRequest.Action.DISCONNECT
    assert engine.closed and not room.isconnected()
    assert room.local_participant.disconnect_reason == client
    await room.disconnect()  # safe when disconnected
    assert len(log.items) == 4


async def test_a_connect_that_fails_closes_everything_and_reports_nothing() -> None:
    room, signal, engine = fake_room(join_response())
    engine.connected.clear()  # the media never connects
    changes = record_states(room)
    log = EventLog(room, LIFECYCLE)
    with pytest.raises(ConnectError, match="media connection"):
        await room.connect("ws://fake.invalid", "token", rtc.RoomOptions(connect_timeout=0.01))
    assert states(changes) == [
        (S.DISCONNECTED, S.CONNECTING, None),
        (S.CONNECTING, S.DISCONNECTING, None),
        (S.DISCONNECTING, S.DISCONNECTED, None),
    ]
    assert log.items == [] and engine.closed and len(signal.closed_with) == 1
    assert room._session.signal is None and room._session.engine is None


async def test_a_cancelled_connect_closes_everything() -> None:
    room, signal, engine = fake_room(join_response())
    engine.connected.clear()
    log = EventLog(room, LIFECYCLE)
    task = asyncio.ensure_future(room.connect("ws://fake.invalid", "token"))
    await engine.started.wait()  # joined, waiting for the media connection
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert room._session.state is S.DISCONNECTED
    assert engine.closed and signal.closed_with and not signal.open
    assert log.items == []
    # and the room can connect again
    engine.connected.set()
    await room.connect("ws://fake.invalid", "token")
    assert room.isconnected()
    await room.disconnect()


# -- what ends a session from inside -------------------------------------------------------


async def test_a_server_leave_disconnects_at_once_with_its_reason() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    removed = proto_models.DisconnectReason.PARTICIPANT_REMOVED
    signal.deliver(leave=proto_rtc.LeaveRequest(reason=removed))
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(removed,)] and sleep.calls == []
    assert signal.closed_with == [None]  # no leave sent back: the server asked


async def test_a_transport_failure_waits_the_grace_for_the_servers_reason() -> None:
    room, signal, engine = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    engine.on_failure("the subscriber peer connection failed")
    await asyncio.sleep(0)
    assert sleep.calls == [TRANSPORT_GRACE]
    # still connected while waiting; the server's leave arrives meanwhile
    assert room.isconnected() and log.items == []
    duplicate = proto_models.DisconnectReason.DUPLICATE_IDENTITY
    signal.deliver(leave=proto_rtc.LeaveRequest(reason=duplicate))
    engine.on_failure("again")  # a second failure does not start a second timer
    signal.drop("socket closed")  # nor does the server's socket closing after its leave
    for _ in range(5):
        await asyncio.sleep(0)
    assert log.items == [] and sleep.calls == [TRANSPORT_GRACE] and signal.resumes == []
    sleep.release.set()
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(duplicate,)]


async def test_a_media_failure_without_a_leave_rejoins_after_the_grace() -> None:
    room, signal, engine = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, LIFECYCLE)
    engine.on_failure("the subscriber peer connection failed")
    await asyncio.sleep(0)
    assert sleep.calls == [TRANSPORT_GRACE] and log.items == []
    sleep.release.set()
    await log.wait_for("reconnected", timeout=5)
    assert log.names() == [
        "connection_state_changed",
        "reconnecting",
        "connection_state_changed",
        "reconnected",
    ]
    assert signal.resumes == [] and engine.closed  # a full rejoin, not a resume
    assert signal.closed_with == [None]  # the old socket closed without a leave


async def test_a_media_failure_that_cannot_rejoin_reports_the_transport() -> None:
    room, signal, engine = await connected_room(join_response())
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)

    async def refuse(*_: object) -> proto_rtc.JoinResponse:
        raise ConnectError("unreachable")

    signal.join = refuse  # type: ignore[method-assign]
    engine.on_failure("the subscriber peer connection failed")
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(rtc.DisconnectReason.MEDIA_FAILURE,)]
    assert room.local_participant.disconnect_reason == rtc.DisconnectReason.MEDIA_FAILURE


async def test_a_disconnect_during_the_grace_wins() -> None:
    room, _signal, engine = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, ["disconnected"])
    engine.on_failure("the publisher peer connection failed")
    await asyncio.sleep(0)
    await room.disconnect()
    sleep.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log.args("disconnected") == [(rtc.DisconnectReason.CLIENT_INITIATED,)]


# -- resume -------------------------------------------------------------------------------


class FakeTime:
    """A sleep that returns at once and a clock it advances (no wall clock)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now


def with_fake_time(room: rtc.Room) -> FakeTime:
    fake = FakeTime()
    room._session.sleep = fake.sleep
    room._session.clock = fake.clock
    return fake


def test_the_retry_schedule_is_the_official_js_one_and_bounded() -> None:
    delays = [retry_delay(i, 0.0) for i in range(12)]
    assert delays == [0.0, 0.3, 1.2, 2.7, 4.8, 7.0, 7.0, 7.0, 7.0, 7.0, None, None]
    assert retry_delay(3, MAX_RECONNECT_DURATION - 1.0) is None  # 2.7 s would pass the bound
    assert retry_delay(1, MAX_RECONNECT_DURATION - 1.0) == 0.3
    with pytest.raises(ValueError):
        retry_delay(-1, 0.0)


async def test_a_lost_socket_resumes_with_the_newest_token_and_syncs_state() -> None:
    room, signal, engine = await connected_room(join_response())
    changes = record_states(room)
    fake = with_fake_time(room)
    log = EventLog(room, [*LIFECYCLE, "token_refreshed"])
    signal.deliver(refresh_token="newer-token")
    signal.drop("socket closed")
    await log.wait_for("reconnected", timeout=5)
    assert log.items == [
        ("token_refreshed", ()),
        ("connection_state_changed", (rtc.ConnectionState.CONN_RECONNECTING,)),
        ("reconnecting", ()),
        ("connection_state_changed", (rtc.ConnectionState.CONN_CONNECTED,)),
        ("reconnected", ()),
    ]
    assert states(changes) == [
        (S.CONNECTED, S.RECONNECTING, None),
        (S.RECONNECTING, S.CONNECTED, None),
    ]
    assert fake.sleeps == []  # the first attempt is immediate
    (options,) = signal.resumes
    assert options.reconnect and options.participant_sid == "PA_me"
    assert options.reconnect_reason == proto_models.ReconnectReason.RR_SIGNAL_DISCONNECTED
    assert room._session.token == "newer-token"
    (sync,) = [r.sync_state for r in signal.sent if r.WhichOneof("message") == "sync_state"]
    assert sync.answer.sdp == "v=0 answer" and sync.offer.sdp == "v=0 offer"
    assert sync.subscription.subscribe is False and list(sync.subscription.track_sids) == []
    assert [d.label for d in sync.data_channels] == ["_reliable"]
    assert room.isconnected() and "disconnected" not in log.names()
    # the reliable packets after the server's last_message_seq were resent
    assert engine.resent_after == (7,) and not engine.data_suspended


async def test_the_sync_state_lists_our_unsubscriptions_and_publications() -> None:
    from livekit_py.rtc.track_publication import LocalTrackPublication

    other = proto_models.ParticipantInfo(
        identity="bob",
        sid="PA_bob",
        tracks=[
            proto_models.TrackInfo(sid="TR_a", type=proto_models.TrackType.AUDIO),
            proto_models.TrackInfo(sid="TR_b", type=proto_models.TrackType.AUDIO),
        ],
    )
    room, _signal, engine = await connected_room(join_response(other))
    room.remote_participants["bob"].track_publications["TR_b"].set_subscribed(False)
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    lp = room.local_participant
    info = proto_models.TrackInfo(sid="TR_mine", name="mic", type=proto_models.TrackType.AUDIO)
    lp._add_publication(LocalTrackPublication(info, track))
    sync = room._sync_state(engine)  # type: ignore[arg-type]
    assert list(sync.subscription.track_sids) == ["TR_b"] and not sync.subscription.subscribe
    (mine,) = sync.publish_tracks
    assert mine.track.sid == "TR_mine" and mine.cid == track._media_track().id
    await room.disconnect()
    await source.aclose()


async def test_failed_resumes_follow_the_schedule_then_succeed() -> None:
    room, signal, _ = await connected_room(join_response())
    fake = with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [ConnectError("refused")] * 3
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    assert fake.sleeps == [0.3, 1.2, 2.7] and len(signal.resumes) == 4
    assert "disconnected" not in log.names()


def _refused() -> ConnectError:
    error = ConnectError("could not reach the LiveKit server: Connection refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


async def test_a_server_refusing_connections_is_probed_off_the_schedule() -> None:
    """Nothing listening (a restarting server): quick probes, then the schedule resumes."""
    room, signal, _ = await connected_room(join_response())
    fake = with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [_refused()] * 12 + [ConnectError("timed out")]
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    # 12 refused probes 0.25 s apart use no slot of the schedule: after the first
    # (immediate) attempt and the probes, a failure that is not a refusal waits for the
    # schedule's second step
    assert fake.sleeps == [REFUSED_RETRY_DELAY] * 12 + [0.3]
    assert len(signal.resumes) == 14
    assert "disconnected" not in log.names()


async def test_refused_probes_end_at_the_time_bound() -> None:
    room, signal, _ = await connected_room(join_response())
    fake = with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [_refused()] * 1000
    signal.drop()
    await log.wait_for("disconnected", timeout=5)
    assert sum(fake.sleeps) <= MAX_RECONNECT_DURATION
    assert len(signal.resumes) == 1 + int(MAX_RECONNECT_DURATION / REFUSED_RETRY_DELAY)
    assert log.args("disconnected") == [(rtc.DisconnectReason.SIGNAL_CLOSE,)]


def test_connection_refused_is_found_in_the_cause_chain() -> None:
    assert connection_refused(_refused())
    assert connection_refused(ConnectionRefusedError())
    assert not connection_refused(ConnectError("timed out"))
    assert not connection_refused(OSError(113, "No route to host"))


async def test_it_gives_up_after_the_last_attempt_with_the_reason() -> None:
    room, signal, engine = await connected_room(join_response())
    fake = with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [ConnectError("refused")] * 20
    signal.drop()
    await log.wait_for("disconnected", timeout=5)
    assert len(signal.resumes) == 10 and fake.sleeps == [0.3, 1.2, 2.7, 4.8] + [7.0] * 5
    assert log.names() == [
        "connection_state_changed",
        "reconnecting",
        "connection_state_changed",
        "disconnected",
    ]
    assert log.args("disconnected") == [(rtc.DisconnectReason.SIGNAL_CLOSE,)]
    assert engine.closed and not room.isconnected()


@pytest.mark.parametrize(
    "action,resumes",
    [
        (proto_rtc.LeaveRequest.Action.RESUME, True),
        (proto_rtc.LeaveRequest.Action.DISCONNECT, False),
    ],
)
async def test_a_leave_resumes_or_disconnects_as_its_action_says(
    action: int, resumes: bool
) -> None:
    room, signal, _ = await connected_room(join_response())
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.deliver(
        leave=proto_rtc.LeaveRequest(
            reason=proto_models.DisconnectReason.UNKNOWN_REASON, action=action
        )
    )  # type: ignore[arg-type]
    signal.drop()  # the server closes the socket after its leave
    await log.wait_for("reconnected" if resumes else "disconnected", timeout=5)
    assert len(signal.resumes) == (1 if resumes else 0)
    assert ("reconnecting" in log.names()) is resumes


def _leave(action: int) -> proto_rtc.LeaveRequest:
    return proto_rtc.LeaveRequest(
        reason=proto_models.DisconnectReason.CONNECTION_TIMEOUT,
        action=action,  # type: ignore[arg-type]
    )


async def test_a_repeated_resume_leave_does_not_end_the_reconnect() -> None:
    # seen on a loaded machine: the server sent its CONNECTION_TIMEOUT/RESUME leave twice
    room, signal, _ = await connected_room(join_response())
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.deliver(leave=_leave(proto_rtc.LeaveRequest.Action.RESUME))
    signal.deliver(leave=_leave(proto_rtc.LeaveRequest.Action.RESUME))
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)  # nothing else is on its way
    assert "disconnected" not in log.names() and len(signal.resumes) == 1
    assert room.isconnected()
    await room.disconnect()


async def test_a_reconnect_leave_while_resuming_turns_the_next_attempt_into_a_rejoin() -> None:
    room, signal, _ = await connected_room(join_response())
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.deliver(leave=_leave(proto_rtc.LeaveRequest.Action.RESUME))
    signal.deliver(leave=_leave(proto_rtc.LeaveRequest.Action.RECONNECT))
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)
    assert signal.resumes == [] and "disconnected" not in log.names()
    assert room.isconnected()
    await room.disconnect()


async def test_a_disconnect_leave_while_reconnecting_ends_the_session() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [ConnectError("refused")]
    signal.drop()
    await log.wait_for("reconnecting", timeout=5)
    signal.deliver(leave=_leave(proto_rtc.LeaveRequest.Action.DISCONNECT))
    await log.wait_for("disconnected", timeout=5)
    assert log.args("disconnected") == [(rtc.DisconnectReason.CONNECTION_TIMEOUT,)]


async def test_disconnect_while_reconnecting_stops_the_attempts() -> None:
    room, signal, engine = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [ConnectError("refused")]
    signal.drop()
    await log.wait_for("reconnecting", timeout=5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert sleep.calls == [0.3]  # waiting before the second attempt
    waiter = asyncio.ensure_future(room._session.wait_connected(30.0))
    await room.disconnect()
    assert log.args("disconnected") == [(rtc.DisconnectReason.CLIENT_INITIATED,)]
    with pytest.raises(ConnectionError):
        await waiter
    assert len(signal.resumes) == 1 and engine.closed


async def test_wait_connected_waits_while_reconnecting() -> None:
    room, signal, _ = await connected_room(join_response())
    sleep = ManualSleep()
    room._session.sleep = sleep
    signal.resume_results = [ConnectError("refused")]
    await room._session.wait_connected(1.0)  # connected: at once
    signal.drop()
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(room._session.wait_connected(30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    sleep.release.set()
    await asyncio.wait_for(waiter, 5)
    assert room.connection_state == rtc.ConnectionState.CONN_CONNECTED


async def test_resume_disabled_by_the_server_rejoins_instead() -> None:
    join = join_response()
    join.client_configuration.resume_connection = proto_models.ClientConfigSetting.DISABLED
    room, signal, _ = await connected_room(join)
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)
    assert signal.resumes == [] and "disconnected" not in log.names()
    assert room.isconnected()
    await room.disconnect()


async def test_a_leave_with_reconnect_rejoins_and_reports_who_came_and_went() -> None:
    bob = proto_models.ParticipantInfo(identity="bob", sid="PA_bob")
    carol = proto_models.ParticipantInfo(identity="carol", sid="PA_carol")
    room, signal, _ = await connected_room(join_response(bob))
    with_fake_time(room)
    bob_view = room.remote_participants["bob"]
    log = EventLog(room, [*LIFECYCLE, "participant_connected", "participant_disconnected"])
    rejoin = join_response(carol)
    rejoin.participant.sid = "PA_me2"
    signal.join_response = rejoin
    signal.deliver(
        leave=proto_rtc.LeaveRequest(
            reason=proto_models.DisconnectReason.UNKNOWN_REASON,
            action=proto_rtc.LeaveRequest.Action.RECONNECT,
        )
    )
    await log.wait_for("reconnected", timeout=5)
    assert log.names() == [
        "connection_state_changed",
        "reconnecting",
        "participant_disconnected",
        "participant_connected",
        "connection_state_changed",
        "reconnected",
    ]
    assert log.args("participant_disconnected") == [(bob_view,)]
    assert list(room.remote_participants) == ["carol"]
    assert room.local_participant.sid == "PA_me2" and signal.resumes == []
    await room.disconnect()


async def test_a_refused_resume_falls_back_to_a_rejoin() -> None:
    from livekit_py.signal.client import ResumeRefused

    room, signal, _ = await connected_room(join_response())
    fake = with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    signal.resume_results = [
        ResumeRefused(
            proto_rtc.LeaveRequest(
                reason=proto_models.DisconnectReason.STATE_MISMATCH,
                action=proto_rtc.LeaveRequest.Action.RECONNECT,
            )
        )
    ]
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    assert len(signal.resumes) == 1 and fake.sleeps == []  # the rejoin follows at once
    assert "disconnected" not in log.names()
    await room.disconnect()


async def test_simulate_scenario_checks_its_input_and_the_state() -> None:
    room, signal, _ = fake_room(join_response())
    with pytest.raises(RuntimeError, match="connected room"):
        await room.simulate_scenario(0)
    await room.connect("ws://fake.invalid", "token")
    with_fake_time(room)
    with pytest.raises(ValueError, match="SimulateScenarioKind"):
        await room.simulate_scenario(42)
    await room.simulate_scenario(4)  # migration: asked of the server
    (simulate,) = [r.simulate for r in signal.sent if r.WhichOneof("message") == "simulate"]
    assert simulate.migration
    log = EventLog(room, LIFECYCLE)
    await room.simulate_scenario(7)  # full reconnect: started here
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)
    assert signal.resumes == [] and "disconnected" not in log.names()
    assert room.isconnected()
    await room.disconnect()


# -- what we chose for our subscriptions, after a reconnect ------------------------------


def _bob_with_video() -> proto_models.ParticipantInfo:
    video = proto_models.TrackInfo(sid="TR_v", type=proto_models.TrackType.VIDEO, simulcast=True)
    other = proto_models.TrackInfo(sid="TR_w", type=proto_models.TrackType.VIDEO, simulcast=True)
    untouched = proto_models.TrackInfo(sid="TR_x", type=proto_models.TrackType.VIDEO)
    return proto_models.ParticipantInfo(
        identity="bob", sid="PA_bob", tracks=[video, other, untouched]
    )


def _track_settings(sent: list[proto_rtc.SignalRequest]) -> list[tuple[str, int, bool]]:
    return [
        (r.track_setting.track_sids[0], r.track_setting.quality, r.track_setting.disabled)
        for r in sent
        if r.WhichOneof("message") == "track_setting"
    ]


async def _choose_settings(room: rtc.Room) -> None:
    pubs = room.remote_participants["bob"].track_publications
    pubs["TR_v"].set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_LOW)
    pubs["TR_w"].set_enabled(False)
    await asyncio.sleep(0.05)  # the requests are sent from tasks


async def test_a_resume_sends_the_chosen_subscription_settings_again() -> None:
    room, signal, _ = await connected_room(join_response(_bob_with_video()))
    with_fake_time(room)
    await _choose_settings(room)
    chosen = [("TR_v", 0, False), ("TR_w", 2, True)]
    assert _track_settings(signal.sent) == chosen
    log = EventLog(room, LIFECYCLE)
    signal.sent.clear()
    signal.drop("socket closed")
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)
    # after the SyncState; TR_x (nothing chosen) keeps the server's default
    names = [r.WhichOneof("message") for r in signal.sent]
    assert names.index("sync_state") < names.index("track_setting")
    assert _track_settings(signal.sent) == chosen
    await room.disconnect()


async def test_a_full_reconnect_sends_the_chosen_subscription_settings_again() -> None:
    room, signal, _ = await connected_room(join_response(_bob_with_video()))
    with_fake_time(room)
    await _choose_settings(room)
    log = EventLog(room, LIFECYCLE)
    signal.sent.clear()
    rejoin = join_response(_bob_with_video())
    rejoin.participant.sid = "PA_me2"
    signal.join_response = rejoin
    signal.deliver(
        leave=proto_rtc.LeaveRequest(
            reason=proto_models.DisconnectReason.UNKNOWN_REASON,
            action=proto_rtc.LeaveRequest.Action.RECONNECT,
        )
    )
    await log.wait_for("reconnected", timeout=5)
    await asyncio.sleep(0.05)
    assert signal.resumes == []
    assert _track_settings(signal.sent) == [("TR_v", 0, False), ("TR_w", 2, True)]
    await room.disconnect()


async def test_the_engine_of_a_full_reconnect_keeps_dynacast() -> None:
    room, _signal, engine = fake_room(join_response())
    configs: list[object] = []

    def factory(_signal: object, config: object) -> object:
        configs.append(config)
        return engine

    room._session.engine_factory = factory  # type: ignore[assignment]
    await room.connect("ws://fake.invalid", "token", rtc.RoomOptions(dynacast=True))
    with_fake_time(room)
    log = EventLog(room, LIFECYCLE)
    await room.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
    await log.wait_for("reconnected", timeout=5)
    assert len(configs) == 2
    assert all(c.dynacast for c in configs)  # type: ignore[attr-defined]
    await room.disconnect()
