"""Noise suppression: WebRTC's suppressor where ``webrtc-noise-gain`` is installed, else ours.

:func:`make_noise_suppressor` picks the implementation (and says which at DEBUG):

* :class:`WebRtcNoiseSuppressor`: WebRTC's suppressor from ``webrtc-noise-gain``, which has
  wheels for glibc Linux on x86_64 and aarch64 only (``pip install
  livekit-py[webrtc-noise-gain]``);
* :class:`~livekit_py.dsp.spectral_noise.SpectralNoiseSuppressor`: our own, on numpy,
  everywhere else.

The environment variable ``LIVEKIT_PY_NOISE_SUPPRESSOR`` overrides the choice: ``webrtc``
(fail if it is not installed), ``spectral`` (ours even where WebRTC's is installed) or
``auto`` (the default).  Both take 10 ms ``(samples, channels)`` blocks of int16-scale floats
and return the same, ``delay`` samples later.

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

import importlib
import importlib.metadata
import os
from types import ModuleType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..log import get_logger
from .audio_filters import Block, FirDecimator, FirInterpolator
from .spectral_noise import SpectralNoiseSuppressor

__all__ = [
    "BACKEND_ENV",
    "NoiseSuppressorLike",
    "SpectralNoiseSuppressor",
    "WebRtcNoiseSuppressor",
    "make_noise_suppressor",
    "noise_suppressor_backend",
]

logger = get_logger("dsp.noise_suppression")

BACKEND_ENV = "LIVEKIT_PY_NOISE_SUPPRESSOR"
_BACKENDS = ("auto", "webrtc", "spectral")


class NoiseSuppressorLike(Protocol):
    """What the audio processing module needs of a noise suppressor."""

    sample_rate: int
    num_channels: int
    delay: int

    def process(self, block: Block) -> Block:
        """Suppress noise in one 10 ms ``(samples, channels)`` block."""
        ...


def _webrtc_module() -> ModuleType | None:
    """``webrtc_noise_gain``, imported on first use; None where it is not installed."""
    try:
        return importlib.import_module("webrtc_noise_gain")
    except ImportError:
        return None


def noise_suppressor_backend() -> str:
    """The implementation :func:`make_noise_suppressor` uses now: ``webrtc`` or ``spectral``.

    Raises:
        ValueError: If ``LIVEKIT_PY_NOISE_SUPPRESSOR`` is set to something else than
            ``auto``, ``webrtc`` or ``spectral``.
        ImportError: If it asks for ``webrtc`` and ``webrtc-noise-gain`` is not installed.
    """
    wanted = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if wanted not in _BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(_BACKENDS)}, not {wanted!r}")
    if wanted == "spectral":
        return "spectral"
    if _webrtc_module() is not None:
        return "webrtc"
    if wanted == "webrtc":
        raise ImportError(
            f"{BACKEND_ENV}=webrtc but webrtc-noise-gain is not installed "
            "(pip install 'livekit-py[webrtc-noise-gain]'; it has wheels for glibc Linux "
            "on x86_64 and aarch64)"
        )
    return "spectral"


def make_noise_suppressor(
    sample_rate: int, num_channels: int, *, level: int = 2
) -> NoiseSuppressorLike:
    """A noise suppressor for 10 ms blocks at ``sample_rate`` (see the module docstring).

    Args:
        sample_rate: 8000, 16000, 32000 or 48000 for WebRTC's; any multiple of 100 Hz
            for ours.
        num_channels: Channels, processed independently.
        level: 0 (none) to 4 (strongest); 2 is WebRTC's "moderate".
    """
    backend = noise_suppressor_backend()
    if backend == "webrtc":
        version = importlib.metadata.version("webrtc-noise-gain")
        logger.debug(
            "noise suppression at %d Hz: WebRTC's suppressor (webrtc-noise-gain %s)",
            sample_rate,
            version,
        )
        return WebRtcNoiseSuppressor(sample_rate, num_channels, level=level)
    logger.debug(
        "noise suppression at %d Hz: livekit_py's spectral suppressor (%s)",
        sample_rate,
        f"{BACKEND_ENV}=spectral"
        if os.environ.get(BACKEND_ENV, "").strip().lower() == "spectral"
        else "webrtc-noise-gain is not installed",
    )
    return SpectralNoiseSuppressor(sample_rate, num_channels, level=level)


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
        self._delay = delay
        self._buf: Block = np.zeros((delay, num_channels))

    def process(self, block: Block) -> Block:
        """The block ``delay`` samples ago (a new array, or ``block`` itself at delay 0)."""
        delay = self._delay
        if delay == 0:
            return block
        n = block.shape[0]
        if n != self._buf.shape[0] - delay:
            buf = np.empty((delay + n, block.shape[1]))
            buf[:delay] = self._buf[self._buf.shape[0] - delay :]
            self._buf = buf
        else:
            self._buf[:delay] = self._buf[n:]
        self._buf[delay:] = block
        out: Block = self._buf[:n].copy()
        return out


class WebRtcNoiseSuppressor:
    """WebRTC's noise suppressor for 10 ms frames at 8, 16, 32 or 48 kHz.

    Raises:
        ImportError: If ``webrtc-noise-gain`` is not installed.
    """

    def __init__(self, sample_rate: int, num_channels: int, *, level: int = 2) -> None:
        module = _webrtc_module()
        if module is None:
            raise ImportError(
                "WebRtcNoiseSuppressor needs webrtc-noise-gain "
                "(pip install 'livekit-py[webrtc-noise-gain]')"
            )
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.delay: int
        self._processors = [module.AudioProcessor(0, level) for _ in range(num_channels)]
        self._window = np.hanning(_BAND_FRAME + 2)[1:-1]
        self._up: FirInterpolator | None = None
        self._down: FirDecimator | None = None
        self._gain: npt.NDArray[np.float64] = np.ones(num_channels)
        self._ramp: Block = np.zeros((0, 1))
        self._pair: npt.NDArray[np.float64] = np.empty((2, _BAND_FRAME, num_channels))
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
        return self._suppress_pcm(_to_int16(band))

    def _suppress_pcm(self, pcm: npt.NDArray[np.int16]) -> Block:
        """:meth:`_suppress` on a frame already in int16."""
        out = np.empty(pcm.shape, dtype=np.float64)
        if len(self._processors) == 1:
            out[:, 0] = np.frombuffer(
                self._processors[0].Process10ms(pcm.tobytes()).audio, np.int16
            )
            return out
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

        pcm = _to_int16(self._down.process(block))
        band = pcm.astype(np.float64)
        processed = self._suppress_pcm(pcm)
        band_in = self._band_delay.process(band)
        # energy ratio over the top of the low band, per channel (both in one transform)
        pair = self._pair
        if pair.shape[1] != band_in.shape[0]:
            pair = self._pair = np.empty((2, *band_in.shape))
        window = self._window[:, None]
        np.multiply(band_in, window, out=pair[0])
        np.multiply(processed, window, out=pair[1])
        spec = np.fft.rfft(pair, axis=1)[:, _GAIN_BINS]
        energy = np.sum(spec.real * spec.real + spec.imag * spec.imag, axis=1) + 1.0
        target = np.clip(np.sqrt(energy[1] / energy[0]), _MIN_HIGH_BAND_GAIN, 1.0)
        prev = self._gain
        gain = 0.5 * prev + 0.5 * target
        self._gain = gain

        n = block.shape[0]
        full = self._full_delay.process(block)
        ramp = self._ramp
        if ramp.shape[0] != n:
            ramp = self._ramp = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        step = gain - prev
        full *= prev + step * ramp
        band_in *= prev + step * ramp[:: n // _BAND_FRAME]
        processed -= band_in
        full += self._up.process(processed)
        return full
