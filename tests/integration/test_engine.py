"""The RTC engine against the real server, below the room API."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.engine.engine import RtcEngine
from livekit_py.signal.client import SignalClient, SignalOptions
from livekit_py.webrtc.encoders import AudioEncoderConfig
from tests.conftest import TokenFactory

pytestmark = pytest.mark.server


async def test_track_added_while_the_publisher_is_still_connecting_sends_media(
    server_url: str, make_token: TokenFactory
) -> None:
    """A renegotiation applied while ICE/DTLS is still being set up must not lose the track.

    aiortc starts the sender of a new m-line only when DTLS is already connected
    as the answer is applied; the engine waits for the connection to settle.
    """
    signal = SignalClient()
    join = await signal.join(server_url, make_token("early"), SignalOptions())
    engine = RtcEngine(signal)
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("early", source)
    feeder: asyncio.Task[None] | None = None
    try:
        engine.start(join)  # the publisher's first negotiation starts in the background
        media = track._media_track()
        request = proto_rtc.AddTrackRequest(
            cid=media.id, name="early", type=proto_models.TrackType.AUDIO
        )
        await engine.add_track(request)
        transceiver = engine.add_publisher_track(media, AudioEncoderConfig())
        await engine.negotiate_publisher()  # queued right behind the first negotiation

        async def feed() -> None:
            tone = (0.3 * 32767 * np.sin(np.arange(480) / 48000 * 2 * np.pi * 440)).astype(np.int16)
            while True:
                await source.capture_frame(rtc.AudioFrame(tone.tobytes(), 48000, 1, 480))

        feeder = asyncio.ensure_future(feed())
        await asyncio.sleep(2.0)
        report = await transceiver.sender.getStats()
        sent = sum(s.packetsSent for s in report.values() if s.type == "outbound-rtp")
        assert sent > 40, f"only {sent} RTP packets sent in 2 s"
    finally:
        if feeder is not None:
            feeder.cancel()
        await engine.close()
        await signal.close()
        await source.aclose()
