"""VideoFrame: buffer layouts, validation, conversions (against the official SDK) and PyAV glue."""

from __future__ import annotations

import multiprocessing
import os

import av
import numpy as np
import pytest
from livekit import rtc

from livekit_py.dsp import video_convert
from livekit_py.rtc.video_frame import VideoFrame, _from_av_frame, _to_av_frame
from livekit_py.types import VideoBufferType

NAMES = ["RGBA", "ABGR", "ARGB", "BGRA", "RGB24", "I420", "I420A", "I422", "I444", "I010", "NV12"]
T = {name: int(getattr(VideoBufferType, name)) for name in NAMES}
PACKED = ["RGBA", "ABGR", "ARGB", "BGRA", "RGB24"]
YUV = ["I420", "I420A", "I422", "I444", "I010", "NV12"]
# byte index of R, G, B, A in one pixel (A: None for RGB24)
ORDER = {
    "RGBA": (0, 1, 2, 3),
    "ABGR": (3, 2, 1, 0),
    "ARGB": (1, 2, 3, 0),
    "BGRA": (2, 1, 0, 3),
    "RGB24": (0, 1, 2, None),
}
# chroma subsampling (sx, sy)
SUB = {
    "I420": (2, 2),
    "I420A": (2, 2),
    "I422": (2, 1),
    "I444": (1, 1),
    "I010": (2, 2),
    "NV12": (2, 2),
}

# Conversions the official SDK (livekit 1.2.1) performs. It answers every other pair with
# an exception, except that ABGR and I010 sources, and NV12 -> NV12, abort the whole
# process (a Rust panic), so the oracle is only ever asked about these pairs.
OFFICIAL_PAIRS = [
    ("RGBA", "BGRA"),
    ("RGBA", "I420"),
    ("ARGB", "I420"),
    ("BGRA", "RGBA"),
    ("BGRA", "I420"),
    ("RGB24", "I420"),
    ("I420", "RGBA"),
    ("I420", "ABGR"),
    ("I420", "ARGB"),
    ("I420", "BGRA"),
    ("I420", "RGB24"),
    ("I420", "I420"),
    ("I420A", "I420"),
    ("I420A", "I420A"),
    ("I422", "RGBA"),
    ("I422", "ABGR"),
    ("I422", "ARGB"),
    ("I422", "I420"),
    ("I422", "I422"),
    ("I444", "RGBA"),
    ("I444", "BGRA"),
    ("I444", "I420"),
    ("I444", "I444"),
    ("NV12", "RGBA"),
    ("NV12", "BGRA"),
    ("NV12", "I420"),
]
# libyuv's chroma rescaling at odd sizes may round differently on other CPUs (SIMD
# flavours); every other supported pair is required to be bit-exact
RESCALING = {("I422", "I420"), ("I444", "I420")}

SIZES = [(16, 8), (15, 9), (1, 1), (2, 3), (3, 2), (33, 17)]


def _size(name: str, w: int, h: int) -> int:
    cw, ch = (w + 1) // 2, (h + 1) // 2
    return {
        "RGBA": 4 * w * h,
        "ABGR": 4 * w * h,
        "ARGB": 4 * w * h,
        "BGRA": 4 * w * h,
        "RGB24": 3 * w * h,
        "I420": w * h + 2 * cw * ch,
        "I420A": 2 * w * h + 2 * cw * ch,
        "I422": w * h + 2 * cw * h,
        "I444": 3 * w * h,
        "I010": 2 * (w * h + 2 * cw * ch),
        "NV12": w * h + 2 * cw * ch,
    }[name]


