"""``MediaDevices``: microphone capture into an :class:`AudioSource`, speaker playback of tracks.

Device I/O goes through a small *audio backend* (see :class:`AudioBackend`).  The default
backend is built on the optional ``sounddevice`` package (PortAudio), installed with
``pip install livekit-py[devices]``; importing this module never needs it.  Another backend
can be installed with :func:`set_audio_backend`, e.g. a synthetic one in tests or on
machines without sound cards.

Threads and data flow
---------------------

* The backend calls the stream callbacks on its own audio threads.  They only copy the
  samples and hand them over (a lock-free queue put); they never wait for the event loop.
* Each :class:`InputCapture` has one processing thread.  It cuts the captured audio into
  10 ms frames, runs them through the :class:`AudioProcessingModule` (high-pass filter, echo
  canceller, noise suppressor, gain control), and passes the processed frames to the event
  loop with ``loop.call_soon_threadsafe``.  A task on the loop then gives them to
  :meth:`AudioSource.capture_frame`.
* An :class:`OutputPlayer` reads every added track through an :class:`AudioStream` (one
  task per track) into a per-track jitter buffer.  The output callback mixes the buffers
  into the device block.  The very block that is played is also queued, as the echo
  canceller's reverse (far-end) stream, to the processing thread of every open capture of
  the same :class:`MediaDevices`, with the time it reaches the speaker.  Captured blocks
  carry the time they were captured; from both, the processing thread works out the delay
  hint for the APM (see :class:`_CaptureProcessor`).

The APM is used by the processing thread only, so the capture and reverse streams reach it
in the order the device delivered them, without any lock shared with the audio threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from ..log import get_logger
from .apm import AudioProcessingModule
from .audio_frame import AudioFrame
from .audio_resampler import AudioResampler
from .audio_source import AudioSource
from .audio_stream import AudioStream

if TYPE_CHECKING:
    from .track import Track

__all__ = [
    "AudioBackend",
    "AudioDeviceStream",
    "InputCapture",
    "MediaDevices",
    "OutputPlayer",
    "SoundDeviceBackend",
    "get_audio_backend",
    "set_audio_backend",
]

logger = get_logger("media.media_devices")

Samples = npt.NDArray[np.int16]

#: signature of a stream callback: ``(data, frames, time_info, status)``, as in sounddevice
AudioCallback = Callable[[Samples, int, Any, Any], None]

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_CHANNELS = 1
DEFAULT_BLOCKSIZE = 4800  # 100 ms at 48 kHz

INSTALL_HINT = "pip install livekit-py[devices]"

# sample rates the AudioProcessingModule works at
_APM_RATES = (8000, 16000, 32000, 48000)
_MAX_APM_DELAY_MS = 500
# captured blocks waiting for the processing thread beyond which new blocks are dropped
# (the thread is starved of CPU; better a gap than an ever growing delay)
_MAX_WORKER_BACKLOG = 64
# audio queued in the AudioSource (seconds) beyond which captured frames are dropped, on top
# of two device blocks: keeps the capture latency bounded when the device clock runs faster
# than the event loop's, or the loop stalled
_LATENCY_MARGIN = 0.1
# extra audio (seconds) a track's jitter buffer gathers before its playout starts, on top of
# one device block, and the room it has above that before old audio is dropped
_PRIME_MARGIN = 0.04
_OVERFLOW_MARGIN = 0.2
# device block assumed for jitter buffering when the blocksize is 0 (variable)
_VARIABLE_BLOCK = 0.02
# the echo canceller's far end is realigned when it runs this far (seconds) ahead of the
# capture clock (aec.FarEndBuffer.max_lead)
_FAR_MAX_LEAD = 0.6
# delay estimates (one per reverse frame) whose median is the delay hint, and the change
# (ms) that updates the hint: the canceller ignores smaller moves anyway
_DELAY_ESTIMATES = 25
_DELAY_HINT_STEP_MS = 4
# how long aclose() waits for a device stream or a thread to stop, in seconds
_STOP_TIMEOUT = 5.0


# ---------------------------------------------------------------------------------------
# audio backends


class AudioDeviceStream(Protocol):
    """A device stream made by an :class:`AudioBackend` (a subset of ``sounddevice``'s)."""

    def start(self) -> None:
        """Start calling the callback."""

    def stop(self) -> None:
        """Stop calling the callback; returns once the callback is no longer running."""

    def close(self) -> None:
        """Release the device."""


class AudioBackend(Protocol):
    """Device access used by :class:`MediaDevices`.

    Streams carry ``int16`` samples.  Their ``callback(data, frames, time_info, status)``
    runs on a backend thread with ``data`` shaped ``(frames, channels)``: filled with the
    captured samples for an input stream, to be filled with the samples to play for an
    output stream.  ``time_info`` has the PortAudio attributes ``currentTime``,
    ``inputBufferAdcTime`` and ``outputBufferDacTime`` (seconds, any clock); ``status`` is
    falsy unless something went wrong (an overflow, an underflow).
    """

    def query_devices(self) -> Sequence[Mapping[str, Any]]:
        """Every device, in index order, each with ``name``, ``max_input_channels`` and
        ``max_output_channels`` (and whatever else the backend knows)."""
        ...

    def default_device(self) -> tuple[int | None, int | None]:
        """The indices of the default input and output devices (None when there is none)."""
        ...

    def InputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        """An input (capture) stream, not started yet."""
        ...

    def OutputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        """An output (playback) stream, not started yet."""
        ...


def _import_sounddevice() -> Any:
    """The ``sounddevice`` module, or an ImportError that says how to get it."""
    try:
        import sounddevice
    except ImportError as exc:
        raise ImportError(
            "MediaDevices needs the optional 'sounddevice' package: install it with "
            f"`{INSTALL_HINT}` (or `pip install sounddevice`), or install another audio "
            "backend with livekit_py.rtc.media_devices.set_audio_backend()"
        ) from exc
    except OSError as exc:  # sounddevice is there but the PortAudio library is not
        raise ImportError(
            f"MediaDevices: 'sounddevice' could not load the PortAudio library ({exc}); "
            "install PortAudio (e.g. `apt-get install libportaudio2`) and "
            f"`{INSTALL_HINT}`"
        ) from exc
    return sounddevice


class SoundDeviceBackend:
    """The default :class:`AudioBackend`, on ``sounddevice`` (PortAudio).

    Raises:
        ImportError: On construction, if ``sounddevice`` or PortAudio is not installed.
    """

    def __init__(self) -> None:
        self._sd = _import_sounddevice()

    def query_devices(self) -> Sequence[Mapping[str, Any]]:
        return [dict(device) for device in self._sd.query_devices()]

    def default_device(self) -> tuple[int | None, int | None]:
        return self._default_index("input"), self._default_index("output")

    def _default_index(self, kind: str) -> int | None:
        # sd.default.device is an indexable pair (not a tuple); -1 or None there mean
        # "PortAudio's default", which query_devices(kind=...) resolves
        position = 0 if kind == "input" else 1
        value: Any = None
        with contextlib.suppress(Exception):
            value = self._sd.default.device[position]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        try:
            if isinstance(value, str):
                info = self._sd.query_devices(value, kind=kind)
            else:
                info = self._sd.query_devices(kind=kind)
        except Exception:  # no such device (PortAudioError, ValueError)
            return None
        index = info.get("index") if isinstance(info, Mapping) else None
        if isinstance(index, int) and index >= 0:
            return index
        return None

    def InputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        stream: AudioDeviceStream = self._sd.InputStream(
            samplerate=samplerate,
            blocksize=blocksize,
            device=device,
            channels=channels,
            dtype=dtype,
            callback=callback,
        )
        return stream

    def OutputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        stream: AudioDeviceStream = self._sd.OutputStream(
            samplerate=samplerate,
            blocksize=blocksize,
            device=device,
            channels=channels,
            dtype=dtype,
            callback=callback,
        )
        return stream


_backend: AudioBackend | None = None
_backend_lock = threading.Lock()


def set_audio_backend(backend: AudioBackend | None) -> AudioBackend | None:
    """Install the audio backend used by :class:`MediaDevices` objects created from now on.

    Args:
        backend: The backend, or None to go back to the default (``sounddevice``), which is
            loaded when next needed.

    Returns:
        The backend installed before (None if the default was not loaded yet).
    """
    global _backend
    with _backend_lock:
        previous, _backend = _backend, backend
    return previous


def get_audio_backend() -> AudioBackend:
    """The installed audio backend; the ``sounddevice`` one is loaded on first use.

    Raises:
        ImportError: If no backend was installed and ``sounddevice`` is not available.
    """
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = SoundDeviceBackend()
        return _backend


# ---------------------------------------------------------------------------------------
# helpers


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _time_delta(time_info: Any, later: str, earlier: str) -> float:
    """``time_info.later - time_info.earlier`` in seconds, 0 when unknown or negative."""
    try:
        delta = float(getattr(time_info, later)) - float(getattr(time_info, earlier))
    except (AttributeError, TypeError, ValueError):
        return 0.0
    return delta if 0.0 < delta < 10.0 else 0.0


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def _run_in_thread(function: Callable[[], None], name: str) -> None:
    """Run a blocking call on a short-lived thread of its own and wait for it.

    Used for stopping device streams, which may wait for the device's buffers to drain;
    the event loop keeps running meanwhile.  The thread has ended when this returns
    (unless the call outlives :data:`_STOP_TIMEOUT`).  Failures are logged, not raised:
    closing goes on.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        error: BaseException | None = None
        try:
            function()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, done, error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(asyncio.shield(done), _STOP_TIMEOUT)
    except asyncio.TimeoutError:
        logger.warning("%s did not finish within %.0f s", name, _STOP_TIMEOUT)
        return
    except Exception:
        logger.warning("%s failed", name, exc_info=True)
    thread.join()


def _close_stream(stream: AudioDeviceStream) -> None:
    try:
        stream.stop()
    finally:
        stream.close()


# ---------------------------------------------------------------------------------------
# capture


@dataclass(frozen=True)
class _Captured:
    samples: Samples  # (frames, channels) int16, already in the capture's channel layout
    adc_time: float  # when the first sample was captured (time.monotonic() clock)


@dataclass(frozen=True)
class _Rendered:
    samples: Samples  # (frames,) int16 mono, what the speaker plays
    sample_rate: int
    dac_time: float  # when the first sample reaches the speaker (time.monotonic() clock)


class _RenderStopped:
    """The player feeding the reverse stream stopped."""


_STOP = object()


class _CaptureProcessor:
    """The processing thread of one :class:`InputCapture`.

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
    taken on ``time.monotonic()``.
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
        self._items.put(_Captured(samples, adc_time))

    def put_rendered(self, samples: Samples, sample_rate: int, dac_time: float) -> None:
        if self._items.qsize() > 2 * _MAX_WORKER_BACKLOG:
            self._render_gap = True
            return
        self._items.put(_Rendered(samples, sample_rate, dac_time))

    # called on the event loop

    def render_stopped(self) -> None:
        self._items.put(_RenderStopped())

    async def stop(self) -> None:
        """Finish the queued work and end the thread."""
        if not self._thread.is_alive():
            return
        self._items.put(_STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), _STOP_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning("capture processing thread did not stop within %.0f s", _STOP_TIMEOUT)
            return
        self._thread.join()

    # the thread

    def _run(self) -> None:
        try:
            while True:
                item = self._items.get()
                if item is _STOP:
                    break
                try:
                    if isinstance(item, _Captured):
                        self._process_captured(item)
                    elif isinstance(item, _Rendered):
                        self._process_rendered(item)
                    elif isinstance(item, _RenderStopped):
                        self._restart_render()
                except Exception:
                    self._failures += 1
                    if self._failures == 1 or self._failures % 100 == 0:
                        logger.exception(
                            "MediaDevices: audio processing failed (%d time(s))", self._failures
                        )
        finally:
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(_settle, self.finished, None)

    def _process_captured(self, item: _Captured) -> None:
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

    def _process_rendered(self, item: _Rendered) -> None:
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
        if rate not in _APM_RATES:
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


class InputCapture:
    """An open audio input: the device's audio, processed, flows into :attr:`source`.

    Made by :meth:`MediaDevices.open_input`.  Publish :attr:`source` with
    ``LocalAudioTrack.create_audio_track(name, capture.source)``; call :meth:`aclose` to
    stop capturing.

    Attributes:
        source: The :class:`AudioSource` receiving the captured 10 ms frames.
        input_stream: The backend's input stream (a ``sounddevice.InputStream`` by default).
        task: The task giving captured frames to :attr:`source`.
        apm: The :class:`AudioProcessingModule` applied to the captured audio, or None when
            every processing feature is off.
    """

    def __init__(
        self,
        *,
        devices: MediaDevices,
        loop: asyncio.AbstractEventLoop,
        backend: AudioBackend,
        sample_rate: int,
        num_channels: int,
        blocksize: int,
        apm: AudioProcessingModule | None,
        echo_cancellation: bool,
        input_device: int | None,
        queue_capacity: int,
        input_channel_index: int | None,
    ) -> None:
        self._devices = devices
        self._loop = loop
        self._rate = sample_rate
        self._channels = num_channels
        self._channel_index = input_channel_index
        self.apm = apm
        self.source = AudioSource(sample_rate, num_channels, loop=loop)
        self._capacity = queue_capacity
        self._frames: deque[AudioFrame] = deque()
        self._arrived = asyncio.Event()
        block_seconds = (blocksize or sample_rate * _VARIABLE_BLOCK) / sample_rate
        # frames gathered before the source starts (or restarts after running dry): the
        # device delivers a whole block at a time, the source plays 10 ms at a time
        self._prime_frames = min(queue_capacity, round((block_seconds + _PRIME_MARGIN) * 100))
        self._max_latency = 2 * block_seconds + _LATENCY_MARGIN
        self._queue_drops = 0
        self._latency_drops = 0
        self._overflows = 0
        self._closed = False
        self._processor = _CaptureProcessor(
            loop=loop,
            sample_rate=sample_rate,
            num_channels=num_channels,
            apm=apm,
            echo_cancellation=echo_cancellation,
            deliver=self._on_frames,
        )
        device_channels = num_channels if input_channel_index is None else input_channel_index + 1
        self.input_stream: AudioDeviceStream = backend.InputStream(
            samplerate=sample_rate,
            blocksize=blocksize,
            device=input_device,
            channels=device_channels,
            dtype="int16",
            callback=self._callback,
        )
        self._processor.start()
        self.task: asyncio.Task[None] = loop.create_task(
            self._pump(), name="MediaDevices input capture"
        )
        try:
            self.input_stream.start()
        except BaseException:
            self._closed = True
            self.task.cancel()
            self._processor._items.put(_STOP)
            with contextlib.suppress(Exception):
                self.input_stream.close()
            raise

    @property
    def _reverse_processor(self) -> _CaptureProcessor | None:
        """The processor to feed with played audio, if it cancels echo."""
        if self._closed or not self._processor.wants_reverse:
            return None
        return self._processor

    def _callback(self, indata: Samples, frames: int, time_info: Any, status: Any) -> None:
        """The input stream callback (backend audio thread): copy and hand over."""
        if status:
            self._overflows += 1
        index = self._channel_index
        if index is None:
            samples = np.array(indata[:frames], dtype=np.int16, copy=True)
        else:
            column = np.asarray(indata[:frames, index], dtype=np.int16)
            samples = np.repeat(column[:, None], self._channels, axis=1)
        lag = _time_delta(time_info, "currentTime", "inputBufferAdcTime")
        self._processor.put_captured(samples, time.monotonic() - lag)

    def _on_frames(self, frames: list[AudioFrame]) -> None:
        """Processed frames arrive on the event loop."""
        if self._closed:
            return
        self._frames.extend(frames)
        excess = len(self._frames) - self._capacity
        if excess > 0:
            for _ in range(excess):
                self._frames.popleft()  # the oldest go: keep the latency low
            before, self._queue_drops = self._queue_drops, self._queue_drops + excess
            if before == 0 or before // 500 != self._queue_drops // 500:
                logger.warning(
                    "MediaDevices: the capture queue is full, %d frame(s) dropped so far",
                    self._queue_drops,
                )
        self._arrived.set()

    async def _wait_for_frames(self, count: int) -> None:
        while len(self._frames) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def _pump(self) -> None:
        source = self.source
        while True:
            await self._wait_for_frames(1)
            if source.queued_duration == 0:
                # the source is dry (start, or the device fell behind): gather a cushion
                # first, or it would run dry again before the device's next block; what
                # came in beyond the cushion (the device delivers whole blocks) is dropped,
                # as it would only add latency
                await self._wait_for_frames(self._prime_frames)
                for _ in range(len(self._frames) - self._prime_frames):
                    self._frames.popleft()
            frame = self._frames.popleft()
            if source.queued_duration > self._max_latency:
                self._latency_drops += 1
                if self._latency_drops == 1 or self._latency_drops % 500 == 0:
                    logger.debug(
                        "MediaDevices: capture runs ahead of playout, %d frame(s) dropped",
                        self._latency_drops,
                    )
                continue
            try:
                await source.capture_frame(frame)
            except Exception:
                logger.exception("MediaDevices: cannot capture a frame into the AudioSource")

    async def aclose(self) -> None:
        """Stop capturing: the device stream, the processing thread and the task end.

        The :attr:`source` is closed as well, which ends the tracks made from it.
        """
        if self._closed:
            return
        self._closed = True
        self._devices._capture_closed(self)
        await _run_in_thread(
            lambda: _close_stream(self.input_stream), "livekit_py MediaDevices input stop"
        )
        await self._processor.stop()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._frames.clear()
        await self.source.aclose()


# ---------------------------------------------------------------------------------------
# playback


class _JitterBuffer:
    """Audio of one track waiting to be played: filled on the loop, drained by the device.

    Playout starts (and restarts after running dry) once ``prime`` samples are buffered, so
    that the device's large blocks do not find it half empty; beyond ``limit`` samples the
    oldest audio is dropped down to ``prime``.
    """

    def __init__(self, num_channels: int, prime: int, limit: int) -> None:
        self._lock = threading.Lock()
        self._channels = num_channels
        self._prime = prime
        self._limit = limit
        self._chunks: deque[Samples] = deque()
        self._size = 0
        self._playing = False
        self._ended = False
        self.dropped = 0  # samples dropped on overflow
        self.underruns = 0

    def push(self, samples: Samples) -> None:
        with self._lock:
            self._chunks.append(samples)
            self._size += samples.shape[0]
            if self._size > self._limit:
                self._drop_locked(self._size - self._prime)

    def end(self) -> None:
        with self._lock:
            self._ended = True

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0
            self._playing = False

    def _drop_locked(self, count: int) -> None:
        self.dropped += count
        while count > 0 and self._chunks:
            head = self._chunks[0]
            if head.shape[0] <= count:
                self._chunks.popleft()
                count -= head.shape[0]
                self._size -= head.shape[0]
            else:
                self._chunks[0] = head[count:]
                self._size -= count
                count = 0

    def take(self, count: int) -> Samples | None:
        """Up to ``count`` samples to play now (None while priming or empty)."""
        with self._lock:
            if not self._playing:
                if self._size >= self._prime or (self._ended and self._size > 0):
                    self._playing = True
                else:
                    return None
            pieces: list[Samples] = []
            needed = count
            while needed > 0 and self._chunks:
                head = self._chunks[0]
                if head.shape[0] <= needed:
                    pieces.append(self._chunks.popleft())
                    needed -= head.shape[0]
                else:
                    pieces.append(head[:needed])
                    self._chunks[0] = head[needed:]
                    needed = 0
            self._size -= count - needed
            if needed and not self._ended:
                self._playing = False  # ran dry: gather a prime's worth again
                self.underruns += 1
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


@dataclass
class _PlayerTrack:
    track: Track
    stream: AudioStream
    buffer: _JitterBuffer
    reader: asyncio.Task[None]


class OutputPlayer:
    """Plays audio tracks on an output device, mixed together.

    Made by :meth:`MediaDevices.open_output`.  Add tracks with :meth:`add_track` (before
    or after :meth:`start`), start the device with :meth:`start`, stop everything with
    :meth:`aclose`.  Each track is read through an :class:`AudioStream` into a small
    jitter buffer; the device callback mixes the buffers (int16, clipped).  While an
    :class:`InputCapture` of the same :class:`MediaDevices` with echo cancellation is open,
    the mixed audio is also given to its APM as the reverse stream.
    """

    def __init__(
        self,
        *,
        devices: MediaDevices,
        loop: asyncio.AbstractEventLoop,
        backend: AudioBackend,
        sample_rate: int,
        num_channels: int,
        blocksize: int,
        output_device: int | None,
    ) -> None:
        self._devices = devices
        self._loop = loop
        self._rate = sample_rate
        self._channels = num_channels
        block = blocksize or round(sample_rate * _VARIABLE_BLOCK)
        self._prime = block + round(sample_rate * _PRIME_MARGIN)
        self._limit = self._prime + block + round(sample_rate * _OVERFLOW_MARGIN)
        self._tracks: list[_PlayerTrack] = []
        # what the callback mixes: replaced (never mutated) on the loop, read by the thread
        self._buffers: tuple[_JitterBuffer, ...] = ()
        self._started = False
        self._closed = False
        self._callback_error: BaseException | None = None
        self.underflows = 0
        self._stream: AudioDeviceStream = backend.OutputStream(
            samplerate=sample_rate,
            blocksize=blocksize,
            device=output_device,
            channels=num_channels,
            dtype="int16",
            callback=self._callback,
        )

    @property
    def output_stream(self) -> AudioDeviceStream:
        """The backend's output stream (a ``sounddevice.OutputStream`` by default)."""
        return self._stream

    def _find(self, track: Track) -> _PlayerTrack | None:
        sid = getattr(track, "sid", "")
        for entry in self._tracks:
            if entry.track is track or (sid and entry.track.sid == sid):
                return entry
        return None

    async def add_track(self, track: Track) -> None:
        """Start playing an audio track (a remote one, typically), mixed with the others.

        Audio arrives at the device once :meth:`start` was called.

        Raises:
            ValueError: If the track is not an audio track or was already added.
            RuntimeError: If the player is closed.
        """
        if self._closed:
            raise RuntimeError("the OutputPlayer is closed")
        if self._find(track) is not None:
            raise ValueError(f"track {track.sid or track!r} was already added to the player")
        stream = AudioStream(
            track, loop=self._loop, sample_rate=self._rate, num_channels=self._channels
        )
        buffer = _JitterBuffer(self._channels, self._prime, self._limit)
        reader = self._loop.create_task(
            self._read(stream, buffer), name="MediaDevices output track reader"
        )
        self._tracks.append(_PlayerTrack(track, stream, buffer, reader))
        self._buffers = (*self._buffers, buffer)

    async def remove_track(self, track: Track) -> None:
        """Stop playing a track; unknown tracks are ignored."""
        entry = self._find(track)
        if entry is None:
            return
        self._tracks.remove(entry)
        self._buffers = tuple(b for b in self._buffers if b is not entry.buffer)
        await self._dispose(entry)

    async def start(self) -> None:
        """Start the output device: the added tracks (and those added later) play.

        Raises:
            RuntimeError: If playback was already started or the player is closed.
        """
        if self._closed:
            raise RuntimeError("the OutputPlayer is closed")
        if self._started:
            raise RuntimeError("Playback already started")
        for buffer in self._buffers:
            buffer.clear()  # what came in before start is stale
        self._started = True
        self._devices._player_started(self)
        try:
            self._stream.start()
        except BaseException:
            self._started = False
            self._devices._player_stopped(self)
            raise

    async def aclose(self) -> None:
        """Stop playback, close the device stream and every track's stream."""
        if self._closed:
            return
        self._closed = True
        self._started = False
        try:
            await _run_in_thread(
                lambda: _close_stream(self._stream), "livekit_py MediaDevices output stop"
            )
        finally:
            # after the stream stopped: every block played was given to the echo canceller
            self._devices._player_stopped(self)
        entries, self._tracks, self._buffers = self._tracks, [], ()
        for entry in entries:
            await self._dispose(entry)

    async def _read(self, stream: AudioStream, buffer: _JitterBuffer) -> None:
        channels = self._channels
        try:
            async for event in stream:
                if not self._started:
                    continue  # not playing: nothing to keep
                frame = event.frame
                count = frame.samples_per_channel * channels
                samples = np.frombuffer(frame.data, dtype=np.int16, count=count)
                buffer.push(samples.reshape(-1, channels))
        finally:
            buffer.end()

    @staticmethod
    async def _dispose(entry: _PlayerTrack) -> None:
        entry.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await entry.reader
        await entry.stream.aclose()

    def _callback(self, outdata: Samples, frames: int, time_info: Any, status: Any) -> None:
        """The output stream callback (backend audio thread): mix, play, feed the APM."""
        if status:
            self.underflows += 1
        try:
            mix: npt.NDArray[np.int32] | None = None
            for buffer in self._buffers:
                samples = buffer.take(frames)
                if samples is None:
                    continue
                if mix is None:
                    mix = np.zeros((frames, self._channels), dtype=np.int32)
                mix[: samples.shape[0]] += samples
            if mix is None:
                outdata.fill(0)
                played: Samples = np.zeros(frames, dtype=np.int16)
            else:
                np.clip(mix, -32768, 32767, out=mix)
                outdata[:frames] = mix
                if self._channels == 1:
                    played = mix[:, 0].astype(np.int16)
                else:
                    played = mix.mean(axis=1).astype(np.int16)
            processors = self._devices._reverse_processors(self)
            if processors:
                lead = _time_delta(time_info, "outputBufferDacTime", "currentTime")
                dac_time = time.monotonic() + lead
                for processor in processors:
                    processor.put_rendered(played, self._rate, dac_time)
        except Exception as exc:  # never let the device thread die; report on the loop
            outdata.fill(0)
            if self._callback_error is None:
                self._callback_error = exc
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(
                        logger.error, "OutputPlayer: the output callback failed: %r", exc
                    )


# ---------------------------------------------------------------------------------------
# MediaDevices


class MediaDevices:
    """Audio devices for LiveKit: enumerate them, capture a microphone, play tracks.

    * :meth:`open_input` captures an input device into an :class:`AudioSource`, processed
      by an :class:`AudioProcessingModule` in 10 ms frames (echo cancellation, noise
      suppression, high-pass filter, gain control, each optional).
    * :meth:`open_output` returns an :class:`OutputPlayer` that mixes and plays tracks.
      What it plays is the echo canceller's reverse stream for the open inputs of the same
      ``MediaDevices`` (the player started first, when several play), with a delay hint
      worked out from the devices' timing information.

    Devices are reached through the installed audio backend (``sounddevice`` by default,
    the optional dependency ``pip install livekit-py[devices]``).
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        input_sample_rate: int = DEFAULT_SAMPLE_RATE,
        output_sample_rate: int = DEFAULT_SAMPLE_RATE,
        num_channels: int = DEFAULT_CHANNELS,
        blocksize: int = DEFAULT_BLOCKSIZE,
    ) -> None:
        """Set up device access.

        Args:
            loop: The event loop captures and players run on; the running loop (at the
                time of :meth:`open_input` / :meth:`open_output`) when omitted.
            input_sample_rate: Sample rate of captured audio, in Hz.
            output_sample_rate: Sample rate of played audio, in Hz.
            num_channels: Channels of captured and played audio.
            blocksize: Samples per channel in each device callback (0: the backend's
                choice, possibly varying).

        Raises:
            ImportError: If no audio backend was installed and ``sounddevice`` is not
                available (``pip install livekit-py[devices]``).
            ValueError: If a rate, the channel count or the block size is out of range.
        """
        self._in_rate = _check_int("input_sample_rate", input_sample_rate, 1)
        self._out_rate = _check_int("output_sample_rate", output_sample_rate, 1)
        self._channels = _check_int("num_channels", num_channels, 1)
        self._blocksize = _check_int("blocksize", blocksize, 0)
        self._loop = loop
        self._backend = get_audio_backend()
        self._captures: list[InputCapture] = []
        self._players: list[OutputPlayer] = []  # started and open, in start order
        # per player, the processors its audio feeds (only the first started player feeds)
        self._reverse: tuple[_CaptureProcessor, ...] = ()

    # ------------------------------------------------------------------ enumeration

    def list_input_devices(self) -> list[dict[str, Any]]:
        """The devices that can capture, each a dict of its properties plus ``index``."""
        return [
            {**dict(device), "index": index}
            for index, device in enumerate(self._backend.query_devices())
            if int(device.get("max_input_channels", 0) or 0) > 0
        ]

    def list_output_devices(self) -> list[dict[str, Any]]:
        """The devices that can play, each a dict of its properties plus ``index``."""
        return [
            {**dict(device), "index": index}
            for index, device in enumerate(self._backend.query_devices())
            if int(device.get("max_output_channels", 0) or 0) > 0
        ]

    def default_input_device(self) -> int | None:
        """The index of the default input device, or None."""
        return self._backend.default_device()[0]

    def default_output_device(self) -> int | None:
        """The index of the default output device, or None."""
        return self._backend.default_device()[1]

    # ------------------------------------------------------------------ capture / playback

    def _get_loop(self, what: str) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"MediaDevices.{what}() needs a running event loop (or MediaDevices(loop=...))"
            ) from None

    def open_input(
        self,
        *,
        enable_aec: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        auto_gain_control: bool = True,
        input_device: int | None = None,
        queue_capacity: int = 50,
        input_channel_index: int | None = None,
    ) -> InputCapture:
        """Start capturing an input device into a new :class:`AudioSource`.

        The audio is cut into 10 ms frames and, when any processing feature is on, run
        through an :class:`AudioProcessingModule` before it reaches the source.  Echo
        cancellation uses what an :class:`OutputPlayer` of this object plays (opened
        before or after this input).

        Args:
            enable_aec: Cancel the echo of the audio played by :meth:`open_output` players.
            noise_suppression: Reduce stationary background noise.
            high_pass_filter: Remove rumble and hum below ~100 Hz.
            auto_gain_control: Level the voice.
            input_device: Index of the device; the default input device when None.
            queue_capacity: Processed frames (10 ms each) that may wait for the source;
                beyond, the oldest are dropped.
            input_channel_index: Capture only this channel (zero-based) of the device,
                used as mono (copied to every channel of the source).

        Returns:
            The :class:`InputCapture`; its ``source`` receives the audio.

        Raises:
            ValueError: If an argument is out of range, e.g. a processing feature with a
                sample rate other than 8, 16, 32 or 48 kHz, or more than 2 channels.
            RuntimeError: If there is no event loop to run on.
        """
        _check_int("queue_capacity", queue_capacity, 1)
        if input_channel_index is not None:
            _check_int("input_channel_index", input_channel_index, 0)
            self._check_device_channels(input_device, input_channel_index + 1)
        if self._channels > 2:
            raise ValueError(f"audio capture takes 1 or 2 channels, not {self._channels}")
        apm: AudioProcessingModule | None = None
        if enable_aec or noise_suppression or high_pass_filter or auto_gain_control:
            if self._in_rate not in _APM_RATES:
                raise ValueError(
                    f"audio processing works at 8000, 16000, 32000 or 48000 Hz, not "
                    f"{self._in_rate} Hz: choose one of those as input_sample_rate or turn "
                    "every processing feature off"
                )
            apm = AudioProcessingModule(
                echo_cancellation=enable_aec,
                noise_suppression=noise_suppression,
                high_pass_filter=high_pass_filter,
                auto_gain_control=auto_gain_control,
            )
        capture = InputCapture(
            devices=self,
            loop=self._get_loop("open_input"),
            backend=self._backend,
            sample_rate=self._in_rate,
            num_channels=self._channels,
            blocksize=self._blocksize,
            apm=apm,
            echo_cancellation=bool(enable_aec),
            input_device=input_device,
            queue_capacity=queue_capacity,
            input_channel_index=input_channel_index,
        )
        self._captures.append(capture)
        self._update_reverse()
        return capture

    def open_output(self, *, output_device: int | None = None) -> OutputPlayer:
        """Open an output device for playing tracks.

        Args:
            output_device: Index of the device; the default output device when None.

        Returns:
            The :class:`OutputPlayer`; add tracks and call ``start()``.
        """
        return OutputPlayer(
            devices=self,
            loop=self._get_loop("open_output"),
            backend=self._backend,
            sample_rate=self._out_rate,
            num_channels=self._channels,
            blocksize=self._blocksize,
            output_device=output_device,
        )

    # ------------------------------------------------------------------ internals

    def _check_device_channels(self, device: int | None, needed: int) -> None:
        """Refuse a channel the device does not have (when the backend says how many)."""
        index = device if device is not None else self.default_input_device()
        if index is None:
            return
        devices = self._backend.query_devices()
        if not 0 <= index < len(devices):
            return
        available = devices[index].get("max_input_channels")
        if isinstance(available, int) and 0 < available < needed:
            raise ValueError(
                f"input_channel_index {needed - 1} is out of range: input device {index} has "
                f"{available} channel(s)"
            )

    def _update_reverse(self) -> None:
        processors = (capture._reverse_processor for capture in self._captures)
        self._reverse = tuple(p for p in processors if p is not None)

    def _reverse_processors(self, player: OutputPlayer) -> tuple[_CaptureProcessor, ...]:
        """What ``player``'s callback feeds (audio thread: reads immutable snapshots)."""
        players = self._players
        if not players or players[0] is not player:
            return ()
        return self._reverse

    def _capture_closed(self, capture: InputCapture) -> None:
        if capture in self._captures:
            self._captures.remove(capture)
        self._update_reverse()

    def _player_started(self, player: OutputPlayer) -> None:
        if player not in self._players:
            self._players = [*self._players, player]

    def _player_stopped(self, player: OutputPlayer) -> None:
        if player not in self._players:
            return
        was_feeding = self._players[0] is player
        self._players = [p for p in self._players if p is not player]
        if was_feeding:
            for processor in self._reverse:
                processor.render_stopped()
