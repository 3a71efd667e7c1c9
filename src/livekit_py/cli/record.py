"""``livekit-py record``: subscribe and write tracks (or a mix of the audio) to files.

The output name is a template: :func:`expand` fills ``{identity}``, ``{name}``,
``{track}``, ``{sid}``, ``{kind}``, ``{source}`` and ``{room}``, and every distinct
name is one file (a :class:`_Recording`) holding at most one audio and one video
track.  So ``out.webm`` records the first participant's audio and video together,
``{identity}.mp4`` one file per participant, ``{identity}-{kind}.ogg`` one per track;
``--mix`` mixes every audio track (:class:`rtc.AudioMixer`) into the one file.

A file is opened once each of its tracks has delivered a picture or audio (or two
seconds after the first did), so that the container is created with all its streams
and the video at the size that arrives; what came meanwhile is written then.  Frames
are placed on the file's timeline by when they arrived (audio by its sample count from
there).  Ctrl-C, SIGTERM or ``--duration`` stop the recording; each file's encoders
are flushed and its trailer written before the program ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import string
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from livekit_py import rtc
from livekit_py.log import get_logger

from .events import enum_name, format_bytes
from .runtime import Consoles, run_command, setup_logging
from .settings import UsageError, connection_from_args, identity_from_args
from .writers import AudioParams, FileWriter, Format, VideoParams, format_for

__all__ = ["PLACEHOLDERS", "expand", "run", "template_fields"]

logger = get_logger("cli.record")

PLACEHOLDERS = ("identity", "name", "track", "sid", "kind", "source", "room")
SETTLE = 2.0
"""Seconds a file waits for all of its tracks' first frames before it opens without them."""


def template_fields(template: str) -> set[str]:
    """The placeholders ``template`` uses.

    Raises:
        ValueError: If it uses one that is not in :data:`PLACEHOLDERS`, or is malformed.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"output template {template!r} is malformed: {exc}") from None
    used = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(
                f"output template {template!r}: unknown placeholder {{{name}}};"
                f" use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        used.add(name)
    return used


_UNSAFE = re.compile(r"[^\w.@+=-]+")


def _safe(value: str) -> str:
    cleaned = _UNSAFE.sub("_", value).strip("._")
    return cleaned or "unknown"


def expand(template: str, **values: str) -> str:
    """``template`` with each placeholder replaced by its value, made safe for a file name."""
    return template.format(**{key: _safe(values.get(key, "")) for key in PLACEHOLDERS})


@dataclass
class _Recording:
    """One output file: its tracks, the frames that wait for it to open, its writer."""

    path: Path
    fmt: Format
    audio: AudioParams
    video_bitrate: int
    tracks: dict[str, str] = field(default_factory=dict)  # kind -> "identity/sid"
    started: float | None = None  # loop time of the first frame: the file's time 0
    seen: set[str] = field(default_factory=set)
    waiting: list[tuple[str, rtc.AudioFrame | rtc.VideoFrame, float]] = field(default_factory=list)
    writer: FileWriter | None = None
    late: set[str] = field(default_factory=set)

    def claim(self, kind: str, who: str) -> bool:
        """Take a track of ``kind`` into this file; False if the file has one already."""
        if kind in self.tracks:
            return False
        self.tracks[kind] = who
        return True

    def release(self, kind: str, who: str) -> None:
        if self.tracks.get(kind) == who and self.writer is None:
            del self.tracks[kind]

    def frame(self, kind: str, frame: rtc.AudioFrame | rtc.VideoFrame, now: float) -> None:
        """A frame of this file's ``kind`` track arrived at loop time ``now``."""
        if self.started is None:
            self.started = now
        at = now - self.started
        if isinstance(frame, rtc.AudioFrame):
            at = max(0.0, at - frame.samples_per_channel / frame.sample_rate)
        if self.writer is None:
            self.seen.add(kind)
            self.waiting.append((kind, frame, at))
            self.open_if_ready(now)
            return
        if kind == "audio" and isinstance(frame, rtc.AudioFrame):
            if self.writer.audio is not None:
                self.writer.write_audio(frame, at)
            elif kind not in self.late:
                self.late.add(kind)
                logger.warning("%s: audio came after the file was started; not recorded", self.path)
        elif isinstance(frame, rtc.VideoFrame):
            if self.writer.video is not None:
                self.writer.write_video(frame, at)
            elif kind not in self.late:
                self.late.add(kind)
                logger.warning("%s: video came after the file was started; not recorded", self.path)

    def open_if_ready(self, now: float) -> None:
        """Open the file once every track has a frame, or :data:`SETTLE` s after the first."""
        if self.writer is not None or self.started is None:
            return
        if not (set(self.tracks) <= self.seen or now - self.started >= SETTLE):
            return
        video = None
        for kind, frame, _ in self.waiting:
            if kind == "video" and isinstance(frame, rtc.VideoFrame):
                video = VideoParams(
                    max(2, frame.width), max(2, frame.height), 30.0, self.video_bitrate
                )
                break
        audio = self.audio if "audio" in self.seen else None
        self.writer = FileWriter(self.path, self.fmt, audio=audio, video=video)
        for _kind, frame, at in self.waiting:
            if isinstance(frame, rtc.AudioFrame):
                self.writer.write_audio(frame, at)
            else:
                self.writer.write_video(frame, at)
        self.waiting.clear()

    def describe(self) -> str:
        writer = self.writer
        if writer is None:
            return "waiting for media"
        stats = writer.stats
        parts = []
        if writer.audio is not None:
            parts.append(f"audio {stats.audio_samples / writer.audio.sample_rate:.1f} s")
        if writer.video is not None:
            v = writer.video
            parts.append(f"video {stats.video_frames} frames {v.width}x{v.height}")
            if stats.dropped_video:
                parts.append(f"{stats.dropped_video} dropped")
        parts.append(format_bytes(stats.bytes))
        return ", ".join(parts)