def _random(name: str, w: int, h: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if name == "I010":
        return rng.integers(0, 1024, _size(name, w, h) // 2, dtype="<u2").tobytes()
    return rng.integers(0, 256, _size(name, w, h), dtype=np.uint8).tobytes()


def _smooth_rgba(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A picture with slowly varying colours and alpha (little chroma detail)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    chans = []
    for _ in range(4):
        a, b, phase = rng.uniform(0.2, 0.6, 3)
        chans.append(128 + 90 * np.sin(2 * np.pi * (a * xx + b * yy) + 3 * phase))
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def _bytes(frame: VideoFrame | rtc.VideoFrame) -> np.ndarray:
    return np.frombuffer(bytes(frame.data), dtype=np.uint8)


def _official(name: str, w: int, h: int, data: bytes, dst: str, flip: bool = False) -> np.ndarray:
    assert (name, dst) in OFFICIAL_PAIRS  # never ask the official SDK anything else
    frame = rtc.VideoFrame(w, h, T[name], bytearray(data))
    return _bytes(frame.convert(T[dst], flip_y=flip))


def _ours(name: str, w: int, h: int, data: bytes, dst: str, flip: bool = False) -> np.ndarray:
    return _bytes(VideoFrame(w, h, T[name], data).convert(T[dst], flip_y=flip))


def _packed(arr: np.ndarray, name: str, h: int, w: int) -> np.ndarray:
    return arr[: _size(name, w, h)].reshape(h, w, 4 if name != "RGB24" else 3)


def _yuv_planes(arr: np.ndarray, name: str, w: int, h: int) -> list[np.ndarray]:
    """Y, U, V (and A) of a YUV buffer as arrays (uint16 for I010)."""
    sx, sy = SUB[name]
    cw, ch = (w + sx - 1) // sx, (h + sy - 1) // sy
    if name == "I010":
        v = arr.view("<u2")
        shapes = [(h, w), (ch, cw), (ch, cw)]
    else:
        v = arr
        shapes = [(h, w), (ch, 2 * cw)] if name == "NV12" else [(h, w), (ch, cw), (ch, cw)]
        if name == "I420A":
            shapes.append((h, w))
    out, offset = [], 0
    for rows, cols in shapes:
        out.append(v[offset : offset + rows * cols].reshape(rows, cols))
        offset += rows * cols
    if name == "NV12":
        return [out[0], out[1][:, 0::2], out[1][:, 1::2]]
    return out


def _to_rgba(arr: np.ndarray, name: str, w: int, h: int) -> np.ndarray:
    """(h, w, 4) RGBA pixels of a packed buffer (alpha 255 for RGB24)."""
    px = _packed(arr, name, h, w)
    r, g, b, a = ORDER[name]
    alpha = px[..., a] if a is not None else np.full((h, w), 255, np.uint8)
    return np.stack([px[..., r], px[..., g], px[..., b], alpha], -1)


def _from_rgba(rgba: np.ndarray, name: str) -> bytes:
    """Bytes of an (h, w, 4) RGBA picture in a packed layout."""
    h, w = rgba.shape[:2]
    out = np.empty((h, w, 4 if name != "RGB24" else 3), np.uint8)
    for src, index in enumerate(ORDER[name]):
        if index is not None:
            out[..., index] = rgba[..., src]
    return out.tobytes()


# ------------------------------------------------------------ numpy references


def _ref_rgb_to_yuv(rgb: np.ndarray, sx: int, sy: int) -> tuple[np.ndarray, ...]:
    """libyuv ARGBToI4xx in plain int64 numpy."""
    h, w = rgb.shape[:2]
    x = rgb[..., :3].astype(np.int64)
    y = (66 * x[..., 0] + 129 * x[..., 1] + 25 * x[..., 2] + 0x1080) >> 8
    x = np.pad(x, ((0, (-h) % sy), (0, (-w) % sx), (0, 0)), mode="edge")
    total = sum(x[i::sy, j::sx] for i in range(sy) for j in range(sx))
    mean = (total + sx * sy // 2) // (sx * sy)
    r, g, b = mean[..., 0], mean[..., 1], mean[..., 2]
    u = (112 * b - 74 * g - 38 * r + 0x8000) >> 8
    v = (112 * r - 94 * g - 18 * b + 0x8000) >> 8
    return y.astype(np.uint8), u.astype(np.uint8), v.astype(np.uint8)


def _ref_yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, sx: int, sy: int) -> np.ndarray:
    """libyuv I4xxToARGB (BT.601 limited) in plain int64 numpy, as (h, w, 3) RGB."""
    h, w = y.shape
    uu = np.repeat(np.repeat(u.astype(np.int64), sy, 0), sx, 1)[:h, :w] - 128
    vv = np.repeat(np.repeat(v.astype(np.int64), sy, 0), sx, 1)[:h, :w] - 128
    y1 = (y.astype(np.int64) * 0x0101 * 18997) >> 16
    r = (y1 + 102 * vv - 1160) >> 6
    g = (y1 - 25 * uu - 52 * vv - 1160) >> 6
    b = (y1 + 128 * uu - 1160) >> 6
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("w", "h"), [(1, 1), (2, 2), (7, 5), (16, 9), (15, 8)])
def test_layout_matches_official(name: str, w: int, h: int) -> None:
    data = _random(name, w, h)
    ours = VideoFrame(w, h, T[name], data)
    theirs = rtc.VideoFrame(w, h, T[name], bytearray(data))
    assert (ours.width, ours.height, ours.type) == (w, h, T[name])
    assert bytes(ours.data) == data
    assert len(ours.data) == _size(name, w, h)
    planes = []
    for n in range(5):
        mine, official = ours.get_plane(n), theirs.get_plane(n)
        assert (mine is None) == (official is None), n
        if mine is not None and official is not None:
            assert bytes(mine) == bytes(official), n
            planes.append(bytes(mine))
    assert ours.get_plane(-1) is None
    if name in PACKED:
        assert planes == []
    else:
        assert b"".join(planes) == data  # planes tile the buffer in order


def test_data_and_planes_are_writable_views_of_a_private_copy() -> None:
    source = bytearray(_random("I420", 6, 4))
    frame = VideoFrame(6, 4, T["I420"], source)
    source[0] ^= 0xFF
    assert frame.data[0] != source[0]  # the frame copied the input

    data = frame.data
    assert isinstance(data, memoryview) and not data.readonly and data.format == "B"
    u = frame.get_plane(1)
    assert u is not None and len(u) == 3 * 2 and not u.readonly
    u[0] = 7
    assert frame.data[24] == 7  # U starts right after the 6x4 Y plane
    data[24] = 9
    assert frame.get_plane(1)[0] == 9  # type: ignore[index]


def test_accepts_buffers_of_any_kind_and_keeps_longer_data() -> None:
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(3, 2, 4)
    for data in (pixels.tobytes(), bytearray(pixels.tobytes()), memoryview(pixels)):
        assert bytes(VideoFrame(2, 3, T["RGBA"], data).data) == pixels.tobytes()
    strided = np.arange(48, dtype=np.uint8)[::2]  # a non-contiguous buffer
    assert bytes(VideoFrame(2, 3, T["RGBA"], memoryview(strided)).data) == strided.tobytes()
    longer = VideoFrame(2, 2, T["I420"], bytes(20))
    assert len(longer.data) == 20
    assert len(longer.convert(T["I420"]).data) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width must be positive"),
        ({"width": -4}, "width must be positive"),
        ({"height": 0}, "height must be positive"),
        ({"width": 2.0}, "width must be an int"),
        ({"height": True}, "height must be an int"),
        ({"type": 11}, "unknown video buffer type"),
        ({"type": -1}, "unknown video buffer type"),
        ({"type": "RGBA"}, "VideoBufferType"),
        ({"type": 1.0}, "VideoBufferType"),
        ({"type": None}, "VideoBufferType"),
        ({"data": bytes(4 * 4 * 3 - 1)}, "too short"),
        ({"type": T["I420"], "data": bytes(4 * 3 + 2 * 2 * 2 - 1)}, "too short"),
        ({"type": T["I010"], "data": bytes(2 * (4 * 3 + 2 * 2 * 2) - 1)}, "too short"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"width": 4, "height": 3, "type": T["RGBA"], "data": bytes(48)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        VideoFrame(**args)  # type: ignore[arg-type]


def test_too_short_message_names_the_sizes() -> None:
    with pytest.raises(ValueError, match=r"15 bytes given, 20 needed"):
        VideoFrame(4, 3, T["I420"], bytes(15))


def test_rejects_non_buffers_and_unknown_target_types() -> None:
    with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
        VideoFrame(1, 1, T["RGBA"], [1, 2, 3, 4])  # type: ignore[arg-type]
    frame = VideoFrame(2, 2, T["RGBA"], bytes(16))
    for bad in (11, -1, "I420", None):
        with pytest.raises(ValueError, match=r"VideoBufferType|unknown video buffer type"):
            frame.convert(bad)  # type: ignore[arg-type]


def test_repr() -> None:
    assert repr(VideoFrame(4, 2, T["NV12"], bytes(12))) == (
        "rtc.VideoFrame(width=4, height=2, type=NV12)"
    )


# ------------------------------------------------- against the official SDK


@pytest.mark.parametrize(("src", "dst"), OFFICIAL_PAIRS)
def test_convert_matches_official(src: str, dst: str) -> None:
    tolerance = 2 if (src, dst) in RESCALING else 0
    for seed, (w, h) in enumerate(SIZES):
        data = _random(src, w, h, seed)
        for flip in (False, True):
            theirs = _official(src, w, h, data, dst, flip)
            ours = _ours(src, w, h, data, dst, flip)
            assert ours.shape == theirs.shape
            diff = np.abs(ours.astype(np.int16) - theirs).max()
            assert diff <= tolerance, f"{src}->{dst} {w}x{h} flip={flip}: off by {diff}"


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("RGBA", "I420"),
        ("RGB24", "I420"),
        ("I420", "RGBA"),
        ("I420", "RGB24"),
        ("I422", "ABGR"),
        ("I444", "BGRA"),
        ("NV12", "RGBA"),
    ],
)
@pytest.mark.parametrize(("w", "h"), [(641, 363), (1281, 723), (1920, 1080)])
def test_large_frames_match_official(
    src: str, dst: str, w: int, h: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # several processing blocks, odd sizes, and pictures big enough to be converted in
    # two bands of rows on two threads (the band edge falls inside a processing block),
    # which they are even on a single CPU
    monkeypatch.setattr(video_convert, "_HELPERS", 1)
    monkeypatch.setattr(video_convert, "_spare_cpu", lambda: True)
    data = _random(src, w, h, 5)
    for flip in (False, True):
        assert np.array_equal(
            _ours(src, w, h, data, dst, flip), _official(src, w, h, data, dst, flip)
        )


@pytest.mark.parametrize("src", PACKED)
@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (1, 1)])
def test_packed_to_yuv_of_any_order_matches_official_rgba(src: str, w: int, h: int) -> None:
    """The same pixels give the same YUV whatever their byte order (the official SDK
    crashes on ABGR sources and refuses most pairs, so RGBA -> I420 is the oracle)."""
    rgba = np.frombuffer(_random("RGBA", w, h, 3), np.uint8).reshape(h, w, 4)
    data = _from_rgba(rgba, src)
    if src == "RGB24":
        rgba = rgba.copy()
        rgba[..., 3] = 255
    for flip in (False, True):
        ref = _official("RGBA", w, h, rgba.tobytes(), "I420", flip)
        ry, ru, rv = _yuv_planes(ref, "I420", w, h)
        for dst in ("I420", "I420A", "NV12", "I010"):
            planes = _yuv_planes(_ours(src, w, h, data, dst, flip), dst, w, h)
            if dst == "I010":
                ry, ru, rv = (p.astype(np.uint16) << 2 | p >> 6 for p in (ry, ru, rv))
            for mine, official in zip(planes[:3], (ry, ru, rv), strict=True):
                assert np.array_equal(mine, official), (src, dst, flip)
            if dst == "I420A":
                alpha = rgba[::-1, :, 3] if flip else rgba[..., 3]
                assert np.array_equal(planes[3], alpha)


