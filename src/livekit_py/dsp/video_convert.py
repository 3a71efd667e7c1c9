"""Pixel-format conversion kernels for :class:`livekit_py.rtc.video_frame.VideoFrame`.

The eleven LiveKit buffer layouts (identical to the official SDK's, no row padding)
are described in :mod:`livekit_py.rtc.video_frame`. The kernels work on an
:class:`Image` -- a bytearray and its width, height and ``VideoBufferType`` -- and know
nothing of the ``VideoFrame`` class, which calls them.

Colour conversion reproduces libyuv (which the official SDK calls) bit for bit where the
official SDK offers a conversion: BT.601 limited range, RGB to YUV as
``Y = (66 R + 129 G + 25 B + 0x1080) >> 8`` with chroma taken from the rounded mean of
each 2x2 (4:2:0) or 2x1 (4:2:2) block, YUV to RGB with libyuv's 6-bit fixed-point
table and nearest-neighbour chroma, chroma downscaling with libyuv's bilinear
``ScalePlane``. Pairs the official SDK refuses follow the same formulas; chroma is
upsampled by repeating samples, 10-bit samples are ``v8 << 2 | v8 >> 6`` one way and
``v10 >> 2`` the other.

Nothing runs per pixel in Python. Packed pixels go to 4:2:0 as they lie, one uint32 or
uint64 word per pixel (see the whole-word kernel below; RGB24 is widened to RGBA first);
for 4:2:2 and 4:4:4 they are split into R, G, B planes by libswscale (through PyAV: a
plain byte shuffle, exact), which also repacks them between packed layouts. The
arithmetic is vectorised numpy over blocks of rows small enough to stay in the CPU
cache, in 16-bit integers or several 16-bit lanes of one word, and output pixels are
assembled as whole uint32 words. Large pictures are converted in two bands of rows at
once when a CPU is spare, one on a helper thread (numpy releases the GIL), joined
before returning. Work
arrays and libswscale reformatters are cached per thread.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import av
import numpy as np
import numpy.typing as npt
from av.video.plane import VideoPlane
from av.video.reformatter import VideoReformatter

from ..types import VideoBufferType

__all__ = [
    "TYPE_NAMES",
    "Image",
    "buffer_size",
    "convert_into",
    "from_av_frame",
    "is_packed",
    "plane_slices",
    "to_av_frame",
]


class Image(NamedTuple):
    """A raw picture: the bytes of one ``VideoBufferType`` layout and its geometry."""

    data: bytearray
    width: int
    height: int
    type: int


_U8 = npt.NDArray[np.uint8]
_U16 = npt.NDArray[np.uint16]
_U32 = npt.NDArray[np.uint32]
_I16 = npt.NDArray[np.int16]
_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]

_RGBA = int(VideoBufferType.RGBA)
_ABGR = int(VideoBufferType.ABGR)
_ARGB = int(VideoBufferType.ARGB)
_BGRA = int(VideoBufferType.BGRA)
_RGB24 = int(VideoBufferType.RGB24)
_I420 = int(VideoBufferType.I420)
_I420A = int(VideoBufferType.I420A)
_I422 = int(VideoBufferType.I422)
_I444 = int(VideoBufferType.I444)
_I010 = int(VideoBufferType.I010)
_NV12 = int(VideoBufferType.NV12)

_TYPE_NAMES = {
    _RGBA: "RGBA",
    _ABGR: "ABGR",
    _ARGB: "ARGB",
    _BGRA: "BGRA",
    _RGB24: "RGB24",
    _I420: "I420",
    _I420A: "I420A",
    _I422: "I422",
    _I444: "I444",
    _I010: "I010",
    _NV12: "NV12",
}


class _Order(NamedTuple):
    """Byte index of R, G, B and alpha inside one packed pixel (alpha -1: none)."""

    r: int
    g: int
    b: int
    a: int
    bpp: int


_PACKED: dict[int, _Order] = {
    _RGBA: _Order(0, 1, 2, 3, 4),
    _ABGR: _Order(3, 2, 1, 0, 4),
    _ARGB: _Order(1, 2, 3, 0, 4),
    _BGRA: _Order(2, 1, 0, 3, 4),
    _RGB24: _Order(0, 1, 2, -1, 3),
}


class _YuvKind(NamedTuple):
    sx: int  # horizontal chroma subsampling factor
    sy: int  # vertical chroma subsampling factor
    alpha: bool
    ten_bit: bool
    semi_planar: bool


_YUV: dict[int, _YuvKind] = {
    _I420: _YuvKind(2, 2, False, False, False),
    _I420A: _YuvKind(2, 2, True, False, False),
    _I422: _YuvKind(2, 1, False, False, False),
    _I444: _YuvKind(1, 1, False, False, False),
    _I010: _YuvKind(2, 2, False, True, False),
    _NV12: _YuvKind(2, 2, False, False, True),
}


class _Plane(NamedTuple):
    offset: int
    rows: int
    row_bytes: int

    @property
    def size(self) -> int:
        return self.rows * self.row_bytes


def _planes(buffer_type: int, width: int, height: int) -> tuple[_Plane, ...]:
    """Where each plane of a frame lives in its buffer (one entry for packed layouts)."""
    packed = _PACKED.get(buffer_type)
    if packed is not None:
        return (_Plane(0, height, width * packed.bpp),)
    kind = _YUV[buffer_type]
    cw = (width + kind.sx - 1) // kind.sx
    ch = (height + kind.sy - 1) // kind.sy
    sample = 2 if kind.ten_bit else 1
    shapes = [(height, width * sample)]
    if kind.semi_planar:
        shapes.append((ch, cw * 2))
    else:
        shapes += [(ch, cw * sample), (ch, cw * sample)]
    if kind.alpha:
        shapes.append((height, width))
    out = []
    offset = 0
    for rows, row_bytes in shapes:
        out.append(_Plane(offset, rows, row_bytes))
        offset += rows * row_bytes
    return tuple(out)


def _buffer_size(buffer_type: int, width: int, height: int) -> int:
    last = _planes(buffer_type, width, height)[-1]
    return last.offset + last.size


# --------------------------------------------------------------------------- views

# PyAV / FFmpeg names of the packed layouts (same byte orders)
_AV_FORMATS = {_RGBA: "rgba", _ABGR: "abgr", _ARGB: "argb", _BGRA: "bgra", _RGB24: "rgb24"}


def _u8(frame: Image) -> _U8:
    return np.frombuffer(frame.data, dtype=np.uint8)


def _packed_view(frame: Image) -> _U8:
    """(height, width, bytes per pixel) view of a packed frame."""
    bpp = _PACKED[frame.type].bpp
    n = frame.width * frame.height * bpp
    return _u8(frame)[:n].reshape(frame.height, frame.width, bpp)


class _YuvPlanes(NamedTuple):
    y: npt.NDArray[np.generic]
    u: npt.NDArray[np.generic]
    v: npt.NDArray[np.generic]
    a: _U8 | None


def _yuv_view(frame: Image) -> _YuvPlanes:
    """Views of the Y, U, V (and A) planes; uint16 samples for I010, uint8 otherwise."""
    kind = _YUV[frame.type]
    buf = _u8(frame)
    arrays = []
    for plane in _planes(frame.type, frame.width, frame.height):
        raw = buf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        arrays.append(raw.view("<u2") if kind.ten_bit else raw)
    if kind.semi_planar:
        y, uv = arrays
        return _YuvPlanes(y, uv[:, 0::2], uv[:, 1::2], None)
    alpha = arrays[3] if kind.alpha else None
    return _YuvPlanes(arrays[0], arrays[1], arrays[2], alpha)


def _yuv8(frame: Image) -> _YuvPlanes:
    """The planes of a YUV frame with 8-bit samples (I010 is reduced, others are views)."""
    planes = _yuv_view(frame)
    if not _YUV[frame.type].ten_bit:
        return planes
    return _YuvPlanes(_to_8bit(planes.y), _to_8bit(planes.u), _to_8bit(planes.v), None)


def _flipped(planes: _YuvPlanes) -> _YuvPlanes:
    a = planes.a[::-1] if planes.a is not None else None
    return _YuvPlanes(planes.y[::-1], planes.u[::-1], planes.v[::-1], a)


def _to_8bit(plane: npt.NDArray[np.generic]) -> _U8:
    """10-bit samples (in uint16) to 8 bits: v >> 2, out-of-range values saturate."""
    out: _U16 = np.right_shift(plane, 2, dtype=np.uint16)
    np.minimum(out, 255, out=out)
    return out.astype(np.uint8)


def _store_10bit(src: _U8, dst: npt.NDArray[np.generic]) -> None:
    """8-bit samples into a uint16 plane as 10 bits, stretching 255 to 1023."""
    np.multiply(src, 4, out=dst, dtype=np.uint16)
    np.bitwise_or(dst, src >> 6, out=dst, dtype=np.uint16)


_BLOCK_PIXELS = 1 << 17


def _block_rows(width: int) -> int:
    """Rows per processing block: an even number, about 128k pixels.

    Small enough for the temporaries to stay in the CPU cache, big enough for numpy's
    per-call overhead not to matter.
    """
    return max(2, (_BLOCK_PIXELS // max(width, 1)) & ~1)


_local = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A reusable uninitialised work array, one per name and thread.

    Reusing these avoids fresh allocations on every conversion, which are expensive
    (page faults) at video frame sizes.
    """
    cache: dict[str, npt.NDArray[Any]] | None = getattr(_local, "arrays", None)
    if cache is None:
        cache = _local.arrays = {}
    array = cache.get(name)
    if array is None or array.shape != shape or array.dtype != np.dtype(dtype):
        array = cache[name] = np.empty(shape, dtype)
    return array


