"""The aiortc tracks that adapt our sources: what an ``RTCRtpSender`` reads.

:class:`AudioSourceTrack` subscribes to an :class:`~livekit_py.rtc.audio_source.AudioSource`
and hands aiortc 20 ms frames for the Opus encoder. :class:`VideoSourceTrack` subscribes to a
:class:`~livekit_py.rtc.video_source.VideoSource`, queues the pictures not yet sent (at most
:data:`MAX_FRAME_WAIT` older than the newest), converts them in worker threads as they are
captured and hands them on, in order, as ``yuv420p`` :class:`av.VideoFrame` objects on the
90 kHz RTP clock, timed by the source's :class:`~livekit_py.media.clock.MediaClock`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..log import get_logger
from ..media.audio_level import AudioLevel, AudioLevelMeter
from ..media.clock import MediaClock, resolve_clock, wait_event
from ..media.frame_source import AVFrame, FrameFanout, FrameSink
from ..rtc.audio_source import LATENCY_BUDGET, AudioSource, Samples, _make_av_frame
from ..rtc.video_frame import VideoFrame, _to_av_frame
from ..rtc.video_source import CapturedVideoFrame, SentFrameInfo, VideoSource
from .frame_metadata import FrameMetadataSender
from .video_codecs import VIDEO_CLOCK_RATE

__all__ = ["AudioSourceTrack", "VideoSourceCounts", "VideoSourceTrack"]

logger = get_logger("media.source_tracks")

VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)

# blocks (10 ms each) an AudioSourceTrack keeps for its reader; older ones are dropped.
# Twice the source's latency budget: a clock catching up after a late wake-up hands
# over up to a budget of blocks at once, while the reader may still be a block behind.
_TRACK_MAX_BLOCKS = 2 * round(LATENCY_BUDGET * 100)
# blocks joined into one frame returned by AudioSourceTrack.recv() (20 ms, as Opus sends)
_BLOCKS_PER_PACKET = 2

# While muted, a video track sends a black picture this often (frames per second). Black
# pictures cost next to nothing to encode and send, and a keyframe request made while
# muted is answered with the next one.
MUTED_FRAME_RATE = 1.0
# When nothing was captured for this long (seconds), the video track sends its last
# picture again, so that a receiver asking for a keyframe (one joining late) gets a
# picture of a source that only captures when the picture changes.
IDLE_REPEAT_INTERVAL = 1.0
# The window of VideoSourceCounts.frames_per_second (W3C: "during the last second").
_FPS_WINDOW = 1.0
# A captured picture waits for the encoder while it is at most this much older (seconds of
# capture time) than the newest one captured; older ones are dropped. 100 ms: a burst of
# pictures delivered late by a blocked loop (a camera queue, a paced capture catching up)
# is sent whole, while an encoder slower than the captures lags by 100 ms at most.
MAX_FRAME_WAIT = 0.1
# ... and at most this many wait (a bound on memory for high capture rates)
MAX_FRAMES_WAITING = 8
# Pictures converted ahead of the encoder: the next one is ready when aiortc asks for it,
# so recv() does not wait for a round trip through a worker thread.
CONVERT_AHEAD = 2


class AudioSourceTrack(MediaStreamTrack):
    """The aiortc track of an :class:`AudioSource`: what an ``RTCRtpSender`` sends.

    :meth:`recv` returns 20 ms ``s16`` stereo frames at the source's rate (a mono source
    is copied to both channels, which is what the Opus encoder sends anyway),
    paced by the source's clock, with ``pts`` counting samples from 0. At most 200 ms wait
    for the reader (twice the source's latency budget, the most its clock hands over at
    once); older audio is dropped so that a slow reader does not build latency.
    While :attr:`muted` is true the frames hold silence (the source keeps playing out).
    Every frame returned by :meth:`recv` is also published through ``_sent``.
    """

    kind = "audio"

    def __init__(self, source: AudioSource) -> None:
        """Attach a new track to ``source``; its clock runs from now on."""
        if not isinstance(source, AudioSource):
            raise ValueError(f"source must be an AudioSource, got {type(source).__name__}")
        super().__init__()
        self._source = source
        self.muted = False
        self._sent = FrameFanout()
        self._blocks: deque[Samples] = deque()
        self._ready = asyncio.Event()
        self._source_ended = False
        self._stopped = False
        self._pts = 0
        self._dropped = 0
        self._dropped_samples = 0
        self._drop_events = 0
        self._dropping = False  # the latest block dropped followed no block taken since
        self._level = AudioLevelMeter()
        self._subscription = source._fanout.subscribe(self)

    @property
    def source(self) -> AudioSource:
        """The source played by this track."""
        return self._source

    def source_level(self) -> AudioLevel:
        """The W3C level counters of what this track handed to the encoder so far."""
        return self._level.reading()

    @property
    def dropped_samples(self) -> tuple[int, int]:
        """(samples per channel dropped for a reader too slow, runs of such drops)."""
        return self._dropped_samples, self._drop_events

    def on_frame(self, frame: AVFrame) -> None:
        if not isinstance(frame, av.AudioFrame):
            return
        self._blocks.append(np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1))
        if len(self._blocks) > _TRACK_MAX_BLOCKS:
            dropped = self._blocks.popleft()
            self._dropped += 1
            self._dropped_samples += dropped.size // self._source.num_channels
            if not self._dropping:
                self._dropping = True
                self._drop_events += 1
            if self._dropped == 1 or self._dropped % 500 == 0:
                logger.debug(
                    "audio track %s: nobody reads it fast enough, %d block(s) dropped",
                    self.id,
                    self._dropped,
                )
        self._ready.set()

    def on_end(self) -> None:
        self._source_ended = True
        self._ready.set()

    async def recv(self) -> AVFrame:
        """The next 20 ms of audio.

        Raises:
            MediaStreamError: Once the track is stopped, or its source closed and the
                remaining audio has been returned.
        """
        while True:
            if self._stopped or self.readyState != "live":
                raise MediaStreamError
            if len(self._blocks) >= _BLOCKS_PER_PACKET:
                break
            if self._source_ended:
                self.stop()
                raise MediaStreamError
            self._source._ensure_clock()
            self._ready.clear()
            await self._ready.wait()

        parts = [self._blocks.popleft() for _ in range(_BLOCKS_PER_PACKET)]
        self._dropping = False
        samples = np.concatenate(parts)
        count = samples.size // self._source.num_channels
        if self.muted:
            samples = np.zeros(2 * count, dtype=np.int16)
        elif self._source.num_channels == 1:
            # aiortc's encoder converts everything to stereo, and its mono to stereo upmix
            # lowers the level by 3 dB: both channels get the mono samples instead
            samples = np.repeat(samples, 2)
        self._level.add(samples, self._source.sample_rate, 2)
        frame = _make_av_frame(samples, self._source.sample_rate, 2, self._pts)
        self._pts += count
        self._sent.publish(frame)
        return frame

    def stop(self) -> None:
        """Detach from the source and end the track (and ``_sent``)."""
        if not self._stopped:
            self._stopped = True
            self._subscription.close()
            self._blocks.clear()
            self._ready.set()
            self._sent.end()
        super().stop()


def _prepare(frame: VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` as a ``yuv420p`` PyAV frame of ``width`` x ``height`` (runs in a thread).

    ``frame`` is the source's private copy of a captured picture, never changed, so the
    PyAV frame reads its bytes in place.
    """
    out = _to_av_frame(frame, share=True)
    if out.width != width or out.height != height:
        out = out.reformat(width=width, height=height, format="yuv420p", interpolation="BILINEAR")
    return out


