"""Acoustic echo cancellation: a frequency-domain adaptive filter plus a residual echo suppressor.

Far end ("reverse stream", what the loudspeaker plays) and near end (the microphone) are
processed in 10 ms blocks of ``N`` samples at the capture rate; the far end is kept on the
capture clock (:class:`FarEndBuffer`) and read back shifted by the delay hint.

Linear stage -- multi-delay block frequency-domain adaptive filter (MDF, a.k.a. partitioned
block FDAF), overlap-save with FFTs of ``2N``:

* the echo path is modelled by ``K`` partitions of ``N`` taps (260 ms), starting 20 ms
  before the position given by the delay hint, so a somewhat wrong hint is tolerated; when
  the hint moves, the filter taps are shifted with it instead of being relearnt;
* echo estimate ``y = last N of IFFT(sum_k W_k X_{t-k})``, error ``e = d - y``;
* the gradient ``conj(X_{t-k}) E`` is constrained to a causal ``N``-tap update for every
  partition, normalised per bin by the far-end power over the filter span, and weighted
  per partition in proportion to the filter energy there (faster on sparse paths);
* the step size follows the "optimal step" rule of Valin (2007): the ratio of residual
  echo to error power per bin, where the residual echo is a leakage coefficient (the
  regression of the error power's fluctuations on the echo estimate's) times the echo
  estimate.  A near-end talker raises the error power and thereby slows adaptation, which
  gives double-talk robustness without a hard detector;
* two filters are kept: the adapting one and a stable copy that produces the output.  The
  copy takes the adapting filter's taps when it has done significantly better (difference
  of error energies tested against its variance), the adapting filter is rolled back when
  it does significantly worse, and both are shrunk when the stable one has been adding
  more energy than it removed (chance correlations between far and near end when there
  is no echo path at all, e.g. headphones).

Residual echo suppressor -- a spectral gain on an overlapped analysis (window 10 ms, hop
5 ms, square-root Hann, perfect reconstruction at unit gain).  The residual echo power per
bin is the larger of

* the leakage coefficient times the echo estimate's power, and
* a power-domain echo path model ``|E|^2 ~ sum_k H_k |X_{t-k}|^2`` fitted by normalised LMS
  on power spectra.  It converges much faster than the phase-sensitive filter; it follows
  decreases at once and may only grow in bins where the linear filter is visibly removing
  echo, so near-end speech does not inflate it;

with a decaying memory for reverberation.  The gain is ``1 - 6 * echo / error`` (floor
-50 dB), smoothed over frequency, with instant attack and slower release.  Bins without
echo keep a gain of one: a near-end talker alone goes through unchanged.  The suppressor
delays the output by 5 ms.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..log import get_logger

__all__ = ["EchoCanceller", "FarEndBuffer"]

logger = get_logger("media.aec")

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]


class FarEndBuffer:
    """The far-end signal on the capture clock.

    Far-end frames are placed one after the other; when the far end stalls (its next frame
    arrives after the capture clock has passed the end of what was written) the gap is
    filled with silence.  Positions are capture-clock sample indices.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._buf: F64 = np.zeros(2 * capacity)
        self._start = 0  # clock index of _buf[0]
        self._end = 0  # clock index after the last written sample
        self.max_lead = capacity // 3

    @property
    def end(self) -> int:
        return self._end

    def write(self, samples: F64, clock: int) -> None:
        if self._end < clock:
            self._skip_to(clock)
        elif self._end - clock > self.max_lead:
            # far end delivered much faster than the capture side consumes: realign
            logger.debug("far end %d samples ahead of capture, realigning", self._end - clock)
            self._skip_to(clock)
        n = samples.shape[0]
        if self._end + n - self._start > self._buf.shape[0]:
            keep = self._capacity - n
            src = self._end - keep - self._start
            self._buf[:keep] = self._buf[src : src + keep]
            self._start = self._end - keep
        pos = self._end - self._start
        self._buf[pos : pos + n] = samples
        self._end += n

    def _skip_to(self, clock: int) -> None:
        # zeros between the last write and clock, never more than the capacity
        gap = clock - self._end
        if gap <= 0 or gap >= self._capacity:
            self._buf[:] = 0.0
            self._start = clock
            self._end = clock
            return
        self.write(np.zeros(gap), self._end)

    def read(self, start: int, stop: int) -> F64:
        """Samples at clock positions ``[start, stop)``, zeros where nothing was written."""
        out = np.zeros(stop - start)
        lo = max(start, self._start)
        hi = min(stop, self._end)
        if hi > lo:
            out[lo - start : hi - start] = self._buf[lo - self._start : hi - self._start]
        return out


