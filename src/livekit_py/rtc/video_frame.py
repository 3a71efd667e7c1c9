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
official SDK offers a conversion (BT.601 limited range); the kernels live in
:mod:`livekit_py.dsp.video_convert`.
"""

from __future__ import annotations

import av

from .._validate import check_int, copy_buffer
from ..dsp.video_convert import (
    TYPE_NAMES,
    Image,
    buffer_size,
    convert_into,
    from_av_frame,
    is_packed,
    plane_slices,
    to_av_frame,
)
from ..types import VideoBufferType

__all__ = ["VideoFrame"]

_I420 = int(VideoBufferType.I420)

#: bytes of a frame in a layout (imported by the video source)
_buffer_size = buffer_size


def _check_type(value: object) -> int:
    to_index = getattr(value, "__index__", None)
    if isinstance(value, bool) or to_index is None:
        raise ValueError(f"type must be a VideoBufferType value, got {value!r}")
    number = int(to_index())
    if number not in TYPE_NAMES:
        raise ValueError(f"unknown video buffer type {number!r}; expected 0..10 (VideoBufferType)")
    return int(number)


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
        data: bytes | bytearray | memoryview,
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
        width = check_int("width", width)
        height = check_int("height", height)
        buffer_type = _check_type(type)
        buf = copy_buffer(data)
        needed = _buffer_size(buffer_type, width, height)
        if len(buf) < needed:
            raise ValueError(
                f"data is too short for a {width}x{height} {TYPE_NAMES[buffer_type]} frame: "
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

    def get_plane(self, plane_nth: int) -> memoryview | None:
        """A writable byte view of one plane of a planar (YUV) frame.

        Planes are numbered in buffer order: Y, U, V (and A for I420A); NV12 has Y and
        the interleaved UV plane. Packed RGB layouts have no planes.

        Args:
            plane_nth: Index of the plane, from 0.

        Returns:
            The bytes of the plane (10-bit layouts: two bytes per sample), or None when
            the layout has no such plane.
        """
        if is_packed(self._type) or plane_nth < 0:
            return None
        planes = plane_slices(self._type, self._width, self._height)
        if plane_nth >= len(planes):
            return None
        return memoryview(self._data)[planes[plane_nth]]

    def convert(self, type: int, *, flip_y: bool = False) -> VideoFrame:
        """Convert the frame to another layout, as a new frame.

        Every pair of layouts is supported, the same layout included (a copy). Colours
        match the official SDK's libyuv conversion exactly wherever the official SDK
        supports the pair. Large pictures (from about 512x512) between a packed and a
        YUV layout are converted in two bands of rows at once, one on a helper thread,
        when the load average leaves a CPU idle; the call returns when both are done.

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
        convert_into(self._image(), out._image(), bool(flip_y))
        return out

    def _image(self) -> Image:
        """The frame's pixels for the conversion kernels (no copy)."""
        return Image(self._data, self._width, self._height, self._type)

    def __repr__(self) -> str:
        name = TYPE_NAMES.get(self._type, str(self._type))
        return f"rtc.VideoFrame(width={self._width}, height={self._height}, type={name})"

    def _repr_png_(self) -> bytes:
        """The picture as a PNG file, for rich display in notebooks (IPython).

        Every layout is shown through its RGB24 conversion; alpha is not drawn.
        """
        import numpy as np

        from .jupyter import png_bytes

        w, h = self._width, self._height
        rgb = self.convert(VideoBufferType.RGB24)
        return png_bytes(np.frombuffer(rgb._data, np.uint8, count=w * h * 3).reshape(h, w, 3))


# ------------------------------------------------------------------ PyAV glue


def _to_av_frame(frame: VideoFrame, *, share: bool = False) -> av.VideoFrame:
    """A ``yuv420p`` PyAV frame with the picture of ``frame`` (for encoders).

    I420 frames are copied plane by plane, or with ``share`` (for a frame nobody will
    change) read in place where the layouts agree; every other layout is converted to
    I420 with :meth:`VideoFrame.convert` first (a new buffer, always read in place with
    ``share``). Timestamps are left for the caller to set.
    """
    if frame._type != _I420:
        frame = frame.convert(_I420)
        share = True
    return to_av_frame(frame._image(), share=share)


def _from_av_frame(av_frame: av.VideoFrame) -> VideoFrame:
    """An I420 :class:`VideoFrame` with the picture of a PyAV frame (from decoders).

    ``yuv420p`` frames are copied plane by plane (dropping PyAV's row padding); any
    other pixel format is converted to ``yuv420p`` by PyAV (libswscale) first.
    """
    image = from_av_frame(av_frame)
    return VideoFrame._wrap(image.width, image.height, image.type, image.data)