def _black(width: int, height: int) -> av.VideoFrame:
    """A black ``yuv420p`` picture (limited range: Y 16, U and V 128)."""
    out = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(out.planes, (16, 128, 128), strict=True):
        np.frombuffer(memoryview(plane), dtype=np.uint8)[...] = value
    return out


@dataclass(eq=False)
class _Waiting:
    """A captured picture waiting to be sent, and its conversion once started."""

    captured: CapturedVideoFrame
    job: asyncio.Future[av.VideoFrame] | None = None

    def discard(self) -> None:
        job = self.job
        if job is None:
            return
        if not job.done():
            job.cancel()
        elif not job.cancelled():
            job.exception()  # retrieved: a failed conversion of a dropped picture is moot


@dataclass(frozen=True)
class VideoSourceCounts:
    """What a :class:`VideoSourceTrack` handed to the encoder (W3C ``RTCVideoSourceStats``)."""

    frames: int
    """Pictures returned by ``recv()`` so far (repeated and black ones included)."""
    width: int | None
    """Width of the latest one (None before the first)."""
    height: int | None
    """Height of the latest one (None before the first)."""
    frames_per_second: float
    """Pictures returned during the last second of the track's clock."""


class VideoSourceTrack(MediaStreamTrack):
    """The aiortc track of a :class:`VideoSource`: what an ``RTCRtpSender`` sends.

    :meth:`recv` returns the captured pictures in capture order, each as a ``yuv420p``
    :class:`av.VideoFrame` of the source's size. Pictures wait in a queue bounded in time:
    one more than :data:`MAX_FRAME_WAIT` older than the newest captured (or beyond
    :data:`MAX_FRAMES_WAITING`) is dropped. Their conversion and scaling start in the
    loop's default executor as they are captured, :data:`CONVERT_AHEAD` pictures ahead of
    the encoder, so that the next picture is usually ready when aiortc asks for it.
    Timestamps are on the 90 kHz RTP clock
    (``time_base`` 1/90000) and strictly increase: they follow the captured
    ``timestamp_us`` values while those increase, else the capture times on the source's
    clock.

    When no picture was captured for :data:`IDLE_REPEAT_INTERVAL` seconds, the last one is
    sent again. While :attr:`muted` is true, captured pictures are dropped and a black
    picture is returned :data:`MUTED_FRAME_RATE` times per second instead. Every frame
    returned is also published through ``_sent``. The track ends when it is stopped or
    its source is closed.

    The metadata captured with a picture goes to :attr:`frame_metadata` under the
    picture's timestamp, for the sender's encoders to append as a packet trailer.
    """

    kind = "video"

    def __init__(self, source: VideoSource, *, clock: MediaClock | None = None) -> None:
        """Attach a new track to ``source``; pictures captured from now on are kept.

        Args:
            source: The source to send.
            clock: Where the track's timing comes from; the source's clock when omitted
                (capture times are on the source's clock, so they should be the same).
        """
        if not isinstance(source, VideoSource):
            raise ValueError(f"source must be a VideoSource, got {type(source).__name__}")
        super().__init__()
        self._source = source
        self._clock = source._clock if clock is None else resolve_clock(clock)
        self._sent = FrameFanout()
        self._muted = False
        self._backlog: deque[_Waiting] = deque()
        self._last: CapturedVideoFrame | None = None
        self._wake = asyncio.Event()
        self._source_ended = False
        self._stopped = False
        self._dropped = 0
        # timing of the previous returned frame
        self._last_pts: int | None = None
        self._last_clock = 0.0  # clock seconds
        self._last_user_us: int | None = None  # its captured timestamp_us, if given
        self._last_sent_at: float | None = None  # clock time recv() returned it
        self._last_black_at: float | None = None
        self.frame_metadata = FrameMetadataSender()
        """The metadata of the pictures returned, by their 90 kHz ``pts``."""
        self._frames_out = 0
        self._size_out: tuple[int, int] | None = None
        self._recent_out: deque[float] = deque()  # clock times of the last second's frames
        sink: FrameSink = self
        self._subscription = source._fanout.subscribe(sink)

    @property
    def source(self) -> VideoSource:
        """The source sent by this track."""
        return self._source

    @property
    def muted(self) -> bool:
        """Whether black pictures are sent instead of the captured ones."""
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        value = bool(value)
        if value != self._muted:
            self._muted = value
            self._last_black_at = None
            if value:
                self._discard_backlog()
            self._wake.set()

    @property
    def dropped_frames(self) -> int:
        """Captured pictures dropped before they were sent, for being too old."""
        return self._dropped

    # ------------------------------------------------------------------ sink side

    def on_frame(self, frame: AVFrame | CapturedVideoFrame) -> None:
        if not isinstance(frame, CapturedVideoFrame) or self._stopped:
            return
        self._last = frame
        if self._muted:
            return
        backlog = self._backlog
        backlog.append(_Waiting(frame))
        newest = frame.capture_time
        while len(backlog) > 1 and (
            newest - backlog[0].captured.capture_time > MAX_FRAME_WAIT + 1e-9
            or len(backlog) > MAX_FRAMES_WAITING
        ):
            backlog.popleft().discard()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 300 == 0:
                logger.debug(
                    "video track %s: encoder behind the captures, %d picture(s) skipped",
                    self.id,
                    self._dropped,
                )
        self._convert_ahead()
        self._wake.set()

    def _convert_ahead(self) -> None:
        """Start converting the first :data:`CONVERT_AHEAD` waiting pictures."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # captured outside a loop: recv() converts it
        width, height = self._source.width, self._source.height
        for item in itertools.islice(self._backlog, CONVERT_AHEAD):
            if item.job is None:
                item.job = loop.run_in_executor(None, _prepare, item.captured.frame, width, height)

    def _discard_backlog(self) -> None:
        while self._backlog:
            self._backlog.popleft().discard()

    def on_end(self) -> None:
        self._source_ended = True
        self._wake.set()

    # ------------------------------------------------------------------ reader side

    async def recv(self) -> AVFrame:
        """The next picture to send.

        A picture that cannot be converted is logged and skipped.

        Raises:
            MediaStreamError: Once the track is stopped or its source closed.
        """
        while True:
            work, captured, repeat_of = await self._next_job()
            try:
                out = await work
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("video track %s: cannot prepare a picture, skipping it", self.id)
                if self._last is (captured or repeat_of):
                    self._last = None  # not to be repeated either
                continue
            if self._stopped:
                raise MediaStreamError
            self._stamp(out, captured, repeat_of)
            self._last_sent_at = now = self._clock.now()
            self._frames_out += 1
            self._size_out = (out.width, out.height)
            self._recent_out.append(now)
            self._forget_before(now - _FPS_WINDOW)
            self._sent.publish(out)
            return out

    def _forget_before(self, start: float) -> None:
        recent = self._recent_out
        while recent and recent[0] <= start:
            recent.popleft()

    def source_counts(self) -> VideoSourceCounts:
        """What this track handed to the encoder so far (its size, count and rate)."""
        self._forget_before(self._clock.now() - _FPS_WINDOW)
        width, height = self._size_out if self._size_out is not None else (None, None)
        return VideoSourceCounts(
            self._frames_out, width, height, float(len(self._recent_out)) / _FPS_WINDOW
        )

    async def _next_job(
        self,
    ) -> tuple[asyncio.Future[av.VideoFrame], CapturedVideoFrame | None, CapturedVideoFrame | None]:
        """Wait for something to send; its preparation in the executor is under way.

        Returns:
            The executor job (for a captured picture, usually started when it was
            captured, and often done), the newly captured picture it prepares (None for a
            black or repeated picture) and the repeated picture (None otherwise).
        """
        loop = asyncio.get_running_loop()
        width, height = self._source.width, self._source.height
        while True:
            if self._stopped or self.readyState != "live":
                raise MediaStreamError
            if self._source_ended:
                self.stop()
                raise MediaStreamError
            now = self._clock.now()
            if self._muted:
                due = now
                if self._last_black_at is not None:
                    due = self._last_black_at + 1.0 / MUTED_FRAME_RATE
                if now >= due:
                    self._last_black_at = now
                    return loop.run_in_executor(None, _black, width, height), None, None
                await self._sleep(due - now)
            elif self._backlog:
                item = self._backlog.popleft()
                self._convert_ahead()  # the next ones convert while this one is encoded
                job = item.job
                if job is None:
                    job = loop.run_in_executor(None, _prepare, item.captured.frame, width, height)
                return job, item.captured, None
            elif self._last is not None and self._last_sent_at is not None:
                due = self._last_sent_at + IDLE_REPEAT_INTERVAL
                if now >= due:
                    last = self._last
                    return (
                        loop.run_in_executor(None, _prepare, last.frame, width, height),
                        None,
                        last,
                    )
                await self._sleep(due - now)
            else:
                await self._sleep(None)

    async def _sleep(self, seconds: float | None) -> None:
        """Wait for news (a capture, mute change, the end) or ``seconds``."""
        self._wake.clear()
        await wait_event(self._wake, None if seconds is None else max(seconds, 0.0), self._clock)

    def _stamp(
        self,
        out: av.VideoFrame,
        captured: CapturedVideoFrame | None,
        repeat_of: CapturedVideoFrame | None,
    ) -> None:
        """Give ``out`` its 90 kHz timestamp and its :class:`SentFrameInfo`."""
        if captured is not None:
            clock = captured.capture_time
            user_us: int | None = captured.timestamp_us or None
            info = SentFrameInfo(captured.effective_timestamp_us, captured.rotation)
        else:
            clock = self._clock.now()
            user_us = None
            rotation = repeat_of.rotation if repeat_of is not None else 0
            info = SentFrameInfo(int(clock * 1e6), rotation)
        if self._last_pts is None:
            pts = 0
        else:
            last_user_us = self._last_user_us
            if user_us is not None and last_user_us is not None and user_us > last_user_us:
                delta = (user_us - last_user_us) * VIDEO_CLOCK_RATE // 1_000_000
            else:
                delta = round((clock - self._last_clock) * VIDEO_CLOCK_RATE)
            pts = self._last_pts + max(1, delta)
        self._last_pts = pts
        self._last_clock = max(clock, self._last_clock)
        self._last_user_us = user_us
        out.pts = pts
        out.time_base = VIDEO_TIME_BASE
        out.opaque = info
        if captured is not None and captured.metadata is not None:
            self.frame_metadata.put(pts, captured.metadata)

    def stop(self) -> None:
        """Detach from the source and end the track (and ``_sent``)."""
        if not self._stopped:
            self._stopped = True
            self._subscription.close()
            self._discard_backlog()
            self._last = None
            self._wake.set()
            self._sent.end()
        super().stop()
