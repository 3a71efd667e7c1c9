"""What every worker uses: the SDK adapter, process figures, results, and the run context.

The two SDKs share one API (``livekit_py.rtc`` mirrors ``livekit.rtc``), so a
scenario is written once against the ``rtc`` module it is handed; this module
holds the few helpers that hide what little differs and the bookkeeping around
a run (rooms to disconnect, peers to stop, the deadline, the result).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "devkey"
API_SECRET = "secret"
PROTOCOL_PREFIX = "@@BENCH "
"""Lines a peer process writes to stdout for its parent start with this marker."""


# -- the SDKs -------------------------------------------------------------------------------


def load_rtc(sdk: str) -> ModuleType:
    """The ``rtc`` module of ``sdk`` ("ours" or "official")."""
    if sdk == "ours":
        from livekit_py import rtc as ours

        return ours
    if sdk == "official":
        from livekit import rtc as official

        return official
    raise ValueError(f"unknown SDK {sdk!r}")


def sdk_version(sdk: str) -> str:
    try:
        if sdk == "ours":
            from livekit_py.version import __version__ as ours_version

            return str(ours_version)
        from livekit.rtc.version import __version__ as official_version

        return str(official_version)
    except Exception as exc:  # reported, not raised
        return f"unavailable ({exc.__class__.__name__}: {exc})"


def token(identity: str, room: str) -> str:
    """An access token to join ``room`` on the dev server (HS256 JWT, like livekit-api's).

    Written out here so that workers do not import livekit-api (and its HTTP stack),
    which would add the same megabytes to both SDKs' memory figures.
    """

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    now = int(time.time())
    claims = {
        "name": identity,
        "video": {
            "roomJoin": True,
            "room": room,
            "canPublish": True,
            "canSubscribe": True,
            "canPublishData": True,
        },
        "sub": identity,
        "iss": API_KEY,
        "nbf": now - 5,
        "exp": now + 6 * 3600,
    }
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(API_SECRET.encode(), header + b"." + payload, hashlib.sha256).digest()
    return (header + b"." + payload + b"." + b64(signature)).decode()


# -- this process ---------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User plus system CPU time of this process, all of its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    return float("nan")


def rss_mb() -> float:
    """Resident set size of this process, MiB."""
    return _status_kb("VmRSS") / 1024.0


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation, like numpy's default."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


# -- results --------------------------------------------------------------------------------


@dataclass
class Result:
    """What one worker run found: one value per metric, raw samples, notes."""

    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metric(
        self, name: str, value: float, unit: str, *, better: str = "lower", label: str = ""
    ) -> None:
        """Record one figure; ``better`` is "lower" or "higher"."""
        if better not in ("lower", "higher"):
            raise ValueError(better)
        self.metrics[name] = {
            "value": float(value),
            "unit": unit,
            "better": better,
            "label": label or name,
        }

    def add_samples(self, name: str, values: Sequence[float], unit: str) -> None:
        """Keep raw measurements (e.g. every latency) for the plots."""
        entry = self.samples.setdefault(name, {"unit": unit, "values": []})
        entry["values"].extend(float(v) for v in values)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "samples": self.samples, "notes": self.notes}


class Unavailable(Exception):
    """The SDK under test lacks what the scenario needs: reported, not a failure."""


# -- peers: helper processes of a scenario ---------------------------------------------------


class Peer:
    """A helper process (``python -m benchmarks.worker --peer ROLE``) talking JSON lines."""

    def __init__(self, role: str, sdk: str, proc: asyncio.subprocess.Process) -> None:
        self.role = role
        self.sdk = sdk
        self.proc = proc
        self._lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                await self._lines.put(None)
                return
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(PROTOCOL_PREFIX):
                await self._lines.put(json.loads(line[len(PROTOCOL_PREFIX) :]))

    async def receive(self, timeout: float) -> dict[str, Any]:
        try:
            msg = await asyncio.wait_for(self._lines.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"peer {self.role} ({self.sdk}) said nothing in {timeout:g}s"
            ) from None
        if msg is None:
            code = await self.proc.wait()
            raise RuntimeError(f"peer {self.role} ({self.sdk}) exited with code {code}")
        if "error" in msg:
            raise RuntimeError(f"peer {self.role} ({self.sdk}) failed: {msg['error']}")
        return msg

    async def request(self, command: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.receive(timeout)

    async def close(self) -> None:
        """Ask the peer to leave (stdin closes), then kill it if it lingers."""
        with contextlib.suppress(Exception):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


# -- the run context ------------------------------------------------------------------------


@dataclass
class Context:
    """What a scenario gets: its SDK, the server, its budget, and the cleanup stack."""

    sdk: str
    rtc: Any
    url: str
    quick: bool
    deadline: float
    stack: contextlib.AsyncExitStack
    result: Result
    room_name: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    stderr_dir: Path | None = None

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def pick(self, quick: Any, full: Any) -> Any:
        """The quick-mode or the full-mode value of a parameter."""
        return quick if self.quick else full

    def token(self, identity: str, room: str | None = None) -> str:
        return token(identity, room or self.room_name)

    async def connect(self, identity: str, options: Any = None) -> Any:
        """A connected Room of the SDK under test, disconnected when the run ends."""
        room = self.rtc.Room()
        args = (options,) if options is not None else ()
        await asyncio.wait_for(room.connect(self.url, self.token(identity), *args), 30)
        self.stack.push_async_callback(_disconnect, room)
        return room

    def closing(self, closer: Callable[[], Awaitable[Any]]) -> None:
        """Run ``closer()`` (e.g. ``source.aclose``) when the run ends."""
        self.stack.push_async_callback(_quietly, closer)

    async def start_peer(self, role: str, sdk: str | None = None, **params: Any) -> Peer:
        """Start a helper process in this run's room and wait until it says it is ready."""
        sdk = sdk or self.sdk
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")) if p
        )
        stderr = _peer_log(self.stderr_dir, f"peer-{role}-{sdk}-{os.getpid()}.log")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.worker",
            "--peer",
            role,
            "--sdk",
            sdk,
            "--url",
            self.url,
            "--room",
            self.room_name,
            "--params",
            json.dumps(params),
            "--budget",
            str(max(self.time_left(), 5.0)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=str(ROOT),
            env=env,
        )
        if not isinstance(stderr, int):
            stderr.close()
        peer = Peer(role, sdk, proc)
        self.stack.push_async_callback(peer.close)
        await peer.receive(timeout=min(60.0, max(self.time_left(), 5.0)))  # the "ready" line
        return peer


