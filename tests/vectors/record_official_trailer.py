"""Record video frames with packet trailers (frame metadata) from the official SDK, as vectors.

Run once (it starts a real livekit-server) to write ``official_trailer.json`` next to
this file; ``tests/unit/test_packet_trailer.py`` parses those frames with our code,
without a server::

    PYTHONPATH=src:. /work/main/.nox/tests/bin/python tests/vectors/record_official_trailer.py

In each scenario the official SDK (``livekit`` 1.2.1) publishes a small VP8 or H.264
track with ``frame_metadata_features`` = user timestamp, frame id and user data, in
clear or end-to-end encrypted with a known shared key, and captures frame ``n`` (1, 2,
...) with the metadata :func:`metadata_fields` gives it: every field, only one of them,
or none. livekit-py joins the same room without encryption (advertising
``CAP_PACKET_TRAILER``, so the server leaves the trailers on) and records each video
frame its ``FrameAssembler`` completes, before anything is stripped or decrypted.
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
from livekit_py.webrtc import frame_assembler  # noqa: E402
from signaling import local_server  # noqa: E402

OUT = Path(__file__).resolve().parent / "official_trailer.json"
W, H, FPS = 160, 96, 15
KEY = b"livekit-py packet trailer vectors"
EPOCH_US = 1_700_000_000_000_000
FRAMES_KEPT = 16  # per scenario, after the first few

logger = logging.getLogger("record_official_trailer")
FRAMES: list[bytes] = []
ENOUGH = asyncio.Event()  # set once FRAMES holds what a scenario keeps


def metadata_fields(n: int) -> dict[str, Any]:
    """The metadata of frame ``n``: all fields, the timestamp, the id, the data, or none."""
    kind = n % 5
    fields: dict[str, Any] = {}
    if kind in (1, 2):
        fields["user_timestamp"] = EPOCH_US + n * 1000
    if kind in (1, 3):
        fields["frame_id"] = n
    if kind in (1, 4):
        fields["user_data"] = f"frame {n}".encode()
    return fields


def install_hook() -> None:
    add_frames = frame_assembler.FrameAssembler.add_frames

    def capturing_add_frames(self: Any, packet: RtpPacket) -> Any:
        pli, frames = add_frames(self, packet)
        FRAMES.extend(bytes(frame.data) for frame in frames)
        if len(FRAMES) >= FRAMES_KEPT + 10:
            ENOUGH.set()
        return pli, frames

    frame_assembler.FrameAssembler.add_frames = capturing_add_frames  # type: ignore[method-assign]


def token(identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return (
        api.AccessToken(local_server.API_KEY, local_server.API_SECRET)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def feed(source: official.VideoSource) -> None:
    start = time.monotonic()
    n = 0
    while True:
        n += 1
        img = np.full((H, W, 4), 255, dtype=np.uint8)
        img[:, :, :3] = (n * 37) % 256
        frame = official.VideoFrame(W, H, official.VideoBufferType.RGBA, img.tobytes())
        fields = metadata_fields(n)
        metadata = official.FrameMetadata(**fields) if fields else None
        source.capture_frame(frame, metadata=metadata)
        await asyncio.sleep(max(0.0, start + n / FPS - time.monotonic()))


async def run_scenario(url: str, codec: str, encrypted: bool) -> dict[str, Any]:
    room_name = f"vectors-{uuid.uuid4().hex[:8]}"
    ours, theirs = rtc.Room(), official.Room()
    options = official.RoomOptions()
    if encrypted:
        provider = official.KeyProviderOptions(shared_key=KEY)
        options = official.RoomOptions(
            encryption=official.E2EEOptions(key_provider_options=provider)
        )
    FRAMES.clear()
    ENOUGH.clear()
    try:
        await ours.connect(url, token("ours", room_name))
        await theirs.connect(url, token("official", room_name), options)
        source = official.VideoSource(W, H)
        track = official.LocalVideoTrack.create_video_track("meta", source)
        features = [
            official.FrameMetadataFeature.FMF_USER_TIMESTAMP,
            official.FrameMetadataFeature.FMF_FRAME_ID,
            official.FrameMetadataFeature.FMF_USER_DATA,
        ]
        publish = official.TrackPublishOptions(
            source=official.TrackSource.SOURCE_CAMERA,
            video_codec=getattr(official.VideoCodec, codec),
            simulcast=False,
            frame_metadata_features=features,
        )
        await theirs.local_participant.publish_track(track, publish)
        feeder = asyncio.ensure_future(feed(source))
        try:
            await asyncio.wait_for(ENOUGH.wait(), 30)
        finally:
            feeder.cancel()
    finally:
        await theirs.disconnect()
        await ours.disconnect()
    frames = [f for f in FRAMES[10:] if len(f) > 0][:FRAMES_KEPT]
    logger.info("%s %s: %d frames", codec, "encrypted" if encrypted else "clear", len(frames))
    return {
        "name": f"{codec.lower()}-{'e2ee' if encrypted else 'clear'}",
        "video_codec": codec,
        "encrypted": encrypted,
        "frames": [base64.b64encode(f).decode() for f in frames],
    }


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("aiortc", "aioice", "livekit", "livekit_py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    install_hook()
    with tempfile.TemporaryDirectory() as tmp:
        server = local_server.start(Path(tmp) / "livekit-server.log")
        try:
            scenarios = [
                await run_scenario(server.url, codec, encrypted)
                for codec in ("VP8", "H264")
                for encrypted in (False, True)
            ]
        finally:
            server.stop()
    fixture = {
        "about": (
            "Video frames with packet trailers from the official SDK (livekit 1.2.1), as "
            "livekit-py's frame assembler completed them; written by "
            "tests/vectors/record_official_trailer.py. Frames are base64."
        ),
        "official_version": official_version,
        "shared_key": base64.b64encode(KEY).decode(),
        "epoch_us": EPOCH_US,
        "metadata_pattern": "frame n: n % 5 == 1 all fields, 2 user_timestamp "
        "(epoch_us + 1000 n), 3 frame_id (n), 4 user_data ('frame n'), 0 none",
        "scenarios": scenarios,
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    asyncio.run(main())
