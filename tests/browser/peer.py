"""A Chromium page on livekit-client as a peer for the tests, driven by driver.mjs.

``BrowserPeer.start`` runs ``node driver.mjs`` (which runs Chromium through
puppeteer-core) and talks to it in JSON lines: ``await peer.call("connect", url,
token)`` calls ``window.lk.connect`` in the page and returns its result, and what the
page reports on its own (data it received, tracks it subscribed) collects in
``peer.events``. ``close`` ends both processes, gently and then by force, and
``leftover_processes`` says whether any of them is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from tests.browser import node_env

DRIVER = node_env.HERE / "driver.mjs"


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = []
    if shutil.which(node_env.CHROMIUM) is None:
        missing.append("Debian's chromium (apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("Node.js (apt-get install nodejs npm)")
    if node_env.installed() is None:
        missing.append(
            "the Node packages (python -m tests.browser.node_env, as nox's tests session does)"
        )
    if not missing:
        return None
    return "the browser tests need " + ", ".join(missing) + "; .ci/run installs them"


def _prepare(workdir: Path) -> tuple[dict[str, str], BinaryIO]:
    """The driver's environment, and its log file opened for writing."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Chromium's crash handler and caches go under workdir, not the user's home:
    # nothing is left behind there, and leftover_processes() finds them by name.
    env = dict(
        os.environ,
        XDG_CONFIG_HOME=str(workdir / "config"),
        XDG_CACHE_HOME=str(workdir / "cache"),
    )
    return env, (workdir / "driver.log").open("wb")


def _pgrep(*args: str) -> list[int]:
    out = subprocess.run(["pgrep", *args], stdout=subprocess.PIPE, text=True).stdout
    return [int(pid) for pid in out.split()]


class BrowserPeer:
    """One driver process, its Chromium and its page."""

    def __init__(self, process: asyncio.subprocess.Process, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        self.log_path = workdir / "driver.log"
        self.browser_pid: int | None = None
        self.version = ""
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, workdir: Path, *, timeout: float = 60.0) -> BrowserPeer:
        """Start the driver and wait until its page is loaded."""
        modules = node_env.installed()
        chromium = shutil.which(node_env.CHROMIUM)
        if modules is None or chromium is None:
            raise RuntimeError(unavailable_reason())
        env, log = _prepare(workdir)
        with log:
            process = await asyncio.create_subprocess_exec(
                "node",
                str(DRIVER),
                "--chromium",
                chromium,
                "--modules",
                str(modules),
                "--profile",
                str(workdir / "profile"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                # Its own process group, so that close() can end it and all it started.
                start_new_session=True,
                limit=1 << 22,
                env=env,
            )
        peer = cls(process, workdir)
        try:
            ready = await peer.wait_event(lambda e: e["event"] == "ready", timeout=timeout)
        except BaseException:
            await peer.close()
            raise
        peer.browser_pid = ready["browser_pid"]
        peer.version = ready["version"]
        return peer

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "id" in msg:
                future = self._pending.pop(msg["id"], None)
                if future is not None and not future.done():
                    if msg["ok"]:
                        future.set_result(msg["result"])
                    else:
                        future.set_exception(RuntimeError(f"page: {msg['error']}"))
            else:
                self.events.append(msg)
                self._changed.set()
        gone = RuntimeError(f"the browser driver exited; see {self.log_path}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        self._pending.clear()
        self._changed.set()

    async def call(self, name: str, *args: object, timeout: float = 60.0) -> Any:
        """Call ``window.lk[name](*args)`` in the page and return its result."""
        assert self.process.stdin is not None
        gone = RuntimeError(f"the browser driver has exited; see {self.log_path}")
        if self._reader.done() or self.process.returncode is not None:
            raise gone
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        line = json.dumps({"id": self._next_id, "call": name, "args": list(args)}) + "\n"
        try:
            self.process.stdin.write(line.encode())
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._pending.pop(self._next_id, None)
            raise gone from None
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"page call {name} took over {timeout} s; see {self.log_path}"
            ) from None

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first event (already recorded or coming) that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            if self._reader.done():
                raise AssertionError(f"the browser driver exited; see {self.log_path}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = [e.get("event") for e in self.events]
                raise AssertionError(f"no matching browser event within {timeout} s; got {names}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def process_groups(self) -> list[int]:
        """The process groups of the driver and of its Chromium (puppeteer detaches it)."""
        groups = [self.process.pid]
        if self.browser_pid is not None:
            groups.append(self.browser_pid)
        return groups

    def leftover_processes(self) -> list[int]:
        """Processes of this peer still alive (none, after close()).

        Those of the driver's and Chromium's process groups, and any other whose command
        line names this peer's folder (Chromium's crash handler starts a session of its
        own, with its database under ``XDG_CONFIG_HOME``).
        """
        pids = {pid for pgid in self.process_groups() for pid in _pgrep("-g", str(pgid))}
        pids.update(_pgrep("-f", str(self.workdir)))
        pids.discard(os.getpid())
        return sorted(pids)

    async def close(self, *, timeout: float = 15.0) -> None:
        """Close the page and the browser: stdin EOF first, then SIGKILL to both groups."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        for pgid in self.process_groups():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for pid in self.leftover_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.process.wait(), timeout)
        # Chromium's processes are not our children once the driver is gone (init reaps
        # them); give them a moment to disappear.
        for _ in range(int(timeout / 0.1)):
            if not self.leftover_processes():
                break
            await asyncio.sleep(0.1)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
