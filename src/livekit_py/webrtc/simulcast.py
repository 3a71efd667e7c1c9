"""Simulcast on aiortc: one encoder and one RTP stream per layer, as LiveKit expects.

aiortc's ``RTCRtpSender`` has one SSRC and one encoder, and its SDP knows nothing of
``a=rid``/``a=simulcast``. A simulcast publication keeps aiortc's transceiver for
negotiation and installs a :class:`SimulcastEncoder` on its sender: aiortc still
reads the track and calls ``encode`` (in its executor), but the frame is encoded once
per layer (scaled down, each layer with its own VP8/H.264 encoder from
:mod:`.video_codecs`) and the payloads are sent on the layers' own SSRCs, not by
aiortc's sender (``encode`` returns no payload to it). Every packet carries the MID
and RID header extensions: the LiveKit server binds each SSRC to its rid from them.

* :func:`simulcast_layers` computes the layers the way LiveKit's Rust SDK does
  (``compute_video_encodings``): a picture whose longer side is at least 960 gets
  q/h/f (320x180 at 160 kbps and 15 fps, 640x360 at 450 kbps and 20 fps for 16:9, and
  the full size), at least 480 gets q/h (the 640x360 preset and the full size),
  anything smaller one layer. A screen share of at least 480 gets q/h: half the size at
  3 fps, and the full size.
* :func:`offer_simulcast` edits the offer sent to the server (aiortc keeps its own,
  unedited description): the video section gains the rid extmap, one ``a=rid:<rid>
  send`` per layer and ``a=simulcast:send``, and loses its ``a=ssrc`` lines.
* :func:`answered_stream` reads the payload type and header extension ids the
  server's answer gives the section.
* Each layer's SSRC is registered with the DTLS transport's RTP router
  (:func:`~.aiortc_adapter.register_rtp_stream`), so it gets its own receiver
  reports, PLI/FIR (answered with a key frame of that layer) and NACK (answered
  from a short history). Sender Reports for all layers map NTP to RTP time from one
  shared capture clock: the server aligns layers by them when it switches a
  subscriber from one layer to another.
* Dynacast: :meth:`SimulcastEncoder.set_active_qualities` pauses the encoders of
  layers nobody receives and resumes them with a key frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import av
from aiortc.codecs.base import Encoder
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)
from aiortc.sdp import SessionDescription
from av.frame import Frame

from ..log import get_logger
from ..types import VideoCodec
from .aiortc_adapter import register_rtp_stream, send_rtp_bytes, unregister_rtp_stream
from .video_codecs import VIDEO_CLOCK_RATE, make_video_encoder

__all__ = [
    "MID_URI",
    "RID_URI",
    "SimulcastEncoder",
    "SimulcastLayer",
    "answered_stream",
    "offer_simulcast",
    "simulcast_layers",
]

logger = get_logger("webrtc.simulcast")

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

# the protocol's VideoQuality values (livekit_models.proto)
QUALITY_LOW, QUALITY_MEDIUM, QUALITY_HIGH = 0, 1, 2
_RIDS = ("q", "h", "f")
_RID_QUALITY = {"q": QUALITY_LOW, "h": QUALITY_MEDIUM, "f": QUALITY_HIGH}

# LiveKit's default lower simulcast layers (width, height, bitrate, fps), by aspect ratio
_LOWER_16_9 = ((320, 180, 160_000, 15.0), (640, 360, 450_000, 20.0))
_LOWER_4_3 = ((240, 180, 100_000, 15.0), (480, 360, 225_000, 20.0))
# a screen share's one lower layer: the picture scaled down by 2 at 3 fps, at least 150 kbps
_SCREEN_SCALE, _SCREEN_FPS, _SCREEN_MIN_BITRATE = 2, 3.0, 150_000

# RTP packets kept per layer for NACK (a power of two, as sequence numbers wrap at 2**16)
_HISTORY = 512
# NTP time of the Unix epoch
_NTP_OFFSET = 2_208_988_800
# Sender Reports go every SR_INTERVAL, varied by half of it either way (RFC 3550)
SR_INTERVAL = 1.0


@dataclass(frozen=True)
class SimulcastLayer:
    """One layer of a simulcast publication.

    Attributes:
        rid: Its RTP stream id: ``q``, ``h`` or ``f``.
        quality: Its ``VideoQuality`` (LOW for q, MEDIUM for h, HIGH for f).
        width: The encoded picture width.
        height: The encoded picture height.
        max_bitrate: The encoder's bitrate cap, in bits/s.
        max_framerate: Frames per second above which frames are dropped; None for no cap.
    """

    rid: str
    quality: int
    width: int
    height: int
    max_bitrate: int
    max_framerate: float | None


def simulcast_layers(
    width: int,
    height: int,
    max_bitrate: int,
    max_framerate: float | None,
    *,
    screenshare: bool = False,
) -> tuple[SimulcastLayer, ...]:
    """The layers LiveKit's SDKs send for a ``width`` x ``height`` picture, lowest first.

    The top layer is the full picture at ``max_bitrate`` / ``max_framerate``; the lower
    ones are LiveKit's default presets (see the module docstring), scaled by
    ``min(width, height)`` over the preset's shorter side (never up). A picture too
    small for simulcast gives one layer, ``f`` (HIGH): publish it without simulcast.
    A ``screenshare`` has one lower layer, as in the Rust SDK: half the size at 3 fps,
    at ``max_bitrate / (4 * (fps // 3))`` but at least 150 kbps (fps: ``max_framerate``,
    30 when None).

    Raises:
        ValueError: If a dimension or the bitrate is not positive.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"the picture size must be positive, got {width}x{height}")
    if max_bitrate <= 0:
        raise ValueError(f"max_bitrate must be positive, got {max_bitrate}")
    long_side, short_side = max(width, height), min(width, height)
    ratio = long_side / short_side
    lower: tuple[tuple[int, int, int, float], ...]
    if screenshare:
        fps = max_framerate or 30.0
        divisor = _SCREEN_SCALE**2 * max(1, int(fps / _SCREEN_FPS))
        bitrate = max(_SCREEN_MIN_BITRATE, max_bitrate // divisor)
        lower = ((width // _SCREEN_SCALE, height // _SCREEN_SCALE, bitrate, _SCREEN_FPS),)
    else:
        lower = _LOWER_16_9 if abs(ratio - 16 / 9) < abs(ratio - 4 / 3) else _LOWER_4_3
    if long_side >= 960 and len(lower) == 2:
        presets = list(lower)
    elif long_side >= 480:
        presets = [lower[-1]]
    else:
        presets = []
    layers: list[SimulcastLayer] = []
    for rid, (p_width, p_height, bitrate, fps) in zip(_RIDS, presets, strict=False):
        scale = max(1.0, short_side / min(p_width, p_height))
        layers.append(
            SimulcastLayer(
                rid=rid,
                quality=_RID_QUALITY[rid],
                width=int(width / scale),
                height=int(height / scale),
                max_bitrate=bitrate,
                max_framerate=fps,
            )
        )
    if not layers:
        return (SimulcastLayer("f", QUALITY_HIGH, width, height, max_bitrate, max_framerate),)
    top = _RIDS[len(layers)]
    layers.append(SimulcastLayer(top, _RID_QUALITY[top], width, height, max_bitrate, max_framerate))
    return tuple(layers)


# -- the SDP ----------------------------------------------------------------------------


def _sections(sdp: str) -> tuple[list[list[str]], str]:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    sections: list[list[str]] = [[]]
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections, newline


def _section_mid(lines: Sequence[str]) -> str | None:
    for line in lines:
        if line.startswith("a=mid:"):
            return line[len("a=mid:") :].strip()
    return None


def offer_simulcast(sdp: str, rids_by_mid: Mapping[str, Sequence[str]]) -> str:
    """``sdp`` (our offer) with each listed video section announcing simulcast.

    A section whose mid is in ``rids_by_mid`` (and that has more than one rid) gains
    the MID and RID extmaps (ids not used elsewhere in the offer; BUNDLE shares one
    id space), ``a=rid:<rid> send`` per rid and ``a=simulcast:send <rids>``, and
    loses its ``a=ssrc``/``a=ssrc-group`` lines: its streams are told apart by rid.
    Other sections are left as they are.

    Raises:
        ValueError: If a rid is not one of q, h, f, or no extmap id is free.
    """
    for rids in rids_by_mid.values():
        bad = [r for r in rids if r not in _RIDS]
        if bad:
            raise ValueError(f"simulcast rids must be q, h or f, got {bad}")
    if not any(len(r) > 1 for r in rids_by_mid.values()):
        return sdp
    sections, newline = _sections(sdp)
    ids: dict[str, int] = {}
    used: set[int] = set()
    for section in sections:
        for line in section:
            if line.startswith("a=extmap:"):
                head, _, uri = line[len("a=extmap:") :].partition(" ")
                ext_id = int(head.split("/")[0])
                used.add(ext_id)
                ids.setdefault(uri.strip(), ext_id)
    for uri in (MID_URI, RID_URI):
        if uri not in ids:
            free = next((i for i in range(1, 15) if i not in used), None)
            if free is None:
                raise ValueError("no RTP header extension id is free for simulcast")
            ids[uri] = free
            used.add(free)
    out: list[str] = list(sections[0])
    for section in sections[1:]:
        mid = _section_mid(section)
        rids = rids_by_mid.get(mid or "", ())
        if not section[0].startswith("m=video") or len(rids) < 2:
            out += section
            continue
        kept = [x for x in section if not x.startswith(("a=ssrc:", "a=ssrc-group:"))]
        present = {
            x[len("a=extmap:") :].partition(" ")[2].strip()
            for x in kept
            if x.startswith("a=extmap:")
        }
        extra = [f"a=extmap:{ids[uri]} {uri}" for uri in (MID_URI, RID_URI) if uri not in present]
        last_extmap = max((i for i, x in enumerate(kept) if x.startswith("a=extmap:")), default=0)
        kept[last_extmap + 1 : last_extmap + 1] = extra
        kept += [f"a=rid:{rid} send" for rid in rids]
        kept.append("a=simulcast:send " + ";".join(rids))
        out += kept
    return newline.join(out) + newline


@dataclass(frozen=True)
class AnsweredStream:
    """What the server's answer says about one of our video sections."""

    payload_type: int
    extension_ids: Mapping[str, int]
    """Header extension id by URI."""


def answered_stream(sdp: str, mid: str, mime_type: str) -> AnsweredStream | None:
    """The payload type of ``mime_type`` and the extension ids in the section ``mid`` of ``sdp``.

    None when the answer has no such section or codec.

    Raises:
        ValueError: If ``sdp`` does not parse.
    """
    try:
        description = SessionDescription.parse(sdp)
    except Exception as e:  # aiortc's parser raises all sorts on bad SDP
        raise ValueError(f"the SDP cannot be parsed: {e}") from e
    for media in description.media:
        if media.rtp.muxId != mid:
            continue
        codec = next((c for c in media.rtp.codecs if c.mimeType.lower() == mime_type.lower()), None)
        if codec is None or codec.payloadType is None:
            return None
        ext = {h.uri: h.id for h in media.rtp.headerExtensions}
        return AnsweredStream(codec.payloadType, ext)
    return None


# -- the layers' streams ---------------------------------------------------------------


class _SharedClock:
    """One NTP <-> RTP mapping for all layers: the wall time of the newest frame's capture.

    Each layer's RTP time is its own random origin plus the frame's 90 kHz time, so the
    Sender Reports of all layers, made from this one anchor, agree on which RTP time of
    each layer was captured when.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._anchor: tuple[float, int] | None = None  # (wall time, 90 kHz frame time)
        self._lock = threading.Lock()

    def note(self, media_time: int) -> None:
        with self._lock:
            self._anchor = (self._now(), media_time)

    def media_time_now(self) -> tuple[float, int] | None:
        """(wall time now, the frame time then) or None before the first frame."""
        with self._lock:
            anchor = self._anchor
        if anchor is None:
            return None
        now = self._now()
        return now, anchor[1] + round((now - anchor[0]) * VIDEO_CLOCK_RATE)


class LayerStream:
    """One layer: its encoder, SSRC, sequence numbers and what it sent."""

    def __init__(self, layer: SimulcastLayer, encoder: Encoder) -> None:
        self.layer = layer
        self.encoder = encoder
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(15)
        self.origin = secrets.randbits(32)
        self.active = True
        self.keyframe_requested = False
        self.frames_encoded = 0
        self.keyframes_requested = 0
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_rtp_timestamp: int | None = None
        self.history: dict[int, bytes] = {}

    @property
    def rid(self) -> str:
        return self.layer.rid

    def take_keyframe(self) -> bool:
        wanted = self.keyframe_requested
        self.keyframe_requested = False
        return wanted


_Batch = list[tuple[LayerStream, list[bytes], int]]


def _frame_time(frame: Frame) -> int:
    if frame.pts is None or frame.time_base is None:
        return 0
    return int(frame.pts * frame.time_base * VIDEO_CLOCK_RATE)


class SimulcastEncoder(Encoder):
    """Installed on aiortc's sender: encodes each frame once per layer and sends the layers.

    Until :meth:`start` (the answer is applied) frames are dropped. ``encode`` never
    returns payloads to aiortc's sender: the layers' packets go out from here.
    """

    def __init__(
        self,
        codec: int,
        layers: Sequence[SimulcastLayer],
        *,
        now: Callable[[], float] = time.time,
        screencast: bool = False,
    ) -> None:
        """Create one encoder per layer.

        Args:
            codec: A ``VideoCodec`` value, VP8 or H264.
            layers: The layers, lowest first (:func:`simulcast_layers`).
            now: Wall time in seconds (the NTP time of Sender Reports).
            screencast: Screen content: every layer's encoder is tuned for it
                (:func:`~.video_codecs.make_video_encoder`).

        Raises:
            ValueError: If there are no layers, or the codec cannot be encoded.
        """
        if not layers:
            raise ValueError("a simulcast encoder needs at least one layer")
        self.codec = int(codec)
        self.mime_type = "video/VP8" if codec == VideoCodec.VP8 else "video/H264"
        self.layers = tuple(
            LayerStream(
                layer,
                make_video_encoder(
                    codec, layer.max_bitrate, layer.max_framerate, screencast=screencast
                ),
            )
            for layer in layers
        )
        self._clock = _SharedClock(now)
        self._now = now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Batch] | None = None
        self._transport: RTCDtlsTransport | None = None
        self._payload_type = 0
        self._mid = ""
        self._extensions = HeaderExtensionsMap()
        self._tasks: list[asyncio.Task[None]] = []
        self._cname = secrets.token_hex(8)
        self._started = False

    # -- control, on the event loop ---------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def start(self, transport: RTCDtlsTransport, mid: str, answered: AnsweredStream) -> None:
        """Send the layers on ``transport`` as the answer's section ``mid`` says.

        Calling it again (a renegotiation) only follows a changed payload type or ids.
        """
        params = RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri)
                for uri, ext_id in answered.extension_ids.items()
                if uri in (MID_URI, RID_URI, ABS_SEND_TIME_URI)
            ]
        )
        self._extensions.configure(params)
        self._payload_type = answered.payload_type
        self._mid = mid
        if RID_URI not in answered.extension_ids:
            logger.warning(
                "the answer has no rid header extension: the server cannot tell layers apart"
            )
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._transport = transport
        for stream in self.layers:
            register_rtp_stream(transport, stream.ssrc, self._rtcp_handler(stream))
        self._tasks = [
            self._loop.create_task(self._send_loop(), name="livekit_py.simulcast.rtp"),
            self._loop.create_task(self._report_loop(), name="livekit_py.simulcast.rtcp"),
        ]
        self._started = True
        logger.debug(
            "simulcast on mid %s: %s",
            mid,
            ", ".join(
                f"{s.rid} {s.layer.width}x{s.layer.height} ssrc {s.ssrc}" for s in self.layers
            ),
        )

    async def stop(self) -> None:
        """Stop sending (a BYE for every layer) and unregister the layers."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        transport = self._transport
        if transport is not None:
            for stream in self.layers:
                unregister_rtp_stream(transport, stream.ssrc)
            with contextlib.suppress(ConnectionError):
                bye = RtcpByePacket(sources=[s.ssrc for s in self.layers])
                await send_rtp_bytes(transport, bytes(bye))

    def set_active_qualities(self, active: Iterable[int]) -> None:
        """Encode only the layers of these ``VideoQuality`` values (dynacast).

        A layer that resumes starts with a key frame.
        """
        wanted = set(active)
        for stream in self.layers:
            on = stream.layer.quality in wanted
            if on and not stream.active:
                stream.keyframe_requested = True
                logger.debug("simulcast layer %s resumed", stream.rid)
            elif not on and stream.active:
                logger.debug("simulcast layer %s paused", stream.rid)
            stream.active = on

    def request_keyframe(self) -> None:
        """Make the next encoded frame of every layer a key frame."""
        for stream in self.layers:
            stream.keyframe_requested = True

    # -- aiortc's Encoder, in aiortc's executor --------------------------------------------

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode ``frame`` for each active layer and queue the packets; return none to aiortc."""
        media_time = _frame_time(frame)
        loop, queue = self._loop, self._queue
        if not self._started or loop is None or queue is None:
            return [], media_time
        assert isinstance(frame, av.VideoFrame)
        self._clock.note(media_time)
        batch: _Batch = []
        scaled: dict[tuple[int, int], av.VideoFrame] = {}
        for stream in self.layers:
            if not stream.active:
                continue
            size = (stream.layer.width, stream.layer.height)
            picture = frame
            if size != (frame.width, frame.height):
                picture = scaled.get(size) or frame.reformat(width=size[0], height=size[1])
                picture.pts, picture.time_base = frame.pts, frame.time_base
                scaled[size] = picture
            keyframe = stream.take_keyframe() or force_keyframe
            payloads, timestamp = stream.encoder.encode(picture, keyframe)
            if payloads:
                stream.frames_encoded += 1
                batch.append((stream, payloads, timestamp))
            elif keyframe:
                stream.keyframe_requested = True  # dropped by the frame-rate cap: next one
        if batch:
            loop.call_soon_threadsafe(queue.put_nowait, batch)
        return [], media_time

    def pack(self, packet: object) -> tuple[list[bytes], int]:
        """Pre-encoded packets cannot be simulcast."""
        raise ValueError("a simulcast publication cannot send pre-encoded packets")

    # -- sending, on the event loop -------------------------------------------------------

    async def _send_loop(self) -> None:
        assert self._queue is not None and self._transport is not None
        transport = self._transport
        while True:
            batch = await self._queue.get()
            for stream, payloads, timestamp in batch:
                rtp_time = (stream.origin + timestamp) & 0xFFFFFFFF
                for i, payload in enumerate(payloads):
                    packet = RtpPacket(
                        payload_type=self._payload_type,
                        marker=1 if i == len(payloads) - 1 else 0,
                        sequence_number=stream.sequence,
                        timestamp=rtp_time,
                        ssrc=stream.ssrc,
                        payload=payload,
                    )
                    packet.extensions.mid = self._mid
                    packet.extensions.rtp_stream_id = stream.rid
                    packet.extensions.abs_send_time = (self._ntp_now() >> 14) & 0x00FFFFFF
                    data = packet.serialize(self._extensions)
                    stream.history[stream.sequence % _HISTORY] = data
                    stream.sequence = (stream.sequence + 1) & 0xFFFF
                    try:
                        await send_rtp_bytes(transport, data)
                    except ConnectionError:
                        continue
                    stream.packets_sent += 1
                    stream.octets_sent += len(payload)
                stream.last_rtp_timestamp = rtp_time

    def _ntp_now(self, now: float | None = None) -> int:
        when = self._now() if now is None else now
        return int((when + _NTP_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF

    def sender_reports(self) -> list[bytes]:
        """One SR + SDES compound packet per layer that has sent, from the shared clock."""
        mapped = self._clock.media_time_now()
        if mapped is None:
            return []
        now, media_time = mapped
        ntp = self._ntp_now(now)
        out: list[bytes] = []
        for stream in self.layers:
            if stream.last_rtp_timestamp is None:
                continue
            report = RtcpSrPacket(
                ssrc=stream.ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp,
                    rtp_timestamp=(stream.origin + media_time) & 0xFFFFFFFF,
                    packet_count=stream.packets_sent & 0xFFFFFFFF,
                    octet_count=stream.octets_sent & 0xFFFFFFFF,
                ),
            )
            sdes = RtcpSdesPacket(
                chunks=[RtcpSourceInfo(ssrc=stream.ssrc, items=[(1, self._cname.encode())])]
            )
            out.append(bytes(report) + bytes(sdes))
        return out

    async def _report_loop(self) -> None:
        assert self._transport is not None
        transport = self._transport
        while True:
            await asyncio.sleep(SR_INTERVAL * (0.5 + random.random()))
            for data in self.sender_reports():
                with contextlib.suppress(ConnectionError):
                    await send_rtp_bytes(transport, data)

    def _rtcp_handler(self, stream: LayerStream) -> Callable[[AnyRtcpPacket], Awaitable[None]]:
        async def handle(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                stream.keyframe_requested = True
                stream.keyframes_requested += 1
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                transport = self._transport
                for sequence in packet.lost:
                    data = stream.history.get(sequence % _HISTORY)
                    if transport is None or data is None:
                        continue
                    if int.from_bytes(data[2:4], "big") != sequence:
                        continue
                    with contextlib.suppress(ConnectionError):
                        await send_rtp_bytes(transport, data)

        return handle
