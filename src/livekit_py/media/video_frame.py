"""Raw video frames in LiveKit's eleven buffer layouts, and conversion between them.

Buffer layouts (identical to the official SDK's, no row padding anywhere)::

    RGBA, ABGR, ARGB, BGRA  4 bytes per pixel, bytes in the order of the name
    RGB24                   3 bytes per pixel: R, G, B
    I420                    Y (w x h), then U and V ((w+1)//2 x (h+1)//2 each)
    I420A                   I420, then an alpha plane (w x h)
    I422                    Y (w x h), then U and V ((w+1)//2 x h each)
    I444                    Y, U and V, each w x h
    I010                    I420 geometry, every sample a little-endian uint16 holding 10 bits
    NV12                    Y (w x h), then one plane of interleaved U, V pairs
                            ((w+1)//2 pairs per row, (h+1)//2 rows)

Colour conversion reproduces libyuv (which the official SDK calls) bit for bit where the
official SDK offers a conversion: BT.601 limited range, RGB to YUV as
``Y = (66 R + 129 G + 25 B + 0x1080) >> 8`` with chroma taken from the rounded mean of
each 2x2 (4:2:0) or 2x1 (4:2:2) block, YUV to RGB with libyuv's 6-bit fixed-point
table and nearest-neighbour chroma, chroma downscaling with libyuv's bilinear
``ScalePlane``. Pairs the official SDK refuses follow the same formulas; chroma is
upsampled by repeating samples, 10-bit samples are ``v8 << 2 | v8 >> 6`` one way and
``v10 >> 2`` the other.

Everything runs as vectorised numpy over blocks of rows small enough to stay in the
CPU cache; the RGB to YUV direction packs the colour channels of each pixel into 16-bit
lanes of one uint32 so that a single multiply applies two coefficients at once.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import NamedTuple, Optional, Union

import av
import numpy as np
import numpy.typing as npt

from ..types import VideoBufferType

__all__ = ["VideoFrame"]

_U8 = npt.NDArray[np.uint8]
_U16 = npt.NDArray[np.uint16]
_U32 = npt.NDArray[np.uint32]
_I16 = npt.NDArray[np.int16]
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


def _check_dimension(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _check_type(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"type must be a VideoBufferType value, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(
            f"type must be a VideoBufferType value, got {type(value).__name__}"
        ) from None
    if number not in _TYPE_NAMES:
        raise ValueError(f"unknown video buffer type {number!r}; expected 0..10 (VideoBufferType)")
    return int(number)


def _copy_buffer(data: Union[bytes, bytearray, memoryview]) -> bytearray:
    try:
        # copies in logical order, also strided or multi-dimensional buffers
        return bytearray(memoryview(data))
    except TypeError:
        raise TypeError(
            f"data must be bytes, bytearray or memoryview, got {type(data).__name__}"
        ) from None


class VideoFrame:
    """One uncompressed video image in one of the ``VideoBufferType`` layouts.

    The frame owns a private copy of the bytes it was given; :attr:`data` and
    :meth:`get_plane` are writable views into that copy.
    """

    __slots__ = ("_data", "_height", "_type", "_width")

    _data: bytearray
    _width: int
    _height: int
    _type: int

    def __init__(
        self,
        width: int,
        height: int,
        type: int,
        data: Union[bytes, bytearray, memoryview],
    ) -> None:
        """Build a frame from raw pixel bytes.

        Args:
            width: Image width in pixels (positive).
            height: Image height in pixels (positive).
            type: The buffer layout, a ``VideoBufferType`` value.
            data: The pixel bytes in that layout (see the module documentation). A longer
                buffer is accepted and kept whole, as the official SDK does.

        Raises:
            ValueError: If a dimension is not a positive int, ``type`` is not a
                ``VideoBufferType`` value, or ``data`` is shorter than the layout needs.
            TypeError: If ``data`` does not expose the buffer protocol.
        """
        width = _check_dimension("width", width)
        height = _check_dimension("height", height)
        buffer_type = _check_type(type)
        buf = _copy_buffer(data)
        needed = _buffer_size(buffer_type, width, height)
        if len(buf) < needed:
            raise ValueError(
                f"data is too short for a {width}x{height} {_TYPE_NAMES[buffer_type]} frame: "
                f"{len(buf)} bytes given, {needed} needed"
            )
        self._width = width
        self._height = height
        self._type = buffer_type
        self._data = buf

    @classmethod
    def _wrap(cls, width: int, height: int, buffer_type: int, buf: bytearray) -> VideoFrame:
        """A frame around ``buf`` as is: no validation, no copy."""
        frame = cls.__new__(cls)
        frame._width = width
        frame._height = height
        frame._type = buffer_type
        frame._data = buf
        return frame

    @property
    def width(self) -> int:
        """Width of the image in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Height of the image in pixels."""
        return self._height

    @property
    def type(self) -> int:
        """The buffer layout, a ``VideoBufferType`` value."""
        return self._type

    @property
    def data(self) -> memoryview:
        """The whole pixel buffer, as a writable byte view (no copy)."""
        return memoryview(self._data)

    def get_plane(self, plane_nth: int) -> Optional[memoryview]:
        """A writable byte view of one plane of a planar (YUV) frame.

        Planes are numbered in buffer order: Y, U, V (and A for I420A); NV12 has Y and
        the interleaved UV plane. Packed RGB layouts have no planes.

        Args:
            plane_nth: Index of the plane, from 0.

        Returns:
            The bytes of the plane (10-bit layouts: two bytes per sample), or None when
            the layout has no such plane.
        """
        if self._type in _PACKED or plane_nth < 0:
            return None
        planes = _planes(self._type, self._width, self._height)
        if plane_nth >= len(planes):
            return None
        plane = planes[plane_nth]
        return memoryview(self._data)[plane.offset : plane.offset + plane.size]

    def convert(self, type: int, *, flip_y: bool = False) -> VideoFrame:
        """Convert the frame to another layout, as a new frame.

        Every pair of layouts is supported, the same layout included (a copy). Colours
        match the official SDK's libyuv conversion exactly wherever the official SDK
        supports the pair.

        Args:
            type: The ``VideoBufferType`` of the result.
            flip_y: Mirror the image vertically (top row becomes the bottom one). For
                YUV to YUV conversions each plane is mirrored, as libyuv does.

        Returns:
            A new frame of the same size in layout ``type``.

        Raises:
            ValueError: If ``type`` is not a ``VideoBufferType`` value.
        """
        dst_type = _check_type(type)
        w, h = self._width, self._height
        out = VideoFrame._wrap(w, h, dst_type, bytearray(_buffer_size(dst_type, w, h)))
        _convert_into(self, out, bool(flip_y))
        return out

    def __repr__(self) -> str:
        name = _TYPE_NAMES.get(self._type, str(self._type))
        return f"rtc.VideoFrame(width={self._width}, height={self._height}, type={name})"


# --------------------------------------------------------------------------- views


def _u8(frame: VideoFrame) -> _U8:
    return np.frombuffer(frame._data, dtype=np.uint8)


def _packed_view(frame: VideoFrame) -> _U8:
    """(height, width, bytes per pixel) view of a packed frame."""
    bpp = _PACKED[frame._type].bpp
    n = frame._width * frame._height * bpp
    return _u8(frame)[:n].reshape(frame._height, frame._width, bpp)


def _words_view(frame: VideoFrame) -> _U32:
    """(height, width) view of a 4-byte packed frame, one little-endian uint32 per pixel."""
    n = frame._width * frame._height
    return np.frombuffer(frame._data, dtype="<u4", count=n).reshape(frame._height, frame._width)


class _YuvPlanes(NamedTuple):
    y: npt.NDArray[np.generic]
    u: npt.NDArray[np.generic]
    v: npt.NDArray[np.generic]
    a: Optional[_U8]


def _yuv_view(frame: VideoFrame) -> _YuvPlanes:
    """Views of the Y, U, V (and A) planes; uint16 samples for I010, uint8 otherwise."""
    kind = _YUV[frame._type]
    buf = _u8(frame)
    arrays = []
    for plane in _planes(frame._type, frame._width, frame._height):
        raw = buf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        arrays.append(raw.view("<u2") if kind.ten_bit else raw)
    if kind.semi_planar:
        y, uv = arrays
        return _YuvPlanes(y, uv[:, 0::2], uv[:, 1::2], None)
    alpha = arrays[3] if kind.alpha else None
    return _YuvPlanes(arrays[0], arrays[1], arrays[2], alpha)


def _flipped(planes: _YuvPlanes) -> _YuvPlanes:
    a = planes.a[::-1] if planes.a is not None else None
    return _YuvPlanes(planes.y[::-1], planes.u[::-1], planes.v[::-1], a)


def _to_8bit(plane: npt.NDArray[np.generic]) -> _U8:
    """10-bit samples (in uint16) to 8 bits: v >> 2, out-of-range values saturate."""
    out = np.right_shift(plane, 2, dtype=np.uint16)
    np.minimum(out, 255, out=out)
    return out.astype(np.uint8)


def _store_10bit(src: _U8, dst: npt.NDArray[np.generic]) -> None:
    """8-bit samples into a uint16 plane as 10 bits, stretching 255 to 1023."""
    wide = src.astype(np.uint16)
    np.multiply(wide, 4, out=wide)
    np.bitwise_or(wide, src >> 6, out=wide)
    np.copyto(dst, wide)


def _block_rows(width: int, unit: int) -> int:
    """Rows per processing block: about 32k pixels, a multiple of ``unit``."""
    rows = max(unit, (32768 // max(width, 1)) // unit * unit)
    return rows


# ------------------------------------------------------------------ RGB -> YUV


class _LaneCoeffs(NamedTuple):
    """One YUV component as uint32 lane arithmetic.

    ``((rb ^ flip) * k_rb + g * k_g + const) >> 24`` is the component, where ``rb`` has
    the R and B values of a pixel in bits 0-7 and 16-23 (in layout order) and ``g`` the
    G value in bits 0-7.
    """

    flip: np.uint32
    k_rb: np.uint32
    k_g: np.uint32
    const: np.uint32


class _RgbPlan(NamedTuple):
    rb_shift: int  # right shift that brings R and B down to bits 0 and 16
    g_shift: int  # bit position of G in the pixel word
    ky_rb: np.uint32
    ky_g: np.uint32  # applied to the G byte left in place (not shifted down)
    y_const: np.uint32
    u: _LaneCoeffs
    v: _LaneCoeffs


def _lane_coeffs(r_low: bool, cr: int, cg: int, cb: int, const: int) -> _LaneCoeffs:
    # bits 16-31 of (L + H << 16) * (c_hi << 16 + c_lo) hold L*c_hi + H*c_lo, and bits 0-15
    # hold L*c_lo, which must stay non-negative: the coefficient of the high lane's
    # channel is made positive by complementing that channel (x -> 255 - x).
    c_low, c_high = (cr, cb) if r_low else (cb, cr)
    flip = 0
    if c_high < 0:
        flip = 0x00FF0000
        const += c_high * 255
        c_high = -c_high
    mask = 0xFFFFFFFF
    return _LaneCoeffs(
        np.uint32(flip),
        np.uint32(((c_low << 16) + c_high) & mask),
        np.uint32((cg << 16) & mask),
        np.uint32((const << 16) & mask),
    )


@lru_cache(maxsize=None)
def _rgb_plan(order: _Order) -> _RgbPlan:
    low = min(order.r, order.b)  # R and B are two bytes apart in every layout
    r_low = order.r == low
    y_low, y_high = (66, 25) if r_low else (25, 66)
    g_shift = 8 * order.g
    return _RgbPlan(
        rb_shift=8 * low,
        g_shift=g_shift,
        ky_rb=np.uint32((y_low << 16) + y_high),
        ky_g=np.uint32(129 << (16 - g_shift)),
        y_const=np.uint32(0x1080 << 16),
        # U = (112 B - 74 G - 38 R + 0x8000) >> 8, V = (112 R - 94 G - 18 B + 0x8000) >> 8
        u=_lane_coeffs(r_low, -38, -74, 112, 0x8000),
        v=_lane_coeffs(r_low, 112, -94, -18, 0x8000),
    )


_LANES = np.uint32(0x00FF00FF)


def _pair_rows(src: _U32, out: _U32) -> None:
    """out[i] = src[2i] + src[2i+1]; a lone last row counts twice."""
    n = src.shape[0]
    half = n // 2
    np.add(src[0 : 2 * half : 2], src[1 : 2 * half : 2], out=out[:half])
    if n & 1:
        np.left_shift(src[n - 1], 1, out=out[half])


def _pair_cols(src: _U32, out: _U32) -> None:
    """out[:, j] = src[:, 2j] + src[:, 2j+1]; a lone last column counts twice."""
    n = src.shape[1]
    half = n // 2
    np.add(src[:, 0 : 2 * half : 2], src[:, 1 : 2 * half : 2], out=out[:, :half])
    if n & 1:
        np.left_shift(src[:, n - 1], 1, out=out[:, half])


def _lane_component(rb: _U32, g: _U32, co: _LaneCoeffs, tmp: _U32, tmp2: _U32, out: _U8) -> None:
    if co.flip:
        np.bitwise_xor(rb, co.flip, out=tmp)
        np.multiply(tmp, co.k_rb, out=tmp)
    else:
        np.multiply(rb, co.k_rb, out=tmp)
    np.multiply(g, co.k_g, out=tmp2)
    np.add(tmp, tmp2, out=tmp)
    np.add(tmp, co.const, out=tmp)
    np.right_shift(tmp, 24, out=out, casting="unsafe")


def _rgb_to_yuv(
    src: npt.NDArray[np.generic],
    order: _Order,
    y_out: _U8,
    u_out: _U8,
    v_out: _U8,
    sx: int,
    sy: int,
) -> None:
    """Packed RGB to Y, U, V planes (libyuv ARGBToI420 / ARGBToI422 / ARGBToI444).

    ``src`` is (h, w) little-endian uint32 pixel words for 4-byte layouts, or
    (h, w, 3) bytes for RGB24.
    """
    plan = _rgb_plan(order)
    h, w = src.shape[0], src.shape[1]
    cw = u_out.shape[1]
    rows = _block_rows(w, 2)
    crows = rows // sy
    rb = np.empty((rows, w), np.uint32)
    g = np.empty((rows, w), np.uint32)
    rgb24 = src.ndim == 3
    words = np.empty((rows, w if rgb24 else 0), "<u4")
    if sy == 2:
        rb_r = np.empty((crows, w), np.uint32)
        g_r = np.empty((crows, w), np.uint32)
    if sx == 2:
        rb_q = np.empty((crows, cw), np.uint32)
        g_q = np.empty((crows, cw), np.uint32)
    t1 = np.empty((crows, cw), np.uint32)
    t2 = np.empty((crows, cw), np.uint32)
    g_round = np.uint32(((sx * sy) // 2) << plan.g_shift)
    rb_round = np.uint32(((sx * sy) // 2) * 0x00010001)
    avg_shift = {1: 0, 2: 1, 4: 2}[sx * sy]
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = r1 - r0
        if rgb24:
            x = words[:n]
            x.view(np.uint8).reshape(n, w, 4)[:, :, :3] = src[r0:r1]
        else:
            x = src[r0:r1]
        rb_n = rb[:n]
        g_n = g[:n]
        if plan.rb_shift:
            np.right_shift(x, plan.rb_shift, out=rb_n)
            np.bitwise_and(rb_n, _LANES, out=rb_n)
        else:
            np.bitwise_and(x, _LANES, out=rb_n)
        np.bitwise_and(x, np.uint32(0xFF << plan.g_shift), out=g_n)

        # chroma sums first: the Y pass below overwrites rb and g
        cn = (n + sy - 1) // sy
        rb_c: _U32 = rb_n
        g_c: _U32 = g_n
        if sy == 2:
            _pair_rows(rb_n, rb_r[:cn])
            _pair_rows(g_n, g_r[:cn])
            rb_c, g_c = rb_r[:cn], g_r[:cn]
        if sx == 2:
            _pair_cols(rb_c, rb_q[:cn])
            _pair_cols(g_c, g_q[:cn])
            rb_c, g_c = rb_q[:cn], g_q[:cn]
        if avg_shift:
            # rounded means, kept in their lanes (rb) / brought down to bits 0-7 (g)
            np.add(rb_c, rb_round, out=rb_c)
            np.right_shift(rb_c, avg_shift, out=rb_c)
            np.bitwise_and(rb_c, _LANES, out=rb_c)
            np.add(g_c, g_round, out=g_c)
            np.right_shift(g_c, avg_shift + plan.g_shift, out=g_c)
        elif sx == 1 and sy == 1:
            # 4:4:4 works on the full-resolution arrays: take copies for the chroma
            rb_c = np.copy(rb_n)
            g_c = np.right_shift(g_n, plan.g_shift)
        c0 = r0 // sy
        _lane_component(rb_c, g_c, plan.u, t1[:cn], t2[:cn], u_out[c0 : c0 + cn])
        _lane_component(rb_c, g_c, plan.v, t1[:cn], t2[:cn], v_out[c0 : c0 + cn])

        # luma: bits 24-31 of rb * ky_rb + g * ky_g + const
        np.multiply(rb_n, plan.ky_rb, out=rb_n)
        np.multiply(g_n, plan.ky_g, out=g_n)
        np.add(rb_n, g_n, out=rb_n)
        np.add(rb_n, plan.y_const, out=rb_n)
        np.right_shift(rb_n, 24, out=y_out[r0:r1], casting="unsafe")


# ------------------------------------------------------------------ YUV -> RGB

# libyuv BT.601 limited range: y1 = (y * 0x0101 * 18997) >> 16, then
#   B = clamp((y1 + 128 (u - 128) - 1160) >> 6)
#   G = clamp((y1 - 25 (u - 128) - 52 (v - 128) - 1160) >> 6)
#   R = clamp((y1 + 102 (v - 128) - 1160) >> 6)
_Y_TERM: _I16 = (((np.arange(256, dtype=np.int64) * 0x0101 * 18997) >> 16) - 1160).astype(
    np.int16
)


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
    dst: _U8,
    order: _Order,
    alpha: Optional[_U8],
) -> None:
    """Y, U, V planes (chroma subsampled by sx, sy) to packed RGB (libyuv I4xxToARGB)."""
    h, w = y.shape
    cw = u.shape[1]
    wp = cw * sx  # padded width: a whole number of chroma samples
    rows = _block_rows(wp, 2)
    crows = rows // sy
    y_term = np.empty((rows, wp), np.int16)
    yq = np.empty((rows, wp), np.int16)
    acc = np.empty((rows, wp), np.int16)
    t_r = np.empty((crows, cw), np.int16)
    t_g = np.empty((crows, cw), np.int16)
    t_b = np.empty((crows, cw), np.int16)
    tmp = np.empty((crows, cw), np.int16)
    dup = np.empty((crows, cw), np.uint32) if sx == 2 else None
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = r1 - r0
        c0 = r0 // sy
        cn = (n + sy - 1) // sy
        np_ = cn * sy  # padded row count
        np.take(_Y_TERM, y[r0:r1], out=y_term[:n, :w], mode="clip")
        cu = u[c0 : c0 + cn]
        cv = v[c0 : c0 + cn]
        # chroma terms at chroma resolution
        tr, tg, tb, tt = t_r[:cn], t_g[:cn], t_b[:cn], tmp[:cn]
        np.multiply(cv, 102, out=tr, dtype=np.int16)
        np.subtract(tr, 102 * 128, out=tr)
        np.multiply(cu, -25, out=tg, dtype=np.int16)
        np.multiply(cv, 52, out=tt, dtype=np.int16)
        np.subtract(tg, tt, out=tg)
        np.add(tg, (25 + 52) * 128, out=tg)
        np.multiply(cu, 2, out=tb, dtype=np.int16)  # 128 (u - 128) >> 6, exactly
        np.subtract(tb, 256, out=tb)
        s = acc[:np_].reshape(cn, sy, wp)
        # B: 128 (u - 128) is a multiple of 64, so it is added after the shift (no
        # int16 overflow); R and G are added before it
        np.right_shift(y_term[:np_], 6, out=yq[:np_])
        for term, base, index in ((tr, y_term, order.r), (tg, y_term, order.g), (tb, yq, order.b)):
            full = term if dup is None else _dup_columns(term, dup[:cn])
            np.add(base[:np_].reshape(cn, sy, wp), full.reshape(cn, 1, wp), out=s)
            if base is y_term:
                np.right_shift(s, 6, out=s)
            np.clip(acc[:n, :w], 0, 255, out=dst[r0:r1, :, index], casting="unsafe")
        if order.a >= 0:
            if alpha is not None:
                dst[r0:r1, :, order.a] = alpha[r0:r1]
            else:
                dst[r0:r1, :, order.a] = 255


# ------------------------------------------------------------------ RGB -> RGB


def _packed_to_packed(src: _U8, so: _Order, dst: _U8, do: _Order) -> None:
    for s_index, d_index in ((so.r, do.r), (so.g, do.g), (so.b, do.b)):
        dst[:, :, d_index] = src[:, :, s_index]
    if do.a >= 0:
        if so.a >= 0:
            dst[:, :, do.a] = src[:, :, so.a]
        else:
            dst[:, :, do.a] = 255


# ------------------------------------------------------------ chroma resampling


def _fixed_div(num: int, div: int) -> int:
    return (num << 16) // div


def _interpolate_rows(src: _U8, yi: _I64, yf: _I64) -> _I64:
    """libyuv InterpolateRow: (a * (256 - f) + b * f + 128) >> 8 between rows yi, yi + 1."""
    last = src.shape[0] - 1
    a = src[yi].astype(np.int64)
    b = src[np.minimum(yi + 1, last)].astype(np.int64)
    f = yf[:, None]
    out: _I64 = (a * (256 - f) + b * f + 128) >> 8
    return out


def _filter_cols(src: _I64, x0: int, dx: int, count: int) -> _I64:
    """libyuv ScaleFilterCols (SIMD flavour, 7-bit fraction) at x0 + j*dx (16.16 fixed)."""
    xs = x0 + np.arange(count, dtype=np.int64) * dx
    xi = xs >> 16
    f = (xs >> 9) & 0x7F
    last = src.shape[1] - 1
    a = src[:, xi]
    b = src[:, np.minimum(xi + 1, last)]
    out: _I64 = (a * (128 - f) + b * f + 64) >> 7
    return out


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
        rows = src[ys >> 16].astype(np.int64)
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


def _convert_into(src: VideoFrame, dst: VideoFrame, flip: bool) -> None:
    st, dt = src._type, dst._type
    w, h = src._width, src._height
    if st == dt:
        _copy_same(src, dst, flip)
        return
    s_order = _PACKED.get(st)
    d_order = _PACKED.get(dt)
    if s_order is not None and d_order is not None:
        d = _packed_view(dst)
        _packed_to_packed(_packed_view(src), s_order, d[::-1] if flip else d, d_order)
    elif s_order is not None:
        kind = _YUV[dt]
        # the whole image is mirrored first, as the official SDK does
        words: npt.NDArray[np.generic] = (
            _packed_view(src) if s_order.bpp == 3 else _words_view(src)
        )
        if flip:
            words = words[::-1]
        planes = _yuv_view(dst)
        if kind.ten_bit:
            cw, ch = (w + 1) // 2, (h + 1) // 2
            y8 = np.empty((h, w), np.uint8)
            u8 = np.empty((ch, cw), np.uint8)
            v8 = np.empty((ch, cw), np.uint8)
            _rgb_to_yuv(words, s_order, y8, u8, v8, kind.sx, kind.sy)
            _store_10bit(y8, planes.y)
            _store_10bit(u8, planes.u)
            _store_10bit(v8, planes.v)
        else:
            _rgb_to_yuv(
                words,
                s_order,
                planes.y,  # type: ignore[arg-type]
                planes.u,  # type: ignore[arg-type]
                planes.v,  # type: ignore[arg-type]
                kind.sx,
                kind.sy,
            )
        if planes.a is not None:
            packed = _packed_view(src)
            if flip:
                packed = packed[::-1]
            if s_order.a >= 0:
                planes.a[...] = packed[:, :, s_order.a]
            else:
                planes.a[...] = 255
    elif d_order is not None:
        kind = _YUV[st]
        planes = _yuv8(src)
        d = _packed_view(dst)
        # converted first, then mirrored (matters for odd heights)
        _yuv_to_rgb(
            planes.y,  # type: ignore[arg-type]
            planes.u,  # type: ignore[arg-type]
            planes.v,  # type: ignore[arg-type]
            kind.sx,
            kind.sy,
            d[::-1] if flip else d,
            d_order,
            planes.a,
        )
    else:
        _yuv_to_yuv(src, dst, flip)


def _yuv8(frame: VideoFrame) -> _YuvPlanes:
    """The planes of a YUV frame with 8-bit samples (I010 is reduced, others are views)."""
    planes = _yuv_view(frame)
    if not _YUV[frame._type].ten_bit:
        return planes
    return _YuvPlanes(_to_8bit(planes.y), _to_8bit(planes.u), _to_8bit(planes.v), None)


def _copy_same(src: VideoFrame, dst: VideoFrame, flip: bool) -> None:
    if not flip:
        size = _buffer_size(src._type, src._width, src._height)
        dst._data[:] = memoryview(src._data)[:size]
        return
    sbuf, dbuf = _u8(src), _u8(dst)
    for plane in _planes(src._type, src._width, src._height):
        s = sbuf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        d = dbuf[plane.offset : plane.offset + plane.size].reshape(plane.rows, plane.row_bytes)
        d[...] = s[::-1]


def _yuv_to_yuv(src: VideoFrame, dst: VideoFrame, flip: bool) -> None:
    s_kind, d_kind = _YUV[src._type], _YUV[dst._type]
    w, h = src._width, src._height
    s = _yuv8(src)
    if flip:
        s = _flipped(s)
    d = _yuv_view(dst)
    if d_kind.ten_bit:
        cw, ch = (w + 1) // 2, (h + 1) // 2
        targets = (np.empty((h, w), np.uint8), np.empty((ch, cw), np.uint8))
        y8, u8, v8 = targets[0], targets[1], np.empty((ch, cw), np.uint8)
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


# ------------------------------------------------------------------ PyAV glue


def _to_av_frame(frame: VideoFrame) -> av.VideoFrame:
    """A ``yuv420p`` PyAV frame with the picture of ``frame`` (for encoders).

    I420 frames are copied plane by plane; every other layout is converted to I420 with
    :meth:`VideoFrame.convert` first. Timestamps are left for the caller to set.
    """
    if frame._type != _I420:
        frame = frame.convert(_I420)
    out = av.VideoFrame(frame._width, frame._height, "yuv420p")
    for src_plane, av_plane in zip(_yuv_view(frame)[:3], out.planes):
        rows, cols = src_plane.shape
        target = np.frombuffer(av_plane, dtype=np.uint8).reshape(-1, av_plane.line_size)
        target[:rows, :cols] = src_plane
    return out


def _from_av_frame(av_frame: av.VideoFrame) -> VideoFrame:
    """An I420 :class:`VideoFrame` with the picture of a PyAV frame (from decoders).

    ``yuv420p`` frames are copied plane by plane (dropping PyAV's row padding); any
    other pixel format is converted to ``yuv420p`` by PyAV (libswscale) first.
    """
    if av_frame.format.name != "yuv420p":
        av_frame = av_frame.reformat(format="yuv420p")
    w, h = av_frame.width, av_frame.height
    out = VideoFrame._wrap(w, h, _I420, bytearray(_buffer_size(_I420, w, h)))
    for dst_plane, av_plane in zip(_yuv_view(out)[:3], av_frame.planes):
        rows, cols = dst_plane.shape
        source = np.frombuffer(av_plane, dtype=np.uint8).reshape(-1, av_plane.line_size)
        dst_plane[...] = source[:rows, :cols]
    return out
