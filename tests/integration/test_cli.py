"""The command line against the real server: ``python -m livekit_py ...`` as a subprocess.

The peer is the official SDK. Each command runs with LIVEKIT_URL / LIVEKIT_API_KEY /
LIVEKIT_API_SECRET in its environment, for a bounded time (``--duration`` or SIGINT,
which is Ctrl-C), and the test checks what it should produce: lines it prints, media
the peer receives, files PyAV reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import api
from livekit import rtc as official

from signaling import local_server
from tests.cli_media import BLUE, RED, dominant_frequency, make_clip, read_back
from tests.conftest import ROOT, TokenFactory
from tests.integration.audio_utils import background, collect_audio, feed_sine

pytestmark = [pytest.mark.server, pytest.mark.interop]

BARS = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0)]


def cli_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIVEKIT_URL=url,
        LIVEKIT_API_KEY=local_server.API_KEY,
        LIVEKIT_API_SECRET=local_server.API_SECRET,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]),
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    env.pop("LIVEKIT_TOKEN", None)
    return env


def _new_log(tmp_path: Path, command: str) -> tuple[Path, Any]:
    """A new file for a CLI's standard error, and the file opened for writing."""
    n = 0
    while (tmp_path / f"cli-{command}-{n}.err").exists():
        n += 1
    path = tmp_path / f"cli-{command}-{n}.err"
    return path, path.open("wb")


class Cli:
    """A running ``python -m livekit_py`` with its output lines."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.stderr_path = stderr_path
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, url: str, tmp_path: Path, *args: str, stdin: bytes | None = None) -> Cli:
        stderr_path, err = _new_log(tmp_path, args[0])
        with err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "livekit_py",
                *args,
                env=cli_env(url),
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        return cls(proc, stderr_path)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first JSON record matching ``predicate`` (waiting for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for rec in self.records():
                if predicate(rec):
                    return rec
            remaining = deadline - loop.time()
            if remaining <= 0 or (self.proc.returncode is not None and self._reader.done()):
                raise AssertionError(
                    f"no {what} from the CLI; stdout: {self.lines}\nstderr: {self.stderr()}"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))

    async def finish(self, timeout: float = 60.0) -> int:
        """Wait for the program to end by itself; its exit status."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"the CLI did not end; stderr: {self.stderr()}") from None
        await self._reader
        return code

    async def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C: SIGINT, then wait for a clean end."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return await self.finish(timeout)

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


@contextlib.asynccontextmanager
async def running(url: str, tmp_path: Path, *args: str, stdin: bytes | None = None) -> Any:
    cli = await Cli.start(url, tmp_path, *args, stdin=stdin)
    try:
        yield cli
    finally:
        await cli.close()


@contextlib.asynccontextmanager
async def official_peer(url: str, token: str) -> Any:
    room = official.Room()
    await room.connect(url, token)
    try:
        yield room
    finally:
        await room.disconnect()


