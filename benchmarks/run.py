"""The orchestrator: one server, every scenario for both SDKs, alternating, then the report."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import SDKS
from benchmarks.common import ROOT, sdk_version
from benchmarks.report import update_docs, write_markdown, write_plots
from benchmarks.scenarios import Scenario, all_scenarios
from benchmarks.stats import aggregate

DEFAULT_OUT = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
KILL_GRACE_S = 15.0


def machine() -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = float("nan")
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


class ServerStarter:
    """Starts the local livekit-server in a thread, so local scenarios run meanwhile."""

    def __init__(self, log_dir: Path) -> None:
        self.server: Any = None
        self.error: BaseException | None = None
        self.version = "unknown"
        self._log = log_dir / "livekit-server.log"
        self._thread = threading.Thread(target=self._start, daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            sys.path.insert(0, str(ROOT))
            from signaling import local_server

            path = local_server.install()
            self.version = Path(path).parent.name.removeprefix("livekit-server-")
            self.server = local_server.start(self._log)
        except BaseException as exc:  # reported by url()
            self.error = exc

    def url(self) -> str:
        self._thread.join()
        if self.server is None:
            raise RuntimeError(f"livekit-server did not start: {self.error!r}")
        return str(self.server.url)

    def stop(self) -> None:
        self._thread.join()
        if self.server is not None:
            self.server.stop()


def run_worker(
    scenario: Scenario, sdk: str, url: str, quick: bool, work: Path, tag: str
) -> dict[str, Any]:
    """Run one worker process; kill its process group if it outlives its budget."""
    budget = scenario.budget(quick)
    out = work / f"{tag}.json"
    log = work / f"{tag}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.worker",
        "--sdk",
        sdk,
        "--scenario",
        scenario.name,
        "--url",
        url,
        "--json-out",
        str(out),
        "--budget",
        str(budget),
    ]
    if quick:
        cmd.append("--quick")
    started = time.monotonic()
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=str(ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: peers die with it
        )
        killed = False
        try:
            proc.wait(timeout=budget + KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            # the worker's group: itself and any peer it started and left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    result: dict[str, Any]
    if out.exists():
        try:
            result = json.loads(out.read_text())
        except ValueError as exc:
            result = {"status": "error", "error": f"unreadable result: {exc}"}
        if killed:
            result.setdefault("notes", []).append(
                f"the worker wrote its result but did not exit; killed after {elapsed:.0f}s"
            )
    else:
        tail = log.read_text(errors="replace")[-1500:].strip() if log.exists() else ""
        why = (
            f"killed after {elapsed:.0f}s (budget {budget:.0f}s)"
            if killed
            else f"worker exited with code {proc.returncode} and no result"
        )
        result = {"status": "error", "error": why, "log_tail": tail}
    result.update(sdk=sdk, scenario=scenario.name, elapsed_s=elapsed, log=str(log))
    return result


def publish(results: dict[str, Any], out: Path, docs: bool) -> None:
    """Write latest.md and the plots next to latest.json, and the docs if asked."""
    write_markdown(results, out / "latest.md")
    plots = write_plots(results, out)
    if docs:
        if update_docs(results, DOCS, out, plots):
            print(f"updated {DOCS}")
        else:
            print(f"could not update {DOCS}: missing, or without the results markers")
    print()
    print((out / "latest.md").read_text())
    print(
        f"wrote {out / 'latest.json'}, {out / 'latest.md'}"
        + (", " + ", ".join(str(out / p) for p in plots) if plots else " (no plots: matplotlib?)")
        + f"; the run took {results['meta']['duration_s'] / 60:.1f} min"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in all_scenarios()]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark livekit-py against the official SDK on one local livekit-server.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short variants of every scenario (under 3 minutes)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=names,
        metavar="NAME",
        help="run only this scenario (repeatable); one of: " + ", ".join(names),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where latest.json, latest.md and the plots go (default: benchmarks/results)",
    )
    parser.add_argument(
        "--repeats", type=int, help="runs per SDK per scenario (default: 1 quick, 3 full)"
    )
    parser.add_argument("--url", help="use this running livekit-server (dev keys) instead")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="also write the table into the results section of docs/benchmarks.md",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="run nothing: rewrite the table and plots (and with --update-docs the docs) "
        "from the results of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that the server and the current worker are stopped."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _exit_on_sigterm()
    scenarios = all_scenarios()
    if args.list:
        for s in scenarios:
            print(f"{s.name:28} {s.title}")
        return 0
    if args.from_json:
        earlier: dict[str, Any] = json.loads(args.from_json.read_text())
        for entry in earlier["scenarios"]:  # aggregated again from every worker's output
            entry.update(aggregate(entry["runs"]))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.json").write_text(json.dumps(earlier, indent=1, allow_nan=True) + "\n")
        publish(earlier, args.out, args.update_docs)
        return 0
    if args.scenario:
        scenarios = [s for s in scenarios if s.name in set(args.scenario)]
    repeats = args.repeats or (1 if args.quick else 3)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="livekit-py-bench-"))
    started = time.monotonic()
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "repeats": repeats,
        "command": "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_before": _load(),
        "versions": {sdk: sdk_version(sdk) for sdk in SDKS},
        "server_version": "not used",
        "work_dir": str(work),
    }
    print(
        f"benchmarks: {len(scenarios)} scenario(s), {repeats} repeat(s), "
        f"{'quick' if args.quick else 'full'} mode; worker logs in {work}",
        flush=True,
    )

    starter: ServerStarter | None = None
    if args.url is None and any(s.needs_server for s in scenarios):
        starter = ServerStarter(work)
    # local scenarios first: they need no server, which starts meanwhile
    order = sorted(scenarios, key=lambda s: s.needs_server)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s.name: {} for s in scenarios}
    plan = sum(
        min(repeats, s.max_repeats or repeats) if not args.quick else repeats for s in order
    ) * len(SDKS)
    done = 0
    try:
        for index, scenario in enumerate(order):
            url = ""
            if scenario.needs_server:
                url = args.url or (starter.url() if starter else "")
                if starter is not None:
                    meta["server_version"] = starter.version
                elif args.url:
                    meta["server_version"] = f"external ({args.url})"
            count = repeats if args.quick else min(repeats, scenario.max_repeats or repeats)
            for r in range(count):
                # alternate which SDK goes first, so neither always runs on a warmer machine
                sdks = SDKS if (index + r) % 2 == 0 else SDKS[::-1]
                for sdk in sdks:
                    done += 1
                    tag = f"{scenario.name}-{sdk}-{r + 1}"
                    print(f"[{done}/{plan}] {scenario.name} {sdk} #{r + 1} ...", end="", flush=True)
                    result = run_worker(scenario, sdk, url, args.quick, work, tag)
                    runs[scenario.name].setdefault(sdk, []).append(result)
                    summary = ", ".join(
                        f"{k}={v['value']:.4g}" for k, v in result.get("metrics", {}).items()
                    )
                    print(
                        f" {result['status']} in {result['elapsed_s']:.1f}s"
                        + (f": {summary}" if summary else "")
                        + (f" ({result['error']})" if result.get("error") else ""),
                        flush=True,
                    )
    finally:
        if starter is not None:
            starter.stop()

    meta["duration_s"] = time.monotonic() - started
    meta["load_after"] = _load()
    results: dict[str, Any] = {"meta": meta, "scenarios": []}
    for scenario in scenarios:  # report in the documented order
        agg = aggregate(runs[scenario.name])
        results["scenarios"].append(
            {
                "name": scenario.name,
                "group": scenario.group,
                "title": scenario.title,
                **agg,
                "runs": runs[scenario.name],
            }
        )
    (out / "latest.json").write_text(json.dumps(results, indent=1, allow_nan=True) + "\n")
    publish(results, out, args.update_docs)
    failed = [
        f"{s['name']}/{sdk}"
        for s in results["scenarios"]
        for sdk in SDKS
        if s["status"][sdk]["state"] in ("error", "not run")
    ]
    if failed:
        print("failed: " + ", ".join(failed))
    return 0