@pytest.mark.parametrize("src", PACKED)
@pytest.mark.parametrize(
    ("w", "h", "kind"), [(1920, 1080, "random"), (1921, 1081, "random"), (99, 67, "extremes")]
)
def test_packed_to_i420_at_video_sizes_matches_official(
    src: str, w: int, h: int, kind: str
) -> None:
    """Full-HD and odd-sized pictures of every byte order against the official SDK's
    RGBA -> I420 of the same pixels: random ones, and ones made only of 0 and 255 (the
    extreme sums and chroma values of the whole-word arithmetic)."""
    rng = np.random.default_rng(11)
    if kind == "random":
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    else:
        rgba = (rng.integers(0, 2, (h, w, 4), dtype=np.uint8) * 255).astype(np.uint8)
    if src == "RGB24":
        rgba[..., 3] = 255
    data = _from_rgba(rgba, src)
    for flip in (False, True):
        ref = _official("RGBA", w, h, rgba.tobytes(), "I420", flip)
        assert np.array_equal(_ours(src, w, h, data, "I420", flip), ref), (src, w, h, flip)
        if (w, h) == (1921, 1081):  # the other 4:2:0 layouts, from the same kernel
            ry, ru, rv = _yuv_planes(ref, "I420", w, h)
            for dst in ("I420A", "NV12", "I010"):
                planes = _yuv_planes(_ours(src, w, h, data, dst, flip), dst, w, h)
                if dst == "I010":
                    ry, ru, rv = (p.astype(np.uint16) << 2 | p >> 6 for p in (ry, ru, rv))
                for mine, official in zip(planes[:3], (ry, ru, rv), strict=True):
                    assert np.array_equal(mine, official), (src, dst, flip)


