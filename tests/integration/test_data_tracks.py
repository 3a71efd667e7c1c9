"""Data tracks through a real server, with the official SDK (livekit==1.2.1) as the peer.

What the official SDK guarantees, and so all these tests assert of delivery: frames are
sent once, never retransmitted (they may be lost, and a frame pushed while the previous
one waits for the connection replaces it), and those that arrive are whole and in the
order they were pushed. A frame that must arrive is therefore pushed again until it
does; order is checked on what arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until

pytestmark = [pytest.mark.server, pytest.mark.interop]

logger = logging.getLogger(__name__)

SIZES = [1, 100, 15_988, 15_989, 16_000, 50_000, 100_000]
KEY = b"data tracks shared key"


def sdk(room: Any) -> Any:
    """The module of ``room``'s SDK (ours or the official)."""
    return rtc if isinstance(room, rtc.Room) else official


def e2ee_options(room: Any) -> Any:
    m = sdk(room)
    provider = m.KeyProviderOptions(shared_key=KEY)
    return m.RoomOptions(encryption=m.E2EEOptions(key_provider_options=provider))


@asynccontextmanager
async def joined(
    server_url: str, make_token: TokenFactory, *names: str, encrypted: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Rooms for ``names`` ("official..." uses the official SDK), each seeing the others,
    with an EventLog of the data track events as ``rooms[name + " events"]``."""
    rooms: dict[str, Any] = {}
    try:
        for name in names:
            room = official.Room() if name.startswith("official") else rtc.Room()
            rooms[name] = room
            rooms[f"{name} events"] = EventLog(
                room, ["data_track_published", "data_track_unpublished"]
            )
            options = e2ee_options(room) if encrypted else sdk(room).RoomOptions()
            await room.connect(server_url, make_token(name), options)
        for name in names:
            others = set(names) - {name}
            await wait_until(
                lambda room=rooms[name], others=others: others <= set(room.remote_participants),
                what=f"{name} sees everyone",
            )
        yield rooms
    finally:
        for name in names:
            if name in rooms:
                await rooms[name].disconnect()


async def remote_track(events: EventLog, name: str) -> Any:
    (track,) = await events.wait_for("data_track_published", lambda t: t.info.name == name)
    return track


class Collector:
    """Reads a data track stream in the background."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.frames: list[Any] = []
        self.error: BaseException | None = None
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.stream:
                self.frames.append(frame)
        except Exception as e:  # the error the stream ended with
            self.error = e

    @property
    def ended(self) -> bool:
        return self.task.done()

    def stamped(self, stamp: int) -> list[Any]:
        return [f for f in self.frames if f.user_timestamp == stamp]

    async def close(self) -> None:
        await self.stream.aclose()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.task, 5)
        self.task.cancel()


async def deliver(track: Any, collector: Collector, payload: bytes, stamp: int) -> Any:
    """Push a frame until the collector has it (lossy transport); return what arrived."""
    frame_cls = sdk_of_track(track).DataTrackFrame
    for attempt in range(10):
        track.try_push(frame_cls(payload=payload, user_timestamp=stamp))
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: bool(collector.stamped(stamp)), timeout=3.0)
            (frame,) = collector.stamped(stamp)[:1]
            if attempt:
                logger.info("frame %d (%d bytes) arrived at push %d", stamp, len(payload), attempt)
            return frame
    raise AssertionError(f"frame {stamp} ({len(payload)} bytes) never arrived in 10 pushes")


def sdk_of_track(track: Any) -> Any:
    return rtc if isinstance(track, rtc.LocalDataTrack | rtc.RemoteDataTrack) else official


