"""End-to-end encryption: publish a tone the server cannot hear, and chat it cannot read.

    python examples/e2ee.py --room secret-room --key "correct horse battery staple"
    LIVEKIT_E2EE_KEY=... python examples/e2ee.py --video

Every participant given the same key (shared-key mode) hears the 440 Hz tone, sees the
optional test picture and reads the chat; the server only forwards ciphertext (AES-GCM
frames, keys derived with PBKDF2, as every LiveKit SDK does). Chat on topic ``chat``
(text streams, encrypted too) is printed, and each participant who joins is greeted.
Changes of a track's encryption state (ok, missing key, decryption failed) are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import numpy as np
from _common import connect, parser, run, say

from livekit_py import rtc

RATE = 48000
FRAME = RATE // 100
WIDTH, HEIGHT, FPS = 320, 240, 15


async def play_tone(source: rtc.AudioSource, frequency: float = 440.0) -> None:
    n = 0
    while True:
        t = np.arange(n, n + FRAME) / RATE
        samples = (0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, FRAME))
        n += FRAME


async def show_pattern(source: rtc.VideoSource) -> None:
    """A bar moving over a gradient, FPS times a second."""
    base = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    base[..., 0] = np.linspace(0, 255, WIDTH, dtype=np.uint8)[None, :]
    base[..., 2] = np.linspace(255, 0, HEIGHT, dtype=np.uint8)[:, None]
    base[..., 3] = 255
    loop = asyncio.get_running_loop()
    start, n = loop.time(), 0
    while True:
        frame = base.copy()
        x = (n * 6) % WIDTH
        frame[:, x : x + 20, :3] = 255
        source.capture_frame(
            rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, frame.tobytes())
        )
        n += 1
        await asyncio.sleep(max(0.0, start + n / FPS - loop.time()))


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    key = args.key or os.environ.get("LIVEKIT_E2EE_KEY")
    if not key:
        raise SystemExit("give the shared key with --key or LIVEKIT_E2EE_KEY")
    options = rtc.RoomOptions(
        encryption=rtc.E2EEOptions(
            key_provider_options=rtc.KeyProviderOptions(shared_key=key.encode())
        )
    )
    room = rtc.Room()
    tasks: set[asyncio.Task[object]] = set()

    def spawn(coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @room.on("e2ee_state_changed")
    def on_state(participant: rtc.Participant, state: int) -> None:
        say(f"encryption of {participant.identity}: {rtc.EncryptionState.Name(state)}")

    @room.on("participant_connected")
    def on_join(participant: rtc.RemoteParticipant) -> None:
        say(f"{participant.identity} joined")
        spawn(
            room.local_participant.send_text(
                f"hello {participant.identity}, only our key can read this",
                topic="chat",
                destination_identities=[participant.identity],
            )
        )

    def on_chat(reader: rtc.TextStreamReader, sender: str) -> None:
        async def read() -> None:
            say(f"chat from {sender}: {await reader.read_all()!r}")

        spawn(read())

    room.register_text_stream_handler("chat", on_chat)
    await connect(room, args, name="Encrypted", options=options)
    say(f"end-to-end encryption on: {room.e2ee_manager.enabled}")

    audio = rtc.AudioSource(RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", audio)
    publication = await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    spawn(play_tone(audio))
    say(f"publishing an encrypted 440 Hz tone as {publication.sid}")
    video = None
    if args.video:
        video = rtc.VideoSource(WIDTH, HEIGHT)
        video_track = rtc.LocalVideoTrack.create_video_track("pattern", video)
        video_pub = await room.local_participant.publish_track(
            video_track,
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.VP8
            ),
        )
        spawn(show_pattern(video))
        say(f"publishing an encrypted {WIDTH}x{HEIGHT} picture as {video_pub.sid}")
    await stop.wait()
    for task in list(tasks):
        task.cancel()
    await room.disconnect()
    await audio.aclose()
    if video is not None:
        await video.aclose()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="e2ee-example")
    cli.add_argument("--key", help="the shared key (default: $LIVEKIT_E2EE_KEY)")
    cli.add_argument("--video", action="store_true", help="publish a test picture too")
    run(cli.parse_args(), main)
