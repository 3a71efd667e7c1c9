"""Data tracks in a Room on a fake server (tests/unit/session_fakes.py): publishing,
pushing, subscribing, the directory of remote tracks, reconnects and the end."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.errors import ConnectError
from livekit_py.rtc.data_track import FrameFeed
from livekit_py.rtc.participant import PublishDataTrackError
from livekit_py.session.data_track_packets import FrameMarker, Packetizer, decode_packet
from livekit_py.session.data_tracks import (
    DataTrackAppeared,
    DataTrackDirectory,
    DataTrackGone,
    DataTrackSidChanged,
)
from tests.helpers import EventLog
from tests.unit.session_fakes import FakeSignal, connected_room, fake_room, join_response

_GCM = proto_models.Encryption.Type.GCM
_Reason = proto_rtc.RequestResponse.Reason


def info(sid: str, handle: int = 1, name: str = "t", **fields: Any) -> proto_models.DataTrackInfo:
    return proto_models.DataTrackInfo(sid=sid, pub_handle=handle, name=name, **fields)


def them(*tracks: proto_models.DataTrackInfo, version: int = 1, sid: str = "PA_them") -> Any:
    return proto_models.ParticipantInfo(
        identity="them",
        sid=sid,
        version=version,
        state=proto_models.ParticipantInfo.State.ACTIVE,
        data_tracks=list(tracks),
    )


def update(signal: FakeSignal, participant: proto_models.ParticipantInfo) -> None:
    signal.deliver(update=proto_rtc.ParticipantUpdate(participants=[participant]))


def sent(signal: FakeSignal, kind: str) -> list[Any]:
    return [getattr(r, kind) for r in signal.sent if r.WhichOneof("message") == kind]


def accept_publishes(signal: FakeSignal, *, sid_prefix: str = "DTR_") -> None:
    """Answer every publish request as the server does."""

    def answer(request: proto_rtc.SignalRequest) -> None:
        if request.WhichOneof("message") != "publish_data_track_request":
            return
        req = request.publish_data_track_request
        signal.deliver(
            publish_data_track_response=proto_rtc.PublishDataTrackResponse(
                info=info(
                    f"{sid_prefix}{req.pub_handle}",
                    req.pub_handle,
                    req.name,
                    encryption=req.encryption,
                )
            )
        )

    signal.answer = answer


def handles(signal: FakeSignal, mapping: dict[int, str]) -> None:
    published = proto_rtc.DataTrackSubscriberHandles.PublishedDataTrack
    signal.deliver(
        data_track_subscriber_handles=proto_rtc.DataTrackSubscriberHandles(
            sub_handles={h: published(track_sid=sid) for h, sid in mapping.items()}
        )
    )


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- the directory (pure) --------------------------------------------------------------------


def test_the_directory_reports_tracks_that_appear_and_go() -> None:
    d = DataTrackDirectory()
    assert d.reconcile({"a": [info("DTR_1"), info("DTR_2", 2, "u")]}) == [
        DataTrackAppeared(1),
        DataTrackAppeared(2),
    ]
    assert d.reconcile({"a": [info("DTR_1"), info("DTR_2", 2, "u")]}) == []
    assert d.reconcile({"a": [info("DTR_2", 2, "u")], "b": [info("DTR_3")]}) == [
        DataTrackGone(1, "DTR_1"),
        DataTrackAppeared(3),
    ]
    assert d.records[3].publisher == "b"
    assert d.reconcile({}) == [DataTrackGone(2, "DTR_2"), DataTrackGone(3, "DTR_3")]


def test_a_track_republished_under_its_handle_and_name_keeps_its_key() -> None:
    d = DataTrackDirectory()
    d.reconcile({"a": [info("DTR_1", 4, "t")]})
    assert d.reconcile({"a": [info("DTR_9", 4, "t")]}) == [DataTrackSidChanged(1, "DTR_1", "DTR_9")]
    assert d.by_sid == {"DTR_9": 1}
    # another name, another handle or another publisher: another track
    assert d.reconcile({"a": [info("DTR_10", 4, "other")]}) == [
        DataTrackGone(1, "DTR_9"),
        DataTrackAppeared(2),
    ]
    assert d.reconcile({"b": [info("DTR_11", 4, "other")]}) == [
        DataTrackGone(2, "DTR_10"),
        DataTrackAppeared(3),
    ]


# -- publishing ------------------------------------------------------------------------------


async def test_publish_data_track_asks_the_server_and_returns_the_track() -> None:
    room, signal, _ = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="sensor")
    second = await room.local_participant.publish_data_track(name="other")
    requests = sent(signal, "publish_data_track_request")
    assert [(r.pub_handle, r.name, r.encryption) for r in requests] == [
        (1, "sensor", proto_models.Encryption.Type.NONE),
        (2, "other", proto_models.Encryption.Type.NONE),
    ]
    assert isinstance(track, rtc.LocalDataTrack)
    assert track.info == rtc.DataTrackInfo(sid="DTR_1", name="sensor", uses_e2ee=False)
    assert track.is_published() and second.info.sid == "DTR_2"
    assert repr(track) == "rtc.LocalDataTrack(sid=DTR_1, name=sensor)"
    await room.disconnect()


@pytest.mark.parametrize("name", ["", "x" * 257, "é" * 129])
async def test_an_invalid_name_is_refused_before_anything_is_sent(name: str) -> None:
    room, signal, _ = await connected_room(join_response())
    before = len(signal.sent)
    with pytest.raises(PublishDataTrackError) as caught:
        await room.local_participant.publish_data_track(name=name)
    assert isinstance(caught.value, ValueError) and "1 to 256 bytes" in caught.value.message
    with pytest.raises(ValueError, match="must be a str"):
        await room.local_participant.publish_data_track(name=b"bytes")  # type: ignore[arg-type]
    assert len(signal.sent) == before
    accept_publishes(signal)
    assert (await room.local_participant.publish_data_track(name="é" * 128)).is_published()
    await room.disconnect()


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (_Reason.DUPLICATE_NAME, "Track name already taken"),
        (_Reason.NOT_ALLOWED, "Data track publishing unauthorized"),
        (_Reason.INVALID_NAME, "Track name invalid"),
        (_Reason.LIMIT_EXCEEDED, "SFU rejected: too many"),
    ],
)
async def test_a_refusal_raises_publish_data_track_error(reason: int, message: str) -> None:
    room, signal, _ = await connected_room(join_response())

    def refuse(request: proto_rtc.SignalRequest) -> None:
        if request.WhichOneof("message") == "publish_data_track_request":
            signal.deliver(
                request_response=proto_rtc.RequestResponse(
                    reason=reason,  # type: ignore[arg-type]
                    message="too many" if reason == _Reason.LIMIT_EXCEEDED else "",
                    publish_data_track=request.publish_data_track_request,
                )
            )

    signal.answer = refuse
    with pytest.raises(PublishDataTrackError) as caught:
        await room.local_participant.publish_data_track(name="t")
    assert caught.value.message == message
    assert room._data_tracks._locals == {}
    await room.disconnect()


async def test_a_publish_without_answer_times_out_and_a_late_answer_is_undone() -> None:
    room, signal, _ = await connected_room(join_response())
    room._data_tracks.publish_timeout = 0.05
    with pytest.raises(PublishDataTrackError, match="timed-out"):
        await room.local_participant.publish_data_track(name="t")
    assert room._data_tracks._locals == {}
    signal.deliver(
        publish_data_track_response=proto_rtc.PublishDataTrackResponse(info=info("DTR_1", 1))
    )
    await settle()
    assert [r.pub_handle for r in sent(signal, "unpublish_data_track_request")] == [1]
    await room.disconnect()


async def test_a_cancelled_publish_leaves_nothing_behind() -> None:
    room, signal, _ = await connected_room(join_response())
    task = asyncio.ensure_future(room.local_participant.publish_data_track(name="t"))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert room._data_tracks._locals == {}
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    assert track.info.sid == "DTR_2"  # a new handle: the cancelled one is never reused
    await room.disconnect()


async def test_publishing_needs_a_connected_room() -> None:
    room, _, _ = await connected_room(join_response())
    lp = room.local_participant
    await room.disconnect()
    with pytest.raises(PublishDataTrackError) as caught:
        await lp.publish_data_track(name="t")
    assert isinstance(caught.value, ConnectionError)


async def test_a_disconnect_fails_a_pending_publish() -> None:
    room, _, _ = await connected_room(join_response())
    task = asyncio.ensure_future(room.local_participant.publish_data_track(name="t"))
    await settle()
    await room.disconnect()
    with pytest.raises(PublishDataTrackError) as caught:
        await task
    assert isinstance(caught.value, ConnectionError)


# -- pushing ---------------------------------------------------------------------------------


async def test_frames_are_split_into_packets_on_the_data_track_channel() -> None:
    room, signal, engine = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    track.try_push(rtc.DataTrackFrame(payload=bytes(40_000), user_timestamp=77))
    track.try_push(rtc.DataTrackFrame(payload=bytearray(b"small")))
    track.try_push(rtc.DataTrackFrame(payload=b""))  # nothing, as the official
    big, small = engine.data_tracks.frames
    headers = [decode_packet(p).header for p in big]
    assert [h.marker for h in headers] == [FrameMarker.START, FrameMarker.MIDDLE, FrameMarker.FINAL]
    assert {(h.handle, h.frame_number, h.user_timestamp) for h in headers} == {(1, 0, 77)}
    assert [h.sequence for h in headers] == [0, 1, 2]
    single = decode_packet(small[0])
    assert (single.header.sequence, single.header.frame_number) == (3, 1)
    assert single.header.user_timestamp is None and single.payload == b"small"
    await room.disconnect()


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"raw bytes", "needs a DataTrackFrame"),
        (rtc.DataTrackFrame(payload="text"), "payload must be bytes"),  # type: ignore[arg-type]
        (rtc.DataTrackFrame(payload=b"x", user_timestamp=-1), "user_timestamp"),
        (rtc.DataTrackFrame(payload=b"x", user_timestamp=2**64), "user_timestamp"),
    ],
)
async def test_a_bad_frame_is_a_value_error(frame: Any, match: str) -> None:
    room, signal, engine = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    with pytest.raises(ValueError, match=match):
        track.try_push(frame)
    assert engine.data_tracks.frames == []
    await room.disconnect()


async def test_after_unpublish_pushing_fails_and_the_server_is_told() -> None:
    room, signal, engine = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    await track.unpublish()
    await track.unpublish()  # again: nothing more
    assert not track.is_published()
    assert [r.pub_handle for r in sent(signal, "unpublish_data_track_request")] == [1]
    with pytest.raises(rtc.PushFrameError, match="track unpublished") as caught:
        track.try_push(rtc.DataTrackFrame(payload=b"late"))
    assert caught.value.message == "Failed to publish frame: track unpublished"
    assert engine.data_tracks.frames == []
    # the server may unpublish a track by itself
    other = await room.local_participant.publish_data_track(name="u")
    signal.deliver(
        unpublish_data_track_response=proto_rtc.UnpublishDataTrackResponse(info=info("DTR_2", 2))
    )
    assert not other.is_published()
    await room.disconnect()


async def test_dropping_the_track_unpublishes_it() -> None:
    room, signal, _ = await connected_room(join_response())
    accept_publishes(signal)
    kept = await room.local_participant.publish_data_track(name="kept")
    await room.local_participant.publish_data_track(name="dropped")  # no reference kept
    gc.collect()
    await settle()
    assert [r.pub_handle for r in sent(signal, "unpublish_data_track_request")] == [2]
    assert kept.is_published()
    await kept.unpublish()
    del kept
    gc.collect()
    await settle()
    assert [r.pub_handle for r in sent(signal, "unpublish_data_track_request")] == [2, 1]
    await room.disconnect()


async def test_a_disconnect_unpublishes_our_tracks_for_good() -> None:
    room, signal, _ = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    await room.disconnect()
    assert not track.is_published()
    with pytest.raises(rtc.PushFrameError):
        track.try_push(rtc.DataTrackFrame(payload=b"x"))
    assert room._data_tracks._tasks == set()
    # connected again, a new track gets a new handle: the old object stays unpublished
    await room.connect("ws://fake.invalid", "token")
    signal.open = True
    accept_publishes(signal)
    new = await room.local_participant.publish_data_track(name="t")
    assert new.info.sid == "DTR_2" and new.is_published() and not track.is_published()
    await room.disconnect()


# -- subscribing -----------------------------------------------------------------------------


async def subscribed_room(
    *tracks: proto_models.DataTrackInfo,
) -> tuple[rtc.Room, FakeSignal, Any, list[rtc.RemoteDataTrack], list[str]]:
    join = join_response(them(*(tracks or (info("DTR_x", 3, "sensor"),))))
    room, signal, engine = fake_room(join)
    published: list[rtc.RemoteDataTrack] = []
    unpublished: list[str] = []
    room.on("data_track_published", published.append)
    room.on("data_track_unpublished", unpublished.append)
    await room.connect("ws://fake.invalid", "token")
    return room, signal, engine, published, unpublished


def packets_of(payload: bytes, *, handle: int, packetizer: Packetizer | None = None) -> list[bytes]:
    packetizer = packetizer or Packetizer(handle, max_packet_size=1000)
    return packetizer.packetize(payload, timestamp=1, user_timestamp=len(payload))


async def test_tracks_of_the_join_are_published_and_subscribing_asks_once() -> None:
    room, signal, engine, published, _ = await subscribed_room()
    (track,) = published
    assert track.info == rtc.DataTrackInfo(sid="DTR_x", name="sensor", uses_e2ee=False)
    assert track.publisher_identity == "them" and track.is_published()
    assert repr(track) == "rtc.RemoteDataTrack(sid=DTR_x, name=sensor, publisher_identity=them)"
    first, second = track.subscribe(), track.subscribe(buffer_size=4)
    await settle()
    updates = sent(signal, "update_data_subscription")
    assert [[(u.track_sid, u.subscribe) for u in m.updates] for m in updates] == [[("DTR_x", True)]]
    handles(signal, {41: "DTR_x"})
    for packet in packets_of(bytes(2500), handle=41):
        engine.data_tracks.deliver(packet)
    for stream in (first, second):
        frame = await asyncio.wait_for(stream.read(), 1)
        assert frame == rtc.DataTrackFrame(payload=bytes(2500), user_timestamp=2500)
    # packets stamped with another handle are not ours
    for packet in packets_of(b"other", handle=42):
        engine.data_tracks.deliver(packet)
    first.close()
    await settle()
    assert len(sent(signal, "update_data_subscription")) == 1  # the second stream remains
    await second.aclose()
    await settle()
    last = sent(signal, "update_data_subscription")[-1]
    assert [(u.track_sid, u.subscribe) for u in last.updates] == [("DTR_x", False)]
    for packet in packets_of(b"after", handle=41):
        engine.data_tracks.deliver(packet)
    assert await second.read() is None and await first.read() is None
    await room.disconnect()


async def test_a_dropped_stream_unsubscribes() -> None:
    room, signal, _, (track,), _ = await subscribed_room()
    stream = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    del stream
    gc.collect()
    await settle()
    last = sent(signal, "update_data_subscription")[-1]
    assert [(u.track_sid, u.subscribe) for u in last.updates] == [("DTR_x", False)]
    await room.disconnect()


async def test_a_slow_reader_loses_the_oldest_frames() -> None:
    room, signal, engine, (track,), _ = await subscribed_room()
    stream = track.subscribe(buffer_size=2)
    await settle()
    handles(signal, {5: "DTR_x"})
    packetizer = Packetizer(5)
    for n in range(5):
        for packet in packets_of(bytes([n]), handle=5, packetizer=packetizer):
            engine.data_tracks.deliver(packet)
    assert [(await stream.read()) for _ in range(2)] == [
        rtc.DataTrackFrame(payload=bytes([3]), user_timestamp=1),
        rtc.DataTrackFrame(payload=bytes([4]), user_timestamp=1),
    ]
    await room.disconnect()


async def test_a_subscription_without_answer_fails_its_streams() -> None:
    room, signal, _, (track,), _ = await subscribed_room()
    room._data_tracks.subscribe_timeout = 0.05
    stream = track.subscribe()
    with pytest.raises(rtc.SubscribeDataTrackError, match="timed-out"):
        async for _ in stream:
            pass
    await settle()
    last = sent(signal, "update_data_subscription")[-1]
    assert [(u.track_sid, u.subscribe) for u in last.updates] == [("DTR_x", False)]
    await room.disconnect()


async def test_unpublishing_ends_the_streams_and_is_an_event() -> None:
    room, signal, engine, (track, other), unpublished = await subscribed_room(
        info("DTR_x", 3, "sensor"), info("DTR_y", 4, "pending")
    )
    active = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    for packet in packets_of(b"last words", handle=5):
        engine.data_tracks.deliver(packet)
    pending = other.subscribe()
    update(signal, them(version=2))
    assert unpublished == ["DTR_x", "DTR_y"]
    assert not track.is_published()
    assert [f.payload async for f in active] == [b"last words"]  # what arrived, then the end
    with pytest.raises(rtc.SubscribeDataTrackError, match="unpublished"):
        await pending.read()
    late = track.subscribe()
    with pytest.raises(rtc.SubscribeDataTrackError, match="unknown track"):
        await late.read()
    await room.disconnect()


async def test_an_older_participant_update_does_not_bring_a_track_back() -> None:
    room, signal, _, (track,), unpublished = await subscribed_room()
    update(signal, them(version=5))
    update(signal, them(info("DTR_x", 3, "sensor"), version=4))
    assert unpublished == ["DTR_x"] and not track.is_published()
    await room.disconnect()


async def test_a_participant_who_leaves_takes_its_tracks() -> None:
    room, signal, _, (track,), unpublished = await subscribed_room()
    gone = them(info("DTR_x", 3, "sensor"), version=2)
    gone.state = proto_models.ParticipantInfo.State.DISCONNECTED
    update(signal, gone)
    assert unpublished == ["DTR_x"] and not track.is_published()
    await room.disconnect()


async def test_a_republished_track_keeps_its_object_and_its_subscription() -> None:
    room, signal, engine, published, unpublished = await subscribed_room()
    (track,) = published
    stream = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    # the publisher rejoined: a new participant sid, the same handle and name
    update(signal, them(info("DTR_new", 3, "sensor"), sid="PA_them2"))
    await settle()
    assert published == [track] and unpublished == [] and track.info.sid == "DTR_new"
    last = sent(signal, "update_data_subscription")[-1]
    assert [(u.track_sid, u.subscribe) for u in last.updates] == [("DTR_new", True)]
    handles(signal, {9: "DTR_new"})
    for packet in packets_of(b"again", handle=9):
        engine.data_tracks.deliver(packet)
    assert (await asyncio.wait_for(stream.read(), 1)) == rtc.DataTrackFrame(b"again", 5)
    await room.disconnect()


async def test_a_disconnect_ends_every_stream() -> None:
    room, signal, _, (track, other), unpublished = await subscribed_room(
        info("DTR_x", 3, "sensor"), info("DTR_y", 4, "other")
    )
    active = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    pending = other.subscribe()
    await room.disconnect()
    assert await active.read() is None
    with pytest.raises(rtc.SubscribeDataTrackError, match="disconnected"):
        await pending.read()
    assert not track.is_published() and unpublished == []  # no events, as the official
    after = track.subscribe()
    with pytest.raises(rtc.SubscribeDataTrackError):
        await after.read()


def test_subscribe_and_pipeline_options_check_their_arguments() -> None:
    class Port:
        def subscribe_data_track(self, key: int, buffer_size: int) -> FrameFeed:
            self.size = buffer_size
            return FrameFeed(buffer_size, lambda feed: None)

        def set_data_track_pipeline(self, key: int, frames: int) -> None:
            self.frames = frames

    port = Port()
    track = rtc.RemoteDataTrack(
        rtc.DataTrackInfo("s", "n", False),
        publisher_identity="p",
        key=1,
        port=port,  # type: ignore[arg-type]
    )
    track.subscribe(buffer_size=0)
    assert port.size == 1
    track.subscribe()
    assert port.size == 16
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="buffer_size"):
            track.subscribe(buffer_size=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_partial_frames"):
            track.set_pipeline_options(max_partial_frames=bad)  # type: ignore[arg-type]
    track.set_pipeline_options(max_partial_frames=0)
    assert port.frames == 1
    track.set_pipeline_options()
    assert port.frames == 1


async def test_more_partial_frames_let_interleaved_frames_through() -> None:
    room, signal, engine, (track,), _ = await subscribed_room()
    stream = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    packetizer = Packetizer(5, max_packet_size=100)
    one = packets_of(bytes([1]) * 150, handle=5, packetizer=packetizer)
    two = packets_of(bytes([2]) * 150, handle=5, packetizer=packetizer)
    for packet in [one[0], two[0], *one[1:], *two[1:]]:
        engine.data_tracks.deliver(packet)
    assert (await stream.read()) == rtc.DataTrackFrame(bytes([2]) * 150, 150)
    track.set_pipeline_options(max_partial_frames=2)
    for packet in [one[0], two[0], *one[1:], *two[1:]]:
        engine.data_tracks.deliver(packet)
    assert [(await stream.read()).payload[0] for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    await room.disconnect()


# -- reconnects ------------------------------------------------------------------------------


async def test_a_resume_lists_our_tracks_in_the_sync_state() -> None:
    room, signal, _ = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    state = room._sync_state(room._session.engine)  # type: ignore[arg-type]
    assert [(p.info.pub_handle, p.info.sid, p.info.name) for p in state.publish_data_tracks] == [
        (1, "DTR_1", "t")
    ]
    assert track.is_published()
    await room.disconnect()


async def test_a_full_reconnect_publishes_again_and_subscribes_again() -> None:
    room, signal, engine, (remote,), _ = await subscribed_room()
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="mine")
    stream = remote.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    signal.answer = None
    dt = room._data_tracks
    dt.rejoined()  # what Room._on_rejoined does before the new join is applied
    with pytest.raises(rtc.PushFrameError, match="queue full"):
        track.try_push(rtc.DataTrackFrame(payload=b"meanwhile"))
    assert track.is_published()
    signal.sent.clear()
    await dt.restore()
    (again,) = sent(signal, "publish_data_track_request")
    assert (again.pub_handle, again.name) == (1, "mine")
    (resubscribe,) = sent(signal, "update_data_subscription")
    assert [(u.track_sid, u.subscribe) for u in resubscribe.updates] == [("DTR_x", True)]
    signal.deliver(
        publish_data_track_response=proto_rtc.PublishDataTrackResponse(
            info=info("DTR_renewed", 1, "mine")
        )
    )
    assert track.info.sid == "DTR_renewed"
    track.try_push(rtc.DataTrackFrame(payload=b"now"))
    assert decode_packet(engine.data_tracks.frames[-1][0]).payload == b"now"
    handles(signal, {6: "DTR_x"})
    for packet in packets_of(b"new handle", handle=6):
        engine.data_tracks.deliver(packet)
    assert (await asyncio.wait_for(stream.read(), 1)) == rtc.DataTrackFrame(b"new handle", 10)
    await room.disconnect()


async def test_an_unpublish_during_a_resume_reaches_the_server_after_it() -> None:
    room, signal, _ = await connected_room(join_response())
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="t")
    log = EventLog(room, ["reconnected"])
    signal.resume_results = [ConnectError("not yet")]
    room._session.sleep = no_sleep  # the retry schedule's waits
    signal.drop()
    assert room.connection_state == rtc.ConnectionState.CONN_RECONNECTING
    await track.unpublish()
    assert not track.is_published()
    await log.wait_for("reconnected", timeout=5)
    await settle()
    assert [r.pub_handle for r in sent(signal, "unpublish_data_track_request")] == [1]
    (sync,) = sent(signal, "sync_state")
    assert list(sync.publish_data_tracks) == []  # the server is told by the unpublish
    await room.disconnect()


async def test_a_publish_pending_at_a_full_reconnect_fails() -> None:
    room, _, _ = await connected_room(join_response())
    task = asyncio.ensure_future(room.local_participant.publish_data_track(name="t"))
    await settle()
    room._data_tracks.rejoined()
    with pytest.raises(PublishDataTrackError) as caught:
        await task
    assert isinstance(caught.value, ConnectionError)
    await room.disconnect()


async def test_a_stream_dropped_in_another_thread_unsubscribes_on_the_loop() -> None:
    room, signal, _, (track,), _ = await subscribed_room()
    holder = [track.subscribe()]
    await settle()
    handles(signal, {5: "DTR_x"})

    def drop() -> None:
        holder.clear()
        gc.collect()

    thread = threading.Thread(target=drop)
    thread.start()
    thread.join()
    await settle()
    last = sent(signal, "update_data_subscription")[-1]
    assert [(u.track_sid, u.subscribe) for u in last.updates] == [("DTR_x", False)]
    await room.disconnect()


# -- end-to-end encryption -------------------------------------------------------------------


async def test_with_encryption_frames_are_sealed_and_opened() -> None:
    options = rtc.RoomOptions(
        encryption=rtc.E2EEOptions(key_provider_options=rtc.KeyProviderOptions(shared_key=b"k"))
    )
    join = join_response(them(info("DTR_x", 3, "sensor", encryption=_GCM)))
    room, signal, engine = fake_room(join)
    published: list[rtc.RemoteDataTrack] = []
    room.on("data_track_published", published.append)
    await room.connect("ws://fake.invalid", "token", options)
    accept_publishes(signal)
    track = await room.local_participant.publish_data_track(name="secret")
    assert sent(signal, "publish_data_track_request")[0].encryption == _GCM
    assert track.info.uses_e2ee and published[0].info.uses_e2ee
    track.try_push(rtc.DataTrackFrame(payload=b"plain text", user_timestamp=1))
    (sealed,) = engine.data_tracks.frames[-1]
    packet = decode_packet(sealed)
    assert packet.header.e2ee is not None and b"plain text" not in packet.payload
    # "them" shares the key: their frame, sealed the same way, opens here
    stream = published[0].subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    forwarded = Packetizer(5)
    header = packet.header
    for p in forwarded.packetize(packet.payload, timestamp=0, e2ee=header.e2ee):
        engine.data_tracks.deliver(p)
    assert (await asyncio.wait_for(stream.read(), 1)) == rtc.DataTrackFrame(b"plain text")
    # a frame that does not open is dropped
    for p in forwarded.packetize(bytes(30), timestamp=0, e2ee=header.e2ee):
        engine.data_tracks.deliver(p)
    for p in forwarded.packetize(packet.payload, timestamp=0, e2ee=header.e2ee):
        engine.data_tracks.deliver(p)
    assert (await asyncio.wait_for(stream.read(), 1)).payload == b"plain text"  # type: ignore[union-attr]
    await room.disconnect()


async def test_without_encryption_an_encrypted_track_delivers_nothing() -> None:
    room, signal, engine, (track,), _ = await subscribed_room(
        info("DTR_x", 3, "s", encryption=_GCM)
    )
    stream = track.subscribe()
    await settle()
    handles(signal, {5: "DTR_x"})
    for packet in packets_of(b"ciphertext", handle=5):
        engine.data_tracks.deliver(packet)
    for packet in packets_of(b"more", handle=5):
        engine.data_tracks.deliver(packet)
    await settle()
    assert not stream._feed._frames
    await room.disconnect()
