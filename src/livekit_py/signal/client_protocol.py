"""What this client tells the others it understands: ``ClientInfo.client_protocol`` and
``ClientInfo.capabilities``.

The server copies both from the join URL into our ``ParticipantInfo``, so every other
participant learns them; we read theirs the same way to choose how to send to them.
The levels and the capability are those of the official SDKs (Rust ``livekit-common``,
JS ``version.ts``).
"""

from __future__ import annotations

from livekit.protocol import models as proto_models

__all__ = [
    "CAP_COMPRESSION_DEFLATE_RAW",
    "CAP_PACKET_TRAILER",
    "CLIENT_CAPABILITIES",
    "CLIENT_PROTOCOL",
    "CLIENT_PROTOCOL_DATA_STREAM_RPC",
    "CLIENT_PROTOCOL_DATA_STREAM_V2",
    "CLIENT_PROTOCOL_DEFAULT",
]

#: A client that knows neither RPC over data streams nor inline streams.
CLIENT_PROTOCOL_DEFAULT = 0
#: The client takes RPC requests and responses as data streams (RPC version 2).
CLIENT_PROTOCOL_DATA_STREAM_RPC = 1
#: The client also reads a whole stream carried in its header packet (data streams v2).
CLIENT_PROTOCOL_DATA_STREAM_V2 = 2

#: The level we advertise: the official Python SDK 1.2.1 (Rust SDK) advertises 2 too.
CLIENT_PROTOCOL = CLIENT_PROTOCOL_DATA_STREAM_V2

#: ``ClientInfo.Capability``: the client inflates deflate-raw compressed streams.
CAP_COMPRESSION_DEFLATE_RAW = int(proto_models.ClientInfo.Capability.CAP_COMPRESSION_DEFLATE_RAW)
#: ``ClientInfo.Capability``: the client strips the LKTS packet trailers of video frames
#: itself, so the server forwards them instead of stripping them (and the frame metadata
#: in them reaches VideoStream).
CAP_PACKET_TRAILER = int(proto_models.ClientInfo.Capability.CAP_PACKET_TRAILER)

#: The capabilities we advertise: the same two as the official SDK 1.2.1.
CLIENT_CAPABILITIES: tuple[int, ...] = (CAP_PACKET_TRAILER, CAP_COMPRESSION_DEFLATE_RAW)
