"""Reading a media file with PyAV into frames for publishing, off the event loop.

:class:`MediaFileReader` opens any container PyAV (FFmpeg) reads, picks its best
video and audio streams, and decodes them on a thread of its own: video becomes I420
:class:`rtc.VideoFrame` pictures (scaled to the size asked for), audio 48 kHz 16-bit
:class:`rtc.AudioFrame` (mono or stereo as the file).  :class:`Interleaver` puts the
two kinds in timestamp order (a demuxer may hand out a second of one stream before the
other's), which is what :class:`rtc.AVSynchronizer` needs to keep them in step.  Items
reach the event loop through a bounded asyncio queue, so decoding runs only as far
ahead as the queue holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av

from livekit_py import rtc

__all__ = ["FileInfo", "Interleaver", "MediaFileReader", "MediaItem", "probe"]

SAMPLE_RATE = 48000


@dataclass(frozen=True)
class FileInfo:
    """What a file holds: its picture size and frame rate, audio channels, duration."""

    width: int = 0
    height: int = 0
    fps: float = 0.0
    audio_channels: int = 0
    duration: float | None = None

    @property
    def has_video(self) -> bool:
        return self.width > 0

    @property
    def has_audio(self) -> bool:
        return self.audio_channels > 0


@dataclass(frozen=True)
class MediaItem:
    """One decoded frame and its time on the file's timeline (seconds, loops added up).

    For audio, ``time`` is the end of the frame (what :meth:`rtc.AVSynchronizer.push`
    takes); for video, its start.
    """

    kind: Literal["audio", "video"]
    frame: rtc.AudioFrame | rtc.VideoFrame
    time: float
    loop: int = 0


def _rate(stream: Any) -> float:
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        value = getattr(stream, attr, None)
        if value:
            rate = float(value)
            if 0 < rate <= 240:
                return rate
    return 0.0


def probe(path: str | Path) -> FileInfo:
    """Open ``path`` and read what it holds.

    Raises:
        ValueError: If PyAV cannot open it or it has neither audio nor video.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ValueError(f"cannot open {str(path)!r} as a media file: {exc}") from exc
    with container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise ValueError(f"{str(path)!r} has neither audio nor video")
        duration = None
        if container.duration:
            duration = container.duration / 1_000_000
        elif video is not None and video.duration and video.time_base:
            duration = float(video.duration * video.time_base)
        width = height = 0
        fps = 0.0
        if video is not None:
            width = video.codec_context.width & ~1
            height = video.codec_context.height & ~1
            fps = _rate(video) or 30.0
        channels = 0
        if audio is not None:
            channels = min(2, max(1, audio.codec_context.channels or 1))
        return FileInfo(width, height, fps, channels, duration)


class Interleaver:
    """Releases audio and video items in timestamp order.

    An item waits while the other kind has nothing queued, unless its own kind has
    queued more than ``max_lag`` seconds (then the other kind is taken to be absent
    for now) or the other kind is known to have ended.  Pure: unit-tested.
    """

    def __init__(self, kinds: set[str], *, max_lag: float = 1.0) -> None:
        self._queues: dict[str, deque[MediaItem]] = {kind: deque() for kind in kinds}
        self._ended: set[str] = set()
        self._max_lag = max_lag

    def push(self, item: MediaItem) -> list[MediaItem]:
        """Queue ``item``; returns the items now ready, in order."""
        self._queues[item.kind].append(item)
        return self._ready()

    def end(self, kind: str) -> list[MediaItem]:
        """``kind`` will have no more items; returns the items now ready."""
        self._ended.add(kind)
        return self._ready()

    def flush(self) -> list[MediaItem]:
        """Everything still queued, in order."""
        self._ended.update(self._queues)
        return self._ready()

    def _ready(self) -> list[MediaItem]:
        out: list[MediaItem] = []
        while True:
            heads = {kind: q[0] for kind, q in self._queues.items() if q}
            if not heads:
                return out
            waiting = [k for k, q in self._queues.items() if not q and k not in self._ended]
            if waiting:
                # release from a kind only if it ran far ahead of the silent one
                kind = next(iter(heads))
                queue = self._queues[kind]
                if queue[-1].time - queue[0].time <= self._max_lag:
                    return out
            else:
                kind = min(heads, key=lambda k: heads[k].time)
            out.append(self._queues[kind].popleft())


