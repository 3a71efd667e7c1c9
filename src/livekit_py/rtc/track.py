"""Tracks: local ones we publish from a source, remote ones we receive.

A track wraps an aiortc ``MediaStreamTrack``. Local tracks wrap our source
adapters (which pace and feed aiortc's encoder); remote tracks wrap aiortc's
receiving track and drain it with a :class:`TrackReader` that fans decoded
frames out to any number of AudioStreams/VideoStreams.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..log import get_logger
from ..media.frame_source import FrameFanout, TrackReader
from ..types import FrameMetadataFeature, StreamState, TrackKind, TrackPublishOptions, VideoCodec
from ..webrtc.encoders import (
    EncoderConfig,
    VideoEncoderConfig,
    audio_encoder_config,
    video_encoder_config,
)
from ..webrtc.frame_metadata import FrameMetadataReceiver, FrameMetadataSender
from . import stats

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

    from ..webrtc.pre_encoded import EncodedSourceTrack
    from ..webrtc.source_tracks import AudioSourceTrack, VideoSourceTrack
    from .audio_source import AudioSource
    from .encoded_video import EncodedVideoSource
    from .video_source import VideoSource

logger = get_logger("room.track")

if TYPE_CHECKING:
    from .platform_audio import PlatformAudioSource

StatsSource = Callable[[], Awaitable[list[stats.RtcStats]]]
"""Gets the statistics of one published or subscribed track (set by the room)."""

# livekit-protocol TrackType -> public TrackKind
KIND_FROM_PROTO: dict[int, int] = {
    proto_models.TrackType.AUDIO: TrackKind.KIND_AUDIO,
    proto_models.TrackType.VIDEO: TrackKind.KIND_VIDEO,
}

# public FrameMetadataFeature -> livekit-protocol PacketTrailerFeature
_TRAILER_FEATURES: dict[int, int] = {
    FrameMetadataFeature.FMF_USER_TIMESTAMP: proto_models.PacketTrailerFeature.PTF_USER_TIMESTAMP,
    FrameMetadataFeature.FMF_FRAME_ID: proto_models.PacketTrailerFeature.PTF_FRAME_ID,
    FrameMetadataFeature.FMF_USER_DATA: proto_models.PacketTrailerFeature.PTF_USER_DATA,
}


def packet_trailer_features(options: TrackPublishOptions) -> list[int]:
    """The ``AddTrackRequest.packet_trailer_features`` of ``options.frame_metadata_features``.

    Each feature once, in the order given.

    Raises:
        ValueError: For a value that is not a ``FrameMetadataFeature``.
    """
    out: list[int] = []
    for feature in options.frame_metadata_features:
        trailer = _TRAILER_FEATURES.get(int(feature))
        if trailer is None:
            raise ValueError(
                f"frame_metadata_features: {feature!r} is not a FrameMetadataFeature value"
            )
        if trailer not in out:
            out.append(trailer)
    return out


class Track:
    """What every track has: sid, name, kind, mute state and statistics."""

    def __init__(self, name: str, kind: int, sid: str = "", muted: bool = False) -> None:
        self._sid = sid
        self._name = name
        self._kind = kind
        self._muted = muted
        self._stream_state: int = StreamState.STATE_ACTIVE
        self._stats_source: StatsSource | None = None

    @property
    def sid(self) -> str:
        """The server's id for the track (``TR_...``); empty for a local track not yet published."""
        return self._sid

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> int:
        """A :class:`TrackKind` value."""
        return self._kind

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def stream_state(self) -> int:
        """A :class:`StreamState` value."""
        return self._stream_state

    def _media_track(self) -> MediaStreamTrack | None:
        """The aiortc track underneath, if there is one."""
        return None

    def _frame_source(self) -> FrameFanout:
        """Where decoded (remote) or captured (local) frames of this track appear."""
        raise ValueError(f"{type(self).__name__} {self.name!r} has no frames to read")

    async def get_stats(self) -> list[stats.RtcStats]:
        """The statistics of this track, as the official SDK returns them.

        ``livekit.rtc.stats.RtcStats`` messages (``livekit_py.rtc.stats``): the track's
        RTP streams (``outbound_rtp`` for a published track, one per simulcast layer;
        ``inbound_rtp`` for a subscribed one) and the peer's reports about them
        (``remote_inbound_rtp`` / ``remote_outbound_rtp``), their ``codec``, a
        published track's ``media_source``, and the ``transport`` under them with its
        selected ``candidate_pair``, its two candidates and both ``certificate``
        entries. Fields livekit-py does not know are left unset. Empty for a track
        that is not published or subscribed.
        """
        source = self._stats_source
        if source is None:
            return []
        return list(await source())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sid={self.sid!r}, name={self.name!r})"


class _Publisher(Protocol):
    """What a published local track tells its participant (LocalParticipant is one)."""

    def _on_local_mute(self, track: LocalTrack, muted: bool) -> None:
        """``track`` was muted or unmuted by the user."""
        ...