@pytest.mark.parametrize("src", PACKED)
@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (3, 1)])
def test_packed_to_i422_and_i444_match_reference(src: str, w: int, h: int) -> None:
    rgba = np.frombuffer(_random("RGBA", w, h, 4), np.uint8).reshape(h, w, 4)
    data = _from_rgba(rgba, src)
    for dst in ("I422", "I444"):
        planes = _yuv_planes(_ours(src, w, h, data, dst), dst, w, h)
        for mine, ref in zip(planes, _ref_rgb_to_yuv(rgba, *SUB[dst]), strict=True):
            assert np.array_equal(mine, ref), (src, dst)
        flipped = _yuv_planes(_ours(src, w, h, data, dst, flip=True), dst, w, h)
        for mine, ref in zip(flipped, _ref_rgb_to_yuv(rgba[::-1], *SUB[dst]), strict=True):
            assert np.array_equal(mine, ref), (src, dst)


@pytest.mark.parametrize("src", ["RGBA", "RGB24"])
def test_large_packed_to_i422_and_i444_match_reference(
    src: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video_convert, "_HELPERS", 1)  # two bands, even on one CPU
    monkeypatch.setattr(video_convert, "_spare_cpu", lambda: True)
    w, h = 1281, 723
    rgba = np.frombuffer(_random("RGBA", w, h, 6), np.uint8).reshape(h, w, 4)
    data = _from_rgba(rgba, src)
    for dst in ("I422", "I444"):
        for flip in (False, True):
            planes = _yuv_planes(_ours(src, w, h, data, dst, flip), dst, w, h)
            picture = rgba[::-1] if flip else rgba
            for mine, ref in zip(planes, _ref_rgb_to_yuv(picture, *SUB[dst]), strict=True):
                assert np.array_equal(mine, ref), (src, dst, flip)


