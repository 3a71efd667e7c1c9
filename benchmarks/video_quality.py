"""Picture quality figures for the video benchmarks: PSNR and SSIM of a Y (luma) plane.

Both compare a received (decoded) plane with the plane that was sent, as 8-bit
samples. SSIM is the usual one of Wang et al. (2004): an 11-tap gaussian window of
sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the picture.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_SIGMA = 1.5
_TRUNCATE = 3.5  # 11 taps at sigma 1.5, as the reference implementation


def psnr(sent: np.ndarray, received: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (capped at 100 dB for identical planes)."""
    if sent.shape != received.shape:
        raise ValueError(f"planes differ in shape: {sent.shape} and {received.shape}")
    diff = sent.astype(np.float64) - received.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse <= 1e-10:
        return 100.0
    return 10.0 * math.log10(255.0 * 255.0 / mse)


def ssim(sent: np.ndarray, received: np.ndarray) -> float:
    """Mean structural similarity (gaussian window) of two 8-bit planes, 1.0 if equal."""
    if sent.shape != received.shape:
        raise ValueError(f"planes differ in shape: {sent.shape} and {received.shape}")
    x = sent.astype(np.float64)
    y = received.astype(np.float64)

    def blur(a: np.ndarray) -> np.ndarray:
        out: np.ndarray = gaussian_filter(a, _SIGMA, truncate=_TRUNCATE, mode="reflect")
        return out

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + _C1) * (2 * sxy + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return float(np.mean(num / den))
