from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNKNOWN: _ClassVar[TrackKind]
    KIND_AUDIO: _ClassVar[TrackKind]
    KIND_VIDEO: _ClassVar[TrackKind]

class TrackSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNKNOWN: _ClassVar[TrackSource]
    SOURCE_CAMERA: _ClassVar[TrackSource]
    SOURCE_MICROPHONE: _ClassVar[TrackSource]
    SOURCE_SCREENSHARE: _ClassVar[TrackSource]
    SOURCE_SCREENSHARE_AUDIO: _ClassVar[TrackSource]

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNKNOWN: _ClassVar[StreamState]
    STATE_ACTIVE: _ClassVar[StreamState]
    STATE_PAUSED: _ClassVar[StreamState]

class ConnectionQuality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_POOR: _ClassVar[ConnectionQuality]
    QUALITY_GOOD: _ClassVar[ConnectionQuality]
    QUALITY_EXCELLENT: _ClassVar[ConnectionQuality]
    QUALITY_LOST: _ClassVar[ConnectionQuality]

class ConnectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONN_DISCONNECTED: _ClassVar[ConnectionState]
    CONN_CONNECTED: _ClassVar[ConnectionState]
    CONN_RECONNECTING: _ClassVar[ConnectionState]

class DataPacketKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_LOSSY: _ClassVar[DataPacketKind]
    KIND_RELIABLE: _ClassVar[DataPacketKind]

class DisconnectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN_REASON: _ClassVar[DisconnectReason]
    CLIENT_INITIATED: _ClassVar[DisconnectReason]
    DUPLICATE_IDENTITY: _ClassVar[DisconnectReason]
    SERVER_SHUTDOWN: _ClassVar[DisconnectReason]
    PARTICIPANT_REMOVED: _ClassVar[DisconnectReason]
    ROOM_DELETED: _ClassVar[DisconnectReason]
    STATE_MISMATCH: _ClassVar[DisconnectReason]
    JOIN_FAILURE: _ClassVar[DisconnectReason]
    MIGRATION: _ClassVar[DisconnectReason]
    SIGNAL_CLOSE: _ClassVar[DisconnectReason]
    ROOM_CLOSED: _ClassVar[DisconnectReason]
    USER_UNAVAILABLE: _ClassVar[DisconnectReason]
    USER_REJECTED: _ClassVar[DisconnectReason]
    SIP_TRUNK_FAILURE: _ClassVar[DisconnectReason]
    CONNECTION_TIMEOUT: _ClassVar[DisconnectReason]
    MEDIA_FAILURE: _ClassVar[DisconnectReason]
    AGENT_ERROR: _ClassVar[DisconnectReason]

class ParticipantKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_KIND_STANDARD: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_INGRESS: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_EGRESS: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_SIP: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_AGENT: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_CONNECTOR: _ClassVar[ParticipantKind]
    PARTICIPANT_KIND_BRIDGE: _ClassVar[ParticipantKind]

