"""The encoder of a publication, chosen in one place for audio and video.

A local track turns its ``TrackPublishOptions`` into an :data:`EncoderConfig`
(:func:`audio_encoder_config`, :func:`video_encoder_config`); the engine gives
that config to :func:`configure_sender` for the publisher's new m-line, which
offers only the chosen codec and installs our encoder for it on aiortc's sender:

* audio: Opus (:class:`~.opus.OpusEncoder`, on libopus) at ``audio_encoding.max_bitrate``
  (48 kbps by default), with DTX unless ``dtx`` is false (as in the official SDK).
  Our offers ask for FEC (:func:`offer_opus_fec`); once the server's answer is
  applied, :func:`apply_answer` sets in-band FEC and DTX as its Opus fmtp says
  (``useinbandfec``, ``usedtx``) and caps the bitrate at its ``maxaveragebitrate``;
  :func:`loss_feedback_for` gives the task that adapts the encoder's expected loss
  to the server's receiver reports;
* video: VP8 (default) or H.264 (:func:`~.video_codecs.make_video_encoder`)
  capped at ``video_encoding.max_bitrate`` (LiveKit's preset for the picture
  size by default) and ``video_encoding.max_framerate`` (no cap by default).
  Simulcast is on unless ``simulcast=False`` or a ``scalability_mode`` is given (the
  official SDK's default): with a picture large enough (:func:`~.simulcast.simulcast_layers`)
  the config lists the layers and the sender gets a :class:`~.simulcast.SimulcastEncoder`
  (one encoder and one RTP stream per layer); the offer then announces the layers
  (:func:`~.simulcast.offer_simulcast`). A screen share (``source=SOURCE_SCREENSHARE``)
  takes LiveKit's screen-share presets and one lower layer (half the size at 3 fps), as
  the Rust SDK's ``compute_video_encodings``; a screencast source
  (``VideoSource(is_screencast=True)``) gets encoders tuned for screen content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.sdp import SessionDescription

from .._proto.livekit_py_types_pb2 import DegradationPreference as _Degradation
from ..log import get_logger
from ..types import TrackPublishOptions, TrackSource, VideoCodec
from .aiortc_adapter import install_encoder, installed_encoder
from .audio_feedback import LossFeedback
from .frame_transform import FrameTransform
from .opus import DEFAULT_AUDIO_BITRATE, OpusEncoder, PyAVOpusEncoder, make_opus_encoder
from .simulcast import SimulcastEncoder, SimulcastLayer, simulcast_layers
from .video_codecs import (
    H264VideoEncoder,
    Vp8VideoEncoder,
    default_max_bitrate,
    make_video_encoder,
    screenshare_encoding,
)

logger = get_logger("webrtc.encoders")

__all__ = [
    "SCALABILITY_MODES",
    "AudioEncoderConfig",
    "EncoderConfig",
    "VideoEncoderConfig",
    "apply_answer",
    "audio_encoder_config",
    "configure_sender",
    "encoder_for",
    "sent_codec",
    "set_frame_transform",
    "loss_feedback_for",
    "offer_opus_fec",
    "opus_fmtp_by_mid",
    "degradation_preference",
    "video_codec",
    "video_encoder_config",
    "wants_simulcast",
]


@dataclass(frozen=True)
class AudioEncoderConfig:
    """How a published audio track is encoded.

    Attributes:
        bitrate: The Opus target bitrate, in bits/s.
        dtx: Whether silence is sent discontinuously (Opus DTX).
    """

    bitrate: int = DEFAULT_AUDIO_BITRATE
    dtx: bool = True
    kind: ClassVar[Literal["audio"]] = "audio"


@dataclass(frozen=True)
class VideoEncoderConfig:
    """How a published video track is encoded.

    Attributes:
        codec: A ``VideoCodec`` value, VP8 or H264.
        max_bitrate: The encoder's bitrate cap and starting point, in bits/s.
        max_framerate: Frames per second above which frames are dropped; None for no cap.
        layers: The simulcast layers, lowest first; empty for one stream (no simulcast).
        screencast: Whether the pictures are screen content (``VideoSource(is_screencast=
            True)``): the encoders keep at least 1.2 Mbps (or their cap, if lower) and VP8
            runs libvpx's screen-content mode without denoising.
        degradation_preference: The ``DegradationPreference`` value in effect (the
            option, else the Rust SDK's default for the track's source). It changes
            nothing in the encoders (see :func:`degradation_preference`).
    """

    codec: int
    max_bitrate: int
    max_framerate: float | None = None
    layers: tuple[SimulcastLayer, ...] = ()
    screencast: bool = False
    degradation_preference: int = _Degradation.DEGRADATION_PREFERENCE_BALANCED
    kind: ClassVar[Literal["video"]] = "video"


EncoderConfig = AudioEncoderConfig | VideoEncoderConfig
"""The encoder settings of one publication."""


def audio_encoder_config(options: TrackPublishOptions) -> AudioEncoderConfig:
    """The Opus settings ``options`` ask for.

    ``audio_encoding.max_bitrate`` (else 48 kbps) and ``dtx`` (unset means on, as in the
    official SDK).
    """
    dtx = options.dtx if options.HasField("dtx") else True
    if options.HasField("audio_encoding") and options.audio_encoding.max_bitrate:
        return AudioEncoderConfig(bitrate=int(options.audio_encoding.max_bitrate), dtx=dtx)
    return AudioEncoderConfig(dtx=dtx)


def video_codec(options: TrackPublishOptions) -> int:
    """The video codec ``options`` ask for: ``video_codec``, VP8 when unset.

    Raises:
        ValueError: For a codec aiortc cannot encode (AV1, VP9, H265) or an unknown one.
    """
    codec = options.video_codec if options.HasField("video_codec") else VideoCodec.VP8
    if codec not in (VideoCodec.VP8, VideoCodec.H264):
        name = VideoCodec.Name(codec) if codec in VideoCodec.values() else str(codec)
        raise ValueError(
            f"video codec {name} is not available in livekit-py (aiortc encodes VP8 and "
            "H264 only); publish with VideoCodec.VP8 or VideoCodec.H264"
        )
    return int(codec)


# The names of libwebrtc's ScalabilityMode values: the official SDK refuses any other string
# (its publish fails with "internal webrtc failure", checked with livekit 1.2.1).
SCALABILITY_MODES = frozenset(
    [f"L1T{t}" for t in (1, 2, 3)]
    + [f"L{s}T{t}{v}" for s in (2, 3) for t in (1, 2, 3) for v in ("", "h", "_KEY")]
    + ["L2T2_KEY_SHIFT"]
    + [f"S{s}T{t}{v}" for s in (2, 3) for t in (1, 2, 3) for v in ("", "h")]
)


def wants_simulcast(options: TrackPublishOptions) -> bool:
    """Whether ``options`` ask for simulcast: unless ``simulcast=False`` or a scalability mode.

    As the official SDK: ``simulcast`` defaults to true, and a ``scalability_mode``
    makes the publication one encoding (whose layers, if any, the encoder makes).
    """
    if options.HasField("scalability_mode"):
        return False
    return options.simulcast if options.HasField("simulcast") else True


def degradation_preference(options: TrackPublishOptions) -> int:
    """The ``DegradationPreference`` in effect for a video publication with ``options``.

    The option when set; otherwise the Rust SDK's default by source: MAINTAIN_FRAMERATE
    for a camera, MAINTAIN_RESOLUTION for a screen share, BALANCED for anything else.
    livekit-py's encoders behave the same for every value: they never lower the
    resolution; a lower bandwidth estimate lowers the bitrate (the picture quality),
    not the frame rate; frames that wait for a busy encoder longer than 100 ms are
    dropped before encoding. That is MAINTAIN_RESOLUTION's and
    MAINTAIN_FRAMERATE_AND_RESOLUTION's behaviour; BALANCED and MAINTAIN_FRAMERATE,
    which would trade resolution for frame rate, keep the resolution here.

    Raises:
        ValueError: If the option is not a DegradationPreference value.
    """
    if options.HasField("degradation_preference"):
        value = int(options.degradation_preference)
        if value not in _Degradation.values():
            raise ValueError(
                f"degradation_preference must be a DegradationPreference value, got {value}"
            )
        return value
    source = options.source if options.HasField("source") else TrackSource.SOURCE_UNKNOWN
    if source == TrackSource.SOURCE_CAMERA:
        return int(_Degradation.DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE)
    if source == TrackSource.SOURCE_SCREENSHARE:
        return int(_Degradation.DEGRADATION_PREFERENCE_MAINTAIN_RESOLUTION)
    return int(_Degradation.DEGRADATION_PREFERENCE_BALANCED)


def _check_scalability_mode(options: TrackPublishOptions) -> None:
    if not options.HasField("scalability_mode"):
        return
    mode = options.scalability_mode
    if mode not in SCALABILITY_MODES:
        raise ValueError(
            f"scalability_mode {mode!r} is not a scalability mode (L1T1, L1T3, L3T3_KEY, "
            "S2T1, ...: the names of libwebrtc's ScalabilityMode, which the official SDK "
            "also requires)"
        )
    if mode != "L1T1":
        # VP8 and H.264 have no spatial layers; aiortc's encoders make no temporal ones
        logger.info(
            "scalability_mode %s: VP8 and H.264 are sent as one stream without spatial "
            "or temporal layers here (L1T1)",
            mode,
        )


def video_encoder_config(
    options: TrackPublishOptions, width: int, height: int, *, screencast: bool = False
) -> VideoEncoderConfig:
    """The video settings ``options`` ask for, for a ``width`` x ``height`` picture.

    ``screencast`` says the source holds screen content (``VideoSource.is_screencast``).
    A screen share (``source=SOURCE_SCREENSHARE``) without ``video_encoding`` takes the
    bitrate and frame rate of LiveKit's screen-share presets.

    Raises:
        ValueError: For a codec aiortc cannot encode, a size that is not positive, a
            ``scalability_mode`` that is no scalability mode, or a
            ``degradation_preference`` that is no DegradationPreference value.
    """
    codec = video_codec(options)
    _check_scalability_mode(options)
    preference = degradation_preference(options)
    source = options.source if options.HasField("source") else TrackSource.SOURCE_UNKNOWN
    screenshare = source == TrackSource.SOURCE_SCREENSHARE
    framerate = None
    if options.HasField("video_encoding") and options.video_encoding.max_framerate:
        framerate = float(options.video_encoding.max_framerate)
    if options.HasField("video_encoding") and options.video_encoding.max_bitrate:
        bitrate = int(options.video_encoding.max_bitrate)
    elif screenshare:
        bitrate, preset_fps = screenshare_encoding(width, height)
        framerate = framerate or preset_fps
    else:
        bitrate = default_max_bitrate(width, height)
    layers: tuple[SimulcastLayer, ...] = ()
    if wants_simulcast(options):
        layers = simulcast_layers(width, height, bitrate, framerate, screenshare=screenshare)
        if len(layers) < 2:
            asked = options.HasField("simulcast")  # else simulcast by default: no news
            (logger.info if asked else logger.debug)(
                "a %dx%d picture is too small for simulcast: one layer", width, height
            )
            layers = ()
    return VideoEncoderConfig(
        codec=codec,
        max_bitrate=bitrate,
        max_framerate=framerate,
        layers=layers,
        screencast=screencast,
        degradation_preference=preference,
    )


def encoder_for(config: EncoderConfig) -> Encoder:
    """A new encoder for aiortc's ``RTCRtpSender`` following ``config``.

    Raises:
        ValueError: If a video limit is not positive or the codec cannot be encoded.
    """
    if isinstance(config, AudioEncoderConfig):
        return make_opus_encoder(config.bitrate, dtx=config.dtx)
    if config.layers:
        return SimulcastEncoder(config.codec, config.layers, screencast=config.screencast)
    return make_video_encoder(
        config.codec, config.max_bitrate, config.max_framerate, screencast=config.screencast
    )


def _mime_types(config: EncoderConfig) -> tuple[str, ...]:
    if isinstance(config, AudioEncoderConfig):
        return ("audio/opus",)
    main = "video/vp8" if config.codec == VideoCodec.VP8 else "video/h264"
    return (main, "video/rtx")


def configure_sender(transceiver: RTCRtpTransceiver, config: EncoderConfig) -> Encoder:
    """Offer only ``config``'s codec (plus RTX for video) and install its encoder.

    Call it on a new transceiver, before the offer that carries it.

    Returns:
        The encoder installed.

    Raises:
        ValueError: If the transceiver's kind is not the config's, or the encoder
            cannot be made.
    """
    if transceiver.kind != config.kind:
        raise ValueError(
            f"a {config.kind} encoder cannot be configured on a {transceiver.kind} transceiver"
        )
    wanted = _mime_types(config)
    codecs = RTCRtpSender.getCapabilities(config.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])
    encoder = encoder_for(config)
    install_encoder(transceiver.sender, encoder)
    return encoder


# -- what the offer says, and the remote answer ----------------------------------------


def offer_opus_fec(sdp: str) -> str:
    """``sdp`` (our offer) with ``useinbandfec=1`` in the Opus fmtp of each audio section.

    libwebrtc offers Opus with ``useinbandfec=1`` (its decoders use in-band FEC); aiortc
    offers it with no fmtp, and cannot be told to (its codec preferences take no
    parameters). The LiveKit server answers with the Opus fmtp it was offered, so
    without this its answer never asks for FEC. Offered on a send-only m-line the
    parameter only describes what we could receive; what we send follows the answer
    (:func:`apply_answer`). Other parameters of an existing fmtp line are kept.
    """
    newline = "\r\n" if "\r\n" in sdp else "\n"
    sections: list[list[str]] = [[]]
    for line in sdp.split(newline):
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out: list[str] = sections[0]
    for section in sections[1:]:
        if section[0].startswith("m=audio"):
            section = _with_opus_fec(section)
        out += section
    return newline.join(out)


def _with_opus_fec(section: list[str]) -> list[str]:
    """The lines of one audio section, with useinbandfec=1 in each Opus fmtp."""
    opus_types = set()
    with_fmtp = set()
    for line in section:
        if line.startswith("a=rtpmap:"):
            payload_type, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            if encoding.lower().startswith("opus/"):
                opus_types.add(payload_type)
        elif line.startswith("a=fmtp:"):
            with_fmtp.add(line[len("a=fmtp:") :].partition(" ")[0])
    out: list[str] = []
    for line in section:
        if line.startswith("a=fmtp:"):
            payload_type, _, params = line[len("a=fmtp:") :].partition(" ")
            names = {p.split("=", 1)[0].strip().lower() for p in params.split(";") if p}
            if payload_type in opus_types and "useinbandfec" not in names:
                params = f"{params};useinbandfec=1" if params.strip() else "useinbandfec=1"
                line = f"a=fmtp:{payload_type} {params}"
        out.append(line)
        if line.startswith("a=rtpmap:"):
            payload_type = line[len("a=rtpmap:") :].partition(" ")[0]
            if payload_type in opus_types and payload_type not in with_fmtp:
                out.append(f"a=fmtp:{payload_type} useinbandfec=1")
    return out


# -- what the remote answer says ------------------------------------------------------


def opus_fmtp_by_mid(sdp: str) -> dict[str, dict[str, str]]:
    """The Opus fmtp parameters of each audio section of ``sdp``, by mid.

    Names are lower-cased, values kept as text ("" for a parameter with no value);
    a section without Opus, a mid or an fmtp line maps to nothing or an empty dict.

    Raises:
        ValueError: If ``sdp`` cannot be parsed.
    """
    try:
        description = SessionDescription.parse(sdp)
    except Exception as e:  # aiortc's parser raises all sorts on bad SDP
        raise ValueError(f"the SDP cannot be parsed: {e}") from e
    out: dict[str, dict[str, str]] = {}
    for media in description.media:
        mid = media.rtp.muxId
        if media.kind != "audio" or not mid:
            continue
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() == "audio/opus":
                out[mid] = {
                    str(k).strip().lower(): "" if v is None else str(v).strip()
                    for k, v in codec.parameters.items()
                }
                break
    return out


def apply_answer(sender: RTCRtpSender, fmtp: Mapping[str, str]) -> None:
    """Follow what the remote answer's Opus ``fmtp`` asks of the encoder of ``sender``.

    As libwebrtc does (RFC 7587 section 6.1): ``useinbandfec=1`` turns in-band FEC on,
    ``usedtx=1`` DTX (anything else: off), and ``maxaveragebitrate`` caps the bitrate.
    The LiveKit server answers with the ``useinbandfec`` we offered
    (:func:`offer_opus_fec`) and adds ``usedtx=1`` unless the track was announced with
    ``disable_dtx``, so the publish option reaches the encoder this way too. Other
    parameters describe what the remote side receives and change nothing here: the
    encoder sends stereo 20 ms packets whatever ``stereo`` and ``ptime`` say, as before.
    A sender without our Opus encoder (video, or the PyAV fallback) is left alone.
    """
    encoder = installed_encoder(sender)
    if not isinstance(encoder, OpusEncoder):
        return
    fec = fmtp.get("useinbandfec", "0") == "1"
    if fec != encoder.fec:
        logger.debug("the answer turns Opus in-band FEC %s", "on" if fec else "off")
        encoder.fec = fec
    dtx = fmtp.get("usedtx", "0") == "1"
    if dtx != encoder.dtx:
        logger.debug("the answer turns Opus DTX %s", "on" if dtx else "off")
        encoder.dtx = dtx
    cap: int | None = None
    text = fmtp.get("maxaveragebitrate", "")
    if text:
        try:
            cap = int(text)
        except ValueError:
            logger.debug("ignoring maxaveragebitrate=%r in the answer", text)
    encoder.cap_bitrate(cap if cap is not None and cap > 0 else None)


def loss_feedback_for(sender: RTCRtpSender) -> LossFeedback | None:
    """The task that adapts the expected loss of ``sender``'s encoder (not started).

    None when the encoder is not our Opus encoder (video, or the PyAV fallback).
    """
    encoder = installed_encoder(sender)
    if not isinstance(encoder, OpusEncoder):
        return None
    return LossFeedback(sender, encoder)


# -- each encoded frame (end-to-end encryption) ------------------------------------------

_CODEC_OF_ENCODER: tuple[tuple[type[Encoder], str], ...] = (
    (OpusEncoder, "audio/opus"),
    (PyAVOpusEncoder, "audio/opus"),
    (Vp8VideoEncoder, "video/vp8"),
    (H264VideoEncoder, "video/h264"),
)


def sent_codec(sender: RTCRtpSender) -> str | None:
    """The MIME type (lower case) ``sender``'s installed encoder of ours produces, or None."""
    encoder = installed_encoder(sender)
    for cls, mime in _CODEC_OF_ENCODER:
        if isinstance(encoder, cls):
            return mime
    return None


def set_frame_transform(sender: RTCRtpSender, transform: FrameTransform | None) -> str:
    """Pass every frame ``sender`` encodes through ``transform`` before it is packetized.

    Call it after :func:`configure_sender`, before media flows (a frame being encoded
    meanwhile may go out untransformed). None removes the transform.

    Returns:
        The MIME type of the frames the transform sees (``audio/opus``, ``video/vp8``,
        ``video/h264``).

    Raises:
        ValueError: If the sender has no encoder of ours (configure it first).
    """
    encoder = installed_encoder(sender)
    mime = sent_codec(sender)
    if encoder is None or mime is None:
        raise ValueError("the sender has no encoder of ours: call configure_sender first")
    encoder.frame_transform = transform  # type: ignore[attr-defined]
    return mime
