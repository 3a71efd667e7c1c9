"""Automatic gain control: adaptive digital gain towards a speech level, with a peak limiter.

Per 10 ms frame (all channels share one gain, so the stereo image is kept):

1. The frame power is compared with a noise floor (starting at the first frame's level)
   that follows dips at once and rises by 3 dB/s; frames 9 dB above the floor (and above
   -70 dBFS) count as speech.  This detector does not depend on the absolute level, so
   quiet talkers are found too, while steady noise is not taken for speech.
2. The speech level is the average power of speech frames (a running mean over the first
   second of speech, then an exponential average with a 1 s time constant).
3. The wanted gain brings that level to -22 dBFS RMS, within [-10, +30] dB, and never lifts
   the noise floor above -50 dBFS (this cap never turns a boost into a cut).
4. The applied gain moves towards it by at most 6 dB/s up and 12 dB/s down, interpolated
   sample by sample inside the frame; a limiter lowers it at once when a frame's peak would
   exceed -1 dBFS, then lets it recover at the normal rate.
"""

from __future__ import annotations

import math

import numpy as np

from .audio_filters import Block

__all__ = ["GainController"]

_FULL_SCALE = 32768.0


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, 1e-10) / (_FULL_SCALE * _FULL_SCALE))


class GainController:
    """Stateful gain controller for ``(samples, channels)`` 10 ms blocks (int16 scale)."""

    TARGET_DBFS = -22.0
    MAX_GAIN_DB = 30.0
    MIN_GAIN_DB = -10.0
    MAX_NOISE_DBFS = -50.0
    UP_DB_PER_S = 6.0
    DOWN_DB_PER_S = 12.0
    LIMIT_DBFS = -1.0

    def __init__(self, sample_rate: int) -> None:
        self._frames_per_s = 100.0
        self._noise_db = -100.0
        self._first = True
        self._noise_rise = 3.0 / self._frames_per_s
        self._speech_power = 0.0
        self._speech_frames = 0
        self._gain_db = 0.0  # slew-limited gain (before the limiter)
        self._applied = 1.0  # linear gain at the end of the previous frame
        self._limit_peak = _FULL_SCALE * 10.0 ** (self.LIMIT_DBFS / 20.0)
        self._ramp = np.linspace(0.0, 1.0, sample_rate // 100 + 1)[1:, None]

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def _update_gain(self, block: Block) -> None:
        power = float(np.mean(block * block))
        level = _db(power)
        if self._first:
            self._noise_db = level
            self._first = False
        self._noise_db = min(max(level, -100.0), self._noise_db + self._noise_rise)
        if level > self._noise_db + 9.0 and level > -70.0:
            self._speech_frames += 1
            rate = max(1.0 / self._speech_frames, 1.0 / self._frames_per_s)
            self._speech_power += rate * (power - self._speech_power)
        if self._speech_frames == 0:
            return
        wanted = self.TARGET_DBFS - _db(self._speech_power)
        # do not lift the noise floor above MAX_NOISE_DBFS (but never cut because of it)
        wanted = min(wanted, max(0.0, self.MAX_NOISE_DBFS - self._noise_db))
        wanted = min(max(wanted, self.MIN_GAIN_DB), self.MAX_GAIN_DB)
        up = self.UP_DB_PER_S / self._frames_per_s
        down = self.DOWN_DB_PER_S / self._frames_per_s
        self._gain_db += min(max(wanted - self._gain_db, -down), up)

    def process(self, block: Block) -> Block:
        self._update_gain(block)
        # recover from limiting no faster than the normal upward rate
        up = self.UP_DB_PER_S / self._frames_per_s
        target = min(10.0 ** (self._gain_db / 20.0), self._applied * 10.0 ** (up / 20.0))
        peak = max(float(block.max()), -float(block.min())) if block.size else 0.0
        if peak * target > self._limit_peak:
            target = self._limit_peak / peak
        start = self._applied
        if peak * start > self._limit_peak:
            start = target  # limiter attack: no ramp from a gain that would clip
        gains = start + (target - start) * self._ramp
        self._applied = target
        out: Block = block * gains
        return out
