"""A real browser as the peer: Debian's Chromium on livekit-client, through the real server.

The page (tests/browser/page.js) publishes Chromium's fake camera (a green test picture
with a turning pac-man and a frame counter) and fake microphone (a 400 Hz beep twice a
second) and data, and measures what it receives: video size and frame rate through
requestVideoFrameCallback, colours read back from a canvas, audio through a WebAudio
AnalyserNode, data messages. tests/browser/peer.py runs it (node driver.mjs, which runs
Chromium through puppeteer-core) and ends every process it started, also on failure.

Needs ``chromium``, Node.js and the Node packages (``python -m tests.browser.node_env``,
which nox's ``tests`` session runs); skipped without them, except where
``LIVEKIT_PY_REQUIRE_BROWSER=1`` (``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livekit_py import rtc
from tests.browser.peer import BrowserPeer, unavailable_reason
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    feed_sine,
    subscribed_track,
)

pytestmark = [pytest.mark.server, pytest.mark.browser]

W, H, FPS = 640, 360, 30
# Our picture: a 2 x 4 grid of colours, so that the page can tell them apart, in order.
COLOURS = np.array(
    [
        [(230, 30, 30), (30, 200, 30), (30, 30, 230), (230, 230, 230)],
        [(230, 230, 30), (30, 200, 200), (200, 30, 200), (110, 110, 110)],
    ]
)
# Flat colours survive the codecs within a few levels; BT.709 read as BT.601 is 20+ off.
COLOUR_TOLERANCE = 12
TONE_HZ = 440.0
# Chromium's fake microphone beeps at 400 Hz (kBeepFrequency in
# media/audio/fake_audio_input_stream.cc).
BEEP_HZ = 400.0
# Its fake camera paints a green background (RGB about 0, 128, 0) behind the pac-man.
FAKE_CAMERA_GREEN = np.array([0, 128, 0])


def tone_frequency(frames: np.ndarray, rate: int, floor_hz: float = 50.0) -> float:
    """The strongest frequency above ``floor_hz`` in the float ``frames`` (rows of samples)."""
    mono = frames.reshape(-1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    freqs = np.fft.rfftfreq(len(mono), 1 / rate)
    spectrum[freqs < floor_hz] = 0
    return float(freqs[int(np.argmax(spectrum))])


def report(what: str, measured: object) -> None:
    """What the browser (or we) measured, in the test's output (``-s`` shows it)."""
    print(f"\n[browser] {what}: {json.dumps(measured, default=str)}")


def grid_picture() -> bytes:
    """W x H RGBA showing COLOURS as a grid of equal cells."""
    rows, cols = COLOURS.shape[:2]
    img = np.empty((H, W, 4), dtype=np.uint8)
    img[..., 3] = 255
    for r in range(rows):
        for c in range(cols):
            img[r * H // rows : (r + 1) * H // rows, c * W // cols : (c + 1) * W // cols, :3] = (
                COLOURS[r, c]
            )
    return img.tobytes()