def pattern(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


@asynccontextmanager
async def subscription(remote: Any) -> AsyncIterator[Collector]:
    collector = Collector(remote.subscribe())
    try:
        yield collector
    finally:
        await collector.close()


# -- frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize("publisher", ["ours", "official"])
async def test_frames_of_1_byte_to_100_kb_arrive_whole(
    server_url: str, make_token: TokenFactory, publisher: str
) -> None:
    subscriber = "official" if publisher == "ours" else "ours"
    async with joined(server_url, make_token, publisher, subscriber) as rooms:
        track = await rooms[publisher].local_participant.publish_data_track(name="sensor")
        assert track.is_published()
        assert track.info.name == "sensor" and not track.info.uses_e2ee
        remote = await remote_track(rooms[f"{subscriber} events"], "sensor")
        assert remote.info.sid == track.info.sid and not remote.info.uses_e2ee
        assert remote.publisher_identity == publisher and remote.is_published()
        async with subscription(remote) as collector:
            await deliver(track, collector, b"warm-up", 0)  # the subscription is in place
            for n, size in enumerate(SIZES, start=1):
                payload = pattern(size, n)
                frame = await deliver(track, collector, payload, n)
                assert frame.payload == payload and frame.user_timestamp == n
        assert all(
            f.payload == pattern(SIZES[f.user_timestamp - 1], f.user_timestamp)
            for f in collector.frames
            if f.user_timestamp
        )


@pytest.mark.parametrize("publisher", ["ours", "official"])
async def test_frames_arrive_in_the_order_pushed_or_not_at_all(
    server_url: str, make_token: TokenFactory, publisher: str
) -> None:
    subscriber = "official" if publisher == "ours" else "ours"
    async with joined(server_url, make_token, publisher, subscriber) as rooms:
        track = await rooms[publisher].local_participant.publish_data_track(name="ticks")
        remote = await remote_track(rooms[f"{subscriber} events"], "ticks")
        frame_cls = sdk_of_track(track).DataTrackFrame
        async with subscription(remote) as collector:
            await deliver(track, collector, b"warm-up", 0)
            for n in range(1, 61):
                size = 20_000 if n % 10 == 0 else 64  # a few two-packet frames among them
                track.try_push(frame_cls(payload=pattern(size, n), user_timestamp=n))
                await asyncio.sleep(0.02)
            await deliver(track, collector, b"end", 1000)
        stamps = [f.user_timestamp for f in collector.frames]
        logger.info("%d of 60 frames arrived", len(stamps) - 2)
        assert stamps == sorted(set(stamps)), stamps  # no reordering, no duplicate
        for frame in collector.frames:
            if 0 < frame.user_timestamp <= 60:
                n = frame.user_timestamp
                assert frame.payload == pattern(20_000 if n % 10 == 0 else 64, n)


# -- subscriptions ---------------------------------------------------------------------------


async def test_unsubscribing_stops_delivery(server_url: str, make_token: TokenFactory) -> None:
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours, theirs = rooms["ours"], rooms["official"]
        their_track = await theirs.local_participant.publish_data_track(name="theirs")
        remote = await remote_track(rooms["ours events"], "theirs")
        packets: list[bytes] = []
        channel = ours._session.engine.data_tracks
        forward = channel.on_packet

        def count(packet: bytes) -> None:
            packets.append(packet)
            forward(packet)

        channel.on_packet = count
        collector = Collector(remote.subscribe())
        await deliver(their_track, collector, b"while subscribed", 1)
        await collector.close()
        assert collector.ended and collector.error is None
        # the server acknowledges: its handle map no longer has the track
        await wait_until(
            lambda: remote.info.sid not in ours._data_tracks.server_handles.values(),
            what="the server unsubscribed us",
        )
        before = len(packets)
        for n in range(20):
            their_track.try_push(
                official.DataTrackFrame(payload=b"x" * 100, user_timestamp=100 + n)
            )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert len(packets) == before, "packets of an unsubscribed track arrived"
        # subscribing again works, from the same RemoteDataTrack
        async with subscription(remote) as again:
            await deliver(their_track, again, b"subscribed again", 2)

        # the official SDK closes its stream and subscribes again to ours
        our_track = await ours.local_participant.publish_data_track(name="ours")
        their_remote = await remote_track(rooms["official events"], "ours")
        first = Collector(their_remote.subscribe())
        await deliver(our_track, first, b"one", 3)
        await first.close()
        async with subscription(their_remote) as second:
            await deliver(our_track, second, b"two", 4)


# -- publications ----------------------------------------------------------------------------


@pytest.mark.parametrize("publisher", ["ours", "official"])
async def test_unpublishing_is_seen_by_the_other_side(
    server_url: str, make_token: TokenFactory, publisher: str
) -> None:
    subscriber = "official" if publisher == "ours" else "ours"
    async with joined(server_url, make_token, publisher, subscriber) as rooms:
        track = await rooms[publisher].local_participant.publish_data_track(name="going")
        events = rooms[f"{subscriber} events"]
        remote = await remote_track(events, "going")
        collector = Collector(remote.subscribe())
        await deliver(track, collector, b"before", 1)
        await track.unpublish()
        assert not track.is_published()
        with pytest.raises(sdk_of_track(track).PushFrameError):
            track.try_push(sdk_of_track(track).DataTrackFrame(payload=b"after"))
        (sid,) = await events.wait_for("data_track_unpublished")
        assert sid == track.info.sid
        await wait_until(lambda: collector.ended, what="the stream ended")
        assert collector.error is None and not remote.is_published()
        if subscriber == "ours":
            # (the official SDK can lose this error: its stream may miss an end that comes
            # before it listens, and it ignores the end its read request answers)
            late = Collector(remote.subscribe())
            await wait_until(
                lambda: late.ended, what="a subscription to an unpublished track ended"
            )
            assert isinstance(late.error, rtc.SubscribeDataTrackError)
        # the name is free again
        again = await rooms[publisher].local_participant.publish_data_track(name="going")
        (renewed,) = await events.wait_for(
            "data_track_published", lambda t: t.info.sid == again.info.sid
        )
        assert renewed.info.name == "going"


@pytest.mark.parametrize("leaver", ["ours", "official"])
async def test_a_participant_who_leaves_takes_its_tracks(
    server_url: str, make_token: TokenFactory, leaver: str
) -> None:
    stayer = "official" if leaver == "ours" else "ours"
    async with joined(server_url, make_token, leaver, stayer) as rooms:
        track = await rooms[leaver].local_participant.publish_data_track(name="t")
        remote = await remote_track(rooms[f"{stayer} events"], "t")
        collector = Collector(remote.subscribe())
        await deliver(track, collector, b"hello", 1)
        await rooms[leaver].disconnect()
        (sid,) = await rooms[f"{stayer} events"].wait_for("data_track_unpublished")
        assert sid == track.info.sid
        await wait_until(lambda: collector.ended, what="the stream ended")
        assert not remote.is_published() and not track.is_published()
        with pytest.raises(sdk_of_track(track).PushFrameError):
            track.try_push(sdk_of_track(track).DataTrackFrame(payload=b"gone"))


@pytest.mark.parametrize("late", ["ours", "official"])
async def test_tracks_published_before_a_join_are_announced_to_the_joiner(
    server_url: str, make_token: TokenFactory, late: str
) -> None:
    early = "official" if late == "ours" else "ours"
    async with joined(server_url, make_token, early) as rooms:
        track = await rooms[early].local_participant.publish_data_track(name="early")
        newcomer = official.Room() if late == "official" else rtc.Room()
        events = EventLog(newcomer, ["data_track_published"])
        try:
            await newcomer.connect(server_url, make_token(late))
            remote = await remote_track(events, "early")
            assert remote.info.sid == track.info.sid and remote.publisher_identity == early
            async with subscription(remote) as collector:
                await deliver(track, collector, b"welcome", 1)
        finally:
            await newcomer.disconnect()


async def test_publish_errors_are_the_official_ones(
    server_url: str, make_token: TokenFactory
) -> None:
    from livekit.rtc.participant import PublishDataTrackError as OfficialError

    from livekit_py.rtc.participant import PublishDataTrackError

    async with joined(server_url, make_token, "ours", "official") as rooms:
        for room, error in (
            (rooms["ours"], PublishDataTrackError),
            (rooms["official"], OfficialError),
        ):
            kept = await room.local_participant.publish_data_track(name="taken")
            with pytest.raises(error) as caught:
                await room.local_participant.publish_data_track(name="taken")
            assert caught.value.message == "Track name already taken"
            for name in ("", "n" * 257):
                with pytest.raises(error):
                    await room.local_participant.publish_data_track(name=name)
            assert (await room.local_participant.publish_data_track(name="é" * 128)).info.name
            assert kept.is_published()
        with pytest.raises(ValueError):  # ours refuses without asking the server
            await rooms["ours"].local_participant.publish_data_track(name="")

    # a token without canPublishData
    for room in (rtc.Room(), official.Room()):
        try:
            await room.connect(server_url, make_token("mute", can_publish_data=False))
            with pytest.raises(
                PublishDataTrackError if isinstance(room, rtc.Room) else OfficialError
            ) as refused:
                await room.local_participant.publish_data_track(name="t")
            assert refused.value.message == "Data track publishing unauthorized"
        finally:
            await room.disconnect()


@pytest.mark.parametrize("publisher", ["ours", "official"])
async def test_dropping_a_local_track_unpublishes_it(
    server_url: str, make_token: TokenFactory, publisher: str
) -> None:
    subscriber = "official" if publisher == "ours" else "ours"
    async with joined(server_url, make_token, publisher, subscriber) as rooms:
        track = await rooms[publisher].local_participant.publish_data_track(name="dropped")
        sid = track.info.sid
        events = rooms[f"{subscriber} events"]
        await remote_track(events, "dropped")
        del track
        gc.collect()
        assert (await events.wait_for("data_track_unpublished")) == (sid,)


# -- encryption and reconnects ---------------------------------------------------------------


@pytest.mark.parametrize("publisher", ["ours", "official"])
async def test_encrypted_frames_both_ways(
    server_url: str, make_token: TokenFactory, publisher: str
) -> None:
    subscriber = "official" if publisher == "ours" else "ours"
    async with joined(server_url, make_token, publisher, subscriber, encrypted=True) as rooms:
        track = await rooms[publisher].local_participant.publish_data_track(name="secret")
        assert track.info.uses_e2ee
        remote = await remote_track(rooms[f"{subscriber} events"], "secret")
        assert remote.info.uses_e2ee
        async with subscription(remote) as collector:
            await deliver(track, collector, b"warm-up", 0)
            for n, size in enumerate((1, 16_000, 100_000), start=1):
                payload = pattern(size, n)
                assert (await deliver(track, collector, payload, n)).payload == payload


async def test_after_a_full_reconnect_our_track_reaches_its_subscriber_again(
    server_url: str, make_token: TokenFactory
) -> None:
    """Republished under its handle and name, the track is the same one for the official
    SDK (which matches publisher, handle and name): its stream goes on."""
    async with joined(server_url, make_token, "ours", "official") as rooms:
        ours = rooms["ours"]
        log = EventLog(ours, ["reconnected"])
        track = await ours.local_participant.publish_data_track(name="durable")
        remote = await remote_track(rooms["official events"], "durable")
        async with subscription(remote) as collector:
            await deliver(track, collector, b"before", 1)
            before = track.info.sid
            await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
            await log.wait_for("reconnected", timeout=30)
            await wait_until(lambda: track.info.sid != before, timeout=20, what="published again")
            assert track.is_published()
            await deliver(track, collector, b"after", 2)
            assert not collector.ended
        assert rooms["official events"].names() == ["data_track_published"]
