"""``AudioProcessingModule``: echo cancellation, noise suppression, high-pass filter and AGC.

The capture ("near end", microphone) path runs, per 10 ms frame and in this order:

1. high-pass filter (:class:`~.audio_filters.HighPassFilter`),
2. echo canceller fed by the reverse stream (:mod:`livekit_py.dsp.aec`),
3. noise suppressor (:mod:`livekit_py.dsp.noise_suppression`: WebRTC's suppressor from the
   ``webrtc-noise-gain`` package where it is installed, else our spectral suppressor),
4. automatic gain control (:mod:`livekit_py.dsp.gain_control`).

Each stage keeps its state from frame to frame.  The reverse ("far end", loudspeaker) stream
is only analysed: its frames are not modified.  See ``docs/audio-processing.md`` for the
algorithms and measured quality.

The stages work at 8, 16, 32 or 48 kHz.  As WebRTC's module (and so the official SDK), the
module also takes 10 ms frames at other rates that are multiples of 100 Hz (44.1, 24, 96
kHz...): the capture frames are converted to the next stage rate up (48 kHz at most),
processed and converted back, which adds the converters' delay (about 0.7 ms for 44.1 kHz).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..dsp.aec import EchoCanceller
from ..dsp.audio_filters import Block, HighPassFilter, PolyphaseResampler, RationalResampler
from ..dsp.gain_control import GainController
from ..dsp.noise_suppression import make_noise_suppressor
from ..log import get_logger
from .audio_frame import AudioFrame

__all__ = ["AudioProcessingModule", "supports_sample_rate"]

logger = get_logger("media.apm")

# the rates the stages work at; other rates are converted to the next one up (48 kHz at most)
_STAGE_RATES = (8000, 16000, 32000, 48000)
# frames at any multiple of 100 Hz in this range are taken (WebRTC's native rate range)
_MIN_RATE = 8000
_MAX_RATE = 384000
_MAX_DELAY_MS = 500
# far-end frames kept while no capture frame has fixed the processing format yet
_MAX_PENDING_FAR = 50


def supports_sample_rate(sample_rate: int) -> bool:
    """Whether :class:`AudioProcessingModule` takes frames at ``sample_rate`` (Hz): a
    multiple of 100 Hz from 8 to 384 kHz."""
    return _MIN_RATE <= sample_rate <= _MAX_RATE and sample_rate % 100 == 0


def _check_frame(frame: AudioFrame, what: str) -> int:
    """Validate a 10 ms frame; return its number of int16 values."""
    rate = frame.sample_rate
    channels = frame.num_channels
    if not supports_sample_rate(rate):
        raise RuntimeError(
            f"AudioProcessingModule.{what}: unsupported sample rate {rate} Hz (expected a "
            f"multiple of 100 Hz from {_MIN_RATE} to {_MAX_RATE} Hz, so that 10 ms is a "
            "whole number of samples, e.g. 8000, 16000, 32000, 44100 or 48000 Hz)"
        )
    if channels not in (1, 2):
        raise RuntimeError(
            f"AudioProcessingModule.{what}: unsupported channel count {channels} (expected 1 or 2)"
        )
    expected = rate // 100
    if frame.samples_per_channel != expected:
        raise RuntimeError(
            f"AudioProcessingModule.{what}: frames must be exactly 10 ms: expected "
            f"{expected} samples per channel at {rate} Hz, got {frame.samples_per_channel}"
        )
    count = expected * channels
    if len(frame.data) < count:
        raise RuntimeError(
            f"AudioProcessingModule.{what}: frame data holds {len(frame.data)} samples, "
            f"expected {count}"
        )
    return count


def _stage_rate(rate: int) -> int:
    """The rate the stages run at for frames at ``rate``."""
    for stage_rate in _STAGE_RATES:
        if rate <= stage_rate:
            return stage_rate
    return _STAGE_RATES[-1]


def _far_resampler(from_rate: int, to_rate: int) -> RationalResampler | PolyphaseResampler:
    if from_rate in _STAGE_RATES and to_rate in _STAGE_RATES:
        return RationalResampler(from_rate, to_rate, 1)
    return PolyphaseResampler(from_rate, to_rate, 1)


def _samples(frame: AudioFrame, count: int) -> npt.NDArray[np.int16]:
    """The frame's first ``count`` int16 values as a writable array over its buffer."""
    return np.frombuffer(frame.data, dtype=np.int16, count=count)


