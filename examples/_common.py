"""What every example shares: where the server is, a token, and running until told to stop.

The server and the keys come from the environment, as in LiveKit's other tools:

    LIVEKIT_URL         e.g. wss://my-project.livekit.cloud or ws://127.0.0.1:7880
    LIVEKIT_API_KEY     the API key and secret that sign the example's access token
    LIVEKIT_API_SECRET  (made with ``livekit-api``: ``pip install livekit-api``)
    LIVEKIT_TOKEN       or a ready-made token instead of the key and secret
                        (e.g. from ``lk token create --join --room ROOM --identity ID``)
    LIVEKIT_ROOM        the room to join when --room is not given

With none of them set, the examples use the local development server that
``signaling/livekit-server start`` runs: ws://127.0.0.1:7880, keys devkey / secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable

from livekit_py import rtc

DEV_URL = "ws://127.0.0.1:7880"
DEV_KEY, DEV_SECRET = "devkey", "secret"  # livekit-server --dev


def parser(description: str, *, identity: str) -> argparse.ArgumentParser:
    """An argument parser with the options every example has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--room",
        default=os.environ.get("LIVEKIT_ROOM", "livekit-py-examples"),
        help="the room to join (default: $LIVEKIT_ROOM or livekit-py-examples)",
    )
    p.add_argument("--identity", default=identity, help=f"who to join as (default: {identity})")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="leave after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log livekit_py at DEBUG")
    return p


def say(text: str) -> None:
    """Print one line of what happened, at once (the output may be a pipe)."""
    print(text, flush=True)


def server_url() -> str:
    return os.environ.get("LIVEKIT_URL") or DEV_URL


def make_token(identity: str, room: str, *, name: str | None = None) -> str:
    """A join token for ``identity`` in ``room``: $LIVEKIT_TOKEN, or one signed here.

    Raises:
        SystemExit: If neither a token nor ``livekit-api`` is available.
    """
    token = os.environ.get("LIVEKIT_TOKEN")
    if token:
        return token
    try:
        import livekit.api as api
    except ImportError:
        raise SystemExit(
            "making a token needs livekit-api (pip install livekit-api); "
            "or set LIVEKIT_TOKEN to a join token for this room"
        ) from None
    key = os.environ.get("LIVEKIT_API_KEY") or DEV_KEY
    secret = os.environ.get("LIVEKIT_API_SECRET") or DEV_SECRET
    if secret == DEV_SECRET:  # PyJWT warns that the development secret is short
        warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
    grants = api.VideoGrants(room_join=True, room=room)
    access = api.AccessToken(key, secret).with_identity(identity).with_grants(grants)
    if name:
        access = access.with_name(name)
    jwt: str = access.to_jwt()
    return jwt


async def connect(
    room: rtc.Room,
    args: argparse.Namespace,
    *,
    name: str | None = None,
    options: rtc.RoomOptions | None = None,
) -> None:
    """Join ``args.room`` as ``args.identity`` and say so."""
    url = server_url()
    await room.connect(url, make_token(args.identity, args.room, name=name), options)
    others = ", ".join(sorted(room.remote_participants)) or "nobody"
    me = room.local_participant.identity
    say(f"connected to room {room.name!r} at {url} as {me!r}; here: {others}")


async def wait_any(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def run(
    args: argparse.Namespace,
    main: Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]],
) -> None:
    """Run ``main(args, stop)``; ``stop`` is set on Ctrl-C, SIGTERM or after ``--duration``.

    ``main`` should leave the room and return once ``stop`` is set.
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if args.verbose:
        logging.getLogger("livekit_py").setLevel(logging.DEBUG)

    async def supervise() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            # a second Ctrl-C (or SIGTERM) gets the default behaviour: stop at once
            loop.remove_signal_handler(sig)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
                loop.add_signal_handler(sig, on_signal, sig)
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)
        await main(args, stop)

    try:
        asyncio.run(supervise())
    except KeyboardInterrupt:  # where signal handlers are not available
        sys.exit(130)
