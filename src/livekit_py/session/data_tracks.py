"""Data tracks of one room: ours (published, pushed) and the others' (seen, subscribed).

Two parts, as elsewhere in the session:

* :class:`DataTrackDirectory` is pure: given every remote participant's
  ``ParticipantInfo.data_tracks`` (as the room model holds them, so that its version,
  sid and disconnect rules apply), it says which tracks appeared, which went and which
  got a new sid (a publisher that rejoined publishes its tracks again under the same
  handle and name: the same track for its subscribers, as in the official SDKs).
* :class:`DataTrackManager` does the rest: the signal messages
  (``livekit_py.signal.data_tracks``), the packets (``session/data_track_packets``) on
  the engine's ``_data_track`` channels, end-to-end encryption of the payloads, and the
  public objects of ``livekit_py.rtc.data_track`` (it is their
  :class:`~livekit_py.session.ports.DataTrackPort`).

Publishing: a handle (1, 2, ... 65535, never reused by a room) and the name go to the
server, whose ``PublishDataTrackResponse`` (or refusal) answers within
:data:`PUBLISH_TIMEOUT`. Subscribing: the first stream of a track asks the server, which
answers with the handle it stamps on that track's packets; the last stream closed (or
dropped) unsubscribes. After a resume the server still has both (``SyncState`` lists our
tracks); after a full reconnect our tracks are published again under their handles
(frames pushed meanwhile are refused) and our subscriptions are asked for again. When the
session ends, our tracks are unpublished and every stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._compat import timeout as within
from ..engine.engine import RtcEngine
from ..log import get_logger
from ..media.frame_crypto import decrypt_data, encrypt_data
from ..rtc.data_track import (
    DataTrackFrame,
    DataTrackInfo,
    FrameFeed,
    LocalDataTrack,
    PublishDataTrackError,
    PushFrameError,
    RemoteDataTrack,
    SubscribeDataTrackError,
)
from ..signal import data_tracks as messages
from ..signal.client import SignalClient
from .data_track_packets import (
    Depacketizer,
    E2eeExtension,
    PacketError,
    Packetizer,
    decode_packet,
)
from .e2ee import E2EEController
from .session import Session, SessionState

__all__ = [
    "PUBLISH_TIMEOUT",
    "SUBSCRIBE_TIMEOUT",
    "DataTrackAppeared",
    "DataTrackDirectory",
    "DataTrackEvent",
    "DataTrackGone",
    "DataTrackManager",
    "DataTrackSidChanged",
]

logger = get_logger("session.data_tracks")

PUBLISH_TIMEOUT = 10.0
"""Seconds ``publish_data_track`` waits for the server (as the official SDKs)."""
SUBSCRIBE_TIMEOUT = 10.0
"""Seconds a new subscription waits for its handle before its streams fail."""
RECONNECT_WAIT = 30.0
"""How long an unpublish or unsubscribe waits for a reconnect under way."""
MAX_HANDLE = 0xFFFF
CLOCK_RATE = 90_000
"""Ticks per second of the packets' timestamps."""

_NONE = proto_models.Encryption.Type.NONE


# -- who publishes what (pure) ---------------------------------------------------------------


@dataclass
class RemoteTrackRecord:
    """A remote data track: its key (ours, stable), publisher and latest info."""

    key: int
    publisher: str
    info: proto_models.DataTrackInfo


@dataclass(frozen=True)
class DataTrackAppeared:
    key: int


@dataclass(frozen=True)
class DataTrackGone:
    key: int
    sid: str


@dataclass(frozen=True)
class DataTrackSidChanged:
    key: int
    old_sid: str
    new_sid: str


DataTrackEvent = DataTrackAppeared | DataTrackGone | DataTrackSidChanged


