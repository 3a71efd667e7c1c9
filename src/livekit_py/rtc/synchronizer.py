"""``AVSynchronizer``: audio and video frames from one producer, sent in step.

Audio frames go straight to the :class:`AudioSource`, whose queue plays them out in real
time and whose back-pressure slows down a producer running ahead.  Video frames go through
a short queue (``video_queue_size_ms`` of frames) drained by a task that hands one frame to
the :class:`VideoSource` every ``1 / video_fps`` seconds.  A producer that pushes each video
frame together with the audio of the same span is therefore paced by the slower of the two
queues, and the audio being played and the video being sent stay within about one video
frame of each other (see :attr:`AVSynchronizer.last_audio_time` and
:attr:`AVSynchronizer.last_video_time`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from .audio_frame import AudioFrame
from .audio_source import AudioSource
from .video_frame import VideoFrame
from .video_source import VideoSource

__all__ = ["AVSynchronizer"]

logger = get_logger("media.av_sync")

_VideoItem = tuple[VideoFrame, float | None]


class _FramePacer:
    """Spaces frames ``1 / fps`` apart on ``clock``.

    A frame that comes late is sent at once and the schedule is kept (the next frames
    follow quickly until the schedule is met again), unless it is more than
    ``max_delay`` seconds late: then the schedule starts over from now.
    """

    def __init__(self, fps: float, max_delay: float, clock: MediaClock) -> None:
        self._clock = clock
        self._interval = 1.0 / fps
        self._max_delay = max_delay
        self._due: float | None = None
        self._sent: deque[float] = deque(maxlen=max(2, int(fps)))

    def reset(self) -> None:
        self._due = None
        self._sent.clear()

    async def wait(self) -> None:
        """Wait until the next frame is due."""
        now = self._clock.now()
        if self._due is None:
            self._due = now
        ahead = self._due - now
        if ahead > 0:
            await self._clock.sleep(ahead)
        elif -ahead > self._max_delay:
            logger.warning("AVSynchronizer: video is %.1f ms behind schedule", -ahead * 1000)
            self._due = self._clock.now()

    def sent(self) -> None:
        """Record that a frame was sent; the next is due one interval after this one."""
        now = self._clock.now()
        self._sent.append(now)
        self._due = (now if self._due is None else self._due) + self._interval

    @property
    def rate(self) -> float:
        """Frames per second over the last second or so (0 before two frames)."""
        if len(self._sent) < 2:
            return 0.0
        span = self._sent[-1] - self._sent[0]
        return (len(self._sent) - 1) / span if span > 0 else 0.0


class AVSynchronizer:
    """Sends audio and video frames of one producer in step.

    Push each video frame and the audio of the same span, in any order::

        av_sync = AVSynchronizer(
            audio_source=audio_source, video_source=video_source, video_fps=30
        )
        async for video_frame, audio_frame in media:
            await av_sync.push(video_frame)
            await av_sync.push(audio_frame)

    The synchronizer must be created while an event loop runs: it starts its video task at
    once.
    """

    def __init__(
        self,
        *,
        audio_source: AudioSource,
        video_source: VideoSource,
        video_fps: float,
        video_queue_size_ms: float = 100,
        _max_delay_tolerance_ms: float = 300,
        clock: MediaClock | None = None,
    ) -> None:
        """Create a synchronizer.

        Args:
            audio_source: Where audio frames go.
            video_source: Where video frames go, ``video_fps`` times per second.
            video_fps: The video frame rate.
            video_queue_size_ms: How much video (in milliseconds of frames, at least one
                frame) may wait to be sent before :meth:`push` waits; 0 or less: no limit.
            _max_delay_tolerance_ms: How late the video may fall behind its schedule before
                the schedule starts over instead of catching up.
            clock: Where the video schedule is timed; the running event loop's time when
                omitted. Give the audio and video sources the same clock.

        Raises:
            ValueError: If ``video_fps`` is not a positive number.
            RuntimeError: If no event loop is running.
        """
        if (
            isinstance(video_fps, bool)
            or not isinstance(video_fps, (int, float))
            or not video_fps > 0
        ):
            raise ValueError(f"video_fps must be a positive number, got {video_fps!r}")
        loop = asyncio.get_running_loop()
        self._audio_source = audio_source
        self._video_source = video_source
        self._video_fps = float(video_fps)
        self._video_queue_size_ms = video_queue_size_ms
        self._max_delay_tolerance_ms = _max_delay_tolerance_ms

        capacity = int(self._video_fps * video_queue_size_ms / 1000)
        if video_queue_size_ms > 0:
            capacity = max(1, capacity)
        self._video_queue: asyncio.Queue[_VideoItem] = asyncio.Queue(maxsize=max(0, capacity))
        self._pacer = _FramePacer(
            self._video_fps, max(0.0, _max_delay_tolerance_ms) / 1000, resolve_clock(clock)
        )
        self._last_video_time = 0.0
        self._last_audio_time = 0.0
        self._closed = False
        self._video_task: asyncio.Task[None] = loop.create_task(
            self._send_video(), name="AVSynchronizer video"
        )

    async def push(self, frame: VideoFrame | AudioFrame, timestamp: float | None = None) -> None:
        """Give the synchronizer the next audio or video frame.

        An audio frame is captured into the audio source (waiting while its queue is
        full); a video frame joins the video queue (waiting while it is full).  Video
        frames pushed after :meth:`aclose` are dropped.

        Args:
            frame: The frame.
            timestamp: The frame's time in seconds on the producer's clock, reported by
                :attr:`last_video_time` / :attr:`last_audio_time`.  For audio, the time of
                the frame's end.

        Raises:
            ValueError: If ``frame`` is neither an AudioFrame nor a VideoFrame.
        """
        if isinstance(frame, AudioFrame):
            await self._audio_source.capture_frame(frame)
            if timestamp is not None:
                self._last_audio_time = timestamp
            return
        if not isinstance(frame, VideoFrame):
            raise ValueError(f"frame must be an AudioFrame or a VideoFrame, got {frame!r}")
        if self._closed:
            return
        await self._video_queue.put((frame, timestamp))
        if self._closed:  # closed while waiting for room
            self._drain_video()

    async def clear_queue(self) -> None:
        """Drop the audio and video that wait to be sent."""
        self._audio_source.clear_queue()
        self._drain_video()

    async def wait_for_playout(self) -> None:
        """Wait until the audio pushed so far is played out and the queued video sent."""
        await asyncio.gather(self._audio_source.wait_for_playout(), self._video_queue.join())

    def reset(self) -> None:
        """Restart the video schedule (and the frame rate measurement) from the next frame."""
        self._pacer.reset()

    async def aclose(self) -> None:
        """Stop the video task; queued video frames are dropped."""
        if self._closed:
            return
        self._closed = True
        self._video_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._video_task
        self._drain_video()

    @property
    def actual_fps(self) -> float:
        """The video frame rate actually sent, over about the last second."""
        return self._pacer.rate

    @property
    def last_video_time(self) -> float:
        """The timestamp of the last video frame sent."""
        return self._last_video_time

    @property
    def last_audio_time(self) -> float:
        """The timestamp of the audio being played now: the last pushed audio timestamp
        minus what still waits in the audio source's queue."""
        return self._last_audio_time - self._audio_source.queued_duration

    # ------------------------------------------------------------------ internals

    def _drain_video(self) -> None:
        while True:
            try:
                self._video_queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._video_queue.task_done()

    async def _send_video(self) -> None:
        while True:
            frame, timestamp = await self._video_queue.get()
            try:
                await self._pacer.wait()
                try:
                    self._video_source.capture_frame(frame)
                except Exception:
                    logger.exception("AVSynchronizer: cannot capture a video frame")
                else:
                    if timestamp is not None:
                        self._last_video_time = timestamp
                self._pacer.sent()
            finally:
                self._video_queue.task_done()