@pytest.mark.parametrize("src", YUV)
@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (1, 3)])
def test_yuv_to_packed_of_any_order_matches_official(src: str, w: int, h: int) -> None:
    """Every YUV layout to every packed one, against the official SDK's X -> RGBA where
    it has one, else against the official I420 -> RGBA of the equivalent I420."""
    data = _random(src, w, h, 6)
    arr = np.frombuffer(data, np.uint8)
    planes = _yuv_planes(arr, src, w, h)
    alpha = planes[3] if src == "I420A" else np.full((h, w), 255, np.uint8)
    if src in ("I420", "I422", "I444", "NV12"):
        official_src, official_data = src, data
    else:  # I420A: drop alpha; I010: the 8-bit equivalent
        y, u, v = (p >> 2 if src == "I010" else p for p in planes[:3])
        official_src = "I420"
        official_data = b"".join(np.asarray(p, np.uint8).tobytes() for p in (y, u, v))
    for flip in (False, True):
        rgba = _packed(_official(official_src, w, h, official_data, "RGBA", flip), "RGBA", h, w)
        rgba = rgba.copy()
        rgba[..., 3] = alpha[::-1] if flip else alpha
        for dst in PACKED:
            ours = _to_rgba(_ours(src, w, h, data, dst, flip), dst, w, h)
            expected = rgba if dst != "RGB24" else np.dstack([rgba[..., :3], np.full((h, w), 255)])
            assert np.array_equal(ours, expected), (src, dst, flip)


def test_yuv_to_rgb_matches_reference_formula() -> None:
    w, h = 21, 11
    for name in ("I420", "I422", "I444"):
        data = _random(name, w, h, 8)
        y, u, v = _yuv_planes(np.frombuffer(data, np.uint8), name, w, h)
        ours = _packed(_ours(name, w, h, data, "RGB24"), "RGB24", h, w)
        assert np.array_equal(ours, _ref_yuv_to_rgb(y, u, v, *SUB[name])), name


