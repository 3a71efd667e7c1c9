"""Track publications: what the server knows about a published track."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..types import EncryptionType, TrackKind, TrackPublishOptions, TrackSource
from .track import KIND_FROM_PROTO, LocalTrack, RemoteTrack, Track

if TYPE_CHECKING:
    from ..session.ports import SignalPort

# livekit-protocol TrackSource -> public TrackSource (the same numbers, kept explicit)
SOURCE_FROM_PROTO: dict[int, int] = {
    proto_models.TrackSource.UNKNOWN: TrackSource.SOURCE_UNKNOWN,
    proto_models.TrackSource.CAMERA: TrackSource.SOURCE_CAMERA,
    proto_models.TrackSource.MICROPHONE: TrackSource.SOURCE_MICROPHONE,
    proto_models.TrackSource.SCREEN_SHARE: TrackSource.SOURCE_SCREENSHARE,
    proto_models.TrackSource.SCREEN_SHARE_AUDIO: TrackSource.SOURCE_SCREENSHARE_AUDIO,
}
SOURCE_TO_PROTO: dict[int, int] = {v: k for k, v in SOURCE_FROM_PROTO.items()}


class TrackPublication:
    """A published track as the server describes it: a view of its TrackInfo.

    ``info`` is kept, not copied: the room model updates it in place.
    """

    def __init__(self, info: proto_models.TrackInfo) -> None:
        self._info = info
        self._track: Track | None = None

    @property
    def sid(self) -> str:
        return self._info.sid

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def kind(self) -> int:
        """A :class:`TrackKind` value."""
        return KIND_FROM_PROTO.get(self._info.type, TrackKind.KIND_UNKNOWN)

    @property
    def source(self) -> int:
        """A :class:`TrackSource` value."""
        return SOURCE_FROM_PROTO.get(self._info.source, TrackSource.SOURCE_UNKNOWN)

    @property
    def mime_type(self) -> str:
        return self._info.mime_type

    @property
    def muted(self) -> bool:
        return self._info.muted

    @property
    def simulcasted(self) -> bool:
        return self._info.simulcast

    @property
    def width(self) -> int:
        return self._info.width

    @property
    def height(self) -> int:
        return self._info.height

    @property
    def encryption_type(self) -> int:
        """An :class:`EncryptionType` value: GCM for a track published end-to-end encrypted."""
        return int(self._info.encryption) or EncryptionType.NONE

    @property
    def audio_features(self) -> list[int]:
        """:class:`AudioFeature` values of an audio track (stereo, no DTX, ...)."""
        return [int(f) for f in self._info.audio_features]

    @property
    def frame_metadata_features(self) -> list[int]:
        """:class:`FrameMetadataFeature` values the publisher sends with its video frames.

        What the track was published with (``TrackPublishOptions.frame_metadata_features``,
        the server's ``TrackInfo.packet_trailer_features``); empty when none.
        """
        return [int(f) for f in self._info.packet_trailer_features]

    @property
    def track(self) -> Track | None:
        return self._track

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sid={self.sid!r}, name={self.name!r}, kind={self.kind})"


class LocalTrackPublication(TrackPublication):
    """One of our own tracks, as published."""

    def __init__(self, info: proto_models.TrackInfo, track: LocalTrack) -> None:
        super().__init__(info)
        self._track = track
        self._subscribed = asyncio.Event()
        self._transceiver: Any = None  # the publisher's aiortc RTCRtpTransceiver
        self._options = TrackPublishOptions()  # how it was published (a full reconnect reuses it)

    @property
    def track(self) -> LocalTrack | None:
        track = self._track
        return track if isinstance(track, LocalTrack) else None

    async def wait_for_subscription(self) -> None:
        """Wait until at least one other participant has subscribed to this track."""
        await self._subscribed.wait()


class RemoteTrackPublication(TrackPublication):
    """A track published by another participant."""

    def __init__(
        self,
        info: proto_models.TrackInfo,
        participant_sid: str = "",
        signal: SignalPort | None = None,
    ) -> None:
        super().__init__(info)
        self._participant_sid = participant_sid
        self._signal = signal
        self._subscribed = False
        self._wants_subscription: bool | None = None
        # what we asked the server for this subscription (layer, paused)
        # (the JS SDK's default: the HIGH layer unless a quality was asked for)
        self._track_settings = proto_rtc.UpdateTrackSettings(quality=proto_models.VideoQuality.HIGH)
        # whether set_video_quality or set_enabled was called: only then are the settings
        # sent again after a reconnect (otherwise the server's default, LOW with
        # adaptive_stream and HIGH without, is left alone)
        self._settings_chosen = False

    @property
    def track(self) -> RemoteTrack | None:
        track = self._track
        return track if isinstance(track, RemoteTrack) else None

    @property
    def subscribed(self) -> bool:
        """True while we receive the track."""
        return self._track is not None

    def set_subscribed(self, subscribed: bool) -> None:
        """Ask the server to start (True) or stop (False) sending this track to us.

        ``track_subscribed``/``track_unsubscribed`` follow once it has done so.
        """
        self._wants_subscription = bool(subscribed)
        signal = self._signal
        if signal is None:
            raise ConnectionError("the room is not connected")
        request = proto_rtc.UpdateSubscription(
            track_sids=[self.sid],
            subscribe=bool(subscribed),
            participant_tracks=[
                proto_models.ParticipantTracks(
                    participant_sid=self._participant_sid, track_sids=[self.sid]
                )
            ],
        )
        signal.send_signal_soon(proto_rtc.SignalRequest(subscription=request))

    def set_video_quality(self, quality: int) -> None:
        """Ask the server for one simulcast layer of this video track.

        ``quality`` is a :class:`VideoQuality` value: ``VIDEO_QUALITY_LOW`` (q),
        ``VIDEO_QUALITY_MEDIUM`` (h) or ``VIDEO_QUALITY_HIGH`` (f). The server switches
        at the layer's next key frame.

        Raises:
            ValueError: If the publication is not video, not simulcast (as in the
                official SDK), or ``quality`` is not a VideoQuality value.
            ConnectionError: If the room is not connected.
        """
        if self.kind != TrackKind.KIND_VIDEO:
            raise ValueError(
                f"set_video_quality is only supported on video publications (sid={self.sid})"
            )
        if not self.simulcasted:
            raise ValueError(
                f"set_video_quality requires a simulcasted publication (sid={self.sid})"
            )
        if isinstance(quality, bool) or quality not in (0, 1, 2):
            raise ValueError(f"quality must be a VideoQuality value (0, 1 or 2), got {quality!r}")
        self._track_settings.quality = int(quality)  # type: ignore[assignment]
        self._settings_chosen = True
        self._send_track_settings()

    def set_enabled(self, enabled: bool) -> None:
        """Pause (False) or resume (True) the media of this subscription, staying subscribed.

        Raises:
            ConnectionError: If the room is not connected.
        """
        self._track_settings.disabled = not enabled
        self._settings_chosen = True
        self._send_track_settings()

    def _chosen_track_settings(self) -> proto_rtc.UpdateTrackSettings | None:
        """What :meth:`set_video_quality` / :meth:`set_enabled` asked for, or None.

        A new server session knows nothing of them (a full reconnect, a resume the
        server turned into a new session): the room sends them again.
        """
        if not self._settings_chosen:
            return None
        settings = proto_rtc.UpdateTrackSettings()
        settings.CopyFrom(self._track_settings)
        settings.track_sids[:] = [self.sid]
        return settings

    def _send_track_settings(self) -> None:
        signal = self._signal
        if signal is None:
            raise ConnectionError("the room is not connected")
        settings = self._chosen_track_settings()
        assert settings is not None
        signal.send_signal_soon(proto_rtc.SignalRequest(track_setting=settings))
