"""The processing thread of a capture: 10 ms frames through the APM, the reverse stream
and the echo canceller's delay hint."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...log import get_logger
from ...rtc.apm import AudioProcessingModule
from ...rtc.audio_frame import AudioFrame
from ...rtc.audio_resampler import AudioResampler
from .backend import Samples
from .threads import STOP_TIMEOUT, settle

__all__ = ["APM_RATES", "CaptureProcessor"]

logger = get_logger("media.media_devices")

#: sample rates the AudioProcessingModule works at
APM_RATES = (8000, 16000, 32000, 48000)
_MAX_APM_DELAY_MS = 500
# captured blocks waiting for the processing thread beyond which new blocks are dropped
# (the thread is starved of CPU; better a gap than an ever growing delay)
_MAX_WORKER_BACKLOG = 64
# the echo canceller's far end is realigned when it runs this far (seconds) ahead of the
# capture clock (aec.FarEndBuffer.max_lead)
_FAR_MAX_LEAD = 0.6
# delay estimates (one per reverse frame) whose median is the delay hint, and the change
# (ms) that updates the hint: the canceller ignores smaller moves anyway
_DELAY_ESTIMATES = 25
_DELAY_HINT_STEP_MS = 4


@dataclass(frozen=True)
class Captured:
    samples: Samples  # (frames, channels) int16, already in the capture's channel layout
    adc_time: float  # when the first sample was captured (the MediaDevices clock)


@dataclass(frozen=True)
class Rendered:
    samples: Samples  # (frames,) int16 mono, what the speaker plays
    sample_rate: int
    dac_time: float  # when the first sample reaches the speaker (the MediaDevices clock)


class RenderStopped:
    """The player feeding the reverse stream stopped."""


@dataclass(frozen=True)
class Flush:
    """Settles ``done`` once everything queued before it was processed."""

    done: asyncio.Future[None]


STOP = object()


class CaptureProcessor:
    """The processing thread of one ``InputCapture``.

    It takes captured blocks and played (reverse) blocks from a queue, in arrival order,
    runs the APM on 10 ms frames and posts the processed capture frames to the event loop.

    Delay hint: the echo canceller keeps the far end on the capture clock.  A reverse frame
    is appended right after the previous one, unless the capture clock has passed that
    point (the far end stalled: it goes at the clock) or the far end runs more than
    :data:`_FAR_MAX_LEAD` ahead (it is realigned to the clock); see ``aec.FarEndBuffer``.
    This thread follows the same rule to know where each reverse frame lands, and from the
    frame's playout time and the capture time of that position it knows the delay to
    hint: the time between the frame's playout and the capture of the position where the
    canceller puts it.  Both times come from the device callbacks' time information,
    taken on the clock of the ``MediaDevices`` (``time.monotonic`` by default).
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        sample_rate: int,
        num_channels: int,
        apm: AudioProcessingModule | None,
        echo_cancellation: bool,
        deliver: Callable[[list[AudioFrame]], None],
    ) -> None:
        self._loop = loop
        self._rate = sample_rate
        self._channels = num_channels
        self._step = sample_rate // 100
        self._apm = apm
        self._echo = apm is not None and echo_cancellation
        self._deliver = deliver
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: Samples = np.zeros((0, num_channels), dtype=np.int16)
        # capture clock: samples given to the APM, and the capture time of the next one
        self._clock = 0
        self._adc_next: float | None = None
        # reverse stream: where the canceller's far end ends (capture clock), the render
        # stream time (seconds) received and fed, pending samples, rate conversion
        self._far_end = 0
        self._render_received = 0.0
        self._render_fed = 0.0
        self._render_pending: Samples = np.zeros(0, dtype=np.int16)
        self._render_rate = 0
        self._render_resampler: AudioResampler | None = None
        self._render_gap = False  # set by the audio thread when it dropped a block
        self._estimates: deque[float] = deque(maxlen=_DELAY_ESTIMATES)
        self.delay_ms: int | None = None  # the hint given to the APM
        self._dropped = 0
        self._reported_drops = 0
        self._failures = 0
        self._loop_closed = False
        self.reverse_frames = 0  # reverse frames given to the APM (for diagnostics)
        self.finished: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, name="livekit_py MediaDevices capture", daemon=True
        )

    @property
    def wants_reverse(self) -> bool:
        return self._echo

    def start(self) -> None:
        self._thread.start()

    # called on the backend's audio threads: never block, never wait for the loop

    def put_captured(self, samples: Samples, adc_time: float) -> None:
        if self._items.qsize() > _MAX_WORKER_BACKLOG:
            self._dropped += 1
            return
        self._items.put(Captured(samples, adc_time))

    def put_rendered(self, samples: Samples, sample_rate: int, dac_time: float) -> None:
        if self._items.qsize() > 2 * _MAX_WORKER_BACKLOG:
            self._render_gap = True
            return
        self._items.put(Rendered(samples, sample_rate, dac_time))

    # called on the event loop

    def render_stopped(self) -> None:
        self._items.put(RenderStopped())

    def abandon(self) -> None:
        """End the thread once the queued work is done, without waiting for it."""
        self._items.put(STOP)

    async def flush(self) -> None:
        """Wait until every block queued before the call was processed.

        Raises:
            RuntimeError: If the processing thread is not running.
        """
        if not self._thread.is_alive():
            raise RuntimeError("the capture processing thread is not running")
        done: asyncio.Future[None] = self._loop.create_future()
        self._items.put(Flush(done))
        await done

    async def stop(self) -> None:
        """Finish the queued work and end the thread."""
        if not self._thread.is_alive():
            return
        self._items.put(STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning("capture processing thread did not stop within %.0f s", STOP_TIMEOUT)
            return
        self._thread.join()

    # the thread

    def _run(self) -> None:
        try:
            while True:
                item = self._items.get()
                if item is STOP:
                    break
                try:
                    if isinstance(item, Captured):
                        self._process_captured(item)
                    elif isinstance(item, Rendered):
                        self._process_rendered(item)
                    elif isinstance(item, RenderStopped):
                        self._restart_render()
                    elif isinstance(item, Flush):
                        with contextlib.suppress(RuntimeError):  # loop closed: nobody waits
                            self._loop.call_soon_threadsafe(settle, item.done, None)
                except Exception:
                    self._failures += 1
                    if self._failures == 1 or self._failures % 100 == 0:
                        logger.exception(
                            "MediaDevices: audio processing failed (%d time(s))", self._failures
                        )
        finally:
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(settle, self.finished, None)

    def _process_captured(self, item: Captured) -> None:
        if self._dropped != self._reported_drops:
            logger.warning(
                "MediaDevices: audio processing is behind, %d captured block(s) dropped",
                self._dropped - self._reported_drops,
            )
            self._reported_drops = self._dropped
        held = self._pending.shape[0]
        samples = item.samples
        if held:
            samples = np.concatenate((self._pending, samples))
        step = self._step
        count = samples.shape[0] // step
        self._pending = samples[count * step :]
        if count == 0:
            return
        blocks = np.ascontiguousarray(samples[: count * step]).reshape(count, -1)
        apm = self._apm
        frames: list[AudioFrame] = []
        for block in blocks:
            frame = AudioFrame(block.tobytes(), self._rate, self._channels, step)
            if apm is not None:
                apm.process_stream(frame)
            frames.append(frame)
        self._clock += count * step
        self._adc_next = item.adc_time + (count * step - held) / self._rate
        if self._loop_closed:
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, frames)
        except RuntimeError:  # the event loop was closed without closing the capture
            self._loop_closed = True
            logger.warning("MediaDevices: the event loop is closed, captured audio is dropped")

    def _restart_render(self) -> None:
        """The reverse stream starts over (a new player, or blocks were lost)."""
        self._render_received = self._render_fed = 0.0
        self._render_pending = np.zeros(0, dtype=np.int16)
        self._render_resampler = None
        self._render_rate = 0
        self._estimates.clear()

    def _process_rendered(self, item: Rendered) -> None:
        apm = self._apm
        if not self._echo or apm is None or self._adc_next is None:
            # no capture processed yet: the far end has no capture clock to go on
            return
        if self._render_gap:
            self._render_gap = False
            self._restart_render()
        samples, rate = item.samples, item.sample_rate
        if rate != self._render_rate:
            self._restart_render()
            self._render_rate = rate
        item_start = self._render_received
        self._render_received += samples.size / rate
        if rate not in APM_RATES:
            # the APM converts far-end audio between its own rates only: bring other rates
            # to the capture rate first
            if self._render_resampler is None:
                self._render_resampler = AudioResampler(rate, self._rate, num_channels=1)
            converted = self._render_resampler.push(bytearray(samples.tobytes()))
            parts = [np.frombuffer(frame.data, dtype=np.int16) for frame in converted]
            samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
            rate = self._rate
        if self._render_pending.size:
            samples = np.concatenate((self._render_pending, samples))
        step = rate // 100
        count = samples.size // step
        self._render_pending = samples[count * step :]
        capture_step = self._step
        max_lead = round(_FAR_MAX_LEAD * self._rate)
        for block in samples[: count * step].reshape(count, step):
            dac = item.dac_time + (self._render_fed - item_start)
            self._render_fed += 0.01
            far_end = self._far_end
            if self._clock <= far_end <= self._clock + max_lead:
                place = far_end
            else:  # the canceller puts the frame at the capture clock
                place = self._clock
                self._estimates.clear()
            delay = dac - (self._adc_next + (place - self._clock) / self._rate)
            if delay < 0:
                # the frame would land after its own echo: leave it out, which brings the
                # next frames 10 ms earlier (happens when the playout clock runs faster)
                continue
            apm.process_reverse_stream(AudioFrame(block.tobytes(), rate, 1, step))
            self.reverse_frames += 1
            self._far_end = place + capture_step
            self._estimates.append(delay)
        if self._estimates:
            delay_ms = min(round(float(np.median(self._estimates)) * 1000), _MAX_APM_DELAY_MS)
            if self.delay_ms is None or abs(delay_ms - self.delay_ms) >= _DELAY_HINT_STEP_MS:
                apm.set_stream_delay_ms(delay_ms)
                self.delay_ms = delay_ms
