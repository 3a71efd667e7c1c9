"""What the public objects need from the session, as small typed protocols.

The RPC and data-stream managers, participants, publications and tracks reach the
connection only through these; none of them imports the room or the session, so the
layers stay one-way (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc


class DataPort(Protocol):
    """Sending data packets as the local participant.

    ``send_data`` raises ConnectionError when the room is not connected; the other
    members answer from the last join (empty strings before the first one).
    """

    @property
    def local_identity(self) -> str:
        """Our participant identity (empty before the first join)."""
        ...

    @property
    def server_version(self) -> str:
        """The LiveKit server's version from the join response ("" when unknown)."""
        ...

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        """Send ``packet`` on the reliable or lossy channel (a DataPacket.Kind value)."""
        ...


class SignalPort(Protocol):
    """Signal requests as the local participant, and the server's answers to them."""

    async def send_signal(self, request: proto_rtc.SignalRequest) -> None:
        """Send ``request``; ConnectionError when the room is not connected."""
        ...

    def send_signal_soon(self, request: proto_rtc.SignalRequest) -> None:
        """Send ``request`` from synchronous code; a failure is logged, not raised."""
        ...
