"""livekit-py: a pure-Python LiveKit client SDK with the livekit.rtc API.

Everything is importable from the package top level and from ``livekit_py.rtc``::

    from livekit_py import rtc

    room = rtc.Room()
"""

from .errors import ConnectError
from .event_emitter import EventEmitter
from .media.apm import AudioProcessingModule
from .media.audio_frame import AudioFrame, AudioFrameEvent, combine_audio_frames
from .media.audio_mixer import AudioMixer
from .media.audio_resampler import AudioResampler, AudioResamplerQuality
from .media.audio_source import AudioSource
from .media.audio_stream import AudioStream
from .media.av_sync import AVSynchronizer
from .media.frame_processor import FrameProcessor, NoiseCancellationOptions
from .media.media_devices import MediaDevices
from .media.video_frame import VideoFrame
from .media.video_source import VideoSource
from .media.video_stream import VideoFrameEvent, VideoStream
from .room.data_stream import (
    ByteStreamInfo,
    ByteStreamReader,
    ByteStreamWriter,
    StreamError,
    TextStreamInfo,
    TextStreamReader,
    TextStreamWriter,
)
from .room.options import (
    DataPacket,
    E2EEOptions,
    KeyProviderOptions,
    RoomOptions,
    RtcConfiguration,
    RtcStats,
    SipDTMF,
)
from .room.participant import LocalParticipant, Participant, RemoteParticipant
from .room.publication import LocalTrackPublication, RemoteTrackPublication, TrackPublication
from .room.room import EventTypes, Room
from .room.rpc import RpcError, RpcInvocationData
from .room.track import (
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
from .room.transcription import Transcription, TranscriptionSegment
from .types import *  # noqa: F403
from .types import __all__ as _types_all
from .version import __version__

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
    "E2EEOptions",
    "EventEmitter",
    "EventTypes",
    "FrameProcessor",
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

# The same names again as livekit_py.rtc, and the statistics types as livekit_py.stats.
from . import stats as stats  # noqa: I001
from . import rtc as rtc
