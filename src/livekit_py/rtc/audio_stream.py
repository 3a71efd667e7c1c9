"""``AudioStream``: the audio of a track as an async iterator of fixed-size PCM frames."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import av
import numpy as np
import numpy.typing as npt

from .._validate import check_int
from ..log import get_logger
from ..media.frame_source import AVFrame, FrameFanout, fanout_of
from ..session.ports import FollowsTracks
from ..types import TrackKind
from .audio_filter import registered_filter
from .audio_frame import AudioFrame
from .audio_resampler import AudioResampler, AudioResamplerQuality
from .frame_processor import FrameProcessor

if TYPE_CHECKING:
    from .apm import AudioProcessingModule
    from .participant import Participant
    from .track import Track

__all__ = [
    "AudioFrameEvent",
    "AudioProcessorLike",
    "AudioStream",
    "NoiseCancellationLike",
    "NoiseCancellation",
    "NoiseCancellationOptions",
]

logger = get_logger("media.audio_stream")


@dataclass
class NoiseCancellationOptions:
    """Selects an audio filter module by id, with module-specific options."""

    module_id: str
    options: dict[str, Any]


@runtime_checkable
class NoiseCancellationLike(Protocol):
    """What a noise-cancellation plugin hands out to name its filter: a module id and
    options, as :class:`NoiseCancellationOptions` (the official SDK's class, which
    LiveKit's noise-cancellation package returns from ``NC()``/``BVC()``, matches too)."""

    @property
    def module_id(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


@runtime_checkable
class AudioProcessorLike(Protocol):
    """A frame processor by its methods: a :class:`FrameProcessor`, or a processor built
    on the official SDK's ``FrameProcessor`` class."""

    @property
    def enabled(self) -> bool: ...

    def _process(self, frame: AudioFrame) -> AudioFrame: ...

    def _close(self) -> None: ...


#: what ``noise_cancellation=`` takes
NoiseCancellation = (
    NoiseCancellationOptions
    | FrameProcessor[AudioFrame]
    | NoiseCancellationLike
    | AudioProcessorLike
)


def _warn_substitute(options: NoiseCancellationLike) -> None:
    """Say, once per stream, that the filter module is replaced by our suppressor."""
    module_id = str(options.module_id)
    registered = registered_filter(module_id)
    where = f" from {os.path.basename(registered.path)}" if registered is not None else ""
    model = ""
    model_path = options.options.get("modelPath") if isinstance(options.options, Mapping) else None
    if isinstance(model_path, str) and model_path:
        model = f", model {os.path.basename(model_path)}"
    logger.warning(
        "noise cancellation module %r%s%s is a native plugin, which livekit_py (pure Python) "
        "cannot run: livekit_py's own noise suppression (stationary noise; it does not "
        "remove background voices) is applied to this stream instead",
        module_id,
        where,
        model,
    )


def _noise_cancellation(
    value: object,
) -> tuple[AudioProcessorLike | None, NoiseCancellationLike | None]:
    """Sort ``noise_cancellation=`` into (frame processor, filter options)."""
    if value is None:
        return None, None
    if isinstance(value, FrameProcessor):
        return value, None
    if isinstance(value, NoiseCancellationOptions):
        return None, value
    if isinstance(value, AudioProcessorLike):
        return value, None
    if isinstance(value, NoiseCancellationLike) and isinstance(value.module_id, str):
        return None, value
    raise ValueError(
        "noise_cancellation must be NoiseCancellationOptions (or an object with module_id "
        "and options, as noise-cancellation plugins hand out), a FrameProcessor (or an "
        "object with enabled, _process and _close) or None, got "
        f"{type(value).__name__}"
    )


@dataclass
class AudioFrameEvent:
    """What an audio stream yields: one received frame."""

    frame: AudioFrame


Samples = npt.NDArray[np.int16]

# rates the noise suppressor works at; other output rates are denoised at 48 kHz
_APM_RATES = (8000, 16000, 32000, 48000)
_APM_FALLBACK_RATE = 48000


def _to_int16(frame: av.AudioFrame, out_channels: int) -> Samples:
    """The frame's samples as int16, shaped (samples, out_channels), remixed if needed.

    Mono is copied to every output channel; mono output averages all input channels;
    otherwise output channel ``i`` takes input channel ``i`` modulo the input count.
    """
    channels = frame.layout.nb_channels
    count = frame.samples
    raw: npt.NDArray[Any] = frame.to_ndarray()
    data = raw.T if frame.format.is_planar else raw.reshape(count, channels)
    pcm: Samples
    if data.dtype == np.int16:
        pcm = data
    elif data.dtype.kind == "f":
        pcm = np.clip(np.rint(data * 32768.0), -32768, 32767).astype(np.int16)
    elif data.dtype == np.int32:
        pcm = (data.astype(np.int32) >> 16).astype(np.int16)
    elif data.dtype == np.uint8:
        pcm = ((data.astype(np.int16) - 128) << 8).astype(np.int16)
    else:
        raise ValueError(f"unsupported audio sample format {frame.format.name!r}")

    out: Samples
    if channels == out_channels:
        out = np.ascontiguousarray(pcm, dtype=np.int16)
    elif out_channels == 1:
        mixed = np.rint(pcm.mean(axis=1, dtype=np.float64))
        out = mixed.astype(np.int16).reshape(count, 1)
    else:
        index = np.arange(out_channels) % channels
        out = np.ascontiguousarray(pcm[:, index], dtype=np.int16)
    return out


class _RateStage:
    """Streaming rate conversion of (samples, channels) int16 blocks; the input rate may
    change between blocks (the conversion then starts over)."""

    def __init__(self, output_rate: int, num_channels: int) -> None:
        self._output_rate = output_rate
        self._num_channels = num_channels
        self._input_rate = 0
        self._resampler: AudioResampler | None = None

    def push(self, samples: Samples, input_rate: int) -> list[Samples]:
        out: list[Samples] = []
        if input_rate != self._input_rate:
            out.extend(self.flush())
            self._input_rate = input_rate
            self._resampler = None
            if input_rate != self._output_rate:
                self._resampler = AudioResampler(
                    input_rate,
                    self._output_rate,
                    num_channels=self._num_channels,
                    quality=AudioResamplerQuality.MEDIUM,
                )
        if self._resampler is None:
            out.append(samples)
        else:
            out.extend(self._arrays(self._resampler.push(bytearray(samples.reshape(-1)))))
        return out

    def flush(self) -> list[Samples]:
        if self._resampler is None:
            return []
        return self._arrays(self._resampler.flush())

    def _arrays(self, frames: list[AudioFrame]) -> list[Samples]:
        return [
            np.frombuffer(frame.data, dtype=np.int16).reshape(-1, self._num_channels)
            for frame in frames
        ]


class _Blocker:
    """Cuts a stream of (samples, channels) blocks into pieces of exactly ``size`` samples."""

    def __init__(self, size: int, num_channels: int) -> None:
        self._size = size
        self._num_channels = num_channels
        self._pending: list[Samples] = []
        self._count = 0

    def push(self, samples: Samples) -> list[Samples]:
        if len(samples):
            self._pending.append(samples)
            self._count += len(samples)
        if self._count < self._size:
            return []
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        whole = (self._count // self._size) * self._size
        rest = joined[whole:].copy()  # not a view of the caller's (or a frame's) memory
        self._pending = [rest] if len(rest) else []
        self._count = len(rest)
        return list(joined[:whole].reshape(-1, self._size, self._num_channels))


class _Denoiser:
    """Our noise suppression (``AudioProcessingModule``) on 10 ms blocks."""

    def __init__(self, sample_rate: int, num_channels: int) -> None:
        try:
            from .apm import AudioProcessingModule
        except ImportError as exc:
            raise RuntimeError(
                "noise_cancellation with NoiseCancellationOptions needs livekit_py's own "
                f"noise suppression (livekit_py.rtc.apm), which cannot be imported: {exc}"
            ) from exc
        self._apm: AudioProcessingModule = AudioProcessingModule(noise_suppression=True)
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._blocker = _Blocker(sample_rate // 100, num_channels)

    def push(self, samples: Samples) -> list[Samples]:
        out: list[Samples] = []
        for block in self._blocker.push(samples):
            frame = AudioFrame(block.tobytes(), self._sample_rate, self._num_channels, len(block))
            self._apm.process_stream(frame)
            out.append(np.frombuffer(frame.data, dtype=np.int16).reshape(-1, self._num_channels))
        return out


class _Converter:
    """Any PyAV audio frames in, int16 frames of the requested shape out, with state."""

    def __init__(
        self, sample_rate: int, num_channels: int, frame_samples: int, *, denoise: bool
    ) -> None:
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        work_rate = sample_rate
        self._denoiser: _Denoiser | None = None
        self._post: _RateStage | None = None
        if denoise:
            if num_channels > 2:
                raise ValueError(
                    f"noise cancellation works on 1 or 2 channels, num_channels is {num_channels}"
                )
            if sample_rate not in _APM_RATES:
                work_rate = _APM_FALLBACK_RATE
                self._post = _RateStage(sample_rate, num_channels)
            self._denoiser = _Denoiser(work_rate, num_channels)
        self._work_rate = work_rate
        self._pre = _RateStage(work_rate, num_channels)
        self._blocker = _Blocker(frame_samples, num_channels)

    def push(self, frame: av.AudioFrame) -> list[AudioFrame]:
        samples = _to_int16(frame, self._num_channels)
        return self._after_pre(self._pre.push(samples, frame.sample_rate))

    def flush(self) -> list[AudioFrame]:
        out = self._after_pre(self._pre.flush())
        if self._post is not None:
            out.extend(self._cut(self._post.flush()))
        return out

    def _after_pre(self, blocks: list[Samples]) -> list[AudioFrame]:
        if self._denoiser is not None:
            blocks = [out for block in blocks for out in self._denoiser.push(block)]
        if self._post is not None:
            blocks = [out for block in blocks for out in self._post.push(block, self._work_rate)]
        return self._cut(blocks)

    def _cut(self, blocks: list[Samples]) -> list[AudioFrame]:
        frames: list[AudioFrame] = []
        for block in blocks:
            for piece in self._blocker.push(block):
                frames.append(
                    AudioFrame(piece.tobytes(), self._sample_rate, self._num_channels, len(piece))
                )
        return frames


def _fanout_of(track: object) -> FrameFanout:
    return fanout_of(track, TrackKind.KIND_AUDIO)


def _participant_track(participant: object, track_source: int) -> FrameFanout:
    """A FrameFanout following the participant's audio track of ``track_source``.

    Like the official SDK, the stream waits for such a track to be subscribed,
    follows it when it changes, and ends when the participant leaves.
    """
    if not isinstance(participant, FollowsTracks):
        raise ValueError(f"participant must be a Participant, got {type(participant).__name__}")
    if isinstance(track_source, bool) or not isinstance(track_source, int):
        raise ValueError(f"track_source must be a TrackSource value, got {track_source!r}")
    return participant._follow_track(track_source, TrackKind.KIND_AUDIO)


class AudioStream:
    """Receives the audio of a track as an async iterator of :class:`AudioFrameEvent`.

    Frames come out at the requested sample rate and channel count, each exactly
    ``frame_size_ms`` long (10 ms when not given), whatever the track delivers. Iteration
    ends when the track's audio ends (unsubscribed, unpublished, disconnected) or after
    :meth:`aclose`.
    """

    def __init__(
        self,
        track: Track | FrameFanout | None,
        loop: asyncio.AbstractEventLoop | None = None,
        capacity: int = 0,
        sample_rate: int = 48000,
        num_channels: int = 1,
        frame_size_ms: int | None = None,
        noise_cancellation: NoiseCancellation | None = None,
        auto_close_noise_cancellation: bool = True,
        **kwargs: Any,
    ) -> None:
        """Start receiving audio from a track.

        Args:
            track: The audio track to read (a local or remote audio track). May be ``None``
                when ``participant`` and ``track_source`` are given in ``kwargs``.
            loop: The event loop the stream is used on; the running loop when omitted.
            capacity: How many frames wait for the reader; 0 means no limit. When full,
                the oldest frame is dropped.
            sample_rate: Sample rate of the yielded frames, in Hz.
            num_channels: Channel count of the yielded frames.
            frame_size_ms: Duration of each yielded frame in milliseconds; 10 ms when
                ``None``.
            noise_cancellation: A :class:`FrameProcessor` applied to every yielded frame
                (while it is enabled), or the options naming a noise-cancellation filter
                module: :class:`NoiseCancellationOptions`, or what a noise-cancellation
                plugin hands out (the official ``NoiseCancellationOptions``; any object
                with ``module_id`` and ``options``).  Filter modules are native plugins
                that livekit_py cannot run: such a stream gets livekit_py's own noise
                suppression instead, and a warning names the module.  Processors built
                on the official ``FrameProcessor`` class are taken too.
            auto_close_noise_cancellation: Close the frame processor (``_close``) when the
                stream closes; False lets it serve another stream afterwards.
            **kwargs: ``participant`` and ``track_source`` (see :meth:`from_participant`).

        Raises:
            ValueError: If an argument is out of range or of the wrong kind.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be an int >= 0, got {capacity!r}")
        check_int("sample_rate", sample_rate)
        check_int("num_channels", num_channels)
        if frame_size_ms is not None:
            check_int("frame_size_ms", frame_size_ms)
        frame_samples = sample_rate * (frame_size_ms or 10) // 1000
        if frame_samples < 1:
            raise ValueError(
                f"frame_size_ms={frame_size_ms} at {sample_rate} Hz is shorter than one sample"
            )

        auto_close = bool(auto_close_noise_cancellation)
        participant = kwargs.pop("participant", None)
        track_source = kwargs.pop("track_source", None)
        if kwargs:
            logger.warning("AudioStream: ignoring unknown argument(s) %s", ", ".join(kwargs))
        if participant is not None:
            if track_source is None:
                raise ValueError("track_source is required with participant")
            track = _participant_track(participant, track_source)
        if track is None:
            raise ValueError("track is required (or participant and track_source)")

        processor, filter_options = _noise_cancellation(noise_cancellation)
        denoise = filter_options is not None

        fanout = _fanout_of(track)
        self._converter = _Converter(sample_rate, num_channels, frame_samples, denoise=denoise)
        if filter_options is not None:
            _warn_substitute(filter_options)

        self._track: Any = None if isinstance(track, FrameFanout) else track
        self._loop = loop
        self._capacity = capacity
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._frame_size_ms = frame_size_ms
        self._processor = processor
        self._auto_close_processor = auto_close
        self._queue: deque[AudioFrameEvent] = deque()
        self._ready = asyncio.Event()
        self._ended = False
        self._closed = False
        self._dropped = 0
        self._bad_frames = 0
        self._subscription = fanout.subscribe(self)

    @classmethod
    def from_participant(
        cls,
        *,
        participant: Participant,
        track_source: int,
        loop: asyncio.AbstractEventLoop | None = None,
        capacity: int = 0,
        sample_rate: int = 48000,
        num_channels: int = 1,
        frame_size_ms: int | None = None,
        noise_cancellation: NoiseCancellation | None = None,
        auto_close_noise_cancellation: bool = True,
    ) -> AudioStream:
        """A stream of the participant's track of the given source, whichever it is.

        The stream waits until such a track is subscribed (or, for the local
        participant, published), moves to the new track if it is replaced, and
        ends when the participant leaves or the room disconnects.

        Args:
            participant: The participant whose audio to receive.
            track_source: Which of its tracks, e.g. ``TrackSource.SOURCE_MICROPHONE``.
            loop: See :class:`AudioStream`.
            capacity: See :class:`AudioStream`.
            sample_rate: See :class:`AudioStream`.
            num_channels: See :class:`AudioStream`.
            frame_size_ms: See :class:`AudioStream`.
            noise_cancellation: See :class:`AudioStream`.
            auto_close_noise_cancellation: See :class:`AudioStream` (True by default here,
                as in the official SDK).

        Raises:
            ValueError: If ``participant`` is not a participant.
        """
        return cls(
            None,
            loop=loop,
            capacity=capacity,
            sample_rate=sample_rate,
            num_channels=num_channels,
            frame_size_ms=frame_size_ms,
            noise_cancellation=noise_cancellation,
            auto_close_noise_cancellation=auto_close_noise_cancellation,
            participant=participant,
            track_source=track_source,
        )

    @classmethod
    def from_track(
        cls,
        *,
        track: Track,
        loop: asyncio.AbstractEventLoop | None = None,
        capacity: int = 0,
        sample_rate: int = 48000,
        num_channels: int = 1,
        frame_size_ms: int | None = None,
        noise_cancellation: NoiseCancellation | None = None,
        auto_close_noise_cancellation: bool = False,
    ) -> AudioStream:
        """A stream of ``track``'s audio; the arguments are those of :class:`AudioStream`,
        except that ``auto_close_noise_cancellation`` is False by default here (as in the
        official SDK: the processor may serve the next stream of the track)."""
        return cls(
            track,
            loop=loop,
            capacity=capacity,
            sample_rate=sample_rate,
            num_channels=num_channels,
            frame_size_ms=frame_size_ms,
            noise_cancellation=noise_cancellation,
            auto_close_noise_cancellation=auto_close_noise_cancellation,
        )

    # ------------------------------------------------------------------ sink side

    def on_frame(self, frame: AVFrame) -> None:
        if self._closed or not isinstance(frame, av.AudioFrame):
            return
        try:
            frames = self._converter.push(frame)
        except ValueError as exc:
            self._bad_frames += 1
            if self._bad_frames == 1:
                logger.warning("AudioStream: dropping audio it cannot convert: %s", exc)
            return
        self._deliver(frames)

    def on_end(self) -> None:
        if self._closed or self._ended:
            return
        try:
            self._deliver(self._converter.flush())
        finally:
            self._ended = True
            self._ready.set()

    def _deliver(self, frames: list[AudioFrame]) -> None:
        if not frames:
            return
        processor = self._processor
        for frame in frames:
            out = frame
            if processor is not None and processor.enabled:
                try:
                    out = processor._process(frame)
                except Exception:
                    logger.warning(
                        "frame processing failed, passing the original frame through",
                        exc_info=True,
                    )
                    out = frame
            if self._capacity and len(self._queue) >= self._capacity:
                self._queue.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.debug("AudioStream: reader too slow, %d frame(s) dropped", self._dropped)
            self._queue.append(AudioFrameEvent(out))
        self._ready.set()

    # ------------------------------------------------------------------ reader side

    def __aiter__(self) -> AsyncIterator[AudioFrameEvent]:
        return self

    async def __anext__(self) -> AudioFrameEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._queue:
                return self._queue.popleft()
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def aclose(self) -> None:
        """Stop receiving; iteration ends, frames not yet read are discarded."""
        if self._closed:
            return
        self._closed = True
        self._subscription.close()
        self._queue.clear()
        self._ready.set()
        if self._processor is not None and self._auto_close_processor:
            self._processor._close()

    def __repr__(self) -> str:
        return (
            f"rtc.AudioStream(sample_rate={self._sample_rate}, "
            f"num_channels={self._num_channels}, frame_size_ms={self._frame_size_ms})"
        )
