"""Helpers of the official ``livekit.rtc.utils`` module."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import numpy as np

from .audio_frame import _SAMPLE_WIDTH, AudioFrame

__all__ = ["combine_audio_frames", "sine_wave_generator"]


def combine_audio_frames(buffer: AudioFrame | list[AudioFrame]) -> AudioFrame:
    """Join frames end to end into one frame.

    A single frame (not in a list) is returned unchanged. Every frame of a list must share
    the sample rate and channel count of the first one.

    Raises:
        ValueError: If the list is empty or the frames differ in sample rate or channel count.
    """
    if not isinstance(buffer, list):
        return buffer
    if not buffer:
        raise ValueError("buffer is empty: combine_audio_frames needs at least one frame")

    sample_rate = buffer[0].sample_rate
    num_channels = buffer[0].num_channels
    total_samples = 0
    for index, frame in enumerate(buffer):
        if frame.sample_rate != sample_rate:
            raise ValueError(
                f"sample rate mismatch at frame {index}: expected {sample_rate}, "
                f"got {frame.sample_rate}"
            )
        if frame.num_channels != num_channels:
            raise ValueError(
                f"channel count mismatch at frame {index}: expected {num_channels}, "
                f"got {frame.num_channels}"
            )
        total_samples += frame.samples_per_channel

    joined = bytearray(total_samples * num_channels * _SAMPLE_WIDTH)
    offset = 0
    for frame in buffer:
        size = frame.samples_per_channel * num_channels * _SAMPLE_WIDTH
        joined[offset : offset + size] = frame.data.cast("B")[:size]
        offset += size

    return AudioFrame(joined, sample_rate, num_channels, total_samples)


async def sine_wave_generator(
    freq: float,
    duration: float,
    sample_rate: int = 48000,
    amplitude: float = 0.3,
) -> AsyncIterator[AudioFrame]:
    """Yield a mono sine tone as 100 ms frames, for testing audio pipelines.

    As the official helper: ``int(duration * sample_rate) // (sample_rate // 10)`` frames
    of ``sample_rate // 10`` samples each (a trailing part shorter than a frame is not
    generated), the phase running on across frames, samples ``int16(amplitude *
    sin(...) * 32767)``.  Frames are yielded without waiting (no real-time pacing).

    Args:
        freq: Frequency of the tone, in Hz.
        duration: Length of the tone, in seconds.
        sample_rate: Sample rate, in Hz (at least 10).
        amplitude: Peak level, from 0.0 to 1.0.

    Raises:
        ValueError: If ``sample_rate`` is below 10 Hz, or a value is not finite.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 10:
        raise ValueError(f"sample_rate must be an int of at least 10 Hz, got {sample_rate!r}")
    for name, value in (("freq", freq), ("duration", duration), ("amplitude", amplitude)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    blocksize = sample_rate // 10
    total_frames = int((duration * sample_rate) // blocksize)
    offsets = np.arange(blocksize, dtype=np.float64)
    for index in range(total_frames):
        t = (offsets + index * blocksize) / sample_rate
        wave = amplitude * np.sin(2.0 * np.pi * freq * t) * 32767.0
        # float -> int16 truncates toward zero, as the official numpy.int16(...) does
        samples = wave.astype(np.int16)
        yield AudioFrame(samples.tobytes(), sample_rate, 1, blocksize)