def test_rgb_to_i420_matches_reference_formula() -> None:
    w, h = 21, 11
    rgba = np.frombuffer(_random("RGBA", w, h, 9), np.uint8).reshape(h, w, 4)
    planes = _yuv_planes(_ours("RGBA", w, h, rgba.tobytes(), "I420"), "I420", w, h)
    for mine, ref in zip(planes, _ref_rgb_to_yuv(rgba, 2, 2), strict=True):
        assert np.array_equal(mine, ref)


@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (1, 1)])
def test_packed_to_packed_is_a_byte_shuffle(w: int, h: int) -> None:
    rgba = np.frombuffer(_random("RGBA", w, h, 10), np.uint8).reshape(h, w, 4)
    for src in PACKED:
        expected = rgba.copy()
        if src == "RGB24":
            expected[..., 3] = 255
        for dst in PACKED:
            for flip in (False, True):
                out = _to_rgba(_ours(src, w, h, _from_rgba(rgba, src), dst, flip), dst, w, h)
                want = expected[::-1] if flip else expected
                if dst == "RGB24":
                    want = np.dstack([want[..., :3], np.full((h, w), 255)])
                assert np.array_equal(out, want), (src, dst, flip)


# ------------------------------------------------------- YUV <-> YUV pairs


@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (1, 1)])
def test_yuv_to_yuv_references(w: int, h: int) -> None:
    data = _random("I420", w, h, 11)
    y, u, v = _yuv_planes(np.frombuffer(data, np.uint8), "I420", w, h)
    # NV12 interleaves, I420A adds an opaque alpha plane, I010 stretches to 10 bits
    ny, nu, nv = _yuv_planes(_ours("I420", w, h, data, "NV12"), "NV12", w, h)
    assert np.array_equal(ny, y) and np.array_equal(nu, u) and np.array_equal(nv, v)
    a_planes = _yuv_planes(_ours("I420", w, h, data, "I420A"), "I420A", w, h)
    assert np.array_equal(a_planes[1], u) and (a_planes[3] == 255).all()
    ten = _yuv_planes(_ours("I420", w, h, data, "I010"), "I010", w, h)
    for mine, p in zip(ten, (y, u, v), strict=True):
        assert np.array_equal(mine, p.astype(np.uint16) * 4 + (p >> 6))
    # chroma upsampling repeats samples
    cw, ch = (w + 1) // 2, (h + 1) // 2
    i444 = _yuv_planes(_ours("I420", w, h, data, "I444"), "I444", w, h)
    assert np.array_equal(i444[1], np.repeat(np.repeat(u, 2, 0), 2, 1)[:h, :w])
    i422 = _yuv_planes(_ours("I420", w, h, data, "I422"), "I422", w, h)
    assert np.array_equal(i422[2], np.repeat(v, 2, 0)[:h, :cw])
    assert i422[1].shape == (h, cw) and i444[2].shape == (h, w) and u.shape == (ch, cw)


def test_i010_reduces_to_8_bits_and_saturates() -> None:
    w, h = 4, 2
    samples = np.array([0, 3, 4, 1023, 1024, 65535, 512, 1020], "<u2")
    y = samples
    u = np.array([0, 1023, 700, 4], "<u2")  # 2x1 chroma samples, U then V
    data = np.concatenate([y, u]).astype("<u2").tobytes()
    planes = _yuv_planes(_ours("I010", w, h, data, "I420"), "I420", w, h)
    assert planes[0].ravel().tolist() == [0, 0, 1, 255, 255, 255, 128, 255]
    assert planes[1].ravel().tolist() == [0, 255] and planes[2].ravel().tolist() == [175, 1]


@pytest.mark.parametrize(("w", "h"), [(16, 8), (8, 6)])
def test_halving_chroma_matches_libyuv_box_at_even_sizes(w: int, h: int) -> None:
    data = _random("I444", w, h, 12)
    _, u, _ = _yuv_planes(np.frombuffer(data, np.uint8), "I444", w, h)
    u = u.astype(np.int64)
    i422 = _yuv_planes(_ours("I444", w, h, data, "I422"), "I422", w, h)
    assert np.array_equal(i422[1], (u[:, 0::2] + u[:, 1::2] + 1) >> 1)
    i420 = _yuv_planes(_ours("I444", w, h, data, "I420"), "I420", w, h)
    box = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2] + 2) >> 2
    assert np.array_equal(i420[1], box)


