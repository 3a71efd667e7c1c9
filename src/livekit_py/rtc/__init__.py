"""The livekit.rtc API: every public name, in modules named as the official SDK's.

``from livekit_py import rtc`` and ``from livekit_py.rtc.<module> import <name>`` work as
``from livekit import rtc`` and ``from livekit.rtc.<module> import <name>`` do.
"""

from ..errors import ConnectError
from ..types import *  # noqa: F403
from ..types import __all__ as _types_all
from ..version import __version__
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

# the official IntEnum (with QUALITY_UNKNOWN) replaces the protobuf enum of ..types
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


from . import stats as stats