def _peer_log(folder: Path | None, name: str) -> Any:
    """Where a peer's stderr goes: a log file next to the worker's result, or nowhere."""
    if folder is None:
        return asyncio.subprocess.DEVNULL
    return open(folder / name, "ab")


async def _disconnect(room: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(room.disconnect(), 10)


async def _quietly(closer: Callable[[], Awaitable[Any]]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(closer(), 10)


# -- media helpers shared by scenarios and peers ---------------------------------------------


def find_remote_track(room: Any, kind: int, identity: str | None = None) -> Any | None:
    for participant in list(room.remote_participants.values()):
        if identity is not None and participant.identity != identity:
            continue
        for pub in list(participant.track_publications.values()):
            track = pub.track
            if track is not None and track.kind == kind:
                return track
    return None


async def wait_remote_track(
    room: Any, kind: int, identity: str | None = None, timeout: float = 20.0
) -> Any:
    """The first subscribed remote track of ``kind`` (from ``identity`` if given)."""
    deadline = time.monotonic() + timeout
    while True:
        track = find_remote_track(room, kind, identity)
        if track is not None:
            return track
        if time.monotonic() > deadline:
            raise TimeoutError(f"no remote track of kind {kind} within {timeout:g}s")
        await asyncio.sleep(0.05)


async def wait_for_participant(room: Any, identity: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while identity not in room.remote_participants:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{identity} did not show up within {timeout:g}s")
        await asyncio.sleep(0.02)
    return room.remote_participants[identity]


def sine_frames(rtc: Any, freq: float, rate: int, ms: int, seconds: float = 1.0) -> list[Any]:
    """A second (by default) of a sine as AudioFrames of ``ms`` each, to capture in a loop."""
    import numpy as np

    step = rate * ms // 1000
    count = max(1, int(seconds * 1000 // ms))
    t = np.arange(step * count) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i * step : (i + 1) * step].tobytes(), rate, 1, step)
        for i in range(count)
    ]


async def feed_audio(source: Any, frames: Sequence[Any]) -> None:
    """Capture ``frames`` into ``source`` forever; its back-pressure paces this to real time."""
    while True:
        for frame in frames:
            await source.capture_frame(frame)


async def drain_audio(stream: Any, on_frame: Callable[[Any], None] | None = None) -> None:
    async for event in stream:
        if on_frame is not None:
            on_frame(event.frame)


@contextlib.asynccontextmanager
async def background(coro: Awaitable[Any]) -> AsyncIterator[asyncio.Future[Any]]:
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def spawn(ctx: Context, coro: Awaitable[Any]) -> asyncio.Future[Any]:
    """A background task cancelled when the run ends."""
    task = asyncio.ensure_future(coro)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task

    ctx.stack.push_async_callback(stop)
    return task


async def publish_audio(
    ctx: Context, room: Any, name: str, freq: float, rate: int = 48000
) -> tuple[Any, Any]:
    """Publish a sine as a microphone track; returns (source, publication)."""
    rtc = ctx.rtc
    source = rtc.AudioSource(rate, 1)
    ctx.closing(source.aclose)
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    spawn(ctx, feed_audio(source, sine_frames(rtc, freq, rate, 10)))
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await asyncio.wait_for(room.local_participant.publish_track(track, options), 20)
    return source, publication
