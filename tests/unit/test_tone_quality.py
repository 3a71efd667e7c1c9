"""The lossy-link test's yardstick (tests/integration/audio_utils.py) on synthetic PCM.

A 440 Hz tone, cut into 10 ms frames delivered on a synthetic clock, with holes of
known lengths: the counts of good frames, missing slots, the longest run and the
longest stall must come out exact.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.integration.audio_utils import (
    LoopLag,
    ToneRecorder,
    good_tone_frames,
    tone_level_dbfs,
    tone_quality,
)

RATE = 48000
SIZE = RATE // 100
FREQ = 440.0
AMP = 0.5
LEVEL = tone_level_dbfs(AMP)
T0 = 1000.0


def tone(samples: int, *, start: int = 0, freq: float = FREQ, amp: float = AMP) -> np.ndarray:
    t = np.arange(start, start + samples) / RATE
    return np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def frames_of(pcm: np.ndarray) -> np.ndarray:
    return pcm[: len(pcm) // SIZE * SIZE].reshape(-1, SIZE)


def score(times: np.ndarray, frames: np.ndarray, *, seconds: float, **kwargs: object):  # type: ignore[no-untyped-def]
    defaults: dict[str, object] = {
        "start": T0,
        "end": T0 + seconds,
        "recorded_until": float(times[-1]) + 0.005 if len(times) else T0 + seconds,
        "rate": RATE,
        "freq": FREQ,
        "expected_dbfs": LEVEL,
    }
    defaults.update(kwargs)
    return tone_quality(times, frames, **defaults)  # type: ignore[arg-type]


def on_time(count: int, *, first: float = T0) -> np.ndarray:
    """Delivery times of ``count`` frames, one every 10 ms (a frame counts at its end)."""
    return first + 0.01 * np.arange(count) + 0.0099


def test_the_level_of_a_sine() -> None:
    assert tone_level_dbfs(1.0) == pytest.approx(-3.0103, abs=1e-3)
    assert tone_level_dbfs(0.5) == pytest.approx(-9.0309, abs=1e-3)


def test_a_clean_tone_is_all_good_at_any_phase() -> None:
    frames = frames_of(tone(3 * RATE, start=123))
    assert good_tone_frames(frames, RATE, FREQ, LEVEL).all()
    q = score(on_time(300), frames, seconds=3.0)
    assert (q.frames, q.good_frames, q.missing_frames) == (300, 300, 0)
    assert q.good_per_second == pytest.approx(100.0)
    assert q.longest_run_ms == 0 and q.longest_stall_ms == 0 and q.longest_gap_ms == 0


def test_what_is_not_a_good_frame() -> None:
    frames = frames_of(tone(20 * SIZE))
    rng = np.random.default_rng(1)
    frames[0] = 0  # silence
    frames[1] = rng.normal(0, 0.35 * 32767, SIZE).astype(np.int16)  # noise at the level
    frames[2] = tone(SIZE, start=2 * SIZE, freq=880.0)  # the wrong tone
    frames[3] = tone(SIZE, start=3 * SIZE, amp=AMP / 2.3)  # 7.2 dB too quiet
    frames[4] = tone(SIZE, start=4 * SIZE, freq=560.0)  # 120 Hz off
    frames[5] = tone(SIZE, start=5 * SIZE, amp=AMP / 1.8)  # 5.1 dB quieter: still good
    frames[6, SIZE // 2 :] = 0  # half a frame missing
    noisy = tone(SIZE, start=7 * SIZE).astype(np.float64)
    frames[7] = (noisy + rng.normal(0, 0.15 * 32767, SIZE)).astype(np.int16)  # SNR 7.4 dB
    clicked = tone(SIZE, start=8 * SIZE)
    clicked[100:140] = 32767  # a click (0.8 ms at full scale)
    frames[8] = clicked
    good = good_tone_frames(frames, RATE, FREQ, LEVEL)
    assert (
        good.tolist()
        == [False, False, False, False, False, True, False, False, False] + [True] * 11
    )
    # too loud: the same frames against a tone expected 7 dB quieter
    assert not good_tone_frames(frames[9:], RATE, FREQ, LEVEL - 7).any()
    assert good_tone_frames(frames[9:], RATE, FREQ, LEVEL - 5).all()
    with pytest.raises(ValueError, match="frames must be shaped"):
        good_tone_frames(frames.reshape(-1), RATE, FREQ, LEVEL)


def test_holes_in_the_audio_count_exactly() -> None:
    pcm = tone(5 * RATE)
    pcm[50 * SIZE : 57 * SIZE] = 0  # 7 frames of silence
    pcm[120 * SIZE + 240 : 123 * SIZE + 240] = 0  # 30 ms, off the frame grid: 4 frames hit
    pcm[300 * SIZE : 312 * SIZE] = tone(12 * SIZE, freq=660.0)  # 12 frames of another tone
    q = score(on_time(500), frames_of(pcm), seconds=5.0)
    assert q.frames == 500 and q.missing_frames == 0
    assert q.good_frames == 500 - 7 - 4 - 12
    assert q.longest_run_ms == 120
    assert q.longest_stall_ms == 0
    assert q.good_per_second == pytest.approx((500 - 23) / 5)


def test_audio_that_never_comes_is_missing() -> None:
    # frames 100..114 (150 ms) and 300..302 never delivered; the clock goes on
    frames = frames_of(tone(4 * RATE))
    keep = np.ones(400, dtype=bool)
    keep[100:115] = False
    keep[300:303] = False
    times = on_time(400)[keep]
    q = score(times, frames[keep], seconds=4.0)
    assert q.frames == 400 - 18
    assert q.missing_frames == 18
    assert q.good_frames == 382
    assert q.longest_run_ms == 150
    assert q.longest_stall_ms == pytest.approx(150)  # the wait before frame 115 too
    assert q.longest_gap_ms == pytest.approx(150)


def test_a_silent_frame_next_to_missing_ones_makes_one_run() -> None:
    pcm = tone(2 * RATE)
    pcm[99 * SIZE : 100 * SIZE] = 0
    frames = frames_of(pcm)
    keep = np.ones(200, dtype=bool)
    keep[100:103] = False
    q = score(on_time(200)[keep], frames[keep], seconds=2.0)
    assert (q.good_frames, q.missing_frames, q.longest_run_ms) == (196, 3, 40)


def test_late_frames_that_catch_up_are_a_stall_not_missing_audio() -> None:
    frames = frames_of(tone(3 * RATE))
    times = on_time(300)
    times[100:120] = times[119]  # 20 frames held back, then all at once (a 190 ms stall)
    q = score(times, frames, seconds=3.0)
    assert (q.frames, q.good_frames, q.missing_frames) == (300, 300, 0)
    assert q.longest_run_ms == 0
    assert q.longest_stall_ms == pytest.approx(190, abs=1e-6)
    assert q.longest_gap_ms == pytest.approx(190, abs=1e-6)


def test_the_test_loops_own_delay_is_not_a_stall() -> None:
    frames = frames_of(tone(3 * RATE))
    times = on_time(300)
    times[100:120] = times[119]
    # the ticker saw the loop 195 ms late when it woke just after the burst
    lag_times = np.array([T0 + 0.5, times[119] + 0.001, T0 + 2.5])
    lags = np.array([0.001, 0.195, 0.002])
    q = score(times, frames, seconds=3.0, loop_lag=(lag_times, lags))
    assert q.longest_stall_ms == 0 and q.longest_gap_ms == 0


def test_frames_in_pairs_are_no_stall() -> None:
    # a 20 ms packet decoded into two 10 ms frames at once, every 20 ms
    frames = frames_of(tone(2 * RATE))
    times = T0 + 0.02 * (np.arange(200) // 2) + 0.0199
    q = score(times, frames, seconds=2.0)
    assert (q.good_frames, q.missing_frames, q.longest_gap_ms) == (200, 0, 0)


def test_only_the_window_counts_and_a_stream_that_stops_is_missing() -> None:
    frames = frames_of(tone(4 * RATE))
    times = on_time(400)
    frames[:50] = 0  # a bad warm-up, before the window
    q = score(times, frames, seconds=2.0, start=T0 + 1.0, end=T0 + 3.0)
    assert (q.frames, q.good_frames, q.missing_frames) == (200, 200, 0)
    # the stream stops after 2.5 s, the recording goes on until 4 s
    q = score(
        times[:250], frames[:250], seconds=2.0, start=T0 + 1.0, end=T0 + 3.0,
        recorded_until=T0 + 4.0,
    )  # fmt: skip
    assert (q.frames, q.good_frames, q.missing_frames) == (150, 150, 50)
    assert q.longest_run_ms == 500
    # nothing at all
    q = score(np.zeros(0), np.zeros((0, SIZE), np.int16), seconds=2.0)
    assert (q.frames, q.good_frames, q.missing_frames, q.longest_gap_ms) == (0, 0, 200, 2000)


def test_bad_input_is_refused() -> None:
    frames = frames_of(tone(RATE))
    times = on_time(100)
    with pytest.raises(ValueError, match="must match"):
        score(times[:-1], frames, seconds=1.0)
    with pytest.raises(ValueError, match="must be after"):
        score(times, frames, seconds=1.0, end=T0)
    with pytest.raises(ValueError, match="must not decrease"):
        score(times[::-1].copy(), frames, seconds=1.0)


def test_the_recorder_cuts_what_it_gets_into_timed_10ms_frames() -> None:
    rec = ToneRecorder(RATE)
    pcm = tone(RATE // 10)  # 100 ms in uneven chunks
    cuts = [0, 700, 960, 1500, 4800]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        rec.add(pcm[a:b], T0 + i)
    times, frames = rec.frames()
    assert frames.shape == (10, SIZE)
    assert np.array_equal(frames.reshape(-1), pcm)
    # frame 0 ends at sample 479 (chunk 0), frame 1 at 959 (chunk 1), frame 2 at 1439
    # (chunk 2), the rest in chunk 3
    assert times.tolist() == [T0, T0 + 1, T0 + 2] + [T0 + 3] * 7
    assert ToneRecorder(RATE).frames()[1].shape == (0, SIZE)
    assert LoopLag().worst_ms() == 0
