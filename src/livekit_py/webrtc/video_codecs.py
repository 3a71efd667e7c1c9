"""Video encoders for aiortc's ``RTCRtpSender``, with LiveKit's bitrate and frame-rate caps.

aiortc creates a VP8 or H.264 encoder by itself when its sender has none, with fixed
bitrate bounds (VP8: 250 kbps to 1.5 Mbps, H.264: 500 kbps to 3 Mbps) and no frame-rate
limit. The encoders here are drop-in replacements, installed on the sender before media
flows, that follow a ``VideoEncoding`` instead:

* ``target_bitrate`` starts at ``max_bitrate`` and never exceeds it; the receiver's
  estimate (REMB, which the sender writes to ``target_bitrate``) may lower it down to
  aiortc's floor for the codec (or to ``max_bitrate`` when that is lower still).
* frames ahead of a schedule of one frame per ``1 / max_framerate`` (by their
  timestamps) are dropped. A dropped frame returns no payload, which the sender
  treats as "nothing to send"; a keyframe request that arrives with a dropped frame is
  kept for the next encoded one.

Encoding itself still runs where aiortc runs it: in the event loop's default executor.
A ``frame_transform`` (:mod:`.frame_transform`; end-to-end encryption sets one) sees
each encoded frame before it is packetized.

For screen content (``screencast=True``, from ``VideoSource(is_screencast=True)``) the
bitrate never goes below :data:`SCREENCAST_MIN_BITRATE` (or the cap, if lower), as the
official SDK promises for screencasts, and the VP8 encoder runs libvpx's screen-content
mode (libwebrtc's setting for screen content), which keeps text sharp. Both encoders run
at real-time speed settings: libx264's ``superfast`` preset (aiortc leaves x264's
``medium``, about four times the CPU at 720p) and libvpx without its denoiser.
AV1, VP9 and H.265 have no encoder in aiortc; :func:`make_video_encoder` refuses them.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from types import ModuleType
from typing import ClassVar, NamedTuple

import av
from aiortc.codecs import h264 as aiortc_h264
from aiortc.codecs import vpx as aiortc_vpx
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from av.frame import Frame
from av.video.codeccontext import VideoCodecContext

from .._validate import check_int
from ..log import get_logger
from ..types import VideoCodec
from .aiortc_adapter import (
    TransformingH264Encoder,
    TransformingVp8Encoder,
    set_aiortc_target_bitrate,
)

__all__ = [
    "EncodeCounts",
    "SCREENCAST_MIN_BITRATE",
    "H264VideoEncoder",
    "Vp8VideoEncoder",
    "default_max_bitrate",
    "default_max_framerate",
    "h264_payload_is_keyframe",
    "make_video_encoder",
    "vp8_payload_is_keyframe",
    "screenshare_encoding",
]

logger = get_logger("media.video_codecs")

VIDEO_CLOCK_RATE = 90000

# A frame may come this fraction of the frame interval early and still be encoded, so
# that capture jitter at exactly the maximum rate does not drop frames. The long-run rate
# stays at or below the maximum: every encoded frame moves the next due time by a full
# interval.
_EARLY_TOLERANCE = 0.25
# The due times form a schedule (each one interval after the previous), not an interval
# after each encoded frame, so that a late frame and the on-time one after it (a capture
# delayed by a busy event loop) are both encoded, as libwebrtc's frame-rate controller
# does. A frame this many intervals away from the schedule starts a new one.
_RESCHEDULE_AFTER = 2.0


class _Preset(NamedTuple):
    width: int
    height: int
    max_bitrate: int
    max_framerate: float


# LiveKit's camera presets (the same as its other SDKs use), for 16:9 and 4:3 pictures
_PRESETS_16_9 = (
    _Preset(160, 90, 90_000, 15.0),
    _Preset(320, 180, 160_000, 15.0),
    _Preset(384, 216, 180_000, 15.0),
    _Preset(640, 360, 450_000, 20.0),
    _Preset(960, 540, 800_000, 25.0),
    _Preset(1280, 720, 1_700_000, 30.0),
    _Preset(1920, 1080, 3_000_000, 30.0),
    _Preset(2560, 1440, 5_000_000, 30.0),
    _Preset(3840, 2160, 8_000_000, 30.0),
)
_PRESETS_4_3 = (
    _Preset(160, 120, 80_000, 15.0),
    _Preset(240, 180, 100_000, 15.0),
    _Preset(320, 240, 150_000, 15.0),
    _Preset(480, 360, 225_000, 20.0),
    _Preset(640, 480, 300_000, 20.0),
    _Preset(720, 540, 450_000, 25.0),
    _Preset(960, 720, 1_500_000, 30.0),
    _Preset(1440, 1080, 2_500_000, 30.0),
    _Preset(1920, 1440, 3_500_000, 30.0),
)

# LiveKit's screen-share presets (the Rust SDK's `screenshare::PRESETS`)
_PRESETS_SCREENSHARE = (
    _Preset(640, 360, 200_000, 3.0),
    _Preset(1280, 720, 400_000, 5.0),
    _Preset(1280, 720, 1_000_000, 15.0),
    _Preset(1920, 1080, 1_500_000, 15.0),
    _Preset(1920, 1080, 3_000_000, 30.0),
)

# The lowest bitrate of an encoder of screen content, bits/s (the official SDK's floor for
# screencast sources); an encoder capped lower keeps its cap.
SCREENCAST_MIN_BITRATE = 1_200_000

# H.264 levels as (level_idc option, max macroblocks per frame, max macroblocks per second)
_H264_LEVELS = (
    ("31", 3600, 108_000),
    ("32", 5120, 216_000),
    ("40", 8192, 245_760),
    ("42", 8704, 522_240),
    ("50", 22_080, 589_824),
    ("51", 36_864, 983_040),
    ("52", 36_864, 2_073_600),
)

# FFmpeg's numbers for the colour description libx264 writes into the SPS (VUI):
# AVCOL_SPC/PRI/TRC_SMPTE170M (BT.601, 525 lines) and AVCOL_RANGE_MPEG (limited range).
_BT601 = 6
_LIMITED_RANGE = 1


def _check_size(width: object, height: object) -> tuple[int, int]:
    return check_int("width", width), check_int("height", height)


def _preset_for(width: int, height: int) -> _Preset:
    """The smallest preset with at least as many pixels as ``width`` x ``height``.

    The 16:9 or 4:3 list is chosen by which ratio is closer to the picture's (landscape)
    aspect ratio; pictures larger than every preset get the largest one.
    """
    long_side, short_side = max(width, height), min(width, height)
    ratio = long_side / short_side
    presets = _PRESETS_16_9 if abs(ratio - 16 / 9) < abs(ratio - 4 / 3) else _PRESETS_4_3
    pixels = width * height
    for preset in presets:
        if preset.width * preset.height >= pixels:
            return preset
    return presets[-1]


def default_max_bitrate(width: int, height: int) -> int:
    """LiveKit's default maximum bitrate for a camera picture of this size, in bits/s.

    It is the bitrate of the smallest of LiveKit's video presets holding at least as many
    pixels: 640x360 gets 450 kbps, 1280x720 1.7 Mbps, 1920x1080 3 Mbps (4:3 pictures use
    the 4:3 presets, e.g. 640x480 gets 300 kbps).

    Raises:
        ValueError: If a dimension is not a positive int.
    """
    width, height = _check_size(width, height)
    return _preset_for(width, height).max_bitrate


def screenshare_encoding(width: int, height: int) -> tuple[int, float]:
    """LiveKit's (bitrate in bits/s, frame rate) for a screen share of this size.

    As the Rust SDK's ``compute_appropriate_encoding`` for a screen share: the first
    screen-share preset wider than the picture's longer side (the largest for bigger
    pictures): 1280x720 gets 1.5 Mbps at 15 fps, 1920x1080 3 Mbps at 30 fps.

    Raises:
        ValueError: If a dimension is not a positive int.
    """
    width, height = _check_size(width, height)
    size = max(width, height)
    chosen = _PRESETS_SCREENSHARE[-1]
    for preset in _PRESETS_SCREENSHARE:
        if preset.width > size:
            chosen = preset
            break
    return chosen.max_bitrate, chosen.max_framerate


def default_max_framerate(width: int, height: int) -> float:
    """The frame rate of the preset :func:`default_max_bitrate` picks (15 to 30 fps).

    Raises:
        ValueError: If a dimension is not a positive int.
    """
    width, height = _check_size(width, height)
    return _preset_for(width, height).max_framerate


def _check_limits(
    max_bitrate: int | None, max_framerate: float | None
) -> tuple[int | None, float | None]:
    if max_bitrate is not None:
        if isinstance(max_bitrate, bool) or not isinstance(max_bitrate, int):
            raise ValueError(
                f"max_bitrate must be an int (bits per second) or None, "
                f"got {type(max_bitrate).__name__}"
            )
        if max_bitrate <= 0:
            raise ValueError(f"max_bitrate must be positive, got {max_bitrate}")
    if max_framerate is not None:
        if isinstance(max_framerate, bool) or not isinstance(max_framerate, (int, float)):
            raise ValueError(
                f"max_framerate must be a number (frames per second) or None, "
                f"got {type(max_framerate).__name__}"
            )
        if not math.isfinite(max_framerate) or max_framerate <= 0:
            raise ValueError(f"max_framerate must be positive and finite, got {max_framerate}")
        max_framerate = float(max_framerate)
    return max_bitrate, max_framerate


class _FrameRateLimiter:
    """Decides which frames to encode so that at most ``max_framerate`` per second are.

    Works on the frames' own timestamps, so the outcome does not depend on when the
    encoder thread gets to run. A frame with the same timestamp as the previous encoded
    one is always dropped (two pictures cannot share an RTP timestamp, and libvpx refuses
    them); a timestamp earlier than the previous one starts everything over.
    """

    def __init__(self, max_framerate: float | None) -> None:
        self._interval = 1.0 / max_framerate if max_framerate else 0.0
        self._next_due: float | None = None
        self._last: float | None = None
        self.restarted = False  # set when the timestamps went back; cleared by the encoder

    def admit(self, frame: Frame) -> bool:
        if frame.pts is None or frame.time_base is None:
            return True
        when = float(frame.pts * frame.time_base)
        last = self._last
        if last is not None and when == last:
            return False
        if last is not None and when < last:
            self._next_due = None
            self.restarted = True
        interval = self._interval
        if interval:
            due = self._next_due
            if due is None or abs(when - due) >= interval * _RESCHEDULE_AFTER:
                self._next_due = when + interval
            elif when < due - interval * _EARLY_TOLERANCE:
                return False
            else:
                self._next_due = due + interval
        self._last = when
        return True


def _timestamp(frame: Frame) -> int:
    """The frame's time on the 90 kHz RTP clock (0 without a timestamp)."""
    if frame.pts is None or frame.time_base is None:
        return 0
    return int(frame.pts * frame.time_base * VIDEO_CLOCK_RATE)


