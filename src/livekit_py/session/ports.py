"""What the public objects need from the session, as small typed protocols.

The RPC and data-stream managers, participants, publications and tracks reach the
connection only through these; none of them imports the room or the session, so the
layers stay one-way (see docs/architecture.md). ``Room`` implements all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .requests import RequestTracker

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCRtpTransceiver

    from .._proto.livekit_py_stats_pb2 import RtcStats
    from ..media.frame_source import FrameFanout
    from ..rtc.data_track import FrameFeed, LocalDataTrack
    from ..webrtc.encoders import EncoderConfig
    from .rpc import RpcManager
    from .stream_manager import StreamManager


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


class RemotePeers(Protocol):
    """What the other participants' clients understand, from their ``ParticipantInfo``.

    The RPC manager and the stream sender ask it how to send to a participant:
    ``client_protocol`` 1 takes RPC over data streams, 2 also whole streams inline in
    their header (``livekit_py.signal.client_protocol``); the capabilities say which
    compression it inflates.
    """

    def remote_identities(self) -> tuple[str, ...]:
        """The identities of the other participants in the room now."""
        ...

    def remote_client_protocol(self, identity: str) -> int:
        """``ParticipantInfo.client_protocol`` of ``identity``; 0 for one we do not know."""
        ...

    def remote_capabilities(self, identity: str) -> frozenset[int]:
        """The ``ClientInfo.Capability`` values ``identity`` advertises (empty if unknown)."""
        ...


class SignalPort(Protocol):
    """Signal requests as the local participant."""

    async def send_signal(self, request: proto_rtc.SignalRequest) -> None:
        """Send ``request``; ConnectionError when the room is not connected."""
        ...

    def send_signal_soon(self, request: proto_rtc.SignalRequest) -> None:
        """Send ``request`` from synchronous code.

        Raises ConnectionError at once when the room is not connected; a failure
        while sending is logged, not raised.
        """
        ...


@dataclass
class PublishedTrack:
    """What the engine made of one of our tracks: the server's TrackInfo and the
    publisher transceiver carrying it."""

    info: proto_models.TrackInfo
    transceiver: RTCRtpTransceiver
    stats: Callable[[], Awaitable[list[RtcStats]]] | None = None
    """Gets the track's statistics (``Track.get_stats()``), None if unavailable."""


class LocalParticipantPort(DataPort, SignalPort, Protocol):
    """Everything the local participant asks of the session.

    The ``local_track_*`` notifications tell the session what changed so that
    the room model records it and the room emits the public event (they do not
    touch the network).
    """

    @property
    def requests(self) -> RequestTracker:
        """Request ids and the server's answers to them (RequestResponse)."""
        ...

    @property
    def rpc(self) -> RpcManager:
        """The room's RPC calls and handlers (made on first use)."""
        ...

    @property
    def streams(self) -> StreamManager:
        """The room's outgoing and incoming data streams (made on first use)."""
        ...

    async def publish_data_track(self, name: str) -> LocalDataTrack:
        """Publish a data track named ``name`` (raises PublishDataTrackError)."""

    async def publish_track(
        self,
        request: proto_rtc.AddTrackRequest,
        media: MediaStreamTrack,
        encoder: EncoderConfig,
    ) -> PublishedTrack:
        """Announce ``request`` to the server, add ``media`` to the publisher and negotiate.

        ``encoder`` says which codec the publisher offers and how it encodes. Nothing
        stays published when this raises. ConnectionError when not connected.
        """
        ...

    async def unpublish_track(self, transceiver: RTCRtpTransceiver) -> None:
        """Remove a publisher transceiver and renegotiate."""
        ...

    def local_track_published(self, info: proto_models.TrackInfo) -> None:
        """Our publication ``info.sid`` exists now (its view holds ``info``)."""
        ...

    def local_track_unpublished(self, track_sid: str) -> None:
        """Our publication ``track_sid`` is gone."""
        ...

    def local_track_muted(self, track_sid: str, muted: bool) -> None:
        """We muted or unmuted a published track (the server is told in the background)."""
        ...


class RoomEvents(Protocol):
    """Registering for the room's public events (what a track follower listens to)."""

    def on(self, event: Any, callback: Callable[..., Any] | None = None) -> Any: ...

    def off(self, event: Any, callback: Callable[..., Any]) -> None: ...


@runtime_checkable
class FollowsTracks(Protocol):
    """A participant whose current track of a source can be followed
    (``AudioStream``/``VideoStream.from_participant``)."""

    def _follow_track(self, source: int, kind: int) -> FrameFanout:
        """A fanout of the frames of the participant's current track of ``source``."""
        ...


class DataTrackPort(Protocol):
    """What data tracks ask of the session: a local track by its handle, a remote one by
    the key the session gave it (stable when a republished track gets a new sid)."""

    def push_data_track_frame(
        self, handle: int, payload: bytes, user_timestamp: int | None
    ) -> None:
        """Send one frame of our track ``handle``; PushFrameError if it cannot go."""
        ...

    def local_data_track_published(self, handle: int) -> bool: ...

    async def unpublish_data_track(self, handle: int) -> None: ...

    def subscribe_data_track(self, key: int, buffer_size: int) -> FrameFeed:
        """A new feed of the remote track ``key`` (subscribing to it if needed)."""
        ...

    def remote_data_track_published(self, key: int) -> bool: ...

    def set_data_track_pipeline(self, key: int, max_partial_frames: int) -> None: ...
