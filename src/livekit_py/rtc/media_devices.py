"""``MediaDevices``: microphone capture into an :class:`AudioSource`, speaker playback of tracks.

Device I/O goes through a small *audio backend* (``AudioBackend``).  The default backend
is built on the optional ``sounddevice`` package (PortAudio), installed with
``pip install livekit-py[devices]``; importing this module never needs it.  Another backend
can be installed with :func:`set_audio_backend`, e.g. a synthetic one in tests or on
machines without sound cards.

The machinery (backends, the capture processing thread, the playback jitter buffers and
mixing, and how the threads hand audio over) lives in :mod:`livekit_py.media.devices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validate import check_int
from ..log import get_logger
from ..media.devices.backend import (
    AudioBackend,
    AudioDeviceStream,
    Samples,
    SoundDeviceBackend,
    close_stream,
    get_audio_backend,
    set_audio_backend,
    time_delta,
)
from ..media.devices.capture import CaptureProcessor
from ..media.devices.playback import JitterBuffer, mix
from ..media.devices.threads import run_in_thread
from .apm import AudioProcessingModule, supports_sample_rate
from .audio_frame import AudioFrame
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

#: a clock: seconds, monotonic (``time.monotonic`` by default)
Clock = Callable[[], float]

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_CHANNELS = 1
DEFAULT_BLOCKSIZE = 4800  # 100 ms at 48 kHz

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
        clock: Clock = time.monotonic,
    ) -> None:
        self._devices = devices
        self._loop = loop
        self._clock = clock
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
        self._processor = CaptureProcessor(
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
            self._processor.abandon()
            with contextlib.suppress(Exception):
                self.input_stream.close()
            raise

    @property
    def _reverse_processor(self) -> CaptureProcessor | None:
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
        lag = time_delta(time_info, "currentTime", "inputBufferAdcTime")
        self._processor.put_captured(samples, self._clock() - lag)

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
        await run_in_thread(
            lambda: close_stream(self.input_stream), "livekit_py MediaDevices input stop"
        )
        await self._processor.stop()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._frames.clear()
        await self.source.aclose()


@dataclass
class _PlayerTrack:
    track: Track
    stream: AudioStream
    buffer: JitterBuffer
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
        clock: Clock = time.monotonic,
    ) -> None:
        self._devices = devices
        self._loop = loop
        self._clock = clock
        self._rate = sample_rate
        self._channels = num_channels
        block = blocksize or round(sample_rate * _VARIABLE_BLOCK)
        self._prime = block + round(sample_rate * _PRIME_MARGIN)
        self._limit = self._prime + block + round(sample_rate * _OVERFLOW_MARGIN)
        self._tracks: list[_PlayerTrack] = []
        # what the callback mixes: replaced (never mutated) on the loop, read by the thread
        self._buffers: tuple[JitterBuffer, ...] = ()
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
        buffer = JitterBuffer(self._channels, self._prime, self._limit)
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
            await run_in_thread(
                lambda: close_stream(self._stream), "livekit_py MediaDevices output stop"
            )
        finally:
            # after the stream stopped: every block played was given to the echo canceller
            self._devices._player_stopped(self)
        entries, self._tracks, self._buffers = self._tracks, [], ()
        for entry in entries:
            await self._dispose(entry)

    async def _read(self, stream: AudioStream, buffer: JitterBuffer) -> None:
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
            played = mix(self._buffers, frames, self._channels, outdata)
            processors = self._devices._reverse_processors(self)
            if processors:
                lead = time_delta(time_info, "outputBufferDacTime", "currentTime")
                dac_time = self._clock() + lead
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
        clock: Clock = time.monotonic,
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
            clock: The clock (seconds, monotonic) on which the capture time of each
                captured block and the playout time of each played block are taken, for
                the echo canceller's delay hint; the callbacks' time information is
                relative to it.  ``time.monotonic`` unless a test drives time itself.

        Raises:
            ImportError: If no audio backend was installed and ``sounddevice`` is not
                available (``pip install livekit-py[devices]``).
            ValueError: If a rate, the channel count or the block size is out of range.
            TypeError: If ``clock`` is not callable.
        """
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        self._clock = clock
        self._in_rate = check_int("input_sample_rate", input_sample_rate, minimum=1)
        self._out_rate = check_int("output_sample_rate", output_sample_rate, minimum=1)
        self._channels = check_int("num_channels", num_channels, minimum=1)
        self._blocksize = check_int("blocksize", blocksize, minimum=0)
        self._loop = loop
        self._backend = get_audio_backend()
        self._captures: list[InputCapture] = []
        self._players: list[OutputPlayer] = []  # started and open, in start order
        # per player, the processors its audio feeds (only the first started player feeds)
        self._reverse: tuple[CaptureProcessor, ...] = ()

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
                sample rate the APM does not take (see ``AudioProcessingModule``), or more
                than 2 channels.
            RuntimeError: If there is no event loop to run on.
        """
        check_int("queue_capacity", queue_capacity, minimum=1)
        if input_channel_index is not None:
            check_int("input_channel_index", input_channel_index, minimum=0)
            self._check_device_channels(input_device, input_channel_index + 1)
        if self._channels > 2:
            raise ValueError(f"audio capture takes 1 or 2 channels, not {self._channels}")
        apm: AudioProcessingModule | None = None
        if enable_aec or noise_suppression or high_pass_filter or auto_gain_control:
            if not supports_sample_rate(self._in_rate):
                raise ValueError(
                    f"audio processing takes rates that are multiples of 100 Hz from 8000 to "
                    f"384000 Hz (e.g. 16000, 44100 or 48000), not {self._in_rate} Hz: choose "
                    "another input_sample_rate or turn every processing feature off"
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
            clock=self._clock,
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
            clock=self._clock,
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

    def _reverse_processors(self, player: OutputPlayer) -> tuple[CaptureProcessor, ...]:
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
