"""Synthetic signals and quality measurements for audio processing modules.

Every ``measure_*`` function takes an APM factory (called with the keyword flags of
``AudioProcessingModule``) and a frame factory (``(data, sample_rate, num_channels,
samples_per_channel) -> frame``), so the very same input can be run through livekit-py's
module and through the official ``livekit.rtc`` one.  The functions are deterministic
(fixed seeds) and are shared by the unit tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal

F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]
ApmFactory = Callable[..., Any]
FrameFactory = Callable[[bytes, int, int, int], Any]

FULL_SCALE = 32768.0


def dbfs(level_db: float) -> float:
    """Linear amplitude (int16 units) of a level given in dB relative to full scale."""
    return float(FULL_SCALE * 10.0 ** (level_db / 20.0))


def to_int16(x: F64) -> I16:
    """Round and clip a float signal (int16 units) to int16."""
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def power(x: npt.NDArray[Any]) -> float:
    """Mean power of a signal (tiny floor so that logs stay finite)."""
    xf = np.asarray(x, dtype=np.float64)
    return float(np.mean(xf * xf)) + 1e-12


def db(ratio: float) -> float:
    """A power ratio in dB."""
    return float(10.0 * np.log10(ratio))


def tone_amplitude(x: npt.NDArray[Any], freq: float, sample_rate: int) -> float:
    """Amplitude of the ``freq`` component of ``x`` (lock-in detection over the whole span)."""
    xf = np.asarray(x, dtype=np.float64)
    n = np.arange(xf.shape[0])
    window = np.hanning(xf.shape[0])
    ref = np.exp(-2j * np.pi * freq * n / sample_rate)
    return float(2.0 * abs(np.sum(xf * window * ref)) / np.sum(window))


# ---------------------------------------------------------------------------------------
# running a module frame by frame


def run_apm(
    apm: Any,
    frame_factory: FrameFactory,
    capture: I16,
    *,
    sample_rate: int,
    reverse: I16 | None = None,
    delay_ms: int | None = None,
) -> I16:
    """Feed ``capture`` (and optionally ``reverse``) through ``apm`` in 10 ms frames.

    Arrays are ``(samples,)`` for mono or ``(samples, channels)``.  Per frame the reverse
    (far-end) frame goes first, then the delay hint, then the capture frame.  Returns the
    processed capture signal with the shape of ``capture``.
    """
    cap = capture.reshape(capture.shape[0], -1)
    rev = None if reverse is None else reverse.reshape(reverse.shape[0], -1)
    step = sample_rate // 100
    frames = cap.shape[0] // step
    out = np.zeros((frames * step, cap.shape[1]), dtype=np.int16)
    for i in range(frames):
        sl = slice(i * step, (i + 1) * step)
        if rev is not None:
            rchunk = np.ascontiguousarray(rev[sl])
            rframe = frame_factory(rchunk.tobytes(), sample_rate, rchunk.shape[1], step)
            apm.process_reverse_stream(rframe)
        if delay_ms is not None:
            apm.set_stream_delay_ms(delay_ms)
        chunk = np.ascontiguousarray(cap[sl])
        frame = frame_factory(chunk.tobytes(), sample_rate, chunk.shape[1], step)
        apm.process_stream(frame)
        out[sl] = np.frombuffer(frame.data, dtype=np.int16).reshape(step, -1)
    return out.reshape((frames * step, *capture.shape[1:]))


# ---------------------------------------------------------------------------------------
# signals


def speech_like(
    seconds: float, sample_rate: int, level_db: float, seed: int, *, pauses: bool = True
) -> F64:
    """A voiced, speech-like talker: gliding pitch, formants and syllable envelope.

    ``level_db`` is the RMS (dBFS) over the active (non-paused) parts.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    base, ph1, ph2 = rng.uniform(110.0, 220.0), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    f0 = base * (
        1.0 + 0.25 * np.sin(2 * np.pi * 0.7 * t + ph1) + 0.1 * np.sin(2 * np.pi * 2.3 * t + ph2)
    )
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = np.zeros(n)
    for k in range(1, 40):
        audible = (k * f0) < min(4000.0, 0.45 * sample_rate)
        voiced += np.sin(k * phase) * audible / k
    # three formant resonators in parallel
    shaped = np.zeros(n)
    formants = ((600.0, 120.0, 1.0), (1500.0, 180.0, 0.6), (2600.0, 250.0, 0.35))
    for fc, bw, gain in ((f * rng.uniform(0.85, 1.15), b, g) for f, b, g in formants):
        r = np.exp(-np.pi * bw / sample_rate)
        a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r]
        shaped += gain * signal.lfilter([1.0 - r], a, voiced)
    shaped += 0.02 * np.std(shaped) * rng.standard_normal(n)  # breath
    # syllables of 150-300 ms, with pauses in between
    env = np.zeros(n)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.15, 0.3) * sample_rate)
        end = min(n, pos + syl)
        env[pos:end] = np.sin(np.pi * np.arange(end - pos) / syl) ** 0.5
        gap = rng.uniform(0.05, 0.35) if pauses else 0.02
        if pauses and rng.uniform() < 0.15:
            gap += 0.4
        pos = end + int(gap * sample_rate)
    x = shaped * env
    active = env > 0.3
    x *= dbfs(level_db) / np.sqrt(np.mean(x[active] ** 2))
    return np.asarray(x, dtype=np.float64)


