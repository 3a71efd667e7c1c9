"""End-to-end encryption through the real server, with the official SDK as the peer.

Both SDKs encrypt and decrypt each other's Opus, VP8 and H.264 frames (shared and
per-participant keys), a wrong key yields no plaintext and a failed state until the right
key is set, a ratchet on the publisher is followed by the subscriber, and data packets and
text streams are encrypted both ways (an unencrypted participant cannot read them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc as official

from livekit_py import rtc
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import (
    background,
    collect_audio,
    dominant_frequency,
    feed_sine,
    rms_dbfs,
)
from tests.integration.test_video import FPS, H, W, check_colours, feed_video

pytestmark = [pytest.mark.server, pytest.mark.interop]

KEY = b"livekit-py end-to-end test key"
WRONG_KEY = b"not the key the others use"


def ours_e2ee(shared_key: bytes | None = KEY, **options: Any) -> rtc.RoomOptions:
    provider = rtc.KeyProviderOptions(shared_key=shared_key, **options)
    return rtc.RoomOptions(encryption=rtc.E2EEOptions(key_provider_options=provider))


def official_e2ee(shared_key: bytes | None = KEY, **options: Any) -> Any:
    provider = official.KeyProviderOptions(shared_key=shared_key, **options)
    return official.RoomOptions(encryption=official.E2EEOptions(key_provider_options=provider))


def states_of(log: EventLog, identity: str) -> list[int]:
    return [int(state) for p, state in log.args("e2ee_state_changed") if p.identity == identity]


@contextlib.asynccontextmanager
async def rooms(*pairs: tuple[Any, str]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for room, _ in pairs:
            await room.disconnect()


async def _publish(
    sdk: Any, room: Any, *, video: str | None, tone: float | None
) -> tuple[list[Any], list[Any]]:
    """Publish our pattern and/or tone with ``sdk`` (either SDK's ``rtc`` module);
    returns (publications, background feeders)."""
    publications, feeders = [], []
    if tone is not None:
        audio = sdk.AudioSource(48000, 1)
        track = sdk.LocalAudioTrack.create_audio_track("tone", audio)
        feeders.append(feed_sine(audio, sdk.AudioFrame, tone))
        publications.append(
            await room.local_participant.publish_track(
                track, sdk.TrackPublishOptions(source=sdk.TrackSource.SOURCE_MICROPHONE)
            )
        )
    if video is not None:
        source = sdk.VideoSource(W, H)
        track = sdk.LocalVideoTrack.create_video_track("pattern", source)
        feeders.append(feed_video(source, sdk.VideoFrame, sdk.VideoBufferType.RGBA))
        options = sdk.TrackPublishOptions(
            source=sdk.TrackSource.SOURCE_CAMERA,
            video_codec=getattr(sdk.VideoCodec, video),
            video_encoding=sdk.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
            simulcast=False,
        )
        publications.append(await room.local_participant.publish_track(track, options))
    return publications, feeders


async def publish_ours(
    room: rtc.Room, *, video: str | None = "VP8", tone: float | None = 440.0
) -> tuple[list[Any], list[Any]]:
    return await _publish(rtc, room, video=video, tone=tone)


async def publish_official(
    room: Any, *, video: str | None = "VP8", tone: float | None = 440.0
) -> tuple[list[Any], list[Any]]:
    return await _publish(official, room, video=video, tone=tone)


def remote_tracks(room: Any, identity: str) -> dict[int, Any]:
    """The subscribed tracks of ``identity`` by kind (either SDK; their enums are equal)."""
    participant = room.remote_participants.get(identity)
    if participant is None:
        return {}
    return {
        int(pub.kind): pub.track for pub in participant.track_publications.values() if pub.track
    }


async def wait_tracks(room: Any, identity: str, kinds: int) -> dict[int, Any]:
    await wait_until(
        lambda: len(remote_tracks(room, identity)) >= kinds,
        timeout=20,
        what=f"{kinds} track(s) of {identity}",
    )
    return remote_tracks(room, identity)


async def picture(sdk: Any, track: Any, *, timeout: float = 20.0, skip: int = 10) -> np.ndarray:
    """An RGBA picture of ``track`` decoded after ``skip`` of its frames (either SDK).

    Frames of another size (the server's blank 8x8 frames, in clear by design) are skipped.
    """
    stream = sdk.VideoStream(track, format=sdk.VideoBufferType.RGBA)
    try:

        async def read() -> Any:
            n = 0
            async for event in stream:
                if (event.frame.width, event.frame.height) != (W, H):
                    continue
                n += 1
                if n > skip:
                    return event.frame
            return None

        frame = await asyncio.wait_for(read(), timeout)
    finally:
        await stream.aclose()
    assert frame is not None
    return np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 4)


async def frames_within(sdk: Any, track: Any, seconds: float) -> int:
    """How many pictures of the published size a VideoStream of ``track`` yields in ``seconds``.

    (Not the blank frames the server may inject, which are in clear by design.)
    """
    stream = sdk.VideoStream(track, format=sdk.VideoBufferType.RGBA)
    count = 0

    async def read() -> None:
        nonlocal count
        async for event in stream:
            if (event.frame.width, event.frame.height) == (W, H):
                count += 1

    task = asyncio.ensure_future(read())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    await stream.aclose()
    return count


async def tone_of(sdk: Any, track: Any, seconds: float = 1.0) -> tuple[float, float]:
    """(dominant frequency, level dBFS) of ``seconds`` of ``track``'s audio (either SDK)."""
    stream = sdk.AudioStream(track, sample_rate=48000, num_channels=1)
    try:
        samples, rate, _ = await collect_audio(stream, seconds, skip_seconds=0.5, timeout=20)
    finally:
        await stream.aclose()
    return dominant_frequency(samples, rate), rms_dbfs(samples)


# ---------------------------------------------------------------------- shared key


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_the_official_sdk_decodes_our_encrypted_tone_and_picture(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    ours_log = EventLog(ours, ["e2ee_state_changed"])
    theirs_log = EventLog(theirs, ["e2ee_state_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        publications, feeders = await publish_ours(ours, video=codec)
        assert all(p.encryption_type == rtc.EncryptionType.GCM for p in publications)
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(theirs, "ours", 2)
            rgba = await picture(official, tracks[official.TrackKind.KIND_VIDEO])
            frequency, level = await tone_of(official, tracks[official.TrackKind.KIND_AUDIO])
        check_colours(rgba)
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)
        remote = theirs.remote_participants["ours"].track_publications
        assert {p.encryption_type for p in remote.values()} == {official.EncryptionType.GCM}
        await wait_until(
            lambda: official.EncryptionState.OK in states_of(theirs_log, "ours"),
            timeout=10,
            what="the official SDK's OK state",
        )
        assert official.EncryptionState.DECRYPTION_FAILED not in states_of(theirs_log, "ours")
        # ours reported its encryptors' states for the local participant
        assert rtc.EncryptionState.OK in states_of(ours_log, "ours")
        cryptors = ours.e2ee_manager.frame_cryptors()
        assert {c.track_sid for c in cryptors} == {p.sid for p in publications}
        assert all(c.participant_identity == "ours" and c.enabled for c in cryptors)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_we_decode_the_official_sdks_encrypted_tone_and_picture(
    server_url: str, make_token: TokenFactory, codec: str
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["e2ee_state_changed", "participant_encryption_status_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        _, feeders = await publish_official(theirs, video=codec)
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(ours, "official", 2)
            await wait_until(
                lambda: rtc.EncryptionState.OK in states_of(log, "official"),
                timeout=10,
                what="our OK state",
            )
            rgba = await picture(rtc, tracks[rtc.TrackKind.KIND_VIDEO])
            frequency, level = await tone_of(rtc, tracks[rtc.TrackKind.KIND_AUDIO])
        check_colours(rgba)
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)
        assert rtc.EncryptionState.DECRYPTION_FAILED not in states_of(log, "official")
        pubs = ours.remote_participants["official"].track_publications.values()
        assert {p.encryption_type for p in pubs} == {rtc.EncryptionType.GCM}
        assert log.args("participant_encryption_status_changed")[-1] == (
            ours.remote_participants["official"],
            True,
        )
        cryptors = {c.track_sid: c for c in ours.e2ee_manager.frame_cryptors()}
        assert set(cryptors) >= {p.sid for p in pubs}


# ---------------------------------------------------------------------- per-participant keys


async def test_per_participant_keys_both_ways(server_url: str, make_token: TokenFactory) -> None:
    """Each participant encrypts with its own key; each knows both."""
    ours, theirs = rtc.Room(), official.Room()
    keys = {"ours": b"our own key", "official": b"the official SDK's key"}
    async with rooms((ours, "ours"), (theirs, "official")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee(shared_key=None))
        await theirs.connect(server_url, make_token("official"), official_e2ee(shared_key=None))
        for room in (ours, theirs):
            provider = room.e2ee_manager.key_provider
            assert provider is not None
            for identity, key in keys.items():
                provider.set_key(identity, key, 0)
        assert ours.e2ee_manager.key_provider.export_key("official", 0) == keys["official"]  # type: ignore[union-attr]
        _, our_feeders = await publish_ours(ours, video="VP8", tone=440.0)
        _, their_feeders = await publish_official(theirs, video=None, tone=660.0)
        async with background(asyncio.gather(*our_feeders, *their_feeders)):
            theirs_got = await wait_tracks(theirs, "ours", 2)
            ours_got = await wait_tracks(ours, "official", 1)
            rgba = await picture(official, theirs_got[official.TrackKind.KIND_VIDEO])
            f_theirs, level_theirs = await tone_of(
                official, theirs_got[official.TrackKind.KIND_AUDIO]
            )
            f_ours, level_ours = await tone_of(rtc, ours_got[rtc.TrackKind.KIND_AUDIO])
        check_colours(rgba)
        assert abs(f_theirs - 440.0) < 3.0 and level_theirs > -20, (f_theirs, level_theirs)
        # (1 % of the pitch: our jitter buffer may stretch a little of it)
        assert abs(f_ours - 660.0) < 6.6 and level_ours > -20, (f_ours, level_ours)


# ---------------------------------------------------------------------- a wrong key


async def test_with_a_wrong_key_we_get_no_plaintext_until_the_right_one_is_set(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["e2ee_state_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await ours.connect(
            server_url, make_token("ours"), ours_e2ee(shared_key=WRONG_KEY, failure_tolerance=3)
        )
        _, feeders = await publish_official(theirs, video="VP8")
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(ours, "official", 2)
            await wait_until(
                lambda: rtc.EncryptionState.DECRYPTION_FAILED in states_of(log, "official"),
                timeout=20,
                what="the decryption-failed state",
            )
            assert await frames_within(rtc, tracks[rtc.TrackKind.KIND_VIDEO], 2.0) == 0
            _, level = await tone_of(rtc, tracks[rtc.TrackKind.KIND_AUDIO])
            assert level < -60, f"wrong-key audio at {level:.1f} dBFS"
            provider = ours.e2ee_manager.key_provider
            assert provider is not None
            provider.set_shared_key(KEY, 0)
            await wait_until(
                lambda: states_of(log, "official")[-1] == rtc.EncryptionState.OK,
                timeout=20,
                what="OK again with the right key",
            )
            rgba = await picture(rtc, tracks[rtc.TrackKind.KIND_VIDEO])
            frequency, level = await tone_of(rtc, tracks[rtc.TrackKind.KIND_AUDIO])
        check_colours(rgba)
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)


async def test_with_a_wrong_key_the_official_sdk_gets_no_plaintext_of_ours(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(theirs, ["e2ee_state_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await theirs.connect(
            server_url,
            make_token("official"),
            official_e2ee(shared_key=WRONG_KEY, failure_tolerance=3),
        )
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        _, feeders = await publish_ours(ours, video="VP8")
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(theirs, "ours", 2)
            await wait_until(
                lambda: official.EncryptionState.DECRYPTION_FAILED in states_of(log, "ours"),
                timeout=20,
                what="the official SDK's decryption-failed state",
            )
            video = tracks[official.TrackKind.KIND_VIDEO]
            assert await frames_within(official, video, 2.0) == 0
            _, level = await tone_of(official, tracks[official.TrackKind.KIND_AUDIO])
            assert level < -60, f"wrong-key audio at {level:.1f} dBFS"
            provider = theirs.e2ee_manager.key_provider
            provider.set_shared_key(KEY, 0)
            rgba = await picture(official, video)
            frequency, level = await tone_of(official, tracks[official.TrackKind.KIND_AUDIO])
        check_colours(rgba)
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)


# ---------------------------------------------------------------------- a ratchet


async def test_the_official_sdk_follows_our_ratchet(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(theirs, ["e2ee_state_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        _, feeders = await publish_ours(ours, video="VP8", tone=None)
        async with background(asyncio.gather(*feeders)):
            video = (await wait_tracks(theirs, "ours", 1))[official.TrackKind.KIND_VIDEO]
            assert await frames_within(official, video, 1.5) > 15
            provider = ours.e2ee_manager.key_provider
            assert provider is not None
            new_key = provider.ratchet_shared_key(0)
            assert len(new_key) == 32 and provider.export_shared_key(0) == new_key
            await wait_until(
                lambda: official.EncryptionState.KEY_RATCHETED in states_of(log, "ours"),
                timeout=20,
                what="the official SDK's KEY_RATCHETED state",
            )
            await asyncio.sleep(1.0)
            assert await frames_within(official, video, 2.0) > 20
            check_colours(await picture(official, video))
        assert official.EncryptionState.DECRYPTION_FAILED not in states_of(log, "ours")


async def test_we_follow_the_official_sdks_ratchet(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["e2ee_state_changed"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        _, feeders = await publish_official(theirs, video="VP8", tone=440.0)
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(ours, "official", 2)
            video = tracks[rtc.TrackKind.KIND_VIDEO]
            assert await frames_within(rtc, video, 1.5) > 15
            theirs.e2ee_manager.key_provider.ratchet_shared_key(0)
            await wait_until(
                lambda: rtc.EncryptionState.KEY_RATCHETED in states_of(log, "official"),
                timeout=20,
                what="our KEY_RATCHETED state",
            )
            await asyncio.sleep(1.0)
            assert await frames_within(rtc, video, 2.0) > 20
            check_colours(await picture(rtc, video))
            frequency, level = await tone_of(rtc, tracks[rtc.TrackKind.KIND_AUDIO])
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)
        provider = ours.e2ee_manager.key_provider
        assert provider is not None
        assert provider.export_shared_key(0) == KEY  # only the official SDK's copy ratcheted
        assert rtc.EncryptionState.DECRYPTION_FAILED not in states_of(log, "official")


# ---------------------------------------------------------------------- data


async def test_encrypted_data_and_text_streams_both_ways_and_unencrypted_peers_get_nothing(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    plain_ours, plain_theirs = rtc.Room(), official.Room()
    got: dict[str, list[Any]] = {"ours": [], "official": [], "plain_ours": [], "plain_official": []}
    texts: dict[str, list[str]] = {name: [] for name in got}

    def on_data(name: str) -> Any:
        return lambda packet: got[name].append(bytes(packet.data))

    def on_text(name: str) -> Any:
        async def read(reader: Any, identity: str) -> None:
            texts[name].append(await reader.read_all())

        return lambda reader, identity: asyncio.ensure_future(read(reader, identity))

    for name, room in (
        ("ours", ours),
        ("official", theirs),
        ("plain_ours", plain_ours),
        ("plain_official", plain_theirs),
    ):
        room.on("data_received", on_data(name))
        room.register_text_stream_handler("secret", on_text(name))
    async with rooms((ours, "ours"), (theirs, "official"), (plain_ours, "p"), (plain_theirs, "q")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await plain_ours.connect(server_url, make_token("plain_ours"))
        await plain_theirs.connect(server_url, make_token("plain_official"))
        await wait_until(
            lambda: len(ours.remote_participants) == 3 and len(theirs.remote_participants) == 3,
            timeout=15,
            what="everybody in the room",
        )
        await ours.local_participant.publish_data(b"from ours", reliable=True)
        await theirs.local_participant.publish_data(b"from official", reliable=True)
        await ours.local_participant.send_text("our secret text", topic="secret")
        await theirs.local_participant.send_text("their secret text", topic="secret")
        await wait_until(
            lambda: got["ours"] == [b"from official"] and got["official"] == [b"from ours"],
            timeout=15,
            what="the decrypted data packets",
        )
        await wait_until(
            lambda: (
                texts["ours"] == ["their secret text"] and texts["official"] == ["our secret text"]
            ),
            timeout=15,
            what="the decrypted text streams",
        )
        await plain_ours.local_participant.publish_data(b"in clear", reliable=True)
        await wait_until(
            lambda: b"in clear" in got["ours"] and b"in clear" in got["official"],
            timeout=15,
            what="a packet in clear after the encrypted ones",
        )
        await asyncio.sleep(0.5)
        # the unencrypted participants got neither the encrypted packets nor the streams
        assert got["plain_ours"] == [] and got["plain_official"] == [b"in clear"]
        assert texts["plain_ours"] == [] and texts["plain_official"] == []


async def test_encrypted_rpc_over_data_streams_both_ways(
    server_url: str, make_token: TokenFactory
) -> None:
    ours, theirs = rtc.Room(), official.Room()
    payload = "".join(f"{i:05d}é" for i in range(20_000))  # 120 kB: RPC v2 only

    async def their_reverse(data: Any) -> str:
        return str(data.payload)[::-1]

    async with rooms((ours, "ours"), (theirs, "official")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await wait_until(
            lambda: "official" in ours.remote_participants and "ours" in theirs.remote_participants,
            what="each sees the other",
        )
        theirs.local_participant.register_rpc_method("reverse", their_reverse)
        ours.local_participant.register_rpc_method("upper", lambda data: data.payload.upper())
        out = await ours.local_participant.perform_rpc(
            destination_identity="official", method="reverse", payload=payload
        )
        assert out == payload[::-1]
        back = await theirs.local_participant.perform_rpc(
            destination_identity="ours", method="upper", payload=payload
        )
        assert back == payload.upper()


async def test_the_deprecated_e2ee_option_warns_and_encrypts_media_but_not_data(
    server_url: str, make_token: TokenFactory
) -> None:
    """As the official SDK (Rust): ``e2ee=`` encrypts the tracks; data stays in clear."""
    ours, theirs, plain = rtc.Room(), official.Room(), official.Room()
    got: list[bytes] = []
    plain.on("data_received", lambda packet: got.append(bytes(packet.data)))
    async with rooms((ours, "ours"), (theirs, "official"), (plain, "plain")):
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await plain.connect(server_url, make_token("plain"))
        provider = rtc.KeyProviderOptions(shared_key=KEY)
        with pytest.warns(DeprecationWarning, match="encryption"):
            await ours.connect(
                server_url,
                make_token("ours"),
                rtc.RoomOptions(e2ee=rtc.E2EEOptions(key_provider_options=provider)),
            )
        assert ours.e2ee_manager.enabled
        publications, feeders = await publish_ours(ours, video=None)
        assert publications[0].encryption_type == rtc.EncryptionType.GCM
        async with background(asyncio.gather(*feeders)):
            tracks = await wait_tracks(theirs, "ours", 1)
            frequency, level = await tone_of(official, tracks[official.TrackKind.KIND_AUDIO])
            await wait_until(lambda: "ours" in plain.remote_participants, 10, "ours seen")
            await ours.local_participant.publish_data(b"in clear", reliable=True)
            await wait_until(lambda: got == [b"in clear"], 10, "the packet in clear")
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)


async def test_a_full_reconnect_republishes_encrypted(
    server_url: str, make_token: TokenFactory
) -> None:
    """The republished track is encrypted from its first frame; the old cryptor is gone."""
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["local_track_republished", "reconnected"])
    async with rooms((ours, "ours"), (theirs, "official")):
        await theirs.connect(server_url, make_token("official"), official_e2ee())
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        (publication,), feeders = await publish_ours(ours, video=None)
        async with background(asyncio.gather(*feeders)):
            await wait_tracks(theirs, "ours", 1)
            before = publication.sid
            await ours.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
            await log.wait_for("local_track_republished", timeout=30)
            assert publication.sid != before
            assert publication.encryption_type == rtc.EncryptionType.GCM
            await wait_until(
                lambda: any(
                    pub.sid == publication.sid and pub.track is not None
                    for p in theirs.remote_participants.values()
                    for pub in p.track_publications.values()
                ),
                timeout=20,
                what="the official SDK subscribed to the republished track",
            )
            track = remote_tracks(theirs, "ours")[official.TrackKind.KIND_AUDIO]
            frequency, level = await tone_of(official, track)
        assert abs(frequency - 440.0) < 3.0 and level > -20, (frequency, level)
        assert [c.track_sid for c in ours.e2ee_manager.frame_cryptors()] == [publication.sid]


async def test_an_encrypted_video_with_default_options_is_simulcast(
    server_url: str, make_token: TokenFactory
) -> None:
    """Simulcast is the default, in an encrypted room too (each layer encrypted)."""
    ours = rtc.Room()
    async with rooms((ours, "ours")):
        await ours.connect(server_url, make_token("ours"), ours_e2ee())
        source = rtc.VideoSource(1280, 720)
        track = rtc.LocalVideoTrack.create_video_track("cam", source)
        publication = await ours.local_participant.publish_track(track)
        assert publication.simulcasted
        assert publication.encryption_type == rtc.EncryptionType.GCM
        await source.aclose()
