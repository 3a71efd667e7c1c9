"""Would the SDK's media path gain from an event loop (and thread) of its own? Measure it.

``PYTHONPATH=src python -m benchmarks.media_thread_probe [--full] [--url ws://...]
[--src OTHER/src] [--only TEXT] [--repeat N] [--keep DIR]``

Runs the ``loaded_loop`` scenario (``benchmarks/scenarios/loaded.py``: a tone and 640x360
video at 30 fps published while a task blocks the publisher's loop and two processes keep
the cores busy; an official-SDK subscriber reports concealment and frames per second) in
a few variants, each in a worker process of its own:

- the load of the scenario (the loop held 30 ms every 100 ms) and a heavier one (120 ms
  every 400 ms, longer than the receiver's jitter buffer), the loop held by a busy
  callback (spinning in Python: the GIL is held too) or by a blocking call (sleeping: the
  GIL is released);
- livekit-py as it is (everything on the user's loop), livekit-py with the room and its
  sources on an event loop in a thread of their own (the producers and the blocking task
  stay on the scenario's loop and hand frames over with ``run_coroutine_threadsafe`` /
  ``call_soon_threadsafe``: what an engine thread inside the SDK would do), and the
  official SDK as the reference.

It prints one line per variant. Nothing is written to ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("official", "30/100 spin", {"LOADED_BLOCK": "30/100"}),
    ("ours", "30/100 spin", {"LOADED_BLOCK": "30/100"}),
    ("ours", "30/100 spin, engine thread", {"LOADED_BLOCK": "30/100", "LOADED_ENGINE_THREAD": "1"}),
    ("official", "120/400 spin", {"LOADED_BLOCK": "120/400"}),
    ("ours", "120/400 spin", {"LOADED_BLOCK": "120/400"}),
    (
        "ours",
        "120/400 spin, engine thread",
        {"LOADED_BLOCK": "120/400", "LOADED_ENGINE_THREAD": "1"},
    ),
    ("official", "120/400 sleep", {"LOADED_BLOCK": "120/400", "LOADED_BLOCK_KIND": "sleep"}),
    ("ours", "120/400 sleep", {"LOADED_BLOCK": "120/400", "LOADED_BLOCK_KIND": "sleep"}),
    (
        "ours",
        "120/400 sleep, engine thread",
        {"LOADED_BLOCK": "120/400", "LOADED_BLOCK_KIND": "sleep", "LOADED_ENGINE_THREAD": "1"},
    ),
]


def _run(
    sdk: str, env_extra: dict[str, str], url: str, quick: bool, out: Path, src: Path
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(src), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    command = [
        sys.executable,
        "-m",
        "benchmarks.worker",
        "--sdk",
        sdk,
        "--scenario",
        "loaded_loop",
        "--url",
        url,
        "--json-out",
        str(out),
        "--budget",
        "90",
    ]
    if quick:
        command.append("--quick")
    subprocess.run(command, cwd=ROOT, env=env, timeout=120, check=False)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _line(sdk: str, label: str, result: dict[str, Any]) -> str:
    if result.get("status") != "ok":
        return f"{sdk:8} {label:30} {result.get('status')}: {result.get('error')}"
    m = {k: v["value"] for k, v in result["metrics"].items()}
    return (
        f"{sdk:8} {label:30} concealed {m.get('concealed_pct', float('nan')):6.2f} %  "
        f"video {m['fps_received']:5.1f} fps  queued p95 {m['queued_p95_ms']:5.0f} ms, "
        f"max {m['queued_max_ms']:5.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="20 s windows instead of 6 s")
    parser.add_argument("--url", help="a running livekit-server (dev keys); else one is started")
    parser.add_argument(
        "--src",
        type=Path,
        default=ROOT / "src",
        help="where livekit_py is imported from (another checkout's src/, to compare)",
    )
    parser.add_argument("--only", help="run only the variants whose label contains this")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant")
    parser.add_argument("--keep", type=Path, help="keep each worker's JSON output here")
    args = parser.parse_args(argv)
    server = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(ROOT))
        from signaling import local_server

        local_server.install()
        server = local_server.start()
        url = str(server.url)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            work = args.keep or Path(scratch)
            work.mkdir(parents=True, exist_ok=True)
            for i, (sdk, label, env_extra) in enumerate(VARIANTS):
                if args.only and args.only not in f"{sdk} {label}":
                    continue
                for run in range(args.repeat):
                    out = work / f"{i}-{run}.json"
                    result = _run(sdk, env_extra, url, not args.full, out, args.src)
                    print(_line(sdk, label, result), flush=True)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
