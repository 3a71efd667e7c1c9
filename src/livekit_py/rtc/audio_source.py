"""Real-time audio source: a paced queue of captured PCM.

:class:`AudioSource` queues what :meth:`AudioSource.capture_frame` receives and plays it
out on its clock (a :class:`~livekit_py.media.clock.MediaClock`, the event loop's by
default), 10 ms at a time, as ``s16`` :class:`av.AudioFrame` objects published through a
:class:`~livekit_py.media.frame_source.FrameFanout`. The aiortc track that an
``RTCRtpSender`` reads from it lives in :mod:`livekit_py.webrtc.source_tracks`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from .._validate import check_int
from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from ..media.frame_source import AVFrame, FrameFanout
from .audio_frame import AudioFrame

__all__ = ["AudioSource"]

logger = get_logger("media.audio_source")

Samples = npt.NDArray[np.int16]

# the clock plays 1/100 s per tick
_TICKS_PER_SECOND = 100
# a clock further behind than this (the event loop was blocked) starts over from "now"
# instead of catching up with a burst of blocks
_RESYNC_AFTER = 0.06


def _layout(num_channels: int) -> str:
    return "mono" if num_channels == 1 else "stereo"


def _tick_samples(sample_rate: int, tick: int) -> int:
    """Samples per channel of tick ``tick`` (0-99) of a second.

    Rates that are not a multiple of 100 Hz get ticks that differ by one sample, so that
    every 100 ticks hold exactly one second.
    """
    return ((tick + 1) * sample_rate) // _TICKS_PER_SECOND - (tick * sample_rate) // (
        _TICKS_PER_SECOND
    )


def _make_av_frame(samples: Samples, sample_rate: int, num_channels: int, pts: int) -> AVFrame:
    frame = av.AudioFrame.from_ndarray(
        samples.reshape(1, -1), format="s16", layout=_layout(num_channels)
    )
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, sample_rate)
    return frame


class _SourceFanout(FrameFanout):
    """The source's fan-out: a sink joining (a track attaching) starts the clock."""

    def __init__(self, source: AudioSource) -> None:
        super().__init__()
        self._source = source

    def _subscribers_changed(self) -> None:
        self._source._on_sinks_changed()


