"""MediaDevices end to end through the real server, on the fake audio backend.

A "microphone" capturing a sine is published from ``open_input``'s source and received by
another of our Rooms; a peer's track is played by ``open_output`` into the fake speaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from livekit_py import rtc
from livekit_py.rtc import media_devices as md
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    dominant_frequency,
    feed_sine,
    rms_dbfs,
)
from tests.unit.test_media_devices import FakeAudioBackend, our_threads, tones

pytestmark = pytest.mark.server


@pytest.fixture
def backend() -> Iterator[FakeAudioBackend]:
    fake = FakeAudioBackend(tones((440.0, 0.3)))
    previous = md.set_audio_backend(fake)
    try:
        yield fake
    finally:
        md.set_audio_backend(previous)
    assert our_threads() == []


async def test_a_published_microphone_reaches_a_peer(
    server_url: str, make_token: TokenFactory, backend: FakeAudioBackend
) -> None:
    speaker, listener = rtc.Room(), rtc.Room()
    log = EventLog(listener, ["track_subscribed"])
    devices = backend.devices()
    capture = devices.open_input()  # every processing feature on, as by default
    try:
        await listener.connect(server_url, make_token("listener"))
        await speaker.connect(server_url, make_token("speaker"))
        track = rtc.LocalAudioTrack.create_audio_track("mic", capture.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await speaker.local_participant.publish_track(track, options)
        remote_track, remote_pub, participant = await log.wait_for("track_subscribed", timeout=15)
        assert participant.identity == "speaker" and remote_pub.sid == publication.sid
        assert remote_pub.source == rtc.TrackSource.SOURCE_MICROPHONE
        stream = rtc.AudioStream(remote_track, sample_rate=48000, num_channels=1)
        samples, rate, _ = await collect_audio(stream, 2.0, skip_seconds=1.0)
        await stream.aclose()
    finally:
        await speaker.disconnect()
        await listener.disconnect()
        await capture.aclose()
    freq = dominant_frequency(samples, rate)
    level = rms_dbfs(samples)
    silent = float(np.mean(np.abs(samples[:, 0]) < 30))
    print(f"\nmicrophone at the peer: {freq:.1f} Hz, {level:.1f} dBFS, {silent:.1%} near zero")
    assert abs(freq - 440.0) < 3.0
    assert level > -40.0


async def test_a_peers_track_is_played_on_the_speaker(
    server_url: str, make_token: TokenFactory, backend: FakeAudioBackend
) -> None:
    speaker, listener = rtc.Room(), rtc.Room()
    log = EventLog(listener, ["track_subscribed"])
    source = rtc.AudioSource(48000, 1)
    devices = backend.devices()
    player = devices.open_output()
    output = backend.of_kind("output")[0]
    try:
        await listener.connect(server_url, make_token("listener"))
        await speaker.connect(server_url, make_token("speaker"))
        async with background(feed_sine(source, rtc.AudioFrame, 660.0)):
            track = rtc.LocalAudioTrack.create_audio_track("voice", source)
            await speaker.local_participant.publish_track(track)
            remote_track, _, _ = await log.wait_for("track_subscribed", timeout=15)
            await player.add_track(remote_track)
            await player.start()
            await asyncio.sleep(3.0)
            played = np.concatenate(output.played)
            await player.remove_track(remote_track)
    finally:
        await player.aclose()
        await speaker.disconnect()
        await listener.disconnect()
        await source.aclose()
    last = played[-48000:]
    freq = dominant_frequency(last, 48000)
    print(f"\npeer's track on the speaker: {freq:.1f} Hz, {rms_dbfs(last):.1f} dBFS")
    assert abs(freq - 660.0) < 3.0
    assert abs(rms_dbfs(last) - 20 * np.log10(0.5 / np.sqrt(2))) < 3.0


async def test_platform_audio_with_the_official_sdk_as_peer(
    server_url: str, make_token: TokenFactory, backend: FakeAudioBackend
) -> None:
    """PlatformAudio as the official SDK's examples use it: the microphone published from
    ``create_audio_source()`` reaches an official peer, and the peer's track is played on
    the speaker without any code of ours reading it (automatic playout)."""
    from livekit import rtc as official

    from livekit_py.rtc import platform_audio
    from tests.integration.audio_utils import subscribed_track

    ours, theirs = rtc.Room(), official.Room()
    their_source = official.AudioSource(48000, 1)
    audio = rtc.PlatformAudio()
    speaker = next(d for d in audio.playout_devices() if d.name == "Fake Headset")
    audio.set_playout_device(speaker.id)
    source = audio.create_audio_source()
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await ours.local_participant.publish_track(track, options)
        async with background(feed_sine(their_source, official.AudioFrame, 660.0)):
            their_track = official.LocalAudioTrack.create_audio_track("tone", their_source)
            await theirs.local_participant.publish_track(their_track)
            # official <- our microphone (the fake mic's 440 Hz)
            remote = await subscribed_track(theirs, "ours", timeout=20)
            stream = official.AudioStream(remote, sample_rate=48000, num_channels=1)
            samples, rate, _ = await collect_audio(stream, 2.0, skip_seconds=1.0)
            await stream.aclose()
            # our speaker <- official's tone, played by PlatformAudio on its own
            await subscribed_track(ours, "official", timeout=20)
            await wait_until(
                lambda: any(len(s.played) > 30 for s in backend.of_kind("output")),
                timeout=20,
                what="the official peer's track played on the speaker",
            )
            (output,) = backend.of_kind("output")
            assert output.device == 2  # the selected headset
            played = np.concatenate(output.played[-10:])
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await source.aclose()
        await audio.aclose()
        await their_source.aclose()
        platform_audio._shared = None
    freq = dominant_frequency(samples, rate)
    print(f"\nPlatformAudio microphone at the official peer: {freq:.1f} Hz")
    assert abs(freq - 440.0) < 3.0
    assert rms_dbfs(samples) > -40.0
    played_freq = dominant_frequency(played, 48000)
    print(f"official peer's track on the PlatformAudio speaker: {played_freq:.1f} Hz")
    assert abs(played_freq - 660.0) < 3.0
