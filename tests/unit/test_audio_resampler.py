"""AudioResampler: accuracy against ideal references, streaming, flushing and arguments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from livekit import rtc
from scipy import signal

from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_resampler import AudioResampler, AudioResamplerQuality

QUALITIES = list(AudioResamplerQuality)


def _tones(freqs: list[float], rate: int, n: int, amplitude: float) -> np.ndarray:
    t = np.arange(n) / rate
    parts = [amplitude * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs)]
    total: np.ndarray = np.sum(parts, axis=0)
    return total


def _stream(
    resampler: AudioResampler, x: np.ndarray, *, seed: int = 0, max_push: int = 700
) -> np.ndarray:
    """Push ``x`` (frames x channels, int16) in random small pieces, flush, join the output."""
    rng = np.random.default_rng(seed)
    channels = x.shape[1]
    out: list[np.ndarray] = []
    i = 0
    while i < len(x):
        n = int(rng.integers(1, max_push))
        for frame in resampler.push(bytearray(x[i : i + n].tobytes())):
            out.append(np.frombuffer(frame.data, dtype=np.int16).reshape(-1, channels))
        i += n
    for frame in resampler.flush():
        out.append(np.frombuffer(frame.data, dtype=np.int16).reshape(-1, channels))
    return np.concatenate(out)


def _one_shot(resampler: AudioResampler, x: np.ndarray) -> np.ndarray:
    frames = resampler.push(bytearray(x.tobytes())) + resampler.flush()
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).reshape(
        -1, x.shape[1]
    )


def _snr_db(y: np.ndarray, reference: np.ndarray, margin: int) -> float:
    """Signal-to-error ratio, leaving out ``margin`` samples at both ends (edge transients)."""
    assert y.shape == reference.shape
    a = y[margin:-margin].astype(np.float64)
    b = reference[margin:-margin].astype(np.float64)
    return float(10 * np.log10(np.sum(b**2) / np.sum((a - b) ** 2)))


# lowest SNR (dB) each level must reach on tones well inside the pass band; int16
# output caps any level at about 88 dB for these amplitudes
IN_BAND_MIN_SNR = {
    AudioResamplerQuality.QUICK: 50.0,
    AudioResamplerQuality.LOW: 72.0,
    AudioResamplerQuality.MEDIUM: 80.0,
    AudioResamplerQuality.HIGH: 80.0,
    AudioResamplerQuality.VERY_HIGH: 80.0,
}


@pytest.mark.parametrize("quality", QUALITIES, ids=lambda q: q.value)
@pytest.mark.parametrize(
    ("in_rate", "out_rate", "channels"),
    [(48000, 16000, 1), (16000, 48000, 1), (44100, 48000, 1), (48000, 44100, 2)],
)
def test_tones_match_the_ideal_output(
    quality: AudioResamplerQuality, in_rate: int, out_rate: int, channels: int
) -> None:
    low = min(in_rate, out_rate)
    # per channel: tones at 8 % and 38 % of the lower Nyquist frequency, shifted per channel
    freqs = [[0.04 * low * (1 + 0.1 * c), 0.19 * low * (1 + 0.1 * c)] for c in range(channels)]
    x = np.stack([_tones(f, in_rate, in_rate, 8000) for f in freqs], axis=1)
    x = np.round(x).astype(np.int16)
    expected_len = in_rate * out_rate // in_rate
    ideal = np.stack([_tones(f, out_rate, expected_len, 8000) for f in freqs], axis=1)

    y = _stream(AudioResampler(in_rate, out_rate, num_channels=channels, quality=quality), x)
    assert y.shape == (expected_len, channels)
    assert _snr_db(y, ideal, out_rate // 100) >= IN_BAND_MIN_SNR[quality]


@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 16000), (48000, 44100)])
def test_quality_levels_are_genuinely_different(in_rate: int, out_rate: int) -> None:
    """Near the band edge every level must beat the one below it.

    The input holds a tone at 90 % of the output Nyquist frequency, which must be kept,
    and one above it, which must be removed; the ideal output is the first tone alone.
    """
    nyquist = out_rate / 2
    keep, drop = 0.9 * nyquist, min(1.1 * nyquist, 0.96 * in_rate / 2)
    x = _tones([keep], in_rate, in_rate, 10000) + _tones([drop], in_rate, in_rate, 10000)
    x = np.round(x).astype(np.int16).reshape(-1, 1)
    ideal = _tones([keep], out_rate, out_rate, 10000).reshape(-1, 1)

    snrs = [
        _snr_db(_stream(AudioResampler(in_rate, out_rate, quality=q), x), ideal, out_rate // 100)
        for q in QUALITIES
    ]
    for lower, higher in itertools.pairwise(snrs):
        assert higher > lower + 2.0, snrs
    assert snrs[-1] > 80.0, snrs


@pytest.mark.parametrize(
    "quality",
    [AudioResamplerQuality.MEDIUM, AudioResamplerQuality.HIGH, AudioResamplerQuality.VERY_HIGH],
    ids=lambda q: q.value,
)
@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 16000), (16000, 48000), (44100, 48000)])
def test_band_limited_noise_matches_scipy_ideal_resampling(
    quality: AudioResamplerQuality, in_rate: int, out_rate: int
) -> None:
    """Noise limited to 70 % of the lower Nyquist frequency, made periodic, so that
    scipy's Fourier resampling gives the exact ideal output."""
    n = in_rate  # one second: a whole number of output samples for every pair
    spectrum = np.fft.rfft(np.random.default_rng(7).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / in_rate)
    spectrum[freqs > 0.7 * min(in_rate, out_rate) / 2] = 0
    clean = np.fft.irfft(spectrum, n)
    clean *= 6000 / np.max(np.abs(clean))
    x = np.round(clean).astype(np.int16)
    ideal = signal.resample(x.astype(np.float64), n * out_rate // in_rate)

    y = _stream(AudioResampler(in_rate, out_rate, quality=quality), x.reshape(-1, 1))
    assert _snr_db(y[:, 0], ideal, out_rate // 50) > 70.0


def test_streaming_equals_one_shot() -> None:
    """State is carried across pushes: tiny random pieces give bit-identical output."""
    x = np.round(_tones([440.0, 5000.0], 44100, 44100, 9000)).astype(np.int16)
    x = np.stack([x, x[::-1]], axis=1)
    for quality in QUALITIES:
        streamed = _stream(
            AudioResampler(44100, 48000, num_channels=2, quality=quality), x, max_push=97
        )
        whole = _one_shot(AudioResampler(44100, 48000, num_channels=2, quality=quality), x)
        assert np.array_equal(streamed, whole), quality


def test_frames_and_bytes_give_the_same_output() -> None:
    x = np.round(_tones([1000.0], 48000, 4800, 10000)).astype(np.int16)
    by_bytes = AudioResampler(48000, 16000)
    by_frames = AudioResampler(48000, 16000)
    out_bytes: list[int] = []
    out_frames: list[int] = []
    for i in range(0, 4800, 480):
        chunk = x[i : i + 480]
        for f in by_bytes.push(bytearray(chunk.tobytes())):
            out_bytes += f.data.tolist()
        for f in by_frames.push(AudioFrame(chunk.tobytes(), 48000, 1, 480)):
            assert isinstance(f, AudioFrame)
            assert (f.sample_rate, f.num_channels) == (16000, 1)
            assert len(f.data) == f.samples_per_channel
            out_frames += f.data.tolist()
    assert out_bytes == out_frames
    assert len(out_bytes) > 0


def test_flush_returns_the_tail_and_starts_over() -> None:
    x = np.round(_tones([700.0], 48000, 4800, 12000)).astype(np.int16)
    resampler = AudioResampler(48000, 16000)
    pushed = resampler.push(bytearray(x.tobytes()))
    got = sum(f.samples_per_channel for f in pushed)
    tail = resampler.flush()
    assert len(tail) == 1 and tail[0].samples_per_channel > 0
    assert got + tail[0].samples_per_channel == 1600
    assert resampler.flush() == []  # nothing left

    # after a flush the resampler behaves like a new one
    again = resampler.push(bytearray(x.tobytes())) + resampler.flush()
    fresh = AudioResampler(48000, 16000)
    first = fresh.push(bytearray(x.tobytes())) + fresh.flush()
    assert [bytes(f.data) for f in again] == [bytes(f.data) for f in first]


def test_flush_without_input_and_empty_push() -> None:
    resampler = AudioResampler(16000, 48000)
    assert resampler.flush() == []
    assert resampler.push(bytearray()) == []
    assert resampler.flush() == []


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_equal_rates_pass_through_unchanged(channels: int) -> None:
    x = np.random.default_rng(3).integers(-32768, 32767, 480 * channels, dtype=np.int16)
    resampler = AudioResampler(48000, 48000, num_channels=channels)
    frames = resampler.push(bytearray(x.tobytes()))
    assert len(frames) == 1
    assert frames[0].samples_per_channel == 480
    assert np.array_equal(np.frombuffer(frames[0].data, dtype=np.int16), x)
    frames = resampler.push(AudioFrame(x.tobytes(), 48000, channels, 480))
    assert np.array_equal(np.frombuffer(frames[0].data, dtype=np.int16), x)
    assert resampler.flush() == []


def test_channels_are_independent() -> None:
    """Six channels, each silent except its own tone: no leakage between channels."""
    rate_in, rate_out, n = 48000, 32000, 9600
    x = np.zeros((n, 6), dtype=np.int16)
    for c in range(6):
        if c % 2 == 0:
            x[:, c] = np.round(_tones([500.0 * (c + 1)], rate_in, n, 10000))
    y = _one_shot(AudioResampler(rate_in, rate_out, num_channels=6), x)
    assert y.shape == (6400, 6)
    for c in range(6):
        if c % 2:
            assert not y[:, c].any()
        else:
            ideal = _tones([500.0 * (c + 1)], rate_out, 6400, 10000)
            assert _snr_db(y[:, c], ideal, 320) > 80.0


def test_close_to_the_official_resampler() -> None:
    """The official SDK (libsoxr) as an oracle: same length, nearly the same samples."""
    x = np.round(_tones([440.0, 3000.0], 48000, 48000, 9000)).astype(np.int16)
    ours = _one_shot(AudioResampler(48000, 16000), x.reshape(-1, 1))[:, 0]
    official = rtc.AudioResampler(48000, 16000)
    frames = official.push(bytearray(x.tobytes())) + official.flush()
    theirs = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    assert ours.shape == theirs.shape
    assert _snr_db(ours, theirs.astype(np.float64), 160) > 70.0


def test_quality_enum_matches_the_official() -> None:
    assert [(q.name, q.value) for q in AudioResamplerQuality] == [
        (q.name, q.value) for q in rtc.AudioResamplerQuality
    ]
    assert isinstance(AudioResamplerQuality.HIGH, str)
    assert AudioResamplerQuality("high") is AudioResamplerQuality.HIGH
    # the string value is accepted as well
    resampler = AudioResampler(48000, 24000, quality="very_high")  # type: ignore[arg-type]
    out = resampler.push(bytearray(9600)) + resampler.flush()
    assert sum(f.samples_per_channel for f in out) == 2400


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"input_rate": 0, "output_rate": 16000}, "input_rate"),
        ({"input_rate": 48000, "output_rate": -1}, "output_rate"),
        ({"input_rate": 48000.5, "output_rate": 16000}, "input_rate"),
        ({"input_rate": 48000, "output_rate": 16000, "num_channels": 0}, "num_channels"),
        ({"input_rate": 48000, "output_rate": 16000, "quality": "ultra"}, "quality"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AudioResampler(**kwargs)  # type: ignore[arg-type]


def test_bad_push_arguments() -> None:
    resampler = AudioResampler(48000, 16000, num_channels=2)
    with pytest.raises(ValueError, match="multiple of 4"):
        resampler.push(bytearray(6))
    with pytest.raises(ValueError, match="channel"):
        resampler.push(AudioFrame.create(48000, 1, 480))
    with pytest.raises(ValueError, match="sample rate"):
        resampler.push(AudioFrame.create(44100, 2, 441))
    with pytest.raises(ValueError, match="AudioFrame"):
        resampler.push("nope")  # type: ignore[arg-type]
    # the resampler still works afterwards
    out = resampler.push(AudioFrame.create(48000, 2, 4800)) + resampler.flush()
    assert sum(f.samples_per_channel for f in out) == 1600