def room_response(
    sample_rate: int, seed: int, *, delay_ms: float = 40.0, length_ms: float = 300.0
) -> F64:
    """A delayed, exponentially decaying random room impulse response (echo path).

    Silence for ``delay_ms``, then ``length_ms`` of Gaussian taps decaying by 60 dB in
    200 ms; total energy gain -6 dB.
    """
    rng = np.random.default_rng(seed)
    d = int(delay_ms * sample_rate / 1000)
    m = int(length_ms * sample_rate / 1000)
    t = np.arange(m) / sample_rate
    tail = rng.standard_normal(m) * np.exp(-6.9 * t / 0.2)
    h = np.concatenate([np.zeros(d), tail])
    return np.asarray(h * np.sqrt(0.25 / np.sum(h * h)), dtype=np.float64)


def noise_bursts(seconds: float, sample_rate: int, seed: int, *, level_db: float = -20.0) -> F64:
    """White noise bursts (400 ms on, 200 ms off) at ``level_db`` dBFS RMS while on."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    x = rng.standard_normal(n) * dbfs(level_db)
    t = np.arange(n) / sample_rate
    on = (t % 0.6) < 0.4
    return np.asarray(x * on, dtype=np.float64)


def echo_scenario(
    seconds: float = 6.0, sample_rate: int = 48000, *, echo_delay_ms: float = 40.0
) -> tuple[I16, I16]:
    """(far end, microphone) for a far-end-only echo test: mic = room echo + faint noise."""
    far = noise_bursts(seconds, sample_rate, seed=1)
    h = room_response(sample_rate, seed=2, delay_ms=echo_delay_ms)
    echo = signal.fftconvolve(far, h)[: far.shape[0]]
    mic = echo + np.random.default_rng(3).standard_normal(far.shape[0]) * dbfs(-85.0)
    return to_int16(far), to_int16(mic)


# ---------------------------------------------------------------------------------------
# measurements (each returns plain floats, in dB)


def measure_echo_erle(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 6.0,
    delay_ms: int = 40,
) -> float:
    """ERLE (dB) over the second half: far-end noise bursts, 40 ms-delayed room echo."""
    far, mic = echo_scenario(seconds, sample_rate, echo_delay_ms=40.0)
    apm = apm_factory(echo_cancellation=True)
    out = run_apm(apm, frame_factory, mic, sample_rate=sample_rate, reverse=far, delay_ms=delay_ms)
    half = out.shape[0] // 2
    return db(power(mic[half : out.shape[0]]) / power(out[half:]))


def measure_speech_echo_erle(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 8.0,
) -> tuple[float, float]:
    """(ERLE over 0.5-2.5 s, ERLE over the second half) with a far-end talker as echo.

    Two overlapping speech-like far-end talkers, the same 40 ms-delayed room as
    :func:`measure_echo_erle`: harder than noise for the adaptive filter (sparse, coloured
    spectrum), and the first seconds show how fast the canceller converges.
    """
    far_f = speech_like(seconds, sample_rate, -20.0, seed=41)
    far_f += 0.5 * speech_like(seconds, sample_rate, -22.0, seed=42)
    far = to_int16(far_f)
    h = room_response(sample_rate, seed=2, delay_ms=40.0)
    noise = np.random.default_rng(3).standard_normal(far.shape[0]) * dbfs(-85.0)
    mic = to_int16(signal.fftconvolve(far.astype(np.float64), h)[: far.shape[0]] + noise)
    apm = apm_factory(echo_cancellation=True)
    out = run_apm(apm, frame_factory, mic, sample_rate=sample_rate, reverse=far, delay_ms=40)
    early = slice(sample_rate // 2, int(2.5 * sample_rate))
    late = slice(out.shape[0] // 2, out.shape[0])
    return (
        db(power(mic[early]) / power(out[early])),
        db(power(mic[late]) / power(out[late])),
    )


def measure_near_end_alone(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 4.0,
    with_silent_far_end: bool = True,
) -> float:
    """Level change (dB) of a near-end talker alone through the echo canceller."""
    near = to_int16(speech_like(seconds, sample_rate, -26.0, seed=11))
    far = np.zeros_like(near) if with_silent_far_end else None
    apm = apm_factory(echo_cancellation=True)
    out = run_apm(apm, frame_factory, near, sample_rate=sample_rate, reverse=far, delay_ms=40)
    half = out.shape[0] // 2
    return db(power(out[half:]) / power(near[half : out.shape[0]]))


def measure_no_echo_path(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 6.0,
) -> float:
    """Level change (dB, second half) of a near-end talker while a far-end talker plays
    but never reaches the microphone (headphones): nothing should be removed."""
    near = to_int16(speech_like(seconds, sample_rate, -26.0, seed=11))
    far = to_int16(speech_like(seconds, sample_rate, -20.0, seed=41))
    apm = apm_factory(echo_cancellation=True)
    out = run_apm(apm, frame_factory, near, sample_rate=sample_rate, reverse=far, delay_ms=40)
    half = out.shape[0] // 2
    return db(power(out[half:]) / power(near[half : out.shape[0]]))


def measure_double_talk(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 6.0,
) -> tuple[float, float]:
    """Echo + near-end talker together after far-end-only convergence.

    Far-end bursts all along, the talker starts halfway.  Returns (ERLE over the echo-only
    quarter before the talker, level (dB) of the output relative to the clean talker over
    the last third): a canceller that keeps the talker and removes the echo scores ~0 dB.
    """
    far, mic = echo_scenario(seconds, sample_rate)
    near = speech_like(seconds, sample_rate, -26.0, seed=12)
    n = mic.shape[0]
    near[: n // 2] = 0.0
    mixed = to_int16(mic.astype(np.float64) + near)
    apm = apm_factory(echo_cancellation=True)
    out = run_apm(apm, frame_factory, mixed, sample_rate=sample_rate, reverse=far, delay_ms=40)
    m = out.shape[0]
    erle = db(power(mic[m // 4 : m // 2]) / power(out[m // 4 : m // 2]))
    tail = slice(2 * m // 3, m)
    return erle, db(power(out[tail]) / power(near[tail]))


def noise_and_tone(seconds: float, sample_rate: int) -> tuple[I16, F64]:
    """White noise (-40 dBFS) with a 1 kHz tone (-20 dBFS peak) switching every 0.5 s."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    on = ((t // 0.5) % 2) == 1
    tone = dbfs(-20.0) * np.sin(2 * np.pi * 1000.0 * t) * on
    noise = np.random.default_rng(21).standard_normal(n) * dbfs(-40.0)
    return to_int16(tone + noise), on.astype(np.float64)


