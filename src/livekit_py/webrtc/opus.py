"""The Opus encoder of a published audio track, for aiortc's ``RTCRtpSender``.

:class:`OpusEncoder` encodes with our libopus binding (:mod:`livekit_py.media.libopus`):
48 kHz stereo, 20 ms packets, the ``voip`` application, complexity 10, like aiortc's own
encoder, plus the controls aiortc's does not have, all of which may change while it runs:

* ``bitrate``: the publication's ``audio_encoding.max_bitrate`` (48 kbps by default),
  capped by the ``maxaveragebitrate`` the remote answer may ask for;
* ``fec``: in-band FEC (LBRR), on when the answer's Opus fmtp says ``useinbandfec=1``;
* ``packet_loss_percent``: the loss the encoder protects against (FEC is only sent above
  0 %), adapted from the receiver reports (:mod:`.audio_feedback`);
* ``dtx``: discontinuous transmission, ``TrackPublishOptions.dtx`` at first (on unless
  set false, as in the official SDK), then what the answer's ``usedtx`` says (LiveKit
  says ``usedtx=1`` unless the track was announced with ``disable_dtx``). libopus then
  codes silence as 1-2 byte packets, with a normal packet every 400 ms or so that
  refreshes the receiver's comfort noise. As libwebrtc does, the first 1-2 byte packet
  after sound is sent (it tells the receiver's decoder that the sender entered DTX) and
  the ones after it are not; RTP timestamps keep counting the skipped 20 ms, so the
  receiver sees the gap for what it is.

Both encoders hand each packet they send to their ``frame_transform`` when one is set
(:mod:`.frame_transform`; end-to-end encryption sets one): after the DTX decision, which
reads the packet's size, and before aiortc puts it in an RTP packet.

When libopus cannot be loaded, :func:`make_opus_encoder` gives :class:`PyAVOpusEncoder`
instead (aiortc's PyAV encoder at the chosen bitrate, no FEC, no DTX), and says so once
at INFO.
"""

from __future__ import annotations

import fractions
import threading

import numpy as np
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import OpusEncoder as _AiortcOpusEncoder
from aiortc.mediastreams import convert_timebase
from av import AudioFrame, AudioResampler
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream

from ..log import get_logger
from ..media import libopus
from .frame_transform import FrameTransform, transform_payloads

__all__ = [
    "DEFAULT_AUDIO_BITRATE",
    "DTX_PACKET_MAX_BYTES",
    "MAX_AUDIO_BITRATE",
    "MIN_AUDIO_BITRATE",
    "OPUS_CHANNELS",
    "OPUS_COMPLEXITY",
    "OPUS_FRAME_SAMPLES",
    "OPUS_SAMPLE_RATE",
    "OpusEncoder",
    "PyAVOpusEncoder",
    "make_opus_encoder",
]

logger = get_logger("webrtc.opus")

DEFAULT_AUDIO_BITRATE = 48_000
MIN_AUDIO_BITRATE = 6_000
MAX_AUDIO_BITRATE = 510_000
OPUS_SAMPLE_RATE = 48_000
"""The RTP clock rate of Opus, and the rate we encode at."""
OPUS_CHANNELS = 2
"""Channels encoded (a mono source is sent as two equal channels, as aiortc does)."""
OPUS_FRAME_SAMPLES = 960
"""20 ms at 48 kHz: one packet."""
OPUS_COMPLEXITY = 10
"""libopus' best quality, what PyAV/ffmpeg's libopus encoder (aiortc's) uses by default."""
DTX_PACKET_MAX_BYTES = 2
"""A packet this small is a DTX one (a TOC byte, no audio), as libwebrtc counts them."""

_TIME_BASE = fractions.Fraction(1, OPUS_SAMPLE_RATE)


def _clamp_bitrate(bitrate: int) -> int:
    return max(MIN_AUDIO_BITRATE, min(MAX_AUDIO_BITRATE, int(bitrate)))


