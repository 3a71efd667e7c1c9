"""Real-time audio source: a paced queue of captured PCM.

:class:`AudioSource` queues what :meth:`AudioSource.capture_frame` receives and plays it
out on its clock (a :class:`~livekit_py.media.clock.MediaClock`, the event loop's by
default), 10 ms at a time, as ``s16`` :class:`av.AudioFrame` objects published through a
:class:`~livekit_py.media.frame_source.FrameFanout`. The aiortc track that an
``RTCRtpSender`` reads from it lives in :mod:`livekit_py.webrtc.source_tracks`.

How the clock copes with a late event loop (a blocked loop wakes it late; the official
SDK's native clock does not have this problem):

- **Catching up.** Block *k* is due at ``origin + k * 10 ms``. A clock that wakes late
  sends every block due by then at once, in order, so a late wake-up is neither a gap
  nor added latency.
- **Latency budget** (:data:`LATENCY_BUDGET`, 100 ms). No block is sent later than the
  budget after its time: what is due earlier is skipped, and the queued audio of the
  skipped blocks is dropped, oldest first (counted and logged at DEBUG). When the
  queue did not hold that audio yet (a producer on the same blocked loop delivers it
  right after), the audio that arrives within the next budget pays for it instead, so
  that a producer feeding in real time is not left that far behind for good. Only a
  clock that did not run drops audio: blocks it waited for while it ran (a producer
  slower than real time) are sent when their audio comes, on a schedule moved on.
- **A dry queue while audio plays** is waited for, up to the budget, instead of being
  filled with silence: a producer on the same loop is late by as much as the clock,
  and silence sent for its audio would push all of its later audio back by that much.
  Audio that arrives is sent at once. When nothing came within the budget the audio
  has ended: the wait is forgiven and silence follows, one block per tick, as it
  does while nothing was played yet (the official SDK's source likewise sends nothing
  for 100 ms, then silence).

``pts`` count the samples sent, so they are contiguous whatever was skipped.
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
from ..media.clock import MediaClock, resolve_clock, wait_event
from ..media.frame_source import AVFrame, FrameFanout
from .audio_frame import AudioFrame

__all__ = ["AudioSource"]

logger = get_logger("media.audio_source")

Samples = npt.NDArray[np.int16]

# the clock plays 1/100 s per tick
_TICKS_PER_SECOND = 100

LATENCY_BUDGET = 0.1
"""How late (seconds) the clock sends a block at most, and how long it waits for a dry queue.

