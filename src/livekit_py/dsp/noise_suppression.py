"""Noise suppression: WebRTC's suppressor (``webrtc-noise-gain``) on a 16 kHz band split.

The ``webrtc_noise_gain.AudioProcessor`` only takes 10 ms of 16 kHz mono int16.  Other rates
are handled around it:

* 8 kHz: interpolated to 16 kHz, processed, decimated back.
* 16 kHz: processed as is.
* 32/48 kHz: split into a low band (decimated to 16 kHz, processed by WebRTC) and the high
  band, the input minus the interpolated low band.  The high band gets one gain per frame:
  the energy ratio the suppressor applied to the top of the low band (4-7.5 kHz), which is
  how WebRTC itself treats the bands above 8 kHz.  With a transparent suppressor the two
  bands add back up to the delayed input exactly.

The suppressor adds a fixed delay (96 samples at 16 kHz); the rate converters add their
linear-phase FIR delay.  Channels are processed independently.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from webrtc_noise_gain import AudioProcessor

from .audio_filters import Block, FirDecimator, FirInterpolator

__all__ = ["NoiseSuppressor"]

_BAND_RATE = 16000
_BAND_FRAME = _BAND_RATE // 100
# the WebRTC suppressor's overlap-add buffering, in 16 kHz samples
_SUPPRESSOR_DELAY = 96
# low-band bins (100 Hz each) whose suppression gain is carried over to the high band
_GAIN_BINS = slice(40, 76)
_MIN_HIGH_BAND_GAIN = 0.05


def _to_int16(x: Block) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


class _DelayLine:
    """A fixed delay of ``delay`` samples on ``(samples, channels)`` blocks."""

    def __init__(self, delay: int, num_channels: int) -> None:
        self._buf: Block = np.zeros((delay, num_channels))

    def process(self, block: Block) -> Block:
        if self._buf.shape[0] == 0:
            return block
        buf = np.concatenate([self._buf, block], axis=0)
        self._buf = buf[block.shape[0] :]
        return buf[: block.shape[0]]


class NoiseSuppressor:
    """Stateful noise suppressor for 10 ms frames at 8, 16, 32 or 48 kHz."""

    def __init__(self, sample_rate: int, num_channels: int, *, level: int = 2) -> None:
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self._processors = [AudioProcessor(0, level) for _ in range(num_channels)]
        self._window = np.hanning(_BAND_FRAME + 2)[1:-1]
        self._up: FirInterpolator | None = None
        self._down: FirDecimator | None = None
        self._gain: npt.NDArray[np.float64] = np.ones(num_channels)
        if sample_rate == 8000:
            self._up = FirInterpolator(2, num_channels)
            self._down = FirDecimator(2, num_channels)
            self.delay = (self._up.delay + self._down.delay) // 2 + _SUPPRESSOR_DELAY // 2
        elif sample_rate > _BAND_RATE:
            factor = sample_rate // _BAND_RATE
            self._down = FirDecimator(factor, num_channels)
            self._up = FirInterpolator(factor, num_channels)
            self.delay = self._down.delay + self._up.delay + _SUPPRESSOR_DELAY * factor
            self._full_delay = _DelayLine(self.delay, num_channels)
            self._band_delay = _DelayLine(_SUPPRESSOR_DELAY, num_channels)
        else:
            self.delay = _SUPPRESSOR_DELAY

    def _suppress(self, band: Block) -> Block:
        """Run the WebRTC suppressor on one 16 kHz frame per channel."""
        pcm = _to_int16(band)
        out = np.empty(band.shape, dtype=np.float64)
        for ch, processor in enumerate(self._processors):
            result = processor.Process10ms(pcm[:, ch].tobytes())
            out[:, ch] = np.frombuffer(result.audio, dtype=np.int16)
        return out

    def process(self, block: Block) -> Block:
        """Suppress noise in one 10 ms ``(samples, channels)`` block (int16 scale floats)."""
        if self._up is None or self._down is None:
            return self._suppress(block)
        if self.sample_rate == 8000:
            return self._down.process(self._suppress(self._up.process(block)))

        band = _to_int16(self._down.process(block)).astype(np.float64)
        processed = self._suppress(band)
        band_in = self._band_delay.process(band)
        # energy ratio over the top of the low band, per channel
        spec_in = np.fft.rfft(band_in * self._window[:, None], axis=0)[_GAIN_BINS]
        spec_out = np.fft.rfft(processed * self._window[:, None], axis=0)[_GAIN_BINS]
        e_in = np.sum(np.abs(spec_in) ** 2, axis=0) + 1.0
        e_out = np.sum(np.abs(spec_out) ** 2, axis=0) + 1.0
        target = np.clip(np.sqrt(e_out / e_in), _MIN_HIGH_BAND_GAIN, 1.0)
        prev = self._gain
        gain = 0.5 * prev + 0.5 * target
        self._gain = gain

        n = block.shape[0]
        full = self._full_delay.process(block)
        ramp = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        full_gain = prev[None, :] + (gain - prev)[None, :] * ramp
        band_ramp = ramp[:: n // _BAND_FRAME]
        band_gain = prev[None, :] + (gain - prev)[None, :] * band_ramp
        out: Block = full_gain * full + self._up.process(processed - band_gain * band_in)
        return out
