"""Writing audio and video to files with PyAV, on a thread per file.

:data:`FORMATS` maps a file extension to its container and codecs: WAV (PCM), Ogg Opus,
WebM and Matroska (VP8 + Opus), MP4 (H.264 + AAC), M4A (AAC).  :class:`FileWriter`
owns one output file with at most one audio and one video stream; the event loop hands
it frames (:meth:`FileWriter.write_audio`, :meth:`FileWriter.write_video`), a thread of
its own converts, encodes and muxes them, and :meth:`FileWriter.aclose` flushes the
encoders and writes the container's trailer, so that the file is complete.

Times are the recorder's: each frame comes with the seconds since the file's start.
Audio is written as a continuous signal placed by its sample count (the SDK's remote
audio is continuous: concealment and silence included); silence fills the start before
the first audio and any gap longer than :data:`MAX_AUDIO_GAP` (a track that went away
and came back), so the audio stays at its place on the timeline, as a WAV file needs.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream as AudioOut
from av.video.stream import VideoStream as VideoOut

from livekit_py import rtc
from livekit_py.log import get_logger

__all__ = ["FORMATS", "MAX_AUDIO_GAP", "FileWriter", "Format", "format_for"]

logger = get_logger("cli.writers")

MAX_AUDIO_GAP = 1.0
"""Seconds of missing audio after which silence is inserted (our remote audio is
continuous, concealment and silence included, so only a real interruption is one)."""

MAX_PENDING_VIDEO = 60
"""Pictures that may wait for the encoder before new ones are dropped."""


@dataclass(frozen=True)
class Format:
    """A container and the codecs written into it (None: the container takes no video)."""

    name: str
    container: str
    audio_codec: str
    video_codec: str | None
    audio_rates: tuple[int, ...] | None = None  # None: any rate


_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)

FORMATS: dict[str, Format] = {
    ".wav": Format("WAV (PCM 16-bit)", "wav", "pcm_s16le", None),
    ".ogg": Format("Ogg Opus", "ogg", "libopus", None, _OPUS_RATES),
    ".opus": Format("Ogg Opus", "ogg", "libopus", None, _OPUS_RATES),
    ".webm": Format("WebM (VP8 + Opus)", "webm", "libopus", "libvpx", _OPUS_RATES),
    ".mkv": Format("Matroska (VP8 + Opus)", "matroska", "libopus", "libvpx", _OPUS_RATES),
    ".mp4": Format("MP4 (H.264 + AAC)", "mp4", "aac", "libx264"),
    ".m4a": Format("M4A (AAC)", "ipod", "aac", None),
}


def format_for(path: str | Path) -> Format:
    """The format of ``path`` by its extension.

    Raises:
        ValueError: If the extension is not one of :data:`FORMATS`.
    """
    ext = Path(path).suffix.lower()
    found = FORMATS.get(ext)
    if found is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r}: use one of {', '.join(sorted(FORMATS))}"
        )
    return found


@dataclass(frozen=True)
class AudioParams:
    sample_rate: int
    num_channels: int


@dataclass(frozen=True)
class VideoParams:
    width: int
    height: int
    fps: float = 30.0
    bitrate: int = 2_000_000


@dataclass
class WriterStats:
    """What a writer has written so far (read from the event loop; updated by the thread)."""

    audio_samples: int = 0
    silence_samples: int = 0
    video_frames: int = 0
    dropped_video: int = 0
    bytes: int = 0


_Item = tuple[str, object, float]


class FileWriter:
    """One output file, written on its own thread."""

    def __init__(
        self,
        path: str | Path,
        fmt: Format,
        *,
        audio: AudioParams | None,
        video: VideoParams | None,
    ) -> None:
        """Open ``path`` for ``audio`` and/or ``video`` (the thread starts at once).

        Raises:
            ValueError: If there is nothing to write, the format takes no video but
                video is given, or the audio rate does not suit the codec.
        """
        if audio is None and video is None:
            raise ValueError("a file needs an audio or a video stream")
        if video is not None and fmt.video_codec is None:
            raise ValueError(f"{fmt.name} holds no video")
        if audio is not None and fmt.audio_rates and audio.sample_rate not in fmt.audio_rates:
            rates = ", ".join(str(r) for r in fmt.audio_rates)
            raise ValueError(f"{fmt.name} audio must be at {rates} Hz, not {audio.sample_rate}")
        self.path = Path(path)
        self.format = fmt
        self.audio = audio
        self.video = (
            VideoParams(video.width & ~1, video.height & ~1, video.fps, video.bitrate)
            if video is not None
            else None
        )
        self.stats = WriterStats()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._pending_video = 0
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._run, name=f"writer {self.path.name}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ event loop side

    def write_audio(self, frame: rtc.AudioFrame, at: float) -> None:
        """Queue audio that starts ``at`` seconds after the file's start."""
        if self._closed or self.audio is None:
            return
        self._queue.put(("audio", frame, at))

    def write_video(self, frame: rtc.VideoFrame, at: float) -> None:
        """Queue a picture shown ``at`` seconds after the file's start (dropped if the
        encoder is far behind)."""
        if self._closed or self.video is None:
            return
        with self._lock:
            if self._pending_video >= MAX_PENDING_VIDEO:
                self.stats.dropped_video += 1
                return
            self._pending_video += 1
        self._queue.put(("video", frame, at))

    @property
    def error(self) -> BaseException | None:
        """What stopped the writer, if something did."""
        return self._error

    async def aclose(self) -> None:
        """Write what is queued, flush the encoders, finish the file."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self._write_all()
        except Exception as exc:
            self._error = exc
            logger.exception("cannot write %s", self.path)
            while self._queue.get() is not None:  # drain until close
                pass

    def _write_all(self) -> None:
        fmt = self.format
        container = av.open(str(self.path), mode="w", format=fmt.container)
        try:
            audio_stream: AudioOut | None = None
            video_stream: VideoOut | None = None
            resampler: av.AudioResampler | None = None
            frame_size = 0
            if self.audio is not None:
                rate, channels = self.audio.sample_rate, self.audio.num_channels
                layout = "stereo" if channels == 2 else "mono"
                audio_stream = cast(
                    AudioOut, container.add_stream(fmt.audio_codec, rate=rate, layout=layout)
                )
                sample_format = {"aac": "fltp", "libopus": "s16", "pcm_s16le": "s16"}[
                    fmt.audio_codec
                ]
                frame_size = 1024 if fmt.audio_codec == "aac" else rate // 50
                resampler = av.AudioResampler(
                    format=sample_format, layout=layout, rate=rate, frame_size=frame_size
                )
            if self.video is not None:
                assert fmt.video_codec is not None
                v = self.video
                video_stream = cast(
                    VideoOut,
                    container.add_stream(
                        fmt.video_codec, rate=Fraction(v.fps).limit_denominator(1001)
                    ),
                )
                video_stream.width = v.width
                video_stream.height = v.height
                video_stream.pix_fmt = "yuv420p"
                video_stream.bit_rate = v.bitrate
                video_stream.codec_context.time_base = Fraction(1, 1000)
                if fmt.video_codec == "libx264":
                    video_stream.codec_context.options = {"preset": "veryfast"}
                elif fmt.video_codec == "libvpx":
                    # real-time speed; without lag-in-frames 0 libvpx looks 25 frames
                    # ahead and encodes 640x360 at about a third of the speed
                    video_stream.codec_context.options = {
                        "deadline": "realtime",
                        "cpu-used": "8",
                        "lag-in-frames": "0",
                    }

            audio_written = 0  # samples given to the resampler
            audio_pts = 0  # samples out of the resampler
            last_video_pts = -1

            def encode_audio(frame: av.AudioFrame | None) -> None:
                nonlocal audio_pts
                assert resampler is not None and audio_stream is not None
                for out in resampler.resample(frame):
                    out.pts = audio_pts
                    out.time_base = Fraction(1, self.audio.sample_rate if self.audio else 48000)
                    audio_pts += out.samples
                    for packet in audio_stream.encode(out):
                        container.mux(packet)
                if frame is None:
                    for packet in audio_stream.encode(None):
                        container.mux(packet)

            while (item := self._queue.get()) is not None:
                kind, payload, at = item
                if kind == "audio" and audio_stream is not None and self.audio is not None:
                    assert isinstance(payload, rtc.AudioFrame)
                    rate, channels = self.audio.sample_rate, self.audio.num_channels
                    gap = int(at * rate) - audio_written
                    if gap > MAX_AUDIO_GAP * rate or (audio_written == 0 and gap > 0):
                        encode_audio(_pcm_frame(np.zeros(gap * channels, np.int16), rate, channels))
                        audio_written += gap
                        self.stats.silence_samples += gap
                    pcm = np.frombuffer(bytes(payload.data), dtype=np.int16)
                    pcm = _fit_channels(pcm, payload.num_channels, channels)
                    encode_audio(_pcm_frame(pcm, rate, channels))
                    audio_written += pcm.size // channels
                    self.stats.audio_samples = audio_written
                elif kind == "video" and video_stream is not None and self.video is not None:
                    with self._lock:
                        self._pending_video -= 1
                    assert isinstance(payload, rtc.VideoFrame)
                    picture = _av_picture(payload, self.video.width, self.video.height)
                    pts = max(int(at * 1000), last_video_pts + 1)
                    last_video_pts = pts
                    picture.pts = pts
                    picture.time_base = Fraction(1, 1000)
                    for packet in video_stream.encode(picture):
                        container.mux(packet)
                    self.stats.video_frames += 1
                self._update_size()
            if audio_stream is not None:
                encode_audio(None)
            if video_stream is not None:
                for packet in video_stream.encode(None):
                    container.mux(packet)
        finally:
            container.close()
            self._update_size()

    def _update_size(self) -> None:
        try:
            self.stats.bytes = os.path.getsize(self.path)
        except OSError:
            pass


def _pcm_frame(pcm: np.ndarray, rate: int, channels: int) -> av.AudioFrame:
    """Interleaved int16 samples as a packed s16 PyAV frame."""
    frame = av.AudioFrame.from_ndarray(
        pcm.reshape(1, -1), format="s16", layout="stereo" if channels == 2 else "mono"
    )
    frame.sample_rate = rate
    return frame


def _fit_channels(pcm: np.ndarray, have: int, want: int) -> np.ndarray:
    """Interleaved samples of ``have`` channels as ``want`` (1 or 2) channels."""
    if have == want:
        return pcm
    frames = pcm.reshape(-1, have)
    if want == 1:
        mono: np.ndarray = frames.mean(axis=1).astype(np.int16)
        return mono
    stereo: np.ndarray = np.repeat(frames[:, :1], 2, axis=1).ravel()
    return stereo


def _av_picture(frame: rtc.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """An I420 (or other) rtc.VideoFrame as a yuv420p PyAV frame of ``width`` x ``height``."""
    w, h = frame.width, frame.height
    if frame.type == rtc.VideoBufferType.I420 and w % 2 == 0 and h % 2 == 0:
        planes = np.frombuffer(bytes(frame.data), dtype=np.uint8)[: w * h * 3 // 2]
        picture = av.VideoFrame.from_ndarray(planes.reshape(h * 3 // 2, w), format="yuv420p")
    else:
        rgb = frame.convert(rtc.VideoBufferType.RGB24)
        pixels = np.frombuffer(bytes(rgb.data), dtype=np.uint8).reshape(h, w, 3)
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    if (w, h) != (width, height) or picture.format.name != "yuv420p":
        picture = picture.reformat(width=width, height=height, format="yuv420p")
    return picture