class _CaptureChain:
    """The enabled capture stages for one (sample rate, channel count) format.

    ``sample_rate`` is the frames' rate; the stages run at ``stage_rate``, with a
    converter on each side when the two differ.
    """

    def __init__(
        self,
        sample_rate: int,
        num_channels: int,
        *,
        high_pass: bool,
        echo: bool,
        noise: bool,
        gain: bool,
    ) -> None:
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        stage_rate = _stage_rate(sample_rate)
        self.stage_rate = stage_rate
        self._into: PolyphaseResampler | None = None
        self._out_of: PolyphaseResampler | None = None
        if stage_rate != sample_rate:
            self._into = PolyphaseResampler(sample_rate, stage_rate, num_channels)
            self._out_of = PolyphaseResampler(stage_rate, sample_rate, num_channels)
        self.high_pass = HighPassFilter(stage_rate, num_channels) if high_pass else None
        self.echo = EchoCanceller(stage_rate, num_channels) if echo else None
        self.noise = make_noise_suppressor(stage_rate, num_channels) if noise else None
        self.gain = GainController(stage_rate) if gain else None

    def process(self, block: Block) -> Block:
        if self._into is None or self._out_of is None:
            return self._stages(block)
        return self._out_of.process(self._stages(self._into.process(block)))

    def _stages(self, block: Block) -> Block:
        if self.high_pass is not None:
            block = self.high_pass.process(block)
        if self.echo is not None:
            block = self.echo.process_near(block)
        if self.noise is not None:
            block = self.noise.process(block)
        if self.gain is not None:
            block = self.gain.process(block)
        return block


