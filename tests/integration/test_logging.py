"""At INFO a healthy connection prints nothing: neither aioice's ICE checks nor ours."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import numpy as np
import pytest

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import wait_until

LIBRARIES = ("aioice", "aiortc")


@pytest.fixture
def unconfigured_libraries() -> Iterator[None]:
    """The library loggers as an application that configured nothing has them.

    tests/conftest.py sets them to INFO for the other tests' benefit.
    """
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
    yield
    for lg, level in zip(loggers, saved, strict=True):
        lg.setLevel(level)


async def _call(server_url: str, make_token: TokenFactory) -> None:
    """Two rooms of ours: audio one way, data the other, then both leave."""
    alice, bob = rtc.Room(), rtc.Room()
    frames: list[rtc.AudioFrame] = []
    data: list[bytes] = []
    readers: list[asyncio.Task[None]] = []
    bob.on("data_received", lambda packet: data.append(packet.data))

    @bob.on("track_subscribed")
    def on_track(track: rtc.Track, *_: object) -> None:
        async def read() -> None:
            async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                frames.append(event.frame)

        readers.append(asyncio.ensure_future(read()))

    await alice.connect(server_url, make_token("alice"))
    await bob.connect(server_url, make_token("bob"))
    source = rtc.AudioSource(48000, 1)
    await alice.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("tone", source)
    )
    tone = (np.sin(2 * np.pi * 440 * np.arange(480) / 48000) * 8000).astype(np.int16)

    async def feed() -> None:
        while True:
            await source.capture_frame(rtc.AudioFrame(tone.tobytes(), 48000, 1, 480))

    feeding = asyncio.ensure_future(feed())
    try:
        await wait_until(lambda: len(frames) >= 50, timeout=30)
        await alice.local_participant.publish_data(b"hello", reliable=True)
        await wait_until(lambda: data == [b"hello"], timeout=30)
    finally:
        feeding.cancel()
        await alice.disconnect()
        await bob.disconnect()
        for task in readers:
            task.cancel()


async def test_a_healthy_connection_logs_nothing_at_info(
    server_url: str,
    make_token: TokenFactory,
    caplog: pytest.LogCaptureFixture,
    unconfigured_libraries: None,
) -> None:
    caplog.set_level(logging.INFO)
    await _call(server_url, make_token)
    shown = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert not [r for r in shown if r[0].split(".")[0] in LIBRARIES], shown
    assert not [r for r in shown if r[0].startswith("livekit_py")], shown


async def test_a_level_set_by_the_application_shows_aioice_again(
    server_url: str,
    make_token: TokenFactory,
    caplog: pytest.LogCaptureFixture,
    unconfigured_libraries: None,
) -> None:
    logging.getLogger("aioice").setLevel(logging.INFO)  # as README "Logging" says
    caplog.set_level(logging.INFO)
    await _call(server_url, make_token)
    assert [r for r in caplog.records if r.name.startswith("aioice")]
    assert logging.getLogger("aioice").level == logging.INFO
