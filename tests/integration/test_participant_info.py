"""Participant.state / permissions / joined_at / kind_details / kind against the official SDK
(livekit==1.2.1) in the same room: each SDK's view of a participant matches what the
other reports for it, and a permission change made by the server is reported alike."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from livekit import api
from livekit import rtc as official

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]

_PERMISSION_FIELDS = (
    "can_subscribe",
    "can_publish",
    "can_publish_data",
    "hidden",
    "can_update_metadata",
    "can_subscribe_metrics",
)


def _view(participant: Any) -> dict[str, object]:
    """What both SDKs report of a participant, in comparable (plain) values."""
    permissions = participant.permissions
    return {
        "sid": participant.sid,
        "state": int(participant.state),
        "joined_at": participant.joined_at,
        "kind": int(participant.kind),
        "kind_details": [int(d) for d in participant.kind_details],
        "permissions": {f: getattr(permissions, f) for f in _PERMISSION_FIELDS},
        "can_publish_sources": [int(s) for s in permissions.can_publish_sources],
    }


async def test_participant_info_as_the_official_sdk_reports_it(
    server_url: str, make_token: TokenFactory, room_name: str
) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    http_url = server_url.replace("ws://", "http://")
    lkapi = api.LiveKitAPI(url=http_url, api_key="devkey", api_secret="secret")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    try:
        await theirs.connect(server_url, make_token("official", can_publish_data=False))
        await ours.connect(
            server_url,
            make_token("ours", can_publish_sources=["microphone"], can_update_own_metadata=True),
        )
        await wait_until(lambda: "ours" in theirs.remote_participants, what="official sees us")

        def same() -> bool:
            their_view_of_us = theirs.remote_participants.get("ours")
            return (
                their_view_of_us is not None
                and _view(ours.remote_participants["official"]) == _view(theirs.local_participant)
                and _view(ours.local_participant) == _view(their_view_of_us)
            )

        # both sides' views settle to the same (the state moves from JOINED to ACTIVE
        # once the media connection is up, at its own pace on each side)
        await wait_until(same, timeout=20, what="both SDKs report the same participant info")
        await wait_until(
            lambda: (
                ours.remote_participants["official"].state
                == rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
            ),
            timeout=20,
            what="the official participant becomes active",
        )
        await wait_until(same, timeout=20, what="the same again once active")

        them = ours.remote_participants["official"]
        assert them.state == rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
        assert isinstance(them.joined_at, datetime.datetime)
        assert them.joined_at.tzinfo is not None and them.joined_at > before
        assert them.kind == rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
        assert them.kind_details == []
        assert not them.permissions.can_publish_data and them.permissions.can_publish
        me = ours.local_participant
        assert list(me.permissions.can_publish_sources) == [rtc.TrackSource.SOURCE_MICROPHONE]
        assert me.permissions.can_update_metadata
        assert me.joined_at is not None and me.joined_at > before

        # the server changes our permissions: both SDKs report the change
        our_log = EventLog(ours, ["participant_permissions_changed"])
        their_changes: list[tuple[str, bool]] = []
        theirs.on(
            "participant_permissions_changed",
            lambda p, perm: their_changes.append((p.identity, perm.can_publish)),
        )
        await lkapi.room.update_participant(
            api.UpdateParticipantRequest(
                room=room_name,
                identity="ours",
                permission=api.ParticipantPermission(
                    can_subscribe=True, can_publish=False, can_publish_data=True
                ),
            )
        )
        who, permission = await our_log.wait_for("participant_permissions_changed", timeout=20)
        assert who is ours.local_participant and not permission.can_publish
        await wait_until(lambda: ("ours", False) in their_changes, timeout=20)
        await wait_until(same, timeout=20, what="the same permissions on both sides")
        assert not ours.local_participant.permissions.can_publish
    finally:
        await lkapi.aclose()
        await ours.disconnect()
        await theirs.disconnect()


async def test_connection_quality_starts_unknown_and_then_is_reported(
    server_url: str, make_token: TokenFactory
) -> None:
    ours = rtc.Room()
    theirs = official.Room()
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        log = EventLog(ours, ["connection_quality_changed"])
        # before the server's first report both SDKs say QUALITY_UNKNOWN
        them = ours.remote_participants["official"]
        assert int(official.ConnectionQuality.QUALITY_UNKNOWN) == -1
        if not log.items:
            assert them.connection_quality is rtc.ConnectionQuality.QUALITY_UNKNOWN
        _, quality = await log.wait_for("connection_quality_changed", timeout=30)
        assert isinstance(quality, rtc.ConnectionQuality)
        assert quality != rtc.ConnectionQuality.QUALITY_UNKNOWN
    finally:
        await ours.disconnect()
        await theirs.disconnect()
