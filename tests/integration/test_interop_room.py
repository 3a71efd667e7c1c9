"""livekit_py and the official SDK (livekit==1.2.1) in the same room."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]


async def test_official_sdk_and_ours_see_each_other_and_exchange_data(
    server_url: str, make_token: TokenFactory
) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    our_log = EventLog(ours, ["participant_connected", "participant_disconnected", "data_received"])
    their_joins: list[str] = []
    their_leaves: list[str] = []
    their_data: list[official.DataPacket] = []
    theirs.on("participant_connected", lambda p: their_joins.append(p.identity))
    theirs.on("participant_disconnected", lambda p: their_leaves.append(p.identity))
    theirs.on("data_received", their_data.append)
    try:
        await theirs.connect(server_url, make_token("official", name="Official"))
        await ours.connect(server_url, make_token("ours", name="Ours"))
        # we see them as already present; they see us join
        assert ours.remote_participants["official"].name == "Official"
        await wait_until(lambda: their_joins == ["ours"], what="official sees our join")
        assert theirs.remote_participants["ours"].name == "Ours"

        # ours -> official: reliable with topic, lossy, targeted
        await ours.local_participant.publish_data(b"from ours", topic="greeting")
        await ours.local_participant.publish_data(
            "lossy from ours", reliable=False, destination_identities=["official"]
        )
        await wait_until(lambda: len(their_data) >= 2, what="official receives our packets")
        # the two channels are not ordered with respect to each other
        by_data = {p.data: p for p in their_data}
        reliable = by_data[b"from ours"]
        assert reliable.topic == "greeting"
        assert reliable.kind == official.DataPacketKind.KIND_RELIABLE
        assert reliable.participant is not None and reliable.participant.identity == "ours"
        assert by_data[b"lossy from ours"].kind == official.DataPacketKind.KIND_LOSSY

        # official -> ours
        await theirs.local_participant.publish_data(b"from official", topic="reply")
        await theirs.local_participant.publish_data(b"lossy", reliable=False, topic="l")
        (packet,) = await our_log.wait_for("data_received")
        assert packet.data == b"from official" and packet.topic == "reply"
        assert packet.kind == rtc.DataPacketKind.KIND_RELIABLE
        assert packet.participant is ours.remote_participants["official"]
        (lossy,) = await our_log.wait_for("data_received", lambda p: p.topic == "l")
        assert lossy.kind == rtc.DataPacketKind.KIND_LOSSY and lossy.data == b"lossy"

        # we leave: they see it; they come back and leave: we see both
        await ours.disconnect()
        await wait_until(lambda: their_leaves == ["ours"], what="official sees our leave")
        await ours.connect(server_url, make_token("ours"))
        await wait_until(lambda: their_joins == ["ours", "ours"], what="official sees rejoin")
        await theirs.disconnect()
        (left,) = await our_log.wait_for("participant_disconnected")
        assert left.identity == "official"
        assert left.disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
        await asyncio.sleep(0)
        assert ours.remote_participants == {}
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_official_sdk_joins_after_us(server_url: str, make_token: TokenFactory) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    log = EventLog(ours, ["participant_connected", "participant_disconnected"])
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official", metadata="m"))
        (joined,) = await log.wait_for("participant_connected")
        assert joined.identity == "official" and joined.metadata == "m"
        assert theirs.remote_participants["ours"].sid == ours.local_participant.sid
    finally:
        await theirs.disconnect()
        await ours.disconnect()
