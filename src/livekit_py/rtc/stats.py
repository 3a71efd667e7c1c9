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

import dataclasses

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
    "RTCInboundRtpAudioStreamStats",
    "RTCInboundRtpStreamStats",
    "RTCOutboundRtpStreamStats",
    "RTCRemoteInboundRtpStreamStats",
    "RTCRemoteOutboundRtpStreamStats",
    "RTCStats",
    "RTCStatsReport",
    "RTCTransportStats",
]


@dataclasses.dataclass
class RTCInboundRtpAudioStreamStats(RTCInboundRtpStreamStats):
    """aiortc's inbound RTP statistics plus the W3C audio receiver fields of our playout.

    The names are those of W3C ``RTCInboundRtpStreamStats``; durations in seconds.
    """

    packetsDiscarded: int = 0
    fecPacketsReceived: int = 0
    totalSamplesReceived: int = 0
    concealedSamples: int = 0
    silentConcealedSamples: int = 0
    concealmentEvents: int = 0
    insertedSamplesForDeceleration: int = 0
    removedSamplesForAcceleration: int = 0
    jitterBufferDelay: float = 0.0
    jitterBufferTargetDelay: float = 0.0
    jitterBufferEmittedCount: int = 0
