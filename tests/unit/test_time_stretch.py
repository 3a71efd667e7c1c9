"""fit_length: exact lengths, kept ends, no clicks, pitch kept, any channel count."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from livekit_py.media.time_stretch import fit_length

RATE = 48000
FRAME = 960


def tone(freq: float = 220.0, n: int = FRAME, amplitude: float = 10000.0) -> npt.NDArray[np.int16]:
    t = np.arange(n) / RATE
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def max_step(x: npt.NDArray[np.generic]) -> float:
    return float(np.max(np.abs(np.diff(x.astype(np.float64), axis=0))))


def dominant_frequency(x: npt.NDArray[np.generic]) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)), 1 << 16))
    return float(np.argmax(spectrum) * RATE / (1 << 16))


@pytest.mark.parametrize("length", [0, 120, 480, 720, 840, 960, 1080, 1200, 1440, 1920, 3000])
def test_the_result_has_exactly_the_length_asked_and_the_dtype(length: int) -> None:
    out = fit_length(tone(), length)
    assert out.shape == (length,) and out.dtype == np.int16


def test_the_same_length_gives_the_frame_back() -> None:
    pcm = tone()
    assert fit_length(pcm, FRAME) is pcm


@pytest.mark.parametrize("length", [720, 840, 1200, 1440])
def test_both_ends_are_kept_so_the_frame_still_joins_its_neighbours(length: int) -> None:
    pcm = tone(311.0)
    out = fit_length(pcm, length)
    assert out[0] == pcm[0] and out[-1] == pcm[-1]
    assert np.array_equal(out[:40], pcm[:40]) or np.array_equal(out[-40:], pcm[-40:])


@pytest.mark.parametrize("length", [480, 720, 840, 1080, 1200, 1440, 1920])
def test_a_tone_stays_smooth_and_keeps_its_pitch(length: int) -> None:
    pcm = tone(200.0, 4 * FRAME)  # a few periods, like a voiced stretch of speech
    out = fit_length(pcm, length * 4)
    # no click: no step larger than the tone's own steepest one (plus rounding)
    assert max_step(out) <= max_step(pcm) * 1.05 + 2
    assert dominant_frequency(out) == pytest.approx(200.0, abs=5.0)


def test_silence_stays_silence() -> None:
    silent = np.zeros(FRAME, dtype=np.int16)
    assert not fit_length(silent, 480).any() and not fit_length(silent, 1440).any()


def test_channels_are_scaled_together() -> None:
    left = tone(220.0)
    stereo = np.stack([left, (left // 2).astype(np.int16)], axis=1)
    out = fit_length(stereo, 720)
    assert out.shape == (720, 2) and out.dtype == np.int16
    both = out.astype(np.float64)
    assert np.allclose(both[:, 1], both[:, 0] / 2, atol=1.0)


def test_floats_are_scaled_without_rounding() -> None:
    pcm = tone().astype(np.float32) / 32768
    out = fit_length(pcm, 1200)
    assert out.dtype == np.float32 and out.shape == (1200,)
    assert max_step(out) <= max_step(pcm) * 1.05


def test_loud_frames_do_not_overflow_int16() -> None:
    pcm = tone(440.0, amplitude=32767)
    out = fit_length(pcm, 600)
    assert out.dtype == np.int16 and np.abs(out.astype(np.int32)).max() <= 32767


def test_tiny_frames_are_repeated_or_cut() -> None:
    assert fit_length(np.array([5], dtype=np.int16), 3).tolist() == [5, 5, 5]
    assert fit_length(np.array([1, 2, 3], dtype=np.int16), 1).shape == (1,)


@pytest.mark.parametrize(
    ("pcm", "length", "word"),
    [
        (np.zeros((2, 2, 2), dtype=np.int16), 4, "shape"),
        (np.zeros(4, dtype=np.int16), -1, "length"),
        (np.zeros(4, dtype=np.int16), 2.5, "length"),
        (np.zeros(0, dtype=np.int16), 4, "empty"),
    ],
)
def test_bad_arguments_are_named(pcm: npt.NDArray[np.int16], length: int, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        fit_length(pcm, length)
    with pytest.raises(ValueError, match="sample_rate"):
        fit_length(tone(), 480, sample_rate=0)


# ---------------------------------------------------------------------- whole pitch periods


def _tone(freq: float, samples: int, rate: int = 48000) -> np.ndarray:
    t = np.arange(samples) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_the_pitch_period_of_a_tone_and_none_for_noise_or_silence() -> None:
    from livekit_py.media.time_stretch import pitch_period

    assert pitch_period(_tone(440.0, 960)) in (108, 109, 110)  # 48000 / 440 = 109.1
    period = pitch_period(np.repeat(_tone(200.0, 960)[:, None], 2, axis=1))
    assert period is not None and abs(period - 240) <= 3
    noise = np.random.default_rng(1).integers(-8000, 8000, 960).astype(np.int16)
    assert pitch_period(noise) is None
    assert pitch_period(np.zeros(960, np.int16)) is None
    assert pitch_period(_tone(440.0, 100)) is None  # too short for two periods


def test_a_periodic_frame_is_scaled_by_whole_periods_and_stays_clean() -> None:
    from livekit_py.media.time_stretch import phase_friendly_length

    frame = _tone(440.0, 960)
    assert phase_friendly_length(frame, 720) in range(736, 746)  # two periods shorter
    assert phase_friendly_length(frame, 1200) in range(1176, 1184)
    assert phase_friendly_length(frame, 930) == 960  # less than half a period: no change
    noise = np.random.default_rng(2).integers(-8000, 8000, 960).astype(np.int16)
    assert phase_friendly_length(noise, 720) == 720

    # a whole-period cut leaves the tone intact where an exact one leaves a phase jump
    def purity(pcm: np.ndarray) -> float:
        n = np.arange(pcm.shape[0]) / 48000
        basis = np.stack([np.sin(2 * np.pi * 440 * n), np.cos(2 * np.pi * 440 * n)], axis=1)
        x = pcm.astype(np.float64)
        coeffs, *_ = np.linalg.lstsq(basis, x, rcond=None)
        fit = basis @ coeffs
        return float(fit @ fit / (x @ x))

    whole = fit_length(frame, phase_friendly_length(frame, 720))
    exact = fit_length(frame, 720)
    assert purity(np.asarray(whole)) > 0.99 > purity(np.asarray(exact))