class _Limits:
    """Bitrate bounds and frame-rate gate shared by both encoders."""

    def __init__(
        self,
        max_bitrate: int | None,
        max_framerate: float | None,
        aiortc_min: int,
        aiortc_default: int,
        aiortc_max: int,
        floor: int = 0,
    ) -> None:
        self.max_bitrate = max_bitrate
        self.max_framerate = max_framerate
        if max_bitrate is None:
            self.upper = aiortc_max
            self.lower = aiortc_min
            self.initial = aiortc_default
        else:
            self.upper = max_bitrate
            self.lower = min(aiortc_min, max_bitrate)
            self.initial = max_bitrate
        # a floor above aiortc's (screen content) holds unless the cap is lower still
        self.lower = min(max(self.lower, floor), self.upper)
        self.initial = max(self.initial, self.lower)
        self.limiter = _FrameRateLimiter(max_framerate)
        self.keyframe_pending = False

    def clamp(self, bitrate: int | float) -> int:
        return int(max(self.lower, min(int(bitrate), self.upper)))

    def gate(
        self, encoder: Vp8VideoEncoder | H264VideoEncoder, frame: Frame, force_keyframe: bool
    ) -> bool | None:
        """None when the frame is to be dropped, else whether to encode it as a keyframe.

        When the timestamps went back, the encoder's codec context is dropped so that a
        new one starts (libvpx refuses timestamps going back).
        """
        if not self.limiter.admit(frame):
            self.keyframe_pending = self.keyframe_pending or force_keyframe
            return None
        if self.limiter.restarted:
            self.limiter.restarted = False
            encoder.codec = None
        keyframe = force_keyframe or self.keyframe_pending
        self.keyframe_pending = False
        return keyframe


