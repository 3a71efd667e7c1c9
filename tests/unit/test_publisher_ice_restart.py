"""Restarting our own (the publisher's) ICE on aiortc after a resume.

aiortc cannot create an ICE-restart offer; the adapter hook ``restart_local_ice``
gives the aioice connection new local credentials, which the next offer carries.
The server's ICE agent of our publisher may be dead after a media outage (seen in
tests/integration/test_media_block.py: without the restart, consent expires and
the publisher closes ~30 s after the outage began); the session restarts it on
every resume.
"""

from __future__ import annotations

import asyncio

import aioice
import pytest
from aiortc import RTCPeerConnection

from livekit_py.session.session import SessionState
from livekit_py.webrtc import aiortc_adapter
from livekit_py.webrtc.aiortc_adapter import (
    adopt_remote_ice_restart,
    ice_connections,
    restart_local_ice,
)
from tests.helpers import EventLog
from tests.unit.session_fakes import connected_room, join_response


@pytest.mark.parametrize("name", ["_LOCAL_USERNAME", "_LOCAL_PASSWORD"])
def test_a_missing_local_credential_internal_fails_the_import(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(aiortc_adapter, name, "_renamed_local_credential")
    with pytest.raises(ImportError, match="_renamed_local_credential"):
        aiortc_adapter._check_internals()


async def test_the_next_offer_carries_the_new_credentials() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        first = pc.localDescription.sdp
        [connection] = ice_connections(pc)
        username, password = restart_local_ice(connection)
        assert (connection.local_username, connection.local_password) == (username, password)
        assert len(username) >= 4 and len(password) >= 22
        assert f"a=ice-ufrag:{username}" not in first
        offer = await pc.createOffer()
        assert f"a=ice-ufrag:{username}" in offer.sdp
        assert f"a=ice-pwd:{password}" in offer.sdp
        assert restart_local_ice(connection) != (username, password)
    finally:
        await pc.close()


async def test_a_local_restart_answered_by_the_remote_agent_keeps_the_pair() -> None:
    """We restart (new local credentials), the remote agent restarts in its answer:
    after adopting its new credentials the pair is nominated again and data flows."""
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for this, other in ((a, b), (b, a)):
            this.remote_username = other.local_username
            this.remote_password = other.local_password
            for candidate in other.local_candidates:
                await this.add_remote_candidate(candidate)
            await this.add_remote_candidate(None)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 30)

        username, password = restart_local_ice(a)
        # the remote agent learns them from our offer and answers with its own new ones
        b.remote_username, b.remote_password = username, password
        b._local_username, b._local_password = "answerUfrag", "answerPasswordOf22chars"  # test-only
        assert await adopt_remote_ice_restart(a, "answerUfrag", "answerPasswordOf22chars") == 1
        await a.send(b"after our restart")
        assert await asyncio.wait_for(b.recv(), 5) == b"after our restart"
    finally:
        await a.close()
        await b.close()


async def test_every_resume_restarts_the_publisher_ice() -> None:
    room, signal, engine = await connected_room(join_response())
    log = EventLog(room, ["reconnected"])
    signal.drop()
    await log.wait_for("reconnected", timeout=5)
    assert room._session.state is SessionState.CONNECTED
    assert engine.publisher_ice_restarts == 1
    await room.disconnect()