class EchoCanceller:
    """Echo canceller for ``num_channels`` microphone channels sharing one far-end signal.

    ``process_far`` takes mono far-end blocks (any length, capture rate), ``process_near``
    takes ``(N, channels)`` microphone blocks and returns the echo-cancelled block, delayed
    by ``N // 2`` samples.
    """

    #: partitions of the adaptive filter (10 ms each)
    PARTITIONS = 26
    #: partitions placed before the delay hint
    LEAD_PARTITIONS = 2
    #: the 2N-sample far-end blocks count every sample twice in the normaliser: this
    #: brings the step back to the NLMS scale
    STEP_SCALE = 2.0
    #: residual echo suppressor: echo power over-estimation factor
    OVER_SUBTRACTION = 6.0
    #: power-domain echo model: upward learning rate, and the mic/error power ratio a bin
    #: needs before it may grow
    POWER_RATE_UP = 0.1
    GROW_RATIO = 2.0

    def __init__(self, sample_rate: int, num_channels: int) -> None:
        n = sample_rate // 100
        k = self.PARTITIONS
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.block = n
        self._bins = n + 1
        self._far = FarEndBuffer(int(sample_rate * 1.8))
        self._clock = 0
        self._delay = 0  # samples, from the hint
        self._offset = 0  # reference lag applied (delay minus the lead), samples
        # far-end spectra, newest first: (K, bins)
        # far-end spectra and their powers, newest first: (K, bins) views of rings that hold
        # every entry twice, so that a new block moves the view instead of the history
        self._x_ring: C128 = np.zeros((2 * k, self._bins), dtype=np.complex128)
        self._xp_ring: F64 = np.zeros((2 * k, self._bins))
        self._ring_pos = 0
        self._x_hist: C128 = self._x_ring[:k]
        self._x_pow_hist: F64 = self._xp_ring[:k]
        self._x_power: F64 = np.zeros(self._bins)
        # adaptive and stable filters: (channels, K, bins)
        # both filters in one array, so that one product and one inverse FFT give both echo
        # estimates: [0] adaptive, [1] stable
        self._w_both: C128 = np.zeros((2, num_channels, k, self._bins), dtype=np.complex128)
        self._w: C128 = self._w_both[0]
        self._w_stable: C128 = self._w_both[1]
        # step control and two-path state, per channel (plain floats: a handful of scalar
        # updates per block, far cheaper than numpy calls on arrays of one or two values)
        self._ctl = [_ChannelControl() for _ in range(num_channels)]
        self._leak: F64 = np.full(num_channels, 0.5)
        self._adapted = False
        self._rf_avg: F64 = np.zeros((num_channels, self._bins))
        self._yf_avg: F64 = np.zeros((num_channels, self._bins))
        self._spec_average = n / sample_rate
        self._beta0 = 2.0 * n / sample_rate
        self._beta_max = 0.5 * n / sample_rate
        self._h_pow: F64 = np.zeros((num_channels, k, self._bins))
        self._e_smooth: F64 = np.zeros((num_channels, self._bins))
        self._d_smooth: F64 = np.zeros((num_channels, self._bins))
        # far-end regularisation: ~-70 dBFS white noise
        self._reg = 2.0 * n * 10.0**2
        # residual echo suppressor
        hop = n // 2
        self._hop = hop
        self._win: F64 = np.sqrt(np.hanning(n + 1)[:n])  # periodic sqrt-Hann, COLA at n/2
        self._res_bins = n // 2 + 1
        # error and echo estimate, the last hop of the previous blocks then the current one,
        # and a view of the two analysis windows over it: (signal, window, c, n)
        self._ey: F64 = np.zeros((2, num_channels, n + hop))
        s0, s1, s2 = self._ey.strides
        self._segs: F64 = np.lib.stride_tricks.as_strided(
            self._ey, shape=(2, 2, num_channels, n), strides=(s0, hop * s2, s1, s2), writeable=False
        )
        self._ola: F64 = np.zeros((num_channels, hop))
        self._echo_psd: F64 = np.zeros((num_channels, self._res_bins))
        self._err_psd: F64 = np.zeros((num_channels, self._res_bins))
        self._gain: F64 = np.ones((num_channels, self._res_bins))
        # error, echo estimate, stable error, mic after N zeros (the first half stays zero)
        self._padded: F64 = np.zeros((4, num_channels, 2 * n))
        # mic, error, stable error, echo estimate, difference of the two echo estimates
        self._rows: F64 = np.zeros((5, num_channels, n))

    # ------------------------------------------------------------------ far end / delay

    def set_delay_ms(self, delay_ms: int) -> None:
        self._delay = int(delay_ms) * self.sample_rate // 1000

    def process_far(self, samples: F64) -> None:
        self._far.write(samples, self._clock)

    def _update_offset(self) -> None:
        """Follow the delay hint; moves under half a block are ignored (hint jitter)."""
        lead = self.LEAD_PARTITIONS * self.block
        target = max(0, self._delay - lead)
        shift = target - self._offset
        if shift == 0 or abs(shift) < self.block // 2:
            return
        self._w[...] = self._shift_filter(self._w, shift)
        self._w_stable[...] = self._shift_filter(self._w_stable, shift)
        self._offset = target
        self._rebuild_history()

    def _shift_filter(self, w: C128, shift: int) -> C128:
        """Move the modelled echo path ``shift`` samples earlier (the reference got later)."""
        n = self.block
        k = self.PARTITIONS
        taps = np.fft.irfft(w, axis=-1)[..., :n].reshape(self.num_channels, k * n)
        moved = np.zeros_like(taps)
        if abs(shift) >= k * n:
            pass  # the whole modelled path moves out of the filter's span: relearn it
        elif shift > 0:
            moved[:, : k * n - shift] = taps[:, shift:]
        else:
            moved[:, -shift:] = taps[:, : k * n + shift]
        padded = np.zeros((self.num_channels, k, 2 * n))
        padded[..., :n] = moved.reshape(self.num_channels, k, n)
        return np.asarray(np.fft.rfft(padded, axis=-1), dtype=np.complex128)

    def _rebuild_history(self) -> None:
        """Recompute the far-end spectra of the previous blocks for the current offset."""
        n = self.block
        k = self.PARTITIONS
        base = self._clock - self._offset
        far = self._far.read(base - (k + 1) * n, base)
        # entry i (i + 1 blocks ago) covers [base - (i + 2) n, base - i n)
        idx = (k - 1 - np.arange(k))[:, None] * n + np.arange(2 * n)[None, :]
        spectra = np.fft.rfft(far[idx], axis=-1)
        powers = _power(spectra)
        self._x_ring[:k] = spectra
        self._x_ring[k:] = spectra
        self._xp_ring[:k] = powers
        self._xp_ring[k:] = powers
        self._ring_pos = 0
        self._x_hist = self._x_ring[:k]
        self._x_pow_hist = self._xp_ring[:k]

    # ------------------------------------------------------------------ near end

    def process_near(self, near: F64) -> F64:
        n = self.block
        self._update_offset()
        base = self._clock - self._offset
        x_block = self._far.read(base - n, base + n)
        self._clock += n

        x_spec = np.fft.rfft(x_block)
        k = self.PARTITIONS
        pos = self._ring_pos = (self._ring_pos - 1) % k
        self._x_ring[pos] = x_spec
        self._x_ring[pos + k] = x_spec
        power = _power(x_spec)
        self._xp_ring[pos] = power
        self._xp_ring[pos + k] = power
        self._x_hist = self._x_ring[pos : pos + k]
        x_pow = self._x_pow_hist = self._xp_ring[pos : pos + k]  # (K, bins), newest first
        x_now = x_block[n:]
        sxx = float(np.dot(x_now, x_now))
        # NLMS normaliser: far-end power in each bin over the whole filter span
        self._x_power = np.sum(x_pow, axis=0)

        d = near.T  # (channels, N)
        # echo estimates of both filters: (2, channels, bins) -> (2, channels, N)
        y_both = np.fft.irfft(np.sum(self._w_both * self._x_hist, axis=2), axis=-1)[..., n:]
        y = y_both[0]
        y_st = y_both[1]
        e = d - y
        e_st = d - y_st

        # every per-channel energy needed below from one Gram matrix of the blocks
        ch = self.num_channels
        rows = self._rows
        rows[0] = d
        rows[1] = e
        rows[2] = e_st
        rows[3] = y
        np.subtract(y, y_st, out=rows[4])
        flat = rows.reshape(5 * ch, n)
        gram: list[list[float]] = (flat @ flat.T).tolist()
        adapt_any = False
        for c, ctl in enumerate(self._ctl):
            dd = gram[c][c]
            ee = gram[ch + c][ch + c]
            ss = gram[2 * ch + c][2 * ch + c]
            if self._check_harm(ctl, dd, ss):
                self._w_stable[c] *= 0.5
                self._w[c] = self._w_stable[c]
            promote, rollback = ctl.compare(ss, ee, gram[4 * ch + c][4 * ch + c])
            if promote:
                self._w_stable[c] = self._w[c]
                e_st[c] = e[c]
                y_st[c] = y[c]
            elif rollback:
                self._w[c] = self._w_stable[c]
            ctl.active = not rollback
            adapt_any = adapt_any or not rollback
            ctl.see = ee + 1.0
            ctl.syy = gram[3 * ch + c][3 * ch + c]
            ctl.sey = gram[ch + c][3 * ch + c]
        # spectra of the zero-padded error, echo estimate, stable error and mic blocks
        padded = self._padded
        padded[0, :, n:] = e
        padded[1, :, n:] = y
        padded[2, :, n:] = e_st
        padded[3, :, n:] = d
        spectra = np.fft.rfft(padded, axis=-1)
        if sxx > 0.0 and adapt_any:
            self._adapt(spectra[0], spectra[1], sxx)
        # the output always comes from the stable filter
        residual = self._residual_power(spectra[2], spectra[3], x_pow, sxx)
        return self._suppress(e_st, y_st, residual)

    def _residual_power(self, e_st_spec: C128, d_spec: C128, x_pow: F64, sxx: float) -> F64:
        """Residual echo power per suppressor bin, from a power-domain echo path model.

        ``|E|^2 ~ sum_k H_k |X_{t-k}|^2`` is fitted by normalised LMS in the power domain
        while the far end is active.  It needs no phase information, so it is usable long
        before the adaptive filter has converged.  It follows drops at once but may only
        grow in bins where the linear filter is clearly removing echo (mic power at least
        twice the error power): a near-end talker, or a far end that does not reach the
        microphone at all (headphones), does not make it grow.
        """
        n = self.block
        target = _power(e_st_spec)  # (c, bins)
        mic = _power(d_spec)
        self._e_smooth = 0.5 * self._e_smooth + 0.5 * target
        self._d_smooth = 0.5 * self._d_smooth + 0.5 * mic
        pred = np.sum(self._h_pow * x_pow, axis=1)
        if sxx > n * 16.0:
            err = np.minimum(target - pred, pred + 0.5 * target)
            may_grow = self._d_smooth > self.GROW_RATIO * self._e_smooth
            rate = np.where(err > 0.0, np.where(may_grow, self.POWER_RATE_UP, 0.0), 0.3)
            norm = np.sum(x_pow * x_pow, axis=0) + 1e-6
            upd = x_pow / norm
            h_pow = self._h_pow
            for c in range(h_pow.shape[0]):
                h_pow[c] += (rate[c] * err[c]) * upd
            np.maximum(h_pow, 0.0, out=h_pow)
        # 50 Hz bins -> 100 Hz suppressor bins; the suppressor window halves the power
        pooled = 0.5 * pred[:, 0::2]
        pooled[:, 1:] += 0.25 * pred[:, 1::2]
        pooled[:, :-1] += 0.25 * pred[:, 1::2]
        return np.asarray(0.5 * pooled, dtype=np.float64)

    @staticmethod
    def _check_harm(ctl: _ChannelControl, dd: float, ss: float) -> bool:
        """Whether to shrink the channel's filters: over the last ~0.5 s the stable filter
        added more energy (``ss``: stable error energy of the block) than it removed
        (``dd``: mic energy).

        This happens without any echo path (headphones): the filter then only tracks
        chance similarities between far and near end, which would eat the near end.
        """
        ctl.harm_d = 0.98 * ctl.harm_d + 0.02 * dd
        ctl.harm_e = 0.98 * ctl.harm_e + 0.02 * ss
        if ctl.harm_e > 1.0 * ctl.harm_d + 1.0:
            ctl.harm_e = ctl.harm_d
            return True
        return False

    def _adapt(self, e_spec: C128, y_pad: C128, sxx: float) -> None:
        """One step of the adaptive filter; ``e_spec`` and ``y_pad`` are the spectra of
        the error and the echo estimate after N zeros, ``(channels, bins)``; the block
        energies are in the channels' :class:`_ChannelControl`."""
        n = self.block
        ctls = self._ctl
        rf = _power(e_spec)  # (channels, bins)
        yf = _power(y_pad)

        # leakage: regression of the error power's fluctuations (around each bin's slow
        # average) on those of the echo estimate
        rf_c = rf - self._rf_avg
        yf_c = yf - self._yf_avg
        self._rf_avg += self._spec_average * rf_c
        self._yf_avg += self._spec_average * yf_c
        pey_all: list[float] = np.einsum("cb,cb->c", rf_c, yf_c).tolist()
        pyy_all: list[float] = np.einsum("cb,cb->c", yf_c, yf_c).tolist()
        leak: list[float] = []
        rer: list[float] = []
        for ctl, pey, pyy in zip(ctls, pey_all, pyy_all, strict=True):
            see, syy, sey = ctl.see, ctl.syy, ctl.sey
            alpha = min(self._beta0 * syy / see, self._beta_max)
            ctl.pey = (1.0 - alpha) * ctl.pey + alpha * pey
            ctl.pyy = max((1.0 - alpha) * ctl.pyy + alpha * pyy, 1.0)
            ctl.pey = min(max(ctl.pey, 0.005 * ctl.pyy), ctl.pyy)
            lk = ctl.pey / ctl.pyy
            leak.append(lk)
            # residual-to-error ratio, global
            ratio = (1e-4 * sxx + 3.0 * lk * syy) / see
            ratio = max(ratio, sey * sey / (1.0 + see * syy))
            rer.append(min(ratio, 0.5))
        self._leak = np.array(leak)
        # ... and per bin
        ef = rf + 1.0
        r = np.minimum(self._leak[:, None] * yf, 0.5 * ef)
        r *= 0.7
        r += (0.3 * np.array(rer))[:, None] * ef
        mu = r / ef

        # initial convergence: fixed-ish step while the leakage estimate means nothing yet
        if not self._adapted:
            done = True
            for c, ctl in enumerate(ctls):
                if ctl.adapt_sum > self.PARTITIONS:
                    continue
                rate = 0.25 * min(sxx, ctl.see) / ctl.see if sxx > n * 16.0 else 0.0
                mu[c] = rate
                ctl.adapt_sum += rate
                done = done and ctl.adapt_sum > self.PARTITIONS
            self._adapted = done

        # proportionate weights over partitions (mean ~1)
        k = self.PARTITIONS
        w_flat = self._w.view(np.float64)  # (c, K, 2 bins): real and imaginary parts
        w_energy = np.sqrt(np.einsum("ckb,ckb->ck", w_flat, w_flat))  # (c, K)
        prop = w_energy + 0.1 * np.max(w_energy, axis=1, keepdims=True) + 1e-9
        prop = 0.99 * k * prop / np.sum(prop, axis=1, keepdims=True)

        step = self.STEP_SCALE * mu * e_spec / (self._x_power + k * self._reg)[None, :]
        # conj(X) S as conj(X conj(S)): one temporary less
        grad = self._x_hist[None, :, :] * np.conj(step)[:, None, :]  # (c, K, bins)
        np.conjugate(grad, out=grad)
        g = np.fft.irfft(grad, axis=-1)
        # causal N-tap update, weighted per partition (the weights applied to the taps: the
        # transform is linear, and N real products are cheaper than N + 1 complex ones)
        prop *= np.array([1.0 if ctl.active else 0.0 for ctl in ctls])[:, None]
        g[..., :n] *= prop[:, :, None]
        g[..., n:] = 0.0
        self._w += np.fft.rfft(g, axis=-1)

    # ------------------------------------------------------------------ suppressor

    def _suppress(self, e: F64, y: F64, residual: F64) -> F64:
        """Residual echo suppression on (channels, N) error and echo estimate blocks;
        returns the (N, channels) output."""
        hop = self._hop
        n = self.block
        # the last hop of the previous blocks, then this block: (signal, c, N + hop)
        ey = self._ey
        ey[..., :hop] = ey[..., n:]
        ey[0, :, hop:] = e
        ey[1, :, hop:] = y
        # both analysis windows of both signals in one transform: (signal, window, c, bins)
        spectra = np.fft.rfft(self._segs * self._win, axis=-1)
        powers = _power(spectra)
        echo_all = np.maximum(self._leak[None, :, None] * powers[1], residual[None])
        # the two windows' recursions, one after the other: reverberation memory (the echo
        # estimate decays rather than drops) and the smoothed error power
        echo_psd = np.empty_like(echo_all)
        err_psd = np.empty_like(echo_all)
        prev_echo, prev_err = self._echo_psd, self._err_psd
        for i in range(2):
            prev_echo = np.maximum(echo_all[i], 0.6 * prev_echo, out=echo_psd[i])
            prev_err = np.add(0.5 * prev_err, 0.5 * powers[0, i], out=err_psd[i])
        self._echo_psd = echo_psd[1].copy()
        self._err_psd = err_psd[1].copy()
        # gains of both windows at once: (window, c, bins)
        err_psd += 1e-3
        ratio = np.divide(echo_psd, err_psd, out=echo_psd)
        raw = np.clip(1.0 - self.OVER_SUBTRACTION * ratio, 0.003, 1.0)
        # smooth across frequency
        smooth = 0.5 * raw
        smooth[..., 1:] += 0.25 * raw[..., :-1]
        smooth[..., :-1] += 0.25 * raw[..., 1:]
        smooth[..., 0] += 0.25 * raw[..., 0]
        smooth[..., -1] += 0.25 * raw[..., -1]
        # fast attack (lower gain), slower release
        gains = smooth
        gain = self._gain
        for i in range(2):
            gain = np.where(gains[i] < gain, gains[i], 0.6 * gain + 0.4 * gains[i])
            gains[i] = gain
        self._gain = gain
        frames = np.fft.irfft(spectra[0] * gains, n=n, axis=-1)  # (window, c, n)
        frames *= self._win
        out = np.empty((e.shape[0], n))
        out[:, :hop] = self._ola + frames[0, :, :hop]
        out[:, hop:] = frames[0, :, hop:] + frames[1, :, :hop]
        self._ola = frames[1, :, hop:]
        return out.T


