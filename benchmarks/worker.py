"""One scenario for one SDK, in a process of its own (or a peer helping one).

The orchestrator runs::

    python -m benchmarks.worker --sdk ours --scenario audio_latency \\
        --url ws://127.0.0.1:7880 --json-out run.json [--quick] [--budget 60]

which runs the scenario, cleans up (rooms disconnected, sources closed, peers
stopped) and writes its figures to ``--json-out``. The run is bounded: past
``--budget`` seconds (less a margin for cleanup) the scenario is cancelled and
whatever it measured so far is written with an error. The orchestrator kills the
process if it outlives its budget anyway.

A scenario that needs a second participant in another process starts a peer::

    python -m benchmarks.worker --peer video_sink --sdk ours --url ... --room ...

which talks to its parent in JSON lines (see ``benchmarks.peers``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Context,
    Result,
    Unavailable,
    cpu_seconds,
    load_rtc,
    peak_rss_mb,
    sdk_version,
)

CLEANUP_SECONDS = 15.0


async def _run_scenario(args: argparse.Namespace, result: Result) -> dict[str, Any]:
    from benchmarks.scenarios import by_name

    scenario = by_name()[args.scenario]
    status: dict[str, Any] = {"status": "ok", "error": None}
    try:
        rtc = load_rtc(args.sdk)
    except Exception as exc:  # an SDK that does not import is a result
        return {"status": "error", "error": f"import failed: {exc!r}"}
    if scenario.requires is not None:
        reason = scenario.requires(rtc)
        if reason:
            return {"status": "unavailable", "error": reason}
    # the scenario gets the budget less time to clean up and write the result
    run_seconds = max(args.budget - CLEANUP_SECONDS - 3.0, args.budget * 0.5)
    stack = contextlib.AsyncExitStack()
    ctx = Context(
        sdk=args.sdk,
        rtc=rtc,
        url=args.url or "",
        quick=args.quick,
        deadline=time.monotonic() + run_seconds,
        stack=stack,
        result=result,
        stderr_dir=Path(args.json_out).parent if args.json_out else None,
    )
    try:
        await asyncio.wait_for(scenario.run(ctx), run_seconds)
    except asyncio.TimeoutError:
        status = {"status": "error", "error": f"timed out after {run_seconds:.0f}s"}
    except Unavailable as exc:
        status = {"status": "unavailable", "error": str(exc)}
    except Exception as exc:  # the SDK's failures are results too
        traceback.print_exc()
        status = {"status": "error", "error": f"{exc.__class__.__name__}: {exc}"}
    try:
        await asyncio.wait_for(stack.aclose(), CLEANUP_SECONDS)
    except Exception as exc:
        traceback.print_exc()
        result.note(f"cleanup failed: {exc.__class__.__name__}: {exc}")
    return status


def _main_scenario(args: argparse.Namespace) -> int:
    result = Result()
    started = time.monotonic()
    cpu_start = cpu_seconds()
    try:
        status = asyncio.run(_run_scenario(args, result))
    except BaseException as exc:  # record, never hang or lose the result
        traceback.print_exc()
        status = {"status": "error", "error": f"{exc.__class__.__name__}: {exc}"}
    out = {
        "sdk": args.sdk,
        "sdk_version": sdk_version(args.sdk),
        "scenario": args.scenario,
        "quick": args.quick,
        **status,
        **result.to_json(),
        "worker": {
            "wall_s": time.monotonic() - started,
            "cpu_s": cpu_seconds() - cpu_start,
            "peak_rss_mb": peak_rss_mb(),
            "pid": os.getpid(),
        },
    }
    text = json.dumps(out, indent=1, allow_nan=True)
    if args.json_out:
        Path(args.json_out).write_text(text)
    else:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", choices=["ours", "official"], required=True)
    parser.add_argument("--scenario", help="the scenario to run")
    parser.add_argument("--peer", help="run as a helper process of this role instead")
    parser.add_argument("--url", help="livekit-server URL")
    parser.add_argument("--room", help="(peers) the room to join")
    parser.add_argument("--params", default="{}", help="(peers) JSON parameters")
    parser.add_argument("--json-out", help="write the result here (default: stdout)")
    parser.add_argument("--quick", action="store_true", help="the short variant")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds this may take")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.peer:
        from benchmarks.peers import run_peer

        code = run_peer(args)
    else:
        if not args.scenario:
            parser.error("--scenario or --peer is required")
        code = _main_scenario(args)
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything was cleaned up explicitly above; skip interpreter teardown, where a
    # native runtime (the official SDK's) may still be winding down its threads.
    os._exit(code)


if __name__ == "__main__":
    main()