100 ms: a receiver's jitter buffer (WebRTC's NetEq keeps tens of milliseconds, more
after jitter) absorbs a burst of that size with little or no concealment, it is what
the official SDK's native source waits before it sends silence, and with the usual
network and jitter-buffer delays it keeps mouth-to-ear latency under the 150 ms that
ITU-T G.114 gives interactive speech. A stall longer than that is a gap at the receiver
whatever the sender does; sending all of it late would only add its length to the
latency of everything after it.
"""
# drops are logged at most this often (seconds of the source's clock)
_DROP_LOG_INTERVAL = 1.0


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
    attached and nothing is queued, the clock plays silence (after waiting up to
    :data:`LATENCY_BUDGET` for more audio when the queue ran dry mid-stream). A full
    queue makes :meth:`capture_frame` wait. Audio is dropped only by :meth:`clear_queue`
    and when the event loop wakes the clock more than :data:`LATENCY_BUDGET` late (the
    oldest audio due goes; see the module docstring).

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
        # the playout schedule: the next block is due at _deadline
        self._origin = 0.0
        self._since_origin = 0  # samples per channel scheduled since _origin
        self._deadline = 0.0
        self._budget = LATENCY_BUDGET
        self._active = False  # audio is playing: a dry queue is waited for, not filled
        self._dry_since: float | None = None  # when the queue ran dry while active
        self._last_run: float | None = None  # when the clock last looked at the schedule
        self._drop_credit = 0  # samples of late audio to drop when they arrive...
        self._credit_until = 0.0  # ...until then
        self._dropped_samples = 0  # queued audio dropped for being later than the budget
        self._drop_count = 0
        self._drop_logged_at: float | None = None

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
        # no late audio to wait for after a deliberate clear: silence follows at once
        self._active = False
        self._dry_since = None
        self._drop_credit = 0
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

    def _pop(self, count: int) -> list[Samples]:
        """Remove up to ``count`` samples per channel from the head of the queue."""
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
        if taken and self._queued < self._capacity:
            self._release_space()
        return pieces

    def _take(self, count: int) -> Samples:
        """Remove ``count`` samples per channel from the queue, padded with silence."""
        pieces = self._pop(count)
        missing = count - sum(len(p) for p in pieces)
        if missing:
            pieces.append(np.zeros((missing, self._num_channels), dtype=np.int16))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _drop(self, count: int, now: float) -> None:
        """Drop up to ``count`` queued samples per channel (audio later than the budget)."""
        dropped = sum(len(p) for p in self._pop(count))
        if not dropped:
            return
        self._dropped_samples += dropped
        self._drop_count += 1
        logged = self._drop_logged_at
        if logged is None or now - logged >= _DROP_LOG_INTERVAL:
            self._drop_logged_at = now
            logger.debug(
                "%r: dropped %.0f ms of audio more than %.0f ms late (%.0f ms in %d drops)",
                self,
                dropped / self._sample_rate * 1e3,
                self._budget * 1e3,
                self._dropped_samples / self._sample_rate * 1e3,
                self._drop_count,
            )

    def _restart_schedule(self, now: float) -> None:
        self._origin = now
        self._since_origin = 0
        self._deadline = now

    def _next_block(self) -> int:
        """Samples per channel of the block due at ``_deadline``; moves the schedule past it."""
        count = _tick_samples(self._sample_rate, self._tick)
        self._tick = (self._tick + 1) % _TICKS_PER_SECOND
        self._since_origin += count
        self._deadline = self._origin + self._since_origin / self._sample_rate
        return count

    def _emit(self, block: Samples, count: int) -> None:
        if self._fanout.subscriber_count:
            self._fanout.publish(
                _make_av_frame(block, self._sample_rate, self._num_channels, self._pts)
            )
        self._pts += count

    def _play_due(self, now: float) -> float | None:
        """Send every block due by ``now``, in order, within the latency budget.

        Returns:
            How long to wait for audio (the queue ran dry while audio was playing), or
            None to wait for the next block's time.
        """
        budget = self._budget
        last_run, self._last_run = self._last_run, now
        count = _tick_samples(self._sample_rate, self._tick)
        dry_since = self._dry_since
        if dry_since is not None and self._queued < count and now - dry_since >= budget - 1e-9:
            # nothing came within the budget: the audio has ended (or paused); what is
            # left of it (a partial block) is sent now, then silence
            self._active = False
            self._dry_since = None
            self._drop_credit = 0
            self._restart_schedule(now)
            if self._queued:
                self._emit(self._take(count), count)
                self._next_block()
        # blocks due longer ago than the budget are not sent
        while now - self._deadline > budget + 1e-9:
            count = _tick_samples(self._sample_rate, self._tick)
            if last_run is None or self._deadline >= last_run:
                # it fell due while the clock did not run (the loop was blocked): its
                # audio is too late to send, and so is audio still to come for it from
                # a producer that was blocked as well
                if self._queued >= count:
                    self._drop(count, now)
                elif self._active:
                    self._drop_credit += count
                    self._credit_until = now + budget
            # else the clock ran and waited for this block's audio (a producer slower
            # than real time): it is sent when it comes, on a schedule starting later
            self._next_block()
        if self._drop_credit:
            if now > self._credit_until:
                self._drop_credit = 0
            elif self._queued:
                paid = min(self._drop_credit, self._queued)
                self._drop(paid, now)
                self._drop_credit -= paid
        while self._deadline <= now:
            count = _tick_samples(self._sample_rate, self._tick)
            if self._queued >= count:
                self._emit(self._take(count), count)
                self._next_block()
                self._active = True
                self._dry_since = None
            elif self._active or self._queued:
                # the queue ran dry while audio plays: its producer may be late too
                if self._dry_since is None:
                    self._dry_since = now
                return max(self._dry_since + budget - now, 0.0)
            else:
                self._emit(np.zeros((count, self._num_channels), dtype=np.int16), count)
                self._next_block()
        return None

    async def _run_clock(self) -> None:
        clock = self._clock
        self._restart_schedule(clock.now())
        self._last_run = None
        try:
            while True:
                now = clock.now()
                if now < self._deadline:
                    await clock.sleep(self._deadline - now)
                    continue
                # every block emitted before this tick has now played for its whole length
                self._played_total = self._emitted_total
                self._release_playout()
                if self._queued == 0 and self._fanout.subscriber_count == 0:
                    self._active = False
                    self._dry_since = None
                    self._drop_credit = 0
                    self._wake.clear()
                    await self._wake.wait()
                    self._restart_schedule(clock.now())
                    self._last_run = None
                    continue
                self._wake.clear()
                wait = self._play_due(now)
                if wait is not None:
                    await wait_event(self._wake, wait, clock)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%r: clock failed", self)
            raise