async def first_track(room: Any, kind: int, timeout: float = 30.0) -> Any:
    """The first remote track of ``kind`` the official room subscribes to."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for participant in room.remote_participants.values():
            for pub in participant.track_publications.values():
                if pub.track is not None and pub.kind == kind:
                    return pub.track
        await asyncio.sleep(0.1)
    raise AssertionError(f"no track of kind {kind} within {timeout} s")


async def a_picture(track: Any, *, skip: int = 10, timeout: float = 30.0) -> np.ndarray:
    """An RGBA picture of a video track (after ``skip`` pictures of warm-up)."""
    stream = official.VideoStream(track)
    try:

        async def read() -> np.ndarray:
            seen = 0
            async for event in stream:
                seen += 1
                if seen > skip:
                    frame = event.frame.convert(official.VideoBufferType.RGBA)
                    return np.frombuffer(bytes(frame.data), np.uint8).reshape(
                        frame.height, frame.width, 4
                    )
            raise AssertionError("the video ended")

        return await asyncio.wait_for(read(), timeout)
    finally:
        await stream.aclose()


async def tone_of(track: Any) -> float:
    stream = official.AudioStream(track, sample_rate=48000, num_channels=1)
    try:
        pcm, rate, _ = await collect_audio(stream, 1.0, skip_seconds=0.5, timeout=30.0)
    finally:
        await stream.aclose()
    assert np.abs(pcm).max() > 1000, "the audio is silent"
    return dominant_frequency(pcm.reshape(-1), rate)


def mean_rgb(picture: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return picture[rows, cols, :3].reshape(-1, 3).mean(axis=0)


# -- join --------------------------------------------------------------------------------


async def test_join_prints_a_participant_joining_and_their_data(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    args = ("join", "-r", room_name, "-i", "watcher", "--json", "--duration", "90")
    async with running(server_url, tmp_path, *args) as cli:
        await cli.wait_for(lambda r: r.get("event") == "connected", "connected")
        async with official_peer(server_url, make_token("peer", name="The Peer")) as peer:
            joined = await cli.wait_for(
                lambda r: r.get("event") == "participant_connected" and r["identity"] == "peer",
                "participant_connected of the peer",
            )
            assert joined["name"] == "The Peer"
            await peer.local_participant.publish_data(b"hello cli", topic="greetings")
            await peer.local_participant.publish_data(b"\x00\xff", reliable=False)
            await peer.local_participant.send_text("chat from the peer", topic="lk.chat")
            data = await cli.wait_for(
                lambda r: r.get("event") == "data_received" and r.get("topic") == "greetings",
                "the peer's data packet",
            )
            assert (data["identity"], data["text"], data["reliable"]) == ("peer", "hello cli", True)
            binary = await cli.wait_for(
                lambda r: r.get("event") == "data_received" and "base64" in r, "binary data"
            )
            assert (binary["base64"], binary["reliable"]) == ("AP8=", False)
            chat = await cli.wait_for(lambda r: r.get("event") == "chat", "the peer's chat")
            assert (chat["identity"], chat["text"]) == ("peer", "chat from the peer")
        await cli.wait_for(
            lambda r: r.get("event") == "participant_disconnected" and r["identity"] == "peer",
            "participant_disconnected of the peer",
        )
        assert await cli.interrupt() == 0
        assert cli.records()[-1]["event"] == "left"


async def test_join_sends_flags_and_stdin_lines(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with official_peer(server_url, make_token("peer")) as peer:
        packets: list[tuple[str, bytes]] = []
        texts: list[tuple[str, str, str]] = []
        peer.on("data_received", lambda p: packets.append((p.topic, bytes(p.data))))

        async def read_text(reader: Any, identity: str) -> None:
            texts.append((identity, reader.info.topic, await reader.read_all()))

        for topic in ("notes", "lk.chat"):
            peer.register_text_stream_handler(
                topic, lambda r, i: asyncio.ensure_future(read_text(r, i))
            )
        data_args = ("join", "-r", room_name, "-i", "sender", "--send", "one", "--topic", "t1")
        async with running(server_url, tmp_path, *data_args, "--json", "--duration", "60") as cli:
            await cli.wait_for(lambda r: r.get("event") == "sent", "sent")
            for _ in range(300):
                if packets:
                    break
                await asyncio.sleep(0.1)
            assert packets == [("t1", b"one")]
            assert await cli.interrupt() == 0
        lines = b"first line\nsecond line\n"
        text_args = ("join", "-r", room_name, "-i", "typist", "--stdin", "--send-as", "text")
        async with running(
            server_url, tmp_path, *text_args, "--topic", "notes", "--json", stdin=lines
        ) as cli:
            assert await cli.finish() == 0  # the end of stdin ends the session
            sent = [r["text"] for r in cli.records() if r.get("event") == "sent"]
            assert sent == ["first line", "second line"]
        chat_args = ("join", "-r", room_name, "-i", "chatter", "--stdin", "--send-as", "chat")
        async with running(server_url, tmp_path, *chat_args, stdin=b"hi all\n") as cli:
            assert await cli.finish() == 0
        for _ in range(300):
            if len(texts) >= 3:
                break
            await asyncio.sleep(0.1)
        assert texts == [
            ("typist", "notes", "first line"),
            ("typist", "notes", "second line"),
            ("chatter", "lk.chat", "hi all"),
        ]


# -- publish -----------------------------------------------------------------------------


async def test_publish_test_pattern_reaches_the_official_sdk(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with official_peer(server_url, make_token("viewer")) as peer:
        args = ("publish", "--test-pattern", "-r", room_name, "--size", "320x180", "--fps", "15")
        async with running(server_url, tmp_path, *args, "--duration", "120") as cli:
            video = await first_track(peer, official.TrackKind.KIND_VIDEO)
            audio = await first_track(peer, official.TrackKind.KIND_AUDIO)
            picture = await a_picture(video)
            assert picture.shape[:2] == (180, 320)
            edges = np.linspace(0, 320, 8).astype(int)
            for colour, left, right in zip(BARS, edges[:-1], edges[1:], strict=False):
                got = mean_rgb(picture, slice(30, 100), slice(left + 8, right - 8))
                assert np.abs(got - colour).max() < 30, (colour, got)
            assert abs(await tone_of(audio) - 440) < 5
            assert await cli.interrupt() == 0
            assert any(line.startswith("published ") for line in cli.lines), cli.lines


async def test_publish_an_mp4_file_in_sync_and_looping(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", width=320, height=240, fps=25, seconds=2.0)
    async with official_peer(server_url, make_token("viewer")) as peer:
        args = ("publish", str(clip), "-r", room_name, "--loop", "--codec", "h264")
        async with running(server_url, tmp_path, *args, "--duration", "120") as cli:
            video = await first_track(peer, official.TrackKind.KIND_VIDEO)
            audio = await first_track(peer, official.TrackKind.KIND_AUDIO)
            picture = await a_picture(video)
            assert picture.shape[:2] == (240, 320)
            assert np.abs(mean_rgb(picture, slice(60, 180), slice(20, 140)) - RED).max() < 30
            assert np.abs(mean_rgb(picture, slice(60, 180), slice(180, 300)) - BLUE).max() < 30
            assert abs(await tone_of(audio) - 440) < 5
            # still going after the first pass: the file loops
            await asyncio.sleep(2.5)
            await a_picture(video, skip=3)
            assert await cli.interrupt() == 0
        # without --loop the program ends at the end of the file
        short = make_clip(tmp_path / "short.webm", width=160, height=120, fps=10, seconds=1.0)
        async with running(server_url, tmp_path, "publish", str(short), "-r", room_name) as cli:
            assert await cli.finish(timeout=90) == 0, cli.stderr()
            done = [line for line in cli.lines if line.startswith("published ")]
            assert done and "10 video frames" in done[0], cli.lines


# -- record ------------------------------------------------------------------------------


async def publish_peer_media(room: Any, seconds: float = 120.0) -> None:
    """The official peer publishes a 440 Hz tone and a red/blue 320x240 picture at 15 fps."""
    audio_source = official.AudioSource(48000, 1)
    video_source = official.VideoSource(320, 240)
    await room.local_participant.publish_track(
        official.LocalAudioTrack.create_audio_track("tone", audio_source),
        official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE),
    )
    await room.local_participant.publish_track(
        official.LocalVideoTrack.create_video_track("pattern", video_source),
        official.TrackPublishOptions(source=official.TrackSource.SOURCE_CAMERA),
    )
    img = np.zeros((240, 320, 4), np.uint8)
    img[:, :160, :3] = RED
    img[:, 160:, :3] = BLUE
    img[:, :, 3] = 255
    data = img.tobytes()

    async def pictures() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(int(seconds * 15)):
            video_source.capture_frame(
                official.VideoFrame(320, 240, official.VideoBufferType.RGBA, data)
            )
            await asyncio.sleep(max(0.0, start + (n + 1) / 15 - loop.time()))

    await asyncio.gather(
        feed_sine(audio_source, official.AudioFrame, 440, amplitude=0.3, seconds=seconds),
        pictures(),
    )


def check_recording(path: Path, *, video: bool, min_seconds: float, max_seconds: float) -> None:
    back = read_back(path)
    pcm = back["audio"]
    assert isinstance(pcm, np.ndarray)
    seconds = pcm.size / 48000
    assert min_seconds <= seconds <= max_seconds, f"{path}: {seconds:.2f} s of audio"
    assert abs(dominant_frequency(pcm[-48000:], 48000) - 440) < 5
    if not video:
        return
    pictures = back["pictures"]
    assert isinstance(pictures, list) and len(pictures) >= 10
    last = pictures[-1]
    assert last.shape == (240, 320, 3)
    assert np.abs(mean_rgb(last, slice(60, 180), slice(20, 140)) - RED).max() < 35
    assert np.abs(mean_rgb(last, slice(60, 180), slice(180, 300)) - BLUE).max() < 35
    duration = back["duration"]
    assert isinstance(duration, float)
    assert abs(duration - seconds) < 1.0  # audio and video cover the same span


async def test_record_a_participant_to_webm_until_ctrl_c(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with official_peer(server_url, make_token("speaker")) as peer:
        async with background(publish_peer_media(peer)):
            out = tmp_path / "rec" / "{identity}.webm"
            async with running(
                server_url, tmp_path, "record", "-r", room_name, "-o", str(out)
            ) as cli:
                # let it record a few seconds of media, then Ctrl-C
                await asyncio.sleep(8)
                assert await cli.interrupt() == 0, cli.stderr()
            wrote = [line for line in cli.lines if line.startswith("wrote ")]
            assert len(wrote) == 1, cli.lines
            path = tmp_path / "rec" / "speaker.webm"
            assert read_back(path)["streams"] == [("audio", "opus"), ("video", "vp8")]
            check_recording(path, video=True, min_seconds=2.0, max_seconds=9.0)


async def test_record_mp4_per_track_and_a_wav_mix_for_a_duration(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with official_peer(server_url, make_token("speaker")) as peer:
        async with background(publish_peer_media(peer)):
            per_track = str(tmp_path / "{identity}-{kind}.mp4")
            mix = str(tmp_path / "mix.wav")
            base = ("record", "-r", room_name, "--duration", "6")
            async with (
                running(server_url, tmp_path, *base, "-o", per_track) as tracks,
                running(server_url, tmp_path, *base, "-o", mix, "--mix") as mixed,
            ):
                assert await tracks.finish(timeout=90) == 0, tracks.stderr()
                assert await mixed.finish(timeout=90) == 0, mixed.stderr()
    audio_file = tmp_path / "speaker-audio.mp4"
    video_file = tmp_path / "speaker-video.mp4"
    assert read_back(audio_file)["streams"] == [("audio", "aac")]
    video_back = read_back(video_file)
    assert video_back["streams"] == [("video", "h264")]
    pictures = video_back["pictures"]
    assert isinstance(pictures, list) and len(pictures) >= 10
    assert pictures[-1].shape == (240, 320, 3)
    check_recording(audio_file, video=False, min_seconds=2.0, max_seconds=6.5)
    check_recording(tmp_path / "mix.wav", video=False, min_seconds=2.0, max_seconds=6.5)


# -- load-test ---------------------------------------------------------------------------


async def test_load_test_joins_three_and_sums_up(
    server_url: str, room_name: str, tmp_path: Path
) -> None:
    args = ("load-test", "-n", "3", "-r", room_name, "--duration", "6", "--json")
    async with running(server_url, tmp_path, *args) as cli:
        assert await cli.finish(timeout=120) == 0, cli.stderr()
    summary = json.loads("\n".join(cli.lines))
    assert (summary["participants"], summary["joined"], summary["failed"]) == (3, 3, 0)
    assert summary["tracks_published"] == 3
    assert summary["tracks_subscribed"] == 6
    assert summary["packets_sent"] > 0 and summary["packets_received"] > 0
    assert summary["data_latency_ms"]["count"] > 0
    assert summary["errors"] == []


# -- token -------------------------------------------------------------------------------


async def test_token_decodes_with_the_right_grants_and_joins(
    server_url: str, room_name: str, tmp_path: Path
) -> None:
    args = ("token", "-r", room_name, "-i", "tokened", "--name", "T", "--no-publish", "--hidden")
    async with running(server_url, tmp_path, *args, "--attribute", "team=blue") as cli:
        assert await cli.finish() == 0
    token = cli.lines[0]
    claims = api.TokenVerifier(local_server.API_KEY, local_server.API_SECRET).verify(token)
    assert (claims.identity, claims.name, claims.attributes) == ("tokened", "T", {"team": "blue"})
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join, claims.video.can_publish) == (
        room_name,
        True,
        False,
    )
    assert (claims.video.can_subscribe, claims.video.hidden) == (True, True)
    room = official.Room()
    await room.connect(server_url, token)
    try:
        assert room.local_participant.identity == "tokened"
        assert room.local_participant.permissions.can_publish is False
    finally:
        await room.disconnect()