def measure_noise_suppression(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 6.0,
) -> tuple[float, float]:
    """(noise-only level reduction dB, tone level change dB), over the second half.

    Segments are trimmed by 100 ms at both ends so that latency and tails do not matter.
    """
    x, on = noise_and_tone(seconds, sample_rate)
    apm = apm_factory(noise_suppression=True)
    y = run_apm(apm, frame_factory, x, sample_rate=sample_rate)
    seg = int(0.5 * sample_rate)
    trim = int(0.1 * sample_rate)
    noise_in: list[float] = []
    noise_out: list[float] = []
    tone_in: list[float] = []
    tone_out: list[float] = []
    for start in range(y.shape[0] // 2, y.shape[0] - seg + 1, seg):
        sl = slice(start + trim, start + seg - trim)
        if on[start + seg // 2] > 0:
            tone_in.append(tone_amplitude(x[sl], 1000.0, sample_rate))
            tone_out.append(tone_amplitude(y[sl], 1000.0, sample_rate))
        else:
            noise_in.append(power(x[sl]))
            noise_out.append(power(y[sl]))
    reduction = db(float(np.mean(noise_in)) / float(np.mean(noise_out)))
    tone_change = 20.0 * np.log10(float(np.mean(tone_out)) / float(np.mean(tone_in)))
    return reduction, float(tone_change)


def measure_high_pass(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 2.0,
) -> tuple[float, float]:
    """(50 Hz hum attenuation dB, 1 kHz level change dB) over the second half."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = to_int16(
        dbfs(-20.0) * np.sin(2 * np.pi * 50.0 * t) + dbfs(-20.0) * np.sin(2 * np.pi * 1000.0 * t)
    )
    apm = apm_factory(high_pass_filter=True)
    y = run_apm(apm, frame_factory, x, sample_rate=sample_rate)
    sl = slice(y.shape[0] // 2, y.shape[0])
    hum = 20.0 * np.log10(
        tone_amplitude(x[sl], 50.0, sample_rate) / tone_amplitude(y[sl], 50.0, sample_rate)
    )
    khz = 20.0 * np.log10(
        tone_amplitude(y[sl], 1000.0, sample_rate) / tone_amplitude(x[sl], 1000.0, sample_rate)
    )
    return float(hum), float(khz)


def active_level(x: npt.NDArray[Any], sample_rate: int) -> float:
    """RMS level (dBFS) over the 10 ms blocks within 15 dB of the loudest block."""
    xf = np.asarray(x, dtype=np.float64)
    step = sample_rate // 100
    blocks = xf[: xf.shape[0] // step * step].reshape(-1, step)
    p = np.mean(blocks * blocks, axis=1) + 1e-9
    active = p > p.max() * 10 ** (-15 / 10)
    return db(float(np.mean(p[active])) / FULL_SCALE**2)


def measure_gain_control(
    apm_factory: ApmFactory,
    frame_factory: FrameFactory,
    *,
    sample_rate: int = 48000,
    seconds: float = 8.0,
    quiet_db: float = -42.0,
    loud_db: float = -12.0,
) -> tuple[float, float, float]:
    """(quiet talker output dBFS, loud talker output dBFS, |difference| dB) over the last 3 s.

    The two talkers are 30 dB apart at the input; each runs through its own module.
    """
    levels: list[float] = []
    for level, seed in ((quiet_db, 31), (loud_db, 32)):
        x = to_int16(speech_like(seconds, sample_rate, level, seed=seed))
        apm = apm_factory(auto_gain_control=True)
        y = run_apm(apm, frame_factory, x, sample_rate=sample_rate)
        levels.append(active_level(y[-3 * sample_rate :], sample_rate))
    return levels[0], levels[1], abs(levels[1] - levels[0])
