"""livekit-py demo: a local livekit-server and two participants talking to each other.

Run it with ``./dev.sh -s demo`` (or ``python -m signaling.demo`` from the repository's
root in an environment with livekit-py and livekit-api installed). It is the
repository's demo, not an example (those are in examples/ and need only an installed
livekit-py and a server): it starts the real server from this folder on free local
ports, lets "alice" and "bob" join one room, and shows what each sees: joins and
leaves, reliable and lossy data with topics, targeted packets, the round-trip time of a
ping over the server, a 440 Hz tone that alice publishes and bob hears (he prints its
pitch and level), and 640x360 VP8 video at 30 fps (bob prints the frame rate and size
he receives).

Pass ``--url ws://host:port`` to use a running server instead (dev keys).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

import numpy as np
from livekit import api

from livekit_py import rtc
from signaling import local_server

ROOM = "livekit-py-demo"


def token(identity: str, name: str) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM)
    return (
        api.AccessToken(local_server.API_KEY, local_server.API_SECRET)
        .with_identity(identity)
        .with_name(name)
        .with_grants(grants)
        .to_jwt()
    )


def say(who: str, text: str) -> None:
    print(f"[{who:>5}] {text}", flush=True)


async def run(url: str) -> None:
    alice, bob = rtc.Room(), rtc.Room()

    joined, left = asyncio.Event(), asyncio.Event()

    @alice.on("participant_connected")
    def on_join(p: rtc.RemoteParticipant) -> None:
        say("alice", f"{p.identity} joined ({p.name})")
        joined.set()

    @alice.on("participant_disconnected")
    def on_leave(p: rtc.RemoteParticipant) -> None:
        say("alice", f"{p.identity} left")
        left.set()

    pongs: dict[str, float] = {}
    pong_arrived = asyncio.Event()

    @alice.on("data_received")
    def alice_data(packet: rtc.DataPacket) -> None:
        if packet.topic == "pong":
            pongs[packet.data.decode()] = time.perf_counter()
            pong_arrived.set()

    @bob.on("data_received")
    def bob_data(packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else "?"
        if packet.topic == "ping":
            # answer straight away, from inside the event handler
            asyncio.get_running_loop().create_task(
                bob.local_participant.publish_data(packet.data, topic="pong")
            )
            return
        kind = "reliable" if packet.kind == rtc.DataPacketKind.KIND_RELIABLE else "lossy"
        say("bob", f"{kind:8} from {sender} on topic {packet.topic!r}: {packet.data.decode()}")

    started = time.perf_counter()
    await alice.connect(url, token("alice", "Alice"))
    say("alice", f"connected to room {alice.name!r} ({alice.sid}) in {_ms(started)}")
    started = time.perf_counter()
    await bob.connect(url, token("bob", "Bob"))
    say("bob", f"connected in {_ms(started)}; already here: {list(bob.remote_participants)}")
    # The server batches join notices of participants that publish nothing
    # (every 3 s), so alice may hear about bob a little later.
    await asyncio.wait_for(joined.wait(), 10)
    say("alice", f"heard of bob's join {_ms(started)} after he started connecting")

    await alice.local_participant.publish_data("hello bob", topic="chat")
    await alice.local_participant.publish_data("only for bob", destination_identities=["bob"])
    for i in range(3):
        await alice.local_participant.publish_data(f"lossy #{i}", reliable=False, topic="telemetry")

    rtts = []
    for i in range(20):
        key = f"ping-{i}"
        sent = time.perf_counter()
        await alice.local_participant.publish_data(key, topic="ping")
        while key not in pongs:
            pong_arrived.clear()
            await asyncio.wait_for(pong_arrived.wait(), 5)
        rtts.append((pongs[key] - sent) * 1000)
    say(
        "alice",
        f"data round trip through the server: median {statistics.median(rtts):.1f} ms, "
        f"max {max(rtts):.1f} ms over {len(rtts)} pings",
    )

    await audio_one_way(alice, bob)
    await video_one_way(alice, bob)

    await bob.disconnect()
    await asyncio.wait_for(left.wait(), 10)
    await alice.disconnect()
    say("alice", "disconnected")


async def audio_one_way(alice: rtc.Room, bob: rtc.Room) -> None:
    """Alice publishes a 440 Hz tone; bob listens at 16 kHz mono and reports what he hears."""
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    @bob.on("track_subscribed")
    def on_track(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.Participant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and not subscribed.done():
            say("bob", f"subscribed to {p.identity}'s {pub.name!r} ({pub.mime_type})")
            subscribed.set_result(track)

    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)

    async def play_tone() -> None:
        n, step = 0, 480  # 10 ms frames; capture_frame paces us to real time
        while True:
            t = np.arange(n, n + step) / 48000
            samples = (0.3 * 32767 * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)
            await source.capture_frame(rtc.AudioFrame(samples.tobytes(), 48000, 1, step))
            n += step

    player = asyncio.create_task(play_tone())
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await alice.local_participant.publish_track(track, options)
    say("alice", f"publishing a 440 Hz tone at -13.5 dBFS as {publication.sid}")
    remote = await asyncio.wait_for(subscribed, 10)
    stream = rtc.AudioStream(remote, sample_rate=16000, num_channels=1)
    heard: list[np.ndarray] = []
    async for event in stream:
        heard.append(np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64))
        if len(heard) >= 150:  # 1.5 s of 10 ms frames
            break
    await stream.aclose()
    x = np.concatenate(heard[50:]) / 32768.0  # skip the first half second
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    pitch = np.fft.rfftfreq(len(x), 1 / 16000)[int(np.argmax(spectrum))]
    level = 20 * np.log10(np.sqrt(np.mean(x * x)) + 1e-12)
    say("bob", f"hears {pitch:.1f} Hz at {level:.1f} dBFS (16 kHz mono)")
    player.cancel()
    await alice.local_participant.unpublish_track(publication.sid)
    await source.aclose()


async def video_one_way(alice: rtc.Room, bob: rtc.Room, seconds: float = 3.0) -> None:
    """Alice publishes 640x360 VP8 at 30 fps; bob reports the rate and size he gets."""
    width, height, fps = 640, 360, 30
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    @bob.on("track_subscribed")
    def on_track(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.Participant) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO and not subscribed.done():
            say("bob", f"subscribed to {p.identity}'s {pub.name!r} ({pub.mime_type})")
            subscribed.set_result(track)

    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    # a bar moving across a gradient, so the encoder has real work to do
    base = np.zeros((height, width, 4), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    base[..., 2] = np.linspace(255, 0, height, dtype=np.uint8)[:, None]
    base[..., 3] = 255

    async def camera() -> None:
        start, n = time.monotonic(), 0
        while True:
            frame = base.copy()
            x = (n * 8) % width
            frame[:, x : x + 40, :3] = 255
            source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, frame))
            n += 1
            await asyncio.sleep(max(0.0, start + n / fps - time.monotonic()))

    capture = asyncio.create_task(camera())
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.VP8
    )
    publication = await alice.local_participant.publish_track(track, options)
    say("alice", f"publishing {width}x{height} VP8 video at {fps} fps as {publication.sid}")
    remote = await asyncio.wait_for(subscribed, 10)
    stream = rtc.VideoStream(remote, format=rtc.VideoBufferType.RGBA)
    frames, size, first = 0, (0, 0), None
    async for event in stream:
        now = time.monotonic()
        first = first or now
        frames += 1
        size = (event.frame.width, event.frame.height)
        if now - first >= seconds:
            break
    await stream.aclose()
    rate = (frames - 1) / max(1e-6, time.monotonic() - (first or 0))
    say("bob", f"receives {size[0]}x{size[1]} RGBA frames at {rate:.1f} fps")
    capture.cancel()
    await alice.local_participant.unpublish_track(publication.sid)
    await source.aclose()


def _ms(since: float) -> str:
    return f"{(time.perf_counter() - since) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("-v", "--verbose", action="store_true", help="log signal messages and SDP")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.verbose:
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.INFO)
    server = None
    url = args.url
    if url is None:
        print("starting livekit-server (built with Go on first use)...", flush=True)
        server = local_server.start()
        url = server.url
        print(f"livekit-server running at {url}", flush=True)
    try:
        asyncio.run(run(url))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
