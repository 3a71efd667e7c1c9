from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataChannelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DC_CONNECTING: _ClassVar[DataChannelState]
    DC_OPEN: _ClassVar[DataChannelState]
    DC_CLOSING: _ClassVar[DataChannelState]
    DC_CLOSED: _ClassVar[DataChannelState]

class QualityLimitationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIMITATION_NONE: _ClassVar[QualityLimitationReason]
    LIMITATION_CPU: _ClassVar[QualityLimitationReason]
    LIMITATION_BANDWIDTH: _ClassVar[QualityLimitationReason]
    LIMITATION_OTHER: _ClassVar[QualityLimitationReason]

class IceRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ICE_UNKNOWN: _ClassVar[IceRole]
    ICE_CONTROLLING: _ClassVar[IceRole]
    ICE_CONTROLLED: _ClassVar[IceRole]

class DtlsTransportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTLS_TRANSPORT_NEW: _ClassVar[DtlsTransportState]
    DTLS_TRANSPORT_CONNECTING: _ClassVar[DtlsTransportState]
    DTLS_TRANSPORT_CONNECTED: _ClassVar[DtlsTransportState]
    DTLS_TRANSPORT_CLOSED: _ClassVar[DtlsTransportState]
    DTLS_TRANSPORT_FAILED: _ClassVar[DtlsTransportState]

class IceTransportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ICE_TRANSPORT_NEW: _ClassVar[IceTransportState]
    ICE_TRANSPORT_CHECKING: _ClassVar[IceTransportState]
    ICE_TRANSPORT_CONNECTED: _ClassVar[IceTransportState]
    ICE_TRANSPORT_COMPLETED: _ClassVar[IceTransportState]
    ICE_TRANSPORT_DISCONNECTED: _ClassVar[IceTransportState]
    ICE_TRANSPORT_FAILED: _ClassVar[IceTransportState]
    ICE_TRANSPORT_CLOSED: _ClassVar[IceTransportState]

class DtlsRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTLS_CLIENT: _ClassVar[DtlsRole]
    DTLS_SERVER: _ClassVar[DtlsRole]
    DTLS_UNKNOWN: _ClassVar[DtlsRole]

class IceCandidatePairState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAIR_FROZEN: _ClassVar[IceCandidatePairState]
    PAIR_WAITING: _ClassVar[IceCandidatePairState]
    PAIR_IN_PROGRESS: _ClassVar[IceCandidatePairState]
    PAIR_FAILED: _ClassVar[IceCandidatePairState]
    PAIR_SUCCEEDED: _ClassVar[IceCandidatePairState]

class IceCandidateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST: _ClassVar[IceCandidateType]
    SRFLX: _ClassVar[IceCandidateType]
    PRFLX: _ClassVar[IceCandidateType]
    RELAY: _ClassVar[IceCandidateType]

class IceServerTransportProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_UDP: _ClassVar[IceServerTransportProtocol]
    TRANSPORT_TCP: _ClassVar[IceServerTransportProtocol]
    TRANSPORT_TLS: _ClassVar[IceServerTransportProtocol]

class IceTcpCandidateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_ACTIVE: _ClassVar[IceTcpCandidateType]
    CANDIDATE_PASSIVE: _ClassVar[IceTcpCandidateType]
    CANDIDATE_SO: _ClassVar[IceTcpCandidateType]
DC_CONNECTING: DataChannelState
DC_OPEN: DataChannelState
DC_CLOSING: DataChannelState
DC_CLOSED: DataChannelState
LIMITATION_NONE: QualityLimitationReason
LIMITATION_CPU: QualityLimitationReason
LIMITATION_BANDWIDTH: QualityLimitationReason
LIMITATION_OTHER: QualityLimitationReason
ICE_UNKNOWN: IceRole
ICE_CONTROLLING: IceRole
ICE_CONTROLLED: IceRole
DTLS_TRANSPORT_NEW: DtlsTransportState
DTLS_TRANSPORT_CONNECTING: DtlsTransportState
DTLS_TRANSPORT_CONNECTED: DtlsTransportState
DTLS_TRANSPORT_CLOSED: DtlsTransportState
DTLS_TRANSPORT_FAILED: DtlsTransportState
ICE_TRANSPORT_NEW: IceTransportState
ICE_TRANSPORT_CHECKING: IceTransportState
ICE_TRANSPORT_CONNECTED: IceTransportState
ICE_TRANSPORT_COMPLETED: IceTransportState
ICE_TRANSPORT_DISCONNECTED: IceTransportState
ICE_TRANSPORT_FAILED: IceTransportState
ICE_TRANSPORT_CLOSED: IceTransportState
DTLS_CLIENT: DtlsRole
DTLS_SERVER: DtlsRole
DTLS_UNKNOWN: DtlsRole
PAIR_FROZEN: IceCandidatePairState
PAIR_WAITING: IceCandidatePairState
PAIR_IN_PROGRESS: IceCandidatePairState
PAIR_FAILED: IceCandidatePairState
PAIR_SUCCEEDED: IceCandidatePairState
HOST: IceCandidateType
SRFLX: IceCandidateType
PRFLX: IceCandidateType
RELAY: IceCandidateType
TRANSPORT_UDP: IceServerTransportProtocol
TRANSPORT_TCP: IceServerTransportProtocol
TRANSPORT_TLS: IceServerTransportProtocol
CANDIDATE_ACTIVE: IceTcpCandidateType
CANDIDATE_PASSIVE: IceTcpCandidateType
CANDIDATE_SO: IceTcpCandidateType

