"""Statistics types returned by ``Track.get_stats()`` and ``Room.get_rtc_stats()``.

The official SDK's ``livekit.rtc.stats`` holds protobuf messages filled by
libwebrtc. livekit-py reports aiortc's statistics objects instead; their fields
follow the W3C WebRTC statistics names (``packetsSent``, ``bytesReceived``,
``jitter``, ``roundTripTime``, ...), and ``type`` says which kind each one is
("inbound-rtp", "outbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp",
"transport"). A subscribed audio track's "inbound-rtp" entry is an
:class:`RTCInboundRtpAudioStreamStats`: it adds the W3C audio receiver fields
(``concealedSamples``, ``jitterBufferDelay``, ``fecPacketsReceived``, ...) from
livekit-py's own jitter buffer.
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

from ..webrtc.audio_playout import RTCInboundRtpAudioStreamStats

__all__ = [
    "RTCInboundRtpAudioStreamStats",
    "RTCInboundRtpStreamStats",
    "RTCOutboundRtpStreamStats",
    "RTCRemoteInboundRtpStreamStats",
    "RTCRemoteOutboundRtpStreamStats",
    "RTCStats",
    "RTCStatsReport",
    "RTCTransportStats",
]