def _av_packed(frame: Image) -> av.VideoFrame:
    """A PyAV frame over the pixels of a packed frame (no copy where PyAV allows it)."""
    pixels = _packed_view(frame)
    fmt = _AV_FORMATS[frame.type]
    try:
        return av.VideoFrame.from_numpy_buffer(pixels, format=fmt)
    except ValueError:  # older PyAV: not for this format
        return av.VideoFrame.from_ndarray(pixels, format=fmt)


_sws_has_threads = True


def _sws(av_frame: av.VideoFrame, fmt: str) -> av.VideoFrame:
    """``av_frame`` in pixel format ``fmt``, by libswscale.

    Each thread keeps a reformatter per pair of formats, so a scaler context is only set
    up when the picture size changes; it runs single-threaded.
    """
    global _sws_has_threads
    reformatters: dict[tuple[str, str], VideoReformatter] | None
    reformatters = getattr(_local, "reformatters", None)
    if reformatters is None:
        reformatters = _local.reformatters = {}
    key = (av_frame.format.name, fmt)
    reformatter = reformatters.get(key)
    if reformatter is None:
        reformatter = reformatters[key] = VideoReformatter()
    if _sws_has_threads:
        try:
            return reformatter.reformat(av_frame, format=fmt, threads=1)
        except TypeError:  # PyAV < 17: no threads argument, always one thread
            _sws_has_threads = False
    return reformatter.reformat(av_frame, format=fmt)


def _plane_rows(plane: VideoPlane) -> _U8:
    """(rows, line size) view of one plane of a PyAV frame, row padding included."""
    return np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)


def _av_planes(av_frame: av.VideoFrame) -> list[_U8]:
    """(height, width) uint8 views of the planes of a planar 8-bit PyAV frame."""
    return [_plane_rows(p)[:, : p.width] for p in av_frame.planes]


