"""Time scaling of short PCM frames (WSOLA-lite), for the jitter buffer's stretch and shrink.

:func:`fit_length` returns a frame played in a given number of samples without changing
its pitch: to shorten it, a span as long as the difference is cut out where the waveform
before and after the span match best, and the two sides are cross-faded; to lengthen it, a
span is repeated the same way. Both ends of the frame are kept, so it still joins its
neighbours. The search is a normalized cross-correlation computed with cumulative sums:
numpy only, no per-sample Python loop, O(n) per call.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["fit_length"]

# below this energy per sample, a window counts as silent in the match score
_TINY = 1e-9


def fit_length(
    pcm: npt.NDArray[np.generic],
    length: int,
    *,
    sample_rate: int = 48000,
    crossfade: float = 0.005,
) -> npt.NDArray[np.generic]:
    """``pcm`` time-scaled to exactly ``length`` samples.

    Args:
        pcm: Samples, shape ``(n,)`` or ``(n, channels)``, any numeric dtype (int16
            usually); the result has the same dtype and channels.
        length: Samples wanted (0 gives an empty frame).
        sample_rate: Sample rate of ``pcm``, in Hz.
        crossfade: Length of each cross-fade, in seconds.

    Raises:
        ValueError: If ``pcm`` is not 1-D or 2-D, ``length`` is negative, ``pcm`` is
            empty while ``length`` is not, or ``sample_rate``/``crossfade`` is not
            positive.
    """
    array: npt.NDArray[np.generic] = np.asarray(pcm)
    if array.ndim not in (1, 2):
        raise ValueError(f"pcm must have shape (n,) or (n, channels), got {array.shape}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    if sample_rate <= 0 or not crossfade > 0:
        raise ValueError(
            f"sample_rate and crossfade must be positive, got {sample_rate!r}, {crossfade!r}"
        )
    length = int(length)
    size = array.shape[0]
    if length == size:
        return array
    if length == 0:
        empty: npt.NDArray[np.generic] = array[:0].copy()
        return empty
    if size == 0:
        raise ValueError("pcm is empty: there is nothing to stretch")
    fade = max(1, round(crossfade * sample_rate))
    out = array
    while out.shape[0] != length:
        size = out.shape[0]
        if length < size:
            cut = size - length
            out = _splice(out, cut, min(fade, length), shorten=True)
        elif size < 2:
            out = np.repeat(out, math.ceil(length / size), axis=0)[:length]
        else:
            width = min(fade, size // 2)
            out = _splice(out, min(length - size, size - width), width, shorten=False)
    return out


def _window_sums(values: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    sums = np.concatenate(([0.0], np.cumsum(values)))
    result: npt.NDArray[np.float64] = sums[width:] - sums[:-width]
    return result


def _splice(
    pcm: npt.NDArray[np.generic], shift: int, width: int, *, shorten: bool
) -> npt.NDArray[np.generic]:
    """Cut out (``shorten``) or repeat ``shift`` samples, cross-fading over ``width``."""
    signal = pcm.astype(np.float64)
    mono = signal if signal.ndim == 1 else signal.mean(axis=1)
    size = mono.shape[0]
    early = mono[: size - shift]
    late = mono[shift:]
    # how well the window starting at j matches the one starting at j + shift
    corr = _window_sums(early * late, width)
    energy = _window_sums(early * early, width) * _window_sums(late * late, width)
    score = corr / np.sqrt(energy + _TINY * width * width)
    j = int(np.argmax(score))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
    if signal.ndim == 2:
        ramp = ramp[:, None]
    if shorten:
        # ... x[j] ... fades into x[j + shift] ...: the span in between is gone
        head, fade_out, fade_in, tail = j, j, j + shift, j + shift + width
    else:
        # ... x[j + shift] ... fades back into x[j] ...: the span is played twice
        head, fade_out, fade_in, tail = j + shift, j + shift, j, j + width
    mixed = (
        signal[fade_out : fade_out + width] * (1 - ramp) + signal[fade_in : fade_in + width] * ramp
    )
    if np.issubdtype(pcm.dtype, np.integer):
        info = np.iinfo(pcm.dtype.name)
        mixed = np.clip(np.rint(mixed), info.min, info.max)
    return np.concatenate((pcm[:head], mixed.astype(pcm.dtype), pcm[tail:]))


def pitch_period(
    pcm: npt.NDArray[np.generic],
    *,
    sample_rate: int = 48000,
    shortest: float = 0.002,
    longest: float = 0.012,
    threshold: float = 0.7,
) -> int | None:
    """The period of ``pcm``'s strongest repetition, in samples, if it repeats clearly.

    The normalised autocorrelation (channels summed) is searched between ``shortest``
    and ``longest`` seconds of lag; None when its peak is under ``threshold`` (noise,
    silence, a frame too short to hold two periods).

    Raises:
        ValueError: If ``pcm`` is not 1-D or 2-D.
    """
    array = np.asarray(pcm, dtype=np.float64)
    if array.ndim == 2:
        array = array.sum(axis=1)
    elif array.ndim != 1:
        raise ValueError(f"pcm must have shape (n,) or (n, channels), got {array.shape}")
    low = max(1, round(shortest * sample_rate))
    high = min(round(longest * sample_rate), array.shape[0] // 2)
    if high <= low:
        return None
    array = array - array.mean()
    energy = float(array @ array)
    if energy <= 0:
        return None
    size = 1 << int(2 * array.shape[0] - 1).bit_length()
    spectrum = np.fft.rfft(array, size)
    corr = np.fft.irfft(spectrum * np.conj(spectrum), size)[: high + 1]
    # normalise by the overlap, so that long lags are not penalised
    overlap = array.shape[0] - np.arange(high + 1)
    norm = corr / energy * (array.shape[0] / overlap)
    window = norm[low : high + 1]
    best = float(window.max())
    if best < threshold:
        return None
    # the shortest lag nearly as strong as the best: the period, not a multiple of it
    peaks = np.flatnonzero(
        (window[1:-1] >= 0.9 * best) & (window[1:-1] >= window[:-2]) & (window[1:-1] >= window[2:])
    )
    return low + 1 + int(peaks[0]) if peaks.size else low + int(np.argmax(window))


def phase_friendly_length(
    pcm: npt.NDArray[np.generic],
    length: int,
    *,
    sample_rate: int = 48000,
) -> int:
    """The length nearest ``length`` that changes ``pcm`` by whole pitch periods.

    Cutting or repeating a span that is not a whole number of periods of a periodic
    signal (a held vowel, a tone) leaves a phase jump that no cross-fade hides. For
    such a frame this rounds the change to whole periods (possibly to no change); an
    aperiodic frame gets ``length`` itself.
    """
    size = np.asarray(pcm).shape[0]
    period = pitch_period(pcm, sample_rate=sample_rate)
    if period is None or length == size:
        return length
    periods = round((length - size) / period)
    return max(0, int(size) + int(periods) * period)
