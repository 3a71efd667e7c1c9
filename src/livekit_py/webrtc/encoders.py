"""The encoder of a publication, chosen in one place for audio and video.

A local track turns its ``TrackPublishOptions`` into an :data:`EncoderConfig`
(:func:`audio_encoder_config`, :func:`video_encoder_config`); the engine gives
that config to :func:`configure_sender` for the publisher's new m-line, which
offers only the chosen codec and installs our encoder for it on aiortc's sender:

* audio: Opus (:class:`~.opus.OpusEncoder`) at ``audio_encoding.max_bitrate``
  (48 kbps by default);
* video: VP8 (default) or H.264 (:func:`~.video_codecs.make_video_encoder`)
  capped at ``video_encoding.max_bitrate`` (LiveKit's preset for the picture
  size by default) and ``video_encoding.max_framerate`` (no cap by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder

from ..types import TrackPublishOptions, VideoCodec
from .aiortc_adapter import install_encoder
from .opus import DEFAULT_AUDIO_BITRATE, OpusEncoder
from .video_codecs import default_max_bitrate, make_video_encoder

__all__ = [
    "AudioEncoderConfig",
    "EncoderConfig",
    "VideoEncoderConfig",
    "audio_encoder_config",
    "configure_sender",
    "encoder_for",
    "video_codec",
    "video_encoder_config",
]


@dataclass(frozen=True)
class AudioEncoderConfig:
    """How a published audio track is encoded: Opus at ``bitrate`` bits/s."""

    bitrate: int = DEFAULT_AUDIO_BITRATE
    kind: ClassVar[Literal["audio"]] = "audio"


@dataclass(frozen=True)
class VideoEncoderConfig:
    """How a published video track is encoded.

    Attributes:
        codec: A ``VideoCodec`` value, VP8 or H264.
        max_bitrate: The encoder's bitrate cap and starting point, in bits/s.
        max_framerate: Frames per second above which frames are dropped; None for no cap.
    """

    codec: int
    max_bitrate: int
    max_framerate: float | None = None
    kind: ClassVar[Literal["video"]] = "video"


EncoderConfig = AudioEncoderConfig | VideoEncoderConfig
"""The encoder settings of one publication."""


def audio_encoder_config(options: TrackPublishOptions) -> AudioEncoderConfig:
    """The Opus settings ``options`` ask for (``audio_encoding.max_bitrate``, else 48 kbps)."""
    if options.HasField("audio_encoding") and options.audio_encoding.max_bitrate:
        return AudioEncoderConfig(bitrate=int(options.audio_encoding.max_bitrate))
    return AudioEncoderConfig()


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


def video_encoder_config(
    options: TrackPublishOptions, width: int, height: int
) -> VideoEncoderConfig:
    """The video settings ``options`` ask for, for a ``width`` x ``height`` picture.

    Raises:
        ValueError: For a codec aiortc cannot encode, or a size that is not positive.
    """
    codec = video_codec(options)
    if options.HasField("video_encoding") and options.video_encoding.max_bitrate:
        bitrate = int(options.video_encoding.max_bitrate)
    else:
        bitrate = default_max_bitrate(width, height)
    framerate = None
    if options.HasField("video_encoding") and options.video_encoding.max_framerate:
        framerate = float(options.video_encoding.max_framerate)
    return VideoEncoderConfig(codec=codec, max_bitrate=bitrate, max_framerate=framerate)


def encoder_for(config: EncoderConfig) -> Encoder:
    """A new encoder for aiortc's ``RTCRtpSender`` following ``config``.

    Raises:
        ValueError: If a video limit is not positive or the codec cannot be encoded.
    """
    if isinstance(config, AudioEncoderConfig):
        return OpusEncoder(config.bitrate)
    return make_video_encoder(config.codec, config.max_bitrate, config.max_framerate)


def _mime_types(config: EncoderConfig) -> tuple[str, ...]:
    if isinstance(config, AudioEncoderConfig):
        return ("audio/opus",)
    main = "video/vp8" if config.codec == VideoCodec.VP8 else "video/h264"
    return (main, "video/rtx")


def configure_sender(transceiver: RTCRtpTransceiver, config: EncoderConfig) -> None:
    """Offer only ``config``'s codec (plus RTX for video) and install its encoder.

    Call it on a new transceiver, before the offer that carries it.

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
    install_encoder(transceiver.sender, encoder_for(config))
