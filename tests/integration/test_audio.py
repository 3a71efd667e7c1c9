"""Audio end to end through the real server, with the official SDK as the peer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests import stats_reading as read
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    dominant_frequency,
    feed_sine,
    rms_dbfs,
    subscribed_track,
)

pytestmark = [pytest.mark.server, pytest.mark.interop]

SINE_DBFS = 20 * np.log10(0.5 / np.sqrt(2))  # a 0.5-amplitude sine: -9.03 dBFS


async def test_our_sine_reaches_the_official_sdk(server_url: str, make_token: TokenFactory) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["local_track_published", "local_track_subscribed"])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("sine", source)
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            publication = await ours.local_participant.publish_track(track, options)
            assert publication.sid.startswith("TR_") and track.sid == publication.sid
            assert publication.kind == rtc.TrackKind.KIND_AUDIO
            assert publication.source == rtc.TrackSource.SOURCE_MICROPHONE
            assert log.args("local_track_published") == [(publication, track)]
            assert ours.local_participant.track_publications[publication.sid] is publication

            remote = await subscribed_track(theirs, "ours", timeout=15)
            await asyncio.wait_for(publication.wait_for_subscription(), 10)
            assert (await log.wait_for("local_track_subscribed")) == (track,)
            stream = official.AudioStream(remote, sample_rate=48000, num_channels=1)
            samples, rate, _ = await collect_audio(stream, 1.0)
            await stream.aclose()
        assert rate == 48000
        assert abs(dominant_frequency(samples, rate) - 440.0) < 3.0
        assert abs(rms_dbfs(samples) - SINE_DBFS) < 2.0
        remote_pub = theirs.remote_participants["ours"].track_publications[publication.sid]
        assert remote_pub.source == official.TrackSource.SOURCE_MICROPHONE
        assert "opus" in remote_pub.mime_type.lower()
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (16000, 1)])
async def test_official_sine_reaches_our_audio_stream(
    server_url: str, make_token: TokenFactory, rate: int, channels: int
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["track_published", "track_subscribed"])
    source = official.AudioSource(48000, 1)
    track = official.LocalAudioTrack.create_audio_track("sine", source)
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed_sine(source, official.AudioFrame, 440.0)):
            options = official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
            await theirs.local_participant.publish_track(track, options)
            remote_track, publication, participant = await log.wait_for(
                "track_subscribed", timeout=15
            )
            assert isinstance(remote_track, rtc.RemoteAudioTrack)
            assert participant.identity == "official"
            assert publication.track is remote_track and publication.subscribed
            assert publication.kind == rtc.TrackKind.KIND_AUDIO
            assert publication.source == rtc.TrackSource.SOURCE_MICROPHONE
            # the official SDK publishes Opus with RED by default; the server strips
            # RED for us since aiortc does not offer it
            assert publication.mime_type.lower() in ("audio/opus", "audio/red")
            assert (await log.wait_for("track_published"))[0] is publication

            stream = rtc.AudioStream(remote_track, sample_rate=rate, num_channels=channels)
            samples, got_rate, got_channels = await collect_audio(stream, 1.0)
            await stream.aclose()
        assert (got_rate, got_channels) == (rate, channels)
        assert samples.shape[1] == channels
        assert abs(dominant_frequency(samples, rate) - 440.0) < 3.0
        assert abs(rms_dbfs(samples) - SINE_DBFS) < 2.0
    finally:
        await theirs.disconnect()
        await ours.disconnect()
        await source.aclose()


async def test_mute_and_unmute_reach_the_peer_and_muted_audio_is_silence(
    server_url: str, make_token: TokenFactory
) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    bob_log = EventLog(bob, ["track_subscribed", "track_muted", "track_unmuted"])
    theirs = official.Room()
    their_events: list[tuple[str, str]] = []
    theirs.on("track_muted", lambda p, pub: their_events.append(("muted", pub.sid)))
    theirs.on("track_unmuted", lambda p, pub: their_events.append(("unmuted", pub.sid)))
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    try:
        await bob.connect(server_url, make_token("bob"))
        await theirs.connect(server_url, make_token("official"))
        await alice.connect(server_url, make_token("alice"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            pub = await alice.local_participant.publish_track(track)
            remote_track, remote_pub, _ = await bob_log.wait_for("track_subscribed", timeout=15)
            stream = rtc.AudioStream(remote_track)
            loud, rate, _ = await collect_audio(stream, 0.5)
            assert rms_dbfs(loud) > SINE_DBFS - 2

            track.mute()
            assert track.muted and pub.muted
            assert (await bob_log.wait_for("track_muted")) == (
                bob.remote_participants["alice"],
                remote_pub,
            )
            assert remote_pub.muted
            await wait_until(lambda: ("muted", pub.sid) in their_events, what="official sees mute")
            quiet, _, _ = await collect_audio(stream, 0.5, skip_seconds=0.3)
            assert rms_dbfs(quiet) < -50

            track.unmute()
            await bob_log.wait_for("track_unmuted")
            await wait_until(lambda: ("unmuted", pub.sid) in their_events, what="official unmute")
            loud_again, _, _ = await collect_audio(stream, 0.5, skip_seconds=0.3)
            assert rms_dbfs(loud_again) > SINE_DBFS - 2
            assert abs(dominant_frequency(loud_again, rate) - 440.0) < 3.0
            await stream.aclose()
    finally:
        for room in (alice, bob):
            await room.disconnect()
        await theirs.disconnect()
        await source.aclose()


async def test_manual_subscription_delivers_and_ends(
    server_url: str, make_token: TokenFactory
) -> None:
    listener, speaker = rtc.Room(), rtc.Room()
    log = EventLog(listener, ["track_published", "track_subscribed", "track_unsubscribed"])
    source = rtc.AudioSource(16000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("voice", source)
    try:
        await listener.connect(
            server_url, make_token("listener"), rtc.RoomOptions(auto_subscribe=False)
        )
        await speaker.connect(server_url, make_token("speaker"))
        async with background(feed_sine(source, rtc.AudioFrame, 300.0)):
            await speaker.local_participant.publish_track(track)
            publication, participant = await log.wait_for("track_published", timeout=15)
            assert isinstance(publication, rtc.RemoteTrackPublication)
            await asyncio.sleep(1.0)
            assert not publication.subscribed and publication.track is None
            assert "track_subscribed" not in log.names()

            publication.set_subscribed(True)
            remote_track, pub, _ = await log.wait_for("track_subscribed", timeout=15)
            assert pub is publication and publication.subscribed
            assert participant.identity == "speaker"
            stream = rtc.AudioStream(remote_track, sample_rate=16000)
            samples, rate, _ = await collect_audio(stream, 0.5)
            assert abs(dominant_frequency(samples, rate) - 300.0) < 4.0

            publication.set_subscribed(False)
            assert (await log.wait_for("track_unsubscribed", timeout=15))[0] is remote_track
            # the stream over the unsubscribed track ends
            await asyncio.wait_for(_drain(stream), 10)
            assert not publication.subscribed and publication.track is None
    finally:
        await speaker.disconnect()
        await listener.disconnect()
        await source.aclose()


async def _drain(stream: rtc.AudioStream) -> int:
    n = 0
    async for _ in stream:
        n += 1
    return n


async def test_unpublish_and_disconnect_end_the_peers_stream(
    server_url: str, make_token: TokenFactory
) -> None:
    listener, speaker = rtc.Room(), rtc.Room()
    log = EventLog(listener, ["track_subscribed", "track_unsubscribed", "track_unpublished"])
    speaker_log = EventLog(speaker, ["local_track_unpublished"])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("a", source)
    try:
        await listener.connect(server_url, make_token("listener"))
        await speaker.connect(server_url, make_token("speaker"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            pub = await speaker.local_participant.publish_track(track)
            remote_track, _, _ = await log.wait_for("track_subscribed", timeout=15)
            drained = asyncio.ensure_future(_drain(rtc.AudioStream(remote_track)))
            await asyncio.sleep(0.5)
            await speaker.local_participant.unpublish_track(pub.sid)
            assert speaker_log.args("local_track_unpublished") == [(pub,)]
            assert pub.sid not in speaker.local_participant.track_publications
            assert await asyncio.wait_for(drained, 10) > 10
            await log.wait_for("track_unpublished", timeout=10)
            assert log.names().index("track_unsubscribed") < log.names().index("track_unpublished")

            # publish again, then the speaker disconnects: the stream ends too
            await speaker.local_participant.publish_track(track)
            remote_track, _, _ = await log.wait_for(
                "track_subscribed", lambda t, *_: t is not remote_track, timeout=15
            )
            drained = asyncio.ensure_future(_drain(rtc.AudioStream(remote_track)))
            await asyncio.sleep(0.5)
            await speaker.disconnect()
            assert await asyncio.wait_for(drained, 10) > 10
        # and on our own disconnect, streams over remote tracks end as well
    finally:
        await speaker.disconnect()
        await listener.disconnect()
        await source.aclose()


async def test_official_unpublish_ends_our_stream(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["track_subscribed", "track_unsubscribed", "track_unpublished"])
    source = official.AudioSource(48000, 1)
    track = official.LocalAudioTrack.create_audio_track("sine", source)
    try:
        await ours.connect(server_url, make_token("ours"))
        await theirs.connect(server_url, make_token("official"))
        async with background(feed_sine(source, official.AudioFrame, 440.0)):
            pub = await theirs.local_participant.publish_track(track)
            remote_track, _, _ = await log.wait_for("track_subscribed", timeout=15)
            drained = asyncio.ensure_future(_drain(rtc.AudioStream(remote_track)))
            await asyncio.sleep(0.5)
            await theirs.local_participant.unpublish_track(pub.sid)
            assert await asyncio.wait_for(drained, 10) > 10
            await log.wait_for("track_unpublished", timeout=10)
            # our own disconnect ends streams over remote tracks
            await theirs.local_participant.publish_track(track)
            second, _, _ = await log.wait_for(
                "track_subscribed", lambda t, *_: t is not remote_track, timeout=15
            )
            drained = asyncio.ensure_future(_drain(rtc.AudioStream(second)))
            await asyncio.sleep(0.3)
            await ours.disconnect()
            assert await asyncio.wait_for(drained, 10) > 5
    finally:
        await theirs.disconnect()
        await ours.disconnect()
        await source.aclose()


async def test_stats(server_url: str, make_token: TokenFactory) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    log = EventLog(bob, ["track_subscribed"])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("a", source)
    try:
        await alice.connect(server_url, make_token("alice"))
        await bob.connect(server_url, make_token("bob"))
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            await alice.local_participant.publish_track(track)
            remote_track, _, _ = await log.wait_for("track_subscribed", timeout=15)
            await asyncio.sleep(1.5)
            sent = await track.get_stats()
            received = await remote_track.get_stats()
            (outbound,) = read.outbound(sent, "audio")
            assert outbound.sent.packets_sent > 0
            (entry,) = read.inbound(received, "audio")
            assert entry.received.packets_received > 0
            # the W3C audio receiver fields, from our own jitter buffer
            inbound = entry.inbound
            assert inbound.jitter_buffer_emitted_count > 0 and inbound.jitter_buffer_delay >= 0
            assert inbound.total_samples_received >= inbound.jitter_buffer_emitted_count
            assert (
                0 < inbound.jitter_buffer_target_delay / inbound.jitter_buffer_emitted_count < 0.5
            )
            stats = await bob.get_rtc_stats()
            # one peer connection (the default): everything in the publisher's, as official
            assert read.inbound(stats.publisher_stats, "audio")
            assert stats.subscriber_stats == []
    finally:
        await alice.disconnect()
        await bob.disconnect()
        await source.aclose()


async def test_stream_from_participant_waits_and_follows_track_changes(
    server_url: str, make_token: TokenFactory
) -> None:
    listener, speaker = rtc.Room(), rtc.Room()
    log = EventLog(listener, ["participant_connected", "track_subscribed"])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    mic = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    try:
        await speaker.connect(server_url, make_token("speaker"))
        await listener.connect(server_url, make_token("listener"))
        participant = listener.remote_participants["speaker"]
        # nothing published yet: the stream waits for the microphone
        stream = rtc.AudioStream.from_participant(
            participant=participant, track_source=rtc.TrackSource.SOURCE_MICROPHONE
        )
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            pub = await speaker.local_participant.publish_track(track, mic)
            samples, rate, _ = await collect_audio(stream, 0.5)
            assert abs(dominant_frequency(samples, rate) - 440.0) < 3.0

            # a new microphone track replaces the old one: the same stream follows it
            await speaker.local_participant.unpublish_track(pub.sid)
            await speaker.local_participant.publish_track(track, mic)
            await log.wait_for("track_subscribed", lambda t, p, _: p.sid != pub.sid, timeout=15)
            samples, rate, _ = await collect_audio(stream, 0.5)
            assert abs(dominant_frequency(samples, rate) - 440.0) < 3.0

            # the participant leaves: the stream ends
            rest = asyncio.ensure_future(_drain(stream))
            await speaker.disconnect()
            await asyncio.wait_for(rest, 10)
    finally:
        await speaker.disconnect()
        await listener.disconnect()
        await source.aclose()


async def test_audio_max_bitrate_is_honoured(server_url: str, make_token: TokenFactory) -> None:
    room = rtc.Room()
    low_src, high_src = rtc.AudioSource(48000, 1), rtc.AudioSource(48000, 1)
    low = rtc.LocalAudioTrack.create_audio_track("low", low_src)
    high = rtc.LocalAudioTrack.create_audio_track("high", high_src)
    try:
        await room.connect(server_url, make_token("speaker"))
        async with (
            background(feed_sine(low_src, rtc.AudioFrame, 440.0)),
            background(feed_sine(high_src, rtc.AudioFrame, 440.0)),
        ):
            await room.local_participant.publish_track(
                low, rtc.TrackPublishOptions(audio_encoding=rtc.AudioEncoding(max_bitrate=12_000))
            )
            await room.local_participant.publish_track(
                high, rtc.TrackPublishOptions(audio_encoding=rtc.AudioEncoding(max_bitrate=96_000))
            )

            async def sent_bytes(track: rtc.LocalAudioTrack) -> int:
                stats = await track.get_stats()
                return sum(s.sent.bytes_sent for s in read.outbound(stats, "audio"))

            start = (await sent_bytes(low), await sent_bytes(high))
            await asyncio.sleep(3.0)
            low_rate = (await sent_bytes(low) - start[0]) * 8 / 3.0
            high_rate = (await sent_bytes(high) - start[1]) * 8 / 3.0
        # RTP headers add ~16 kbps at 50 packets/s; the payload difference dominates
        assert low_rate < 40_000, f"low track sent {low_rate:.0f} bit/s"
        assert high_rate > 2 * low_rate, f"{high_rate:.0f} vs {low_rate:.0f} bit/s"
    finally:
        await room.disconnect()
        await low_src.aclose()
        await high_src.aclose()


async def test_the_servers_answer_sets_opus_fec_and_dtx_and_its_reports_are_followed(
    server_url: str, make_token: TokenFactory
) -> None:
    from livekit_py.webrtc.aiortc_adapter import installed_encoder
    from livekit_py.webrtc.opus import OpusEncoder

    room = rtc.Room()
    sources = [rtc.AudioSource(48000, 1), rtc.AudioSource(48000, 1)]
    tracks = [rtc.LocalAudioTrack.create_audio_track(f"a{i}", s) for i, s in enumerate(sources)]
    try:
        await room.connect(server_url, make_token("speaker"))
        await room.local_participant.publish_track(tracks[0])
        await room.local_participant.publish_track(tracks[1], rtc.TrackPublishOptions(dtx=False))
        encoders = [installed_encoder(t._sender) if t._sender else None for t in tracks]
        assert all(isinstance(e, OpusEncoder) for e in encoders), encoders
        # LiveKit answers our useinbandfec=1, and adds usedtx=1 unless DTX was disabled
        await wait_until(lambda: all(e.fec for e in encoders), what="FEC on")  # type: ignore[union-attr]
        assert [e.dtx for e in encoders] == [True, False]  # type: ignore[union-attr]
        # the server's receiver reports reach each track's loss feedback (no loss here)
        engine = room._session.engine
        assert engine is not None
        feedbacks = list(engine._loss_feedback.values())
        assert len(feedbacks) == 2
        await wait_until(lambda: all(f.reports > 0 for f in feedbacks), 15, "receiver reports")
        assert [e.packet_loss_percent for e in encoders] == [0, 0]  # type: ignore[union-attr]
    finally:
        await room.disconnect()
        for source in sources:
            await source.aclose()
