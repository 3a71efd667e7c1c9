"""Publish a WAV file into a room as a microphone track.

    python examples/publish_wav.py speech.wav --room my-room
    python examples/publish_wav.py music.wav --loop

The file is read with the standard library's ``wave`` module (PCM, 8 to 32 bits, any
rate and channel count) and sent at its own rate in 10 ms frames; ``capture_frame``
paces the loop to real time. Without ``--loop`` the example leaves once the file has
played out.
"""

from __future__ import annotations

import argparse
import asyncio
import wave
from pathlib import Path

import numpy as np
from _common import connect, parser, run, say

from livekit_py import rtc


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """The file's samples as int16 shaped (frames, channels), and its sample rate."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width == 1:  # unsigned 8-bit
        samples = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, "<i2")
    elif width == 3:  # 24-bit little-endian: keep the two high bytes
        samples = np.frombuffer(raw, np.uint8).reshape(-1, 3)[:, 1:].copy().view("<i2")[:, 0]
    elif width == 4:
        samples = (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)
    else:
        raise SystemExit(f"{path}: {8 * width}-bit samples are not supported")
    return samples.astype(np.int16).reshape(-1, channels), rate


async def play(source: rtc.AudioSource, samples: np.ndarray, *, loop: bool) -> None:
    """Capture ``samples`` into ``source`` in 10 ms frames (forever with ``loop``)."""
    rate, channels = source.sample_rate, source.num_channels
    step = rate // 100
    while True:
        for start in range(0, len(samples), step):
            block = samples[start : start + step]
            if len(block) < step:  # pad the last frame with silence
                block = np.concatenate([block, np.zeros((step - len(block), channels), np.int16)])
            await source.capture_frame(rtc.AudioFrame(block.tobytes(), rate, channels, step))
        if not loop:
            return


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    samples, rate = read_wav(args.file)
    channels = samples.shape[1]
    room = rtc.Room()
    await connect(room, args, name="WAV player")
    source = rtc.AudioSource(rate, channels)
    track = rtc.LocalAudioTrack.create_audio_track(args.file.stem, source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await room.local_participant.publish_track(track, options)
    say(
        f"publishing {args.file.name} as {publication.sid}: {rate} Hz, {channels} channel(s), "
        f"{len(samples) / rate:.1f} s{' (looping)' if args.loop else ''}"
    )
    player = asyncio.create_task(play(source, samples, loop=args.loop))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({player, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if player.done():
        await source.wait_for_playout()
        say("played the whole file")
    player.cancel()
    stopped.cancel()
    await room.disconnect()
    await source.aclose()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="wav-player")
    cli.add_argument("file", type=Path, help="the WAV file")
    cli.add_argument("--loop", action="store_true", help="play the file again and again")
    run(cli.parse_args(), main)
