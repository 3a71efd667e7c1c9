"""AudioProcessingModule: quality against the official module, frame checks, state.

Every quality test runs the same synthetic input (``tests/unit/apm_signals.py``) through
livekit-py's module and through the official ``livekit.rtc`` one, asserts thresholds on
ours, and prints both figures side by side.  The figures are also collected in ``FIGURES``
and attached to the test report with ``record_property``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from livekit_py.rtc.apm import AudioProcessingModule
from livekit_py.rtc.audio_frame import AudioFrame
from tests.unit import apm_signals as sig

rtc: Any
try:
    from livekit import rtc
except ImportError:  # pragma: no cover - the official SDK is a test extra
    rtc = None

#: measured figures, "name" -> {"ours": value, "official": value or None}
FIGURES: dict[str, dict[str, Any]] = {}


@functools.cache
def _official(name: str) -> Any:
    """The official module's figure for measurement ``name`` (None without the SDK)."""
    if rtc is None:
        return None
    apm_cls, frame_cls = rtc.AudioProcessingModule, rtc.AudioFrame
    measures: dict[str, Callable[[], Any]] = {
        "erle": lambda: sig.measure_echo_erle(apm_cls, frame_cls),
        "speech_erle": lambda: sig.measure_speech_echo_erle(apm_cls, frame_cls),
        "near_alone": lambda: sig.measure_near_end_alone(apm_cls, frame_cls),
        "no_echo_path": lambda: sig.measure_no_echo_path(apm_cls, frame_cls),
        "double_talk": lambda: sig.measure_double_talk(apm_cls, frame_cls),
        "noise": lambda: sig.measure_noise_suppression(apm_cls, frame_cls),
        "high_pass": lambda: sig.measure_high_pass(apm_cls, frame_cls),
        "gain": lambda: sig.measure_gain_control(apm_cls, frame_cls),
    }
    return measures[name]()


def _report(record_property: Callable[[str, object], None], name: str, ours: Any) -> None:
    official = _official(name)
    FIGURES[name] = {"ours": ours, "official": official}
    record_property(f"{name}_ours", ours)
    record_property(f"{name}_official", official)
    print(f"\n[apm] {name}: ours={_fmt(ours)} official={_fmt(official)}")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:.2f}" for v in value) + ")"
    return f"{value:.2f}"


