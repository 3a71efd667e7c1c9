"""Streaming sample-rate conversion of int16 PCM, done by libswresample through PyAV."""

from __future__ import annotations

from enum import Enum, unique
from fractions import Fraction

import av
import numpy as np
from av.filter import Graph

from .._validate import check_int
from ..log import get_logger
from .audio_frame import AudioFrame

__all__ = ["AudioResampler", "AudioResamplerQuality"]

logger = get_logger("media.audio_resampler")


@unique
class AudioResamplerQuality(str, Enum):
    """Trade-off between conversion accuracy and CPU cost, lowest first."""

    QUICK = "quick"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very_high"


# libswresample settings of each quality level:
# - filter_size: taps per polyphase branch (scaled up by the decimation factor when
#   downsampling): longer filters give a steeper transition and a flatter pass band;
# - phase_shift: 2**phase_shift branches; a ratio whose reduced output/input fraction has a
#   numerator up to that count (44.1 kHz <-> 48 kHz needs 160) is converted exactly,
#   others use the nearest branch;
# - linear_interp stays off: interpolating between branches makes the output depend on how
#   the input was split into pushes;
# - cutoff: the low-pass corner as a fraction of the lower Nyquist frequency;
# - kaiser_beta: window shape, higher gives a deeper stop band;
# - internal_sample_fmt: the arithmetic precision of the filter.
# Measured (int16 tones, see tests/unit/test_audio_resampler.py): with a tone at 90 % of
# the output Nyquist frequency and another above it, 48 kHz -> 16 kHz scores about 2, 6, 19,
# 43 and 90 dB against the ideal output from QUICK to VERY_HIGH.
_QUALITY_OPTIONS: dict[AudioResamplerQuality, dict[str, str]] = {
    AudioResamplerQuality.QUICK: {
        "filter_size": "8",
        "phase_shift": "8",
        "linear_interp": "0",
        "cutoff": "0.8",
        "kaiser_beta": "6",
        "internal_sample_fmt": "fltp",
    },
    AudioResamplerQuality.LOW: {
        "filter_size": "16",
        "phase_shift": "9",
        "linear_interp": "0",
        "cutoff": "0.9",
        "kaiser_beta": "8",
        "internal_sample_fmt": "fltp",
    },
    AudioResamplerQuality.MEDIUM: {
        "filter_size": "32",
        "phase_shift": "10",
        "linear_interp": "0",
        "cutoff": "0.97",
        "kaiser_beta": "9",
        "internal_sample_fmt": "fltp",
    },
    AudioResamplerQuality.HIGH: {
        "filter_size": "64",
        "phase_shift": "12",
        "linear_interp": "0",
        "cutoff": "0.97",
        "kaiser_beta": "10",
        "internal_sample_fmt": "fltp",
    },
    AudioResamplerQuality.VERY_HIGH: {
        "filter_size": "128",
        "phase_shift": "14",
        "linear_interp": "0",
        "cutoff": "0.97",
        "kaiser_beta": "12",
        "internal_sample_fmt": "dblp",
    },
}

_SAMPLE_WIDTH = 2  # bytes in one int16 sample


def _layout_name(num_channels: int) -> str:
    if num_channels == 1:
        return "mono"
    if num_channels == 2:
        return "stereo"
    # FFmpeg's notation for N channels in unspecified order: no remixing is ever wanted here
    return f"{num_channels}c"


