"""Numbered reliable data through a real livekit-server, with the official SDK on the other end.

The server drops any reliable packet whose ``sequence`` is not above the last one
it forwarded from that participant, and stamps the sender's ``participant_sid``
on what it forwards. These tests guard our numbering against that: every
packet arrives, once and in order, both ways; a copy we send again (as after a
resume) is dropped by the server.
"""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.engine.engine import RtcEngine
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]

COUNT = 500


def engine_of(room: rtc.Room) -> RtcEngine:
    engine = room._session.engine
    assert engine is not None, "the room has no engine: not connected"
    return engine


async def test_500_reliable_packets_each_way_arrive_once_in_order(
    server_url: str, make_token: TokenFactory
) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    their_data: list[official.DataPacket] = []
    theirs.on("data_received", their_data.append)
    our_log = EventLog(ours, ["data_received"])
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        await wait_until(
            lambda: "ours" in theirs.remote_participants, timeout=30, what="official sees us"
        )
        engine = engine_of(ours)
        first = engine.reliable_send_buffer.next_sequence

        # ours -> official
        for i in range(COUNT):
            await ours.local_participant.publish_data(b"o%d" % i, topic="seq")
        await wait_until(
            lambda: len([p for p in their_data if p.topic == "seq"]) >= COUNT,
            timeout=60,
            what=f"official receives our {COUNT} packets",
        )
        assert engine.reliable_send_buffer.last_sequence == first + COUNT - 1
        assert [p.data for p in their_data if p.topic == "seq"] == [
            b"o%d" % i for i in range(COUNT)
        ]

        # official -> ours
        for i in range(COUNT):
            await theirs.local_participant.publish_data(b"t%d" % i, topic="seq")
        await wait_until(
            lambda: len(our_log.args("data_received")) >= COUNT,
            timeout=60,
            what=f"we receive the official SDK's {COUNT} packets",
        )
        got = [args[0] for args in our_log.args("data_received")]
        assert [p.data for p in got] == [b"t%d" % i for i in range(COUNT)]
        assert all(p.participant is ours.remote_participants["official"] for p in got)
        # the official SDK numbers its packets too; the server stamped its sid on them
        states = {s.publisher_sid: s.last_seq for s in engine.reliable_receive_states()}
        official_sid = ours.remote_participants["official"].sid
        assert states.get(official_sid, 0) >= COUNT

        # nothing more arrives later (no duplicates on the way)
        await asyncio.sleep(0.5)
        assert len([p for p in their_data if p.topic == "seq"]) == COUNT
        assert len(our_log.args("data_received")) == COUNT
    finally:
        await ours.disconnect()
        await theirs.disconnect()


async def test_the_server_drops_a_reliable_packet_we_send_again(
    server_url: str, make_token: TokenFactory
) -> None:
    """What a resend after a resume relies on: copies the server already has reach nobody.

    (The server drops them by sequence; the official SDK would drop them too.)
    """
    ours = rtc.Room()
    theirs = official.Room()
    their_data: list[bytes] = []
    theirs.on("data_received", lambda p: their_data.append(p.data))
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        await wait_until(
            lambda: "ours" in theirs.remote_participants, timeout=30, what="official sees us"
        )
        engine = engine_of(ours)
        for i in range(5):
            await ours.local_participant.publish_data(b"%d" % i)
        await wait_until(lambda: len(their_data) >= 5, timeout=30, what="the first 5 packets")
        # resend whatever is still kept (as after a resume where the server had nothing)
        kept = engine.reliable_send_buffer.pending_sequences
        assert kept, "the last packet sent is kept until the next send"
        engine.suspend_data()
        resent = await engine.resend_reliable_after(0)
        assert resent == len(kept)
        await ours.local_participant.publish_data(b"after")
        await wait_until(lambda: b"after" in their_data, timeout=30, what="the packet after")
        await asyncio.sleep(0.5)
        assert their_data == [b"0", b"1", b"2", b"3", b"4", b"after"]
    finally:
        await ours.disconnect()
        await theirs.disconnect()