async def feed_video(source: rtc.VideoSource, seconds: float = 90.0) -> None:
    """Capture the grid at FPS on absolute deadlines."""
    data = grid_picture()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        source.capture_frame(rtc.VideoFrame(W, H, rtc.VideoBufferType.RGBA, data))
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / FPS - time.monotonic()))


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserPeer]:
    """A Chromium page on livekit-client; after the test, none of its processes is left."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("LIVEKIT_PY_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    peer = await BrowserPeer.start(tmp_path / "browser")
    try:
        yield peer
    finally:
        await peer.close()
        left = peer.leftover_processes()
        assert not left, f"browser processes left running: {left}"


@pytest.fixture
async def ours() -> AsyncIterator[rtc.Room]:
    room = rtc.Room()
    try:
        yield room
    finally:
        await room.disconnect()


async def join_browser(
    browser: BrowserPeer, server_url: str, make_token: TokenFactory, **opts: object
) -> dict[str, Any]:
    """Connect the page as ``browser``, publishing what ``opts`` say (page.js connect)."""
    joined: dict[str, Any] = await browser.call(
        "connect", server_url, make_token("browser"), opts, timeout=60
    )
    return joined


# ------------------------------------------------------------------- we send, it receives


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_the_browser_sees_our_video(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory, codec: str
) -> None:
    assert f"video/{codec}" in await browser.call("receiveCodecs")
    await join_browser(browser, server_url, make_token, camera=False, microphone=False)
    await ours.connect(server_url, make_token("ours"))
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("grid", source)
    try:
        async with background(feed_video(source)):
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                video_codec=getattr(rtc.VideoCodec, codec),
                video_encoding=rtc.VideoEncoding(max_bitrate=1_000_000, max_framerate=FPS),
            )
            await ours.local_participant.publish_track(track, options)
            rows, cols = COLOURS.shape[:2]
            seen = await browser.call("measureVideo", "ours", 4, rows, cols, timeout=90)
    finally:
        await source.aclose()
    report(f"our {codec} in the browser", seen)
    assert seen["codec"].lower() == f"video/{codec.lower()}"
    assert (seen["width"], seen["height"]) == (W, H)
    assert seen["callbackSizes"] == [f"{W}x{H}"]
    # The sender's clock, from the RTP timestamps of the frames the page showed.
    assert abs(seen["fpsNominal"] - FPS) <= 5, seen
    assert seen["fpsDecoded"] > 5, "the browser stopped decoding our video"
    error = np.abs(np.array(seen["grid"]) - COLOURS).max()
    assert error <= COLOUR_TOLERANCE, f"colours {seen['grid']} are not {COLOURS.tolist()}"


async def test_the_browser_hears_our_tone(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory
) -> None:
    await join_browser(browser, server_url, make_token, camera=False, microphone=False)
    await ours.connect(server_url, make_token("ours"))
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    try:
        async with background(feed_sine(source, rtc.AudioFrame, TONE_HZ, amplitude=0.5)):
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await ours.local_participant.publish_track(track, options)
            heard = await browser.call("measureAudio", "ours", 3, timeout=90)
    finally:
        await source.aclose()
    report(
        "our tone in the browser",
        {
            **{k: v for k, v in heard.items() if k not in ("peaks", "levels")},
            "median_peak_hz": float(np.median(heard["peaks"])),
            "median_level_dbfs": float(np.median(heard["levels"])),
        },
    )
    assert heard["codec"].lower() == "audio/opus"
    levels, peaks = np.array(heard["levels"]), np.array(heard["peaks"])
    # A sine of peak 0.5 is -9 dBFS RMS; most of the windows should carry it.
    loud = levels > -20
    assert loud.mean() >= 0.5, f"the browser heard mostly silence: {heard['levels']}"
    assert abs(float(np.median(peaks[loud])) - TONE_HZ) <= 10, heard["peaks"]


async def test_the_browser_gets_our_reliable_data(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory
) -> None:
    await join_browser(browser, server_url, make_token, camera=False, microphone=False)
    await ours.connect(server_url, make_token("ours"))
    # Data can overtake the signal message that announces its sender: wait for that.
    await browser.wait_event(
        lambda e: e["event"] == "participant_connected" and e["identity"] == "ours", timeout=20
    )
    texts = [f"from python {i} ✓" for i in range(5)]
    for text in texts:
        await ours.local_participant.publish_data(text.encode(), reliable=True, topic="py")
    # Reliable data is ordered: once the last one is there, all should be.
    await browser.wait_event(lambda e: e["event"] == "data" and e["text"] == texts[-1])
    got = [e for e in browser.events if e["event"] == "data"]
    report("our data in the browser", got)
    assert [e["text"] for e in got] == texts
    assert all(
        e["from"] == e["identity"] == "ours" and e["topic"] == "py" and e["reliable"] for e in got
    )


# ------------------------------------------------------------------- it sends, we receive


async def test_we_receive_the_browser_camera(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory
) -> None:
    await ours.connect(server_url, make_token("ours"))
    joined = await join_browser(
        browser, server_url, make_token, camera=True, microphone=False, width=640, height=480
    )
    (published,) = joined["published"]
    size = (published["settings"]["width"], published["settings"]["height"])
    track = await subscribed_track(ours, "browser", timeout=30)
    assert isinstance(track, rtc.RemoteVideoTrack)
    stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
    frames: list[rtc.VideoFrame] = []
    first_at = 0.0

    async def read() -> None:
        nonlocal first_at
        async for event in stream:
            if not frames:
                first_at = time.monotonic()
            frames.append(event.frame)
            if time.monotonic() - first_at >= 3:
                return

    try:
        await asyncio.wait_for(read(), 60)
    finally:
        await stream.aclose()
    first, last = (
        np.frombuffer(f.data, dtype=np.uint8).reshape(f.height, f.width, 4)[..., :3]
        for f in (frames[0], frames[-1])
    )
    background_colour = np.median(last.reshape(-1, 3), axis=0)
    report(
        "the browser camera here",
        {
            "published": published,
            "mime": ours.remote_participants["browser"].track_publications[track.sid].mime_type,
            "size": [last.shape[1], last.shape[0]],
            "frames": len(frames),
            "fps": (len(frames) - 1) / max(time.monotonic() - first_at, 1e-3),
            "median_rgb": background_colour.tolist(),
            "changed_pixels": float((np.abs(last.astype(int) - first).max(axis=2) > 40).mean()),
        },
    )
    assert (frames[-1].width, frames[-1].height) == size
    assert last.mean() > 20, "the browser's camera arrived black"
    assert np.abs(background_colour - FAKE_CAMERA_GREEN).max() <= 30, background_colour
    # The pac-man turns and the counter counts: these are live pictures.
    assert (np.abs(last.astype(int) - first).max(axis=2) > 40).any()


async def test_we_receive_the_browser_microphone(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory
) -> None:
    await ours.connect(server_url, make_token("ours"))
    await join_browser(browser, server_url, make_token, camera=False, microphone=True)
    track = await subscribed_track(ours, "browser", timeout=30)
    assert isinstance(track, rtc.RemoteAudioTrack)
    stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
    try:
        samples, rate, _ = await collect_audio(stream, 3.0, skip_seconds=0.5, timeout=60)
    finally:
        await stream.aclose()
    frames = samples[: len(samples) // 480 * 480, 0].astype(np.float64).reshape(-1, 480) / 32768
    levels = 10 * np.log10(np.maximum((frames * frames).mean(axis=1), 1e-12))
    loud = frames[levels > -30]
    # The beep is a 0/+0.85 square wave for ~20 ms, and its DC part comes out of the
    # codec's high-pass as a slow decay after it: look at the loudest 10 ms only, and
    # above 50 Hz.
    beep = tone_frequency(frames[levels >= levels.max() - 6], rate) if len(loud) else 0.0
    report(
        "the browser microphone here",
        {
            "mime": ours.remote_participants["browser"].track_publications[track.sid].mime_type,
            "loudest_10ms_dbfs": float(levels.max()),
            "loud_10ms_frames": len(loud),
            "of_frames": len(frames),
            "beep_hz": beep,
        },
    )
    assert len(loud) > 0, f"the browser's microphone arrived silent (max {levels.max():.1f} dBFS)"
    assert abs(beep - BEEP_HZ) <= 25, f"the beep is at {beep:.1f} Hz"


async def test_we_receive_the_browser_data(
    browser: BrowserPeer, ours: rtc.Room, server_url: str, make_token: TokenFactory
) -> None:
    received: list[rtc.DataPacket] = []
    ours.on("data_received", received.append)
    await ours.connect(server_url, make_token("ours"))
    await join_browser(browser, server_url, make_token, camera=False, microphone=False)
    await wait_until(lambda: "browser" in ours.remote_participants, timeout=20, what="browser")
    texts = [f"from the browser {i} ✓" for i in range(5)]
    for text in texts:
        await browser.call("sendData", text, "js", True)
    await wait_until(lambda: len(received) >= len(texts), timeout=20, what="the browser's data")
    report("the browser's data here", [(p.topic, p.data.decode()) for p in received])
    assert [p.data.decode() for p in received] == texts
    assert all(p.participant is not None for p in received)
    assert {(p.participant.identity, p.topic, p.kind) for p in received if p.participant} == {
        ("browser", "js", rtc.DataPacketKind.KIND_RELIABLE)
    }


# ------------------------------------------------------------------- cleaning up


async def test_no_process_is_left_when_the_driver_dies(tmp_path: Path) -> None:
    """The driver killed outright leaves Chromium behind (puppeteer detaches it): close ends it."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("LIVEKIT_PY_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    peer = await BrowserPeer.start(tmp_path / "browser")
    try:
        assert peer.browser_pid is not None
        os.kill(peer.process.pid, signal.SIGKILL)
        await asyncio.wait_for(peer.process.wait(), 10)
        with pytest.raises(RuntimeError, match="exited"):
            await peer.call("receiveCodecs", timeout=10)
        assert peer.leftover_processes(), "Chromium went with the driver; nothing to test"
    finally:
        await peer.close()
    assert not peer.leftover_processes()
