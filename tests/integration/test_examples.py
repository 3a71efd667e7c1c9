"""Each example in examples/ runs against the real server, with the official SDK as its peer.

An example runs in a subprocess the way a user runs it: ``python examples/<name>.py``,
the server and keys in LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET, the working
directory a temporary one, and on ``PYTHONPATH`` only the directory livekit_py is
imported from (so the repository's ``signaling`` and ``tests`` packages are out of
reach, as they are for an installed wheel). The peer in the test process checks what
the example should produce: its printed events, the WAV's tone, the video file's
picture at its size, a recording PyAV reads with the peer's tone and picture, streamed
text and files both ways, RPC answers, the bot's tones, E2EE media and chat decrypted
with the key. Every wait is bounded; none is a timing assertion.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import json
import os
import re
import signal
import sys
import types
import wave
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from livekit import rtc as official

import livekit_py
from livekit_py import rtc
from signaling import local_server
from tests.conftest import TokenFactory
from tests.helpers import wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    dominant_frequency,
    feed_sine,
    rms_dbfs,
    tone_level_dbfs,
)
from tests.integration.test_video import BLUE, RED, H, W, check_colours, feed_video

pytestmark = [pytest.mark.server, pytest.mark.interop]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# only where livekit_py comes from goes on the examples' path: no repository packages
PACKAGE_DIR = str(Path(livekit_py.__file__).resolve().parent.parent)
# generous: a loaded machine imports, connects and subscribes slowly
LINE_TIMEOUT = 60.0


class Example:
    """An example running in a subprocess, and the lines it has printed so far."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._stderr_path = stderr_path
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    def output(self) -> str:
        stderr = self._stderr_path.read_text(errors="replace")[-3000:]
        return "stdout:\n" + "\n".join(self.lines) + "\nstderr (end):\n" + stderr

    async def line(self, pattern: str, timeout: float = LINE_TIMEOUT) -> re.Match[str]:
        """Wait for a printed line that matches ``pattern`` (re.search); return the match."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for text in self.lines[seen:]:
                found = regex.search(text)
                if found:
                    return found
            seen = len(self.lines)
            if self._reader.done():
                raise AssertionError(f"exited before printing {pattern!r}\n{self.output()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no line {pattern!r} in {timeout:g}s\n{self.output()}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def finish(self, timeout: float = LINE_TIMEOUT) -> int:
        """Wait for the process to end on its own; returns its exit code."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"still running after {timeout:g}s\n{self.output()}") from None
        await self._reader
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def interrupt(self, timeout: float = LINE_TIMEOUT) -> int:
        """Ctrl-C, as a user would; returns the exit code once it has left."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return await self.finish(timeout)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


@contextlib.asynccontextmanager
async def running(
    name: str, *args: str, server_url: str, room: str, cwd: Path
) -> AsyncIterator[Example]:
    """Run ``examples/<name>`` in ``room`` (killed afterwards if it is still running)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LIVEKIT_TOKEN", "LIVEKIT_ROOM", "PYTHONPATH")
    }
    env.update(
        LIVEKIT_URL=server_url,
        LIVEKIT_API_KEY=local_server.API_KEY,
        LIVEKIT_API_SECRET=local_server.API_SECRET,
        PYTHONPATH=PACKAGE_DIR,
        PYTHONUNBUFFERED="1",
    )
    stderr_path = cwd / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / name),
            "--room",
            room,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env=env,
        )
    example = Example(proc, stderr_path)
    try:
        yield example
    finally:
        await example.kill()


@contextlib.asynccontextmanager
async def peer(
    url: str, token: str, options: Any = None, before: Any = None
) -> AsyncIterator[official.Room]:
    """An official-SDK room, connected (``before(room)`` runs first), disconnected after."""
    room = official.Room()
    if before is not None:
        before(room)
    await room.connect(url, token, options or official.RoomOptions())
    try:
        yield room
    finally:
        await room.disconnect()


async def publish_tone(room: official.Room, freq: float = 440.0) -> Any:
    source = official.AudioSource(48000, 1)
    track = official.LocalAudioTrack.create_audio_track("tone", source)
    await room.local_participant.publish_track(
        track, official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
    )
    return feed_sine(source, official.AudioFrame, freq)