class LocalTrack(Track):
    """A track published (or publishable) by the local participant."""

    def __init__(self, name: str, kind: int) -> None:
        super().__init__(name, kind)
        self._participant: _Publisher | None = None
        self._sender: RTCRtpSender | None = None  # once published

    def _set_muted(self, muted: bool) -> None:
        if muted == self._muted:
            return
        self._muted = muted
        self._apply_mute(muted)
        if self._participant is not None and self._sid:
            self._participant._on_local_mute(self, muted)

    def _apply_mute(self, muted: bool) -> None:
        """Make the media silent/black (or live again)."""

    def _fill_add_track_request(
        self, request: proto_rtc.AddTrackRequest, options: TrackPublishOptions
    ) -> None:
        """Describe this track's media to the server (type, features, size...)."""
        raise ValueError(f"{type(self).__name__} cannot be published")

    def _encoder_config(self, options: TrackPublishOptions) -> EncoderConfig:
        """How this track's media is to be encoded when published with ``options``."""
        raise ValueError(f"{type(self).__name__} cannot be published")

    def mute(self) -> None:
        """Stop sending media (silence/black frames) and tell the other participants."""
        self._set_muted(True)

    def unmute(self) -> None:
        """Send media again and tell the other participants."""
        self._set_muted(False)


class LocalAudioTrack(LocalTrack):
    """Audio captured into an :class:`AudioSource` and published to the room."""

    def __init__(self, name: str, source: AudioSource) -> None:
        from ..webrtc.source_tracks import AudioSourceTrack

        super().__init__(name, TrackKind.KIND_AUDIO)
        self._source = source
        self._rtc: AudioSourceTrack = AudioSourceTrack(source)

    @staticmethod
    def create_audio_track(name: str, source: AudioSource | PlatformAudioSource) -> LocalAudioTrack:
        """A new audio track fed by ``source`` (an :class:`AudioSource` you push frames
        to, or a :class:`PlatformAudioSource` the microphone feeds); publish it with
        ``publish_track``."""
        from .audio_source import AudioSource

        if isinstance(source, AudioSource):
            return LocalAudioTrack(name, source)
        # a PlatformAudioSource exists only once its module is loaded: not importing it
        # here keeps the microphone stack (and scipy, for its processing) out of a room
        # that never uses it
        platform_audio = sys.modules.get(f"{__package__}.platform_audio")
        if platform_audio is not None and isinstance(source, platform_audio.PlatformAudioSource):
            return LocalAudioTrack(name, source.audio_source)
        if not isinstance(source, AudioSource):
            raise ValueError(
                "source must be an AudioSource or a PlatformAudioSource, "
                f"not {type(source).__name__}"
            )
        return LocalAudioTrack(name, source)

    def _apply_mute(self, muted: bool) -> None:
        self._rtc.muted = muted

    def _fill_add_track_request(
        self, request: proto_rtc.AddTrackRequest, options: TrackPublishOptions
    ) -> None:
        # As in the official SDK, unset dtx means "on". aiortc cannot send RED.
        dtx = options.dtx if options.HasField("dtx") else True
        stereo = self._source.num_channels == 2
        request.type = proto_models.TrackType.AUDIO
        request.disable_dtx = not dtx
        request.disable_red = True
        request.stereo = stereo
        if stereo:
            request.audio_features.append(proto_models.AudioTrackFeature.TF_STEREO)
        if not dtx:
            request.audio_features.append(proto_models.AudioTrackFeature.TF_NO_DTX)

    def _encoder_config(self, options: TrackPublishOptions) -> EncoderConfig:
        return audio_encoder_config(options)

    def _media_track(self) -> MediaStreamTrack:
        # aiortc stops a track when its sender stops (unpublish, disconnect), so a
        # track published again gets a fresh adapter on the same source.
        if self._rtc.readyState == "ended":
            from ..webrtc.source_tracks import AudioSourceTrack

            self._rtc = AudioSourceTrack(self._source)
            self._rtc.muted = self._muted
        return self._rtc

    def _frame_source(self) -> FrameFanout:
        return self._rtc._sent


