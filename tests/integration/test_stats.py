"""Statistics through the real server, with the official SDK in the same room.

Both SDKs publish audio, video and a data packet and subscribe to each other; then the
same reading code (tests/stats_reading.py, official field names only) runs on what each
SDK's ``Track.get_stats()`` and ``Room.get_rtc_stats()`` return.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests import stats_reading as read
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background, feed_sine

pytestmark = [pytest.mark.server, pytest.mark.interop]

W, H, FPS = 320, 240, 15


async def _feed_video(
    source: Any, frame_cls: Any, buffer_type: Any, width: int, height: int
) -> None:
    """A moving grey ramp at FPS frames per second, for a minute."""
    ramp = np.tile(np.arange(width, dtype=np.uint8), (height, 1))
    start = time.monotonic()
    for sent in range(60 * FPS):
        rgba = np.empty((height, width, 4), np.uint8)
        rgba[..., :3] = np.roll(ramp, sent * 4, axis=1)[..., None]
        rgba[..., 3] = 255
        source.capture_frame(frame_cls(width, height, buffer_type, rgba.tobytes()))
        await asyncio.sleep(max(0.0, start + (sent + 1) / FPS - time.monotonic()))


async def _eventually(
    get: Callable[[], Awaitable[list[Any]]],
    *checks: Callable[[list[Any]], None],
    what: str,
    timeout: float = 30.0,
) -> list[Any]:
    """Poll ``get()`` until every check passes on its statistics (no timing asserted).

    Counters start at zero and grow: a check that fails early is retried on fresher
    statistics; the last failure is raised when ``timeout`` runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        stats = list(await get())
        try:
            for check in checks:
                check(stats)
            return stats
        except AssertionError as failure:
            if time.monotonic() > deadline:
                kinds = sorted({s.WhichOneof("stats") for s in stats})
                raise AssertionError(f"{what}: {failure}; the stats had {kinds}") from failure
        await asyncio.sleep(0.25)


# ---------------------------------------------------------------------- the reading code


def _one(items: list[Any], what: str) -> Any:
    assert len(items) == 1, f"{len(items)} {what}"
    return items[0]


def check_received_audio(stats: list[Any]) -> None:
    inbound = _one(read.inbound(stats, "audio"), "inbound audio streams")
    assert inbound.received.packets_received > 0
    assert inbound.received.jitter >= 0
    assert read.codec_of(stats, inbound).mime_type.lower() == "audio/opus"
    assert read.codec_of(stats, inbound).clock_rate == 48000
    assert inbound.inbound.total_samples_received > 0
    assert inbound.inbound.jitter_buffer_emitted_count > 0
    assert inbound.inbound.concealed_samples <= inbound.inbound.total_samples_received


def check_received_video(stats: list[Any]) -> None:
    inbound = _one(read.inbound(stats, "video"), "inbound video streams")
    assert inbound.inbound.frames_decoded > 0
    assert inbound.received.packets_received > 0 and inbound.inbound.bytes_received > 0
    assert read.codec_of(stats, inbound).mime_type.lower() in ("video/vp8", "video/h264")
    assert 0 < inbound.inbound.frame_width <= W and 0 < inbound.inbound.frame_height <= H


def check_sent_video(stats: list[Any]) -> None:
    streams = [s for s in read.outbound(stats, "video") if s.outbound.frames_encoded > 0]
    assert streams
    for stream in streams:
        assert stream.sent.bytes_sent > 0 and stream.sent.packets_sent > 0
        assert stream.outbound.key_frames_encoded >= 1
        assert read.codec_of(stats, stream).clock_rate == 90000
    source = _one(read.entries(stats, "media_source"), "media sources")
    assert source.source.kind == "video" and source.video.frames > 0
    assert (source.video.width, source.video.height) == (W, H)


def check_sent_audio(stats: list[Any]) -> None:
    stream = _one(read.outbound(stats, "audio"), "outbound audio streams")
    assert stream.sent.packets_sent > 0 and stream.sent.bytes_sent > 0
    assert read.codec_of(stats, stream).mime_type.lower() == "audio/opus"
    assert stream.outbound.target_bitrate > 0
    source = _one(read.entries(stats, "media_source"), "media sources")
    assert source.source.kind == "audio" and source.audio.total_samples_duration > 0
    assert 0 < source.audio.audio_level <= 1


def check_the_path(stats: list[Any]) -> None:
    """The transport's selected pair was measured, its certificates are there."""
    pairs = read.selected_pairs(stats)
    assert pairs, "no transport names a selected candidate pair"
    for pair in pairs:
        assert pair.state == rtc.stats.PAIR_SUCCEEDED
        assert pair.HasField("current_round_trip_time") and pair.current_round_trip_time >= 0
    for transport in read.entries(stats, "transport"):
        t = transport.transport
        if t.dtls_state == rtc.stats.DTLS_TRANSPORT_CONNECTED:
            assert t.local_certificate_id and t.remote_certificate_id
    assert read.dangling_references(stats) == []


def check_sent_data(stats: list[Any]) -> None:
    channel = read.data_channel(stats, "_reliable")
    assert channel is not None, "no _reliable data channel"
    assert channel.state == rtc.stats.DC_OPEN
    assert channel.messages_sent >= 1 and channel.bytes_sent > 0
    connections = read.entries(stats, "peer_connection")
    assert connections and connections[0].pc.data_channels_opened >= 2


