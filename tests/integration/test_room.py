"""Room, participants, events and data packets against the real livekit-server."""

from __future__ import annotations

import asyncio
import datetime
import gc
import time

import pytest
from aiortc import RTCPeerConnection
from livekit import api
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, socket_count, wait_until

pytestmark = pytest.mark.server

ROOM_EVENTS = [
    "participant_connected",
    "participant_disconnected",
    "connection_state_changed",
    "connected",
    "disconnected",
    "data_received",
    "room_metadata_changed",
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "room_updated",
]


async def test_two_participants_see_each_other_join_and_leave(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    alice_log = EventLog(alice, ROOM_EVENTS)
    bob_log = EventLog(bob, ROOM_EVENTS)
    try:
        await alice.connect(server_url, make_token("alice", name="Alice", metadata="a-meta"))
        assert alice_log.names()[:2] == ["connection_state_changed", "connected"]
        assert alice_log.args("connection_state_changed")[0] == (
            rtc.ConnectionState.CONN_CONNECTED,
        )
        assert alice.isconnected()
        assert alice.connection_state == rtc.ConnectionState.CONN_CONNECTED
        assert alice.name == room_name
        assert alice.sid.startswith("RM_")
        assert isinstance(alice.creation_time, datetime.datetime)
        lp = alice.local_participant
        assert lp.identity == "alice" and lp.name == "Alice" and lp.metadata == "a-meta"
        assert lp.sid.startswith("PA_")
        assert lp.kind == rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
        assert lp.attributes == {} and dict(lp.track_publications) == {}
        assert alice.remote_participants == {}

        await bob.connect(server_url, make_token("bob", name="Bob"))
        # bob sees alice already there, with her name and metadata, and gets no join event for her
        assert set(bob.remote_participants) == {"alice"}
        seen_alice = bob.remote_participants["alice"]
        assert (seen_alice.name, seen_alice.metadata, seen_alice.sid) == ("Alice", "a-meta", lp.sid)
        assert "participant_connected" not in bob_log.names()

        (joined,) = await alice_log.wait_for("participant_connected")
        assert isinstance(joined, rtc.RemoteParticipant)
        assert joined.identity == "bob" and joined.name == "Bob"
        assert joined.sid == bob.local_participant.sid
        assert alice.remote_participants["bob"] is joined
        await wait_until(lambda: alice.num_participants == 2, what="num_participants == 2")

        await bob.disconnect()
        assert bob_log.names()[-2:] == ["connection_state_changed", "disconnected"]
        assert bob_log.args("disconnected") == [(rtc.DisconnectReason.CLIENT_INITIATED,)]
        assert not bob.isconnected()
        assert bob.connection_state == rtc.ConnectionState.CONN_DISCONNECTED
        await bob.disconnect()  # idempotent: no error, no second event
        assert len(bob_log.args("disconnected")) == 1

        (left,) = await alice_log.wait_for("participant_disconnected")
        assert left is joined
        assert left.disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
        assert "bob" not in alice.remote_participants
        # joins always before leaves for one participant
        names = alice_log.names()
        assert names.index("participant_connected") < names.index("participant_disconnected")
    finally:
        await bob.disconnect()
        await alice.disconnect()


async def test_reliable_and_lossy_packets_with_topics(
    server_url: str, make_token: TokenFactory
) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    received: list[rtc.DataPacket] = []
    got = asyncio.Event()

    @bob.on("data_received")
    def _on_data(packet: rtc.DataPacket) -> None:
        received.append(packet)
        got.set()

    try:
        await alice.connect(server_url, make_token("alice"))
        await bob.connect(server_url, make_token("bob"))
        await wait_until(lambda: "bob" in alice.remote_participants)

        await alice.local_participant.publish_data(b"\x00binary\xff", topic="reliable-topic")
        await alice.local_participant.publish_data("text ünïcode", reliable=True)
        await wait_until(lambda: len(received) >= 2, what="two reliable packets")
        first, second = received[0], received[1]
        assert first.data == b"\x00binary\xff" and first.topic == "reliable-topic"
        assert first.kind == rtc.DataPacketKind.KIND_RELIABLE
        assert first.participant is not None and first.participant.identity == "alice"
        assert second.data == "text ünïcode".encode() and second.topic == ""

        # lossy packets may be dropped in principle; on loopback they arrive
        received.clear()
        for i in range(20):
            await alice.local_participant.publish_data(f"lossy {i}", reliable=False, topic="lossy")
        await wait_until(lambda: len(received) >= 10, what="lossy packets")
        assert all(p.kind == rtc.DataPacketKind.KIND_LOSSY and p.topic == "lossy" for p in received)

        # and the other way round
        back: list[rtc.DataPacket] = []
        alice.on("data_received", back.append)
        await bob.local_participant.publish_data(b"pong", topic="reply")
        await wait_until(lambda: bool(back), what="packet from bob")
        assert back[0].data == b"pong" and back[0].participant is alice.remote_participants["bob"]
    finally:
        await bob.disconnect()
        await alice.disconnect()


async def test_a_tight_loop_of_lossy_sends_leaves_the_event_loop_to_others(
    server_url: str, make_token: TokenFactory
) -> None:
    """Each lossy publish_data takes a turn of the event loop, so a sender that never
    sleeps does not starve the rest of the process (a receiver reads one datagram a
    turn): another task gets at least one turn per packet sent."""
    alice = rtc.Room()
    turns = 0
    stop = False

    async def other_task() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    try:
        await alice.connect(server_url, make_token("alice"))
        counter = asyncio.ensure_future(other_task())
        await asyncio.sleep(0)
        start = turns
        for i in range(200):
            await alice.local_participant.publish_data(f"lossy {i}", reliable=False)
        stop = True
        await counter
        assert turns - start >= 200
    finally:
        await alice.disconnect()


async def test_destination_identities_limit_receivers(
    server_url: str, make_token: TokenFactory
) -> None:
    alice, bob, carol = rtc.Room(), rtc.Room(), rtc.Room()
    at_bob: list[bytes] = []
    at_carol: list[bytes] = []
    bob.on("data_received", lambda p: at_bob.append(p.data))
    carol.on("data_received", lambda p: at_carol.append(p.data))
    try:
        for room, identity in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            await room.connect(server_url, make_token(identity))
        await wait_until(lambda: {"bob", "carol"} <= set(alice.remote_participants))

        await alice.local_participant.publish_data(b"for carol", destination_identities=["carol"])
        await alice.local_participant.publish_data(b"for everyone")
        await wait_until(lambda: b"for everyone" in at_bob and b"for everyone" in at_carol)
        assert at_carol == [b"for carol", b"for everyone"]
        # reliable packets from one sender are ordered: had bob received the first
        # packet it would be before the broadcast
        assert at_bob == [b"for everyone"]
    finally:
        for room in (alice, bob, carol):
            await room.disconnect()


async def test_server_side_changes_emit_events(
    server_url: str, make_token: TokenFactory, room_name: str, livekit_server: object
) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    log = EventLog(alice, ROOM_EVENTS)
    http_url = server_url.replace("ws://", "http://")
    lkapi = api.LiveKitAPI(url=http_url, api_key="devkey", api_secret="secret")
    try:
        await alice.connect(server_url, make_token("alice"))
        await bob.connect(server_url, make_token("bob", name="Bob"))
        await log.wait_for("participant_connected")

        await lkapi.room.update_participant(
            api.UpdateParticipantRequest(
                room=room_name,
                identity="bob",
                metadata="new-meta",
                name="Robert",
                attributes={"role": "speaker"},
            )
        )
        bob_remote = alice.remote_participants["bob"]
        assert await log.wait_for("participant_metadata_changed") == (bob_remote, "", "new-meta")
        assert await log.wait_for("participant_name_changed") == (bob_remote, "Bob", "Robert")
        assert await log.wait_for("participant_attributes_changed") == (
            {"role": "speaker"},
            bob_remote,
        )
        assert bob_remote.attributes == {"role": "speaker"} and bob_remote.name == "Robert"

        # the local participant sees its own changes too
        bob_log = EventLog(bob, ROOM_EVENTS)
        await lkapi.room.update_participant(
            api.UpdateParticipantRequest(room=room_name, identity="bob", attributes={"role": ""})
        )
        _, who = await bob_log.wait_for(
            "participant_attributes_changed", lambda changed, who: changed == {"role": ""}
        )
        assert who is bob.local_participant and bob.local_participant.attributes == {}

        await lkapi.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(room=room_name, metadata="room-meta")
        )
        assert await log.wait_for("room_metadata_changed") == ("", "room-meta")
        await log.wait_for("room_updated")
        assert alice.metadata == "room-meta"
    finally:
        await lkapi.aclose()
        await bob.disconnect()
        await alice.disconnect()


