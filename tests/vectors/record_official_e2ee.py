"""Record end-to-end encrypted frames from the official SDK, as test vectors.

Run once (it starts a real livekit-server) to write ``official_e2ee.json`` next to this
file; ``tests/unit/test_frame_crypto.py`` decrypts those frames with our code, without a
server::

    PYTHONPATH=src:. /work/main/.nox/tests/bin/python tests/vectors/record_official_e2ee.py

In each scenario the official SDK (``livekit`` 1.2.1) joins with a known shared key and
publishes Opus audio (a 440 Hz sine) and VP8 or H.264 video (a red/blue picture with a
moving grey bar at the top); livekit-py joins the same room without encryption and
captures what it receives, at the receive buffers: every RTP payload of the audio track
(one encrypted Opus frame each, at ``AudioPlayout.on_packet``) and every video frame our
``FrameAssembler`` completes (the depayloaded frame, as a decoder would get it). The
server's ``JoinResponse.sif_trailer`` is captured at ``SignalClient.join``.

The official SDK also sends a data packet (``publish_data(b"<phase> data")``) in the
first three phases and a text stream in the first; their ``DataPacket.encrypted_packet``
fields are recorded (at ``Room._on_data_packet``), encrypted with the key of the latest
``set_shared_key`` index (0, then 1), ratcheted in the second phase.

Phases, in order, each labelled on the frames captured while it lasts (a phase starts
0.7 s after its action, so frames in flight belong to the one before):

* ``start``: the first frames (a key frame and what follows).
* ``ratcheted``: after the publisher's ``ratchet_shared_key(0)``; its returned raw key
  is recorded, a receiver with the original key needs one ratchet.
* ``key_index_1``: after ``set_shared_key(KEY_1, 1)`` and ``set_key_index(1)`` on the
  publisher's frame cryptors.
* ``muted``: after muting the audio track; the server injects Opus silence frames with
  the SIF trailer.
* ``unpublished``: after unpublishing the video track (the server may flush blank
  frames).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiortc.rtp import RtpPacket
from livekit import api
from livekit import rtc as official
from livekit.rtc.version import __version__ as official_version

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from livekit_py import rtc  # noqa: E402
from livekit_py.signal import client as signal_client  # noqa: E402
from livekit_py.webrtc import audio_playout, frame_assembler  # noqa: E402
from signaling import local_server  # noqa: E402

OUT = Path(__file__).resolve().parent / "official_e2ee.json"
W, H, FPS = 320, 180, 30
RED, BLUE = (230, 30, 30), (30, 30, 230)
TONE_HZ = 440.0
KEY_0 = b"livekit-py e2ee test vectors, key 0"
KEY_1 = b"livekit-py e2ee test vectors, key 1"
SETTLE = 0.7  # seconds between an action and the phase it starts

logger = logging.getLogger("record_official_e2ee")


@dataclass
class Captured:
    kind: str  # "audio" or "video"
    phase: str
    data: bytes
    ssrc: int
    rtp_timestamp: int


@dataclass
class CapturedPacket:
    phase: str
    encryption_type: int
    iv: bytes
    key_index: int
    encrypted_value: bytes


@dataclass
class Capture:
    phase: str = "setup"
    sif_trailer: bytes = b""
    frames: list[Captured] = field(default_factory=list)
    packets: list[CapturedPacket] = field(default_factory=list)

    def count(self, kind: str, phase: str) -> int:
        return sum(1 for f in self.frames if f.kind == kind and f.phase == phase)


CAPTURE = Capture()


def install_hooks() -> None:
    """Wrap our receive buffers and the signal join to see what arrives (this process only)."""
    add_frames = frame_assembler.FrameAssembler.add_frames
    on_packet = audio_playout.AudioPlayout.on_packet
    join = signal_client.SignalClient.join
    on_data_packet = rtc.Room._on_data_packet

    def capturing_add_frames(self: Any, packet: RtpPacket) -> Any:
        pli, frames = add_frames(self, packet)
        for frame in frames:
            CAPTURE.frames.append(
                Captured("video", CAPTURE.phase, bytes(frame.data), packet.ssrc, frame.timestamp)
            )
        return pli, frames

    def capturing_on_packet(self: Any, packet: RtpPacket) -> None:
        if packet.payload:
            CAPTURE.frames.append(
                Captured(
                    "audio", CAPTURE.phase, bytes(packet.payload), packet.ssrc, packet.timestamp
                )
            )
        on_packet(self, packet)

    async def capturing_join(self: Any, url: str, token: str, options: Any) -> Any:
        response = await join(self, url, token, options)
        CAPTURE.sif_trailer = bytes(response.sif_trailer)
        return response

    def capturing_on_data_packet(self: Any, packet: Any, kind: int) -> None:
        if packet.HasField("encrypted_packet"):
            enc = packet.encrypted_packet
            CAPTURE.packets.append(
                CapturedPacket(
                    CAPTURE.phase,
                    enc.encryption_type,
                    bytes(enc.iv),
                    enc.key_index,
                    bytes(enc.encrypted_value),
                )
            )
        on_data_packet(self, packet, kind)

    rtc.Room._on_data_packet = capturing_on_data_packet  # type: ignore[method-assign]
    frame_assembler.FrameAssembler.add_frames = capturing_add_frames  # type: ignore[method-assign]
    audio_playout.AudioPlayout.on_packet = capturing_on_packet  # type: ignore[method-assign]
    signal_client.SignalClient.join = capturing_join  # type: ignore[method-assign]


def picture(n: int) -> bytes:
    """RGBA: left half red, right half blue, a grey bar moving along the top 24 rows."""
    img = np.zeros((H, W, 4), dtype=np.uint8)
    img[:, : W // 2, :3] = RED
    img[:, W // 2 :, :3] = BLUE
    img[:, :, 3] = 255
    x = (n * 8) % W
    img[:24, x : x + 32, :3] = 128
    return img.tobytes()


async def feed_video(source: official.VideoSource) -> None:
    start = time.monotonic()
    n = 0
    while True:
        source.capture_frame(official.VideoFrame(W, H, official.VideoBufferType.RGBA, picture(n)))
        n += 1
        await asyncio.sleep(max(0.0, start + n / FPS - time.monotonic()))


async def feed_audio(source: official.AudioSource) -> None:
    rate, step, n = source.sample_rate, source.sample_rate // 100, 0
    while True:
        t = np.arange(n, n + step) / rate
        block = (0.5 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        await source.capture_frame(official.AudioFrame(block.tobytes(), rate, 1, step))
        n += step


def token(identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return (
        api.AccessToken(local_server.API_KEY, local_server.API_SECRET)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def send_data(room: official.Room, phase: str) -> None:
    await room.local_participant.publish_data(
        f"{phase} data".encode(), reliable=True, topic="vectors"
    )


async def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def start_phase(name: str) -> None:
    await asyncio.sleep(SETTLE)
    CAPTURE.phase = name
    logger.info("phase %s", name)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def select(kind: str, phase: str, count: int, *, sif: bytes = b"") -> list[Captured]:
    frames = [f for f in CAPTURE.frames if f.kind == kind and f.phase == phase]
    if sif:
        frames = [f for f in frames if f.data.endswith(sif)]
    else:
        frames = [
            f for f in frames if not (CAPTURE.sif_trailer and f.data.endswith(CAPTURE.sif_trailer))
        ]
    return frames[:count]


async def run_scenario(url: str, name: str, codec: str, kdf: int, salt: bytes) -> dict[str, Any]:
    CAPTURE.frames.clear()
    CAPTURE.packets.clear()
    CAPTURE.phase = "setup"
    room_name = f"vectors-{name}-{uuid.uuid4().hex[:6]}"
    ours, theirs = rtc.Room(), official.Room()
    key_options = official.KeyProviderOptions(
        shared_key=KEY_0, ratchet_salt=salt, key_derivation_function=kdf
    )
    options = official.RoomOptions(
        encryption=official.E2EEOptions(key_provider_options=key_options)
    )
    video_source = official.VideoSource(W, H)
    audio_source = official.AudioSource(48000, 1)
    video = official.LocalVideoTrack.create_video_track("pattern", video_source)
    audio = official.LocalAudioTrack.create_audio_track("tone", audio_source)
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {
        "name": name,
        "video_codec": codec,
        "kdf": int(kdf),
        "salt": b64(salt),
        "ratchet_window_size": key_options.ratchet_window_size,
        "key_ring_size": key_options.key_ring_size,
    }
    try:
        await ours.connect(url, token("ours", room_name))
        await theirs.connect(url, token("official", room_name), options)
        tasks = [
            asyncio.ensure_future(feed_video(video_source)),
            asyncio.ensure_future(feed_audio(audio_source)),
        ]
        CAPTURE.phase = "start"
        await theirs.local_participant.publish_track(
            audio, official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
        )
        video_pub = await theirs.local_participant.publish_track(
            video,
            official.TrackPublishOptions(
                source=official.TrackSource.SOURCE_CAMERA,
                video_codec=getattr(official.VideoCodec, codec),
                video_encoding=official.VideoEncoding(max_bitrate=300_000, max_framerate=FPS),
                simulcast=False,
            ),
        )
        await wait_for(
            lambda: CAPTURE.count("video", "start") >= 8 and CAPTURE.count("audio", "start") >= 30,
            "the first frames",
        )
        await send_data(theirs, "start")
        await theirs.local_participant.send_text("start text", topic="vectors-text")
        provider = theirs.e2ee_manager.key_provider
        assert provider is not None
        ratcheted = provider.ratchet_shared_key(0)
        result["ratcheted_key"] = b64(ratcheted)
        await start_phase("ratcheted")
        await wait_for(
            lambda: (
                CAPTURE.count("video", "ratcheted") >= 4
                and CAPTURE.count("audio", "ratcheted") >= 10
            ),
            "frames after the ratchet",
        )
        await send_data(theirs, "ratcheted")
        provider.set_shared_key(KEY_1, 1)
        for cryptor in theirs.e2ee_manager.frame_cryptors():
            if cryptor.participant_identity == "official":
                cryptor.set_key_index(1)
        await start_phase("key_index_1")
        await wait_for(
            lambda: (
                CAPTURE.count("video", "key_index_1") >= 4
                and CAPTURE.count("audio", "key_index_1") >= 10
            ),
            "frames with key index 1",
        )
        await send_data(theirs, "key_index_1")
        await wait_for(lambda: len(CAPTURE.packets) >= 6, "the encrypted data packets")
        audio.mute()
        await start_phase("muted")
        await asyncio.sleep(1.5)
        await theirs.local_participant.unpublish_track(video_pub.sid)
        await start_phase("unpublished")
        await asyncio.sleep(1.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await theirs.disconnect()
        await ours.disconnect()
        await video_source.aclose()
        await audio_source.aclose()

    sif = CAPTURE.sif_trailer
    result["sif_trailer"] = b64(sif)
    frames: list[dict[str, Any]] = []

    def add(kind: str, phase: str, count: int, **expect: Any) -> None:
        for f in select(kind, phase, count, sif=expect.pop("sif", b"")):
            frames.append(
                {
                    "kind": "opus" if kind == "audio" else codec.lower(),
                    "phase": phase,
                    "data": b64(f.data),
                    "ssrc": f.ssrc,
                    "rtp_timestamp": f.rtp_timestamp,
                    **expect,
                }
            )

    add("video", "start", 6, raw_key=b64(KEY_0), key_index=0, ratchets=0)
    add("audio", "start", 20, raw_key=b64(KEY_0), key_index=0, ratchets=0)
    add("video", "ratcheted", 3, raw_key=b64(KEY_0), key_index=0, ratchets=1)
    add("audio", "ratcheted", 5, raw_key=b64(KEY_0), key_index=0, ratchets=1)
    add("video", "key_index_1", 2, raw_key=b64(KEY_1), key_index=1, ratchets=0)
    add("audio", "key_index_1", 3, raw_key=b64(KEY_1), key_index=1, ratchets=0)
    add("audio", "muted", 3, sif=sif, server_injected=True)
    add("video", "unpublished", 3, sif=sif, server_injected=True)
    result["frames"] = frames
    result["data_packets"] = [
        {
            "phase": p.phase,
            "encryption_type": p.encryption_type,
            "iv": b64(p.iv),
            "key_index": p.key_index,
            "encrypted_value": b64(p.encrypted_value),
            "raw_key": b64(KEY_1 if p.key_index == 1 else KEY_0),
            "ratchets": 1 if p.phase == "ratcheted" else 0,
        }
        for p in CAPTURE.packets
    ]
    counts = {(f.kind, f.phase): CAPTURE.count(f.kind, f.phase) for f in CAPTURE.frames}
    logger.info("%s: captured %s; kept %d frames", name, counts, len(frames))
    return result


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("aiortc", "aioice", "livekit", "livekit_py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_hooks()
    with tempfile.TemporaryDirectory() as tmp:
        server = local_server.start(Path(tmp) / "livekit-server.log")
        try:
            scenarios = [
                await run_scenario(
                    server.url,
                    "pbkdf2-vp8",
                    "VP8",
                    official.KeyDerivationFunction.PBKDF2,
                    b"LKFrameEncryptionKey",
                ),
                await run_scenario(
                    server.url,
                    "pbkdf2-h264",
                    "H264",
                    official.KeyDerivationFunction.PBKDF2,
                    b"LKFrameEncryptionKey",
                ),
                await run_scenario(
                    server.url,
                    "hkdf-vp8",
                    "VP8",
                    official.KeyDerivationFunction.HKDF,
                    b"livekit-py custom salt",
                ),
            ]
        finally:
            server.stop()
    fixture = {
        "about": (
            "Frames encrypted by the official SDK (livekit 1.2.1), received by livekit-py; "
            "written by tests/vectors/record_official_e2ee.py. Binary values are base64."
        ),
        "official_version": official_version,
        "picture": {"width": W, "height": H, "left": RED, "right": BLUE},
        "tone_hz": TONE_HZ,
        "scenarios": scenarios,
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    asyncio.run(main())