# ---------------------------------------------------------------------- the test


async def test_the_same_reading_code_reads_both_sdks_stats(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    our_log = EventLog(ours, ["track_subscribed"])
    their_tracks: dict[int, Any] = {}
    theirs.on("track_subscribed", lambda track, pub, p: their_tracks.__setitem__(track.kind, track))
    our_audio, their_audio = rtc.AudioSource(48000, 1), official.AudioSource(48000, 1)
    our_video, their_video = rtc.VideoSource(W, H), official.VideoSource(W, H)
    our_tracks = (
        rtc.LocalAudioTrack.create_audio_track("mic", our_audio),
        rtc.LocalVideoTrack.create_video_track("cam", our_video),
    )
    their_local = (
        official.LocalAudioTrack.create_audio_track("mic", their_audio),
        official.LocalVideoTrack.create_video_track("cam", their_video),
    )
    try:
        await theirs.connect(server_url, make_token("official"))
        await ours.connect(server_url, make_token("ours"))
        async with (
            background(feed_sine(our_audio, rtc.AudioFrame, 440.0)),
            background(feed_sine(their_audio, official.AudioFrame, 660.0)),
            background(_feed_video(our_video, rtc.VideoFrame, rtc.VideoBufferType.RGBA, W, H)),
            background(
                _feed_video(their_video, official.VideoFrame, official.VideoBufferType.RGBA, W, H)
            ),
        ):
            for track in our_tracks:
                await ours.local_participant.publish_track(track)
            for their_track in their_local:
                await theirs.local_participant.publish_track(their_track)
            await ours.local_participant.publish_data(b"stats, please")
            await theirs.local_participant.publish_data(b"stats, please")
            await our_log.wait_for(
                "track_subscribed", lambda t, *_: t.kind == rtc.TrackKind.KIND_AUDIO, timeout=30
            )
            (our_remote_video, *_) = await our_log.wait_for(
                "track_subscribed", lambda t, *_: t.kind == rtc.TrackKind.KIND_VIDEO, timeout=30
            )
            (our_remote_audio, *_) = [
                args[0]
                for args in our_log.args("track_subscribed")
                if args[0].kind == rtc.TrackKind.KIND_AUDIO
            ]
            await wait_until(
                lambda: len(their_tracks) == 2, 30, "the official SDK subscribes to both tracks"
            )

            sides = {
                "ours": (ours, our_tracks, our_remote_audio, our_remote_video),
                "official": (
                    theirs,
                    their_local,
                    their_tracks[official.TrackKind.KIND_AUDIO],
                    their_tracks[official.TrackKind.KIND_VIDEO],
                ),
            }
            for name, (
                room,
                (local_audio, local_video),
                remote_audio,
                remote_video,
            ) in sides.items():
                await _eventually(
                    remote_audio.get_stats,
                    check_received_audio,
                    check_the_path,
                    what=f"{name}, the subscribed audio",
                )
                await _eventually(
                    remote_video.get_stats, check_received_video, what=f"{name}, subscribed video"
                )
                await _eventually(
                    local_video.get_stats,
                    check_sent_video,
                    check_the_path,
                    what=f"{name}, the published video",
                )
                await _eventually(
                    local_audio.get_stats, check_sent_audio, what=f"{name}, the published audio"
                )

                async def everything(room: Any = room) -> list[Any]:
                    both = await room.get_rtc_stats()
                    return list(both.publisher_stats) + list(both.subscriber_stats)

                got = await _eventually(
                    everything, check_sent_data, check_the_path, what=f"{name}, the whole room"
                )
                assert read.inbound(got, "audio") and read.outbound(got, "video")
    finally:
        await ours.disconnect()
        await theirs.disconnect()
        await our_audio.aclose()
        await their_audio.aclose()
        await our_video.aclose()
        await their_video.aclose()


async def test_each_of_our_simulcast_layers_is_an_outbound_stream_with_its_rid(
    server_url: str, make_token: TokenFactory
) -> None:
    """As the official SDK reports simulcast: one outbound_rtp per layer, told by ``rid``."""
    room = rtc.Room()
    width, height = 480, 270  # the smallest picture sent as two layers
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)

    def check_layers(stats: list[Any]) -> None:
        layers = read.outbound(stats, "video")
        assert sorted(s.outbound.rid for s in layers) == ["h", "q"]
        for layer in layers:
            assert layer.outbound.active
            assert layer.outbound.frames_encoded > 0 and layer.sent.bytes_sent > 0
            assert layer.outbound.frame_width <= width
            assert read.codec_of(stats, layer).mime_type.lower() == "video/vp8"
        assert len({s.stream.ssrc for s in layers}) == 2
        assert len({s.outbound.media_source_id for s in layers}) == 1

    try:
        await room.connect(server_url, make_token("ours"))
        async with background(
            _feed_video(source, rtc.VideoFrame, rtc.VideoBufferType.RGBA, width, height)
        ):
            await room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(simulcast=True)
            )
            stats = await _eventually(track.get_stats, check_layers, what="two layers sent")
            assert read.dangling_references(stats) == []
    finally:
        await room.disconnect()
        await source.aclose()
