"""A noise suppressor of our own on numpy: a Wiener gain over a tracked noise floor.

It is the fallback where ``webrtc-noise-gain`` has no wheel (macOS, Windows, musl Linux)
and has the interface of :class:`~livekit_py.dsp.noise_suppression.WebRtcNoiseSuppressor`:
10 ms ``(samples, channels)`` blocks of int16-scale floats in, the same out,
``delay`` samples later.

Per channel, on a short-time spectrum (20 ms square-root-Hann windows every 10 ms, which
add back up to the input exactly at unit gain):

* smoothed power per bin (first-order, ~25 ms);
* the noise floor per bin follows dips of the smoothed power at once and otherwise rises
  by at most ``_FLOOR_RISE_DB_PER_S``, so steady noise is tracked within a second while a
  tone or a talker (whose level does not stay down) is not taken for noise;
* gain: Wiener ``xi / (1 + xi)`` with the a-priori SNR ``xi`` estimated the
  decision-directed way (Ephraim and Malah), which keeps "musical" residual noise down;
  bounded below by the level's floor (6, 12, 18 or 21 dB of attenuation, like WebRTC's
  low / moderate / high / very high) and smoothed over three neighbouring bins.

Everything is vectorised over bins and channels; one FFT pair per 10 ms block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .audio_filters import Block

__all__ = ["SpectralNoiseSuppressor"]

_FRAMES_PER_SECOND = 100
# attenuation floor (dB) per level; level 0 passes the signal through (still delayed)
_LEVEL_FLOOR_DB = {0: 0.0, 1: 6.0, 2: 12.0, 3: 18.0, 4: 21.0}
_POWER_SMOOTHING = 0.6  # per 10 ms frame: ~25 ms time constant
_FLOOR_RISE_DB_PER_S = 4.0
# the tracked floor sits near the smoothed power's minima, below its mean
_FLOOR_BIAS = 2.0
_DECISION_DIRECTED = 0.96
# the initial noise floor: the first frame's power, followed closely for 200 ms
_FAST_START_FRAMES = 20
_EPS = 1e-10

Float = npt.NDArray[np.float64]


class SpectralNoiseSuppressor:
    """Stateful noise suppressor for 10 ms frames at any rate that is a multiple of 100 Hz.

    Args:
        sample_rate: The blocks' sample rate in Hz.
        num_channels: The blocks' channel count; channels are processed independently.
        level: 0 (no suppression) to 4 (strongest); 2 is WebRTC's "moderate".

    Raises:
        ValueError: If ``sample_rate`` is not a positive multiple of 100, ``num_channels``
            is below 1 or ``level`` is not 0-4.
    """

    def __init__(self, sample_rate: int, num_channels: int, *, level: int = 2) -> None:
        if sample_rate <= 0 or sample_rate % _FRAMES_PER_SECOND:
            raise ValueError(
                f"sample_rate must be a positive multiple of 100 Hz, not {sample_rate}"
            )
        if num_channels < 1:
            raise ValueError(f"num_channels must be at least 1, not {num_channels}")
        if level not in _LEVEL_FLOOR_DB:
            raise ValueError(f"level must be 0 to 4, not {level}")
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.level = level
        hop = sample_rate // _FRAMES_PER_SECOND
        self._hop = hop
        self.delay = hop
        # periodic Hann: its square roots overlap-add (hop = half a window) to exactly one
        n = np.arange(2 * hop)
        self._window: Float = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / (2 * hop)))[:, None]
        bins = hop + 1
        self._input: Float = np.zeros((hop, num_channels))
        self._tail: Float = np.zeros((hop, num_channels))
        self._power: Float = np.zeros((bins, num_channels))
        self._floor: Float = np.zeros((bins, num_channels))
        self._prev_clean: Float = np.zeros((bins, num_channels))
        self._frames = 0
        self._min_gain = 10.0 ** (-_LEVEL_FLOOR_DB[level] / 20.0)
        self._rise = 10.0 ** (_FLOOR_RISE_DB_PER_S / 10.0 / _FRAMES_PER_SECOND)

    def process(self, block: Block) -> Block:
        """Suppress noise in one 10 ms ``(samples, channels)`` block (int16-scale floats).

        Raises:
            ValueError: If the block is not ``(sample_rate / 100, num_channels)``.
        """
        if block.shape != (self._hop, self.num_channels):
            raise ValueError(
                f"block must be {(self._hop, self.num_channels)} (10 ms), not {block.shape}"
            )
        frame = np.concatenate([self._input, block], axis=0)
        self._input = np.array(block, dtype=np.float64)
        spectrum = np.fft.rfft(frame * self._window, axis=0)
        if self.level:
            spectrum = spectrum * self._gain(spectrum.real**2 + spectrum.imag**2)
        out = np.fft.irfft(spectrum, n=2 * self._hop, axis=0) * self._window
        result: Block = self._tail + out[: self._hop]
        self._tail = out[self._hop :]
        return result

    def _gain(self, power: Float) -> Float:
        self._frames += 1
        if self._frames == 1:
            self._power = power.copy()
            self._floor = power.copy()
        else:
            self._power = _POWER_SMOOTHING * self._power + (1.0 - _POWER_SMOOTHING) * power
        if self._frames <= _FAST_START_FRAMES:
            # start from the first frames' level, moving both ways
            self._floor = 0.7 * self._floor + 0.3 * self._power
        else:
            self._floor = np.minimum(self._power, self._floor * self._rise)
        noise = _FLOOR_BIAS * self._floor + _EPS
        post_snr = power / noise
        prior_snr = _DECISION_DIRECTED * self._prev_clean / noise + (
            1.0 - _DECISION_DIRECTED
        ) * np.maximum(post_snr - 1.0, 0.0)
        gain = prior_snr / (1.0 + prior_snr)
        # smooth across neighbouring bins (edges keep their own weight)
        padded = np.concatenate([gain[:1], gain, gain[-1:]], axis=0)
        gain = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
        bounded: Float = np.maximum(gain, self._min_gain)
        self._prev_clean = bounded**2 * power
        return bounded
