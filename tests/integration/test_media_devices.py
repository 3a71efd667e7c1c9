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
from tests.helpers import EventLog
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