# ----------------------------------------------------------- all 121 pairs


@pytest.mark.parametrize("src", NAMES)
def test_every_pair_converts(src: str) -> None:
    for w, h in [(1, 1), (2, 1), (1, 2), (3, 3), (16, 8), (7, 5)]:
        data = _random(src, w, h, w * 31 + h)
        frame = VideoFrame(w, h, T[src], data)
        for dst in NAMES:
            for flip in (False, True):
                out = frame.convert(T[dst], flip_y=flip)
                assert isinstance(out, VideoFrame)
                assert (out.width, out.height, out.type) == (w, h, T[dst])
                assert len(out.data) == _size(dst, w, h)
        copy = frame.convert(T[src])
        assert bytes(copy.data) == data and copy.data.obj is not frame.data.obj
        assert bytes(frame.data) == data  # the source is left alone


LOSSLESS_TARGETS = {
    # source -> targets that keep all of its information (same image back in RGBA)
    **{p: set(PACKED) for p in PACKED},
    **{name: set(NAMES) for name in ("I420", "I420A", "I010", "NV12")},
    "I422": set(PACKED) | {"I422", "I444"},
    "I444": set(PACKED) | {"I444"},
}


@pytest.mark.parametrize(("w", "h"), [(64, 36), (63, 35)])
def test_round_trips(w: int, h: int) -> None:
    """src -> dst -> RGBA looks like src -> RGBA: exactly when dst keeps everything src
    holds, within a few levels otherwise (YUV quantisation, chroma resampling)."""
    rgba = VideoFrame(w, h, T["RGBA"], _smooth_rgba(w, h).tobytes())
    for src in NAMES:
        source = rgba.convert(T[src])
        ref = _packed(_bytes(source.convert(T["RGBA"])), "RGBA", h, w).astype(np.int16)
        for dst in NAMES:
            back = _packed(_bytes(source.convert(T[dst]).convert(T["RGBA"])), "RGBA", h, w)
            diff = np.abs(back[..., :3] - ref[..., :3]).max()
            if dst in LOSSLESS_TARGETS[src]:
                assert diff == 0, (src, dst)
            else:
                assert diff <= 10, (src, dst, diff)
            if src in ("RGBA", "ABGR", "ARGB", "BGRA", "I420A") and dst in (
                "RGBA",
                "ABGR",
                "ARGB",
                "BGRA",
                "I420A",
            ):
                assert np.array_equal(back[..., 3], ref[..., 3]), (src, dst)


# ----------------------------------------------------------------- flip_y


@pytest.mark.parametrize(("w", "h"), [(6, 4), (5, 7)])
def test_flip_y(w: int, h: int) -> None:
    rgba = np.frombuffer(_random("RGBA", w, h, 13), np.uint8).reshape(h, w, 4)
    frame = VideoFrame(w, h, T["RGBA"], rgba.tobytes())
    # packed -> packed: rows reversed
    out = _packed(_bytes(frame.convert(T["RGBA"], flip_y=True)), "RGBA", h, w)
    assert np.array_equal(out, rgba[::-1])
    # packed -> YUV: the mirrored picture converted
    mirrored = VideoFrame(w, h, T["RGBA"], rgba[::-1].tobytes())
    for dst in YUV:
        assert bytes(frame.convert(T[dst], flip_y=True).data) == bytes(
            mirrored.convert(T[dst]).data
        )
    # YUV -> packed: converted, then rows reversed (the chroma of odd heights follows)
    for src in YUV:
        yuv = VideoFrame(w, h, T[src], _random(src, w, h, 14))
        plain = _packed(_bytes(yuv.convert(T["BGRA"])), "BGRA", h, w)
        flipped = _packed(_bytes(yuv.convert(T["BGRA"], flip_y=True)), "BGRA", h, w)
        assert np.array_equal(flipped, plain[::-1]), src
    # YUV -> YUV: every plane mirrored, then converted (libyuv's negative height)
    yuv = VideoFrame(w, h, T["I422"], _random("I422", w, h, 15))
    planes = _yuv_planes(_bytes(yuv), "I422", w, h)
    mirrored_yuv = VideoFrame(w, h, T["I422"], b"".join(p[::-1].tobytes() for p in planes))
    assert bytes(yuv.convert(T["I420"], flip_y=True).data) == bytes(
        mirrored_yuv.convert(T["I420"]).data
    )
    assert bytes(yuv.convert(T["I422"], flip_y=True).data) == bytes(mirrored_yuv.data)


