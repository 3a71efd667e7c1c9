"""A bot that answers with sound: it plays tones when asked by RPC and "sings" chat messages.

    python examples/audio_bot.py --room my-room

It publishes one audio track (``bot-voice``, silence while it has nothing to say) and
answers:

- the RPC method ``play_tone`` with a JSON payload ``{"frequency": 660, "seconds": 1.5}``
  (both optional: 440 Hz, 1 s): it queues the tone and answers ``{"queued_seconds": 1.5}``;
- chat messages (text streams on topic ``lk.chat``, what LiveKit's web components send):
  it replies in the chat and plays one short note per character, its pitch taken from
  the character (a space is a rest).

No speech synthesis is involved: the "voice" is numpy sine waves captured into an
``AudioSource``, which is how a text-to-speech engine's output would be published too.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import numpy as np
from _common import connect, parser, run, say

from livekit_py import rtc

RATE = 48000
FRAME = RATE // 100  # 10 ms
CHAT = "lk.chat"
NOTE_SECONDS = 0.15
MAX_SECONDS = 10.0


def tone(frequency: float, seconds: float, *, amplitude: float = 0.4) -> np.ndarray:
    """int16 samples of a sine with 5 ms fades at both ends (no clicks)."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    fade = min(n // 2, RATE // 200)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    return (wave * 32767).astype(np.int16)


def note_of(char: str) -> float:
    """The pitch a character is sung at: two octaves of semitones up from A3 (220 Hz)."""
    return float(220.0 * 2.0 ** ((ord(char) % 24) / 12))


def melody(text: str) -> np.ndarray:
    notes = [
        np.zeros(int(RATE * NOTE_SECONDS), np.int16)
        if char.isspace()
        else tone(note_of(char), NOTE_SECONDS)
        for char in text[:80]
    ]
    return np.concatenate(notes) if notes else np.zeros(0, np.int16)


class Voice:
    """Plays queued sounds into an audio source, and silence in between."""

    def __init__(self, source: rtc.AudioSource) -> None:
        self._source = source
        self._queue: asyncio.Queue[np.ndarray] = asyncio.Queue()

    def say(self, samples: np.ndarray) -> None:
        self._queue.put_nowait(samples)

    async def run(self) -> None:
        silence = np.zeros(FRAME, np.int16)
        while True:
            samples = silence if self._queue.empty() else self._queue.get_nowait()
            for start in range(0, len(samples), FRAME):
                block = samples[start : start + FRAME]
                if len(block) < FRAME:
                    block = np.concatenate([block, np.zeros(FRAME - len(block), np.int16)])
                # capture_frame waits while the source's queue is full: real-time pacing
                await self._source.capture_frame(rtc.AudioFrame(block.tobytes(), RATE, 1, FRAME))


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    room = rtc.Room()
    # a short queue: a reply starts at most 0.2 s after the silence before it
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    voice = Voice(source)
    replies: set[asyncio.Task[None]] = set()

    def on_chat(reader: rtc.TextStreamReader, sender: str) -> None:
        async def answer() -> None:
            text = await reader.read_all()
            say(f"chat from {sender}: {text!r}")
            voice.say(melody(text))
            notes = sum(1 for c in text[:80] if not c.isspace())
            await room.local_participant.send_text(
                f"singing {notes} notes for {text[:80]!r}",
                topic=CHAT,
                destination_identities=[sender],
            )

        task = asyncio.create_task(answer())
        replies.add(task)
        task.add_done_callback(replies.discard)

    room.register_text_stream_handler(CHAT, on_chat)
    await connect(room, args, name="Audio bot")

    @room.local_participant.register_rpc_method("play_tone")
    def play_tone(data: rtc.RpcInvocationData) -> str:
        try:
            request = json.loads(data.payload or "{}")
            frequency = float(request.get("frequency", 440.0))
            seconds = float(request.get("seconds", 1.0))
        except (ValueError, TypeError, AttributeError) as exc:
            raise rtc.RpcError(1400, "payload must be a JSON object", str(exc)) from exc
        if not (20.0 <= frequency <= 20000.0 and 0.0 < seconds <= MAX_SECONDS):
            raise rtc.RpcError(1400, f"frequency must be 20-20000 Hz and seconds 0-{MAX_SECONDS:g}")
        say(f"{data.caller_identity} asked for {frequency:g} Hz for {seconds:g} s")
        voice.say(tone(frequency, seconds))
        return json.dumps({"queued_seconds": seconds})

    track = rtc.LocalAudioTrack.create_audio_track("bot-voice", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await room.local_participant.publish_track(track, options)
    player = asyncio.create_task(voice.run())
    say(f"listening: RPC play_tone, chat on {CHAT!r}; voice is {publication.sid}")
    await stop.wait()
    player.cancel()
    await room.disconnect()
    await source.aclose()
    say("left the room")


if __name__ == "__main__":
    run(parser((__doc__ or "").splitlines()[0], identity="audio-bot").parse_args(), main)
