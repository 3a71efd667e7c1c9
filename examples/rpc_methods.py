"""Remote procedure calls: serve methods to the room, and call a method of others.

    python examples/rpc_methods.py --room my-room
    python examples/rpc_methods.py --room my-room --call ping --payload hello

It serves two methods:

- ``greet``: answers ``hello <caller>, you said <payload>``;
- ``add``: the payload is a JSON list of numbers, the answer their sum as JSON; anything
  else fails with an ``RpcError`` (code 1400, a code of the application's own), which the
  caller receives as such.

With ``--call METHOD`` it also calls METHOD (with ``--payload``) on each participant who
joins, and prints the answer or the error.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from _common import connect, parser, run, say

from livekit_py import rtc

BAD_NUMBERS = 1400  # application error codes are ours to choose (the SDK uses 1001-1999)


def serve(room: rtc.Room) -> None:
    local = room.local_participant

    @local.register_rpc_method("greet")
    async def greet(data: rtc.RpcInvocationData) -> str:
        say(f"greet called by {data.caller_identity} with {data.payload!r}")
        return f"hello {data.caller_identity}, you said {data.payload!r}"

    @local.register_rpc_method("add")
    def add(data: rtc.RpcInvocationData) -> str:
        say(f"add called by {data.caller_identity} with {data.payload!r}")
        try:
            numbers = json.loads(data.payload)
            if not isinstance(numbers, list) or not all(
                isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
            ):
                raise ValueError("not a list of numbers")
        except ValueError as exc:
            raise rtc.RpcError(BAD_NUMBERS, "add wants a JSON list of numbers", str(exc)) from exc
        return json.dumps(sum(numbers))


async def call(room: rtc.Room, identity: str, method: str, payload: str) -> None:
    try:
        answer = await room.local_participant.perform_rpc(
            destination_identity=identity, method=method, payload=payload
        )
    except rtc.RpcError as error:
        say(f"{method} on {identity} failed: {error.code} {error.message}")
        return
    say(f"{method} on {identity} answered {answer!r}")


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    room = rtc.Room()
    calls: set[asyncio.Task[None]] = set()

    def call_soon(identity: str) -> None:
        task = asyncio.create_task(call(room, identity, args.call, args.payload))
        calls.add(task)
        task.add_done_callback(calls.discard)

    @room.on("participant_connected")
    def on_join(participant: rtc.RemoteParticipant) -> None:
        say(f"{participant.identity} joined")
        if args.call:
            call_soon(participant.identity)

    await connect(room, args, name="RPC server")
    serve(room)
    say("serving greet and add")
    if args.call:
        for identity in room.remote_participants:
            call_soon(identity)
    await stop.wait()
    await room.disconnect()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="rpc-server")
    cli.add_argument("--call", metavar="METHOD", help="call METHOD on each participant who joins")
    cli.add_argument("--payload", default="", help="the payload of --call")
    run(cli.parse_args(), main)