def _check_loss(percent: int) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"packet_loss_percent must be an int in 0..100, not {percent!r}")
    return percent


class OpusEncoder(Encoder):
    """Opus on libopus for aiortc's sender: 48 kHz stereo, 20 ms, FEC and DTX controls.

    Args:
        bitrate: Target bits/s, clamped to 6..510 kbps.
        fec: In-band FEC (sent only while ``packet_loss_percent`` is above 0).
        dtx: Discontinuous transmission (see the module docstring).
        packet_loss_percent: The loss to protect against, 0..100.

    Raises:
        RuntimeError: If libopus is not available (see :func:`make_opus_encoder`).
        ValueError: For a loss percentage out of range.
    """

    def __init__(
        self,
        bitrate: int = DEFAULT_AUDIO_BITRATE,
        *,
        fec: bool = False,
        dtx: bool = False,
        packet_loss_percent: int = 0,
    ) -> None:
        self._codec = libopus.OpusEncoder(OPUS_SAMPLE_RATE, OPUS_CHANNELS, libopus.APPLICATION_VOIP)
        self._codec.complexity = OPUS_COMPLEXITY
        self._lock = threading.Lock()  # our own state, read by the encoding thread
        self._bitrate = _clamp_bitrate(bitrate)
        self._bitrate_cap: int | None = None
        self._codec.bitrate = self._bitrate
        self.fec = fec
        self.dtx = dtx
        self.packet_loss_percent = packet_loss_percent
        # aiortc's own encoder resamples the same way, to 20 ms of 48 kHz stereo s16
        self._resampler = AudioResampler(
            format="s16", layout="stereo", rate=OPUS_SAMPLE_RATE, frame_size=OPUS_FRAME_SAMPLES
        )
        self._timestamp = 0  # 48 kHz samples encoded so far: the next packet's RTP offset
        self._in_dtx = False  # the last packet sent was a DTX one
        self.packets_encoded = 0
        """Packets libopus produced (sent or not)."""
        self.dtx_packets_skipped = 0
        """DTX packets not handed to the sender (each one 20 ms of silence)."""
        self.frame_transform: FrameTransform | None = None
        """Applied to each packet sent (see :data:`~.frame_transform.FrameTransform`)."""

    # -- controls ----------------------------------------------------------------------

    @property
    def bitrate(self) -> int:
        """The target bitrate in bits/s (after the cap of :meth:`cap_bitrate`)."""
        with self._lock:
            cap = self._bitrate_cap
            return self._bitrate if cap is None else min(self._bitrate, cap)

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        with self._lock:
            self._bitrate = _clamp_bitrate(value)
        self._codec.bitrate = self.bitrate

    def cap_bitrate(self, cap: int | None) -> None:
        """Never exceed ``cap`` bits/s (the remote ``maxaveragebitrate``); None: no cap."""
        with self._lock:
            self._bitrate_cap = None if cap is None else _clamp_bitrate(cap)
        self._codec.bitrate = self.bitrate

    @property
    def fec(self) -> bool:
        """Whether in-band FEC is on (libopus sends it while the expected loss is above 0)."""
        return self._codec.inband_fec != 0

    @fec.setter
    def fec(self, value: bool) -> None:
        self._codec.inband_fec = 1 if value else 0

    @property
    def dtx(self) -> bool:
        """Whether silence is sent discontinuously."""
        return self._codec.dtx

    @dtx.setter
    def dtx(self, value: bool) -> None:
        self._codec.dtx = bool(value)

    @property
    def packet_loss_percent(self) -> int:
        """The packet loss the encoder expects, in percent (0..100)."""
        return self._codec.packet_loss_percent

    @packet_loss_percent.setter
    def packet_loss_percent(self, value: int) -> None:
        self._codec.packet_loss_percent = _check_loss(value)

    @property
    def codec(self) -> libopus.OpusEncoder:
        """The libopus encoder underneath (for its other controls)."""
        return self._codec

    # -- aiortc's Encoder --------------------------------------------------------------

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode ``frame`` (any rate and layout; resampled) into whole 20 ms packets.

        Returns:
            The packets to send and the RTP timestamp offset of the first one: 960 per
            packet produced since the first, as aiortc's encoder counts. Skipped DTX
            packets count too. No packets (and the next offset) while the resampler
            still buffers, or when every packet was a skipped DTX one.

        Raises:
            ValueError: If ``frame`` is not an audio frame.
        """
        if not isinstance(frame, AudioFrame):
            raise ValueError(f"the Opus encoder encodes audio frames, not {type(frame).__name__}")
        payloads: list[bytes] = []
        first: int | None = None
        for chunk in self._resampler.resample(frame):
            # packed s16 stereo, L R L R ...: the layout libopus takes
            samples = np.asarray(chunk.to_ndarray(), dtype=np.int16).reshape(-1)
            packet = self._codec.encode(samples, OPUS_FRAME_SAMPLES)
            timestamp = self._timestamp
            self._timestamp += OPUS_FRAME_SAMPLES
            self.packets_encoded += 1
            if len(packet) <= DTX_PACKET_MAX_BYTES:
                if self._in_dtx:
                    self.dtx_packets_skipped += 1
                    continue
                self._in_dtx = True
            else:
                self._in_dtx = False
            transform = self.frame_transform
            if transform is not None:
                transformed = transform(packet, timestamp)
                if transformed is None:
                    continue
                packet = transformed
            if first is None:
                first = timestamp
            payloads.append(packet)
        return payloads, self._timestamp if first is None else first

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        """An already encoded Opus packet, as it is, at its own timestamp."""
        if packet.pts is None or packet.time_base is None:
            raise ValueError("a pre-encoded Opus packet needs a pts and a time base")
        timestamp = convert_timebase(packet.pts, packet.time_base, _TIME_BASE)
        return transform_payloads(self.frame_transform, [bytes(packet)], timestamp), timestamp


class PyAVOpusEncoder(_AiortcOpusEncoder):
    """aiortc's Opus encoder (PyAV's libopus: 48 kHz, 20 ms, voip) at a chosen bitrate.

    The fallback when our libopus binding is unavailable: no FEC, no DTX, no loss
    adaptation.
    """

    def __init__(self, bitrate: int = DEFAULT_AUDIO_BITRATE) -> None:
        super().__init__()
        self.codec.bit_rate = _clamp_bitrate(bitrate)
        self.frame_transform: FrameTransform | None = None
        """Applied to each packet sent (see :data:`~.frame_transform.FrameTransform`)."""

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """aiortc's encoding, each packet through ``frame_transform``."""
        payloads, timestamp = super().encode(frame, force_keyframe)
        return transform_payloads(self.frame_transform, payloads, timestamp), timestamp

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        """An already encoded Opus packet, through ``frame_transform``."""
        payloads, timestamp = super().pack(packet)
        return transform_payloads(self.frame_transform, payloads, timestamp), timestamp

    @property
    def bitrate(self) -> int:
        return int(self.codec.bit_rate or 0)


_fallback_logged = False


def make_opus_encoder(
    bitrate: int = DEFAULT_AUDIO_BITRATE,
    *,
    fec: bool = False,
    dtx: bool = False,
    packet_loss_percent: int = 0,
) -> OpusEncoder | PyAVOpusEncoder:
    """Our :class:`OpusEncoder`, or :class:`PyAVOpusEncoder` when libopus is unavailable.

    Raises:
        ValueError: For a loss percentage out of range.
    """
    _check_loss(packet_loss_percent)
    if libopus.available:
        return OpusEncoder(bitrate, fec=fec, dtx=dtx, packet_loss_percent=packet_loss_percent)
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        logger.info(
            "audio is encoded with PyAV's Opus encoder, without FEC and DTX: %s",
            libopus.reason,
        )
    return PyAVOpusEncoder(bitrate)
