"""The test pattern and tone of ``publish --test-pattern`` and ``load-test``.

The picture is seven colour bars (75 % white, yellow, cyan, green, magenta, red, blue)
over a dark strip in which a white square moves left to right once every two seconds,
so that a viewer sees at a glance that frames keep coming.  It is drawn once in RGBA,
converted to I420 once through :meth:`livekit_py.rtc.VideoFrame.convert`, and each
frame only copies the planes and paints the square (numpy slices, no per-pixel loop).
The tone is a sine, phase-continuous across frames.
"""

from __future__ import annotations

import numpy as np

from livekit_py import rtc

__all__ = ["BAR_COLOURS", "TestPattern", "Tone", "samples_in_frame"]

BAR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
)
"""The bars left to right, RGB (75 % intensity, as SMPTE bars)."""

_STRIP = (32, 32, 32)
_SQUARE_PERIOD = 2.0  # seconds for the square to cross the picture


class TestPattern:
    """Frames of the pattern at ``width`` x ``height`` (even), ``fps`` frames a second."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, width: int, height: int, fps: float) -> None:
        """Draw the background.

        Raises:
            ValueError: If the size is not even and at least 16x16, or ``fps`` not positive.
        """
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"pattern size must be even and at least 16x16, got {width}x{height}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.width = width
        self.height = height
        self.fps = float(fps)
        rgba = np.zeros((height, width, 4), dtype=np.uint8)
        rgba[:, :, 3] = 255
        self._strip_top = (height * 3 // 4) & ~1
        edges = np.linspace(0, width, len(BAR_COLOURS) + 1).astype(int)
        for colour, left, right in zip(BAR_COLOURS, edges[:-1], edges[1:], strict=False):
            rgba[: self._strip_top, left:right, :3] = colour
        rgba[self._strip_top :, :, :3] = _STRIP
        background = rgba_frame(rgba).convert(rtc.VideoBufferType.I420)
        planes = np.frombuffer(bytes(background.data), dtype=np.uint8)
        cw, ch = width // 2, height // 2
        self._y = planes[: width * height].reshape(height, width)
        self._u = planes[width * height : width * height + cw * ch].reshape(ch, cw)
        self._v = planes[width * height + cw * ch :].reshape(ch, cw)
        side = (height - self._strip_top) * 2 // 3
        self._side = max(2, side & ~1)

    def square_x(self, index: int) -> int:
        """The left edge (even) of the moving square in frame ``index``."""
        travel = self.width - self._side
        phase = (index / self.fps) % _SQUARE_PERIOD / _SQUARE_PERIOD
        return int(phase * travel) & ~1

    def frame(self, index: int) -> rtc.VideoFrame:
        """Frame number ``index`` (0 at the start), an I420 :class:`rtc.VideoFrame`."""
        y, u, v = self._y.copy(), self._u.copy(), self._v.copy()
        x = self.square_x(index)
        top = self._strip_top + ((self.height - self._strip_top - self._side) // 2 & ~1)
        side = self._side
        y[top : top + side, x : x + side] = 235
        u[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 128
        v[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 128
        data = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).tobytes()
        return rtc.VideoFrame(self.width, self.height, rtc.VideoBufferType.I420, data)


def rgba_frame(rgba: np.ndarray) -> rtc.VideoFrame:
    """An RGBA :class:`rtc.VideoFrame` of an (height, width, 4) uint8 array."""
    height, width = rgba.shape[:2]
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.tobytes())


def samples_in_frame(index: int, sample_rate: int, fps: float) -> int:
    """How many audio samples go with video frame ``index``, so that none drift.

    At 48 kHz and 30 fps every frame has 1600; at 29.97 fps the counts alternate so that
    the sum over the first n frames is always ``round(n * rate / fps)``.
    """
    return round((index + 1) * sample_rate / fps) - round(index * sample_rate / fps)


class Tone:
    """A sine of ``frequency`` Hz at ``level`` (0-1 of full scale), in frames of any length."""

    def __init__(
        self,
        frequency: float,
        *,
        sample_rate: int = 48000,
        num_channels: int = 1,
        level: float = 0.3,
    ) -> None:
        """Set the tone up.

        Raises:
            ValueError: If the frequency is not between 0 and half the sample rate.
        """
        if not 0 < frequency < sample_rate / 2:
            raise ValueError(
                f"tone frequency must be between 0 and {sample_rate / 2:g} Hz, got {frequency!r}"
            )
        self.frequency = float(frequency)
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self._amplitude = level * 32767
        self._position = 0  # samples produced so far

    def frame(self, samples: int) -> rtc.AudioFrame:
        """The next ``samples`` samples per channel."""
        n = np.arange(self._position, self._position + samples, dtype=np.float64)
        self._position += samples
        wave = np.sin(2 * np.pi * self.frequency * n / self.sample_rate) * self._amplitude
        pcm = np.repeat(wave.astype(np.int16)[:, None], self.num_channels, axis=1)
        return rtc.AudioFrame(pcm.tobytes(), self.sample_rate, self.num_channels, samples)