class ParticipantKindDetail(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_KIND_DETAIL_CLOUD_AGENT: _ClassVar[ParticipantKindDetail]
    PARTICIPANT_KIND_DETAIL_FORWARDED: _ClassVar[ParticipantKindDetail]
    PARTICIPANT_KIND_DETAIL_CONNECTOR_WHATSAPP: _ClassVar[ParticipantKindDetail]
    PARTICIPANT_KIND_DETAIL_CONNECTOR_TWILIO: _ClassVar[ParticipantKindDetail]
    PARTICIPANT_KIND_DETAIL_BRIDGE_RTSP: _ClassVar[ParticipantKindDetail]
    PARTICIPANT_KIND_DETAIL_SIMULATION: _ClassVar[ParticipantKindDetail]

class ParticipantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_STATE_JOINING: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_JOINED: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_ACTIVE: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_DISCONNECTED: _ClassVar[ParticipantState]

class EncryptionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NONE: _ClassVar[EncryptionType]
    GCM: _ClassVar[EncryptionType]
    CUSTOM: _ClassVar[EncryptionType]

class EncryptionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEW: _ClassVar[EncryptionState]
    OK: _ClassVar[EncryptionState]
    ENCRYPTION_FAILED: _ClassVar[EncryptionState]
    DECRYPTION_FAILED: _ClassVar[EncryptionState]
    MISSING_KEY: _ClassVar[EncryptionState]
    KEY_RATCHETED: _ClassVar[EncryptionState]
    INTERNAL_ERROR: _ClassVar[EncryptionState]

class KeyDerivationFunction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PBKDF2: _ClassVar[KeyDerivationFunction]
    HKDF: _ClassVar[KeyDerivationFunction]

class IceTransportType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_RELAY: _ClassVar[IceTransportType]
    TRANSPORT_NOHOST: _ClassVar[IceTransportType]
    TRANSPORT_ALL: _ClassVar[IceTransportType]

class ContinualGatheringPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GATHER_ONCE: _ClassVar[ContinualGatheringPolicy]
    GATHER_CONTINUALLY: _ClassVar[ContinualGatheringPolicy]

class VideoBufferType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RGBA: _ClassVar[VideoBufferType]
    ABGR: _ClassVar[VideoBufferType]
    ARGB: _ClassVar[VideoBufferType]
    BGRA: _ClassVar[VideoBufferType]
    RGB24: _ClassVar[VideoBufferType]
    I420: _ClassVar[VideoBufferType]
    I420A: _ClassVar[VideoBufferType]
    I422: _ClassVar[VideoBufferType]
    I444: _ClassVar[VideoBufferType]
    I010: _ClassVar[VideoBufferType]
    NV12: _ClassVar[VideoBufferType]

class VideoCodec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VP8: _ClassVar[VideoCodec]
    H264: _ClassVar[VideoCodec]
    AV1: _ClassVar[VideoCodec]
    VP9: _ClassVar[VideoCodec]
    H265: _ClassVar[VideoCodec]

class EncodedFrameType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODED_FRAME_KEY: _ClassVar[EncodedFrameType]
    ENCODED_FRAME_DELTA: _ClassVar[EncodedFrameType]

class VideoEncoderBackend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODER_BACKEND_AUTO: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_SOFTWARE: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_HARDWARE: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_NVENC: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_VAAPI: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_VIDEOTOOLBOX: _ClassVar[VideoEncoderBackend]
    ENCODER_BACKEND_PRE_ENCODED: _ClassVar[VideoEncoderBackend]

class DegradationPreference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADATION_PREFERENCE_BALANCED: _ClassVar[DegradationPreference]
    DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE: _ClassVar[DegradationPreference]
    DEGRADATION_PREFERENCE_MAINTAIN_RESOLUTION: _ClassVar[DegradationPreference]
    DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE_AND_RESOLUTION: _ClassVar[DegradationPreference]

class FrameMetadataFeature(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FMF_USER_TIMESTAMP: _ClassVar[FrameMetadataFeature]
    FMF_FRAME_ID: _ClassVar[FrameMetadataFeature]
    FMF_USER_DATA: _ClassVar[FrameMetadataFeature]

class VideoQuality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIDEO_QUALITY_LOW: _ClassVar[VideoQuality]
    VIDEO_QUALITY_MEDIUM: _ClassVar[VideoQuality]
    VIDEO_QUALITY_HIGH: _ClassVar[VideoQuality]

class VideoRotation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIDEO_ROTATION_0: _ClassVar[VideoRotation]
    VIDEO_ROTATION_90: _ClassVar[VideoRotation]
    VIDEO_ROTATION_180: _ClassVar[VideoRotation]
    VIDEO_ROTATION_270: _ClassVar[VideoRotation]

class SimulateScenarioKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIMULATE_SIGNAL_RECONNECT: _ClassVar[SimulateScenarioKind]
    SIMULATE_SPEAKER: _ClassVar[SimulateScenarioKind]
    SIMULATE_NODE_FAILURE: _ClassVar[SimulateScenarioKind]
    SIMULATE_SERVER_LEAVE: _ClassVar[SimulateScenarioKind]
    SIMULATE_MIGRATION: _ClassVar[SimulateScenarioKind]
    SIMULATE_FORCE_TCP: _ClassVar[SimulateScenarioKind]
    SIMULATE_FORCE_TLS: _ClassVar[SimulateScenarioKind]
    SIMULATE_FULL_RECONNECT: _ClassVar[SimulateScenarioKind]
    SIMULATE_DISCONNECT_SIGNAL_ON_RESUME: _ClassVar[SimulateScenarioKind]

class AudioFeature(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TF_STEREO: _ClassVar[AudioFeature]
    TF_NO_DTX: _ClassVar[AudioFeature]
    TF_AUTO_GAIN_CONTROL: _ClassVar[AudioFeature]
    TF_ECHO_CANCELLATION: _ClassVar[AudioFeature]
    TF_NOISE_SUPPRESSION: _ClassVar[AudioFeature]
    TF_ENHANCED_NOISE_CANCELLATION: _ClassVar[AudioFeature]
    TF_PRECONNECT_BUFFER: _ClassVar[AudioFeature]
KIND_UNKNOWN: TrackKind
KIND_AUDIO: TrackKind
KIND_VIDEO: TrackKind
SOURCE_UNKNOWN: TrackSource
SOURCE_CAMERA: TrackSource
SOURCE_MICROPHONE: TrackSource
SOURCE_SCREENSHARE: TrackSource
SOURCE_SCREENSHARE_AUDIO: TrackSource
STATE_UNKNOWN: StreamState
STATE_ACTIVE: StreamState
STATE_PAUSED: StreamState
QUALITY_POOR: ConnectionQuality
QUALITY_GOOD: ConnectionQuality
QUALITY_EXCELLENT: ConnectionQuality
QUALITY_LOST: ConnectionQuality
CONN_DISCONNECTED: ConnectionState
CONN_CONNECTED: ConnectionState
CONN_RECONNECTING: ConnectionState
KIND_LOSSY: DataPacketKind
KIND_RELIABLE: DataPacketKind
UNKNOWN_REASON: DisconnectReason
CLIENT_INITIATED: DisconnectReason
DUPLICATE_IDENTITY: DisconnectReason
SERVER_SHUTDOWN: DisconnectReason
PARTICIPANT_REMOVED: DisconnectReason
ROOM_DELETED: DisconnectReason
STATE_MISMATCH: DisconnectReason
JOIN_FAILURE: DisconnectReason
MIGRATION: DisconnectReason
SIGNAL_CLOSE: DisconnectReason
ROOM_CLOSED: DisconnectReason
USER_UNAVAILABLE: DisconnectReason
USER_REJECTED: DisconnectReason
SIP_TRUNK_FAILURE: DisconnectReason
CONNECTION_TIMEOUT: DisconnectReason
MEDIA_FAILURE: DisconnectReason
AGENT_ERROR: DisconnectReason
PARTICIPANT_KIND_STANDARD: ParticipantKind
PARTICIPANT_KIND_INGRESS: ParticipantKind
PARTICIPANT_KIND_EGRESS: ParticipantKind
PARTICIPANT_KIND_SIP: ParticipantKind
PARTICIPANT_KIND_AGENT: ParticipantKind
PARTICIPANT_KIND_CONNECTOR: ParticipantKind
PARTICIPANT_KIND_BRIDGE: ParticipantKind
PARTICIPANT_KIND_DETAIL_CLOUD_AGENT: ParticipantKindDetail
PARTICIPANT_KIND_DETAIL_FORWARDED: ParticipantKindDetail
PARTICIPANT_KIND_DETAIL_CONNECTOR_WHATSAPP: ParticipantKindDetail
PARTICIPANT_KIND_DETAIL_CONNECTOR_TWILIO: ParticipantKindDetail
PARTICIPANT_KIND_DETAIL_BRIDGE_RTSP: ParticipantKindDetail
PARTICIPANT_KIND_DETAIL_SIMULATION: ParticipantKindDetail
PARTICIPANT_STATE_JOINING: ParticipantState
PARTICIPANT_STATE_JOINED: ParticipantState
PARTICIPANT_STATE_ACTIVE: ParticipantState
PARTICIPANT_STATE_DISCONNECTED: ParticipantState
NONE: EncryptionType
GCM: EncryptionType
CUSTOM: EncryptionType
NEW: EncryptionState
OK: EncryptionState
ENCRYPTION_FAILED: EncryptionState
DECRYPTION_FAILED: EncryptionState
MISSING_KEY: EncryptionState
KEY_RATCHETED: EncryptionState
INTERNAL_ERROR: EncryptionState
PBKDF2: KeyDerivationFunction
HKDF: KeyDerivationFunction
TRANSPORT_RELAY: IceTransportType
TRANSPORT_NOHOST: IceTransportType
TRANSPORT_ALL: IceTransportType
GATHER_ONCE: ContinualGatheringPolicy
GATHER_CONTINUALLY: ContinualGatheringPolicy
RGBA: VideoBufferType
ABGR: VideoBufferType
ARGB: VideoBufferType
BGRA: VideoBufferType
RGB24: VideoBufferType
I420: VideoBufferType
I420A: VideoBufferType
I422: VideoBufferType
I444: VideoBufferType
I010: VideoBufferType
NV12: VideoBufferType
VP8: VideoCodec
H264: VideoCodec
AV1: VideoCodec
VP9: VideoCodec
H265: VideoCodec
ENCODED_FRAME_KEY: EncodedFrameType
ENCODED_FRAME_DELTA: EncodedFrameType
ENCODER_BACKEND_AUTO: VideoEncoderBackend
ENCODER_BACKEND_SOFTWARE: VideoEncoderBackend
ENCODER_BACKEND_HARDWARE: VideoEncoderBackend
ENCODER_BACKEND_NVENC: VideoEncoderBackend
ENCODER_BACKEND_VAAPI: VideoEncoderBackend
ENCODER_BACKEND_VIDEOTOOLBOX: VideoEncoderBackend
ENCODER_BACKEND_PRE_ENCODED: VideoEncoderBackend
DEGRADATION_PREFERENCE_BALANCED: DegradationPreference
DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE: DegradationPreference
DEGRADATION_PREFERENCE_MAINTAIN_RESOLUTION: DegradationPreference
DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE_AND_RESOLUTION: DegradationPreference
FMF_USER_TIMESTAMP: FrameMetadataFeature
FMF_FRAME_ID: FrameMetadataFeature
FMF_USER_DATA: FrameMetadataFeature
VIDEO_QUALITY_LOW: VideoQuality
VIDEO_QUALITY_MEDIUM: VideoQuality
VIDEO_QUALITY_HIGH: VideoQuality
VIDEO_ROTATION_0: VideoRotation
VIDEO_ROTATION_90: VideoRotation
VIDEO_ROTATION_180: VideoRotation
VIDEO_ROTATION_270: VideoRotation
SIMULATE_SIGNAL_RECONNECT: SimulateScenarioKind
SIMULATE_SPEAKER: SimulateScenarioKind
SIMULATE_NODE_FAILURE: SimulateScenarioKind
SIMULATE_SERVER_LEAVE: SimulateScenarioKind
SIMULATE_MIGRATION: SimulateScenarioKind
SIMULATE_FORCE_TCP: SimulateScenarioKind
SIMULATE_FORCE_TLS: SimulateScenarioKind
SIMULATE_FULL_RECONNECT: SimulateScenarioKind
SIMULATE_DISCONNECT_SIGNAL_ON_RESUME: SimulateScenarioKind
TF_STEREO: AudioFeature
TF_NO_DTX: AudioFeature
TF_AUTO_GAIN_CONTROL: AudioFeature
TF_ECHO_CANCELLATION: AudioFeature
TF_NOISE_SUPPRESSION: AudioFeature
TF_ENHANCED_NOISE_CANCELLATION: AudioFeature
TF_PRECONNECT_BUFFER: AudioFeature

class FrameMetadata(_message.Message):
    __slots__ = ("user_timestamp", "frame_id", "user_data")
    USER_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    user_timestamp: int
    frame_id: int
    user_data: bytes
    def __init__(self, user_timestamp: _Optional[int] = ..., frame_id: _Optional[int] = ..., user_data: _Optional[bytes] = ...) -> None: ...

class VideoEncoding(_message.Message):
    __slots__ = ("max_bitrate", "max_framerate")
    MAX_BITRATE_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMERATE_FIELD_NUMBER: _ClassVar[int]
    max_bitrate: int
    max_framerate: float
    def __init__(self, max_bitrate: _Optional[int] = ..., max_framerate: _Optional[float] = ...) -> None: ...

class AudioEncoding(_message.Message):
    __slots__ = ("max_bitrate",)
    MAX_BITRATE_FIELD_NUMBER: _ClassVar[int]
    max_bitrate: int
    def __init__(self, max_bitrate: _Optional[int] = ...) -> None: ...

class TrackPublishOptions(_message.Message):
    __slots__ = ("video_encoding", "audio_encoding", "video_codec", "dtx", "red", "simulcast", "source", "stream", "preconnect_buffer", "frame_metadata_features", "scalability_mode", "video_encoder", "degradation_preference")
    VIDEO_ENCODING_FIELD_NUMBER: _ClassVar[int]
    AUDIO_ENCODING_FIELD_NUMBER: _ClassVar[int]
    VIDEO_CODEC_FIELD_NUMBER: _ClassVar[int]
    DTX_FIELD_NUMBER: _ClassVar[int]
    RED_FIELD_NUMBER: _ClassVar[int]
    SIMULCAST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    PRECONNECT_BUFFER_FIELD_NUMBER: _ClassVar[int]
    FRAME_METADATA_FEATURES_FIELD_NUMBER: _ClassVar[int]
    SCALABILITY_MODE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ENCODER_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    video_encoding: VideoEncoding
    audio_encoding: AudioEncoding
    video_codec: VideoCodec
    dtx: bool
    red: bool
    simulcast: bool
    source: TrackSource
    stream: str
    preconnect_buffer: bool
    frame_metadata_features: _containers.RepeatedScalarFieldContainer[FrameMetadataFeature]
    scalability_mode: str
    video_encoder: VideoEncoderBackend
    degradation_preference: DegradationPreference
    def __init__(self, video_encoding: _Optional[_Union[VideoEncoding, _Mapping]] = ..., audio_encoding: _Optional[_Union[AudioEncoding, _Mapping]] = ..., video_codec: _Optional[_Union[VideoCodec, str]] = ..., dtx: bool = ..., red: bool = ..., simulcast: bool = ..., source: _Optional[_Union[TrackSource, str]] = ..., stream: _Optional[str] = ..., preconnect_buffer: bool = ..., frame_metadata_features: _Optional[_Iterable[_Union[FrameMetadataFeature, str]]] = ..., scalability_mode: _Optional[str] = ..., video_encoder: _Optional[_Union[VideoEncoderBackend, str]] = ..., degradation_preference: _Optional[_Union[DegradationPreference, str]] = ...) -> None: ...

class IceServer(_message.Message):
    __slots__ = ("urls", "username", "password")
    URLS_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    urls: _containers.RepeatedScalarFieldContainer[str]
    username: str
    password: str
    def __init__(self, urls: _Optional[_Iterable[str]] = ..., username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class ParticipantTrackPermission(_message.Message):
    __slots__ = ("participant_identity", "allow_all", "allowed_track_sids")
    PARTICIPANT_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ALL_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TRACK_SIDS_FIELD_NUMBER: _ClassVar[int]
    participant_identity: str
    allow_all: bool
    allowed_track_sids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, participant_identity: _Optional[str] = ..., allow_all: bool = ..., allowed_track_sids: _Optional[_Iterable[str]] = ...) -> None: ...