def _frame(samples: np.ndarray, rate: int, channels: int) -> AudioFrame:
    return AudioFrame(samples.astype(np.int16).tobytes(), rate, channels, samples.size // channels)


def _values(frame: AudioFrame) -> np.ndarray:
    values: np.ndarray = np.frombuffer(frame.data, dtype=np.int16).copy()
    return values


# --------------------------------------------------------------------------- quality


def test_echo_cancellation_erle(record_property: Callable[[str, object], None]) -> None:
    erle = sig.measure_echo_erle(AudioProcessingModule, AudioFrame)
    _report(record_property, "erle", erle)
    assert erle >= 30.0


def test_echo_cancellation_of_far_end_speech(
    record_property: Callable[[str, object], None],
) -> None:
    early, late = sig.measure_speech_echo_erle(AudioProcessingModule, AudioFrame)
    _report(record_property, "speech_erle", (early, late))
    assert early >= 10.0
    assert late >= 30.0


def test_near_end_talker_alone_passes(record_property: Callable[[str, object], None]) -> None:
    silent_far = sig.measure_near_end_alone(AudioProcessingModule, AudioFrame)
    no_far = sig.measure_near_end_alone(
        AudioProcessingModule, AudioFrame, with_silent_far_end=False
    )
    _report(record_property, "near_alone", silent_far)
    assert abs(silent_far) <= 1.0
    assert abs(no_far) <= 1.0


def test_far_end_without_echo_path_keeps_near_end(
    record_property: Callable[[str, object], None],
) -> None:
    change = sig.measure_no_echo_path(AudioProcessingModule, AudioFrame)
    _report(record_property, "no_echo_path", change)
    assert abs(change) <= 2.0


def test_double_talk_keeps_near_end(record_property: Callable[[str, object], None]) -> None:
    erle, near_level = sig.measure_double_talk(AudioProcessingModule, AudioFrame)
    _report(record_property, "double_talk", (erle, near_level))
    assert erle >= 30.0
    assert abs(near_level) <= 3.0


def test_noise_suppression(record_property: Callable[[str, object], None]) -> None:
    reduction, tone = sig.measure_noise_suppression(AudioProcessingModule, AudioFrame)
    _report(record_property, "noise", (reduction, tone))
    assert reduction >= 8.0
    assert abs(tone) <= 1.0


def test_high_pass_filter(record_property: Callable[[str, object], None]) -> None:
    hum, khz = sig.measure_high_pass(AudioProcessingModule, AudioFrame)
    _report(record_property, "high_pass", (hum, khz))
    assert hum >= 20.0
    assert abs(khz) <= 0.5


def test_gain_control(record_property: Callable[[str, object], None]) -> None:
    quiet, loud, spread = sig.measure_gain_control(AudioProcessingModule, AudioFrame)
    _report(record_property, "gain", (quiet, loud, spread))
    assert spread <= 6.0


def test_gain_control_does_not_lift_steady_noise() -> None:
    noise = sig.to_int16(np.random.default_rng(4).standard_normal(48000 * 3) * sig.dbfs(-60.0))
    out = sig.run_apm(
        AudioProcessingModule(auto_gain_control=True), AudioFrame, noise, sample_rate=48000
    )
    change = sig.db(sig.power(out[-48000:]) / sig.power(noise[-48000:]))
    assert abs(change) <= 1.0


# --------------------------------------------------------------------------- frame checks


@pytest.mark.parametrize("method", ["process_stream", "process_reverse_stream"])
@pytest.mark.parametrize(
    ("rate", "channels", "samples", "needle"),
    [
        (48000, 1, 481, "expected 480 samples per channel"),
        (48000, 1, 960, "expected 480 samples per channel"),
        (16000, 2, 80, "expected 160 samples per channel"),
        (44100, 1, 440, "expected 441 samples per channel"),
        (22050, 1, 220, "sample rate 22050"),
        (7900, 1, 79, "sample rate 7900"),
        (384100, 1, 3841, "sample rate 384100"),
        (48000, 3, 480, "channel count 3"),
    ],
)
def test_rejects_frames_that_are_not_10ms(
    method: str, rate: int, channels: int, samples: int, needle: str
) -> None:
    apm = AudioProcessingModule(
        echo_cancellation=True,
        noise_suppression=True,
        high_pass_filter=True,
        auto_gain_control=True,
    )
    frame = AudioFrame.create(rate, channels, samples)
    with pytest.raises(RuntimeError, match=needle):
        getattr(apm, method)(frame)


def test_rejects_frames_even_with_everything_disabled() -> None:
    with pytest.raises(RuntimeError, match="expected 320 samples per channel"):
        AudioProcessingModule().process_stream(AudioFrame.create(32000, 1, 100))


@pytest.mark.parametrize("delay", [-1, 501, 10_000])
def test_stream_delay_range(delay: int) -> None:
    apm = AudioProcessingModule(echo_cancellation=True)
    apm.set_stream_delay_ms(0)
    apm.set_stream_delay_ms(500)
    with pytest.raises(RuntimeError, match="0 to 500"):
        apm.set_stream_delay_ms(delay)


# --------------------------------------------------------------------------- state, passthrough


def test_high_pass_state_is_continuous_across_frames() -> None:
    rate = 48000
    t = np.arange(rate) / rate
    x = sig.to_int16(10000.0 * np.sin(2 * np.pi * 440.0 * t))
    y = sig.run_apm(
        AudioProcessingModule(high_pass_filter=True), AudioFrame, x, sample_rate=rate
    ).astype(np.float64)
    settled = slice(rate // 5, rate)
    # least-squares sinusoid at 440 Hz: whatever is left is noise or discontinuity
    basis = np.stack([np.sin(2 * np.pi * 440.0 * t), np.cos(2 * np.pi * 440.0 * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis[settled], y[settled], rcond=None)
    residual = y[settled] - basis[settled] @ coef
    assert np.max(np.abs(residual)) <= 3.0
    # second differences at frame edges look like those inside frames
    d2 = np.abs(np.diff(y, 2))[rate // 5 :]
    index = np.arange(d2.shape[0]) + rate // 5 + 1
    edges = (index % 480 == 0) | (index % 480 == 479)
    assert d2[edges].max() <= d2[~edges].max() + 2.0


def test_everything_disabled_is_bit_exact_passthrough() -> None:
    rng = np.random.default_rng(9)
    apm = AudioProcessingModule()
    for rate, channels in ((48000, 2), (16000, 1)):
        for _ in range(5):
            samples = rng.integers(-32768, 32768, size=rate // 100 * channels)
            capture = _frame(samples, rate, channels)
            reverse = _frame(samples[::-1].copy(), rate, channels)
            apm.process_reverse_stream(reverse)
            apm.set_stream_delay_ms(40)
            apm.process_stream(capture)
            assert np.array_equal(_values(capture), samples.astype(np.int16))
            assert np.array_equal(_values(reverse), samples[::-1].astype(np.int16))


def test_reverse_frames_are_not_modified() -> None:
    rng = np.random.default_rng(10)
    apm = AudioProcessingModule(echo_cancellation=True, noise_suppression=True)
    for _ in range(10):
        samples = rng.integers(-3000, 3000, size=480)
        reverse = _frame(samples, 48000, 1)
        apm.process_reverse_stream(reverse)
        assert np.array_equal(_values(reverse), samples.astype(np.int16))
        apm.process_stream(_frame(samples, 48000, 1))


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 32000, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_all_features_at_every_rate_and_layout(rate: int, channels: int) -> None:
    far, mic = sig.echo_scenario(1.0, rate)
    if channels == 2:
        far = np.stack([far, far], axis=1)
        mic = np.stack([mic, mic // 2], axis=1)
    apm = AudioProcessingModule(
        echo_cancellation=True,
        noise_suppression=True,
        high_pass_filter=True,
        auto_gain_control=True,
    )
    out = sig.run_apm(apm, AudioFrame, mic, sample_rate=rate, reverse=far, delay_ms=40)
    assert out.shape == mic.shape
    # the echo is already clearly lower after one second
    assert sig.power(out[-rate // 4 :]) < 0.1 * sig.power(mic[-rate // 4 :])


def test_format_change_and_reverse_before_capture() -> None:
    apm = AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
    noise = np.random.default_rng(11).integers(-2000, 2000, size=960)
    apm.process_reverse_stream(_frame(noise[:480], 48000, 1))  # before any capture frame
    apm.process_stream(_frame(noise[:480], 48000, 1))
    apm.process_reverse_stream(_frame(noise[:160], 16000, 1))  # far end at another rate
    apm.process_stream(_frame(noise[:480], 48000, 1))
    frame = _frame(noise[:320], 16000, 2)  # capture format change
    apm.process_stream(frame)
    assert frame.samples_per_channel == 160


# --------------------------------------------------------------------------- other rates
# The official module (WebRTC's) takes 10 ms frames at any rate, e.g. 441 samples at
# 44.1 kHz; ours converts such frames to the next stage rate up and back.


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 44100, 48000])
def test_echo_is_reduced_at_each_rate(rate: int) -> None:
    erle = sig.measure_echo_erle(AudioProcessingModule, AudioFrame, sample_rate=rate)
    assert erle >= 25.0, f"{erle:.1f} dB at {rate} Hz"


def test_echo_is_reduced_with_the_far_end_at_another_rate() -> None:
    from scipy import signal

    # capture at 44.1 kHz, far end played at 48 kHz (and the other way round): the room
    # echoes what is played, recorded at the capture rate
    for capture_rate, far_rate in ((44100, 48000), (48000, 44100)):
        far_played, _ = sig.echo_scenario(4.0, far_rate)
        far48 = far_played
        at_capture = signal.resample_poly(far_played.astype(np.float64), capture_rate, far_rate)
        room = sig.room_response(capture_rate, seed=2, delay_ms=40.0)
        noise = np.random.default_rng(3).standard_normal(at_capture.shape[0]) * sig.dbfs(-85.0)
        mic = sig.to_int16(signal.fftconvolve(at_capture, room)[: at_capture.shape[0]] + noise)
        apm = AudioProcessingModule(echo_cancellation=True)
        step_c, step_f = capture_rate // 100, far_rate // 100
        out = np.zeros_like(mic)
        for i in range(mic.shape[0] // step_c):
            apm.process_reverse_stream(_frame(far48[i * step_f : (i + 1) * step_f], far_rate, 1))
            apm.set_stream_delay_ms(40)
            frame = _frame(mic[i * step_c : (i + 1) * step_c], capture_rate, 1)
            apm.process_stream(frame)
            out[i * step_c : (i + 1) * step_c] = _values(frame)
        half = out.shape[0] // 2
        erle = sig.db(sig.power(mic[half:]) / sig.power(out[half:]))
        assert erle >= 20.0, f"{erle:.1f} dB, capture {capture_rate} Hz, far end {far_rate} Hz"


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 44100, 48000])
def test_noise_drops_and_tone_stays_at_each_rate(rate: int) -> None:
    reduction, tone = sig.measure_noise_suppression(
        AudioProcessingModule, AudioFrame, sample_rate=rate
    )
    assert reduction >= 8.0, f"{reduction:.1f} dB at {rate} Hz"
    assert abs(tone) <= 1.0


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 44100, 48000])
def test_gain_moves_at_each_rate(rate: int) -> None:
    quiet, _loud, spread = sig.measure_gain_control(
        AudioProcessingModule, AudioFrame, sample_rate=rate
    )
    # the talkers come in at -42 and -12 dBFS
    assert quiet >= -32.0, f"the quiet talker is lifted to {quiet:.1f} dBFS at {rate} Hz"
    assert spread <= 6.0, f"{spread:.1f} dB at {rate} Hz"


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 44100, 48000])
def test_high_pass_at_each_rate(rate: int) -> None:
    hum, khz = sig.measure_high_pass(AudioProcessingModule, AudioFrame, sample_rate=rate)
    assert hum >= 20.0 and abs(khz) <= 0.5, f"{hum:.1f} / {khz:.2f} dB at {rate} Hz"


def test_441_sample_frames_keep_their_shape_and_stay_in_place() -> None:
    apm = AudioProcessingModule(high_pass_filter=True)
    t = np.arange(441 * 50) / 44100
    x = sig.to_int16(8000.0 * np.sin(2 * np.pi * 700.0 * t))
    out = []
    for i in range(50):
        frame = _frame(x[i * 441 : (i + 1) * 441], 44100, 1)
        apm.process_stream(frame)
        assert frame.samples_per_channel == 441
        assert frame.sample_rate == 44100
        out.append(_values(frame))
    y = np.concatenate(out).astype(np.float64)
    # a speech-band tone goes through the converters and the filter unchanged
    level = sig.tone_amplitude(y[-44100 // 4 :], 700.0, 44100)
    assert level == pytest.approx(8000.0, rel=0.02)
