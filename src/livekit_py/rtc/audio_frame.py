"""PCM audio frames: 16-bit signed samples, interleaved by channel."""

from __future__ import annotations

import io
import wave
from typing import Any

from .._validate import check_int, copy_buffer

__all__ = ["AudioFrame"]

_SAMPLE_WIDTH = 2  # bytes in one int16 sample


def _check_shape(sample_rate: int, num_channels: int, samples_per_channel: int) -> None:
    check_int("sample_rate", sample_rate)
    check_int("num_channels", num_channels)
    check_int("samples_per_channel", samples_per_channel, minimum=0)


class AudioFrame:
    """One frame of PCM audio.

    Samples are signed 16-bit integers in native byte order (little-endian on every
    platform LiveKit supports), interleaved by channel: for stereo the buffer holds
    ``L0 R0 L1 R1 ...``. The frame owns a private copy of the bytes it was given.
    """

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        sample_rate: int,
        num_channels: int,
        samples_per_channel: int,
        *,
        userdata: dict[str, Any] | None = None,
    ) -> None:
        """Build a frame from raw int16 samples.

        Args:
            data: The samples as bytes. It must hold at least
                ``num_channels * samples_per_channel`` int16 values; a longer buffer is kept
                whole (as the official SDK does) and must still be a whole number of int16
                values.
            sample_rate: Samples per second of each channel, in Hz (positive).
            num_channels: Number of interleaved channels (positive).
            samples_per_channel: Number of samples in each channel (zero or more).
            userdata: Optional dictionary attached to the frame; an empty one when omitted.

        Raises:
            ValueError: If a size or rate is out of range, or ``data`` is too short or has
                an odd number of bytes.
            TypeError: If ``data`` does not expose the buffer protocol.
        """
        _check_shape(sample_rate, num_channels, samples_per_channel)
        buf = copy_buffer(data)
        needed = num_channels * samples_per_channel * _SAMPLE_WIDTH
        if len(buf) < needed:
            raise ValueError(
                f"data is too short: {num_channels} channel(s) x {samples_per_channel} "
                f"samples of int16 need {needed} bytes, got {len(buf)}"
            )
        if len(buf) % _SAMPLE_WIDTH:
            raise ValueError(
                f"data length must be a multiple of {_SAMPLE_WIDTH} bytes (int16), got {len(buf)}"
            )
        if userdata is not None and not isinstance(userdata, dict):
            raise ValueError(f"userdata must be a dict or None, got {type(userdata).__name__}")

        self._data = buf
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._samples_per_channel = samples_per_channel
        self._userdata: dict[str, Any] = {} if userdata is None else userdata

    @staticmethod
    def create(sample_rate: int, num_channels: int, samples_per_channel: int) -> AudioFrame:
        """A frame of the given shape whose samples are all zero (silence)."""
        _check_shape(sample_rate, num_channels, samples_per_channel)
        size = num_channels * samples_per_channel * _SAMPLE_WIDTH
        return AudioFrame(bytearray(size), sample_rate, num_channels, samples_per_channel)

    @property
    def data(self) -> memoryview:
        """A writable view of the samples as int16 values (format ``'h'``).

        Writing through the view changes the frame itself.
        """
        return memoryview(self._data).cast("h")

    @property
    def sample_rate(self) -> int:
        """Samples per second of each channel, in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Number of interleaved channels."""
        return self._num_channels

    @property
    def samples_per_channel(self) -> int:
        """Number of samples in each channel."""
        return self._samples_per_channel

    @property
    def duration(self) -> float:
        """Length of the frame in seconds."""
        return self._samples_per_channel / self._sample_rate

    @property
    def userdata(self) -> dict[str, Any]:
        """A free-form dictionary travelling with the frame (its contents may be changed)."""
        return self._userdata

    def to_wav_bytes(self) -> bytes:
        """The frame as a complete 16-bit PCM WAV file, header included."""
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(self._num_channels)
            wav.setsampwidth(_SAMPLE_WIDTH)
            wav.setframerate(self._sample_rate)
            wav.writeframes(self._data)
        return out.getvalue()

    def __repr__(self) -> str:
        return (
            f"rtc.AudioFrame(sample_rate={self._sample_rate}, "
            f"num_channels={self._num_channels}, "
            f"samples_per_channel={self._samples_per_channel}, "
            f"duration={self.duration:.3f})"
        )

    def _repr_html_(self) -> str:
        """A player with the frame's waveform, for rich display in notebooks (IPython).

        An inline SVG draws each channel's envelope; an ``<audio>`` element plays the
        frame from a ``data:`` WAV.
        """
        import numpy as np

        from .jupyter import audio_html

        count, channels = self._samples_per_channel, self._num_channels
        samples = np.frombuffer(self._data, np.int16, count=count * channels)
        return audio_html(
            self.to_wav_bytes(), samples.reshape(count, channels), self._sample_rate, repr(self)
        )