class DataTrackDirectory:
    """The remote data tracks, from the publishers' ``ParticipantInfo.data_tracks``."""

    def __init__(self) -> None:
        self.records: dict[int, RemoteTrackRecord] = {}
        self.by_sid: dict[str, int] = {}
        self._next_key = 1

    def reconcile(
        self, publishers: Mapping[str, Sequence[proto_models.DataTrackInfo]]
    ) -> list[DataTrackEvent]:
        """Compare with every remote participant's tracks (identity -> tracks).

        A publisher missing from ``publishers`` has no tracks any more. A track with a new
        sid is the same track when its publisher still has a track of the same handle,
        name and encryption whose sid it no longer lists. Events: the tracks gone, then
        the new and the renamed ones, each in the publishers' order.
        """
        seen: set[int] = set()
        changes: list[DataTrackEvent] = []
        fresh: list[tuple[str, proto_models.DataTrackInfo]] = []
        for identity, infos in publishers.items():
            for info in infos:
                key = self.by_sid.get(info.sid)
                if key is not None and self.records[key].publisher == identity:
                    seen.add(key)
                    self.records[key].info.CopyFrom(info)
                else:
                    fresh.append((identity, info))
        listed = {info.sid for infos in publishers.values() for info in infos}
        for identity, info in fresh:
            record = next(
                (
                    r
                    for r in self.records.values()
                    if r.key not in seen
                    and r.publisher == identity
                    and r.info.sid not in listed
                    and r.info.pub_handle == info.pub_handle
                    and r.info.name == info.name
                    and r.info.encryption == info.encryption
                ),
                None,
            )
            if record is not None:
                old = record.info.sid
                del self.by_sid[old]
                record.info.CopyFrom(info)
                self.by_sid[info.sid] = record.key
                seen.add(record.key)
                changes.append(DataTrackSidChanged(record.key, old, info.sid))
                continue
            copy = proto_models.DataTrackInfo()
            copy.CopyFrom(info)
            key = self._next_key
            self._next_key += 1
            self.records[key] = RemoteTrackRecord(key, identity, copy)
            self.by_sid[info.sid] = key
            seen.add(key)
            changes.append(DataTrackAppeared(key))
        gone: list[DataTrackEvent] = []
        for key in [k for k in self.records if k not in seen]:
            record = self.records.pop(key)
            self.by_sid.pop(record.info.sid, None)
            gone.append(DataTrackGone(key, record.info.sid))
        return gone + changes

    def clear(self) -> None:
        self.records.clear()
        self.by_sid.clear()


# -- the manager -----------------------------------------------------------------------------


class _InvalidName(PublishDataTrackError, ValueError):
    """A name the server would refuse."""


class _NotConnected(PublishDataTrackError, ConnectionError):
    """Publishing while the room is not connected (or it disconnected meanwhile)."""


@dataclass
class _Local:
    handle: int
    name: str
    encrypted: bool
    packetizer: Packetizer
    timestamp_base: int
    epoch: float
    state: str = "pending"  # pending, published, republishing
    answer: asyncio.Future[proto_models.DataTrackInfo] | None = None
    public: DataTrackInfo | None = None  # the track's info (the track is not kept here)
    info: proto_models.DataTrackInfo = field(default_factory=proto_models.DataTrackInfo)


@dataclass
class _Remote:
    key: int
    track: RemoteDataTrack
    encrypted: bool
    state: str = "none"  # none, pending (asked, no handle yet), active
    feeds: list[FrameFeed] = field(default_factory=list)
    handle: int | None = None
    depacketizer: Depacketizer = field(default_factory=Depacketizer)
    deadline: asyncio.TimerHandle | None = None
    warned: bool = False


