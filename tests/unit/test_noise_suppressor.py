"""The noise suppressors: our spectral one, and how the implementation is chosen."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from livekit_py.dsp import noise_suppression
from livekit_py.dsp.noise_suppression import (
    BACKEND_ENV,
    SpectralNoiseSuppressor,
    WebRtcNoiseSuppressor,
    make_noise_suppressor,
    noise_suppressor_backend,
)
from livekit_py.rtc import AudioFrame, AudioProcessingModule

from . import apm_signals as sig


def _run(ns: SpectralNoiseSuppressor, x: np.ndarray) -> np.ndarray:
    """``x`` (samples, channels) through ``ns`` in 10 ms blocks, realigned by its delay."""
    n = ns.sample_rate // 100
    blocks = [ns.process(x[i : i + n]) for i in range(0, x.shape[0] - n + 1, n)]
    out = np.concatenate(blocks, axis=0)
    return np.concatenate([out[ns.delay :], np.zeros((ns.delay, x.shape[1]))], axis=0)


def _noise_and_tone_levels(y: np.ndarray, x: np.ndarray, on: np.ndarray, rate: int) -> tuple:
    seg, trim = int(0.5 * rate), int(0.1 * rate)
    noise_in, noise_out, tone_in, tone_out = [], [], [], []
    for start in range(y.shape[0] // 2, y.shape[0] - seg + 1, seg):
        sl = slice(start + trim, start + seg - trim)
        if on[start + seg // 2] > 0:
            tone_in.append(sig.tone_amplitude(x[sl], 1000.0, rate))
            tone_out.append(sig.tone_amplitude(y[sl], 1000.0, rate))
        else:
            noise_in.append(sig.power(x[sl]))
            noise_out.append(sig.power(y[sl]))
    reduction = sig.db(float(np.mean(noise_in)) / float(np.mean(noise_out)))
    tone = 20.0 * np.log10(float(np.mean(tone_out)) / float(np.mean(tone_in)))
    return reduction, tone


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 32000, 48000])
def test_spectral_noise_drops_and_the_tone_stays(rate: int) -> None:
    x, on = sig.noise_and_tone(6.0, rate)
    y = _run(SpectralNoiseSuppressor(rate, 1), x.astype(np.float64)[:, None])[:, 0]
    reduction, tone = _noise_and_tone_levels(y, x, on, rate)
    assert reduction >= 10.0, f"{reduction:.1f} dB at {rate} Hz"
    assert abs(tone) <= 0.5, f"tone {tone:+.2f} dB at {rate} Hz"


def test_level_sets_how_far_noise_goes_down() -> None:
    rate = 16000
    x, on = sig.noise_and_tone(6.0, rate)
    reductions = []
    for level in (1, 2, 3, 4):
        y = _run(SpectralNoiseSuppressor(rate, 1, level=level), x.astype(np.float64)[:, None])
        reductions.append(_noise_and_tone_levels(y[:, 0], x, on, rate)[0])
    assert reductions == sorted(reductions)
    assert 4.0 <= reductions[0] <= 6.5 and reductions[-1] >= 17.0, reductions


def test_level_zero_gives_back_the_input_delayed() -> None:
    x = np.random.default_rng(5).standard_normal((4800, 2)) * 3000.0
    ns = SpectralNoiseSuppressor(48000, 2, level=0)
    y = _run(ns, x)
    np.testing.assert_allclose(y[: -ns.delay], x[: -ns.delay], atol=1e-6)


def test_a_clean_talker_passes_unchanged() -> None:
    rate = 48000
    s = sig.speech_like(6.0, rate, -26.0, 3)
    y = _run(SpectralNoiseSuppressor(rate, 1), s[:, None])[:, 0]
    half = s.shape[0] // 2
    change = sig.db(sig.power(y[half:-960]) / sig.power(s[half:-960]))
    assert abs(change) <= 0.5, f"{change:+.2f} dB"


def test_channels_are_processed_independently() -> None:
    rate = 16000
    x, _on = sig.noise_and_tone(6.0, rate)
    talker = sig.speech_like(6.0, rate, -26.0, 8)[: x.shape[0]]
    stereo = np.stack([x.astype(np.float64), talker], axis=1)
    y = _run(SpectralNoiseSuppressor(rate, 2), stereo)
    for ch in (0, 1):
        mono = _run(SpectralNoiseSuppressor(rate, 1), stereo[:, ch : ch + 1])
        np.testing.assert_allclose(y[:, ch : ch + 1], mono, atol=1e-6)


def test_bad_arguments_and_blocks_raise_value_error() -> None:
    with pytest.raises(ValueError, match="multiple of 100"):
        SpectralNoiseSuppressor(44_101, 1)
    with pytest.raises(ValueError, match="num_channels"):
        SpectralNoiseSuppressor(16000, 0)
    with pytest.raises(ValueError, match="level"):
        SpectralNoiseSuppressor(16000, 1, level=7)
    with pytest.raises(ValueError, match=r"\(160, 1\)"):
        SpectralNoiseSuppressor(16000, 1).process(np.zeros((480, 1)))


# ------------------------------------------------------------------ choosing the suppressor


def test_the_environment_forces_ours(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "spectral")
    with caplog.at_level(logging.DEBUG, logger="livekit_py.dsp"):
        ns = make_noise_suppressor(48000, 1)
    assert isinstance(ns, SpectralNoiseSuppressor)
    assert noise_suppressor_backend() == "spectral"
    assert "spectral suppressor (LIVEKIT_PY_NOISE_SUPPRESSOR=spectral)" in caplog.text


def test_without_webrtc_noise_gain_ours_is_used_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setattr(noise_suppression, "_webrtc_module", lambda: None)
    with caplog.at_level(logging.DEBUG, logger="livekit_py.dsp"):
        ns = make_noise_suppressor(16000, 1)
    assert isinstance(ns, SpectralNoiseSuppressor)
    assert "webrtc-noise-gain is not installed" in caplog.text
    monkeypatch.setenv(BACKEND_ENV, "webrtc")
    with pytest.raises(ImportError, match="webrtc-noise-gain"):
        make_noise_suppressor(16000, 1)
    with pytest.raises(ImportError, match="webrtc-noise-gain"):
        WebRtcNoiseSuppressor(16000, 1)


def test_an_unknown_choice_raises_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "rnnoise")
    with pytest.raises(ValueError, match="LIVEKIT_PY_NOISE_SUPPRESSOR"):
        make_noise_suppressor(16000, 1)


def test_webrtcs_is_the_default_where_installed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("webrtc_noise_gain")
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    with caplog.at_level(logging.DEBUG, logger="livekit_py.dsp"):
        ns = make_noise_suppressor(48000, 1)
    assert isinstance(ns, WebRtcNoiseSuppressor)
    assert "WebRTC's suppressor (webrtc-noise-gain " in caplog.text


def test_the_processing_module_uses_the_chosen_suppressor(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "spectral")
    apm = AudioProcessingModule(noise_suppression=True)
    frame = AudioFrame.create(48000, 1, 480)
    with caplog.at_level(logging.DEBUG, logger="livekit_py.dsp"):
        apm.process_stream(frame)
    assert "spectral suppressor" in caplog.text
