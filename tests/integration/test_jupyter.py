"""rtc.jupyter.room_html in a real browser: the embedded page joins the room and subscribes.

The page is what a notebook shows (an ``<iframe srcdoc>`` carrying livekit-client
inline), opened from a file in Debian's headless Chromium with fake devices and no
network but the local server. Our SDK, in the room, sees the page's participant join
and subscribe to its tone, and lists it in ``Room._repr_html_``. Skipped without
``chromium`` (``LIVEKIT_PY_REQUIRE_BROWSER=1`` makes that a failure, as in CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from livekit_py import rtc
from livekit_py.rtc import jupyter
from tests.conftest import TokenFactory
from tests.helpers import EventLog
from tests.integration.audio_utils import background, feed_sine

pytestmark = [pytest.mark.server]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium(page: Path, profile: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium showing ``page``; it and its children are gone afterwards."""
    if CHROMIUM is None:
        reason = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("LIVEKIT_PY_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                f"--user-data-dir={profile}",
                page.as_uri(),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended as one below
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def test_the_embedded_room_joins_and_subscribes(
    server_url: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    agent = rtc.Room()
    log = EventLog(agent, ["participant_connected", "local_track_subscribed"])
    await agent.connect(server_url, make_token("agent"))
    try:
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        async with background(feed_sine(source, rtc.AudioFrame, 440.0)):
            await agent.local_participant.publish_track(track, options)
            html = jupyter.room_html(
                server_url, make_token("notebook-user"), width="100%", height="300px"
            )
            page = tmp_path / "notebook-output.html"
            # the notebook page around the output cell's HTML
            page.write_text(f"<!doctype html><html><body>{html.data}</body></html>")
            with chromium(page, tmp_path / "profile", tmp_path / "chromium.log"):
                try:
                    (joined,) = await log.wait_for("participant_connected", timeout=90)
                    assert joined.identity == "notebook-user"
                    # the page plays what others publish: it subscribed to our tone
                    await log.wait_for("local_track_subscribed", timeout=60)
                except AssertionError as exc:
                    tail = (tmp_path / "chromium.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"{exc}\nchromium log:\n{tail}") from None
                rows = agent._repr_html_()
                assert "<td>notebook-user</td><td></td><td>remote</td><td>nothing</td>" in rows
        await source.aclose()
    finally:
        await agent.disconnect()