async def test_removed_by_server_gets_disconnected_with_reason(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    room = rtc.Room()
    log = EventLog(room, ROOM_EVENTS)
    lkapi = api.LiveKitAPI(
        url=server_url.replace("ws://", "http://"), api_key="devkey", api_secret="secret"
    )
    try:
        await room.connect(server_url, make_token("alice"))
        await lkapi.room.remove_participant(
            api.RoomParticipantIdentity(room=room_name, identity="alice")
        )
        (reason,) = await log.wait_for("disconnected")
        assert reason == rtc.DisconnectReason.PARTICIPANT_REMOVED
        assert not room.isconnected()
    finally:
        await lkapi.aclose()
        await room.disconnect()


async def test_bad_token_is_rejected_quickly(server_url: str, make_token: TokenFactory) -> None:
    room = rtc.Room()
    started = time.monotonic()
    with pytest.raises(rtc.ConnectError, match="token"):
        await room.connect(server_url, make_token("alice") + "tampered")
    with pytest.raises(rtc.ConnectError, match="401"):
        await room.connect(server_url, "not-a-jwt")
    assert time.monotonic() - started < 5
    assert not room.isconnected()


async def test_wrong_port_fails_quickly(make_token: TokenFactory) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    room = rtc.Room()
    started = time.monotonic()
    with pytest.raises(rtc.ConnectError, match="could not reach"):
        await room.connect(f"ws://127.0.0.1:{port}", make_token("alice"))
    assert time.monotonic() - started < 5


async def test_bad_arguments_raise_value_error(server_url: str, make_token: TokenFactory) -> None:
    room = rtc.Room()
    with pytest.raises(ValueError, match="url"):
        await room.connect("ftp://127.0.0.1:1", make_token("a"))
    with pytest.raises(ValueError, match="token"):
        await room.connect(server_url, "")
    with pytest.raises(ValueError, match="unknown event"):
        room.on("participant_joined", lambda p: None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not connected"):
        _ = room.local_participant


@pytest.mark.parametrize("url_form", ["{url}", "{url}/", "{http}", "{http}/"])
async def test_url_forms(server_url: str, make_token: TokenFactory, url_form: str) -> None:
    room = rtc.Room()
    url = url_form.format(url=server_url, http=server_url.replace("ws://", "http://"))
    await room.connect(url, make_token("alice"))
    try:
        assert room.isconnected()
    finally:
        await room.disconnect()


def _live_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    ]


async def test_cancelled_connect_leaves_nothing_behind(
    server_url: str, make_token: TokenFactory
) -> None:
    token = make_token("alice")
    # warm up imports and the server's room before taking the baseline
    warm = rtc.Room()
    await warm.connect(server_url, token)
    await warm.disconnect()
    await asyncio.sleep(0.2)
    baseline_tasks = {t for t in asyncio.all_tasks() if not t.done()}
    baseline_sockets = socket_count()

    room = rtc.Room()
    # cancel at many points of the join: before the socket, while waiting for the
    # join response, during ICE/DTLS (a whole join takes tens of milliseconds here,
    # so the longest delays may let it finish)
    cancelled = 0
    for delay in (0.0, 0.001, 0.003, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06):
        try:
            await asyncio.wait_for(room.connect(server_url, token), delay)
        except asyncio.TimeoutError:
            cancelled += 1
            assert not room.isconnected()
        else:
            await room.disconnect()
    assert cancelled >= 5

    await asyncio.sleep(0.3)
    leftover = {t for t in asyncio.all_tasks() if not t.done()} - baseline_tasks
    leftover.discard(asyncio.current_task())  # type: ignore[arg-type]
    assert not leftover, f"tasks left behind: {leftover}"
    assert socket_count() <= baseline_sockets, "sockets left open"
    assert _live_peer_connections() == []

    # the same Room connects normally afterwards
    await room.connect(server_url, token)
    assert room.isconnected()
    await room.disconnect()


async def test_session_stays_alive_past_the_ping_timeout(
    server_url: str, make_token: TokenFactory
) -> None:
    """The server drops clients that stop pinging within ping_timeout (15 s in dev mode)."""
    alice, bob = rtc.Room(), rtc.Room()
    got: list[bytes] = []
    bob.on("data_received", lambda p: got.append(p.data))
    try:
        await alice.connect(server_url, make_token("alice"))
        await bob.connect(server_url, make_token("bob"))
        signal = alice._session.signal
        assert signal is not None and signal._ping_timeout == 15
        # count the server's answers to our pings as the read loop dispatches them
        pongs: list[int] = []
        dispatch = signal._dispatch

        def counting(res: proto_rtc.SignalResponse) -> None:
            if res.WhichOneof("message") == "pong_resp":
                pongs.append(res.pong_resp.last_ping_timestamp)
            dispatch(res)

        signal._dispatch = counting  # type: ignore[method-assign]
        await asyncio.sleep(signal._ping_timeout + 2)
        assert alice.isconnected() and bob.isconnected()
        # several pings answered, each echoing its timestamp, and a plausible rtt from them
        assert len(pongs) >= 2 and all(pongs) and pongs == sorted(pongs)
        assert 0 <= signal.rtt_ms < 2000
        assert time.monotonic() - signal._last_pong < 6
        await alice.local_participant.publish_data(b"still here")
        await wait_until(lambda: got == [b"still here"])
    finally:
        await bob.disconnect()
        await alice.disconnect()
