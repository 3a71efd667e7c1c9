"""Access units encoded beforehand with PyAV, for the pre-encoded video tests.

The picture is a moving test pattern: the left half red, the right half blue, and a green
box that moves right by 4 pixels a frame across a band at the top. H.264 is libx264
(constrained baseline, Annex-B: SPS/PPS repeated with every key frame), VP8 libvpx, both
real-time with no frame reordering.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

RED = (230, 30, 30)
BLUE = (30, 30, 230)
GREEN = (30, 230, 30)
BOX_SIZE = 40


@dataclass(frozen=True)
class EncodedUnit:
    """One encoded access unit and the picture it was encoded from."""

    data: bytes
    keyframe: bool
    index: int


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """The test pattern's picture ``index`` as RGB (height x width x 3)."""
    img = np.empty((height, width, 3), np.uint8)
    img[:, : width // 2] = RED
    img[:, width // 2 :] = BLUE
    size = max(2, min(BOX_SIZE, width // 8, height // 4))
    top = height // 18
    x = (index * 4) % max(1, width - size)
    img[top : top + size, x : x + size] = GREEN
    return img


def _without_sei(unit: bytes) -> bytes:
    """An Annex-B access unit without its SEI NAL units (type 6), 4-byte start codes."""
    starts = []
    pos = unit.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos)
        pos = unit.find(b"\x00\x00\x01", pos + 3)
    nals = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(unit)
        if i + 1 < len(starts) and unit[end - 1] == 0:
            end -= 1
        nals.append(unit[start + 3 : end])
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals if n[0] & 0x1F != 6)


def encode(
    codec: str,
    count: int,
    width: int = 640,
    height: int = 360,
    *,
    keyint: int = 1_000_000,
    sei: bool = True,
) -> list[EncodedUnit]:
    """``count`` access units of the pattern, a key frame every ``keyint`` (the first one).

    Args:
        codec: "h264" or "vp8".
        count: How many pictures to encode.
        width: Picture width.
        height: Picture height.
        keyint: Frames between key frames (the default: the first frame only).
        sei: For H.264, keep the SEI NAL unit libx264 writes into its first key frame
            (its version and options); False removes it.
    """
    if codec == "h264":
        ctx = av.CodecContext.create("libx264", "w")
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:repeat-headers=1",
        }
        # the attribute, not the "profile" option, which the libx264 wrapper of PyAV 14 refuses
        ctx.profile = "Baseline"
    elif codec == "vp8":
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        ctx.gop_size = keyint
    else:
        raise ValueError(f"codec must be h264 or vp8, got {codec!r}")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.framerate = Fraction(30)
    ctx.bit_rate = 1_000_000
    units: list[EncodedUnit] = []
    packets: list[av.Packet] = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        frame.time_base = Fraction(1, 30)
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    for index, packet in enumerate(packets):
        data = bytes(packet)
        if codec == "h264" and not sei:
            data = _without_sei(data)
        units.append(EncodedUnit(data, bool(packet.is_keyframe), index))
    return units


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB(A) picture, as float."""
    pixels = rgb[..., :3].astype(np.float64)
    return 0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]


def best_psnr(received_rgb: np.ndarray, width: int, height: int, count: int) -> tuple[float, int]:
    """The highest luma PSNR of ``received_rgb`` against the first ``count`` pattern pictures,
    and the index of that picture (the pattern repeats its box position every few frames,
    so the index is the first of those that match)."""
    got = luma(received_rgb)
    best, where = -1.0, -1
    for index in range(count):
        mse = float(np.mean((got - luma(pattern(index, width, height))) ** 2))
        psnr = 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
        if psnr > best:
            best, where = psnr, index
    return best, where