def vp8_payload_is_keyframe(payload: bytes) -> bool:
    """Whether a VP8 RTP payload is the first packet of a key frame (RFC 7741, RFC 6386).

    The payload descriptor (1 to 6 bytes) is skipped; the frame tag's first bit is 0 for
    a key frame. Only the packet starting partition 0 (S set, partition index 0) tells.
    """
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # not the start of partition 0
        return False
    at = 1
    if first & 0x80:  # X: an extension byte follows
        ext = payload[at]
        at += 1
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if at >= len(payload):
                return False
            at += 2 if payload[at] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            at += 1
        if ext & 0x30:  # T or K: TID/KEYIDX
            at += 1
    return at < len(payload) and payload[at] & 0x01 == 0


_H264_STAP_A = 24
_H264_FU_A = 28
_H264_KEY_UNITS = (5, 7)  # an IDR slice, or the SPS sent right before one


def h264_payload_is_keyframe(payload: bytes) -> bool:
    """Whether an H.264 RTP payload (RFC 6184) carries an IDR slice or an SPS.

    Single NAL unit packets, STAP-A aggregates (each unit is looked at) and the first
    fragment of an FU-A are read; other packets of a frame tell nothing.
    """
    if not payload:
        return False
    kind = payload[0] & 0x1F
    if kind == _H264_STAP_A:
        at = 1
        while at + 2 < len(payload):
            size = int.from_bytes(payload[at : at + 2], "big")
            if payload[at + 2] & 0x1F in _H264_KEY_UNITS:
                return True
            at += 2 + size
        return False
    if kind == _H264_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in _H264_KEY_UNITS
    return kind in _H264_KEY_UNITS