class AudioSource:
    """A real-time audio source with an internal queue.

    Frames given to :meth:`capture_frame` are queued, up to ``queue_size_ms`` of audio,
    and played out in real time by the source's clock, 10 ms per tick. While a track is
    attached and the queue is empty, the clock plays silence. A full queue makes
    :meth:`capture_frame` wait: audio is never dropped, except by :meth:`clear_queue`.

    The clock starts with the first capture (or when a track attaches) and rests while
    nothing is queued and no track is attached.
    """

    def __init__(
        self,
        sample_rate: int,
        num_channels: int,
        queue_size_ms: int = 1000,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        clock: MediaClock | None = None,
    ) -> None:
        """Create a source.

        Args:
            sample_rate: Sample rate of the captured audio, in Hz.
            num_channels: Channels of the captured audio: 1 (mono) or 2 (stereo).
            queue_size_ms: How much audio the queue holds before :meth:`capture_frame`
                waits, in milliseconds. At least 10 ms are always accepted.
            loop: The event loop running the clock; the running loop when omitted.
            clock: Where the playout clock takes its time from; the running event loop's
                time when omitted.

        Raises:
            ValueError: If a rate, channel count or queue size is out of range.
        """
        self._sample_rate = check_int("sample_rate", sample_rate)
        self._num_channels = check_int("num_channels", num_channels)
        if num_channels > 2:
            raise ValueError(f"num_channels must be 1 or 2, got {num_channels}")
        if isinstance(queue_size_ms, bool) or not isinstance(queue_size_ms, int):
            raise ValueError(f"queue_size_ms must be an int, got {type(queue_size_ms).__name__}")
        if queue_size_ms < 0:
            raise ValueError(f"queue_size_ms must not be negative, got {queue_size_ms}")
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # resolved when first needed, from within a running loop
        self._loop = loop
        self._clock = resolve_clock(clock)
        self._queue_size_ms = queue_size_ms
        one_tick = -(-sample_rate // _TICKS_PER_SECOND)
        self._capacity = max(queue_size_ms * sample_rate // 1000, one_tick)

        self._chunks: deque[Samples] = deque()  # (samples, channels) int16 arrays
        self._queued = 0  # samples per channel in _chunks
        self._captured_total = 0  # samples per channel ever queued (minus cleared ones)
        self._emitted_total = 0  # queued samples handed to the clock's output
        self._played_total = 0  # emitted samples whose 10 ms tick has elapsed
        self._clear_count = 0
        self._playout_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._space_waiter: asyncio.Future[None] | None = None
        self._capture_lock = asyncio.Lock()

        self._fanout: FrameFanout = _SourceFanout(self)
        self._clock_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._tick = 0  # position of the next tick within the current second
        self._pts = 0
        self._closed = False

    @property
    def sample_rate(self) -> int:
        """Sample rate of the source, in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Number of channels of the source."""
        return self._num_channels

    @property
    def queued_duration(self) -> float:
        """Seconds of captured audio still waiting in the queue."""
        return self._queued / self._sample_rate

    def clear_queue(self) -> None:
        """Discard all queued audio.

        Captures called before and still waiting (for room in the queue, or for an
        earlier capture) return without queueing the rest of their frame, and
        :meth:`wait_for_playout` calls return.
        """
        self._chunks.clear()
        self._queued = 0
        self._clear_count += 1
        self._captured_total = self._emitted_total
        self._release_space()
        self._release_playout(everything=True)

    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue a frame for playout, waiting while the queue is full.

        Frames of any length are accepted. One longer than the queue is queued piece by
        piece as room appears; the call returns once the whole frame is queued. Concurrent
        captures are queued in call order. After :meth:`aclose` frames are ignored.

        Args:
            frame: Audio with the source's sample rate and channel count.

        Raises:
            ValueError: If the frame's sample rate or channel count differs from the
                source's.
        """
        if frame.sample_rate != self._sample_rate:
            raise ValueError(
                f"frame sample_rate is {frame.sample_rate} Hz, the source's is "
                f"{self._sample_rate} Hz"
            )
        if frame.num_channels != self._num_channels:
            raise ValueError(
                f"frame num_channels is {frame.num_channels}, the source's is {self._num_channels}"
            )
        count = frame.samples_per_channel
        if count == 0 or self._closed:
            return
        channels = self._num_channels
        # a private copy: the caller may reuse the frame while it waits in the queue
        samples = np.frombuffer(frame.data, dtype=np.int16, count=count * channels)
        samples = samples.reshape(count, channels).copy()
        clear_count = self._clear_count

        async with self._capture_lock:
            position = 0
            while position < count:
                while self._queued >= self._capacity:
                    if self._closed or self._clear_count != clear_count:
                        return
                    await self._wait_for_space()
                if self._closed or self._clear_count != clear_count:
                    return
                take = min(count - position, self._capacity - self._queued)
                self._chunks.append(samples[position : position + take])
                self._queued += take
                self._captured_total += take
                position += take
                self._wake.set()
                self._ensure_clock()

    async def wait_for_playout(self) -> None:
        """Wait until all audio captured so far has been played out (or cleared)."""
        target = self._captured_total
        if self._closed or self._played_total >= target:
            return
        future = self._get_loop().create_future()
        self._playout_waiters.append((target, future))
        await future

    async def aclose(self) -> None:
        """Stop the clock and discard the queue; attached tracks end.

        Pending :meth:`capture_frame` and :meth:`wait_for_playout` calls return.
        """
        if self._closed:
            return
        self._closed = True
        task = self._clock_task
        self._clock_task = None
        if task is not None and not task.done():
            task.cancel()
            if task is not asyncio.current_task():
                await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: the clock logs its own failures
        self._chunks.clear()
        self._queued = 0
        self._release_space()
        self._release_playout(everything=True)
        self._fanout.end()

    def __repr__(self) -> str:
        return (
            f"rtc.AudioSource(sample_rate={self._sample_rate}, "
            f"num_channels={self._num_channels}, queue_size_ms={self._queue_size_ms}, "
            f"queued_duration={self.queued_duration:.3f})"
        )

    # ------------------------------------------------------------------ internals

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _ensure_clock(self) -> None:
        """Start the clock task unless it runs (or the source is closed)."""
        if self._closed or (self._clock_task is not None and not self._clock_task.done()):
            return
        try:
            loop = self._get_loop()
        except RuntimeError:
            return  # no loop yet: the first capture or track read starts the clock
        self._clock_task = loop.create_task(self._run_clock(), name="AudioSource clock")

    def _on_sinks_changed(self) -> None:
        if self._fanout.subscriber_count > 0:
            self._wake.set()
            self._ensure_clock()

    async def _wait_for_space(self) -> None:
        future = self._get_loop().create_future()
        self._space_waiter = future
        try:
            await future
        finally:
            if self._space_waiter is future:
                self._space_waiter = None

    def _release_space(self) -> None:
        waiter = self._space_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_playout(self, *, everything: bool = False) -> None:
        if not self._playout_waiters:
            return
        pending: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._playout_waiters:
            if future.done():
                continue
            if everything or target <= self._played_total:
                future.set_result(None)
            else:
                pending.append((target, future))
        self._playout_waiters = pending

    def _take(self, count: int) -> Samples:
        """Remove up to ``count`` samples per channel from the queue, padded with silence."""
        channels = self._num_channels
        if self._queued == 0:
            return np.zeros((count, channels), dtype=np.int16)
        pieces: list[Samples] = []
        needed = count
        while needed > 0 and self._chunks:
            head = self._chunks[0]
            if len(head) <= needed:
                pieces.append(self._chunks.popleft())
                needed -= len(head)
            else:
                pieces.append(head[:needed])
                self._chunks[0] = head[needed:]
                needed = 0
        taken = count - needed
        self._queued -= taken
        self._emitted_total += taken
        if needed:
            pieces.append(np.zeros((needed, channels), dtype=np.int16))
        if self._queued < self._capacity:
            self._release_space()
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    async def _run_clock(self) -> None:
        clock = self._clock
        rate = self._sample_rate
        origin = clock.now()
        since_origin = 0  # samples played since origin
        deadline = origin
        try:
            while True:
                delay = deadline - clock.now()
                if delay > 0:
                    await clock.sleep(delay)
                now = clock.now()
                # every block emitted before this tick has now played for its whole length
                self._played_total = self._emitted_total
                self._release_playout()
                if now - deadline > _RESYNC_AFTER:
                    logger.debug(
                        "%r: clock %.0f ms late, resynchronizing", self, (now - deadline) * 1e3
                    )
                    origin, since_origin = now, 0
                if self._queued == 0 and self._fanout.subscriber_count == 0:
                    self._wake.clear()
                    await self._wake.wait()
                    origin, since_origin = clock.now(), 0
                    deadline = origin
                    continue
                count = _tick_samples(rate, self._tick)
                self._tick = (self._tick + 1) % _TICKS_PER_SECOND
                block = self._take(count)
                if self._fanout.subscriber_count:
                    self._fanout.publish(_make_av_frame(block, rate, self._num_channels, self._pts))
                self._pts += count
                since_origin += count
                deadline = origin + since_origin / rate
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%r: clock failed", self)
            raise