def _rgb_planes(frame: Image) -> tuple[_U8, _U8, _U8]:
    """R, G, B planes of a packed frame (libswscale unpacks them: a plain byte shuffle)."""
    g, b, r = _av_planes(_sws(_av_packed(frame), "gbrp"))
    return r, g, b


def _words(frame: Image) -> _U32:
    """(height, width) view of a 4-byte packed frame, one little-endian uint32 per pixel."""
    n = frame.width * frame.height
    return np.frombuffer(frame.data, dtype="<u4", count=n).reshape(frame.height, frame.width)


def _store_packed(av_frame: av.VideoFrame, dst: Image, flip: bool) -> None:
    """Repack a packed PyAV frame into the packed layout of ``dst`` (libswscale)."""
    w, h = dst.width, dst.height
    fmt = _AV_FORMATS[dst.type]
    if av_frame.format.name != fmt:
        av_frame = _sws(av_frame, fmt)
    bpp = _PACKED[dst.type].bpp
    rows = _plane_rows(av_frame.planes[0])[:h, : w * bpp]
    target = _u8(dst)[: w * h * bpp].reshape(h, w * bpp)
    target[...] = rows[::-1] if flip else rows


# ------------------------------------------------------------------ RGB -> YUV

# Both chroma components at once in one uint32: U in bits 0-15, V in bits 16-31, as
#   U = (112 B - 74 G - 38 R + 0x8000) >> 8     V = (112 R - 94 G - 18 B + 0x8000) >> 8
# (each true 16-bit sum lies in 4208..61328, so arithmetic modulo 2**32 is exact).
_MASK32 = 0xFFFFFFFF
_UV_R = np.uint32((-38 + (112 << 16)) & _MASK32)
_UV_G = np.uint32((-74 + (-94 << 16)) & _MASK32)
_UV_B = np.uint32((112 + (-18 << 16)) & _MASK32)
_UV_CONST = np.uint32(0x8000 + (0x8000 << 16))


def _pair_rows(src: _U8, out: _U16) -> None:
    """out[i] = src[2i] + src[2i+1]; a lone last row counts twice."""
    n = src.shape[0]
    half = n // 2
    np.add(src[0 : 2 * half : 2], src[1 : 2 * half : 2], out=out[:half], dtype=np.uint16)
    if n & 1:
        np.add(src[n - 1], src[n - 1], out=out[half], dtype=np.uint16)