class AudioResampler:
    """Converts a stream of int16 interleaved PCM from one sample rate to another.

    The filter state is kept between calls to :meth:`push`, so audio split into arbitrary
    pieces comes out exactly as if it had been converted in one piece. The output is
    aligned with the input (the filter delay is compensated): after :meth:`flush`, the
    total output holds ``input_samples * output_rate / input_rate`` samples per channel,
    to within one sample. After a flush the resampler starts over and takes a new stream.

    With equal input and output rates the samples are passed through untouched.
    """

    def __init__(
        self,
        input_rate: int,
        output_rate: int,
        *,
        num_channels: int = 1,
        quality: AudioResamplerQuality = AudioResamplerQuality.MEDIUM,
    ) -> None:
        """Set up a resampler.

        Args:
            input_rate: Sample rate of the pushed audio, in Hz.
            output_rate: Sample rate of the produced audio, in Hz.
            num_channels: Number of interleaved channels of the input and output.
            quality: One of :class:`AudioResamplerQuality` (or its string value); higher
                levels use longer, more precise filters and cost more CPU.

        Raises:
            ValueError: If a rate or the channel count is not a positive int, or the
                quality is unknown.
        """
        check_int("input_rate", input_rate)
        check_int("output_rate", output_rate)
        check_int("num_channels", num_channels)
        try:
            self._quality = AudioResamplerQuality(quality)
        except ValueError:
            choices = ", ".join(q.value for q in AudioResamplerQuality)
            raise ValueError(f"quality must be one of {choices}, got {quality!r}") from None

        self._input_rate = input_rate
        self._output_rate = output_rate
        self._num_channels = num_channels
        self._layout = _layout_name(num_channels)
        self._time_base = Fraction(1, input_rate)
        self._graph: Graph | None = None
        self._next_pts = 0
        if input_rate != output_rate:
            # built now so that a setup problem shows at construction time
            self._build_graph()

    def _build_graph(self) -> None:
        graph = Graph()
        source = graph.add(
            "abuffer",
            sample_rate=str(self._input_rate),
            sample_fmt="s16",
            channel_layout=self._layout,
            time_base=str(self._time_base),
        )
        resample = graph.add("aresample", **_QUALITY_OPTIONS[self._quality])
        out_format = graph.add(
            "aformat",
            sample_rates=str(self._output_rate),
            sample_fmts="s16",
            channel_layouts=self._layout,
        )
        sink = graph.add("abuffersink")
        source.link_to(resample)
        resample.link_to(out_format)
        out_format.link_to(sink)
        graph.configure()
        self._graph = graph
        self._next_pts = 0

    def _samples_from(self, data: bytearray | bytes | memoryview | AudioFrame) -> np.ndarray:
        if isinstance(data, AudioFrame):
            if data.num_channels != self._num_channels:
                raise ValueError(
                    f"frame has {data.num_channels} channel(s), the resampler was set up "
                    f"for {self._num_channels}"
                )
            if data.sample_rate != self._input_rate:
                raise ValueError(
                    f"frame sample rate is {data.sample_rate} Hz, the resampler input rate "
                    f"is {self._input_rate} Hz"
                )
            count = data.samples_per_channel * data.num_channels
            return np.frombuffer(data.data, dtype=np.int16, count=count)
        try:
            raw = memoryview(data).cast("B")
        except TypeError:
            raise ValueError(
                f"data must be a bytearray of int16 samples or an AudioFrame, "
                f"got {type(data).__name__}"
            ) from None
        frame_bytes = _SAMPLE_WIDTH * self._num_channels
        if len(raw) % frame_bytes:
            raise ValueError(
                f"data length {len(raw)} is not a multiple of {frame_bytes} bytes "
                f"(int16 x {self._num_channels} channel(s))"
            )
        return np.frombuffer(raw, dtype=np.int16)

    def _make_frame(self, samples: np.ndarray) -> AudioFrame:
        return AudioFrame(
            samples.tobytes(),
            self._output_rate,
            self._num_channels,
            samples.size // self._num_channels,
        )

    def _drain(self) -> list[AudioFrame]:
        assert self._graph is not None
        chunks: list[np.ndarray] = []
        while True:
            try:
                out = self._graph.pull()
            except (av.error.BlockingIOError, EOFError):
                break
            chunks.append(out.to_ndarray().reshape(-1))
        if not chunks:
            return []
        samples = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        if samples.size == 0:
            return []
        return [self._make_frame(samples)]

    def push(self, data: bytearray | AudioFrame) -> list[AudioFrame]:
        """Feed audio in and take whatever converted audio is ready.

        Args:
            data: Either raw int16 interleaved samples (a ``bytearray``; ``bytes`` and
                ``memoryview`` work too) at the input rate, or an :class:`AudioFrame`
                with the resampler's input rate and channel count.

        Returns:
            Zero or one frame at the output rate. The filter holds back a few
            milliseconds of audio, which later pushes or :meth:`flush` deliver.

        Raises:
            ValueError: If the data is not a whole number of multi-channel samples or a
                frame does not match the resampler's rate or channel count.
        """
        samples = self._samples_from(data)
        if samples.size == 0:
            return []
        if self._input_rate == self._output_rate:
            return [self._make_frame(samples)]

        if self._graph is None:
            self._build_graph()
        assert self._graph is not None
        count = samples.size // self._num_channels
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = self._input_rate
        frame.time_base = self._time_base
        frame.pts = self._next_pts
        self._next_pts += count
        self._graph.push(frame)
        return self._drain()

    def flush(self) -> list[AudioFrame]:
        """Convert everything still held in the filter and start over.

        Call this at the end of a stream. The next :meth:`push` begins a new stream.

        Returns:
            Zero or one frame holding the remaining output.
        """
        if self._graph is None or self._next_pts == 0:
            return []
        self._graph.push(None)
        frames = self._drain()
        # an ended filter graph takes no more input: the next push gets a fresh one
        self._graph = None
        self._next_pts = 0
        return frames
