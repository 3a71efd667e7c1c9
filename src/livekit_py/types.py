"""Public enums and option messages of the livekit.rtc API.

They are protobuf types (generated from ``protos/livekit_py_types.proto``) so
that they behave like the official SDK's: enum values are plain ints with
``Name``/``Value``/``items`` on the enum, and messages are constructible empty
or with keywords and assignable field by field.
"""

from __future__ import annotations

from ._proto.livekit_py_types_pb2 import (
    AudioEncoding,
    AudioFeature,
    ConnectionQuality,
    ConnectionState,
    ContinualGatheringPolicy,
    DataPacketKind,
    DisconnectReason,
    EncodedFrameType,
    EncryptionState,
    EncryptionType,
    FrameMetadata,
    FrameMetadataFeature,
    IceServer,
    IceTransportType,
    KeyDerivationFunction,
    ParticipantKind,
    ParticipantKindDetail,
    ParticipantState,
    ParticipantTrackPermission,
    SimulateScenarioKind,
    StreamState,
    TrackKind,
    TrackPublishOptions,
    TrackSource,
    VideoBufferType,
    VideoCodec,
    VideoEncoderBackend,
    VideoEncoding,
    VideoQuality,
    VideoRotation,
)

__all__ = [
    "AudioEncoding",
    "AudioFeature",
    "ConnectionQuality",
    "ConnectionState",
    "ContinualGatheringPolicy",
    "DataPacketKind",
    "DisconnectReason",
    "EncodedFrameType",
    "EncryptionState",
    "EncryptionType",
    "FrameMetadata",
    "FrameMetadataFeature",
    "IceServer",
    "IceTransportType",
    "KeyDerivationFunction",
    "ParticipantKind",
    "ParticipantKindDetail",
    "ParticipantState",
    "ParticipantTrackPermission",
    "SimulateScenarioKind",
    "StreamState",
    "TrackKind",
    "TrackPublishOptions",
    "TrackSource",
    "VideoBufferType",
    "VideoCodec",
    "VideoEncoderBackend",
    "VideoEncoding",
    "VideoQuality",
    "VideoRotation",
]
