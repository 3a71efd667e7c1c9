"""Text and byte streams: chat messages and files, both ways.

    python examples/data_streams.py --room my-room
    python examples/data_streams.py --send-file report.pdf --save-dir received/

Text on topic ``chat`` is printed as it arrives; files on topic ``files`` are saved
into ``--save-dir``. Each participant who joins gets a greeting streamed word by word
(``stream_text``) and, with ``--send-file``, the file (``send_file``). Lines typed on
standard input, when it is a terminal, are sent to everyone as chat messages.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from _common import connect, parser, run, say

from livekit_py import rtc

CHAT, FILES = "chat", "files"


def on_text(reader: rtc.TextStreamReader, sender: str) -> None:
    async def read() -> None:
        text = await reader.read_all()
        say(f"text from {sender} on {reader.info.topic!r}: {text!r}")

    keep(asyncio.create_task(read()))


def on_file(save_dir: Path) -> Callable[[rtc.ByteStreamReader, str], None]:
    def handler(reader: rtc.ByteStreamReader, sender: str) -> None:
        async def save() -> None:
            # the sender chooses the name: keep only its last part, inside save_dir
            name = Path(reader.info.name or reader.info.stream_id).name or "unnamed"
            path = save_dir / name
            size = 0
            with path.open("wb") as out:
                async for chunk in reader:
                    out.write(chunk)
                    size += len(chunk)
            say(f"file from {sender}: {name!r} ({size} bytes) saved to {path}")

        keep(asyncio.create_task(save()))

    return handler


_tasks: set[asyncio.Task[None]] = set()


def keep(task: asyncio.Task[None]) -> None:
    """Hold a reference to a background task until it is done."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def welcome(room: rtc.Room, identity: str, send_file: Path | None) -> None:
    """Stream a greeting to ``identity`` word by word, then send the file."""
    writer = await room.local_participant.stream_text(destination_identities=[identity], topic=CHAT)
    for word in f"hello {identity}, welcome to {room.name}".split(" "):
        await writer.write(word + " ")
    await writer.aclose()
    if send_file is not None:
        info = await room.local_participant.send_file(
            str(send_file), topic=FILES, destination_identities=[identity]
        )
        say(f"sent {send_file.name!r} to {identity} as stream {info.stream_id}")


async def chat_from_stdin(room: rtc.Room) -> None:
    """Send each line typed on the terminal to everyone."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip():
            await room.local_participant.send_text(line.rstrip("\n"), topic=CHAT)


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    if args.send_file is not None and not args.send_file.is_file():
        raise SystemExit(f"--send-file: {args.send_file} is not a file")
    args.save_dir.mkdir(parents=True, exist_ok=True)
    room = rtc.Room()
    room.register_text_stream_handler(CHAT, on_text)
    room.register_byte_stream_handler(FILES, on_file(args.save_dir))

    @room.on("participant_connected")
    def on_join(participant: rtc.RemoteParticipant) -> None:
        say(f"{participant.identity} joined")
        keep(asyncio.create_task(welcome(room, participant.identity, args.send_file)))

    await connect(room, args, name="Streams")
    for identity in room.remote_participants:
        keep(asyncio.create_task(welcome(room, identity, args.send_file)))
    typing = asyncio.create_task(chat_from_stdin(room)) if sys.stdin.isatty() else None
    await stop.wait()
    if typing is not None:
        typing.cancel()
    await room.disconnect()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="streamer")
    cli.add_argument("--send-file", type=Path, help="a file to send to each participant")
    cli.add_argument(
        "--save-dir",
        type=Path,
        default=Path("received"),
        help="where received files go (default: ./received)",
    )
    run(cli.parse_args(), main)
