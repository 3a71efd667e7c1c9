"""One peer connection (``RoomOptions.single_peer_connection``) with the official SDK as the peer.

Ours joins on ``/rtc/v1`` and has only the publisher connection: its tracks go out
on send-only m-lines, the official SDK's come back on receive-only ones of our own
offers, and data on our own channels. The official SDK (1.2.1) joins with one peer
connection too (its default) or with two; both must work. A server without
``/rtc/v1`` (a proxy answering 404 there, as servers before single peer connections
do) is joined with two, as the official SDK does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import pytest_asyncio
from livekit import rtc as official

from livekit_py import rtc
from signaling.tcp_proxy import TcpProxy
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background, collect_audio, dominant_frequency, feed_sine
from tests.integration.test_video import FPS, H, W, check_colours, feed_video, measure_stream

pytestmark = [pytest.mark.server, pytest.mark.interop]

OUR_TONE = 440.0
THEIR_TONE = 660.0
WAIT = 30.0  # generous: the machine is loaded


def single_pc(room: rtc.Room) -> bool:
    """Whether our room runs on one peer connection (and has no subscriber)."""
    engine = room._session.engine
    assert engine is not None
    return engine.single_peer_connection and engine.subscriber is None


@dataclass
class Call:
    ours: rtc.Room
    theirs: official.Room
    our_log: EventLog
    their_subs: list[Any]


@asynccontextmanager
async def call(
    server_url: str, make_token: TokenFactory, *, official_single: bool, our_single: bool = True
) -> AsyncIterator[Call]:
    """Both rooms joined, each publishing a tone and the two-colour video."""
    ours, theirs = rtc.Room(), official.Room()
    our_log = EventLog(ours, ["track_subscribed", "data_received", "reconnecting", "reconnected"])
    their_subs: list[Any] = []
    theirs.on("track_subscribed", lambda t, pub, p: their_subs.append(t))
    our_audio, our_video = rtc.AudioSource(48000, 1), rtc.VideoSource(W, H)
    their_audio, their_video = official.AudioSource(48000, 1), official.VideoSource(W, H)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(theirs.disconnect)
        stack.push_async_callback(ours.disconnect)
        for source in (our_audio, our_video, their_audio, their_video):
            stack.push_async_callback(source.aclose)
        await theirs.connect(
            server_url,
            make_token("official"),
            official.RoomOptions(single_peer_connection=official_single),
        )
        await ours.connect(
            server_url, make_token("ours"), rtc.RoomOptions(single_peer_connection=our_single)
        )
        assert single_pc(ours) is our_single
        for feed in (
            feed_sine(our_audio, rtc.AudioFrame, OUR_TONE, seconds=120),
            feed_video(our_video, rtc.VideoFrame, rtc.VideoBufferType.RGBA, seconds=120),
            feed_sine(their_audio, official.AudioFrame, THEIR_TONE, seconds=120),
            feed_video(their_video, official.VideoFrame, official.VideoBufferType.RGBA, 120),
        ):
            await stack.enter_async_context(background(feed))
        camera = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            video_encoding=rtc.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
        )
        await ours.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", our_audio),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        await ours.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("cam", our_video), camera
        )
        await theirs.local_participant.publish_track(
            official.LocalAudioTrack.create_audio_track("mic", their_audio),
            official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE),
        )
        await theirs.local_participant.publish_track(
            official.LocalVideoTrack.create_video_track("cam", their_video),
            official.TrackPublishOptions(
                source=official.TrackSource.SOURCE_CAMERA,
                video_encoding=official.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
                simulcast=False,
            ),
        )
        yield Call(ours, theirs, our_log, their_subs)


def _our_track(c: Call, kind: int) -> Any:
    remote = c.ours.remote_participants.get("official")
    if remote is None:
        return None
    return next(
        (p.track for p in remote.track_publications.values() if p.track and p.kind == kind), None
    )


async def check_media_both_ways(c: Call) -> None:
    """Each side hears the other's tone and sees the other's two colours."""
    for kind in (rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO):
        await wait_until(lambda k=kind: _our_track(c, k) is not None, WAIT, f"we get kind {kind}")
    await wait_until(lambda: len(c.their_subs) >= 2, WAIT, "official gets both our tracks")

    stream = rtc.AudioStream(
        _our_track(c, rtc.TrackKind.KIND_AUDIO), sample_rate=48000, num_channels=1
    )
    samples, rate, _ = await collect_audio(stream, 1.0, timeout=WAIT)
    await stream.aclose()
    assert abs(dominant_frequency(samples, rate) - THEIR_TONE) < 10

    their_audio = next(t for t in c.their_subs if t.kind == official.TrackKind.KIND_AUDIO)
    official_stream = official.AudioStream(their_audio, sample_rate=48000, num_channels=1)
    samples, rate, _ = await collect_audio(official_stream, 1.0, timeout=WAIT)
    await official_stream.aclose()
    assert abs(dominant_frequency(samples, rate) - OUR_TONE) < 10

    video = rtc.VideoStream(
        _our_track(c, rtc.TrackKind.KIND_VIDEO), format=rtc.VideoBufferType.RGBA
    )
    fps, frame = await measure_stream(video, rtc.VideoBufferType.RGBA, seconds=2.0)
    await video.aclose()
    assert fps > 10, f"we receive {fps:.1f} fps"
    check_colours(np.frombuffer(frame.data, dtype=np.uint8).reshape(H, W, 4))

    their_video = next(t for t in c.their_subs if t.kind == official.TrackKind.KIND_VIDEO)
    official_video = official.VideoStream(their_video, format=official.VideoBufferType.RGBA)
    fps, frame = await measure_stream(official_video, official.VideoBufferType.RGBA, seconds=2.0)
    await official_video.aclose()
    assert fps > 10, f"the official SDK receives {fps:.1f} fps"
    check_colours(np.frombuffer(frame.data, dtype=np.uint8).reshape(H, W, 4))


async def check_data_and_rpc_both_ways(c: Call, tag: str) -> None:
    """Reliable and lossy packets and an RPC call, each way."""
    their_data: list[official.DataPacket] = []
    c.theirs.on("data_received", their_data.append)
    try:
        await c.ours.local_participant.publish_data(f"reliable {tag}", topic="r")
        await c.ours.local_participant.publish_data(f"lossy {tag}", reliable=False, topic="l")
        await wait_until(
            lambda: {p.data for p in their_data} >= {f"reliable {tag}".encode()},
            WAIT,
            "official receives our reliable packet",
        )
        # lossy packets may be lost; over the loopback one in a few tries arrives
        for _ in range(20):
            if any(p.data == f"lossy {tag}".encode() for p in their_data):
                break
            await c.ours.local_participant.publish_data(f"lossy {tag}", reliable=False)
            await asyncio.sleep(0.1)
        lossy = [p for p in their_data if p.data == f"lossy {tag}".encode()]
        assert lossy and lossy[0].kind == official.DataPacketKind.KIND_LOSSY

        await c.theirs.local_participant.publish_data(f"back {tag}".encode(), topic="r")
        (packet,) = await c.our_log.wait_for(
            "data_received", lambda p: p.data == f"back {tag}".encode(), timeout=WAIT
        )
        assert packet.kind == rtc.DataPacketKind.KIND_RELIABLE
        for _ in range(20):
            await c.theirs.local_participant.publish_data(
                f"lossy back {tag}".encode(), reliable=False
            )
            got = [
                a for a in c.our_log.args("data_received") if a[0].data.startswith(b"lossy back")
            ]
            if got:
                assert got[0][0].kind == rtc.DataPacketKind.KIND_LOSSY
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no lossy packet from the official SDK arrived")
    finally:
        c.theirs.off("data_received", their_data.append)

    async def upper(data: Any) -> str:
        return str(data.payload).upper()

    c.theirs.local_participant.register_rpc_method(f"upper-{tag}", upper)
    c.ours.local_participant.register_rpc_method(f"upper-{tag}", upper)
    reply = await c.ours.local_participant.perform_rpc(
        destination_identity="official", method=f"upper-{tag}", payload=f"to them {tag}"
    )
    assert reply == f"TO THEM {tag}".upper()
    reply = await c.theirs.local_participant.perform_rpc(
        destination_identity="ours", method=f"upper-{tag}", payload=f"to us {tag}"
    )
    assert reply == f"TO US {tag}".upper()


@pytest.mark.parametrize(
    ("our_single", "official_single"),
    [(True, True), (True, False), (False, True)],
    ids=["both_single", "official_dual", "ours_dual"],
)
async def test_media_data_and_rpc_flow_both_ways(
    server_url: str, make_token: TokenFactory, our_single: bool, official_single: bool
) -> None:
    async with call(
        server_url, make_token, official_single=official_single, our_single=our_single
    ) as c:
        await check_media_both_ways(c)
        await check_data_and_rpc_both_ways(c, "before")
        stats = await c.ours.get_rtc_stats()
        if our_single:
            kinds = {s.WhichOneof("stats") for s in stats.publisher_stats}
            assert {"inbound_rtp", "outbound_rtp"} <= kinds and stats.subscriber_stats == []


@pytest.mark.parametrize("official_single", [True, False], ids=["official_single", "official_dual"])
async def test_a_resume_keeps_media_data_and_rpc_flowing(
    server_url: str, make_token: TokenFactory, official_single: bool
) -> None:
    async with call(server_url, make_token, official_single=official_single) as c:
        await check_media_both_ways(c)
        engine = c.ours._session.engine
        before = len(c.our_log.items)
        await c.ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT)
        await c.our_log.wait_for("reconnected", timeout=60)
        assert c.our_log.names()[before:].count("reconnecting") == 1
        assert c.ours._session.engine is engine, "a resume, not a new session"
        assert single_pc(c.ours)
        await check_data_and_rpc_both_ways(c, "after")
        await check_media_both_ways(c)


@pytest_asyncio.fixture
async def old_server(server_url: str) -> AsyncIterator[TcpProxy]:
    """The server behind a proxy that answers 404 on /rtc/v1, as servers before 1.9 do."""
    target = urlparse(server_url)
    assert target.hostname is not None and target.port is not None
    proxy = TcpProxy(target.hostname, target.port)
    proxy.not_found = {"/rtc/v1"}
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def test_a_server_without_rtc_v1_is_joined_with_two_peer_connections(
    old_server: TcpProxy, server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["data_received", "reconnected"])
    their_data: list[official.DataPacket] = []
    theirs.on("data_received", their_data.append)
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(old_server.url, make_token("ours"))  # the default: one if it can
        engine = ours._session.engine
        assert engine is not None and not engine.single_peer_connection
        assert engine.subscriber is not None
        assert old_server.answered_not_found == 1
        await ours.local_participant.publish_data(b"over two")
        await wait_until(lambda: bool(their_data), WAIT, "official receives our packet")
        await theirs.local_participant.publish_data(b"back")
        await log.wait_for("data_received", lambda p: p.data == b"back", timeout=WAIT)
        # a resume goes where the join went: no second 404
        await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT)
        await log.wait_for("reconnected", timeout=60)
        assert old_server.answered_not_found == 1
        await ours.local_participant.publish_data(b"after the resume")
        await wait_until(
            lambda: any(p.data == b"after the resume" for p in their_data), WAIT, "after resume"
        )
    finally:
        await ours.disconnect()
        await theirs.disconnect()


@pytest.mark.parametrize("single", [True, False], ids=["single", "dual"])
async def test_a_receive_m_line_reused_for_another_track_carries_its_media(
    server_url: str, make_token: TokenFactory, single: bool
) -> None:
    """Two tones subscribed, one unpublished, a third published: the server puts the
    third on the freed m-line (another SSRC on a receiver aiortc already started)."""
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["track_subscribed", "track_unsubscribed"])
    sources = [official.AudioSource(48000, 1) for _ in range(3)]
    tones = (300.0, 500.0, 800.0)
    tracks = [
        official.LocalAudioTrack.create_audio_track(f"tone{i}", s) for i, s in enumerate(sources)
    ]
    mic = official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(theirs.disconnect)
        stack.push_async_callback(ours.disconnect)
        for source, tone in zip(sources, tones, strict=True):
            stack.push_async_callback(source.aclose)
            await stack.enter_async_context(
                background(feed_sine(source, official.AudioFrame, tone))
            )
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(
            server_url, make_token("ours"), rtc.RoomOptions(single_peer_connection=single)
        )
        assert single_pc(ours) is single
        first = await theirs.local_participant.publish_track(tracks[0], mic)
        second = await theirs.local_participant.publish_track(tracks[1], mic)
        for sid in (first.sid, second.sid):
            await log.wait_for("track_subscribed", lambda t, p, *_, s=sid: p.sid == s, WAIT)
        engine = ours._session.engine
        assert engine is not None
        mids = {sid: mid for mid, sid in engine._remote_mids.items()}
        await theirs.local_participant.unpublish_track(first.sid)
        await log.wait_for("track_unsubscribed", lambda t, p, *_: p.sid == first.sid, WAIT)
        third = await theirs.local_participant.publish_track(tracks[2], mic)
        track, _, _ = await log.wait_for(
            "track_subscribed", lambda t, p, *_: p.sid == third.sid, WAIT
        )
        reused = {sid: mid for mid, sid in engine._remote_mids.items()}.get(third.sid)
        print(f"first on m-line {mids.get(first.sid)}, third on {reused}")
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        samples, rate, _ = await collect_audio(stream, 1.0, timeout=WAIT)
        await stream.aclose()
        assert abs(dominant_frequency(samples, rate) - tones[2]) < 10
