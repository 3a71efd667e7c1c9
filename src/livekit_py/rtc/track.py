"""Tracks: local ones we publish from a source, remote ones we receive.

A track wraps an aiortc ``MediaStreamTrack``. Local tracks wrap our source
adapters (which pace and feed aiortc's encoder); remote tracks wrap aiortc's
receiving track and drain it with a :class:`TrackReader` that fans decoded
frames out to any number of AudioStreams/VideoStreams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiortc.stats import RTCInboundRtpStreamStats
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..log import get_logger
from ..media.frame_source import FrameFanout, TrackReader
from ..types import StreamState, TrackKind, TrackPublishOptions, VideoCodec
from ..webrtc.audio_playout import PlayoutTrack
from ..webrtc.encoders import (
    EncoderConfig,
    VideoEncoderConfig,
    audio_encoder_config,
    video_encoder_config,
)

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

    from ..webrtc.source_tracks import AudioSourceTrack, VideoSourceTrack
    from .audio_source import AudioSource
    from .video_source import VideoSource

logger = get_logger("room.track")

# livekit-protocol TrackType -> public TrackKind
KIND_FROM_PROTO: dict[int, int] = {
    proto_models.TrackType.AUDIO: TrackKind.KIND_AUDIO,
    proto_models.TrackType.VIDEO: TrackKind.KIND_VIDEO,
}


class Track:
    """What every track has: sid, name, kind, mute state and statistics."""

    def __init__(self, name: str, kind: int, sid: str = "", muted: bool = False) -> None:
        self._sid = sid
        self._name = name
        self._kind = kind
        self._muted = muted
        self._stream_state: int = StreamState.STATE_ACTIVE

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

    async def get_stats(self) -> list[Any]:
        """aiortc's statistics for this track's RTP stream(s) (sender or receiver side)."""
        return []

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

    async def get_stats(self) -> list[Any]:
        sender = self._sender
        if sender is None:
            return []
        report = await sender.getStats()
        return list(report.values())


class LocalAudioTrack(LocalTrack):
    """Audio captured into an :class:`AudioSource` and published to the room."""

    def __init__(self, name: str, source: AudioSource) -> None:
        from ..webrtc.source_tracks import AudioSourceTrack

        super().__init__(name, TrackKind.KIND_AUDIO)
        self._source = source
        self._rtc: AudioSourceTrack = AudioSourceTrack(source)

    @staticmethod
    def create_audio_track(name: str, source: AudioSource) -> LocalAudioTrack:
        """A new audio track fed by ``source``; publish it with ``publish_track``."""
        from .audio_source import AudioSource

        if not isinstance(source, AudioSource):
            raise ValueError(f"source must be an AudioSource, not {type(source).__name__}")
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
    """Video captured into a :class:`VideoSource` and published to the room.

    Published with VP8 (default) or H.264 through aiortc, honouring
    ``video_encoding.max_bitrate`` and ``max_framerate``. Unless ``simulcast=False``
    (simulcast is the default, as in the official SDK) a picture whose longer side is
    at least 480 is sent as two or three layers (LiveKit's defaults: 320x180 and
    640x360 below the full size; a screen share: half the size at 3 fps), each with
    its own encoder. AV1, VP9 and H.265 are not available from aiortc and raise
    ValueError.
    """

    def __init__(self, name: str, source: VideoSource) -> None:
        from ..webrtc.source_tracks import VideoSourceTrack

        super().__init__(name, TrackKind.KIND_VIDEO)
        self._source = source
        self._rtc: VideoSourceTrack = VideoSourceTrack(source)

    @staticmethod
    def create_video_track(name: str, source: VideoSource) -> LocalVideoTrack:
        """A new video track fed by ``source``; publish it with ``publish_track``."""
        from .video_source import VideoSource

        if not isinstance(source, VideoSource):
            raise ValueError(f"source must be a VideoSource, not {type(source).__name__}")
        return LocalVideoTrack(name, source)

    def _apply_mute(self, muted: bool) -> None:
        self._rtc.muted = muted

    def _fill_add_track_request(
        self, request: proto_rtc.AddTrackRequest, options: TrackPublishOptions
    ) -> None:
        config = self._encoder_config(options)
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

    def _encoder_config(self, options: TrackPublishOptions) -> VideoEncoderConfig:
        source = self._source
        return video_encoder_config(
            options, source.width, source.height, screencast=source.is_screencast
        )

    def _media_track(self) -> MediaStreamTrack:
        if self._rtc.readyState == "ended":
            from ..webrtc.source_tracks import VideoSourceTrack

            self._rtc = VideoSourceTrack(self._source)
            self._rtc.muted = self._muted
        return self._rtc

    def _frame_source(self) -> FrameFanout:
        return self._rtc._sent


class RemoteTrack(Track):
    """A track of another participant that we are subscribed to."""

    def __init__(self, info: proto_models.TrackInfo, rtc_track: MediaStreamTrack) -> None:
        super().__init__(info.name, KIND_FROM_PROTO.get(info.type, TrackKind.KIND_UNKNOWN))
        self._sid = info.sid
        self._muted = info.muted
        self._rtc = rtc_track
        self._reader = TrackReader(rtc_track)
        self._receiver: RTCRtpReceiver | None = None

    def _start(self) -> None:
        self._reader.start()

    async def _end(self) -> None:
        """Stop reading: streams over this track end. The aiortc track may be reused."""
        await self._reader.aclose()

    def _media_track(self) -> MediaStreamTrack:
        return self._rtc

    def _frame_source(self) -> FrameFanout:
        return self._reader

    async def get_stats(self) -> list[Any]:
        receiver = self._receiver
        if receiver is None:
            return []
        report = await receiver.getStats()
        stats = list(report.values())
        if isinstance(self._rtc, PlayoutTrack):
            playout = self._rtc.playout  # W3C audio fields from our jitter buffer
            stats = [
                playout.inbound_stats(s) if isinstance(s, RTCInboundRtpStreamStats) else s
                for s in stats
            ]
        return stats


class RemoteAudioTrack(RemoteTrack):
    """Audio of another participant."""


class RemoteVideoTrack(RemoteTrack):
    """Video of another participant."""


AudioTrack = LocalAudioTrack | RemoteAudioTrack
"""Any audio track."""
VideoTrack = LocalVideoTrack | RemoteVideoTrack
"""Any video track."""
