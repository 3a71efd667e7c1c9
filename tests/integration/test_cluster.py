"""A two-node cluster: ours on one node, the official SDK on the other, in one room.

The cluster (``livekit_cluster``) is a private redis-server and two livekit-server
nodes sharing it. The room is created on a chosen node through the Room API
(``CreateRoomRequest.node_id``); the participant whose WebSocket reaches the other node
is relayed to the room's node through redis, and its media goes to the room's node.
Both placements are tested, so each SDK is once the relayed one.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from livekit import api
from livekit import rtc as official

from livekit_py import rtc
from signaling import local_server
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    dominant_frequency,
    feed_sine,
    subscribed_track,
)

pytestmark = [pytest.mark.server, pytest.mark.interop]


def _rtc_sessions(node: local_server.ClusterNode, room: str) -> list[str]:
    """The identities for which ``node`` started an RTC session (hosted them) in ``room``."""
    found = []
    for line in node.log_text().splitlines():
        if "starting RTC session" in line and f'"room": "{room}"' in line:
            match = re.search(r'"participant": "([^"]+)"', line)
            found.append(match.group(1) if match else line)
    return found


def _room_api(node: local_server.ClusterNode) -> api.LiveKitAPI:
    return api.LiveKitAPI(
        url=node.http_url, api_key=local_server.API_KEY, api_secret=local_server.API_SECRET
    )


async def _create_room_on(
    node: local_server.ClusterNode, via: local_server.ClusterNode, room: str
) -> None:
    lkapi = _room_api(via)
    try:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room, node_id=node.node_id))
    finally:
        await lkapi.aclose()


async def _identities_via(node: local_server.ClusterNode, room: str) -> list[str]:
    lkapi = _room_api(node)
    try:
        res = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    finally:
        await lkapi.aclose()
    return sorted(p.identity for p in res.participants)


@pytest.mark.parametrize("host", ["ours", "theirs"], ids=["room-on-our-node", "room-on-their-node"])
async def test_ours_and_official_on_different_nodes_share_a_room(
    livekit_cluster: local_server.LocalCluster,
    make_token: TokenFactory,
    room_name: str,
    host: str,
) -> None:
    our_node, their_node = livekit_cluster.nodes
    assert our_node.node_id != their_node.node_id
    room_node, edge_node = (our_node, their_node) if host == "ours" else (their_node, our_node)
    # created through the node that will NOT host it: the placement goes through redis
    await _create_room_on(room_node, edge_node, room_name)

    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["participant_connected", "track_subscribed", "data_received"])
    their_data: list[official.DataPacket] = []
    theirs.on("data_received", their_data.append)
    our_source = rtc.AudioSource(48000, 1)
    our_track = rtc.LocalAudioTrack.create_audio_track("ours-sine", our_source)
    their_source = official.AudioSource(48000, 1)
    their_track = official.LocalAudioTrack.create_audio_track("official-sine", their_source)
    try:
        await asyncio.wait_for(theirs.connect(their_node.url, make_token("official")), 30)
        await asyncio.wait_for(ours.connect(our_node.url, make_token("ours")), 30)

        # the join response names the node that hosts the room, wherever we connected
        assert ours._server_info.node_id == room_node.node_id, (
            f"we connected to {our_node.node_id} and the room was placed on"
            f" {room_node.node_id}, but our join response says {ours._server_info.node_id!r}"
        )
        # both participants' RTC sessions run on the room's node, none on the other
        await wait_until(
            lambda: sorted(_rtc_sessions(room_node, room_name)) == ["official", "ours"],
            timeout=10,
            what=f"both RTC sessions logged by the room's node {room_node.log_path}",
        )
        assert _rtc_sessions(edge_node, room_name) == [], edge_node.log_path
        # the other node answers for the room too (through redis)
        assert await _identities_via(edge_node, room_name) == ["official", "ours"]

        # they see each other
        assert "official" in ours.remote_participants
        await wait_until(
            lambda: "ours" in theirs.remote_participants, timeout=15, what="official sees ours"
        )

        # reliable data both ways
        await ours.local_participant.publish_data(b"ours -> official", topic="cluster")
        await wait_until(
            lambda: any(p.data == b"ours -> official" for p in their_data),
            timeout=15,
            what="official receives our reliable packet",
        )
        packet = next(p for p in their_data if p.data == b"ours -> official")
        assert packet.topic == "cluster" and packet.kind == official.DataPacketKind.KIND_RELIABLE
        assert packet.participant is not None and packet.participant.identity == "ours"
        await theirs.local_participant.publish_data(b"official -> ours", topic="cluster")
        (got,) = await log.wait_for(
            "data_received", lambda p: p.data == b"official -> ours", timeout=15
        )
        assert got.topic == "cluster" and got.kind == rtc.DataPacketKind.KIND_RELIABLE
        assert got.participant is ours.remote_participants["official"]

        # audio both ways: a 440 Hz tone arrives at each side
        async with (
            background(feed_sine(our_source, rtc.AudioFrame, 440.0)),
            background(feed_sine(their_source, official.AudioFrame, 440.0)),
        ):
            mic = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await ours.local_participant.publish_track(our_track, mic)
            their_mic = official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
            await theirs.local_participant.publish_track(their_track, their_mic)

            remote = await subscribed_track(theirs, "ours", timeout=30)
            their_stream = official.AudioStream(remote, sample_rate=48000, num_channels=1)
            their_samples, their_rate, _ = await collect_audio(their_stream, 1.0, timeout=30)
            await their_stream.aclose()

            our_remote, _, participant = await log.wait_for("track_subscribed", timeout=30)
            assert participant.identity == "official"
            our_stream = rtc.AudioStream(our_remote, sample_rate=48000, num_channels=1)
            our_samples, our_rate, _ = await collect_audio(our_stream, 1.0, timeout=30)
            await our_stream.aclose()
        assert abs(dominant_frequency(their_samples, their_rate) - 440.0) < 3.0
        assert abs(dominant_frequency(our_samples, our_rate) - 440.0) < 3.0
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await our_source.aclose()
        await their_source.aclose()