class MediaFileReader:
    """Decodes a file on a thread into :class:`MediaItem` s, read with ``async for``.

    Iteration ends at the end of the file (never with ``loop=True``) or after
    :meth:`aclose`.  A decoding error ends it too, and is raised from the iteration.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        info: FileInfo,
        audio: bool,
        video: bool,
        size: tuple[int, int] | None = None,
        loop: bool = False,
        queue_size: int = 16,
    ) -> None:
        """Prepare to read ``path`` (call :meth:`start` in the event loop to begin).

        Args:
            path: The file.
            info: What :func:`probe` found in it.
            audio: Decode its audio.
            video: Decode its video.
            size: Scale the pictures to (width, height); the file's size when None.
            loop: Start over at the end, for ever.
            queue_size: Decoded items that may wait for the reader.
        """
        self._path = str(path)
        self._info = info
        self._audio = audio and info.has_audio
        self._video = video and info.has_video
        self._size = size or (info.width, info.height)
        self._loop = loop
        self._queue: asyncio.Queue[MediaItem | BaseException | None] = asyncio.Queue(queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self.position = 0.0
        """The time of the last item handed out, on the timeline (passes added up)."""
        self.loops = 0
        """How many times the file started over."""

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def start(self) -> None:
        """Start decoding (in the running event loop)."""
        self._event_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="livekit-py decoder", daemon=True)
        self._thread.start()

    def __aiter__(self) -> MediaFileReader:
        return self

    async def __anext__(self) -> MediaItem:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        self.loops = item.loop
        self.position = item.time
        return item

    async def aclose(self) -> None:
        """Stop decoding and wait for the thread to end."""
        self._stop.set()
        thread = self._thread
        while not self._queue.empty():
            self._queue.get_nowait()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)

    # ------------------------------------------------------------------ the thread

    def _put(self, item: MediaItem | BaseException | None) -> bool:
        assert self._event_loop is not None
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._event_loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                future.result(timeout=0.2)
                return True
            except concurrent.futures.TimeoutError:
                if self._stop.is_set():
                    future.cancel()
                    return False

    def _run(self) -> None:
        offset = 0.0
        loop_index = 0
        try:
            while not self._stop.is_set():
                end = self._decode_pass(offset, loop_index)
                if end is None or not self._loop:
                    break
                offset = end
                loop_index += 1
        except Exception as exc:
            self._put(exc)
            return
        self._put(None)

    def _decode_pass(self, offset: float, loop_index: int) -> float | None:
        """Decode the file once; returns where the pass ended on the timeline (None: stopped)."""
        kinds = {k for k, on in (("audio", self._audio), ("video", self._video)) if on}
        merger = Interleaver(kinds)
        width, height = self._size
        end = offset
        with av.open(self._path) as container:
            streams: list[av.stream.Stream] = []
            video = container.streams.video[0] if self._video else None
            audio = container.streams.audio[0] if self._audio else None
            if video is not None:
                video.thread_type = "AUTO"
                streams.append(video)
            if audio is not None:
                streams.append(audio)
            layout = "stereo" if self._info.audio_channels == 2 else "mono"
            resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
            channels = 2 if layout == "stereo" else 1
            starts = [
                float(st.start_time * st.time_base)
                for st in streams
                if st.start_time is not None and st.time_base is not None
            ]
            origin = min(starts) if starts else 0.0
            last_video: float | None = None
            audio_start: float | None = None
            audio_samples = 0
            frame_step = 1.0 / (self._info.fps or 30.0)

            def emit(items: list[MediaItem]) -> bool:
                for item in items:
                    if not self._put(item):
                        return False
                return True

            for packet in container.demux(*streams):
                if self._stop.is_set():
                    return None
                for decoded in packet.decode():
                    if isinstance(decoded, av.VideoFrame):
                        if decoded.time is not None:
                            t = float(decoded.time) - origin
                        else:
                            t = (last_video + frame_step) if last_video is not None else 0.0
                        last_video = t
                        picture = decoded.reformat(width=width, height=height, format="yuv420p")
                        data = picture.to_ndarray().tobytes()
                        vf = rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, data)
                        at = offset + max(0.0, t)
                        end = max(end, at + frame_step)
                        ready = merger.push(MediaItem("video", vf, at, loop_index))
                    elif isinstance(decoded, av.AudioFrame):
                        if audio_start is None:
                            start = float(decoded.time) if decoded.time is not None else origin
                            audio_start = max(0.0, start - origin)
                        ready = []
                        for out in resampler.resample(decoded):
                            ready += self._audio_items(
                                out,
                                channels,
                                offset + audio_start,
                                audio_samples,
                                merger,
                                loop_index,
                            )
                            audio_samples += out.samples
                        end = max(end, offset + audio_start + audio_samples / SAMPLE_RATE)
                    else:
                        continue
                    if not emit(ready):
                        return None
            if audio is not None:
                tail: list[MediaItem] = []
                for out in resampler.resample(None):
                    tail += self._audio_items(
                        out,
                        channels,
                        offset + (audio_start or 0.0),
                        audio_samples,
                        merger,
                        loop_index,
                    )
                    audio_samples += out.samples
                if not emit(tail):
                    return None
            if not emit(merger.flush()):
                return None
        return end

    @staticmethod
    def _audio_items(
        frame: av.AudioFrame,
        channels: int,
        start: float,
        samples_before: int,
        merger: Interleaver,
        loop_index: int,
    ) -> list[MediaItem]:
        data = frame.to_ndarray().tobytes()
        af = rtc.AudioFrame(data, SAMPLE_RATE, channels, frame.samples)
        at = start + (samples_before + frame.samples) / SAMPLE_RATE
        return merger.push(MediaItem("audio", af, at, loop_index))