class LocalVideoTrack(LocalTrack):
    """Video captured into a :class:`VideoSource` (or an :class:`EncodedVideoSource`) and
    published to the room.

    Published with VP8 (default) or H.264 through aiortc, honouring
    ``video_encoding.max_bitrate`` and ``max_framerate``. Unless ``simulcast=False``
    (simulcast is the default, as in the official SDK) a picture whose longer side is
    at least 480 is sent as two or three layers (LiveKit's defaults: 320x180 and
    640x360 below the full size; a screen share: half the size at 3 fps), each with
    its own encoder. AV1, VP9 and H.265 are not available from aiortc and raise
    ValueError.

    A track of an :class:`EncodedVideoSource` sends its access units as they are: publish
    it with the source's ``video_codec``,
    ``video_encoder=VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED`` and
    ``simulcast=False`` (anything else raises ValueError). It has no pictures to read
    locally (a ``VideoStream`` of it raises ValueError).
    """

    def __init__(self, name: str, source: VideoSource | EncodedVideoSource) -> None:
        super().__init__(name, TrackKind.KIND_VIDEO)
        self._source = source
        self._rtc: VideoSourceTrack | EncodedSourceTrack = self._new_rtc()

    def _new_rtc(self) -> VideoSourceTrack | EncodedSourceTrack:
        from .encoded_video import EncodedVideoSource

        if isinstance(self._source, EncodedVideoSource):
            from ..webrtc.pre_encoded import EncodedSourceTrack

            return EncodedSourceTrack(self._source)
        from ..webrtc.source_tracks import VideoSourceTrack

        return VideoSourceTrack(self._source)

    @staticmethod
    def create_video_track(name: str, source: VideoSource | EncodedVideoSource) -> LocalVideoTrack:
        """A new video track fed by ``source``; publish it with ``publish_track``."""
        from .encoded_video import EncodedVideoSource
        from .video_source import VideoSource

        if not isinstance(source, (VideoSource, EncodedVideoSource)):
            raise ValueError(
                "source must be a VideoSource or an EncodedVideoSource, "
                f"not {type(source).__name__}"
            )
        return LocalVideoTrack(name, source)

    def _apply_mute(self, muted: bool) -> None:
        self._rtc.muted = muted

    def _config(self, options: TrackPublishOptions) -> VideoEncoderConfig:
        from .encoded_video import EncodedVideoSource

        source = self._source
        if isinstance(source, EncodedVideoSource):
            config = video_encoder_config(options, source.width, source.height, pre_encoded=True)
            source._bind_codec(config.codec, "publication")
            return config
        return video_encoder_config(
            options, source.width, source.height, screencast=source.is_screencast
        )

    def _fill_add_track_request(
        self, request: proto_rtc.AddTrackRequest, options: TrackPublishOptions
    ) -> None:
        config = self._config(options)
        codec = config.codec
        width, height = self._source.width, self._source.height
        request.type = proto_models.TrackType.VIDEO
        request.width, request.height = width, height
        if config.layers:
            for layer in config.layers:
                request.layers.append(
                    proto_models.VideoLayer(
                        quality=layer.quality,  # type: ignore[arg-type]
                        width=layer.width,
                        height=layer.height,
                        bitrate=layer.max_bitrate,
                    )
                )
        else:
            request.layers.append(
                proto_models.VideoLayer(
                    quality=proto_models.VideoQuality.HIGH,
                    width=width,
                    height=height,
                    bitrate=config.max_bitrate,
                )
            )
        request.simulcast_codecs.append(
            proto_rtc.SimulcastCodec(
                codec="vp8" if codec == VideoCodec.VP8 else "h264", cid=request.cid
            )
        )

    def _encoder_config(self, options: TrackPublishOptions) -> EncoderConfig:
        config = self._config(options)
        if not packet_trailer_features(options):
            return config
        # the metadata captured with each picture (or access unit), as the track stamps
        # it, goes out as packet trailers (on every simulcast layer)
        rtc_track = self._media_track()  # a fresh adapter if the last one ended
        store: FrameMetadataSender = rtc_track.frame_metadata  # type: ignore[attr-defined]
        return dataclasses.replace(config, frame_metadata=store)

    def _media_track(self) -> MediaStreamTrack:
        if self._rtc.readyState == "ended":
            self._rtc = self._new_rtc()
            self._rtc.muted = self._muted
        return self._rtc

    def _frame_source(self) -> FrameFanout:
        from ..webrtc.source_tracks import VideoSourceTrack

        rtc_track = self._rtc
        if not isinstance(rtc_track, VideoSourceTrack):
            raise ValueError(
                f"track {self.name!r} sends pre-encoded frames: it has no pictures to read"
            )
        return rtc_track._sent


class RemoteTrack(Track):
    """A track of another participant that we are subscribed to."""

    def __init__(self, info: proto_models.TrackInfo, rtc_track: MediaStreamTrack) -> None:
        super().__init__(info.name, KIND_FROM_PROTO.get(info.type, TrackKind.KIND_UNKNOWN))
        self._sid = info.sid
        self._muted = info.muted
        self._rtc = rtc_track
        self._reader = TrackReader(rtc_track)
        self._receiver: RTCRtpReceiver | None = None

    def _read_frame_metadata(self, metadata: FrameMetadataReceiver | None) -> None:
        """Give each decoded picture the metadata its frame carried (None: none)."""
        self._reader.annotate = metadata.annotate if metadata is not None else None

    def _start(self) -> None:
        self._reader.start()

    async def _end(self) -> None:
        """Stop reading: streams over this track end. The aiortc track may be reused."""
        await self._reader.aclose()

    def _media_track(self) -> MediaStreamTrack:
        return self._rtc

    def _frame_source(self) -> FrameFanout:
        return self._reader


class RemoteAudioTrack(RemoteTrack):
    """Audio of another participant."""


class RemoteVideoTrack(RemoteTrack):
    """Video of another participant."""


AudioTrack = LocalAudioTrack | RemoteAudioTrack
"""Any audio track."""
VideoTrack = LocalVideoTrack | RemoteVideoTrack
"""Any video track."""