@dataclasses.dataclass
class EncodeCounts:
    """What one of our video encoders did (the W3C ``RTCOutboundRtpStreamStats`` fields).

    Written in the encoding thread, read on the event loop; each field is one value.
    """

    frames_encoded: int = 0
    """Frames encoded into at least one payload (frames the frame-rate cap dropped and
    frames the encoder produced nothing for are not counted)."""
    key_frames_encoded: int = 0
    """Those of them that are key frames."""
    frame_width: int | None = None
    """Width of the latest encoded frame (None before the first)."""
    frame_height: int | None = None
    """Height of the latest encoded frame (None before the first)."""
    total_encode_time: float = 0.0
    """Seconds spent in the codec (and packetizing) for the frames encoded."""

    def record(
        self,
        payloads: Sequence[bytes],
        width: int,
        height: int,
        seconds: float,
        is_keyframe: Callable[[bytes], bool],
    ) -> None:
        """Count one call of ``encode`` that returned ``payloads``."""
        if not payloads:
            return
        self.frames_encoded += 1
        if any(is_keyframe(p) for p in payloads):
            self.key_frames_encoded += 1
        self.frame_width, self.frame_height = width, height
        self.total_encode_time += seconds


class _CappedEncoder:
    """Bitrate and frame-rate caps shared by our VP8 and H.264 encoders.

    Listed before aiortc's encoder class in the bases. Subclasses name aiortc's
    module (for its MIN/DEFAULT/MAX_BITRATE).
    """

    _aiortc_module: ClassVar[ModuleType]
    implementation: ClassVar[str]
    """The codec library, as W3C ``encoderImplementation`` names it."""
    _payload_is_keyframe: ClassVar[Callable[[bytes], bool]]
    """Whether an RTP payload of this codec starts a key frame (set by each subclass)."""

    def __init__(
        self,
        *,
        max_bitrate: int | None = None,
        max_framerate: float | None = None,
        screencast: bool = False,
    ) -> None:
        """Create the encoder; the codec context is opened with the first frame.

        Args:
            max_bitrate: Upper bound of ``target_bitrate`` in bits/s, also its initial
                value. None keeps aiortc's bounds for the codec.
            max_framerate: Frames per second above which frames are dropped; None for no
                limit.
            screencast: Screen content: ``target_bitrate`` stays at or above
                :data:`SCREENCAST_MIN_BITRATE` (or the cap, if lower).

        Raises:
            ValueError: If a limit is not positive.
        """
        max_bitrate, max_framerate = _check_limits(max_bitrate, max_framerate)
        module = self._aiortc_module
        self.screencast = bool(screencast)
        self._limits = _Limits(
            max_bitrate,
            max_framerate,
            module.MIN_BITRATE,
            module.DEFAULT_BITRATE,
            module.MAX_BITRATE,
            floor=SCREENCAST_MIN_BITRATE if screencast else 0,
        )
        self._bitrate = self._limits.initial
        self.counts = EncodeCounts()
        """What this encoder encoded so far."""
        super().__init__()
        self.target_bitrate = self._limits.initial

    def _counted(
        self, encode: Callable[[], tuple[list[bytes], int]], frame: av.VideoFrame
    ) -> tuple[list[bytes], int]:
        start = time.perf_counter()
        payloads, timestamp = encode()
        self.counts.record(
            payloads,
            frame.width,
            frame.height,
            time.perf_counter() - start,
            type(self)._payload_is_keyframe,
        )
        return payloads, timestamp

    @property
    def max_bitrate(self) -> int | None:
        """The bitrate cap given at construction (None: aiortc's)."""
        return self._limits.max_bitrate

    @property
    def max_framerate(self) -> float | None:
        """The frame-rate cap given at construction (None: no limit)."""
        return self._limits.max_framerate

    @property
    def min_bitrate(self) -> int:
        """The lowest ``target_bitrate`` can go, in bits/s."""
        return self._limits.lower

    @property
    def target_bitrate(self) -> int:
        """The bitrate the encoder aims at, in bits/s, always within its bounds."""
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        value = self._limits.clamp(bitrate)
        self._bitrate = value
        # aiortc's own code reads its private copy (rate control, reopening the codec)
        assert isinstance(self, (Vp8Encoder, H264Encoder))
        set_aiortc_target_bitrate(self, value)


