"""Record what one participant publishes (sound and picture) into a file, with PyAV.

    python examples/record_participant.py --participant alice --output alice.webm
    python examples/record_participant.py --output call.mp4 --duration 60
    python examples/record_participant.py --output voice.ogg

The container follows the file's extension: ``.webm``/``.mkv`` (VP8 and Opus), ``.mp4``
(H.264 and AAC), ``.ogg``/``.opus`` (Opus, sound only), ``.wav`` (PCM, sound only).
Without ``--participant`` the first participant who publishes anything is recorded.
Encoding and writing run in one worker thread; the recording ends on Ctrl-C, after
``--duration``, or when the participant leaves, and the file is then closed properly.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from _common import connect, parser, run, say, wait_any

from livekit_py import rtc

RATE = 48000
# extension -> (audio encoder, video encoder or None)
CONTAINERS: dict[str, tuple[str, str | None]] = {
    ".webm": ("libopus", "libvpx"),
    ".mkv": ("libopus", "libvpx"),
    ".mp4": ("aac", "libx264"),
    ".ogg": ("libopus", None),
    ".opus": ("libopus", None),
    ".wav": ("pcm_s16le", None),
}
VIDEO_OPTIONS = {
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    "libx264": {"preset": "veryfast", "tune": "zerolatency"},
}
VIDEO_TIME_BASE = Fraction(1, 90000)
MAX_WAIT_FOR_VIDEO = 5.0  # seconds of sound kept while waiting for the first picture


@dataclass
class Recorder:
    """Encodes and muxes audio and video frames into one file, in one worker thread.

    The file is opened when every expected stream has delivered its first frame (the
    picture's size is only known then); audio that comes earlier waits in memory.
    Timestamps are the frames' arrival times, from the first frame of either kind.
    """

    path: Path
    audio_codec: str
    video_codec: str | None
    channels: int
    expect_audio: bool
    expect_video: bool
    _writer: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, "recorder")
    )
    _container: Any = None
    _audio: Any = None
    _video: Any = None
    _t0: float | None = None
    _pending_audio: list[rtc.AudioFrame] = field(default_factory=list)
    _audio_start: float | None = None
    _video_size: tuple[int, int] | None = None
    _audio_pts: int | None = None
    _last_video_pts: int = -1
    audio_samples: int = 0
    video_frames: int = 0

    async def _run(self, fn: Any, *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    def _open(self) -> None:
        self._container = av.open(str(self.path), "w")
        if self.expect_audio:
            self._audio = self._container.add_stream(self.audio_codec, rate=RATE)
            self._audio.layout = "mono" if self.channels == 1 else "stereo"
        if self.expect_video and self.video_codec is not None and self._video_size is not None:
            video = self._container.add_stream(
                self.video_codec, rate=30, options=VIDEO_OPTIONS.get(self.video_codec, {})
            )
            video.width, video.height = self._video_size
            video.pix_fmt = "yuv420p"
            video.bit_rate = 2_000_000
            video.codec_context.time_base = VIDEO_TIME_BASE
            self._video = video

    def _ready(self) -> bool:
        audio_ok = not self.expect_audio or self._audio_start is not None
        video_ok = not self.expect_video or self._video_size is not None
        waited = sum(f.duration for f in self._pending_audio)
        if not video_ok and waited > MAX_WAIT_FOR_VIDEO:
            say(f"no picture after {MAX_WAIT_FOR_VIDEO:g} s of sound: recording the sound only")
            self.expect_video, video_ok = False, True
        return bool(audio_ok and video_ok)

    def _encode_audio(self, frame: rtc.AudioFrame, pts: int) -> None:
        samples = np.frombuffer(frame.data, np.int16).reshape(1, -1)
        out = av.AudioFrame.from_ndarray(samples, format="s16", layout=self._audio.layout.name)
        out.sample_rate = RATE
        out.pts = pts
        out.time_base = Fraction(1, RATE)
        for packet in self._audio.encode(out):
            self._container.mux(packet)

    def _encode_video(self, frame: rtc.VideoFrame, pts: int) -> None:
        w, h = frame.width, frame.height
        if frame.type == rtc.VideoBufferType.I420 and w % 2 == 0 and h % 2 == 0:
            planes = np.frombuffer(frame.data, np.uint8, count=w * h * 3 // 2)
            out = av.VideoFrame.from_ndarray(planes.reshape(h * 3 // 2, w), format="yuv420p")
        else:
            rgba = frame.convert(rtc.VideoBufferType.RGBA)
            pixels = np.frombuffer(rgba.data, np.uint8, count=w * h * 4).reshape(h, w, 4)
            out = av.VideoFrame.from_ndarray(pixels, format="rgba")
        if (w, h) != self._video_size:  # e.g. another simulcast layer: scale to the file's
            width, height = self._video_size or (w, h)
            out = out.reformat(width=width, height=height, format="yuv420p")
        out.pts = pts
        out.time_base = VIDEO_TIME_BASE
        for packet in self._video.encode(out):
            self._container.mux(packet)
        # counted here, by the writer: a pump cancelled while this runs still writes it
        self.video_frames += 1

    def _start(self) -> None:
        self._open()
        pending, self._pending_audio = self._pending_audio, []
        for frame in pending:
            self._write_audio(frame)

    def _write_audio(self, frame: rtc.AudioFrame) -> None:
        if self._audio_pts is None:  # the sound starts when its first frame arrived
            assert self._audio_start is not None and self._t0 is not None
            self._audio_pts = round((self._audio_start - self._t0) * RATE)
        self._encode_audio(frame, self._audio_pts)
        self._audio_pts += frame.samples_per_channel
        self.audio_samples += frame.samples_per_channel

    async def audio(self, frame: rtc.AudioFrame) -> None:
        now = time.monotonic()
        self._t0 = self._t0 if self._t0 is not None else now
        self._audio_start = self._audio_start if self._audio_start is not None else now
        if self._container is None:
            self._pending_audio.append(frame)
            if self._ready():
                await self._run(self._start)
            return
        await self._run(self._write_audio, frame)

    async def video(self, frame: rtc.VideoFrame) -> None:
        now = time.monotonic()
        self._t0 = self._t0 if self._t0 is not None else now
        if self._video_size is None:
            self._video_size = (frame.width, frame.height)
        if self._container is None:
            if not self._ready():
                return
            await self._run(self._start)
        if self._video is None:
            return
        pts = max(self._last_video_pts + 1, round((now - self._t0) / VIDEO_TIME_BASE))
        self._last_video_pts = pts
        await self._run(self._encode_video, frame, pts)

    def _close(self) -> None:
        if self._container is None:
            return
        for stream in (self._audio, self._video):
            if stream is not None:
                for packet in stream.encode(None):
                    self._container.mux(packet)
        self._container.close()

    async def close(self) -> None:
        """Flush the encoders and close the file (nothing is written if nothing came)."""
        await self._run(self._close)
        self._writer.shutdown()


async def choose(room: rtc.Room, identity: str | None, stop: asyncio.Event) -> rtc.Participant:
    """The participant to record: ``identity``, or the first one who publishes."""
    changed = asyncio.Event()
    room.on("track_published", lambda *_: changed.set())
    room.on("participant_connected", lambda *_: changed.set())
    while not stop.is_set():
        for p in room.remote_participants.values():
            if (identity is None or p.identity == identity) and p.track_publications:
                return p
        changed.clear()
        await wait_any(changed, stop)
    raise asyncio.CancelledError


def first_track(participant: rtc.Participant, kind: int) -> rtc.Track | None:
    for publication in participant.track_publications.values():
        if publication.kind == kind and publication.track is not None:
            return publication.track
    return None


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    suffix = args.output.suffix.lower()
    if suffix not in CONTAINERS:
        raise SystemExit(f"--output must end in one of {', '.join(CONTAINERS)}, not {suffix!r}")
    audio_codec, video_codec = CONTAINERS[suffix]
    room = rtc.Room()
    left, subscribed = asyncio.Event(), asyncio.Event()
    room.on("track_subscribed", lambda *_: subscribed.set())
    await connect(room, args, name="Recorder")
    say(f"waiting for {args.participant or 'someone'} to publish")
    try:
        participant = await choose(room, args.participant, stop)
    except asyncio.CancelledError:
        await room.disconnect()
        return

    @room.on("participant_disconnected")
    def on_left(p: rtc.RemoteParticipant) -> None:
        if p.identity == participant.identity:
            say(f"{p.identity} left")
            left.set()

    # a publisher usually publishes its tracks one after another: give it a moment,
    # then take what it publishes and wait for the subscriptions
    await asyncio.sleep(args.settle)
    kinds = {pub.kind for pub in participant.track_publications.values()}
    want_audio = rtc.TrackKind.KIND_AUDIO in kinds
    want_video = rtc.TrackKind.KIND_VIDEO in kinds and video_codec is not None
    if not want_audio:
        say(f"{participant.identity} publishes no audio; nothing to record")
        await room.disconnect()
        return
    while not stop.is_set() and (
        first_track(participant, rtc.TrackKind.KIND_AUDIO) is None
        or (want_video and first_track(participant, rtc.TrackKind.KIND_VIDEO) is None)
    ):
        subscribed.clear()
        await wait_any(subscribed, stop, left)
        if left.is_set():
            break
    if stop.is_set() or left.is_set():
        await room.disconnect()
        return
    recorder = Recorder(
        args.output, audio_codec, video_codec, args.channels, want_audio, want_video
    )
    parts = ["audio"] + (["video"] if want_video else [])
    say(f"recording {participant.identity}'s {' and '.join(parts)} to {args.output}")

    async def pump_audio(track: rtc.Track) -> None:
        reported = 0
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=args.channels)
        async for event in stream:
            await recorder.audio(event.frame)
            if recorder.audio_samples // RATE > reported:
                reported = recorder.audio_samples // RATE
                say(f"recorded {reported} s ({recorder.video_frames} video frames)")

    async def pump_video(track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        async for event in stream:
            await recorder.video(event.frame)

    pumps = []
    audio_track = first_track(participant, rtc.TrackKind.KIND_AUDIO)
    if audio_track is not None:
        pumps.append(asyncio.create_task(pump_audio(audio_track)))
    video_track = first_track(participant, rtc.TrackKind.KIND_VIDEO)
    if want_video and video_track is not None:
        pumps.append(asyncio.create_task(pump_video(video_track)))
    await wait_any(stop, left)
    for task in pumps:
        task.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    await recorder.close()
    say(
        f"saved {args.output}: {recorder.audio_samples / RATE:.1f} s of audio, "
        f"{recorder.video_frames} video frames"
    )
    await room.disconnect()


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="recorder")
    cli.add_argument("--participant", metavar="IDENTITY", help="who to record")
    cli.add_argument(
        "--output", type=Path, default=Path("recording.webm"), help="the file to write"
    )
    cli.add_argument("--channels", type=int, choices=(1, 2), default=1, help="audio channels")
    cli.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds to wait for more tracks after the first one (default 1)",
    )
    run(cli.parse_args(), main)
