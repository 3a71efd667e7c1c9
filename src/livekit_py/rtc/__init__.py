"""The livekit.rtc API: every public name, in modules named as the official SDK's.

``from livekit_py import rtc`` and ``from livekit_py.rtc.<module> import <name>`` work as
``from livekit import rtc`` and ``from livekit.rtc.<module> import <name>`` do.

Importing this package loads none of the heavy parts (aiortc, PyAV, numpy, scipy): each
public name is imported from its module when it is first used (PEP 562), and so is each
submodule (``rtc.stats``, ``rtc.utils``, ...). Type checkers see the plain imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ConnectError
from ..types import *  # noqa: F403
from ..types import __all__ as _types_all
from ..version import __version__

if TYPE_CHECKING:
    from . import stats as stats
    from .apm import AudioProcessingModule
    from .audio_filter import AudioFilter
    from .audio_frame import AudioFrame
    from .audio_mixer import AudioMixer
    from .audio_resampler import AudioResampler, AudioResamplerQuality
    from .audio_source import AudioSource
    from .audio_stream import AudioFrameEvent, AudioStream, NoiseCancellationOptions
    from .data_stream import (
        ByteStreamInfo,
        ByteStreamReader,
        ByteStreamWriter,
        StreamError,
        TextStreamInfo,
        TextStreamReader,
        TextStreamWriter,
    )
    from .data_track import (
        DataTrackFrame,
        DataTrackInfo,
        DataTrackStream,
        LocalDataTrack,
        PushFrameError,
        RemoteDataTrack,
        SubscribeDataTrackError,
    )
    from .e2ee import E2EEManager, E2EEOptions, FrameCryptor, KeyProvider, KeyProviderOptions
    from .encoded_video import (
        EncodedRateControl,
        EncodedVideoFrame,
        EncodedVideoSource,
        EncodedVideoSourceFeedback,
    )
    from .event_emitter import EventEmitter
    from .frame_processor import FrameProcessor
    from .media_devices import MediaDevices
    from .participant import ConnectionQuality as ConnectionQuality  # type: ignore[assignment]
    from .participant import DegradationPreference, LocalParticipant, Participant, RemoteParticipant
    from .platform_audio import (
        AudioDeviceInfo,
        PlatformAudio,
        PlatformAudioError,
        PlatformAudioOptions,
        PlatformAudioSource,
    )
    from .room import (
        DataPacket,
        DataStreamOptions,
        EventTypes,
        Room,
        RoomOptions,
        RtcConfiguration,
        RtcStats,
        SipDTMF,
    )
    from .rpc import RpcCallInfo, RpcError, RpcInterceptor, RpcInvocationData
    from .synchronizer import AVSynchronizer
    from .track import (
        AudioTrack,
        LocalAudioTrack,
        LocalTrack,
        LocalVideoTrack,
        RemoteAudioTrack,
        RemoteTrack,
        RemoteVideoTrack,
        Track,
        VideoTrack,
    )
    from .track_publication import LocalTrackPublication, RemoteTrackPublication, TrackPublication
    from .transcription import Transcription, TranscriptionSegment
    from .utils import combine_audio_frames
    from .video_frame import VideoFrame
    from .video_source import VideoSource
    from .video_stream import VideoFrameEvent, VideoStream

# public name -> the module of this package it is defined in
_LAZY: dict[str, str] = {
    "AVSynchronizer": ".synchronizer",
    "AudioDeviceInfo": ".platform_audio",
    "AudioFilter": ".audio_filter",
    "AudioFrame": ".audio_frame",
    "AudioFrameEvent": ".audio_stream",
    "AudioMixer": ".audio_mixer",
    "AudioProcessingModule": ".apm",
    "AudioResampler": ".audio_resampler",
    "AudioResamplerQuality": ".audio_resampler",
    "AudioSource": ".audio_source",
    "AudioStream": ".audio_stream",
    "AudioTrack": ".track",
    "ByteStreamInfo": ".data_stream",
    "ByteStreamReader": ".data_stream",
    "ByteStreamWriter": ".data_stream",
    "ConnectionQuality": ".participant",
    "DataPacket": ".room",
    "DataStreamOptions": ".room",
    "DataTrackFrame": ".data_track",
    "DataTrackInfo": ".data_track",
    "DataTrackStream": ".data_track",
    "DegradationPreference": ".participant",
    "E2EEManager": ".e2ee",
    "E2EEOptions": ".e2ee",
    "EncodedRateControl": ".encoded_video",
    "EncodedVideoFrame": ".encoded_video",
    "EncodedVideoSource": ".encoded_video",
    "EncodedVideoSourceFeedback": ".encoded_video",
    "EventEmitter": ".event_emitter",
    "EventTypes": ".room",
    "FrameCryptor": ".e2ee",
    "FrameProcessor": ".frame_processor",
    "KeyProvider": ".e2ee",
    "KeyProviderOptions": ".e2ee",
    "LocalAudioTrack": ".track",
    "LocalDataTrack": ".data_track",
    "LocalParticipant": ".participant",
    "LocalTrack": ".track",
    "LocalTrackPublication": ".track_publication",
    "LocalVideoTrack": ".track",
    "MediaDevices": ".media_devices",
    "NoiseCancellationOptions": ".audio_stream",
    "Participant": ".participant",
    "PlatformAudio": ".platform_audio",
    "PlatformAudioError": ".platform_audio",
    "PlatformAudioOptions": ".platform_audio",
    "PlatformAudioSource": ".platform_audio",
    "PushFrameError": ".data_track",
    "RemoteAudioTrack": ".track",
    "RemoteDataTrack": ".data_track",
    "RemoteParticipant": ".participant",
    "RemoteTrack": ".track",
    "RemoteTrackPublication": ".track_publication",
    "RemoteVideoTrack": ".track",
    "Room": ".room",
    "RoomOptions": ".room",
    "RpcCallInfo": ".rpc",
    "RpcError": ".rpc",
    "RpcInterceptor": ".rpc",
    "RpcInvocationData": ".rpc",
    "RtcConfiguration": ".room",
    "RtcStats": ".room",
    "SipDTMF": ".room",
    "StreamError": ".data_stream",
    "SubscribeDataTrackError": ".data_track",
    "TextStreamInfo": ".data_stream",
    "TextStreamReader": ".data_stream",
    "TextStreamWriter": ".data_stream",
    "Track": ".track",
    "TrackPublication": ".track_publication",
    "Transcription": ".transcription",
    "TranscriptionSegment": ".transcription",
    "VideoFrame": ".video_frame",
    "VideoFrameEvent": ".video_stream",
    "VideoSource": ".video_source",
    "VideoStream": ".video_stream",
    "VideoTrack": ".track",
    "combine_audio_frames": ".utils",
}

# the names above that ..types has too are this package's own (ConnectionQuality: the
# official IntEnum with QUALITY_UNKNOWN, not the protobuf enum)
for _name in _LAZY:
    globals().pop(_name, None)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)  # a submodule: rtc.stats
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"stats"})


__all__ = [
    *_types_all,
    "AVSynchronizer",
    "AudioDeviceInfo",
    "AudioFilter",
    "AudioFrame",
    "AudioFrameEvent",
    "AudioMixer",
    "AudioProcessingModule",
    "AudioResampler",
    "AudioResamplerQuality",
    "AudioSource",
    "AudioStream",
    "AudioTrack",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "ConnectError",
    "DataPacket",
    "DataStreamOptions",
    "DataTrackFrame",
    "DataTrackInfo",
    "DataTrackStream",
    "DegradationPreference",
    "E2EEManager",
    "E2EEOptions",
    "EncodedRateControl",
    "EncodedVideoFrame",
    "EncodedVideoSource",
    "EncodedVideoSourceFeedback",
    "EventEmitter",
    "EventTypes",
    "FrameCryptor",
    "FrameProcessor",
    "KeyProvider",
    "KeyProviderOptions",
    "LocalAudioTrack",
    "LocalDataTrack",
    "LocalParticipant",
    "LocalTrack",
    "LocalTrackPublication",
    "LocalVideoTrack",
    "MediaDevices",
    "NoiseCancellationOptions",
    "Participant",
    "PlatformAudio",
    "PlatformAudioError",
    "PlatformAudioOptions",
    "PlatformAudioSource",
    "PushFrameError",
    "RemoteAudioTrack",
    "RemoteDataTrack",
    "RemoteParticipant",
    "RemoteTrack",
    "RemoteTrackPublication",
    "RemoteVideoTrack",
    "Room",
    "RoomOptions",
    "RtcConfiguration",
    "RpcCallInfo",
    "RpcError",
    "RpcInterceptor",
    "RpcInvocationData",
    "RtcStats",
    "SipDTMF",
    "StreamError",
    "SubscribeDataTrackError",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
    "Track",
    "TrackPublication",
    "Transcription",
    "TranscriptionSegment",
    "VideoFrame",
    "VideoFrameEvent",
    "VideoSource",
    "VideoStream",
    "VideoTrack",
    "__version__",
    "combine_audio_frames",
]