class _Recorder:
    def __init__(self, room: rtc.Room, args: argparse.Namespace) -> None:
        self.room = room
        self.args = args
        self.files: dict[Path, _Recording] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.skipped: set[str] = set()
        self.audio = AudioParams(args.sample_rate, args.channels)
        self.mixer: rtc.AudioMixer | None = None
        self.mix_inputs: dict[str, AsyncIterator[rtc.AudioFrame]] = {}
        self.fmt = format_for(args.output)
        self.closed = False

    def wanted(self, participant: rtc.RemoteParticipant, kind: str) -> bool:
        if self.args.participant and participant.identity not in self.args.participant:
            return False
        if self.args.kind != "both" and self.args.kind != kind:
            return False
        if kind == "video" and (self.fmt.video_codec is None or self.args.mix):
            return False
        return True

    def recording_for(
        self, participant: rtc.RemoteParticipant, pub: rtc.RemoteTrackPublication, kind: str
    ) -> _Recording:
        path = Path(
            expand(
                self.args.output,
                identity=participant.identity,
                name=participant.name or participant.identity,
                track=pub.name or pub.sid,
                sid=pub.sid,
                kind=kind,
                source=enum_name(rtc.TrackSource, pub.source),
                room=self.room.name,
            )
        )
        found = self.files.get(path)
        if found is None:
            found = _Recording(path, format_for(path), self.audio, self.args.video_bitrate)
            self.files[path] = found
        return found

    def keep(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_subscribed(
        self, track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        kind = "video" if track.kind == rtc.TrackKind.KIND_VIDEO else "audio"
        who = f"{participant.identity}/{pub.sid}"
        if not self.wanted(participant, kind):
            return
        if self.args.mix:
            self.keep(self._mix_in(track, who))
            return
        recording = self.recording_for(participant, pub, kind)
        if not recording.claim(kind, who):
            if who not in self.skipped:
                self.skipped.add(who)
                logger.warning(
                    "%s already records a %s track; %s's %s is not recorded"
                    " (put {identity} or {track} in the output name to record it)",
                    recording.path,
                    kind,
                    participant.identity,
                    pub.sid,
                )
            return
        self.keep(self._read(track, recording, kind, who))

    async def _read(self, track: rtc.Track, recording: _Recording, kind: str, who: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            if kind == "audio":
                audio = rtc.AudioStream(
                    track, sample_rate=self.audio.sample_rate, num_channels=self.audio.num_channels
                )
                try:
                    async for event in audio:
                        recording.frame("audio", event.frame, loop.time())
                finally:
                    await audio.aclose()
            else:
                video = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
                try:
                    async for vevent in video:
                        recording.frame("video", vevent.frame, loop.time())
                finally:
                    await video.aclose()
        finally:
            recording.release(kind, who)

    async def _mix_in(self, track: rtc.Track, who: str) -> None:
        if self.mixer is None:
            self.mixer = rtc.AudioMixer(
                self.audio.sample_rate,
                self.audio.num_channels,
                blocksize=self.audio.sample_rate // 50,
                stream_timeout_ms=200,
            )
            path = Path(expand(self.args.output, room=self.room.name, kind="audio", identity="mix"))
            recording = _Recording(path, format_for(path), self.audio, self.args.video_bitrate)
            recording.claim("audio", "mix")
            self.files[path] = recording
            self.keep(self._read_mix(self.mixer, recording))
        stream = rtc.AudioStream(
            track, sample_rate=self.audio.sample_rate, num_channels=self.audio.num_channels
        )

        async def frames() -> AsyncIterator[rtc.AudioFrame]:
            async for event in stream:
                yield event.frame

        source = frames()
        self.mix_inputs[who] = source
        self.mixer.add_stream(source)

    async def _read_mix(self, mixer: rtc.AudioMixer, recording: _Recording) -> None:
        loop = asyncio.get_running_loop()
        async for frame in mixer:
            recording.frame("audio", frame, loop.time())

    def tick(self, now: float) -> None:
        for recording in self.files.values():
            recording.open_if_ready(now)

    async def aclose(self) -> list[_Recording]:
        """Stop reading, open what still waits, and finish every file (once)."""
        if self.closed:
            return [r for r in self.files.values() if r.writer is not None]
        self.closed = True
        if self.mixer is not None:
            await self.mixer.aclose()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for recording in self.files.values():
            if recording.writer is None and recording.waiting:
                recording.open_if_ready(float("inf"))
        written = [r for r in self.files.values() if r.writer is not None]
        await asyncio.gather(*(r.writer.aclose() for r in written if r.writer is not None))
        return written


def _check(args: argparse.Namespace) -> Format:
    try:
        template_fields(args.output)
        fmt = format_for(args.output)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.kind == "video" and (fmt.video_codec is None or args.mix):
        raise UsageError(f"{args.output!r} is {fmt.name}, which holds no video (use .webm or .mp4)")
    if fmt.audio_rates and args.sample_rate not in fmt.audio_rates:
        rates = ", ".join(str(r) for r in fmt.audio_rates)
        raise UsageError(
            f"{fmt.name} audio must be at {rates} Hz, not --sample-rate {args.sample_rate}"
        )
    return fmt


async def _session(args: argparse.Namespace, env: dict[str, str], stop: asyncio.Event) -> int:
    consoles = Consoles(no_color=args.no_color)
    setup_logging(args.verbose, consoles.err)
    fmt = _check(args)
    conn = connection_from_args(args, env)
    identity = identity_from_args(args)
    token = conn.token_for(
        identity, args.room, name=args.name, hidden=True if args.hidden else None
    )
    room = rtc.Room()
    recorder = _Recorder(room, args)
    room.on("track_subscribed", recorder.on_subscribed)

    @room.on("disconnected")
    def _gone(reason: int) -> None:
        stop.set()

    try:
        await room.connect(conn.url, token, rtc.RoomOptions(auto_subscribe=True))
    except (rtc.ConnectError, OSError, asyncio.TimeoutError) as exc:
        consoles.status(f"[red]could not join {args.room!r} at {conn.url}: {exc}[/]")
        return 1
    what = "a mix of the audio" if args.mix else f"{args.kind} tracks"
    consoles.status(f"recording {what} of room {args.room} to {args.output} ({fmt.name})")
    loop = asyncio.get_running_loop()
    started = loop.time()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=consoles.err,
        transient=False,
    )
    written: list[_Recording] = []
    try:
        with progress:
            overall = progress.add_task("recording", total=args.duration, info="")
            shown: dict[Path, TaskID] = {}
            while not stop.is_set():
                now = loop.time()
                elapsed = now - started
                if args.duration is not None and elapsed >= args.duration:
                    break
                recorder.tick(now)
                for path, recording in recorder.files.items():
                    if path not in shown:
                        shown[path] = progress.add_task(str(path), total=None, info="")
                    progress.update(shown[path], info=recording.describe())
                info = f"{len(recorder.files)} file(s)"
                if args.duration is not None:
                    info += f"  {elapsed:.0f}/{args.duration:.0f} s"
                progress.update(overall, completed=elapsed, info=info)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)
            if args.duration is not None:
                progress.update(overall, completed=args.duration)
            consoles.status("stopping: closing the files")
            written = await recorder.aclose()
            for path, task_id in shown.items():
                progress.update(task_id, info=recorder.files[path].describe())
    finally:
        if not written:  # stopped by an error: still finish what was started
            written = await recorder.aclose()
        await room.disconnect()
    if not written:
        consoles.status("[yellow]nothing was recorded: no track delivered any media[/]")
        return 1
    failed = False
    for recording in written:
        writer = recording.writer
        assert writer is not None
        if writer.error is not None:
            failed = True
            consoles.status(f"[red]{recording.path}: {writer.error}[/]")
            continue
        consoles.line(f"wrote {recording.path}: {recording.describe()}")
    return 1 if failed else 0


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``record``; the exit status."""
    return run_command(lambda stop: _session(args, env, stop))
