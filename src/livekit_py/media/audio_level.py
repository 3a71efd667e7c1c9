"""The W3C audio level counters of a stream of PCM frames (``audioLevel``, ``totalAudioEnergy``).

WebRTC statistics describe how loud a track is with three numbers: the level of the
latest audio (0 to 1, 1 being full scale), the energy so far (for every stretch of
audio, its level squared times its duration in seconds) and the duration so far. Like
libwebrtc, the level of a frame here is its peak: the largest absolute sample value
divided by the largest an ``int16`` can hold. Dividing the energy gained between two
readings by the duration gained gives the mean square level between them.

Pure logic on numpy arrays; no clock (durations come from sample counts).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

__all__ = ["AudioLevel", "AudioLevelMeter"]

_FULL_SCALE = 32767.0


@dataclasses.dataclass(frozen=True)
class AudioLevel:
    """A reading of an :class:`AudioLevelMeter`."""

    audio_level: float = 0.0
    """The peak level of the latest frame, 0 to 1."""
    total_audio_energy: float = 0.0
    """Sum over the frames of their level squared times their duration in seconds."""
    total_samples_duration: float = 0.0
    """Seconds of audio measured."""
    total_samples: int = 0
    """Samples measured, per channel."""


class AudioLevelMeter:
    """Accumulates the W3C level counters of int16 PCM frames, one frame at a time."""

    __slots__ = ("_energy", "_level", "_samples", "_seconds")

    def __init__(self) -> None:
        self._level = 0.0
        self._energy = 0.0
        self._seconds = 0.0
        self._samples = 0

    def add(self, pcm: npt.NDArray[np.int16], sample_rate: int, channels: int) -> None:
        """Measure one frame of interleaved (or ``(samples, channels)``) int16 samples.

        Raises:
            ValueError: If ``sample_rate`` or ``channels`` is not positive, or the sample
                count is not a multiple of ``channels``.
        """
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {sample_rate}")
        if channels <= 0:
            raise ValueError(f"channels must be positive, not {channels}")
        if pcm.size % channels:
            raise ValueError(f"{pcm.size} samples do not divide into {channels} channels")
        per_channel = pcm.size // channels
        if per_channel == 0:
            return
        peak = int(np.max(np.abs(pcm.astype(np.int32))))
        level = min(1.0, peak / _FULL_SCALE)
        seconds = per_channel / sample_rate
        self._level = level
        self._energy += level * level * seconds
        self._seconds += seconds
        self._samples += per_channel

    def reading(self) -> AudioLevel:
        """The counters now."""
        return AudioLevel(self._level, self._energy, self._seconds, self._samples)
