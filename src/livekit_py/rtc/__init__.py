"""The livekit.rtc API: every public name, in modules named as the official SDK's.

``from livekit_py import rtc`` and ``from livekit_py.rtc.<module> import <name>`` work as
``from livekit import rtc`` and ``from livekit.rtc.<module> import <name>`` do.
"""

from ..errors import ConnectError
from ..types import *  # noqa: F403
from ..types import __all__ as _types_all
from ..version import __version__
from .apm import AudioProcessingModule
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
from .e2ee import E2EEManager, E2EEOptions, FrameCryptor, KeyProvider, KeyProviderOptions
from .event_emitter import EventEmitter
from .frame_processor import FrameProcessor
from .media_devices import MediaDevices
from .participant import DegradationPreference, LocalParticipant, Participant, RemoteParticipant
from .room import (
    DataPacket,
    EventTypes,
    Room,
    RoomOptions,
    RtcConfiguration,
    RtcStats,
    SipDTMF,
)
from .rpc import RpcError, RpcInvocationData
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
    "DegradationPreference",
    "E2EEManager",
    "E2EEOptions",
    "EventEmitter",
    "EventTypes",
    "FrameCryptor",
    "FrameProcessor",
    "KeyProvider",
    "KeyProviderOptions",
    "LocalAudioTrack",
    "LocalParticipant",
    "LocalTrack",
    "LocalTrackPublication",
    "LocalVideoTrack",
    "MediaDevices",
    "NoiseCancellationOptions",
    "Participant",
    "RemoteAudioTrack",
    "RemoteParticipant",
    "RemoteTrack",
    "RemoteTrackPublication",
    "RemoteVideoTrack",
    "Room",
    "RoomOptions",
    "RtcConfiguration",
    "RpcError",
    "RpcInvocationData",
    "RtcStats",
    "SipDTMF",
    "StreamError",
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
