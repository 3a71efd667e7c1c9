"""The command line: ``livekit-py <command> [options]`` and ``python -m livekit_py``.

The parser is the standard library's :mod:`argparse` (see the package docstring for
why); :func:`build_parser` is pure and unit-tested, :func:`main` dispatches to the
command modules, which are imported only when their command runs (so ``--help`` and
``token`` start fast and need neither a server nor ``rich``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence

from ..version import __version__
from .settings import UsageError, parse_attribute, parse_bitrate, parse_duration, parse_size
from .tokens import TRACK_SOURCES

__all__ = ["EXTRA_MISSING", "build_parser", "main"]

EXTRA_MISSING = (
    "livekit-py: the command line needs the 'cli' extra, which is not installed"
    " (missing module: {module}).\n"
    "Install it with:  pip install 'livekit-py[cli]'"
)

# the command modules, imported when their command runs, and whether they need rich
_COMMANDS: dict[str, tuple[str, bool]] = {
    "join": ("livekit_py.cli.join", True),
    "publish": ("livekit_py.cli.publish", True),
    "record": ("livekit_py.cli.record", True),
    "load-test": ("livekit_py.cli.load_test", True),
    "token": ("livekit_py.cli.token_command", False),
}


def _typed(parse: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argparse ``type=`` that turns a ValueError into argparse's usage error."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what  # argparse names the type in its messages
    return convert


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"must be a positive number, got {text!r}")
    return value


SIZE = _typed(parse_size, "size")
BITRATE = _typed(parse_bitrate, "bitrate")
DURATION = _typed(parse_duration, "duration")
ATTRIBUTE = _typed(parse_attribute, "attribute")
POSITIVE_INT = _typed(_positive_int, "positive integer")
POSITIVE_FLOAT = _typed(_positive_float, "positive number")


def _sources(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in TRACK_SOURCES:
            raise ValueError(f"unknown source {name!r}: expected {', '.join(TRACK_SOURCES)}")
    return names


SOURCES = _typed(_sources, "sources")


def _server_options(parser: argparse.ArgumentParser, *, with_url: bool = True) -> None:
    group = parser.add_argument_group("server and credentials")
    if with_url:
        group.add_argument("--url", help="server URL, ws(s):// or http(s):// (env LIVEKIT_URL)")
    group.add_argument("--api-key", help="API key (env LIVEKIT_API_KEY)")
    group.add_argument("--api-secret", help="API secret (env LIVEKIT_API_SECRET)")
    if with_url:
        group.add_argument(
            "--token",
            help="an access token to join with instead of key and secret (env LIVEKIT_TOKEN)",
        )
    group.add_argument(
        "--dev",
        action="store_true",
        help="a local dev server: ws://127.0.0.1:7880, devkey/secret (for what is not given)",
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    parser.add_argument("--no-color", action="store_true", help="no colours in the output")


def _room_options(
    parser: argparse.ArgumentParser,
    *,
    identity_prefix: str,
    room_required: bool = True,
    identity_help: str | None = None,
) -> None:
    group = parser.add_argument_group("room")
    group.add_argument(
        "-r",
        "--room",
        required=room_required,
        help="the room to join" + ("" if room_required else " (default: a new name)"),
    )
    group.add_argument(
        "-i",
        "--identity",
        help=identity_help or f"participant identity (default: {identity_prefix}-<4 hex digits>)",
    )
    group.add_argument("--name", default="", help="participant display name")
    parser.set_defaults(identity_prefix=identity_prefix)


def _video_options(parser: argparse.ArgumentParser, *, size: str | None, fps: float | None) -> None:
    group = parser.add_argument_group("video")
    group.add_argument(
        "--size",
        type=SIZE,
        default=parse_size(size) if size else None,
        help="video size WIDTHxHEIGHT or 360p/720p..."
        + (f" (default {size})" if size else " (default: the file's)"),
    )
    group.add_argument(
        "--fps",
        type=POSITIVE_FLOAT,
        default=fps,
        help="frame rate" + (f" (default {fps:g})" if fps else " (default: the file's)"),
    )
    group.add_argument(
        "--codec", choices=("vp8", "h264"), default="vp8", help="video codec (default vp8)"
    )
    group.add_argument("--max-bitrate", type=BITRATE, help="video bitrate cap, e.g. 800k, 1.5M")
    group.add_argument("--simulcast", action="store_true", help="publish simulcast layers")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command, its options and their help."""
    parser = argparse.ArgumentParser(
        prog="livekit-py",
        description="Join LiveKit rooms from a terminal: print events, publish media, record,"
        " load-test, make tokens. Server and keys come from --url/--api-key/--api-secret or"
        " LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET.",
    )
    parser.add_argument("--version", action="version", version=f"livekit-py {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # -- join
    join = commands.add_parser(
        "join",
        help="join a room and print its events and data; optionally send data or text",
        description="Join a room, print participants, tracks, data packets, text streams and"
        " chat as they come (one line each, or JSON lines with --json), and send messages"
        " given with --send or read line by line from standard input with --stdin.",
    )
    _room_options(join, identity_prefix="cli")
    join.add_argument("--metadata", default="", help="participant metadata")
    join.add_argument(
        "--attribute",
        type=ATTRIBUTE,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="participant attribute (repeatable)",
    )
    send = join.add_argument_group("sending")
    send.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send MESSAGE once joined (repeatable)",
    )
    send.add_argument(
        "--stdin",
        action="store_true",
        help="send each line of standard input; leave at its end",
    )
    send.add_argument(
        "--send-as",
        choices=("data", "text", "chat"),
        default="data",
        help="data packet, text stream, or chat (text stream on lk.chat); default data",
    )
    send.add_argument("--topic", default="", help="topic of what is sent")
    send.add_argument("--lossy", action="store_true", help="send data packets lossy (unreliable)")
    send.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="IDENTITY",
        help="send only to this participant (repeatable)",
    )
    show = join.add_argument_group("what is shown")
    show.add_argument(
        "--text-topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="also print text streams on TOPIC (lk.chat and lk.transcription always are)",
    )
    show.add_argument(
        "--byte-topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="print byte streams (files) on TOPIC: name, type and size",
    )
    show.add_argument("--no-subscribe", action="store_true", help="do not subscribe to tracks")
    show.add_argument("--speakers", action="store_true", help="print active speaker changes")
    show.add_argument("--json", action="store_true", help="one JSON object per event")
    join.add_argument("--duration", type=DURATION, help="leave after this long (e.g. 30s, 2m)")
    _server_options(join)
    _common_options(join)

    # -- publish
    publish = commands.add_parser(
        "publish",
        help="publish a media file (any container PyAV reads) or a test pattern and tone",
        description="Publish the audio and video of FILE, in sync through AVSynchronizer"
        " (decoded by PyAV: mp4, webm, mkv, mov, wav, ogg, ...), or with --test-pattern"
        " colour bars with a moving square and a tone.",
    )
    publish.add_argument("file", nargs="?", help="the media file to publish")
    publish.add_argument(
        "--test-pattern", action="store_true", help="publish colour bars and a tone instead"
    )
    _room_options(publish, identity_prefix="publisher")
    publish.add_argument("--loop", action="store_true", help="start the file over at its end")
    publish.add_argument("--no-audio", action="store_true", help="publish no audio")
    publish.add_argument("--no-video", action="store_true", help="publish no video")
    publish.add_argument(
        "--tone",
        type=POSITIVE_FLOAT,
        default=440.0,
        metavar="HZ",
        help="the test pattern's tone frequency (default 440)",
    )
    publish.add_argument("--duration", type=DURATION, help="stop after this long")
    _video_options(publish, size=None, fps=None)
    _server_options(publish)
    _common_options(publish)

    # -- record
    record = commands.add_parser(
        "record",
        help="record the room's tracks (or a mix of its audio) to files",
        description="Subscribe and write tracks to files through PyAV, the format by the"
        " extension: .wav (PCM), .ogg/.opus (Opus), .webm/.mkv (VP8 + Opus), .mp4 (H.264 +"
        " AAC), .m4a (AAC). The output is a template: {identity}, {track}, {kind},"
        " {source}, {sid} and {room} in it make one file per participant or per track; a"
        " file holds one audio and one video track. Stops at Ctrl-C or --duration and"
        " closes every file properly.",
    )
    record.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="TEMPLATE",
        help="file name, e.g. out.webm or rec/{identity}-{kind}.ogg",
    )
    _room_options(record, identity_prefix="recorder")
    record.add_argument(
        "-p",
        "--participant",
        action="append",
        default=[],
        metavar="IDENTITY",
        help="record only this participant (repeatable)",
    )
    record.add_argument(
        "--kind",
        choices=("audio", "video", "both"),
        default="both",
        help="which tracks to record (default both)",
    )
    record.add_argument(
        "--mix", action="store_true", help="mix every audio track into the one output file"
    )
    record.add_argument(
        "--sample-rate", type=POSITIVE_INT, default=48000, help="audio rate (default 48000)"
    )
    record.add_argument(
        "--channels", type=int, choices=(1, 2), default=1, help="audio channels (default 1)"
    )
    record.add_argument(
        "--video-bitrate", type=BITRATE, default=2_000_000, help="encoder bitrate (default 2M)"
    )
    record.add_argument("--hidden", action="store_true", help="join as a hidden participant")
    record.add_argument("--duration", type=DURATION, help="stop after this long")
    _server_options(record)
    _common_options(record)

    # -- load-test
    load = commands.add_parser(
        "load-test",
        help="N simulated participants publishing and subscribing, with live statistics",
        description="Join N participants in one process, each publishing a tone and/or a test"
        " pattern and subscribing to the others, and show a live table of who joined,"
        " packets, bitrates, loss and latency (the ICE round trip, and data packets"
        " timed through the server); print a summary at the end.",
    )
    load.add_argument(
        "-n", "--participants", type=POSITIVE_INT, default=5, help="how many (default 5)"
    )
    _room_options(
        load,
        identity_prefix="load",
        room_required=False,
        identity_help="identity prefix: participants are PREFIX-0, PREFIX-1... (default load)",
    )
    load.add_argument(
        "--publish",
        choices=("audio", "video", "both", "none"),
        default="audio",
        help="what each participant publishes (default audio)",
    )
    load.add_argument(
        "--publishers",
        type=int,
        metavar="N",
        help="only the first N participants publish (default: all)",
    )
    load.add_argument("--no-subscribe", action="store_true", help="subscribe to nothing")
    load.add_argument(
        "--duration", type=DURATION, default=30.0, help="how long, once all joined (default 30s)"
    )
    load.add_argument(
        "--ramp",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="pause between joins (default 0.2)",
    )
    load.add_argument(
        "--interval",
        type=POSITIVE_FLOAT,
        default=1.0,
        metavar="SECONDS",
        help="statistics and latency probe period (default 1)",
    )
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    _video_options(load, size="320x180", fps=15.0)
    _server_options(load)
    _common_options(load)

    # -- token
    token = commands.add_parser(
        "token",
        help="print an access token signed with an API key and secret",
        description="Sign a LiveKit access token (JWT, HS256) and print it on standard output.",
    )
    token.add_argument("-r", "--room", default="", help="the room the token joins")
    token.add_argument("-i", "--identity", required=True, help="participant identity")
    token.add_argument("--name", default="", help="participant display name")
    token.add_argument("--metadata", default="", help="participant metadata")
    token.add_argument(
        "--attribute",
        type=ATTRIBUTE,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="participant attribute (repeatable)",
    )
    token.add_argument(
        "--valid-for",
        type=DURATION,
        default=6 * 3600.0,
        metavar="DURATION",
        help="lifetime, e.g. 1h, 30m (default 6h)",
    )
    grants = token.add_argument_group("grants")
    grants.add_argument("--no-join", action="store_true", help="no room join grant")
    grants.add_argument("--no-publish", action="store_true", help="may not publish tracks")
    grants.add_argument("--no-subscribe", action="store_true", help="may not subscribe")
    grants.add_argument("--no-publish-data", action="store_true", help="may not send data")
    grants.add_argument(
        "--sources",
        type=SOURCES,
        metavar="LIST",
        help=f"only these sources may be published (comma list of {', '.join(TRACK_SOURCES)})",
    )
    grants.add_argument("--hidden", action="store_true", help="hidden from other participants")
    grants.add_argument("--admin", action="store_true", help="room admin")
    grants.add_argument("--create", action="store_true", help="may create rooms")
    grants.add_argument("--list", action="store_true", help="may list rooms")
    grants.add_argument("--record", action="store_true", help="may record rooms")
    grants.add_argument("--agent", action="store_true", help="an agent")
    grants.add_argument(
        "--update-own-metadata",
        action="store_true",
        help="may update its own name, metadata and attributes",
    )
    token.add_argument(
        "--json", action="store_true", help="print {token, claims} as JSON instead of the token"
    )
    _server_options(token, with_url=False)
    token.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    return parser


def _missing_module(names: Sequence[str]) -> str | None:
    for name in names:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    0: done; 1: the command failed (could not connect...); 2: bad usage or a missing
    extra; 130: interrupted by a second Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name, needs_rich = _COMMANDS[args.command]
    if needs_rich:
        missing = _missing_module(["rich"])
        if missing is not None:
            print(EXTRA_MISSING.format(module=missing), file=sys.stderr)
            return 2
    module = importlib.import_module(module_name)
    run: Callable[[argparse.Namespace, dict[str, str]], int] = module.run
    try:
        return run(args, dict(os.environ))
    except UsageError as exc:
        parser.exit(2, f"livekit-py {args.command}: error: {exc}\n")
