"""Own metadata/name/attributes, transcriptions, DTMF and track subscription permissions,
through a real livekit-server with our clients and the official SDK (livekit==1.2.1)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.rtc.transcription import Transcription, TranscriptionSegment
from livekit_py.session.requests import SignalRequestError
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]

INFO_EVENTS = [
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
]


@contextlib.asynccontextmanager
async def joined(server_url: str, *rooms: tuple[Any, str]) -> AsyncIterator[None]:
    """Connect every (room, token) pair, all seeing each other; disconnect them all after."""
    try:
        await asyncio.gather(*(room.connect(server_url, token) for room, token in rooms))
        for room, _ in rooms:
            await wait_until(
                lambda room=room: len(room.remote_participants) == len(rooms) - 1,
                what="everyone sees everyone",
            )
        yield
    finally:
        await asyncio.gather(*(room.disconnect() for room, _ in rooms), return_exceptions=True)


def about(identity: str) -> Any:
    """A predicate for participant_*_changed events about ``identity``."""

    def check(*args: Any) -> bool:
        participant = args[1] if isinstance(args[0], dict) else args[0]
        return bool(participant.identity == identity)

    return check


async def test_own_metadata_name_and_attributes(server_url: str, make_token: TokenFactory) -> None:
    alice, bob, carol, dave = rtc.Room(), rtc.Room(), official.Room(), rtc.Room()
    logs = {name: EventLog(room, INFO_EVENTS) for name, room in [("alice", alice), ("bob", bob)]}
    carol_log = EventLog(carol, INFO_EVENTS)
    async with joined(
        server_url,
        (alice, make_token("alice", can_update_own_metadata=True)),
        (bob, make_token("bob")),
        (carol, make_token("carol", can_update_own_metadata=True)),
        (dave, make_token("dave", name="Dave", metadata="d0")),
    ):
        me = alice.local_participant
        await me.set_metadata("m1")
        await me.set_name("Alice")
        await me.set_attributes({"a": "1", "b": "2"})
        await me.set_attributes({"a": ""})
        # Applied, and our own events emitted, by the time the calls return.
        assert (me.metadata, me.name, me.attributes) == ("m1", "Alice", {"b": "2"})
        assert logs["alice"].args("participant_metadata_changed") == [(me, "", "m1")]
        assert logs["alice"].args("participant_name_changed") == [(me, "", "Alice")]
        assert logs["alice"].args("participant_attributes_changed") == [
            ({"a": "1", "b": "2"}, me),
            ({"a": ""}, me),
        ]
        # Setting the current value again is answered at once and changes nothing.
        start = time.monotonic()
        await me.set_metadata("m1")
        assert time.monotonic() - start < 2
        assert len(logs["alice"].items) == 4

        # An official peer and one of ours see the same changes.
        for log in (logs["bob"], carol_log):
            alice_seen = await log.wait_for("participant_metadata_changed", about("alice"))
            assert alice_seen[1:] == ("", "m1")
            renamed = (await log.wait_for("participant_name_changed", about("alice")))[1:]
            if log is carol_log:
                # The official SDK reads the old name off its participant object when the
                # event reaches Python; under load that object can already carry the new
                # name (seen once: ('Alice', 'Alice')). What it must see is the new name.
                assert renamed in (("", "Alice"), ("Alice", "Alice")), renamed
            else:
                assert renamed == ("", "Alice")
            await log.wait_for(
                "participant_attributes_changed",
                lambda c, p: p.identity == "alice" and "b" not in c,
            )
            changes = [
                c for c, p in log.args("participant_attributes_changed") if p.identity == "alice"
            ]
            assert changes == [{"a": "1", "b": "2"}, {"a": ""}]
        bob_view = bob.remote_participants["alice"]
        assert (bob_view.metadata, bob_view.name, bob_view.attributes) == (
            "m1",
            "Alice",
            {"b": "2"},
        )
        carol_view = carol.remote_participants["alice"]
        assert (carol_view.metadata, carol_view.name) == ("m1", "Alice")
        assert dict(carol_view.attributes) == {"b": "2"}
        assert logs["bob"].args("participant_metadata_changed")[0][0] is bob_view

        # Changes made by the official SDK reach ours.
        await carol.local_participant.set_metadata("from-official")
        await carol.local_participant.set_attributes({"lang": "fr"})
        for log in (logs["alice"], logs["bob"]):
            seen = await log.wait_for("participant_metadata_changed", about("carol"))
            assert seen[1:] == ("", "from-official")
            seen = await log.wait_for("participant_attributes_changed", about("carol"))
            assert seen[0] == {"lang": "fr"}
        assert alice.remote_participants["carol"].attributes == {"lang": "fr"}

        # Without canUpdateOwnMetadata: a clear error, quickly, and no change.
        lp = dave.local_participant
        calls = [lp.set_metadata("nope"), lp.set_name("Nope"), lp.set_attributes({"k": "v"})]
        for call in calls:
            start = time.monotonic()
            with pytest.raises(SignalRequestError) as refused:
                await call
            assert time.monotonic() - start < 3
            assert refused.value.reason == "NOT_ALLOWED"
            assert "permission" in str(refused.value)
        assert (lp.metadata, lp.name, lp.attributes) == ("d0", "Dave", {})
        await asyncio.sleep(0.3)
        assert [args for _, args in logs["bob"].items if about("dave")(*args)] == []

        with pytest.raises(ValueError):
            await me.set_attributes({"k": 1})  # type: ignore[dict-item]
        # Over the server's attribute size limit (64 KiB by default).
        with pytest.raises(SignalRequestError) as too_big:
            await me.set_attributes({"big": "x" * 70_000})
        assert too_big.value.reason == "LIMIT_EXCEEDED"
        assert me.attributes == {"b": "2"}


async def test_transcriptions_and_dtmf_with_the_official_sdk(
    server_url: str, make_token: TokenFactory
) -> None:
    """Transcriptions are forwarded only from agents, so both sides use agent tokens."""
    ours, theirs, plain = rtc.Room(), official.Room(), rtc.Room()
    our_log = EventLog(ours, ["transcription_received", "sip_dtmf_received"])
    their_log = EventLog(theirs, ["transcription_received", "sip_dtmf_received", "track_published"])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    async with joined(
        server_url,
        (ours, make_token("ours-agent", agent=True)),
        (theirs, make_token("official-agent", agent=True)),
        (plain, make_token("plain")),
    ):
        publication = await ours.local_participant.publish_track(track)
        await their_log.wait_for("track_published", lambda pub, p: pub.sid == publication.sid)

        # ours -> official, about our own published track
        await ours.local_participant.publish_transcription(
            Transcription(
                participant_identity="ours-agent",
                track_sid=publication.sid,
                segments=[
                    TranscriptionSegment("seg-1", "hello", 0, 800, "en", False),
                    TranscriptionSegment("seg-2", "world", 800, 1500, "en", True),
                ],
            )
        )
        segments, participant, pub = await their_log.wait_for("transcription_received")
        assert participant.identity == "ours-agent"
        assert pub is not None and pub.sid == publication.sid
        assert [
            (s.id, s.text, s.start_time, s.end_time, s.language, s.final) for s in segments
        ] == [
            ("seg-1", "hello", 0, 800, "en", False),
            ("seg-2", "world", 800, 1500, "en", True),
        ]

        # official -> ours: about our track (participant is then our local participant) ...
        segment = official.TranscriptionSegment(
            id="o-1", text="bonjour", start_time=5, end_time=9, language="fr", final=True
        )
        await theirs.local_participant.publish_transcription(
            official.Transcription(
                participant_identity="ours-agent", track_sid=publication.sid, segments=[segment]
            )
        )
        segments, participant, pub = await our_log.wait_for("transcription_received")
        assert participant is ours.local_participant
        assert pub is ours.local_participant.track_publications[publication.sid]
        assert segments == [TranscriptionSegment("o-1", "bonjour", 5, 9, "fr", True)]
        # ... and about itself, without a track
        await theirs.local_participant.publish_transcription(
            official.Transcription(
                participant_identity="official-agent", track_sid="", segments=[segment]
            )
        )
        _, participant, pub = await our_log.wait_for(
            "transcription_received", lambda s, p, pub: p is not ours.local_participant
        )
        assert participant is ours.remote_participants["official-agent"]
        assert pub is None

        # DTMF both ways
        await ours.local_participant.publish_dtmf(code=11, digit="#")
        (dtmf,) = await their_log.wait_for("sip_dtmf_received")
        assert (dtmf.code, dtmf.digit, dtmf.participant.identity) == (11, "#", "ours-agent")
        await theirs.local_participant.publish_dtmf(code=5, digit="5")
        (dtmf,) = await our_log.wait_for("sip_dtmf_received")
        assert dtmf == rtc.SipDTMF(
            code=5, digit="5", participant=ours.remote_participants["official-agent"]
        )

        # The server drops transcriptions from participants that are not agents.
        await plain.local_participant.publish_transcription(
            Transcription("plain", "", [TranscriptionSegment("p", "ignored", 0, 1, "en", True)])
        )
        await plain.local_participant.publish_dtmf(code=1, digit="1")  # DTMF is forwarded
        await their_log.wait_for("sip_dtmf_received", lambda d: d.participant.identity == "plain")
        await asyncio.sleep(0.5)
        assert len(their_log.args("transcription_received")) == 1
    await source.aclose()


async def test_track_subscription_permissions(server_url: str, make_token: TokenFactory) -> None:
    pub_room, allowed, denied, theirs = rtc.Room(), rtc.Room(), rtc.Room(), official.Room()
    events = ["track_subscribed", "track_unsubscribed", "track_subscription_failed"]
    allowed_log, denied_log = EventLog(allowed, events), EventLog(denied, events)
    their_log = EventLog(theirs, events)
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    async with joined(
        server_url,
        (pub_room, make_token("publisher")),
        (allowed, make_token("allowed")),
        (denied, make_token("denied")),
        (theirs, make_token("official")),
    ):
        lp = pub_room.local_participant
        only_allowed = rtc.ParticipantTrackPermission(
            participant_identity="allowed", allow_all=True
        )
        lp.set_track_subscription_permissions(
            allow_all_participants=False, participant_permissions=[only_allowed]
        )
        await asyncio.sleep(0.3)  # let the permissions reach the server before the track
        publication = await lp.publish_track(track)
        sid = publication.sid

        subscribed, _, participant = await allowed_log.wait_for("track_subscribed", timeout=15)
        assert subscribed.sid == sid and participant.identity == "publisher"
        failed = await denied_log.wait_for("track_subscription_failed", timeout=10)
        assert failed[:2] == (denied.remote_participants["publisher"], sid)
        assert "not allow" in failed[2]
        await asyncio.sleep(1.5)
        assert denied_log.args("track_subscribed") == []
        assert their_log.args("track_subscribed") == []
        assert denied.remote_participants["publisher"].track_publications[sid].track is None

        # The official SDK allowed for this one track by sid.
        lp.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[
                only_allowed,
                rtc.ParticipantTrackPermission(
                    participant_identity="official", allowed_track_sids=[sid]
                ),
            ],
        )
        await their_log.wait_for("track_subscribed", lambda t, p, part: t.sid == sid, timeout=15)
        await asyncio.sleep(0.5)
        assert denied_log.args("track_subscribed") == []

        # Everyone allowed, then "denied" is shut out again.
        lp.set_track_subscription_permissions(allow_all_participants=True)
        await denied_log.wait_for("track_subscribed", timeout=15)
        lp.set_track_subscription_permissions(
            allow_all_participants=False, participant_permissions=[only_allowed]
        )
        gone, _, _ = await denied_log.wait_for("track_unsubscribed", timeout=10)
        assert gone.sid == sid
        assert denied.remote_participants["publisher"].track_publications[sid].track is None
        assert allowed_log.args("track_unsubscribed") == []
        assert allowed.remote_participants["publisher"].track_publications[sid].subscribed
    await source.aclose()