# ---------------------------------------------------------------- PyAV glue


def _av_plane(frame: av.VideoFrame, index: int, rows: int, cols: int) -> np.ndarray:
    plane = frame.planes[index]
    return np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[:rows, :cols]


@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9)])
def test_av_frame_round_trip(w: int, h: int) -> None:
    data = _random("I420", w, h, 16)
    frame = VideoFrame(w, h, T["I420"], data)
    av_frame = _to_av_frame(frame)
    assert (av_frame.format.name, av_frame.width, av_frame.height) == ("yuv420p", w, h)
    y, u, v = _yuv_planes(np.frombuffer(data, np.uint8), "I420", w, h)
    for index, plane in enumerate((y, u, v)):
        assert np.array_equal(_av_plane(av_frame, index, *plane.shape), plane)
    back = _from_av_frame(av_frame)
    assert (back.width, back.height, back.type) == (w, h, T["I420"])
    assert bytes(back.data) == data


@pytest.mark.parametrize(("w", "h"), [(16, 8), (15, 9), (16, 9), (32, 18), (1280, 720)])
def test_av_frame_shared_reads_the_frames_bytes_where_the_layouts_agree(w: int, h: int) -> None:
    data = _random("I420", w, h, 17)
    frame = VideoFrame(w, h, T["I420"], data)
    shared = _to_av_frame(frame, share=True)
    copied = _to_av_frame(frame)
    y, u, v = _yuv_planes(np.frombuffer(data, np.uint8), "I420", w, h)
    for av_frame in (shared, copied):
        assert (av_frame.format.name, av_frame.width, av_frame.height) == ("yuv420p", w, h)
        for index, plane in enumerate((y, u, v)):
            assert np.array_equal(_av_plane(av_frame, index, *plane.shape), plane)
    frame.data[0] ^= 0xFF  # what a shared frame reads changes with the frame's bytes
    in_place = w % 2 == 0 and h % 4 == 0
    assert bool(_av_plane(shared, 0, 1, 1)[0, 0] == frame.data[0]) is in_place
    assert _av_plane(copied, 0, 1, 1)[0, 0] != frame.data[0]
    assert bytes(_from_av_frame(shared).data) == bytes(frame.data if in_place else data)


def test_av_frame_shared_matches_the_copy_at_every_small_size() -> None:
    for w in range(1, 21):
        for h in range(1, 21):
            frame = VideoFrame(w, h, T["I420"], _random("I420", w, h, w * 31 + h))
            shared = bytes(_from_av_frame(_to_av_frame(frame, share=True)).data)
            assert shared == bytes(_from_av_frame(_to_av_frame(frame)).data), (w, h)


def test_av_frame_from_other_layouts() -> None:
    w, h = 32, 18
    rgba = _smooth_rgba(w, h)
    frame = VideoFrame(w, h, T["RGBA"], rgba.tobytes())
    # ours -> PyAV goes through our own I420 conversion
    assert bytes(_from_av_frame(_to_av_frame(frame)).data) == bytes(frame.convert(T["I420"]).data)
    # PyAV frames in other pixel formats are converted by libswscale: close to ours
    av_rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba[..., :3]), format="rgb24")
    converted = _from_av_frame(av_rgb)
    assert converted.type == T["I420"] and (converted.width, converted.height) == (w, h)
    ours = _bytes(frame.convert(T["I420"])).astype(np.int16)
    assert np.abs(_bytes(converted) - ours).max() <= 3


def _convert_large_in_child() -> None:
    frame = VideoFrame(1280, 720, T["RGBA"], bytes(1280 * 720 * 4))
    frame.convert(T["I420"]).convert(T["RGBA"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_large_conversions_work_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper thread of the parent does not survive a fork: the child starts its own
    instead of waiting for it forever."""
    monkeypatch.setattr(video_convert, "_HELPERS", 1)
    monkeypatch.setattr(video_convert, "_spare_cpu", lambda: True)
    _convert_large_in_child()  # the parent's helper thread exists now
    child = multiprocessing.get_context("fork").Process(target=_convert_large_in_child)
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("the forked child hung in convert")
    assert child.exitcode == 0