class RtcStats(_message.Message):
    __slots__ = ("codec", "inbound_rtp", "outbound_rtp", "remote_inbound_rtp", "remote_outbound_rtp", "media_source", "media_playout", "peer_connection", "data_channel", "transport", "candidate_pair", "local_candidate", "remote_candidate", "certificate", "stream", "track")
    class Codec(_message.Message):
        __slots__ = ("rtc", "codec")
        RTC_FIELD_NUMBER: _ClassVar[int]
        CODEC_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        codec: CodecStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., codec: _Optional[_Union[CodecStats, _Mapping]] = ...) -> None: ...
    class InboundRtp(_message.Message):
        __slots__ = ("rtc", "stream", "received", "inbound")
        RTC_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        RECEIVED_FIELD_NUMBER: _ClassVar[int]
        INBOUND_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        stream: RtpStreamStats
        received: ReceivedRtpStreamStats
        inbound: InboundRtpStreamStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., stream: _Optional[_Union[RtpStreamStats, _Mapping]] = ..., received: _Optional[_Union[ReceivedRtpStreamStats, _Mapping]] = ..., inbound: _Optional[_Union[InboundRtpStreamStats, _Mapping]] = ...) -> None: ...
    class OutboundRtp(_message.Message):
        __slots__ = ("rtc", "stream", "sent", "outbound")
        RTC_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        SENT_FIELD_NUMBER: _ClassVar[int]
        OUTBOUND_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        stream: RtpStreamStats
        sent: SentRtpStreamStats
        outbound: OutboundRtpStreamStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., stream: _Optional[_Union[RtpStreamStats, _Mapping]] = ..., sent: _Optional[_Union[SentRtpStreamStats, _Mapping]] = ..., outbound: _Optional[_Union[OutboundRtpStreamStats, _Mapping]] = ...) -> None: ...
    class RemoteInboundRtp(_message.Message):
        __slots__ = ("rtc", "stream", "received", "remote_inbound")
        RTC_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        RECEIVED_FIELD_NUMBER: _ClassVar[int]
        REMOTE_INBOUND_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        stream: RtpStreamStats
        received: ReceivedRtpStreamStats
        remote_inbound: RemoteInboundRtpStreamStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., stream: _Optional[_Union[RtpStreamStats, _Mapping]] = ..., received: _Optional[_Union[ReceivedRtpStreamStats, _Mapping]] = ..., remote_inbound: _Optional[_Union[RemoteInboundRtpStreamStats, _Mapping]] = ...) -> None: ...
    class RemoteOutboundRtp(_message.Message):
        __slots__ = ("rtc", "stream", "sent", "remote_outbound")
        RTC_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        SENT_FIELD_NUMBER: _ClassVar[int]
        REMOTE_OUTBOUND_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        stream: RtpStreamStats
        sent: SentRtpStreamStats
        remote_outbound: RemoteOutboundRtpStreamStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., stream: _Optional[_Union[RtpStreamStats, _Mapping]] = ..., sent: _Optional[_Union[SentRtpStreamStats, _Mapping]] = ..., remote_outbound: _Optional[_Union[RemoteOutboundRtpStreamStats, _Mapping]] = ...) -> None: ...
    class MediaSource(_message.Message):
        __slots__ = ("rtc", "source", "audio", "video")
        RTC_FIELD_NUMBER: _ClassVar[int]
        SOURCE_FIELD_NUMBER: _ClassVar[int]
        AUDIO_FIELD_NUMBER: _ClassVar[int]
        VIDEO_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        source: MediaSourceStats
        audio: AudioSourceStats
        video: VideoSourceStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., source: _Optional[_Union[MediaSourceStats, _Mapping]] = ..., audio: _Optional[_Union[AudioSourceStats, _Mapping]] = ..., video: _Optional[_Union[VideoSourceStats, _Mapping]] = ...) -> None: ...
    class MediaPlayout(_message.Message):
        __slots__ = ("rtc", "audio_playout")
        RTC_FIELD_NUMBER: _ClassVar[int]
        AUDIO_PLAYOUT_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        audio_playout: AudioPlayoutStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., audio_playout: _Optional[_Union[AudioPlayoutStats, _Mapping]] = ...) -> None: ...
    class PeerConnection(_message.Message):
        __slots__ = ("rtc", "pc")
        RTC_FIELD_NUMBER: _ClassVar[int]
        PC_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        pc: PeerConnectionStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., pc: _Optional[_Union[PeerConnectionStats, _Mapping]] = ...) -> None: ...
    class DataChannel(_message.Message):
        __slots__ = ("rtc", "dc")
        RTC_FIELD_NUMBER: _ClassVar[int]
        DC_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        dc: DataChannelStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., dc: _Optional[_Union[DataChannelStats, _Mapping]] = ...) -> None: ...
    class Transport(_message.Message):
        __slots__ = ("rtc", "transport")
        RTC_FIELD_NUMBER: _ClassVar[int]
        TRANSPORT_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        transport: TransportStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., transport: _Optional[_Union[TransportStats, _Mapping]] = ...) -> None: ...
    class CandidatePair(_message.Message):
        __slots__ = ("rtc", "candidate_pair")
        RTC_FIELD_NUMBER: _ClassVar[int]
        CANDIDATE_PAIR_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        candidate_pair: CandidatePairStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., candidate_pair: _Optional[_Union[CandidatePairStats, _Mapping]] = ...) -> None: ...
    class LocalCandidate(_message.Message):
        __slots__ = ("rtc", "candidate")
        RTC_FIELD_NUMBER: _ClassVar[int]
        CANDIDATE_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        candidate: IceCandidateStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., candidate: _Optional[_Union[IceCandidateStats, _Mapping]] = ...) -> None: ...
    class RemoteCandidate(_message.Message):
        __slots__ = ("rtc", "candidate")
        RTC_FIELD_NUMBER: _ClassVar[int]
        CANDIDATE_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        candidate: IceCandidateStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., candidate: _Optional[_Union[IceCandidateStats, _Mapping]] = ...) -> None: ...
    class Certificate(_message.Message):
        __slots__ = ("rtc", "certificate")
        RTC_FIELD_NUMBER: _ClassVar[int]
        CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        certificate: CertificateStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., certificate: _Optional[_Union[CertificateStats, _Mapping]] = ...) -> None: ...
    class Stream(_message.Message):
        __slots__ = ("rtc", "stream")
        RTC_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        rtc: RtcStatsData
        stream: StreamStats
        def __init__(self, rtc: _Optional[_Union[RtcStatsData, _Mapping]] = ..., stream: _Optional[_Union[StreamStats, _Mapping]] = ...) -> None: ...
    class Track(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    CODEC_FIELD_NUMBER: _ClassVar[int]
    INBOUND_RTP_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_RTP_FIELD_NUMBER: _ClassVar[int]
    REMOTE_INBOUND_RTP_FIELD_NUMBER: _ClassVar[int]
    REMOTE_OUTBOUND_RTP_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_PLAYOUT_FIELD_NUMBER: _ClassVar[int]
    PEER_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    DATA_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_PAIR_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    codec: RtcStats.Codec
    inbound_rtp: RtcStats.InboundRtp
    outbound_rtp: RtcStats.OutboundRtp
    remote_inbound_rtp: RtcStats.RemoteInboundRtp
    remote_outbound_rtp: RtcStats.RemoteOutboundRtp
    media_source: RtcStats.MediaSource
    media_playout: RtcStats.MediaPlayout
    peer_connection: RtcStats.PeerConnection
    data_channel: RtcStats.DataChannel
    transport: RtcStats.Transport
    candidate_pair: RtcStats.CandidatePair
    local_candidate: RtcStats.LocalCandidate
    remote_candidate: RtcStats.RemoteCandidate
    certificate: RtcStats.Certificate
    stream: RtcStats.Stream
    track: RtcStats.Track
    def __init__(self, codec: _Optional[_Union[RtcStats.Codec, _Mapping]] = ..., inbound_rtp: _Optional[_Union[RtcStats.InboundRtp, _Mapping]] = ..., outbound_rtp: _Optional[_Union[RtcStats.OutboundRtp, _Mapping]] = ..., remote_inbound_rtp: _Optional[_Union[RtcStats.RemoteInboundRtp, _Mapping]] = ..., remote_outbound_rtp: _Optional[_Union[RtcStats.RemoteOutboundRtp, _Mapping]] = ..., media_source: _Optional[_Union[RtcStats.MediaSource, _Mapping]] = ..., media_playout: _Optional[_Union[RtcStats.MediaPlayout, _Mapping]] = ..., peer_connection: _Optional[_Union[RtcStats.PeerConnection, _Mapping]] = ..., data_channel: _Optional[_Union[RtcStats.DataChannel, _Mapping]] = ..., transport: _Optional[_Union[RtcStats.Transport, _Mapping]] = ..., candidate_pair: _Optional[_Union[RtcStats.CandidatePair, _Mapping]] = ..., local_candidate: _Optional[_Union[RtcStats.LocalCandidate, _Mapping]] = ..., remote_candidate: _Optional[_Union[RtcStats.RemoteCandidate, _Mapping]] = ..., certificate: _Optional[_Union[RtcStats.Certificate, _Mapping]] = ..., stream: _Optional[_Union[RtcStats.Stream, _Mapping]] = ..., track: _Optional[_Union[RtcStats.Track, _Mapping]] = ...) -> None: ...

class RtcStatsData(_message.Message):
    __slots__ = ("id", "timestamp")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    id: str
    timestamp: int
    def __init__(self, id: _Optional[str] = ..., timestamp: _Optional[int] = ...) -> None: ...

class CodecStats(_message.Message):
    __slots__ = ("payload_type", "transport_id", "mime_type", "clock_rate", "channels", "sdp_fmtp_line")
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_ID_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLOCK_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SDP_FMTP_LINE_FIELD_NUMBER: _ClassVar[int]
    payload_type: int
    transport_id: str
    mime_type: str
    clock_rate: int
    channels: int
    sdp_fmtp_line: str
    def __init__(self, payload_type: _Optional[int] = ..., transport_id: _Optional[str] = ..., mime_type: _Optional[str] = ..., clock_rate: _Optional[int] = ..., channels: _Optional[int] = ..., sdp_fmtp_line: _Optional[str] = ...) -> None: ...

class RtpStreamStats(_message.Message):
    __slots__ = ("ssrc", "kind", "transport_id", "codec_id")
    SSRC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_ID_FIELD_NUMBER: _ClassVar[int]
    CODEC_ID_FIELD_NUMBER: _ClassVar[int]
    ssrc: int
    kind: str
    transport_id: str
    codec_id: str
    def __init__(self, ssrc: _Optional[int] = ..., kind: _Optional[str] = ..., transport_id: _Optional[str] = ..., codec_id: _Optional[str] = ...) -> None: ...

class ReceivedRtpStreamStats(_message.Message):
    __slots__ = ("packets_received", "packets_lost", "jitter")
    PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_LOST_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    packets_received: int
    packets_lost: int
    jitter: float
    def __init__(self, packets_received: _Optional[int] = ..., packets_lost: _Optional[int] = ..., jitter: _Optional[float] = ...) -> None: ...

class InboundRtpStreamStats(_message.Message):
    __slots__ = ("track_identifier", "mid", "remote_id", "frames_decoded", "key_frames_decoded", "frames_rendered", "frames_dropped", "frame_width", "frame_height", "frames_per_second", "qp_sum", "total_decode_time", "total_inter_frame_delay", "total_squared_inter_frame_delay", "pause_count", "total_pause_duration", "freeze_count", "total_freeze_duration", "last_packet_received_timestamp", "header_bytes_received", "packets_discarded", "fec_bytes_received", "fec_packets_received", "fec_packets_discarded", "bytes_received", "nack_count", "fir_count", "pli_count", "total_processing_delay", "estimated_playout_timestamp", "jitter_buffer_delay", "jitter_buffer_target_delay", "jitter_buffer_emitted_count", "jitter_buffer_minimum_delay", "total_samples_received", "concealed_samples", "silent_concealed_samples", "concealment_events", "inserted_samples_for_deceleration", "removed_samples_for_acceleration", "audio_level", "total_audio_energy", "total_samples_duration", "frames_received", "decoder_implementation", "playout_id", "power_efficient_decoder", "frames_assembled_from_multiple_packets", "total_assembly_time", "retransmitted_packets_received", "retransmitted_bytes_received", "rtx_ssrc", "fec_ssrc")
    TRACK_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    MID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DECODED_FIELD_NUMBER: _ClassVar[int]
    KEY_FRAMES_DECODED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RENDERED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAME_WIDTH_FIELD_NUMBER: _ClassVar[int]
    FRAME_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QP_SUM_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DECODE_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INTER_FRAME_DELAY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SQUARED_INTER_FRAME_DELAY_FIELD_NUMBER: _ClassVar[int]
    PAUSE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PAUSE_DURATION_FIELD_NUMBER: _ClassVar[int]
    FREEZE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FREEZE_DURATION_FIELD_NUMBER: _ClassVar[int]
    LAST_PACKET_RECEIVED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    HEADER_BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_DISCARDED_FIELD_NUMBER: _ClassVar[int]
    FEC_BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FEC_PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FEC_PACKETS_DISCARDED_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    NACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIR_COUNT_FIELD_NUMBER: _ClassVar[int]
    PLI_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PROCESSING_DELAY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_PLAYOUT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    JITTER_BUFFER_DELAY_FIELD_NUMBER: _ClassVar[int]
    JITTER_BUFFER_TARGET_DELAY_FIELD_NUMBER: _ClassVar[int]
    JITTER_BUFFER_EMITTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    JITTER_BUFFER_MINIMUM_DELAY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CONCEALED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SILENT_CONCEALED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONCEALMENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    INSERTED_SAMPLES_FOR_DECELERATION_FIELD_NUMBER: _ClassVar[int]
    REMOVED_SAMPLES_FOR_ACCELERATION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AUDIO_ENERGY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_DURATION_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DECODER_IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    PLAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    POWER_EFFICIENT_DECODER_FIELD_NUMBER: _ClassVar[int]
    FRAMES_ASSEMBLED_FROM_MULTIPLE_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ASSEMBLY_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITTED_PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITTED_BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RTX_SSRC_FIELD_NUMBER: _ClassVar[int]
    FEC_SSRC_FIELD_NUMBER: _ClassVar[int]
    track_identifier: str
    mid: str
    remote_id: str
    frames_decoded: int
    key_frames_decoded: int
    frames_rendered: int
    frames_dropped: int
    frame_width: int
    frame_height: int
    frames_per_second: float
    qp_sum: int
    total_decode_time: float
    total_inter_frame_delay: float
    total_squared_inter_frame_delay: float
    pause_count: int
    total_pause_duration: float
    freeze_count: int
    total_freeze_duration: float
    last_packet_received_timestamp: float
    header_bytes_received: int
    packets_discarded: int
    fec_bytes_received: int
    fec_packets_received: int
    fec_packets_discarded: int
    bytes_received: int
    nack_count: int
    fir_count: int
    pli_count: int
    total_processing_delay: float
    estimated_playout_timestamp: float
    jitter_buffer_delay: float
    jitter_buffer_target_delay: float
    jitter_buffer_emitted_count: int
    jitter_buffer_minimum_delay: float
    total_samples_received: int
    concealed_samples: int
    silent_concealed_samples: int
    concealment_events: int
    inserted_samples_for_deceleration: int
    removed_samples_for_acceleration: int
    audio_level: float
    total_audio_energy: float
    total_samples_duration: float
    frames_received: int
    decoder_implementation: str
    playout_id: str
    power_efficient_decoder: bool
    frames_assembled_from_multiple_packets: int
    total_assembly_time: float
    retransmitted_packets_received: int
    retransmitted_bytes_received: int
    rtx_ssrc: int
    fec_ssrc: int
    def __init__(self, track_identifier: _Optional[str] = ..., mid: _Optional[str] = ..., remote_id: _Optional[str] = ..., frames_decoded: _Optional[int] = ..., key_frames_decoded: _Optional[int] = ..., frames_rendered: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., frame_width: _Optional[int] = ..., frame_height: _Optional[int] = ..., frames_per_second: _Optional[float] = ..., qp_sum: _Optional[int] = ..., total_decode_time: _Optional[float] = ..., total_inter_frame_delay: _Optional[float] = ..., total_squared_inter_frame_delay: _Optional[float] = ..., pause_count: _Optional[int] = ..., total_pause_duration: _Optional[float] = ..., freeze_count: _Optional[int] = ..., total_freeze_duration: _Optional[float] = ..., last_packet_received_timestamp: _Optional[float] = ..., header_bytes_received: _Optional[int] = ..., packets_discarded: _Optional[int] = ..., fec_bytes_received: _Optional[int] = ..., fec_packets_received: _Optional[int] = ..., fec_packets_discarded: _Optional[int] = ..., bytes_received: _Optional[int] = ..., nack_count: _Optional[int] = ..., fir_count: _Optional[int] = ..., pli_count: _Optional[int] = ..., total_processing_delay: _Optional[float] = ..., estimated_playout_timestamp: _Optional[float] = ..., jitter_buffer_delay: _Optional[float] = ..., jitter_buffer_target_delay: _Optional[float] = ..., jitter_buffer_emitted_count: _Optional[int] = ..., jitter_buffer_minimum_delay: _Optional[float] = ..., total_samples_received: _Optional[int] = ..., concealed_samples: _Optional[int] = ..., silent_concealed_samples: _Optional[int] = ..., concealment_events: _Optional[int] = ..., inserted_samples_for_deceleration: _Optional[int] = ..., removed_samples_for_acceleration: _Optional[int] = ..., audio_level: _Optional[float] = ..., total_audio_energy: _Optional[float] = ..., total_samples_duration: _Optional[float] = ..., frames_received: _Optional[int] = ..., decoder_implementation: _Optional[str] = ..., playout_id: _Optional[str] = ..., power_efficient_decoder: bool = ..., frames_assembled_from_multiple_packets: _Optional[int] = ..., total_assembly_time: _Optional[float] = ..., retransmitted_packets_received: _Optional[int] = ..., retransmitted_bytes_received: _Optional[int] = ..., rtx_ssrc: _Optional[int] = ..., fec_ssrc: _Optional[int] = ...) -> None: ...

class SentRtpStreamStats(_message.Message):
    __slots__ = ("packets_sent", "bytes_sent")
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    packets_sent: int
    bytes_sent: int
    def __init__(self, packets_sent: _Optional[int] = ..., bytes_sent: _Optional[int] = ...) -> None: ...

class OutboundRtpStreamStats(_message.Message):
    __slots__ = ("mid", "media_source_id", "remote_id", "rid", "header_bytes_sent", "retransmitted_packets_sent", "retransmitted_bytes_sent", "rtx_ssrc", "target_bitrate", "total_encoded_bytes_target", "frame_width", "frame_height", "frames_per_second", "frames_sent", "huge_frames_sent", "frames_encoded", "key_frames_encoded", "qp_sum", "total_encode_time", "total_packet_send_delay", "quality_limitation_reason", "quality_limitation_durations", "quality_limitation_resolution_changes", "nack_count", "fir_count", "pli_count", "encoder_implementation", "power_efficient_encoder", "active", "scalability_mode")
    class QualityLimitationDurationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ID_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    HEADER_BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITTED_PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITTED_BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    RTX_SSRC_FIELD_NUMBER: _ClassVar[int]
    TARGET_BITRATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ENCODED_BYTES_TARGET_FIELD_NUMBER: _ClassVar[int]
    FRAME_WIDTH_FIELD_NUMBER: _ClassVar[int]
    FRAME_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SENT_FIELD_NUMBER: _ClassVar[int]
    HUGE_FRAMES_SENT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_ENCODED_FIELD_NUMBER: _ClassVar[int]
    KEY_FRAMES_ENCODED_FIELD_NUMBER: _ClassVar[int]
    QP_SUM_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ENCODE_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PACKET_SEND_DELAY_FIELD_NUMBER: _ClassVar[int]
    QUALITY_LIMITATION_REASON_FIELD_NUMBER: _ClassVar[int]
    QUALITY_LIMITATION_DURATIONS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_LIMITATION_RESOLUTION_CHANGES_FIELD_NUMBER: _ClassVar[int]
    NACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIR_COUNT_FIELD_NUMBER: _ClassVar[int]
    PLI_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCODER_IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    POWER_EFFICIENT_ENCODER_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SCALABILITY_MODE_FIELD_NUMBER: _ClassVar[int]
    mid: str
    media_source_id: str
    remote_id: str
    rid: str
    header_bytes_sent: int
    retransmitted_packets_sent: int
    retransmitted_bytes_sent: int
    rtx_ssrc: int
    target_bitrate: float
    total_encoded_bytes_target: int
    frame_width: int
    frame_height: int
    frames_per_second: float
    frames_sent: int
    huge_frames_sent: int
    frames_encoded: int
    key_frames_encoded: int
    qp_sum: int
    total_encode_time: float
    total_packet_send_delay: float
    quality_limitation_reason: QualityLimitationReason
    quality_limitation_durations: _containers.ScalarMap[str, float]
    quality_limitation_resolution_changes: int
    nack_count: int
    fir_count: int
    pli_count: int
    encoder_implementation: str
    power_efficient_encoder: bool
    active: bool
    scalability_mode: str
    def __init__(self, mid: _Optional[str] = ..., media_source_id: _Optional[str] = ..., remote_id: _Optional[str] = ..., rid: _Optional[str] = ..., header_bytes_sent: _Optional[int] = ..., retransmitted_packets_sent: _Optional[int] = ..., retransmitted_bytes_sent: _Optional[int] = ..., rtx_ssrc: _Optional[int] = ..., target_bitrate: _Optional[float] = ..., total_encoded_bytes_target: _Optional[int] = ..., frame_width: _Optional[int] = ..., frame_height: _Optional[int] = ..., frames_per_second: _Optional[float] = ..., frames_sent: _Optional[int] = ..., huge_frames_sent: _Optional[int] = ..., frames_encoded: _Optional[int] = ..., key_frames_encoded: _Optional[int] = ..., qp_sum: _Optional[int] = ..., total_encode_time: _Optional[float] = ..., total_packet_send_delay: _Optional[float] = ..., quality_limitation_reason: _Optional[_Union[QualityLimitationReason, str]] = ..., quality_limitation_durations: _Optional[_Mapping[str, float]] = ..., quality_limitation_resolution_changes: _Optional[int] = ..., nack_count: _Optional[int] = ..., fir_count: _Optional[int] = ..., pli_count: _Optional[int] = ..., encoder_implementation: _Optional[str] = ..., power_efficient_encoder: bool = ..., active: bool = ..., scalability_mode: _Optional[str] = ...) -> None: ...

class RemoteInboundRtpStreamStats(_message.Message):
    __slots__ = ("local_id", "round_trip_time", "total_round_trip_time", "fraction_lost", "round_trip_time_measurements")
    LOCAL_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    FRACTION_LOST_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_TIME_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    local_id: str
    round_trip_time: float
    total_round_trip_time: float
    fraction_lost: float
    round_trip_time_measurements: int
    def __init__(self, local_id: _Optional[str] = ..., round_trip_time: _Optional[float] = ..., total_round_trip_time: _Optional[float] = ..., fraction_lost: _Optional[float] = ..., round_trip_time_measurements: _Optional[int] = ...) -> None: ...

class RemoteOutboundRtpStreamStats(_message.Message):
    __slots__ = ("local_id", "remote_timestamp", "reports_sent", "round_trip_time", "total_round_trip_time", "round_trip_time_measurements")
    LOCAL_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REPORTS_SENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_TIME_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    local_id: str
    remote_timestamp: float
    reports_sent: int
    round_trip_time: float
    total_round_trip_time: float
    round_trip_time_measurements: int
    def __init__(self, local_id: _Optional[str] = ..., remote_timestamp: _Optional[float] = ..., reports_sent: _Optional[int] = ..., round_trip_time: _Optional[float] = ..., total_round_trip_time: _Optional[float] = ..., round_trip_time_measurements: _Optional[int] = ...) -> None: ...

class MediaSourceStats(_message.Message):
    __slots__ = ("track_identifier", "kind")
    TRACK_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    track_identifier: str
    kind: str
    def __init__(self, track_identifier: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class AudioSourceStats(_message.Message):
    __slots__ = ("audio_level", "total_audio_energy", "total_samples_duration", "echo_return_loss", "echo_return_loss_enhancement", "dropped_samples_duration", "dropped_samples_events", "total_capture_delay", "total_samples_captured")
    AUDIO_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AUDIO_ENERGY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_DURATION_FIELD_NUMBER: _ClassVar[int]
    ECHO_RETURN_LOSS_FIELD_NUMBER: _ClassVar[int]
    ECHO_RETURN_LOSS_ENHANCEMENT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SAMPLES_DURATION_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SAMPLES_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CAPTURE_DELAY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_CAPTURED_FIELD_NUMBER: _ClassVar[int]
    audio_level: float
    total_audio_energy: float
    total_samples_duration: float
    echo_return_loss: float
    echo_return_loss_enhancement: float
    dropped_samples_duration: float
    dropped_samples_events: int
    total_capture_delay: float
    total_samples_captured: int
    def __init__(self, audio_level: _Optional[float] = ..., total_audio_energy: _Optional[float] = ..., total_samples_duration: _Optional[float] = ..., echo_return_loss: _Optional[float] = ..., echo_return_loss_enhancement: _Optional[float] = ..., dropped_samples_duration: _Optional[float] = ..., dropped_samples_events: _Optional[int] = ..., total_capture_delay: _Optional[float] = ..., total_samples_captured: _Optional[int] = ...) -> None: ...

class VideoSourceStats(_message.Message):
    __slots__ = ("width", "height", "frames", "frames_per_second")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    frames: int
    frames_per_second: float
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., frames: _Optional[int] = ..., frames_per_second: _Optional[float] = ...) -> None: ...

class AudioPlayoutStats(_message.Message):
    __slots__ = ("kind", "synthesized_samples_duration", "synthesized_samples_events", "total_samples_duration", "total_playout_delay", "total_samples_count")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SYNTHESIZED_SAMPLES_DURATION_FIELD_NUMBER: _ClassVar[int]
    SYNTHESIZED_SAMPLES_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_DURATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PLAYOUT_DELAY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_COUNT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    synthesized_samples_duration: float
    synthesized_samples_events: int
    total_samples_duration: float
    total_playout_delay: float
    total_samples_count: int
    def __init__(self, kind: _Optional[str] = ..., synthesized_samples_duration: _Optional[float] = ..., synthesized_samples_events: _Optional[int] = ..., total_samples_duration: _Optional[float] = ..., total_playout_delay: _Optional[float] = ..., total_samples_count: _Optional[int] = ...) -> None: ...

class PeerConnectionStats(_message.Message):
    __slots__ = ("data_channels_opened", "data_channels_closed")
    DATA_CHANNELS_OPENED_FIELD_NUMBER: _ClassVar[int]
    DATA_CHANNELS_CLOSED_FIELD_NUMBER: _ClassVar[int]
    data_channels_opened: int
    data_channels_closed: int
    def __init__(self, data_channels_opened: _Optional[int] = ..., data_channels_closed: _Optional[int] = ...) -> None: ...

class DataChannelStats(_message.Message):
    __slots__ = ("label", "protocol", "data_channel_identifier", "state", "messages_sent", "bytes_sent", "messages_received", "bytes_received")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DATA_CHANNEL_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    label: str
    protocol: str
    data_channel_identifier: int
    state: DataChannelState
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int
    def __init__(self, label: _Optional[str] = ..., protocol: _Optional[str] = ..., data_channel_identifier: _Optional[int] = ..., state: _Optional[_Union[DataChannelState, str]] = ..., messages_sent: _Optional[int] = ..., bytes_sent: _Optional[int] = ..., messages_received: _Optional[int] = ..., bytes_received: _Optional[int] = ...) -> None: ...

class TransportStats(_message.Message):
    __slots__ = ("packets_sent", "packets_received", "bytes_sent", "bytes_received", "ice_role", "ice_local_username_fragment", "dtls_state", "ice_state", "selected_candidate_pair_id", "local_certificate_id", "remote_certificate_id", "tls_version", "dtls_cipher", "dtls_role", "srtp_cipher", "selected_candidate_pair_changes")
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ICE_ROLE_FIELD_NUMBER: _ClassVar[int]
    ICE_LOCAL_USERNAME_FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    DTLS_STATE_FIELD_NUMBER: _ClassVar[int]
    ICE_STATE_FIELD_NUMBER: _ClassVar[int]
    SELECTED_CANDIDATE_PAIR_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    TLS_VERSION_FIELD_NUMBER: _ClassVar[int]
    DTLS_CIPHER_FIELD_NUMBER: _ClassVar[int]
    DTLS_ROLE_FIELD_NUMBER: _ClassVar[int]
    SRTP_CIPHER_FIELD_NUMBER: _ClassVar[int]
    SELECTED_CANDIDATE_PAIR_CHANGES_FIELD_NUMBER: _ClassVar[int]
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    ice_role: IceRole
    ice_local_username_fragment: str
    dtls_state: DtlsTransportState
    ice_state: IceTransportState
    selected_candidate_pair_id: str
    local_certificate_id: str
    remote_certificate_id: str
    tls_version: str
    dtls_cipher: str
    dtls_role: DtlsRole
    srtp_cipher: str
    selected_candidate_pair_changes: int
    def __init__(self, packets_sent: _Optional[int] = ..., packets_received: _Optional[int] = ..., bytes_sent: _Optional[int] = ..., bytes_received: _Optional[int] = ..., ice_role: _Optional[_Union[IceRole, str]] = ..., ice_local_username_fragment: _Optional[str] = ..., dtls_state: _Optional[_Union[DtlsTransportState, str]] = ..., ice_state: _Optional[_Union[IceTransportState, str]] = ..., selected_candidate_pair_id: _Optional[str] = ..., local_certificate_id: _Optional[str] = ..., remote_certificate_id: _Optional[str] = ..., tls_version: _Optional[str] = ..., dtls_cipher: _Optional[str] = ..., dtls_role: _Optional[_Union[DtlsRole, str]] = ..., srtp_cipher: _Optional[str] = ..., selected_candidate_pair_changes: _Optional[int] = ...) -> None: ...

class CandidatePairStats(_message.Message):
    __slots__ = ("transport_id", "local_candidate_id", "remote_candidate_id", "state", "nominated", "packets_sent", "packets_received", "bytes_sent", "bytes_received", "last_packet_sent_timestamp", "last_packet_received_timestamp", "total_round_trip_time", "current_round_trip_time", "available_outgoing_bitrate", "available_incoming_bitrate", "requests_received", "requests_sent", "responses_received", "responses_sent", "consent_requests_sent", "packets_discarded_on_send", "bytes_discarded_on_send")
    TRANSPORT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CANDIDATE_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CANDIDATE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NOMINATED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LAST_PACKET_SENT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_PACKET_RECEIVED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_ROUND_TRIP_TIME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_OUTGOING_BITRATE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_INCOMING_BITRATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_SENT_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_SENT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REQUESTS_SENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_DISCARDED_ON_SEND_FIELD_NUMBER: _ClassVar[int]
    BYTES_DISCARDED_ON_SEND_FIELD_NUMBER: _ClassVar[int]
    transport_id: str
    local_candidate_id: str
    remote_candidate_id: str
    state: IceCandidatePairState
    nominated: bool
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    last_packet_sent_timestamp: float
    last_packet_received_timestamp: float
    total_round_trip_time: float
    current_round_trip_time: float
    available_outgoing_bitrate: float
    available_incoming_bitrate: float
    requests_received: int
    requests_sent: int
    responses_received: int
    responses_sent: int
    consent_requests_sent: int
    packets_discarded_on_send: int
    bytes_discarded_on_send: int
    def __init__(self, transport_id: _Optional[str] = ..., local_candidate_id: _Optional[str] = ..., remote_candidate_id: _Optional[str] = ..., state: _Optional[_Union[IceCandidatePairState, str]] = ..., nominated: bool = ..., packets_sent: _Optional[int] = ..., packets_received: _Optional[int] = ..., bytes_sent: _Optional[int] = ..., bytes_received: _Optional[int] = ..., last_packet_sent_timestamp: _Optional[float] = ..., last_packet_received_timestamp: _Optional[float] = ..., total_round_trip_time: _Optional[float] = ..., current_round_trip_time: _Optional[float] = ..., available_outgoing_bitrate: _Optional[float] = ..., available_incoming_bitrate: _Optional[float] = ..., requests_received: _Optional[int] = ..., requests_sent: _Optional[int] = ..., responses_received: _Optional[int] = ..., responses_sent: _Optional[int] = ..., consent_requests_sent: _Optional[int] = ..., packets_discarded_on_send: _Optional[int] = ..., bytes_discarded_on_send: _Optional[int] = ...) -> None: ...

class IceCandidateStats(_message.Message):
    __slots__ = ("transport_id", "address", "port", "protocol", "candidate_type", "priority", "url", "relay_protocol", "foundation", "related_address", "related_port", "username_fragment", "tcp_type")
    TRANSPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    RELAY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    FOUNDATION_FIELD_NUMBER: _ClassVar[int]
    RELATED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RELATED_PORT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    TCP_TYPE_FIELD_NUMBER: _ClassVar[int]
    transport_id: str
    address: str
    port: int
    protocol: str
    candidate_type: IceCandidateType
    priority: int
    url: str
    relay_protocol: IceServerTransportProtocol
    foundation: str
    related_address: str
    related_port: int
    username_fragment: str
    tcp_type: IceTcpCandidateType
    def __init__(self, transport_id: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., protocol: _Optional[str] = ..., candidate_type: _Optional[_Union[IceCandidateType, str]] = ..., priority: _Optional[int] = ..., url: _Optional[str] = ..., relay_protocol: _Optional[_Union[IceServerTransportProtocol, str]] = ..., foundation: _Optional[str] = ..., related_address: _Optional[str] = ..., related_port: _Optional[int] = ..., username_fragment: _Optional[str] = ..., tcp_type: _Optional[_Union[IceTcpCandidateType, str]] = ...) -> None: ...

class CertificateStats(_message.Message):
    __slots__ = ("fingerprint", "fingerprint_algorithm", "base64_certificate", "issuer_certificate_id")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    BASE64_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    fingerprint_algorithm: str
    base64_certificate: str
    issuer_certificate_id: str
    def __init__(self, fingerprint: _Optional[str] = ..., fingerprint_algorithm: _Optional[str] = ..., base64_certificate: _Optional[str] = ..., issuer_certificate_id: _Optional[str] = ...) -> None: ...

class StreamStats(_message.Message):
    __slots__ = ("id", "stream_identifier")
    ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    id: str
    stream_identifier: str
    def __init__(self, id: _Optional[str] = ..., stream_identifier: _Optional[str] = ...) -> None: ...
