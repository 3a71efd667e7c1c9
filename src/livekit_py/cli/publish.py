"""``livekit-py publish``: a media file, or a test pattern and tone, into a room.

A file is probed and decoded by :mod:`livekit_py.cli.media_file` (PyAV, on a thread),
its frames interleaved in timestamp order and sent through
:class:`livekit_py.cli.publishing.MediaPublisher` (an :class:`rtc.AVSynchronizer` when
it has both audio and video).  ``--test-pattern`` sends :mod:`livekit_py.cli.pattern`'s
bars and tone the same way.  A progress bar on standard error shows the position in
the file (or in ``--duration``), the frame rate sent and the audio/video offset.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from livekit_py import rtc

from .media_file import FileInfo, MediaFileReader, probe
from .pattern import TestPattern, Tone, samples_in_frame
from .publishing import AudioSpec, MediaPublisher, VideoSpec
from .runtime import Consoles, run_command, setup_logging
from .settings import UsageError, connection_from_args, identity_from_args

__all__ = ["PublishPlan", "plan_from_args", "run"]

PATTERN_SIZE = (1280, 720)
PATTERN_FPS = 30.0


@dataclass(frozen=True)
class PublishPlan:
    """What ``publish`` will send: from where, which kinds, at what size and rate."""

    file: str | None
    audio: AudioSpec | None
    video: VideoSpec | None
    duration: float | None
    loop: bool
    info: FileInfo | None = None

    @property
    def file_duration(self) -> float | None:
        return self.info.duration if self.info is not None else None


def plan_from_args(args: argparse.Namespace) -> PublishPlan:
    """Check the options against each other (and the file) and decide what to send.

    Raises:
        UsageError: If neither or both of FILE and ``--test-pattern`` are given, both
            kinds are turned off, or the file cannot be read or lacks what is asked.
    """
    if bool(args.file) == bool(args.test_pattern):
        raise UsageError("give either a FILE to publish or --test-pattern (one of them)")
    if args.no_audio and args.no_video:
        raise UsageError("--no-audio and --no-video together leave nothing to publish")
    if args.test_pattern:
        width, height = args.size or PATTERN_SIZE
        fps = args.fps or PATTERN_FPS
        video = None
        if not args.no_video:
            video = VideoSpec(width, height, fps, args.codec, args.max_bitrate, args.simulcast)
        audio = None if args.no_audio else AudioSpec(48000, 1)
        return PublishPlan(None, audio, video, args.duration, False)
    try:
        info = probe(args.file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    want_video = info.has_video and not args.no_video
    want_audio = info.has_audio and not args.no_audio
    if not want_video and not want_audio:
        raise UsageError(f"{args.file!r} has nothing left to publish with the options given")
    video = None
    if want_video:
        width, height = args.size or (info.width, info.height)
        fps = args.fps or info.fps
        video = VideoSpec(width, height, fps, args.codec, args.max_bitrate, args.simulcast)
    audio = AudioSpec(48000, info.audio_channels) if want_audio else None
    return PublishPlan(args.file, audio, video, args.duration, args.loop, info)


async def _pattern_items(
    plan: PublishPlan, tone_hz: float, stop: asyncio.Event
) -> AsyncIterator[tuple[rtc.VideoFrame | None, rtc.AudioFrame | None, float]]:
    """(picture, audio of the same span, media time) of the pattern until stopped."""
    fps = plan.video.fps if plan.video is not None else 50.0  # 20 ms audio frames alone
    pattern = TestPattern(plan.video.width, plan.video.height, fps) if plan.video else None
    tone = Tone(tone_hz, sample_rate=48000, num_channels=1) if plan.audio else None
    index = 0
    while not stop.is_set():
        t = index / fps
        if plan.duration is not None and t >= plan.duration:
            return
        picture = pattern.frame(index) if pattern is not None else None
        sound = tone.frame(samples_in_frame(index, 48000, fps)) if tone is not None else None
        yield picture, sound, t
        index += 1


def _describe(plan: PublishPlan, publisher: MediaPublisher) -> list[str]:
    lines = []
    for pub in publisher.publications:
        if pub.kind == rtc.TrackKind.KIND_VIDEO and plan.video is not None:
            v = plan.video
            what = f"video {v.width}x{v.height} @ {v.fps:g} fps {v.codec}"
            if v.simulcast:
                what += " simulcast"
        else:
            assert plan.audio is not None
            what = f"audio {plan.audio.sample_rate} Hz {plan.audio.num_channels} ch opus"
        lines.append(f"published {what} as {pub.sid}")
    return lines


async def _session(args: argparse.Namespace, env: dict[str, str], stop: asyncio.Event) -> int:
    consoles = Consoles(no_color=args.no_color)
    setup_logging(args.verbose, consoles.err)
    plan = plan_from_args(args)
    conn = connection_from_args(args, env)
    identity = identity_from_args(args)
    token = conn.token_for(identity, args.room, name=args.name)
    room = rtc.Room()

    @room.on("disconnected")
    def _gone(reason: int) -> None:
        stop.set()

    try:
        await room.connect(conn.url, token, rtc.RoomOptions(auto_subscribe=False))
    except (rtc.ConnectError, OSError, asyncio.TimeoutError) as exc:
        consoles.status(f"[red]could not join {args.room!r} at {conn.url}: {exc}[/]")
        return 1
    identity = room.local_participant.identity or identity  # a --token says who we are
    publisher = MediaPublisher(room, audio=plan.audio, video=plan.video)
    reader: MediaFileReader | None = None
    finished = False
    try:
        await publisher.start()
        for line in _describe(plan, publisher):
            consoles.status(line)
        total = plan.duration
        if total is None and plan.file is not None and not plan.loop:
            total = plan.file_duration
        title = plan.file or "test pattern"
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[position]}"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=consoles.err,
            transient=False,
        )
        loop = asyncio.get_running_loop()
        last_update = 0.0
        last_t, last_loops = 0.0, 0

        def update(t: float, loops: int, *, force: bool = False) -> None:
            nonlocal last_update, last_t, last_loops
            last_t, last_loops = t, loops
            now = loop.time()
            if not force and now - last_update < 0.25:
                return
            last_update = now
            stats = []
            if plan.video is not None:
                fps = publisher.actual_fps
                stats.append(f"{fps:.1f} fps" if fps else f"{publisher.video_frames} frames")
            offset = publisher.av_offset
            if offset is not None:
                stats.append(f"A/V {offset * 1000:+.0f} ms")
            if loops:
                stats.append(f"loop {loops + 1}")
            if total:
                position = f"{t:6.1f}/{total:.1f} s"
            elif plan.file_duration and loops:  # looping for ever: the place in the file
                position = f"{t - loops * plan.file_duration:6.1f}/{plan.file_duration:.1f} s"
            else:
                position = f"{t:6.1f} s"
            done = min(t, total) if total else t
            progress.update(task, completed=done, position=position, stats="  ".join(stats))

        with progress:
            task = progress.add_task(title, total=total, position="", stats="")
            if plan.file is None:
                async for picture, sound, t in _pattern_items(plan, args.tone, stop):
                    if picture is not None:
                        await publisher.push_video(picture, t)
                    if sound is not None:
                        await publisher.push_audio(sound, t + sound.samples_per_channel / 48000)
                    update(t, 0)
                    if stop.is_set():
                        break
                else:
                    finished = not stop.is_set()
            else:
                assert plan.info is not None
                reader = MediaFileReader(
                    plan.file,
                    info=plan.info,
                    audio=plan.audio is not None,
                    video=plan.video is not None,
                    size=(plan.video.width, plan.video.height) if plan.video else None,
                    loop=plan.loop,
                )
                reader.start()
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    while True:
                        nxt = asyncio.ensure_future(reader.__anext__())
                        done, _ = await asyncio.wait(
                            {nxt, stopper}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if nxt not in done or stop.is_set():
                            nxt.cancel()
                            break
                        try:
                            item = nxt.result()
                        except StopAsyncIteration:
                            finished = True
                            break
                        if plan.duration is not None and item.time >= plan.duration:
                            finished = True
                            break
                        if isinstance(item.frame, rtc.VideoFrame):
                            await publisher.push_video(item.frame, item.time)
                        else:
                            await publisher.push_audio(item.frame, item.time)
                        update(item.time, item.loop)
                finally:
                    stopper.cancel()
            if finished:
                await _wait_playout(publisher, stop)
            update(last_t, last_loops, force=True)
    finally:
        if reader is not None:
            await reader.aclose()
        await publisher.aclose()
        await room.disconnect()
    sent = []
    if plan.video is not None:
        sent.append(f"{publisher.video_frames} video frames")
    if plan.audio is not None:
        sent.append(f"{publisher.audio_seconds:.1f} s of audio")
    consoles.line(f"published {', '.join(sent)} to room {args.room} as {identity}")
    return 0


async def _wait_playout(publisher: MediaPublisher, stop: asyncio.Event) -> None:
    playout = asyncio.ensure_future(publisher.wait_for_playout())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({playout, stopper}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
    finally:
        playout.cancel()
        stopper.cancel()


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``publish``; the exit status."""
    return run_command(lambda stop: _session(args, env, stop))
