"""Statistics types returned by ``Track.get_stats()`` and ``Room.get_rtc_stats()``.

The official SDK's ``livekit.rtc.stats`` holds protobuf messages filled by
libwebrtc. livekit-py reports aiortc's statistics objects instead; their fields
follow the W3C WebRTC statistics names (``packetsSent``, ``bytesReceived``,
``jitter``, ``roundTripTime``, ...), and ``type`` says which kind each one is
("inbound-rtp", "outbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp",
"transport").
"""

from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
    RTCStats,
    RTCStatsReport,
    RTCTransportStats,
)

__all__ = [
    "RTCInboundRtpStreamStats",
    "RTCOutboundRtpStreamStats",
    "RTCRemoteInboundRtpStreamStats",
    "RTCRemoteOutboundRtpStreamStats",
    "RTCStats",
    "RTCStatsReport",
    "RTCTransportStats",
]