async def hear(room: official.Room, identity: str, seconds: float = 1.5) -> np.ndarray:
    """``seconds`` of ``identity``'s audio (48 kHz mono), after half a second."""
    track = await first_track(room, identity, official.TrackKind.KIND_AUDIO)
    stream = official.AudioStream(track, sample_rate=48000, num_channels=1)
    try:
        samples, _, _ = await collect_audio(stream, seconds, timeout=LINE_TIMEOUT)
    finally:
        await stream.aclose()
    return samples


async def first_track(room: official.Room, identity: str, kind: Any) -> Any:
    """The first track of ``kind`` of ``identity`` that ``room`` is subscribed to."""

    def find() -> Any:
        p = room.remote_participants.get(identity)
        if p is None:
            return None
        tracks = [pub.track for pub in p.track_publications.values() if pub.kind == kind]
        return next((t for t in tracks if t is not None), None)

    await wait_until(lambda: find() is not None, timeout=LINE_TIMEOUT, what=f"{identity}'s track")
    return find()


def write_wav(path: Path, freq: float, seconds: float, rate: int, channels: int) -> None:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(mono, channels).tobytes())


# -- join_room.py ---------------------------------------------------------------------


async def test_join_room_prints_the_rooms_events(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with running(
        "join_room.py", "--send", "hello from the example",
        server_url=server_url, room=room_name, cwd=tmp_path,
    ) as ex:  # fmt: skip
        await ex.line(r"^connected to room '.*' at ws://.* as 'event-printer'; here: nobody$")
        got: list[tuple[str, bytes]] = []
        token = make_token("peer", name="Peer", can_update_own_metadata=True)
        async with peer(server_url, token) as room:
            room.on("data_received", lambda p: got.append((p.topic, p.data)))
            async with background(await publish_tone(room)):
                await ex.line(r"^event participant_connected: peer \('Peer'\)$")
                await ex.line(r"^event track_published: peer publishes audio track 'tone' \(mic")
                await ex.line(
                    r"^event track_subscribed: audio track 'tone' .* of peer \(audio/\w+\)$"
                )
                await room.local_participant.publish_data(b"hello from the peer", topic="chat")
                await ex.line(r"^event data_received: from peer on 'chat': 'hello from the peer'$")
                await room.local_participant.set_attributes({"mood": "curious"})
                await ex.line(
                    r"^event participant_attributes_changed: peer: \{'mood': 'curious'\}$"
                )
                await room.local_participant.set_metadata("m1")
                await ex.line(r"^event participant_metadata_changed: peer: '' -> 'm1'$")
                await wait_until(
                    lambda: ("chat", b"hello from the example") in got,
                    timeout=LINE_TIMEOUT,
                    what="the example's greeting",
                )
        await ex.line(r"^event participant_disconnected: peer \(CLIENT_INITIATED\)$")
        assert await ex.interrupt() == 0, ex.output()
        await ex.line(r"^left the room$")


# -- publish_wav.py -------------------------------------------------------------------


async def test_publish_wav_is_heard_at_its_pitch(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    wav = tmp_path / "a440.wav"
    write_wav(wav, 440.0, 2.0, rate=44100, channels=2)
    async with running(
        "publish_wav.py", str(wav), "--loop", server_url=server_url, room=room_name, cwd=tmp_path
    ) as ex:
        await ex.line(r"^publishing a440\.wav as TR_\w+: 44100 Hz, 2 channel\(s\), 2\.0 s")
        async with peer(server_url, make_token("listener")) as room:
            samples = await hear(room, "wav-player")
        assert abs(dominant_frequency(samples, 48000) - 440.0) < 5
        assert abs(rms_dbfs(samples) - tone_level_dbfs(0.5)) < 6
        assert await ex.interrupt() == 0, ex.output()


async def test_publish_wav_leaves_after_playing_the_file(
    server_url: str, room_name: str, tmp_path: Path
) -> None:
    wav = tmp_path / "short.wav"
    write_wav(wav, 440.0, 0.5, rate=16000, channels=1)
    async with running(
        "publish_wav.py", str(wav), server_url=server_url, room=room_name, cwd=tmp_path
    ) as ex:
        await ex.line(r"^played the whole file$")
        assert await ex.finish() == 0, ex.output()
        await ex.line(r"^left the room$")


# -- publish_video.py -----------------------------------------------------------------

CLIP_W, CLIP_H, CLIP_FPS = 320, 240, 30


def write_clip(path: Path, video_codec: str, audio_codec: str | None, seconds: float) -> None:
    """A clip of the two-colour picture (left red, right blue) and a 440 Hz tone."""
    image = np.zeros((CLIP_H, CLIP_W, 3), np.uint8)
    image[:, : CLIP_W // 2] = RED
    image[:, CLIP_W // 2 :] = BLUE
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=CLIP_FPS)
        video.width, video.height, video.pix_fmt = CLIP_W, CLIP_H, "yuv420p"
        audio = None
        if audio_codec is not None:
            audio = container.add_stream(audio_codec, rate=48000)
            audio.layout = "stereo"
        for i in range(int(CLIP_FPS * seconds)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, CLIP_FPS)
            container.mux(video.encode(frame))
        if audio is not None:
            step = 1024
            for start in range(0, int(48000 * seconds), step):
                t = np.arange(start, start + step) / 48000
                mono = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(
                    np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
                )
                frame.sample_rate, frame.pts = 48000, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        container.mux(video.encode(None))


@pytest.mark.parametrize(
    ("clip", "video_codec", "audio_codec", "args", "mime"),
    [
        ("clip.webm", "libvpx", "libopus", [], "video/VP8"),
        ("clip.mp4", "mpeg4", None, ["--codec", "h264"], "video/H264"),
    ],
)
async def test_publish_video_is_seen_at_its_size(
    server_url: str,
    room_name: str,
    make_token: TokenFactory,
    tmp_path: Path,
    clip: str,
    video_codec: str,
    audio_codec: str | None,
    args: list[str],
    mime: str,
) -> None:
    path = tmp_path / clip
    write_clip(path, video_codec, audio_codec, seconds=2.0)
    async with running(
        "publish_video.py", str(path), "--loop", *args,
        server_url=server_url, room=room_name, cwd=tmp_path,
    ) as ex:  # fmt: skip
        await ex.line(rf"^publishing {re.escape(clip)}: \w+ {CLIP_W}x{CLIP_H} at 30 fps")
        async with peer(server_url, make_token("viewer")) as room:
            video = await first_track(room, "video-player", official.TrackKind.KIND_VIDEO)
            pub = next(
                p
                for p in room.remote_participants["video-player"].track_publications.values()
                if p.kind == official.TrackKind.KIND_VIDEO
            )
            assert pub.mime_type == mime
            frame = await _a_frame_after(video, frames=20)
            assert (frame.width, frame.height) == (CLIP_W, CLIP_H)
            pixels = np.frombuffer(frame.data, np.uint8).reshape(CLIP_H, CLIP_W, 4)
            check_colours(pixels)
            if audio_codec is not None:
                samples = await hear(room, "video-player")
                assert abs(dominant_frequency(samples, 48000) - 440.0) < 5
        assert await ex.interrupt() == 0, ex.output()


async def _a_frame_after(track: Any, frames: int) -> Any:
    """The ``frames``-th RGBA frame of a video track (past the first, blurrier ones)."""
    stream = official.VideoStream(track, format=official.VideoBufferType.RGBA)
    try:

        async def read() -> Any:
            count = 0
            async for event in stream:
                count += 1
                if count >= frames:
                    return event.frame
            raise AssertionError("the video stream ended")

        return await asyncio.wait_for(read(), LINE_TIMEOUT)
    finally:
        await stream.aclose()


# -- record_participant.py ------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "audio_codec", "video_codec"),
    [("call.webm", "opus", "vp8"), ("call.mp4", "aac", "h264"), ("voice.wav", "pcm_s16le", None)],
)
async def test_record_participant_writes_a_file_pyav_reads(
    server_url: str,
    room_name: str,
    make_token: TokenFactory,
    tmp_path: Path,
    output: str,
    audio_codec: str,
    video_codec: str | None,
) -> None:
    path = tmp_path / output
    async with peer(server_url, make_token("speaker")) as room:
        video_source = official.VideoSource(W, H)
        video_track = official.LocalVideoTrack.create_video_track("camera", video_source)
        camera = feed_video(video_source, official.VideoFrame, official.VideoBufferType.RGBA)
        async with background(await publish_tone(room)), background(camera):
            await room.local_participant.publish_track(
                video_track,
                official.TrackPublishOptions(source=official.TrackSource.SOURCE_CAMERA),
            )
            async with running(
                "record_participant.py", "--participant", "speaker", "--output", str(path),
                "--settle", "0", server_url=server_url, room=room_name, cwd=tmp_path,
            ) as ex:  # fmt: skip
                parts = "audio and video" if video_codec else "audio"
                await ex.line(rf"^recording speaker's {parts} to ")
                await ex.line(r"^recorded 3 s ")
                assert await ex.interrupt() == 0, ex.output()
                saved = await ex.line(r"^saved .*: ([\d.]+) s of audio, (\d+) video frames$")
    assert float(saved.group(1)) >= 3.0
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == audio_codec
        audio = np.concatenate(
            [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
        ).astype(np.float64)
    assert audio.size >= 2.5 * 48000
    # the tone, past the encoder's start
    assert abs(dominant_frequency(audio[24000:], 48000) - 440.0) < 5
    if video_codec is None:
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == video_codec
        pictures = list(container.decode(video=0))
    assert len(pictures) == int(saved.group(2)) > 10
    last = pictures[-1]
    assert (last.width, last.height) == (W, H)
    check_colours(last.to_ndarray(format="rgba"))
    times = [float(p.time) for p in pictures]
    assert times == sorted(times)


# -- data_streams.py ------------------------------------------------------------------


async def test_data_streams_exchange_text_and_files(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    outgoing = tmp_path / "report.bin"
    outgoing.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, np.uint8).tobytes())
    save_dir = tmp_path / "received"
    texts: list[tuple[str, str]] = []
    files: dict[str, bytes] = {}
    tasks: list[asyncio.Task[None]] = []

    def register(room: official.Room) -> None:
        def on_text(reader: Any, sender: str) -> None:
            async def read() -> None:
                texts.append((sender, await reader.read_all()))

            tasks.append(asyncio.create_task(read()))

        def on_file(reader: Any, sender: str) -> None:
            async def read() -> None:
                data = b"".join([chunk async for chunk in reader])
                files[reader.info.name] = data

            tasks.append(asyncio.create_task(read()))

        room.register_text_stream_handler("chat", on_text)
        room.register_byte_stream_handler("files", on_file)

    async with running(
        "data_streams.py", "--send-file", str(outgoing), "--save-dir", str(save_dir),
        server_url=server_url, room=room_name, cwd=tmp_path,
    ) as ex:  # fmt: skip
        await ex.line(r"^connected to room ")
        async with peer(server_url, make_token("reader"), before=register) as room:
            await wait_until(lambda: "report.bin" in files, timeout=LINE_TIMEOUT, what="the file")
            assert files["report.bin"] == outgoing.read_bytes()
            assert ("streamer", f"hello reader, welcome to {room_name} ") in texts
            await ex.line(r"^sent 'report\.bin' to reader as stream ")

            await room.local_participant.send_text("hi example", topic="chat")
            await ex.line(r"^text from reader on 'chat': 'hi example'$")
            notes = tmp_path / "notes.txt"
            notes.write_text("line one\nline two\n" * 1000)
            await room.local_participant.send_file(str(notes), topic="files")
            saved = await ex.line(r"^file from reader: 'notes\.txt' \((\d+) bytes\) saved to (.*)$")
            assert int(saved.group(1)) == notes.stat().st_size
            assert Path(saved.group(2)) == save_dir / "notes.txt"
            assert (save_dir / "notes.txt").read_bytes() == notes.read_bytes()
        assert await ex.interrupt() == 0, ex.output()
    for task in tasks:
        task.cancel()


# -- rpc_methods.py -------------------------------------------------------------------


async def test_rpc_methods_answer_and_call(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    async with peer(server_url, make_token("caller")) as room:

        @room.local_participant.register_rpc_method("ping")
        async def ping(data: Any) -> str:
            return f"pong: {data.payload}"

        async with running(
            "rpc_methods.py", "--call", "ping", "--payload", "hello",
            server_url=server_url, room=room_name, cwd=tmp_path,
        ) as ex:  # fmt: skip
            await ex.line(r"^serving greet and add$")
            await ex.line(r"^ping on caller answered 'pong: hello'$")
            local = room.local_participant
            answer = await local.perform_rpc(
                destination_identity="rpc-server", method="greet", payload="hi"
            )
            assert answer == "hello caller, you said 'hi'"
            await ex.line(r"^greet called by caller with 'hi'$")
            total = await local.perform_rpc(
                destination_identity="rpc-server", method="add", payload="[1, 2, 3.5]"
            )
            assert json.loads(total) == 6.5
            with pytest.raises(official.RpcError) as failed:
                await local.perform_rpc(
                    destination_identity="rpc-server", method="add", payload="nope"
                )
            assert failed.value.code == 1400
            assert failed.value.message == "add wants a JSON list of numbers"
            with pytest.raises(official.RpcError) as unknown:
                await local.perform_rpc(
                    destination_identity="rpc-server", method="nothing", payload=""
                )
            assert unknown.value.code == official.RpcError.ErrorCode.UNSUPPORTED_METHOD
            assert await ex.interrupt() == 0, ex.output()


# -- audio_bot.py ---------------------------------------------------------------------


class Listener:
    """Keeps every 10 ms frame of an official AudioStream (48 kHz mono)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    async def run(self, stream: Any) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, np.int16)
            for start in range(0, len(samples) - 479, 480):
                self.frames.append(samples[start : start + 480].copy())

    def loud_since(self, index: int) -> np.ndarray:
        """The frames from ``index`` on that carry sound (above -30 dBFS), concatenated."""
        loud = [f for f in self.frames[index:] if rms_dbfs(f) > -30]
        return np.concatenate(loud) if loud else np.zeros(0, np.int16)


def _peaks(samples: np.ndarray, rate: int, count: int) -> list[float]:
    """The ``count`` strongest spectral peaks (at least 50 Hz apart), in Hz, ascending."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=4 * len(x)))
    freqs = np.fft.rfftfreq(4 * len(x), 1 / rate)
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        f = float(freqs[index])
        if f > 50 and all(abs(f - g) >= 50 for g in found):
            found.append(f)
        if len(found) == count:
            break
    return sorted(found)


async def test_audio_bot_answers_with_sound(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    replies: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    def register(room: official.Room) -> None:
        def on_chat(reader: Any, sender: str) -> None:
            async def read() -> None:
                replies.append(await reader.read_all())

            tasks.append(asyncio.create_task(read()))

        room.register_text_stream_handler("lk.chat", on_chat)

    async with running("audio_bot.py", server_url=server_url, room=room_name, cwd=tmp_path) as ex:
        await ex.line(r"^listening: RPC play_tone, chat on 'lk\.chat'; voice is TR_")
        async with peer(server_url, make_token("human"), before=register) as room:
            track = await first_track(room, "audio-bot", official.TrackKind.KIND_AUDIO)
            listener = Listener()
            stream = official.AudioStream(track, sample_rate=48000, num_channels=1)
            async with background(listener.run(stream)):
                # the bot is silent until asked
                await wait_until(lambda: len(listener.frames) >= 50, timeout=LINE_TIMEOUT)
                start = len(listener.frames)
                answer = await room.local_participant.perform_rpc(
                    destination_identity="audio-bot",
                    method="play_tone",
                    payload=json.dumps({"frequency": 660, "seconds": 2}),
                )
                assert json.loads(answer) == {"queued_seconds": 2.0}
                await ex.line(r"^human asked for 660 Hz for 2 s$")
                await wait_until(
                    lambda: len(listener.loud_since(start)) >= 150 * 480,
                    timeout=LINE_TIMEOUT,
                    what="1.5 s of the bot's tone",
                )
                tone = listener.loud_since(start)
                assert abs(dominant_frequency(tone, 48000) - 660.0) < 5
                # let the tone end, then ask in the chat: 'a' is sung at 233 Hz, 'm' at 466
                await wait_until(
                    lambda: (
                        len(listener.frames) > start + 100
                        and all(rms_dbfs(f) < -30 for f in listener.frames[-20:])
                    ),
                    timeout=LINE_TIMEOUT,
                    what="the tone to end",
                )
                sung = len(listener.frames)
                await room.local_participant.send_text("a m", topic="lk.chat")
                await wait_until(lambda: bool(replies), timeout=LINE_TIMEOUT, what="a reply")
                assert replies == ["singing 2 notes for 'a m'"]
                await ex.line(r"^chat from human: 'a m'$")
                await wait_until(
                    lambda: len(listener.loud_since(sung)) >= 20 * 480,
                    timeout=LINE_TIMEOUT,
                    what="the bot's song",
                )
                await wait_until(
                    lambda: all(rms_dbfs(f) < -30 for f in listener.frames[-20:]),
                    timeout=LINE_TIMEOUT,
                    what="the song to end",
                )
                low, high = _peaks(listener.loud_since(sung), 48000, 2)
                assert abs(low - 220 * 2 ** (1 / 12)) < 5, (low, high)
                assert abs(high - 220 * 2 ** (13 / 12)) < 5, (low, high)
            await stream.aclose()
        assert await ex.interrupt() == 0, ex.output()
    for task in tasks:
        task.cancel()


# -- e2ee.py ----------------------------------------------------------------------------

KEY = "examples' shared key"


async def test_e2ee_media_and_chat_are_read_with_the_key(
    server_url: str, room_name: str, make_token: TokenFactory, tmp_path: Path
) -> None:
    chat: list[tuple[str, str]] = []
    tasks: list[asyncio.Task[None]] = []

    def register(room: official.Room) -> None:
        def on_chat(reader: Any, sender: str) -> None:
            async def read() -> None:
                chat.append((sender, await reader.read_all()))

            tasks.append(asyncio.create_task(read()))

        room.register_text_stream_handler("chat", on_chat)

    options = official.RoomOptions(
        encryption=official.E2EEOptions(
            key_provider_options=official.KeyProviderOptions(shared_key=KEY.encode())
        )
    )
    async with running(
        "e2ee.py", "--key", KEY, "--video", server_url=server_url, room=room_name, cwd=tmp_path
    ) as ex:
        await ex.line(r"^end-to-end encryption on: True$")
        await ex.line(r"^publishing an encrypted 320x240 picture as TR_")
        async with peer(server_url, make_token("friend"), options, before=register) as room:
            samples = await hear(room, "e2ee-example")
            assert abs(dominant_frequency(samples, 48000) - 440.0) < 5
            assert abs(rms_dbfs(samples) - tone_level_dbfs(0.3)) < 6
            publications = room.remote_participants["e2ee-example"].track_publications
            assert {p.encryption_type for p in publications.values()} == {
                official.EncryptionType.GCM
            }
            video = await first_track(room, "e2ee-example", official.TrackKind.KIND_VIDEO)
            frame = await _a_frame_after(video, frames=10)
            assert (frame.width, frame.height) == (320, 240)
            pixels = np.frombuffer(frame.data, np.uint8).reshape(240, 320, 4)
            # the gradient: red grows to the right, blue to the top; the moving white bar
            # covers 20 of 320 columns, so the medians of rows see through it
            red = np.median(pixels[..., 0].astype(np.float64), axis=0)
            blue = np.median(pixels[..., 2].astype(np.float64), axis=1)
            assert np.mean(np.abs(red - np.linspace(0, 255, 320)) < 30) > 0.8, red
            assert np.mean(np.abs(blue - np.linspace(255, 0, 240)) < 30) > 0.9, blue
            await wait_until(lambda: bool(chat), timeout=LINE_TIMEOUT, what="the greeting")
            assert chat == [("e2ee-example", "hello friend, only our key can read this")]
            await room.local_participant.send_text("a secret reply", topic="chat")
            await ex.line(r"^chat from friend: 'a secret reply'$")
        assert await ex.interrupt() == 0, ex.output()
    for task in tasks:
        task.cancel()


# -- notebook.ipynb -------------------------------------------------------------------


class Notebook:
    """Runs a notebook's code cells in one namespace on the running loop, as IPython does
    (top-level ``await``; the value of a cell's last expression is its output)."""

    def __init__(self, path: Path) -> None:
        cells = json.loads(path.read_text())["cells"]
        self.cells = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        self.namespace: dict[str, Any] = {"__name__": "__main__"}

    async def run(self, index: int) -> Any:
        tree = ast.parse(self.cells[index])
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        result = eval(compile(tree, f"<cell {index}>", "exec", flags=flags), self.namespace)
        if inspect.iscoroutine(result):
            await result
        if last is None:
            return None
        value = eval(compile(last, f"<cell {index}>", "eval", flags=flags), self.namespace)
        return await value if inspect.iscoroutine(value) else value


def receives(room: rtc.Room, identity: str) -> bool:
    """Whether ``room`` (ours) is subscribed to a track of ``identity``."""
    participant = room.remote_participants.get(identity)
    if participant is None:
        return False
    return any(p.track is not None for p in participant.track_publications.values())


async def test_the_notebook_runs_and_renders(
    server_url: str,
    room_name: str,
    make_token: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", server_url)
    monkeypatch.setenv("LIVEKIT_API_KEY", local_server.API_KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", local_server.API_SECRET)
    monkeypatch.setenv("LIVEKIT_ROOM", room_name)
    shown: list[Any] = []
    display_module = types.ModuleType("IPython.display")
    display_module.display = shown.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)

    notebook = Notebook(EXAMPLES / "notebook.ipynb")
    cells = notebook.cells
    index = {name: next(i for i, c in enumerate(cells) if marker in c) for name, marker in [
        ("setup", "def token("), ("agent", "agent = rtc.Room()"), ("embed", "display_room("),
        ("table", "run again"), ("picture", "rtc.VideoFrame("), ("chord", "chord ="),
        ("listen", "from_participant("), ("leave", "agent.disconnect()"),
    ]}  # fmt: skip
    assert sorted(index.values()) == list(range(len(cells)))

    await notebook.run(index["setup"])
    table = await notebook.run(index["agent"])
    try:
        page = table._repr_html_()
        assert "<td>agent</td>" in page and "audio &#x27;tone&#x27; (microphone;" in page
        await notebook.run(index["embed"])
        assert len(shown) == 1 and shown[0].data.startswith(" <iframe")
        assert "livekit-client" in shown[0].data or "LivekitClient" in shown[0].data

        # "you", in the embedded page, are played here by the official SDK
        async with peer(server_url, make_token("you")) as you:
            async with background(await publish_tone(you)):
                agent = notebook.namespace["agent"]
                await wait_until(
                    lambda: receives(agent, "you"),
                    timeout=LINE_TIMEOUT,
                    what="the agent to receive you",
                )
                rows = (await notebook.run(index["table"]))._repr_html_()
                assert "<td>you</td><td></td><td>remote</td><td>audio &#x27;tone&#x27;" in rows
                heard = await asyncio.wait_for(notebook.run(index["listen"]), LINE_TIMEOUT)
        samples = np.frombuffer(heard.data, np.int16)
        assert heard.sample_rate == 16000 and heard.duration >= 2.0
        assert abs(dominant_frequency(samples[8000:], 16000) - 440.0) < 5
        assert "<audio controls" in heard._repr_html_()

        picture = await notebook.run(index["picture"])
        png = picture._repr_png_()
        with av.open(io.BytesIO(png), format="png_pipe") as container:
            decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
        assert decoded.shape == (180, 320, 3)
        chord = await notebook.run(index["chord"])
        assert chord.duration == 1.0 and "<svg" in chord._repr_html_()
    finally:
        await notebook.run(index["leave"])