def _block_means(src: npt.NDArray[Any], sx: int, sy: int, out: _U32) -> None:
    """Rounded means of sx by sy blocks of a (row-paired when sy == 2) plane block.

    ``src`` holds plain samples (uint8) when sy == 1 and sums of row pairs (uint16) when
    sy == 2. A lone last column stands for the missing half of its block.
    """
    count = sx * sy
    if sx == 1:
        np.copyto(out, src)
        if count > 1:
            np.add(out, count // 2, out=out)
            np.right_shift(out, 1, out=out)
        return
    n = src.shape[1]
    half = n // 2
    shift = {2: 1, 4: 2}[count]
    if src.dtype == np.uint16 and not n & 1 and src.flags.c_contiguous:
        # neighbours a, b in one uint32 a + b << 16: times 0x10001 puts a + b in bits 16-31
        pairs = src.view(np.uint32)
        np.multiply(pairs, np.uint32(0x00010001), out=out)
        np.add(out, np.uint32((count // 2) << 16), out=out)
        np.right_shift(out, 16 + shift, out=out)
        return
    np.add(src[:, 0 : 2 * half : 2], src[:, 1 : 2 * half : 2], out=out[:, :half], dtype=np.uint32)
    if n & 1:
        np.add(src[:, n - 1], src[:, n - 1], out=out[:, half], dtype=np.uint32)
    np.add(out, count // 2, out=out)
    np.right_shift(out, shift, out=out)


def _rgb_to_yuv(
    r: _U8,
    g: _U8,
    b: _U8,
    y_out: _U8,
    u_out: _U8,
    v_out: _U8,
    sx: int,
    sy: int,
) -> None:
    """R, G, B planes to Y, U, V planes (libyuv ARGBToI420 / ARGBToI422 / ARGBToI444).

    Chroma comes from the rounded mean of each sx by sy block of pixels, edge pixels
    standing in for the missing half of a block at odd sizes.
    """
    h, w = r.shape
    cw = u_out.shape[1]
    rows = _block_rows(w)
    crows = rows // sy
    t1 = _scratch("ry1", (rows, w), np.uint16)
    t2 = _scratch("ry2", (rows, w), np.uint16)
    half = _scratch("rhalf", (crows, w), np.uint16)
    means = [_scratch(f"rmean{i}", (crows, cw), np.uint32) for i in range(3)]
    acc = _scratch("racc", (crows, cw), np.uint32)
    tmp = _scratch("rtmp", (crows, cw), np.uint32)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = r1 - r0
        cn = (n + sy - 1) // sy
        c0 = r0 // sy
        planes = (r[r0:r1], g[r0:r1], b[r0:r1])

        # Y = (66 R + 129 G + 25 B + 0x1080) >> 8, all of it fits in uint16
        a, t = t1[:n], t2[:n]
        np.multiply(planes[0], 66, out=a, dtype=np.uint16)
        np.multiply(planes[1], 129, out=t, dtype=np.uint16)
        np.add(a, t, out=a)
        np.multiply(planes[2], 25, out=t, dtype=np.uint16)
        np.add(a, t, out=a)
        np.add(a, 0x1080, out=a)
        np.right_shift(a, 8, out=y_out[r0:r1], casting="unsafe")

        # rounded block means of R, G, B
        for plane, mean in zip(planes, means, strict=True):
            src: npt.NDArray[Any] = plane
            if sy == 2:
                _pair_rows(plane, half[:cn])
                src = half[:cn]
            _block_means(src, sx, sy, mean[:cn])

        # U in bits 0-15 and V in bits 16-31 of one uint32
        ac, tc = acc[:cn], tmp[:cn]
        np.multiply(means[0][:cn], _UV_R, out=ac)
        np.multiply(means[1][:cn], _UV_G, out=tc)
        np.add(ac, tc, out=ac)
        np.multiply(means[2][:cn], _UV_B, out=tc)
        np.add(ac, tc, out=ac)
        np.add(ac, _UV_CONST, out=ac)
        np.right_shift(ac, 8, out=u_out[c0 : c0 + cn], casting="unsafe")
        np.right_shift(ac, 24, out=v_out[c0 : c0 + cn], casting="unsafe")


# ------------------------------------------------- 4-byte pixels -> 4:2:0, whole words
#
# The fast path of every packed layout to 4:2:0 works on the pixels as they lie in the
# buffer, with no unpacking into planes:
#
# Y: R and B are bytes 0 and 2 of a pixel's little-endian uint32 word (after a >> 8 for
#   ARGB and ABGR) and G is byte 1, so with x the word,
#     (x & 0x00FF00FF) * (cB + cR << 16) + (x & 0xFF00) * (129 << 8) + (0x1080 << 16)
#   holds 66 R + 129 G + 25 B + 0x1080 (at most 60324) in bits 16-31, nothing carries
#   into them (the low half holds at most 66 * 255), and Y is that >> 24.
# U, V: each byte widened to 16 bits makes a pixel one uint64 of four 16-bit lanes; row
#   pairs, then neighbouring pixels, are added lane by lane (at most 1020 per lane), and
#   (+ 2 per lane) >> 2 with the alpha lane masked off gives the rounded 2x2 means.
#   Multiplying that uint64 by sum(c_i << 16 (3 - i)), c_i the coefficient of lane i,
#   gathers sum(c_i m_i) in lane 3; the lower lanes' cross terms, offset by 2**47, stay
#   within 0..2**48 for every mean in 0..255 (they are linear, the corners bound them),
#   so adding 0x8000 << 48 + 2**47 and taking >> 56 gives (sum + 0x8000) >> 8 exactly.

_LITTLE_ENDIAN = sys.byteorder == "little"  # the lanes of the uint64 views
_M64 = (1 << 64) - 1
_LANE_ROUND = np.uint64(0x0002000200020002)
_CHROMA_CONST = np.uint64((0x8000 << 48) + (1 << 47))
_Y_RB_MASK = np.uint32(0x00FF00FF)
_Y_G_MASK = np.uint32(0x0000FF00)
_Y_G_MUL = np.uint32(129 << 8)
_Y_CONST = np.uint32(0x1080 << 16)


class _WordCoefs(NamedTuple):
    """Constants of the whole-word 4:2:0 kernel for one byte order."""

    shift: int  # right shift putting R, G, B in bytes 0-2 (8 when alpha comes first)
    y_rb: np.uint32
    u: np.uint64
    v: np.uint64
    mask: np.uint64  # 0x00FF in the colour lanes, 0 in the alpha lane


def _word_coefs(order: _Order) -> _WordCoefs:
    y_coef = {order.r: 66, order.g: 129, order.b: 25}
    shift = 8 if order.a == 0 else 0
    low, high = y_coef[shift // 8], y_coef[shift // 8 + 2]
    y_rb = np.uint32(high + (low << 16))

    def gather(cr: int, cg: int, cb: int) -> np.uint64:
        lanes = {order.r: cr, order.g: cg, order.b: cb}
        return np.uint64(sum(c << (16 * (3 - i)) for i, c in lanes.items()) & _M64)

    mask = sum(0xFF << (16 * i) for i in (order.r, order.g, order.b))
    return _WordCoefs(shift, y_rb, gather(-38, -74, 112), gather(112, -94, -18), np.uint64(mask))


_WORD_COEFS = {t: _word_coefs(o) for t, o in _PACKED.items() if o.bpp == 4}


def _words_to_420(px: _U32, coefs: _WordCoefs, y_out: _U8, u_out: _U8, v_out: _U8) -> None:
    """(rows, width) uint32 pixels to their Y plane and 4:2:0 U, V planes (libyuv ARGBToI420).

    Chroma is the rounded mean of each 2x2 block; at an odd width or height the last
    column or row stands for the missing half of its blocks. ``px`` may have any row
    stride (a negative one too); its rows must start a chroma row (an even row).
    """
    h, w = px.shape
    cw = (w + 1) // 2
    half_w = w // 2
    rows = _block_rows(w)
    crows = rows // 2
    t1 = _scratch("wy1", (rows, w), np.uint32)
    t2 = _scratch("wy2", (rows, w), np.uint32)
    sums = _scratch("wsum", (crows, 4 * w), np.uint16)
    means = _scratch("wmean", (crows, cw), np.uint64)
    acc = _scratch("wacc", (crows, cw), np.uint64)
    lane_bytes: _U8 = px.view(np.uint8)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = r1 - r0
        pairs = n // 2
        cn = (n + 1) // 2
        c0 = r0 // 2

        x = px[r0:r1]
        a, b = t1[:n], t2[:n]
        if coefs.shift:
            np.right_shift(x, coefs.shift, out=b)
            x = b
        np.bitwise_and(x, _Y_RB_MASK, out=a)
        np.multiply(a, coefs.y_rb, out=a)
        np.bitwise_and(x, _Y_G_MASK, out=b)
        np.multiply(b, _Y_G_MUL, out=b)
        np.add(a, b, out=a)
        np.add(a, _Y_CONST, out=a)
        np.right_shift(a, 24, out=y_out[r0:r1], casting="unsafe")

        block = lane_bytes[r0:r1]
        s = sums[:cn]
        np.add(block[0 : 2 * pairs : 2], block[1 : 2 * pairs : 2], out=s[:pairs], dtype=np.uint16)
        if n & 1:
            np.add(block[n - 1], block[n - 1], out=s[pairs], dtype=np.uint16)
        lanes = s.view(np.uint64)  # (cn, w): one pixel's four lane sums per uint64
        m = means[:cn]
        np.add(lanes[:, 0 : 2 * half_w : 2], lanes[:, 1 : 2 * half_w : 2], out=m[:, :half_w])
        if w & 1:
            np.add(lanes[:, w - 1], lanes[:, w - 1], out=m[:, half_w])
        np.add(m, _LANE_ROUND, out=m)
        np.right_shift(m, np.uint64(2), out=m)
        np.bitwise_and(m, coefs.mask, out=m)
        t = acc[:cn]
        for k, out in ((coefs.u, u_out), (coefs.v, v_out)):
            np.multiply(m, k, out=t)
            np.add(t, _CHROMA_CONST, out=t)
            np.right_shift(t, np.uint64(56), out=out[c0 : c0 + cn], casting="unsafe")


# ------------------------------------------------------------------ YUV -> RGB

# libyuv BT.601 limited range, with y1 = (y * 0x0101 * 18997) >> 16:
#   R = clamp((y1 + 102 (v - 128) - 1160) >> 6)
#   G = clamp((y1 - 25 (u - 128) - 52 (v - 128) - 1160) >> 6)
#   B = clamp((y1 + 128 (u - 128) - 1160) >> 6) = clamp(((y1 + 56) >> 6) + 2 u - 275)
_Y_MUL = 0x0101 * 18997
# chroma terms as u * _TERM_U + v * _TERM_V + _TERM_CONST, for R, G and B in that order
# (R and G still need y1 added and a >> 6, B needs ((y1 + 56) >> 6) added)
_TERM_U = np.array([0, -25, 2], np.int16).reshape(3, 1, 1)
_TERM_V = np.array([102, -52, 0], np.int16).reshape(3, 1, 1)
_TERM_CONST = np.array([-102 * 128 - 1160, (25 + 52) * 128 - 1160, -275], np.int16).reshape(3, 1, 1)


def _dup_columns(src: _I16, out: _U32) -> _I16:
    """Each int16 column twice, via a uint32 holding the value in both halves."""
    np.multiply(src.view(np.uint16), np.uint32(0x00010001), out=out, dtype=np.uint32)
    return out.view(np.int16)


def _yuv_to_rgb(
    y: _U8,
    u: _U8,
    v: _U8,
    sx: int,
    sy: int,
    alpha: _U8 | None,
    dst: _U8,
    order: _Order,
    words: _U32 | None,
) -> None:
    """Y, U, V planes (chroma subsampled by sx, sy) to packed RGB (libyuv I4xxToARGB).

    Each chroma sample serves its whole sx by sy block of pixels (no interpolation).
    ``dst`` is the (h, w, bpp) destination; for 4-byte layouts ``words`` is the same
    memory as (h, w) uint32 and pixels are assembled there whole. ``alpha`` is an alpha
    plane to copy, or None for opaque pixels.
    """
    h, w = y.shape
    cw = u.shape[1]
    wp = cw * sx  # padded width: a whole number of chroma samples
    rows = _block_rows(wp)
    wide = _scratch("ywide", (rows, w), np.int32)
    y1 = _scratch("yy1", (rows, wp), np.int16)
    yq = _scratch("yyq", (rows, wp), np.int16)
    chans = [_scratch(f"ych{i}", (rows, wp), np.int16) for i in range(3)]
    a16 = _scratch("yalpha", (rows, w), np.int16) if alpha is not None else None
    crows = rows // sy
    terms = _scratch("yterms", (3, crows, cw), np.int16)
    terms_v = _scratch("ytermsv", (3, crows, cw), np.int16)
    dup = _scratch("ydup", (3 * crows, cw), np.uint32)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = r1 - r0
        c0 = r0 // sy
        cn = (n + sy - 1) // sy
        padded = cn * sy
        np.multiply(y[r0:r1], _Y_MUL, out=wide[:n], dtype=np.int32)
        np.right_shift(wide[:n], 16, out=y1[:n, :w], casting="unsafe")
        np.add(y1[:padded], 56, out=yq[:padded])
        np.right_shift(yq[:padded], 6, out=yq[:padded])
        # the R, G and B chroma terms of the block at once, columns doubled when sx == 2
        t, tv = terms[:, :cn], terms_v[:, :cn]
        np.multiply(u[c0 : c0 + cn], _TERM_U, out=t, dtype=np.int16)
        np.multiply(v[c0 : c0 + cn], _TERM_V, out=tv, dtype=np.int16)
        np.add(t, tv, out=t)
        np.add(t, _TERM_CONST, out=t)
        if sx == 2:
            block_terms = _dup_columns(t.reshape(3 * cn, cw), dup[: 3 * cn]).reshape(3, cn, wp)
        else:
            block_terms = t
        values: list[_I16] = []
        for term, base, chan in zip(block_terms, (y1, y1, yq), chans, strict=True):
            s = chan[:padded].reshape(cn, sy, wp)
            np.add(base[:padded].reshape(cn, sy, wp), term.reshape(cn, 1, wp), out=s)
            if base is y1:
                np.right_shift(s, 6, out=s)
            value = chan[:n, :w]
            np.clip(value, 0, 255, out=value)
            values.append(value)
        block_alpha = None
        if alpha is not None and a16 is not None and order.a >= 0:
            block_alpha = a16[:n]
            np.copyto(block_alpha, alpha[r0:r1])
        if words is None:
            for value, index in zip(values, order[:3], strict=True):
                np.copyto(dst[r0:r1, :, index], value, casting="unsafe")
            if order.a >= 0:
                dst[r0:r1, :, order.a] = 255 if block_alpha is None else block_alpha
        else:
            _pack_words(values, block_alpha, order, words[r0:r1])


def _pack_words(values: list[_I16], alpha: _I16 | None, order: _Order, out: _U32) -> None:
    """Assemble 4-byte pixels from R, G, B (and A) values in 0..255 (inputs are consumed).

    Each 16-bit half of a pixel is built in int16 (low byte | high byte << 8), then the two
    halves are merged into the uint32 words with two contiguous operations.
    """
    by_byte: list[_I16 | None] = [None] * 4  # None: opaque alpha
    for value, index in zip(values, order[:3], strict=True):
        by_byte[index] = value
    if order.a >= 0:
        by_byte[order.a] = alpha
    halves = []
    for low, high in ((by_byte[0], by_byte[1]), (by_byte[2], by_byte[3])):
        if high is None:
            assert low is not None
            np.bitwise_or(low, np.int16(-256), out=low)  # high byte 0xFF
            halves.append(low)
            continue
        np.left_shift(high, 8, out=high)
        if low is None:
            np.bitwise_or(high, np.int16(255), out=high)
        else:
            np.bitwise_or(high, low, out=high)
        halves.append(high)
    np.left_shift(halves[1].view(np.uint16), 16, out=out, dtype=np.uint32)
    np.bitwise_or(out, halves[0].view(np.uint16), out=out)


# ------------------------------------------------------------ chroma resampling


def _fixed_div(num: int, div: int) -> int:
    return (num << 16) // div


def _interpolate_rows(src: _U8, yi: _I64, yf: _I64) -> _I32:
    """libyuv InterpolateRow: (a * (256 - f) + b * f + 128) >> 8 between rows yi, yi + 1."""
    last = src.shape[0] - 1
    a = src[yi].astype(np.int32)
    b = src[np.minimum(yi + 1, last)].astype(np.int32)
    f = yf[:, None].astype(np.int32)
    out: _I32 = (a * (256 - f) + b * f + 128) >> 8
    return out


def _filter_cols(src: _I32, x0: int, dx: int, count: int) -> _I32:
    """libyuv ScaleFilterCols (SIMD flavour, 7-bit fraction) at x0 + j*dx (16.16 fixed)."""
    xs = x0 + np.arange(count, dtype=np.int64) * dx
    xi = xs >> 16
    f = ((xs >> 9) & 0x7F).astype(np.int32)
    last = src.shape[1] - 1
    a = src[:, xi]
    b = src[:, np.minimum(xi + 1, last)]
    out: _I32 = (a * (128 - f) + b * f + 64) >> 7
    return out


def _halve_rows(src: _U8) -> _U8:
    """(a + b + 1) >> 1 of row pairs: exactly what libyuv's filters give at a 2:1 ratio."""
    total: _U16 = np.add(src[0::2], src[1::2], dtype=np.uint16)
    total += 1
    total >>= 1
    return total.astype(np.uint8)


def _scale_down(src: _U8, dw: int, dh: int) -> _U8:
    """libyuv ScalePlane(kFilterBilinear) for dw <= width, dh <= height."""
    sh, sw = src.shape
    if dw == sw and dh == sh:
        return np.array(src, dtype=np.uint8)
    # ScaleFilterReduce
    bilinear, linear = True, False
    if sh == 1 or dh == sh or dh * 3 == sh:
        bilinear, linear = False, True
    if sw == 1:
        bilinear, linear = False, False
    if linear and (sw == 1 or dw == sw or dw * 3 == sw):
        linear = False
    filtering = bilinear or linear
    if dw == sw:
        # ScalePlaneVertical
        if filtering and 2 * dh == sh:
            return _halve_rows(src)  # every output row at fraction 1/2
        dy = _fixed_div(sh, dh)
        y0 = (dy >> 1) - 32768
        max_y = ((sh - 1) << 16) - 1 if sh > 1 else 0
        ys = np.minimum(y0 + np.arange(dh, dtype=np.int64) * dy, max_y)
        yf = (ys >> 8) & 255 if filtering else np.zeros(dh, np.int64)
        return _interpolate_rows(src, ys >> 16, yf).astype(np.uint8)
    if 2 * dw == sw and 2 * dh == sh and filtering:
        # ScalePlaneDown2, box filter
        s = src.astype(np.uint16)
        total = s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2] + 2
        return (total >> 2).astype(np.uint8)
    if linear and dh == sh and 2 * dw == sw:
        halved: _U8 = _halve_rows(src.T).T  # every output column at fraction 1/2
        return halved
    dx = _fixed_div(sw, dw)
    dy = _fixed_div(sh, dh)
    if not filtering:
        # ScalePlaneSimple: point sampling at the centres
        xs = ((dx >> 1) + np.arange(dw, dtype=np.int64) * dx) >> 16
        ys = ((dy >> 1) + np.arange(dh, dtype=np.int64) * dy) >> 16
        return np.array(src[ys][:, xs], dtype=np.uint8)
    # ScalePlaneBilinearDown
    x0 = (dx >> 1) - 32768
    y0 = (dy >> 1) - 32768 if bilinear else dy >> 1
    max_y = (sh - 1) << 16
    ys = np.minimum(y0 + np.arange(dh, dtype=np.int64) * dy, max_y)
    if bilinear:
        rows = _interpolate_rows(src, ys >> 16, (ys >> 8) & 255)
    else:
        rows = src[ys >> 16].astype(np.int32)
    return _filter_cols(rows, x0, dx, dw).astype(np.uint8)


def _resample_chroma(src: _U8, dst: _U8) -> None:
    """Chroma plane to another subsampling: libyuv scaling down, repetition up."""
    sh, sw = src.shape
    dh, dw = dst.shape
    if dh <= sh and dw <= sw:
        dst[...] = _scale_down(src, dw, dh)
        return
    out = src
    if dw > sw:
        out = np.repeat(out, 2, axis=1)[:, :dw]
    if dh > sh:
        out = np.repeat(out, 2, axis=0)[:dh]
    dst[...] = out


# ---------------------------------------------------------------- dispatching


def _convert_into(src: Image, dst: Image, flip: bool) -> None:
    st, dt = src.type, dst.type
    if st == dt:
        _copy_same(src, dst, flip)
    elif st in _PACKED and dt in _PACKED:
        _store_packed(_av_packed(src), dst, flip)
    elif st in _PACKED:
        _packed_to_yuv(src, dst, flip)
    elif dt in _PACKED:
        _yuv_to_packed(src, dst, flip)
    else:
        _yuv_to_yuv(src, dst, flip)


def _copy_same(src: Image, dst: Image, flip: bool) -> None:
    if not flip:
        size = _buffer_size(src.type, src.width, src.height)
        np.copyto(_u8(dst), _u8(src)[:size])
        return
    sbuf, dbuf = _u8(src), _u8(dst)
    for plane in _planes(src.type, src.width, src.height):
        s = sbuf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        d = dbuf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        d[...] = s[::-1]


_BAND_MIN_PIXELS = 1 << 18  # below this a second thread costs more than it saves
_pool_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_CPUS = _cpu_count()
_HELPERS = 1 if _CPUS > 1 else 0  # helper threads of large conversions (at most one)


def _spare_cpu() -> bool:
    """Whether a CPU is likely idle: the 1-minute load average leaves one free.

    On a busy machine a second thread only competes with the other work (it was
    measured to save little wall time there and to cost a third more CPU time).
    """
    try:
        return os.getloadavg()[0] <= _CPUS - 1
    except (AttributeError, OSError):  # no load average on this platform
        return True


def _helper_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=_HELPERS, thread_name_prefix="livekit_py-convert"
            )
        return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's helper thread does not exist there, start anew."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _in_bands(height: int, width: int, align: int, work: Callable[[int, int], None]) -> None:
    """``work(r0, r1)`` over row bands covering 0..height, concurrently for large pictures.

    Numpy releases the GIL inside its loops, so the bands of a large picture run on two
    CPUs when one is spare: the lower one on a helper thread, the upper one on the
    caller's, which waits for the helper before returning. Band edges are multiples of
    ``align`` rows.
    """
    if not _HELPERS or width * height < _BAND_MIN_PIXELS or not _spare_cpu():
        work(0, height)
        return
    middle = (height // (2 * align)) * align
    helper = _helper_pool().submit(work, middle, height)
    try:
        work(0, middle)
    finally:
        helper.result()


def _source_words(src: Image, r0: int, r1: int, flip: bool) -> tuple[_U32, _WordCoefs]:
    """Rows r0..r1 of the mirrored (if ``flip``) picture as uint32 pixels, and their constants.

    4-byte layouts are viewed in place; RGB24 rows are widened to RGBA by libswscale (a
    plain byte shuffle).
    """
    h = src.height
    s0, s1 = (h - r1, h - r0) if flip else (r0, r1)
    if src.type == _RGB24:
        rows = _packed_view(src)[s0:s1]
        try:
            av_rows = av.VideoFrame.from_numpy_buffer(rows, format="rgb24")
        except ValueError:  # older PyAV: not for this format
            av_rows = av.VideoFrame.from_ndarray(rows, format="rgb24")
        plane = _sws(av_rows, "rgba").planes[0]
        px: _U32 = _plane_rows(plane)[: s1 - s0, : 4 * src.width].view("<u4")
        coefs = _WORD_COEFS[_RGBA]
    else:
        px = _words(src)[s0:s1]
        coefs = _WORD_COEFS[src.type]
    return (px[::-1] if flip else px), coefs


def _words_band(
    src: Image, flip: bool, y_out: _U8, u_out: _U8, v_out: _U8, r0: int, r1: int
) -> None:
    """Rows r0..r1 (r0 even) of a packed picture into full-size 4:2:0 planes."""
    px, coefs = _source_words(src, r0, r1, flip)
    c0, c1 = r0 // 2, (r1 + 1) // 2
    _words_to_420(px, coefs, y_out[r0:r1], u_out[c0:c1], v_out[c0:c1])


def _packed_to_yuv(src: Image, dst: Image, flip: bool) -> None:
    # the image is mirrored before the conversion, as the official SDK does
    w, h = src.width, src.height
    kind = _YUV[dst.type]
    planes = _yuv_view(dst)
    if kind.ten_bit:
        cw, ch = (w + kind.sx - 1) // kind.sx, (h + kind.sy - 1) // kind.sy
        y8: _U8 = np.empty((h, w), np.uint8)
        u8: _U8 = np.empty((ch, cw), np.uint8)
        v8: _U8 = np.empty((ch, cw), np.uint8)
    else:
        y8, u8, v8 = planes.y, planes.u, planes.v  # type: ignore[assignment]
    if (kind.sx, kind.sy) == (2, 2) and _LITTLE_ENDIAN:
        _in_bands(h, w, 2, lambda r0, r1: _words_band(src, flip, y8, u8, v8, r0, r1))
    else:
        r, g, b = _rgb_planes(src)
        if flip:
            r, g, b = r[::-1], g[::-1], b[::-1]
        sx, sy = kind.sx, kind.sy

        def band(r0: int, r1: int) -> None:
            c0, c1 = r0 // sy, (r1 + sy - 1) // sy
            rows = slice(r0, r1)
            _rgb_to_yuv(r[rows], g[rows], b[rows], y8[rows], u8[c0:c1], v8[c0:c1], sx, sy)

        _in_bands(h, w, sy, band)
    if kind.ten_bit:
        _store_10bit(y8, planes.y)
        _store_10bit(u8, planes.u)
        _store_10bit(v8, planes.v)
    if planes.a is not None:
        order = _PACKED[src.type]
        if order.a >= 0:
            alpha = _packed_view(src)[:, :, order.a]
            planes.a[...] = alpha[::-1] if flip else alpha
        else:
            planes.a[...] = 255


def _yuv_to_packed(src: Image, dst: Image, flip: bool) -> None:
    # converted first, then mirrored (which differs from mirroring the planes first when
    # the height is odd), as the official SDK does
    kind = _YUV[src.type]
    order = _PACKED[dst.type]
    planes = _yuv8(src)
    packed = _packed_view(dst)
    words = _words(dst) if order.bpp == 4 else None
    if flip:
        packed = packed[::-1]
        words = words[::-1] if words is not None else None
    y: _U8 = planes.y  # type: ignore[assignment]
    u: _U8 = planes.u  # type: ignore[assignment]
    v: _U8 = planes.v  # type: ignore[assignment]
    alpha = planes.a
    sy = kind.sy

    def band(r0: int, r1: int) -> None:
        c0, c1 = r0 // sy, (r1 + sy - 1) // sy
        _yuv_to_rgb(
            y[r0:r1],
            u[c0:c1],
            v[c0:c1],
            kind.sx,
            sy,
            alpha[r0:r1] if alpha is not None else None,
            packed[r0:r1],
            order,
            words[r0:r1] if words is not None else None,
        )

    _in_bands(src.height, src.width, sy, band)


def _yuv_to_yuv(src: Image, dst: Image, flip: bool) -> None:
    # each plane is mirrored before the conversion (libyuv's negative height)
    s_kind, d_kind = _YUV[src.type], _YUV[dst.type]
    w, h = src.width, src.height
    s = _yuv8(src)
    if flip:
        s = _flipped(s)
    d = _yuv_view(dst)
    if d_kind.ten_bit:
        cw, ch = (w + 1) // 2, (h + 1) // 2
        y8 = np.empty((h, w), np.uint8)
        u8 = np.empty((ch, cw), np.uint8)
        v8 = np.empty((ch, cw), np.uint8)
    else:
        y8, u8, v8 = d.y, d.u, d.v  # type: ignore[assignment]
    y8[...] = s.y
    if (s_kind.sx, s_kind.sy) == (d_kind.sx, d_kind.sy):
        u8[...] = s.u
        v8[...] = s.v
    else:
        _resample_chroma(s.u, u8)  # type: ignore[arg-type]
        _resample_chroma(s.v, v8)  # type: ignore[arg-type]
    if d_kind.ten_bit:
        _store_10bit(y8, d.y)
        _store_10bit(u8, d.u)
        _store_10bit(v8, d.v)
    if d.a is not None:
        if s.a is not None:
            d.a[...] = s.a
        else:
            d.a[...] = 255


# ---------------------------------------------------------------- the API


#: the name of each ``VideoBufferType`` value
TYPE_NAMES: dict[int, str] = _TYPE_NAMES


def buffer_size(buffer_type: int, width: int, height: int) -> int:
    """Bytes a ``width`` x ``height`` picture takes in layout ``buffer_type``."""
    return _buffer_size(buffer_type, width, height)


def is_packed(buffer_type: int) -> bool:
    """Whether ``buffer_type`` is a packed RGB layout (no planes)."""
    return buffer_type in _PACKED


def plane_slices(buffer_type: int, width: int, height: int) -> tuple[slice, ...]:
    """Where each plane of a planar picture lives in its buffer (Y, U, V[, A]; NV12: Y, UV)."""
    return tuple(slice(p.offset, p.offset + p.size) for p in _planes(buffer_type, width, height))


def convert_into(src: Image, dst: Image, flip: bool) -> None:
    """Convert the picture of ``src`` into the buffer of ``dst`` (same size, any layouts).

    Args:
        src: The picture to convert.
        dst: Where the result goes; its buffer must hold ``buffer_size`` of its layout.
        flip: Mirror the picture vertically.
    """
    _convert_into(src, dst, flip)


def to_av_frame(image: Image, *, share: bool = False) -> av.VideoFrame:
    """A ``yuv420p`` PyAV frame with the picture of an I420 ``image``.

    Args:
        image: The picture.
        share: Let the PyAV frame read the image's own bytes instead of a copy, where
            the layouts agree (an even width, a height divisible by 4: PyAV reads
            each chroma plane as rows of the full width). Only for an image nobody
            changes while the frame is in use: the source track's private copies.
    """
    if image.type != _I420:
        raise ValueError(f"to_av_frame takes an I420 image, not {_TYPE_NAMES[image.type]}")
    w, h = image.width, image.height
    if share and w % 2 == 0 and h % 4 == 0 and len(image.data) == w * h * 3 // 2:
        # then I420 is exactly PyAV's unpadded yuv420p: no copy needed
        return av.VideoFrame.from_numpy_buffer(_u8(image).reshape(h * 3 // 2, w), "yuv420p")
    out = av.VideoFrame(image.width, image.height, "yuv420p")
    for src_plane, av_plane in zip(_yuv_view(image)[:3], out.planes, strict=True):
        rows, cols = src_plane.shape
        _plane_rows(av_plane)[:rows, :cols] = src_plane
    return out


def from_av_frame(av_frame: av.VideoFrame) -> Image:
    """An I420 :class:`Image` with the picture of a PyAV frame.

    ``yuv420p`` frames are copied plane by plane (dropping PyAV's row padding); any
    other pixel format is converted to ``yuv420p`` by PyAV (libswscale) first.
    """
    if av_frame.format.name != "yuv420p":
        av_frame = av_frame.reformat(format="yuv420p")
    w, h = av_frame.width, av_frame.height
    out = Image(bytearray(_buffer_size(_I420, w, h)), w, h, _I420)
    for dst_plane, av_plane in zip(_yuv_view(out)[:3], av_frame.planes, strict=True):
        rows, cols = dst_plane.shape
        dst_plane[...] = _plane_rows(av_plane)[:rows, :cols]
    return out
