"""Helpers of the official ``livekit.rtc.utils`` module."""

from __future__ import annotations

from .audio_frame import _SAMPLE_WIDTH, AudioFrame

__all__ = ["combine_audio_frames"]


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