class Vp8VideoEncoder(_CappedEncoder, TransformingVp8Encoder):
    """aiortc's VP8 encoder (libvpx, real-time CBR) capped at a bitrate and a frame rate.

    Without ``max_bitrate``, aiortc's bounds apply (250 kbps to 1.5 Mbps, from 500 kbps).
    The libvpx context is made here, with aiortc's real-time CBR settings (speed
    ``cpu-used`` -6) except for the denoiser: ``noise-sensitivity``
    is :attr:`vpx_noise_sensitivity`, 0 (aiortc runs libvpx's adaptive denoiser, 4, which
    took a third of the encoding time of 720p pictures). With ``screencast``,
    ``screen-content-mode`` is on too, as libwebrtc sets VP8 for screen content.
    """

    _aiortc_module: ClassVar[ModuleType] = aiortc_vpx
    implementation: ClassVar[str] = "libvpx"

    _payload_is_keyframe = vp8_payload_is_keyframe

    vpx_cpu_used: ClassVar[int] = -6
    """libvpx ``cpu-used`` (speed; negative: fixed, not adapted to the deadline)."""
    vpx_noise_sensitivity: ClassVar[int] = 0
    """libvpx ``noise-sensitivity`` (denoiser) for camera pictures: 0, off (aiortc: 4)."""

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode one frame into RTP payloads, or none when the frame is dropped."""
        assert isinstance(frame, av.VideoFrame)
        keyframe = self._limits.gate(self, frame, force_keyframe)
        if keyframe is None:
            return [], _timestamp(frame)
        self._open_codec(frame)
        return self._counted(lambda: super(Vp8VideoEncoder, self).encode(frame, keyframe), frame)

    def _open_codec(self, frame: av.VideoFrame) -> None:
        """Make the libvpx context unless the current one still fits.

        A new context is needed when aiortc would make one (another size, or a target
        bitrate more than 10 % away from the context's), so aiortc keeps this one.
        """
        if _context_fits(self.codec, frame, self.target_bitrate):
            return
        bitrate = self.target_bitrate
        codec = av.CodecContext.create("libvpx", "w")
        codec.width = frame.width
        codec.height = frame.height
        codec.bit_rate = bitrate
        codec.pix_fmt = "yuv420p"
        codec.gop_size = 3000
        codec.qmin = 2
        codec.qmax = 56
        options = {
            "bufsize": str(bitrate),  # a one-second rate-control buffer
            "cpu-used": str(self.vpx_cpu_used),
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(bitrate),  # minrate = maxrate = bitrate: constant bitrate
            "maxrate": str(bitrate),
            "noise-sensitivity": "0" if self.screencast else str(self.vpx_noise_sensitivity),
            "overshoot-pct": "15",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }
        if self.screencast:
            options["screen-content-mode"] = "1"
        codec.options = options
        codec.thread_count = aiortc_vpx.number_of_threads(
            frame.width * frame.height, multiprocessing.cpu_count()
        )
        self.codec = codec


def _context_fits(
    codec: VideoCodecContext | None, frame: av.VideoFrame, target_bitrate: int
) -> bool:
    """Whether an encoder context can encode ``frame`` at ``target_bitrate``.

    aiortc's own rule, kept so that it keeps the contexts made here: the same size, and
    a bitrate within 10 % of the context's.
    """
    if codec is None:
        return False
    current = codec.bit_rate or 1
    return (
        frame.width == codec.width
        and frame.height == codec.height
        and abs(target_bitrate - current) / current <= 0.1
    )


def _h264_level(width: int, height: int, framerate: float) -> str:
    """The lowest level, 3.1 or above, allowing this picture size at this frame rate."""
    macroblocks = ((width + 15) // 16) * ((height + 15) // 16)
    per_second = macroblocks * framerate
    for level, max_frame, max_rate in _H264_LEVELS:
        if macroblocks <= max_frame and per_second <= max_rate:
            return level
    return _H264_LEVELS[-1][0]


class H264VideoEncoder(_CappedEncoder, TransformingH264Encoder):
    """aiortc's H.264 encoder (libx264, baseline, zero latency) with bitrate and frame-rate caps.

    libx264 runs the :attr:`x264_preset` speed preset, ``superfast``: aiortc sets none,
    which leaves x264's ``medium``, about four times the CPU for 720p at 30 fps
    (measured with ``benchmarks/video_quality_probe.py``, at a PSNR 2 to 6 dB lower on
    the video benchmark's pictures, still above 50 dB).

    Unlike aiortc's, the libx264 context counts time in 1/90000 s, the RTP clock: aiortc
    uses 1/30 s, which rounds timestamps of frames closer than 1/30 s together. The level
    follows the picture size (3.1 up to 720p at 30 fps, higher above), and pictures with
    an odd width or height are scaled to the even size below, which libx264 requires.
    Without ``max_bitrate``, aiortc's bounds apply (500 kbps to 3 Mbps, from 1 Mbps).
    """

    _aiortc_module: ClassVar[ModuleType] = aiortc_h264
    implementation: ClassVar[str] = "libx264"

    _payload_is_keyframe = h264_payload_is_keyframe

    x264_preset: ClassVar[str] = "superfast"
    """libx264 speed preset (aiortc sets none: x264's default, "medium")."""

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode one frame into RTP payloads, or none when the frame is dropped."""
        assert isinstance(frame, av.VideoFrame)
        keyframe = self._limits.gate(self, frame, force_keyframe)
        if keyframe is None:
            return [], _timestamp(frame)
        if frame.width % 2 or frame.height % 2:
            frame = frame.reformat(
                width=max(2, frame.width & ~1),
                height=max(2, frame.height & ~1),
                format="yuv420p",
            )
        self._open_codec(frame)
        even = frame
        return self._counted(lambda: super(H264VideoEncoder, self).encode(even, keyframe), even)

    def _open_codec(self, frame: av.VideoFrame) -> None:
        """Create the libx264 context for this frame unless the current one still fits.

        The conditions for a new context are aiortc's own (another size, or a target
        bitrate more than 10 % away), so aiortc then keeps the context made here.
        """
        if _context_fits(self.codec, frame, self.target_bitrate):
            return
        framerate = self._limits.max_framerate or float(aiortc_h264.MAX_FRAME_RATE)
        codec = av.CodecContext.create("libx264", "w")
        codec.width = frame.width
        codec.height = frame.height
        codec.bit_rate = self.target_bitrate
        codec.pix_fmt = "yuv420p"
        codec.framerate = Fraction(framerate).limit_denominator(1001)
        codec.time_base = Fraction(1, VIDEO_CLOCK_RATE)
        codec.options = {
            "level": _h264_level(frame.width, frame.height, framerate),
            "preset": self.x264_preset,
            "tune": "zerolatency",
        }
        codec.profile = "Baseline"
        # The pictures are BT.601 limited range (dsp/video_convert.py): say so in the
        # SPS. Untagged, Chromium decodes H.264 as BT.709 and shifts saturated colours
        # by 20 levels or more (red 230,30,30 showed as 246,50,30).
        codec.colorspace = _BT601
        codec.color_primaries = _BT601
        codec.color_trc = _BT601
        codec.color_range = _LIMITED_RANGE
        self.buffer_data = b""
        self.buffer_pts = None
        self.codec = codec


def make_video_encoder(
    codec: int,
    max_bitrate: int | None,
    max_framerate: float | None,
    *,
    screencast: bool = False,
) -> Encoder:
    """An encoder for ``RTCRtpSender`` sending ``codec``, capped as given.

    Args:
        codec: A ``VideoCodec`` value; VP8 and H264 are available.
        max_bitrate: Maximum bitrate in bits/s (see :func:`default_max_bitrate`), or None
            for aiortc's default bounds.
        max_framerate: Maximum frames per second, or None for no limit.
        screencast: Tune the encoder for screen content (see the module docstring).

    Returns:
        A :class:`Vp8VideoEncoder` or :class:`H264VideoEncoder`.

    Raises:
        ValueError: If the codec has no encoder here (AV1, VP9, H265) or is unknown, or a
            limit is not positive.
    """
    if codec == VideoCodec.VP8:
        return Vp8VideoEncoder(
            max_bitrate=max_bitrate, max_framerate=max_framerate, screencast=screencast
        )
    if codec == VideoCodec.H264:
        return H264VideoEncoder(
            max_bitrate=max_bitrate, max_framerate=max_framerate, screencast=screencast
        )
    try:
        name = VideoCodec.Name(codec)
    except (ValueError, TypeError):
        raise ValueError(
            f"codec must be a VideoCodec value, got {codec!r}; VP8 and H264 can be encoded"
        ) from None
    raise ValueError(
        f"video codec {name} cannot be encoded: aiortc only has VP8 and H264 encoders; "
        "publish with VideoCodec.VP8 or VideoCodec.H264"
    )