class DataTrackManager:
    """Our data tracks and the others', for one room (see the module docstring).

    Args:
        session: The room's session (its state, signal client and engine).
        e2ee: The room's end-to-end encryption now (None when off).
        clock: Monotonic seconds, for the packets' 90 kHz timestamps.
        publish_timeout: How long ``publish`` waits for the server.
        subscribe_timeout: How long a new subscription waits for its handle.
    """

    def __init__(
        self,
        session: Session,
        *,
        e2ee: Callable[[], E2EEController | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        publish_timeout: float = PUBLISH_TIMEOUT,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        self._session = session
        self._e2ee = e2ee
        self._clock = clock
        self.publish_timeout = publish_timeout
        self.subscribe_timeout = subscribe_timeout
        self.directory = DataTrackDirectory()
        self._locals: dict[int, _Local] = {}
        self._next_handle = 1
        self._remotes: dict[int, _Remote] = {}
        self._routes: dict[int, int] = {}  # subscriber handle -> remote key
        self._feeds: dict[FrameFeed, int] = {}  # feed -> remote key
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.server_handles: dict[int, str] = {}
        """The server's last handle map (handle -> track sid of what it forwards to us)."""
        self.on_published: Callable[[RemoteDataTrack], None] | None = None
        """Called with each remote track that appears (the room emits ``data_track_published``)."""
        self.on_unpublished: Callable[[str], None] | None = None
        """Called with the sid of each remote track that goes (``data_track_unpublished``)."""

    # -- wiring (the room calls these) ---------------------------------------------------------

    def listen(self, signal: SignalClient, engine: RtcEngine) -> None:
        """Handle the server's data track messages and the engine's data track packets."""
        signal.on("publish_data_track_response", self._on_published)
        signal.on("unpublish_data_track_response", self._on_unpublished)
        signal.on("data_track_subscriber_handles", self._on_subscriber_handles)
        engine.data_tracks.on_packet = self.on_packet
        self._loop = asyncio.get_running_loop()

    def reconcile(self, publishers: Mapping[str, Sequence[proto_models.DataTrackInfo]]) -> None:
        """The remote participants' tracks now (identity -> ``ParticipantInfo.data_tracks``)."""
        for change in self.directory.reconcile(publishers):
            if isinstance(change, DataTrackAppeared):
                self._appeared(change.key)
            elif isinstance(change, DataTrackSidChanged):
                self._sid_changed(change)
            else:
                self._gone(change)

    def handle_request_response(self, msg: proto_rtc.RequestResponse) -> bool:
        """Take the server's refusal of a publish request; False if ``msg`` is about another."""
        refusal = messages.publish_refusal(msg)
        if refusal is None:
            if msg.WhichOneof("request") != "unpublish_data_track":
                return False
            logger.debug(
                "unpublishing data track handle %d: %s",
                msg.unpublish_data_track.pub_handle,
                proto_rtc.RequestResponse.Reason.Name(msg.reason),
            )
            return True
        handle, why = refusal
        local = self._locals.get(handle)
        if local is None:
            return True
        if local.state == "pending" and local.answer is not None and not local.answer.done():
            local.answer.set_exception(PublishDataTrackError(why))
        elif local.state == "republishing":
            logger.warning("data track %r could not be published again: %s", local.name, why)
            self._forget_local(handle)
        return True

    def sync_state_publications(self) -> list[proto_rtc.PublishDataTrackResponse]:
        """Our published tracks, for the ``SyncState`` of a resume."""
        out = []
        for local in self._locals.values():
            if local.state == "published":
                info = proto_models.DataTrackInfo()
                info.CopyFrom(local.info)
                out.append(proto_rtc.PublishDataTrackResponse(info=info))
        return out

    def rejoined(self) -> None:
        """A full reconnect joined a new server session: its handles are new, our tracks
        and subscriptions are unknown to it (:meth:`restore` asks for them again)."""
        self._routes.clear()
        for remote in self._remotes.values():
            remote.handle = None
            remote.depacketizer.reset()
        for local in self._locals.values():
            if local.state == "published":
                local.state = "republishing"
            elif local.answer is not None and not local.answer.done():
                # asked of the old server session, which will not answer (as the official)
                local.answer.set_exception(_NotConnected("the room reconnected meanwhile"))

    async def restore(self) -> None:
        """After a full reconnect: publish our tracks again, ask for our subscriptions."""
        signal = self._session.signal
        if signal is None:
            return
        for local in list(self._locals.values()):
            if local.state == "republishing":
                request = messages.publish_request(
                    local.handle, local.name, encrypted=local.encrypted
                )
                await signal.send(request)
        wanted = [(r.track.info.sid, True) for r in self._remotes.values() if r.state != "none"]
        if wanted:
            await signal.send(messages.subscription_request(wanted))

    def on_disconnected(self) -> None:
        """The session ended: unpublish ours, end every stream, forget the others'."""
        for local in list(self._locals.values()):
            if local.answer is not None and not local.answer.done():
                local.answer.set_exception(
                    _NotConnected("the room disconnected before the server answered")
                )
                local.answer.exception()
        self._locals.clear()
        # (handles keep counting: a track of this session must not come back as one of the next)
        for remote in self._remotes.values():
            self._end_feeds(remote, "Cannot subscribe to data track when disconnected")
        self._remotes.clear()
        self._routes.clear()
        self.server_handles = {}
        self._feeds.clear()
        self.directory.clear()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Wait for the signal requests still being sent."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, name: str) -> LocalDataTrack:
        """Publish a data track named ``name`` and return it once the server accepted it.

        Raises:
            PublishDataTrackError: If the name is invalid (also a ValueError), the room is
                not connected (also a ConnectionError), the server refuses (the name is
                taken, the token does not allow publishing data), does not answer within
                :attr:`publish_timeout`, or the handles of this session are used up.
        """
        if not isinstance(name, str):
            raise _InvalidName(f"name must be a str, not {type(name).__name__}")
        size = len(name.encode())
        if not 0 < size <= messages.MAX_NAME_BYTES:
            raise _InvalidName(
                f"a data track name must be 1 to {messages.MAX_NAME_BYTES} bytes of UTF-8, "
                f"not {size}"
            )
        session = self._session
        if session.state is SessionState.RECONNECTING:
            try:
                await session.wait_connected(self.publish_timeout)
            except ConnectionError as e:
                raise _NotConnected(f"Room disconnected: {e}") from None
        signal = session.signal
        if session.state is not SessionState.CONNECTED or signal is None:
            raise _NotConnected("Room disconnected: cannot publish a data track")
        if self._next_handle > MAX_HANDLE:
            raise PublishDataTrackError("Data track publication limit reached")
        handle = self._next_handle
        self._next_handle += 1
        controller = self._e2ee()
        encrypted = controller is not None and controller.enabled
        answer: asyncio.Future[proto_models.DataTrackInfo] = (
            asyncio.get_running_loop().create_future()
        )
        local = _Local(
            handle,
            name,
            encrypted,
            Packetizer(handle),
            random.getrandbits(32),
            self._clock(),
            answer=answer,
        )
        self._locals[handle] = local
        try:
            async with within(self.publish_timeout):
                await signal.send(messages.publish_request(handle, name, encrypted=encrypted))
                info = await answer
            return self._accepted(local, info)
        except asyncio.TimeoutError:
            raise PublishDataTrackError("Publish data track timed-out") from None
        except ConnectionError as e:
            raise _NotConnected(f"Room disconnected: {e}") from None
        finally:
            local.answer = None
            if local.state == "pending":
                self._locals.pop(handle, None)

    def _accepted(self, local: _Local, info: proto_models.DataTrackInfo) -> LocalDataTrack:
        local.info.CopyFrom(info)
        local.state = "published"
        local.public = DataTrackInfo(
            sid=info.sid, name=info.name, uses_e2ee=info.encryption != _NONE
        )
        track = LocalDataTrack(local.public, handle=local.handle, port=self)
        # dropping the track unpublishes it, as in the official SDK
        weakref.finalize(track, self._dropped, local.handle)
        logger.info("published data track %r as %s (handle %d)", info.name, info.sid, local.handle)
        return track

    def _dropped(self, handle: int) -> None:
        if not self._on_loop(self._dropped, handle):
            return
        local = self._locals.get(handle)
        if local is None or local.state == "pending":
            return
        logger.info("data track %r was dropped: unpublishing it", local.name)
        self._forget_local(handle)
        self._send_when_connected(messages.unpublish_request(handle))

    def _on_published(self, msg: proto_rtc.PublishDataTrackResponse) -> None:
        handle = msg.info.pub_handle
        local = self._locals.get(handle)
        if local is None:
            # a publish we gave up on (timed out, cancelled): do not leave it on the server
            logger.debug("unpublishing data track handle %d, nobody waits for it", handle)
            self._send_soon(messages.unpublish_request(handle))
            return
        if local.state == "pending":
            if local.answer is not None and not local.answer.done():
                local.answer.set_result(msg.info)
        elif local.state == "republishing":
            local.info.CopyFrom(msg.info)
            local.state = "published"
            if local.public is not None:
                local.public.sid = msg.info.sid
            logger.info("data track %r published again as %s", local.name, msg.info.sid)

    def _on_unpublished(self, msg: proto_rtc.UnpublishDataTrackResponse) -> None:
        local = self._locals.get(msg.info.pub_handle)
        if local is not None and local.state != "pending":
            logger.info("the server unpublished our data track %r", local.name)
            self._forget_local(local.handle)

    def _forget_local(self, handle: int) -> None:
        self._locals.pop(handle, None)

    # -- DataTrackPort: our tracks -------------------------------------------------------------

    def push_data_track_frame(
        self, handle: int, payload: bytes, user_timestamp: int | None
    ) -> None:
        local = self._locals.get(handle)
        if local is None or local.state == "pending":
            raise PushFrameError("Failed to publish frame: track unpublished")
        if local.state == "republishing":
            raise PushFrameError("Failed to publish frame: queue full")
        engine = self._session.engine
        if engine is None:
            return  # between two engines of a full reconnect
        e2ee: E2eeExtension | None = None
        if local.encrypted:
            sealed = self._encrypt(payload)
            if sealed is None:
                return
            e2ee, payload = sealed
        ticks = int((self._clock() - local.epoch) * CLOCK_RATE)
        packets = local.packetizer.packetize(
            payload,
            timestamp=(local.timestamp_base + ticks) & 0xFFFF_FFFF,
            user_timestamp=user_timestamp,
            e2ee=e2ee,
        )
        engine.data_tracks.send_frame(packets)

    def _encrypt(self, payload: bytes) -> tuple[E2eeExtension, bytes] | None:
        controller = self._e2ee()
        if controller is None:
            logger.debug("dropping a data track frame: end-to-end encryption is closed")
            return None
        keys = controller.keys
        key_index = keys.latest_key_index
        try:
            iv, sealed = encrypt_data(payload, keys.ring_for(controller.local_identity), key_index)
            return E2eeExtension(key_index, iv), sealed
        except ValueError as e:
            logger.debug("dropping a data track frame that cannot be encrypted: %s", e)
            return None

    def local_data_track_published(self, handle: int) -> bool:
        local = self._locals.get(handle)
        return local is not None and local.state != "pending"

    async def unpublish_data_track(self, handle: int) -> None:
        local = self._locals.get(handle)
        if local is None or local.state == "pending":
            return
        self._forget_local(handle)
        request = messages.unpublish_request(handle)
        signal = self._session.signal
        if signal is None or self._session.state is not SessionState.CONNECTED:
            self._send_when_connected(request)  # after a resume the server still has it
            return
        try:
            await signal.send(request)
        except ConnectionError as e:
            logger.debug("could not tell the server to unpublish data track %r: %s", local.name, e)

    # -- remote tracks --------------------------------------------------------------------------

    def _appeared(self, key: int) -> None:
        record = self.directory.records[key]
        info = DataTrackInfo(
            sid=record.info.sid,
            name=record.info.name,
            uses_e2ee=record.info.encryption != _NONE,
        )
        track = RemoteDataTrack(info, publisher_identity=record.publisher, key=key, port=self)
        self._remotes[key] = _Remote(key, track, encrypted=info.uses_e2ee)
        logger.debug("data track %s (%r) of %s published", info.sid, info.name, record.publisher)
        if self.on_published is not None:
            self.on_published(track)

    def _sid_changed(self, change: DataTrackSidChanged) -> None:
        remote = self._remotes.get(change.key)
        if remote is None:
            return
        remote.track.info.sid = change.new_sid
        logger.debug("data track %s published again as %s", change.old_sid, change.new_sid)
        if remote.handle is not None:
            self._routes.pop(remote.handle, None)
            remote.handle = None
        remote.depacketizer.reset()
        if remote.state != "none":
            # the server does not carry subscriptions over to the new publication
            self._send_soon(messages.subscription_request([(change.new_sid, True)]))

    def _gone(self, change: DataTrackGone) -> None:
        remote = self._remotes.pop(change.key, None)
        if remote is None:
            return
        if remote.handle is not None:
            self._routes.pop(remote.handle, None)
        self._end_feeds(remote, "The track has been unpublished and is no longer available")
        logger.debug("data track %s unpublished", change.sid)
        if self.on_unpublished is not None:
            self.on_unpublished(change.sid)

    def _end_feeds(self, remote: _Remote, pending_error: str) -> None:
        """End the track's streams: with ``pending_error`` if never subscribed, else normally."""
        error = SubscribeDataTrackError(pending_error) if remote.state == "pending" else None
        for feed in remote.feeds:
            self._feeds.pop(feed, None)
            feed.end(error)
        remote.feeds.clear()
        remote.state = "none"
        remote.handle = None
        if remote.deadline is not None:
            remote.deadline.cancel()
            remote.deadline = None

    # -- DataTrackPort: subscriptions ----------------------------------------------------------

    def subscribe_data_track(self, key: int, buffer_size: int) -> FrameFeed:
        feed = FrameFeed(buffer_size, self._released)
        remote = self._remotes.get(key)
        if remote is None:
            feed.end(SubscribeDataTrackError("Cannot subscribe to unknown track"))
            return feed
        if self._session.state is not SessionState.CONNECTED and remote.state == "none":
            if self._session.state is not SessionState.RECONNECTING:
                feed.end(
                    SubscribeDataTrackError("Cannot subscribe to data track when disconnected")
                )
                return feed
        remote.feeds.append(feed)
        self._feeds[feed] = key
        if remote.state == "none":
            remote.state = "pending"
            self._send_soon(messages.subscription_request([(remote.track.info.sid, True)]))
            remote.deadline = asyncio.get_running_loop().call_later(
                self.subscribe_timeout, self._subscribe_timed_out, key
            )
        return feed

    def _subscribe_timed_out(self, key: int) -> None:
        remote = self._remotes.get(key)
        if remote is None or remote.state != "pending":
            return
        remote.deadline = None
        logger.warning("no answer to the subscription to data track %s", remote.track.info.sid)
        self._end_feeds(remote, "Request to subscribe to data track timed-out")
        self._send_soon(messages.subscription_request([(remote.track.info.sid, False)]))

    def _released(self, feed: FrameFeed) -> None:
        if not self._on_loop(self._released, feed):
            return
        key = self._feeds.pop(feed, None)
        remote = self._remotes.get(key) if key is not None else None
        if remote is None:
            return
        with contextlib.suppress(ValueError):
            remote.feeds.remove(feed)
        if remote.feeds or remote.state == "none":
            return
        sid = remote.track.info.sid
        if remote.handle is not None:
            self._routes.pop(remote.handle, None)
        self._end_feeds(remote, "")
        remote.depacketizer.reset()
        logger.debug("unsubscribing from data track %s", sid)
        self._send_when_connected(messages.subscription_request([(sid, False)]))

    def remote_data_track_published(self, key: int) -> bool:
        return key in self._remotes

    def set_data_track_pipeline(self, key: int, max_partial_frames: int) -> None:
        remote = self._remotes.get(key)
        if remote is not None:
            remote.depacketizer.max_partial_frames = max_partial_frames

    def _on_subscriber_handles(self, msg: proto_rtc.DataTrackSubscriberHandles) -> None:
        routes: dict[int, int] = {}
        self.server_handles = messages.subscriber_handles(msg)
        for handle, sid in self.server_handles.items():
            key = self.directory.by_sid.get(sid)
            remote = self._remotes.get(key) if key is not None else None
            if remote is None or remote.state == "none":
                continue  # unsubscribed meanwhile, or a track we do not know (yet)
            if remote.state == "pending":
                remote.state = "active"
                if remote.deadline is not None:
                    remote.deadline.cancel()
                    remote.deadline = None
            if remote.handle != handle:
                remote.depacketizer.reset()
            remote.handle = handle
            routes[handle] = remote.key
        for remote in self._remotes.values():
            if remote.handle is not None and routes.get(remote.handle) != remote.key:
                remote.handle = None  # the server stopped forwarding it (it may come back)
        self._routes = routes

    # -- packets in -------------------------------------------------------------------------

    def on_packet(self, data: bytes) -> None:
        """One packet from the server's ``_data_track`` channel."""
        try:
            packet = decode_packet(data)
        except PacketError as e:
            logger.debug("dropping a data track packet: %s", e)
            return
        key = self._routes.get(packet.header.handle)
        remote = self._remotes.get(key) if key is not None else None
        if remote is None:
            return  # not (or no longer) subscribed
        result = remote.depacketizer.push(packet)
        for dropped in result.dropped:
            logger.debug(
                "data track %s: frame %d dropped (%s)",
                remote.track.info.sid,
                dropped.frame_number,
                dropped.reason,
            )
        frame = result.frame
        if frame is None:
            return
        payload = frame.payload
        if remote.encrypted:
            opened = self._decrypt(remote, payload, frame.e2ee)
            if opened is None:
                return
            payload = opened
        delivered = DataTrackFrame(payload=payload, user_timestamp=frame.user_timestamp)
        for feed in list(remote.feeds):
            feed.deliver(delivered)

    def _decrypt(self, remote: _Remote, payload: bytes, e2ee: E2eeExtension | None) -> bytes | None:
        controller = self._e2ee()
        if controller is None or e2ee is None:
            if not remote.warned:
                remote.warned = True
                logger.warning(
                    "dropping the frames of encrypted data track %s: %s",
                    remote.track.info.sid,
                    "end-to-end encryption is off in this room"
                    if controller is None
                    else "a frame carries no encryption extension",
                )
            return None
        ring = controller.keys.ring_for(remote.track.publisher_identity)
        try:
            return decrypt_data(e2ee.iv, payload, ring, e2ee.key_index)
        except ValueError as e:
            logger.debug("dropping a frame of data track %s: %s", remote.track.info.sid, e)
            return None

    # -- helpers ----------------------------------------------------------------------------

    def _send_soon(self, request: proto_rtc.SignalRequest) -> None:
        signal = self._session.signal
        if signal is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a stream garbage-collected outside the loop: the session ends anyway
        self._spawn(loop, self._send(signal, request))

    def _send_when_connected(self, request: proto_rtc.SignalRequest) -> None:
        """Send now, or once a reconnect under way is over (nothing if it fails)."""
        session = self._session
        if session.state is SessionState.CONNECTED:
            self._send_soon(request)
            return
        if session.state is not SessionState.RECONNECTING:
            return

        async def later() -> None:
            try:
                await session.wait_connected(RECONNECT_WAIT)
            except ConnectionError:
                return
            signal = session.signal
            if signal is not None:
                await self._send(signal, request)

        self._spawn(asyncio.get_running_loop(), later())

    def _on_loop(self, callback: Callable[..., None], *args: Any) -> bool:
        """True on the room's loop; elsewhere (garbage collection runs in any thread)
        ``callback(*args)`` is scheduled on the loop instead."""
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return True
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, *args)
        return False

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _send(signal: SignalClient, request: proto_rtc.SignalRequest) -> None:
        try:
            await signal.send(request)
        except ConnectionError as e:
            logger.debug("could not send %s: %s", request.WhichOneof("message"), e)
