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
* pre-encoded video (an ``EncodedVideoSource``, published with
  ``video_encoder=ENCODER_BACKEND_PRE_ENCODED``): one stream, a pass-through encoder
  (:func:`~.pre_encoded.make_pre_encoded_encoder`) that packetizes the access units as
  given, linked to the track's feedback (:func:`~.pre_encoded.attach_pre_encoded`).

Each encoder of ours (each layer's, for simulcast) hands its frames to one
:class:`~.frame_transform.SendTransforms` (:func:`send_transforms`): end-to-end
encryption (:mod:`.e2ee_hooks`) and the frame metadata trailer
(:mod:`.frame_metadata`, from a config's ``frame_metadata``) are set there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.sdp import SessionDescription

from .._proto.livekit_py_types_pb2 import DegradationPreference as _Degradation
from ..log import get_logger
from ..types import TrackPublishOptions, TrackSource, VideoCodec, VideoEncoderBackend
from .aiortc_adapter import (
    TransformingH264Encoder,
    TransformingVp8Encoder,
    install_encoder,
    installed_encoder,
)
from .audio_feedback import LossFeedback
from .frame_metadata import FrameMetadataSender
from .frame_transform import FrameTransform, SendTransforms
from .opus import DEFAULT_AUDIO_BITRATE, OpusEncoder, PyAVOpusEncoder, make_opus_encoder
from .pre_encoded import attach_pre_encoded, make_pre_encoded_encoder
from .simulcast import SimulcastEncoder, SimulcastLayer, simulcast_layers
from .video_codecs import (
    default_max_bitrate,
    default_max_framerate,
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
    "frame_encoders",
    "frame_metadata_of",
    "send_transforms",
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
        frame_metadata: Where the frames' metadata is found, to send as packet
            trailers (the publication asked for frame metadata features); None: none.
        pre_encoded: Whether the track's frames come encoded (an ``EncodedVideoSource``):
            they are packetized as they are, none is dropped, and ``max_bitrate`` and
            ``max_framerate`` are the rate-control target reported to the source.
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
    frame_metadata: FrameMetadataSender | None = field(default=None, compare=False)
    pre_encoded: bool = False
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


def _backend(options: TrackPublishOptions) -> int:
    if options.HasField("video_encoder"):
        return int(options.video_encoder)
    return int(VideoEncoderBackend.ENCODER_BACKEND_AUTO)


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
    options: TrackPublishOptions,
    width: int,
    height: int,
    *,
    screencast: bool = False,
    pre_encoded: bool = False,
) -> VideoEncoderConfig:
    """The video settings ``options`` ask for, for a ``width`` x ``height`` picture.

    ``screencast`` says the source holds screen content (``VideoSource.is_screencast``).
    A screen share (``source=SOURCE_SCREENSHARE``) without ``video_encoding`` takes the
    bitrate and frame rate of LiveKit's screen-share presets. ``pre_encoded`` says the
    track is of an ``EncodedVideoSource``.

    Raises:
        ValueError: For a codec aiortc cannot encode, a size that is not positive, a
            ``scalability_mode`` that is no scalability mode, or a
            ``degradation_preference`` that is no DegradationPreference value; for a
            pre-encoded track, unless ``video_encoder`` is ``ENCODER_BACKEND_PRE_ENCODED``
            and ``simulcast`` is not true; for a track of raw pictures published with
            ``ENCODER_BACKEND_PRE_ENCODED``.
    """
    backend = _backend(options)
    if pre_encoded:
        return _pre_encoded_config(options, width, height, backend)
    if backend == VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED:
        raise ValueError(
            "video_encoder=ENCODER_BACKEND_PRE_ENCODED needs a track of an EncodedVideoSource; "
            "this track's source is a VideoSource of raw pictures"
        )
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


def _pre_encoded_config(
    options: TrackPublishOptions, width: int, height: int, backend: int
) -> VideoEncoderConfig:
    """The config of a pre-encoded publication; refuses what the official SDK cannot send.

    The official SDK publishes these anyway and sends nothing a subscriber can decode
    (its pass-through encoder refuses frames of another codec than the publication's;
    another backend gets pictures it cannot read; simulcast sends the same stream as
    every layer), so they are refused here, by name.
    """
    if backend != VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED:
        name = (
            VideoEncoderBackend.Name(backend)
            if backend in VideoEncoderBackend.values()
            else str(backend)
        )
        raise ValueError(
            "a track of an EncodedVideoSource must be published with "
            f"video_encoder=ENCODER_BACKEND_PRE_ENCODED, not {name}"
        )
    if options.HasField("simulcast") and options.simulcast:
        raise ValueError(
            "a track of an EncodedVideoSource is sent as one stream: publish it with "
            "simulcast=False (pre-encoded frames cannot be scaled into layers)"
        )
    codec = video_codec(options)
    if options.HasField("video_encoding") and options.video_encoding.max_bitrate:
        bitrate = int(options.video_encoding.max_bitrate)
    else:
        bitrate = default_max_bitrate(width, height)
    if options.HasField("video_encoding") and options.video_encoding.max_framerate:
        framerate = float(options.video_encoding.max_framerate)
    else:
        framerate = default_max_framerate(width, height)
    return VideoEncoderConfig(
        codec=codec, max_bitrate=bitrate, max_framerate=framerate, pre_encoded=True
    )


def encoder_for(config: EncoderConfig) -> Encoder:
    """A new encoder for aiortc's ``RTCRtpSender`` following ``config``.

    Raises:
        ValueError: If a video limit is not positive or the codec cannot be encoded.
    """
    if isinstance(config, AudioEncoderConfig):
        return make_opus_encoder(config.bitrate, dtx=config.dtx)
    if config.pre_encoded:
        # (video_encoder_config always sets a frame rate; 30 fps for a config without)
        framerate = config.max_framerate or 30.0
        return make_pre_encoded_encoder(config.codec, config.max_bitrate, framerate)
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

    Call it on a new transceiver, before the offer that carries it. A pre-encoded
    config needs the transceiver's track to be an ``EncodedSourceTrack``: its feedback
    is linked to the encoder and to the sender's key-frame requests.

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
    if isinstance(config, VideoEncoderConfig) and config.pre_encoded:
        attach_pre_encoded(transceiver.sender, encoder)
    install_encoder(transceiver.sender, encoder)
    if isinstance(config, VideoEncoderConfig) and config.frame_metadata is not None:
        for chain in send_transforms(transceiver.sender):
            chain.trailers = config.frame_metadata
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

# our VP8 and H.264 encoders, raw and pre-encoded, all have the transforming bases
_CODEC_OF_ENCODER: tuple[tuple[type[Encoder], str], ...] = (
    (OpusEncoder, "audio/opus"),
    (PyAVOpusEncoder, "audio/opus"),
    (TransformingVp8Encoder, "video/vp8"),
    (TransformingH264Encoder, "video/h264"),
)


def _codec_of(encoder: Encoder | None) -> str | None:
    for cls, mime in _CODEC_OF_ENCODER:
        if isinstance(encoder, cls):
            return mime
    return None


def sent_codec(sender: RTCRtpSender) -> str | None:
    """The MIME type (lower case) ``sender``'s installed encoder of ours produces, or None.

    For a simulcast sender, the codec of its layers.
    """
    encoder = installed_encoder(sender)
    if isinstance(encoder, SimulcastEncoder):
        return _codec_of(encoder.layers[0].encoder)
    return _codec_of(encoder)


def frame_encoders(sender: RTCRtpSender) -> list[Encoder]:
    """The encoders of ours whose frames ``sender`` sends: one, or one per simulcast layer.

    Raises:
        ValueError: If the sender has no encoder of ours (configure it first).
    """
    encoder = installed_encoder(sender)
    if isinstance(encoder, SimulcastEncoder):
        encoders = [stream.encoder for stream in encoder.layers]
    else:
        encoders = [encoder] if encoder is not None else []
    if not encoders or any(_codec_of(e) is None for e in encoders):
        raise ValueError("the sender has no encoder of ours: call configure_sender first")
    return encoders


def set_frame_transform(sender: RTCRtpSender, transform: FrameTransform | None) -> str:
    """Pass every frame ``sender`` encodes through ``transform`` before it is packetized.

    Call it after :func:`configure_sender`, before media flows (a frame being encoded
    meanwhile may go out untransformed). None removes the transform. On a simulcast
    sender every layer's encoder gets ``transform``. This replaces the
    :func:`send_transforms` of the sender.

    Returns:
        The MIME type of the frames the transform sees (``audio/opus``, ``video/vp8``,
        ``video/h264``).

    Raises:
        ValueError: If the sender has no encoder of ours (configure it first).
    """
    encoders = frame_encoders(sender)
    for encoder in encoders:
        encoder.frame_transform = transform  # type: ignore[attr-defined]
    mime = _codec_of(encoders[0])
    assert mime is not None
    return mime


def send_transforms(sender: RTCRtpSender) -> list[SendTransforms]:
    """The :class:`~.frame_transform.SendTransforms` of each encoder of ``sender``.

    One per encoder (per simulcast layer), made and installed as the encoder's
    ``frame_transform`` the first time. Set their steps before media flows.

    Raises:
        ValueError: If the sender has no encoder of ours (configure it first).
    """
    chains: list[SendTransforms] = []
    for encoder in frame_encoders(sender):
        chain = getattr(encoder, "frame_transform", None)
        if not isinstance(chain, SendTransforms):
            chain = SendTransforms()
            encoder.frame_transform = chain  # type: ignore[attr-defined]
        chains.append(chain)
    return chains


def frame_metadata_of(sender: RTCRtpSender) -> FrameMetadataSender | None:
    """Where the encoders of ``sender`` find the metadata of each frame (None: no trailers).

    The store of the published track (:class:`~.frame_metadata.FrameMetadataSender`):
    :meth:`~.frame_metadata.FrameMetadataSender.put` sends metadata with a frame of a
    given 90 kHz media timestamp, on every layer of a simulcast sender.
    """
    try:
        encoders = frame_encoders(sender)
    except ValueError:
        return None
    chain = getattr(encoders[0], "frame_transform", None)
    if isinstance(chain, SendTransforms) and isinstance(chain.trailers, FrameMetadataSender):
        return chain.trailers
    return None