class AudioProcessingModule:
    """Audio processing for 10 ms frames: echo cancellation, noise suppression,
    high-pass filtering and automatic gain control, each enabled on its own.

    Frames are processed in place.  They must last exactly 10 ms, mono or stereo, at a
    multiple of 100 Hz from 8 to 384 kHz (8, 16, 32 and 48 kHz are processed as they are;
    others, such as 44.1 kHz with 441-sample frames, are converted to the next of those
    rates up, at most 48 kHz, and back); anything else raises ``RuntimeError``.  The
    processing delays the capture signal slightly (about 14 ms at 48 kHz with everything
    enabled).
    """

    def __init__(
        self,
        *,
        echo_cancellation: bool = False,
        noise_suppression: bool = False,
        high_pass_filter: bool = False,
        auto_gain_control: bool = False,
    ) -> None:
        """Create a module with the chosen features.

        Args:
            echo_cancellation: Remove the far-end signal (given to
                :meth:`process_reverse_stream`) from the microphone signal.
            noise_suppression: Reduce stationary background noise.
            high_pass_filter: Remove rumble and hum below ~100 Hz.
            auto_gain_control: Bring speech towards a steady level.
        """
        self._echo_enabled = bool(echo_cancellation)
        self._noise_enabled = bool(noise_suppression)
        self._high_pass_enabled = bool(high_pass_filter)
        self._gain_enabled = bool(auto_gain_control)
        self._delay_ms = 0
        self._chain: _CaptureChain | None = None
        self._pending_far: list[tuple[int, Block]] = []
        self._far_resampler: RationalResampler | PolyphaseResampler | None = None
        self._far_rates: tuple[int, int] = (0, 0)

    @property
    def _enabled(self) -> bool:
        return (
            self._echo_enabled
            or self._noise_enabled
            or self._high_pass_enabled
            or self._gain_enabled
        )

    def process_stream(self, data: AudioFrame) -> None:
        """Process one 10 ms capture (microphone) frame in place.

        Args:
            data: The frame; its samples are replaced by the processed ones.

        Raises:
            RuntimeError: If the frame is not 10 ms of mono or stereo audio at a multiple
                of 100 Hz from 8 to 384 kHz.
        """
        count = _check_frame(data, "process_stream")
        if not self._enabled:
            return
        chain = self._chain
        if (
            chain is None
            or chain.sample_rate != data.sample_rate
            or chain.num_channels != data.num_channels
        ):
            chain = self._new_chain(data.sample_rate, data.num_channels)
        samples = _samples(data, count)
        block = samples.reshape(-1, data.num_channels).astype(np.float64)
        out = np.rint(chain.process(block))
        np.clip(out, -32768.0, 32767.0, out=out)
        samples[:] = out.reshape(-1)  # whole numbers within the int16 range

    def process_reverse_stream(self, data: AudioFrame) -> None:
        """Analyse one 10 ms reverse (far-end, played-out) frame for echo cancellation.

        The frame is left unchanged.  Give every played-out frame, ideally at the same
        sample rate as the capture stream; without these frames nothing is cancelled.

        Args:
            data: The frame sent to the loudspeaker.

        Raises:
            RuntimeError: If the frame is not 10 ms of mono or stereo audio at a multiple
                of 100 Hz from 8 to 384 kHz.
        """
        count = _check_frame(data, "process_reverse_stream")
        if not self._echo_enabled:
            return
        samples = _samples(data, count).reshape(-1, data.num_channels)
        mono: Block
        if data.num_channels == 1:
            mono = samples[:, 0].astype(np.float64)
        else:
            mono = np.asarray(np.mean(samples, axis=1, dtype=np.float64))
        chain = self._chain
        if chain is None or chain.echo is None:
            self._pending_far.append((data.sample_rate, mono))
            del self._pending_far[:-_MAX_PENDING_FAR]
            return
        self._feed_far(chain.echo, data.sample_rate, mono)

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """Set the delay between the reverse and the capture stream, in milliseconds.

        It is the time from giving a far-end frame to :meth:`process_reverse_stream` to
        giving the capture frame that holds its echo to :meth:`process_stream` (playout
        buffering plus capture buffering).  The echo canceller centres its filter there and
        tolerates some error (about -20/+240 ms).

        Args:
            delay_ms: The delay, from 0 to 500 ms.

        Raises:
            RuntimeError: If ``delay_ms`` is outside 0-500.
        """
        if not 0 <= delay_ms <= _MAX_DELAY_MS:
            raise RuntimeError(
                f"AudioProcessingModule.set_stream_delay_ms: delay {delay_ms} ms out of range "
                f"(expected 0 to {_MAX_DELAY_MS} ms)"
            )
        self._delay_ms = int(delay_ms)
        if self._chain is not None and self._chain.echo is not None:
            self._chain.echo.set_delay_ms(self._delay_ms)

    # ------------------------------------------------------------------ internals

    def _new_chain(self, sample_rate: int, num_channels: int) -> _CaptureChain:
        if self._chain is not None:
            logger.debug(
                "capture format changed to %d Hz x %d channel(s): processing restarts",
                sample_rate,
                num_channels,
            )
        chain = _CaptureChain(
            sample_rate,
            num_channels,
            high_pass=self._high_pass_enabled,
            echo=self._echo_enabled,
            noise=self._noise_enabled,
            gain=self._gain_enabled,
        )
        self._chain = chain
        self._far_resampler = None
        self._far_rates = (0, 0)
        if chain.echo is not None:
            chain.echo.set_delay_ms(self._delay_ms)
            pending, self._pending_far = self._pending_far, []
            for rate, mono in pending:
                self._feed_far(chain.echo, rate, mono)
        return chain

    def _feed_far(self, echo: EchoCanceller, sample_rate: int, mono: Block) -> None:
        if sample_rate != echo.sample_rate:
            rates = (sample_rate, echo.sample_rate)
            if self._far_resampler is None or self._far_rates != rates:
                self._far_resampler = _far_resampler(sample_rate, echo.sample_rate)
                self._far_rates = rates
            mono = self._far_resampler.process(mono[:, None])[:, 0]
        echo.process_far(mono)