def _power(spec: C128) -> F64:
    """``|spec|^2`` per element."""
    power: F64 = spec.real * spec.real
    power += spec.imag * spec.imag
    return power


class _ChannelControl:
    """Per-channel scalars of the echo canceller's step control and two-path decision."""

    __slots__ = (
        "active",
        "adapt_sum",
        "gap_fast",
        "gap_slow",
        "harm_d",
        "harm_e",
        "pey",
        "pyy",
        "see",
        "sey",
        "syy",
        "var_fast",
        "var_slow",
    )

    def __init__(self) -> None:
        self.pey = 1.0
        self.pyy = 1.0
        self.adapt_sum = 0.0
        self.gap_fast = 0.0
        self.gap_slow = 0.0
        self.var_fast = 0.0
        self.var_slow = 0.0
        self.harm_d = 0.0
        self.harm_e = 0.0
        # this block: adapt the filter, error energy (+1), echo energy, their product
        self.active = True
        self.see = 1.0
        self.syy = 0.0
        self.sey = 0.0

    def compare(self, s_st: float, s_ad: float, diff: float) -> tuple[bool, bool]:
        """Two-path decision: (promote the adaptive filter, roll it back).

        ``s_st`` and ``s_ad`` are the block's error energies with the stable and the
        adaptive filter, ``diff`` the energy of the difference of their echo estimates.
        The error-energy difference is tested against its own expected variance, on the
        current block and on two smoothed versions of it.
        """
        var = s_st * (diff + 10.0)
        gap = s_st - s_ad  # > 0 when the adaptive filter does better
        self.gap_fast = gf = 0.6 * self.gap_fast + 0.4 * gap
        self.gap_slow = gs = 0.85 * self.gap_slow + 0.15 * gap
        self.var_fast = vf = 0.36 * self.var_fast + 0.16 * var
        self.var_slow = vs = 0.7225 * self.var_slow + 0.0225 * var
        promote = gap * abs(gap) > var or gf * abs(gf) > 0.5 * vf or gs * abs(gs) > 0.25 * vs
        rollback = not promote and (
            -gap * abs(gap) > 4.0 * var or -gf * abs(gf) > 4.0 * vf or -gs * abs(gs) > 4.0 * vs
        )
        if promote or rollback:
            self.gap_fast = self.gap_slow = self.var_fast = self.var_slow = 0.0
        return promote, rollback
