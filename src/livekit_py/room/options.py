"""Options and plain data types of the room API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..types import ContinualGatheringPolicy, DataPacketKind, IceServer, IceTransportType

if TYPE_CHECKING:
    from .participant import RemoteParticipant


@dataclass
class KeyProviderOptions:
    """Key settings for end-to-end encryption."""

    shared_key: bytes | None = None
    ratchet_salt: bytes = b"LKFrameEncryptionKey"
    ratchet_window_size: int = 16
    failure_tolerance: int = -1


@dataclass
class E2EEOptions:
    """End-to-end encryption settings of a room connection."""

    key_provider_options: KeyProviderOptions = field(default_factory=KeyProviderOptions)
    encryption_type: int = 1


@dataclass
class RtcConfiguration:
    """Peer connection settings.

    ``ice_servers`` replaces the STUN/TURN servers the LiveKit server suggests
    when non-empty. aiortc gathers candidates once per negotiation, so
    ``continual_gathering_policy`` is accepted but has no effect, and
    ``TRANSPORT_NOHOST`` gathers all candidates (aiortc knows only "all" and
    "relay"); both are logged.
    """

    ice_transport_type: int = IceTransportType.TRANSPORT_ALL
    continual_gathering_policy: int = ContinualGatheringPolicy.GATHER_CONTINUALLY
    ice_servers: list[IceServer] = field(default_factory=list)


@dataclass
class RoomOptions:
    """How :meth:`Room.connect` joins.

    ``connect_timeout`` bounds each step of the join (the signal handshake, then
    the media connection); None means 10 seconds each. E2EE options are accepted
    for API compatibility; livekit-py does not encrypt media end to end and
    rejects a connect that asks for it.
    """

    auto_subscribe: bool = True
    dynacast: bool = False
    e2ee: E2EEOptions | None = None
    encryption: E2EEOptions | None = None
    rtc_config: RtcConfiguration | None = None
    connect_timeout: float | None = None


@dataclass
class DataPacket:
    """A user data packet received from another participant."""

    data: bytes
    kind: int
    participant: RemoteParticipant | None
    topic: str | None = None


@dataclass
class SipDTMF:
    """A DTMF tone received from a (usually SIP) participant."""

    code: int
    digit: str
    participant: RemoteParticipant | None = None


@dataclass
class RtcStats:
    """Statistics of both peer connections.

    Each list holds aiortc's stats objects (``RTCOutboundRtpStreamStats``,
    ``RTCInboundRtpStreamStats``, ``RTCTransportStats``, ...), whose fields
    follow the W3C WebRTC statistics names, rather than the official SDK's
    protobuf ``RtcStats`` messages.
    """

    publisher_stats: list[Any]
    subscriber_stats: list[Any]


DEFAULT_CONNECT_TIMEOUT = 10.0

__all__ = [
    "DataPacket",
    "DataPacketKind",
    "E2EEOptions",
    "KeyProviderOptions",
    "RoomOptions",
    "RtcConfiguration",
    "RtcStats",
    "SipDTMF",
]
