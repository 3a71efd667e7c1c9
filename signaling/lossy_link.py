"""A lossy, delayed network link to a livekit-server in a network namespace.

This kernel has no ``netem``, so the link is a userspace forwarder between two TUN
devices, one in the root namespace and one in the server's namespace; nothing
else joins the two (no veth pair). Everything a client in the root namespace
sends to the server, signal TCP included, and everything the server sends back
crosses the forwarder, which holds each packet until its due time (a fixed
one-way delay plus optional jitter), drops packets at random (independently, or
in bursts), and writes it to the other device. Each direction has its own
:class:`Impairment`, changeable while the link runs.

Layout of one instance (names unique per instance, as in ``signaling/netns.py``)::

    root namespace                                  namespace lkpy-<pid>-<hex>
    clients (their own addresses, e.g. eth0's)
      │ route 10.232.a.b+2/32                         livekit-server --bind 10.232.a.b+2
      ▼                                                 ▲ routes back to the root
    lk<hex>h (TUN, no address) ◀─▶ forwarder ◀─▶ lk<hex>n (TUN, 10.232.a.b+2/32)

The root-side TUN has no address (unless the root namespace has no IPv4 address
but loopback ones, then it gets ``host_ip``): the clients talk to the server from
the addresses they already have, so other ICE agents on the machine see no new
interface address come and go. Only the server's /32 is routed into the link,
and the namespace routes only the root namespace's own addresses back. The
addresses come from 10.232.0.0/16 (``signaling/netns.py`` uses 10.231.0.0/16),
avoiding whatever the root namespace already has.

The forwarder is a small process of its own (``python -m signaling.lossy_link
forward``), so a busy test process adds no jitter: it opens the root TUN, enters
the namespace (``setns``) and opens the other TUN there; TUN file descriptors keep
working in any namespace. Its devices vanish with it. It takes commands as JSON
lines on its stdin; when stdin closes without a ``stop`` (the process that started
it died), it kills the namespace's processes and deletes the namespace itself.
Stale namespaces of a SIGKILLed run that escaped this are reaped the way
``netns`` reaps its own.

Typical use::

    link = lossy_link.start_server(log_path, up=Impairment(100, loss=0.05),
                                   down=Impairment(100, loss=0.05))
    try:
        ...                       # clients connect to link.url
        link.set_impairment(up=Impairment(100, jitter_ms=10, loss=0.1, burst=3))
        link.stats().up.dropped   # counters per direction, per client port
    finally:
        link.stop()               # forwarder, server, namespace: all gone

``python -m signaling.lossy_link measure`` measures the forwarder itself (the
delay and jitter it adds, the packet rate it sustains).

Needs root, ``ip`` (iproute2) and ``/dev/net/tun``; :func:`unavailable_reason`
says what is missing, for a test to skip with.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import errno
import fcntl
import heapq
import ipaddress
import json
import math
import os
import random
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from signaling import netns

#: Where the per-instance /30s are taken from (netns.POOL is 10.231.0.0/16).
POOL = ipaddress.IPv4Network("10.232.0.0/16")
TUN_PATH = "/dev/net/tun"
ROOT = Path(__file__).resolve().parent.parent

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_CLONE_NEWNET = 0x40000000
_PR_SET_TIMERSLACK = 29

# Instances of this process not stopped yet, stopped at interpreter exit.
_live: set[LossyServer | Link] = set()


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Impairment:
    """What one direction of the link does to each packet.

    Attributes:
        delay_ms: One-way delay added to every packet.
        jitter_ms: Each packet's delay is ``delay_ms`` plus a uniform random value in
            [-jitter_ms, +jitter_ms] (never below 0).
        loss: Share of packets dropped, 0..1.
        burst: None: each packet is dropped independently with probability ``loss``.
            Else the mean length (in packets, >= 1) of a run of dropped packets: a
            two-state (Gilbert) model that loses every packet in its bad state, with
            the long-run loss still ``loss``.
        reorder: With jitter, let a packet overtake an earlier one (netem's
            behaviour). False (default): a packet is never sent before the one that
            came before it, as on a real single path.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    burst: float | None = None
    reorder: bool = False

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.loss, (int, float)) or not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be within 0..1, got {self.loss!r}")
        if self.burst is not None and (
            not isinstance(self.burst, (int, float))
            or not math.isfinite(self.burst)
            or self.burst < 1
        ):
            raise ValueError(f"burst must be None or a mean run length >= 1, got {self.burst!r}")
        if self.burst is not None and self.loss < 1.0 and self.loss / (1 - self.loss) > self.burst:
            # every run of losses ends with a packet that gets through
            raise ValueError(
                f"a loss of {self.loss:g} needs bursts of at least "
                f"{self.loss / (1 - self.loss):.3g} packets on average, got {self.burst!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Impairment:
        return cls(**data)


PASSTHROUGH = Impairment()


class _Direction:
    """One direction inside the forwarder: the loss state, the counters, the lateness."""

    # lateness histogram: 0.1 ms bins up to 50 ms, then one overflow bin
    BIN_S = 1e-4
    BINS = 500

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.imp = PASSTHROUGH
        self.bad = False
        self.last_due = 0.0
        self.received = self.dropped = self.forwarded = self.errors = self.bytes = 0
        self.ports: dict[str, int] = {}
        self.late = [0] * (self.BINS + 1)
        self.late_max = 0.0

    def set(self, imp: Impairment) -> None:
        self.imp = imp
        self.bad = False

    def reset(self) -> None:
        """Zero the counters and the lateness histogram."""
        self.received = self.dropped = self.forwarded = self.errors = self.bytes = 0
        self.ports = {}
        self.late = [0] * (self.BINS + 1)
        self.late_max = 0.0

    def lose(self) -> bool:
        imp = self.imp
        if imp.loss <= 0.0:
            return False
        if imp.loss >= 1.0:
            return True
        if imp.burst is None:
            return self.rng.random() < imp.loss
        leave_bad = 1.0 / imp.burst
        enter_bad = imp.loss * leave_bad / (1.0 - imp.loss)
        if self.bad:
            self.bad = self.rng.random() >= leave_bad
        else:
            self.bad = self.rng.random() < enter_bad
        return self.bad

    def admit(self, now: float, packet: bytes) -> float | None:
        """Count ``packet``; its due time, or None when it is dropped."""
        self.received += 1
        self.bytes += len(packet)
        key = _port_key(packet, self.name == "up")
        if key is not None:
            self.ports[key] = self.ports.get(key, 0) + 1
        if self.lose():
            self.dropped += 1
            return None
        imp = self.imp
        delay = imp.delay_ms / 1e3
        if imp.jitter_ms:
            delay = max(0.0, delay + self.rng.uniform(-imp.jitter_ms, imp.jitter_ms) / 1e3)
        due = now + delay
        if not imp.reorder:
            due = max(due, self.last_due)
            self.last_due = due
        return due

    def sent(self, lateness: float) -> None:
        self.forwarded += 1
        self.late[min(int(lateness / self.BIN_S), self.BINS)] += 1
        self.late_max = max(self.late_max, lateness)

    def lateness_ms(self, q: float) -> float:
        total = sum(self.late)
        if not total:
            return 0.0
        want = q / 100.0 * total
        seen = 0
        for i, n in enumerate(self.late):
            seen += n
            if seen >= want:
                return (i + 1) * self.BIN_S * 1e3 if i < self.BINS else self.late_max * 1e3
        return self.late_max * 1e3

    def stats(self, queued: int) -> dict[str, Any]:
        return {
            "received": self.received,
            "dropped": self.dropped,
            "forwarded": self.forwarded,
            "errors": self.errors,
            "bytes": self.bytes,
            "queued": queued,
            "late_p50_ms": self.lateness_ms(50),
            "late_p99_ms": self.lateness_ms(99),
            "late_max_ms": self.late_max * 1e3,
            "ports": dict(self.ports),
            "impairment": self.imp.to_json(),
        }


def _port_key(packet: bytes, up: bool) -> str | None:
    """``"udp:<port>"``/``"tcp:<port>"`` of the root-side end of an IPv4 packet, or None."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    proto = packet[9]
    if proto not in (6, 17):
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 4:
        return None
    offset = ihl if up else ihl + 2  # up: the client's source port; down: its destination
    port = int.from_bytes(packet[offset : offset + 2], "big")
    return f"{'udp' if proto == 17 else 'tcp'}:{port}"


# ---------------------------------------------------------------------------- the forwarder


def _open_tun(name: str) -> int:
    """A non-persistent TUN device ``name`` in the caller's namespace; its fd, non-blocking."""
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    os.set_blocking(fd, False)
    with contextlib.suppress(OSError):  # no IPv6 on the link (no link-local chatter)
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
    return fd


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    """Move this (single-threaded) process into the network namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _orphan_cleanup(ns_name: str) -> None:
    """The parent died: kill what runs in the namespace (not us) and delete it."""
    me = os.getpid()
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["ip", "netns", "pids", ns_name], capture_output=True, text=True, check=False
        ).stdout
        for pid in out.split():
            if int(pid) != me:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(Exception):
        subprocess.run(["ip", "netns", "del", ns_name], capture_output=True, check=False)


def _wake_on_time(realtime: bool) -> str:
    """Make this process wake up when its timer says: real-time or nice -10, 1 µs slack.

    Real-time (SCHED_FIFO, the lowest priority) preempts every ordinary process at once,
    so a loaded machine does not delay the packets; the kernel's real-time throttling
    (95 % of a CPU by default) still bounds it. Falls back to nice -10 when refused.
    """
    with contextlib.suppress(Exception):
        _libc().prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    if realtime:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            return "SCHED_FIFO 1"
    with contextlib.suppress(OSError):
        os.nice(-10)
        return "nice -10"
    return "normal"


def _forward(args: argparse.Namespace) -> int:
    """The forwarder process: see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    scheduling = _wake_on_time(args.realtime)
    root_fd = _open_tun(args.root_if)
    _setns(args.netns_path)
    ns_fd = _open_tun(args.ns_if)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 62)
    up = _Direction("up", random.Random(seed))
    down = _Direction("down", random.Random(seed + 1))
    ctl = sys.stdin.fileno()
    os.set_blocking(ctl, False)
    out = sys.stdout

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    # due, sequence (FIFO among equal times), fd to write, packet, direction
    heap: list[tuple[float, int, int, bytes, _Direction]] = []
    seq = 0
    route = {root_fd: (up, ns_fd), ns_fd: (down, root_fd)}
    pending = b""
    reply({"ready": True, "pid": os.getpid(), "seed": seed, "scheduling": scheduling})
    while True:
        timeout = max(0.0, heap[0][0] - time.monotonic()) if heap else 1.0
        readable, _, _ = select.select([root_fd, ns_fd, ctl], [], [], timeout)
        for fd in readable:
            if fd == ctl:
                try:
                    chunk = os.read(ctl, 65536)
                except BlockingIOError:
                    continue
                if not chunk:  # EOF without "stop": our parent is gone
                    _orphan_cleanup(args.netns)
                    return 0
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not line.strip():
                        continue
                    cmd = json.loads(line)
                    op = cmd.get("op")
                    if op == "set":
                        try:
                            if cmd.get("up") is not None:
                                up.set(Impairment.from_json(cmd["up"]))
                            if cmd.get("down") is not None:
                                down.set(Impairment.from_json(cmd["down"]))
                        except (TypeError, ValueError) as exc:
                            reply({"error": str(exc)})
                        else:
                            reply({"ok": True})
                    elif op == "stats":
                        queued_up = sum(1 for e in heap if e[4] is up)
                        reply(
                            {
                                "up": up.stats(queued_up),
                                "down": down.stats(len(heap) - queued_up),
                            }
                        )
                    elif op == "reset":
                        for d in (up, down):
                            d.reset()
                        reply({"ok": True})
                    elif op == "stop":
                        reply({"ok": True})
                        return 0
                    else:
                        reply({"error": f"unknown op {op!r}"})
                continue
            direction, target = route[fd]
            now = time.monotonic()
            for _ in range(256):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    direction.errors += 1
                    break
                due = direction.admit(now, packet)
                if due is not None:
                    heapq.heappush(heap, (due, seq, target, packet, direction))
                    seq += 1
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            due, _, target, packet, direction = heapq.heappop(heap)
            try:
                os.write(target, packet)
            except OSError:
                direction.errors += 1
            else:
                direction.sent(now - due)
            now = time.monotonic()


# ---------------------------------------------------------------------------- the parent side


class LinkError(RuntimeError):
    """The forwarder failed or did not answer."""


@dataclass(frozen=True)
class DirectionStats:
    """Counters of one direction since the link started (or :meth:`Link.reset_stats`).

    Attributes:
        received: Packets that entered this direction.
        dropped: Packets the loss model dropped.
        forwarded: Packets written to the other side.
        errors: Packets that could not be read or written.
        bytes: Bytes received.
        queued: Packets held right now, waiting for their due time.
        late_p50_ms: Median of how late the forwarder wrote packets after their due
            time (the jitter it adds itself), 0.1 ms resolution.
        late_p99_ms: Its 99th percentile.
        late_max_ms: The latest one.
        ports: Packets received per root-side port of the clients, ``"udp:<port>"`` or
            ``"tcp:<port>"`` (the source port going up, the destination port going down).
        impairment: What the direction does now.
    """

    received: int
    dropped: int
    forwarded: int
    errors: int
    bytes: int
    queued: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    ports: dict[str, int]
    impairment: Impairment

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DirectionStats:
        values = dict(data)
        values["impairment"] = Impairment.from_json(values["impairment"])
        return cls(**values)

    def port_packets(self, proto: str, ports: Iterable[int]) -> int:
        """Packets of the given client ports (``proto``: "udp" or "tcp")."""
        return sum(self.ports.get(f"{proto}:{p}", 0) for p in ports)


@dataclass(frozen=True)
class LinkStats:
    """:class:`DirectionStats` of both directions: ``up`` (to the server) and ``down``."""

    up: DirectionStats
    down: DirectionStats


class _Forwarder:
    """The forwarder process, spoken to in JSON lines."""

    def __init__(
        self, ns: netns.Namespace, seed: int | None, log_path: Path | None, realtime: bool
    ) -> None:
        argv = [
            sys.executable,
            "-m",
            "signaling.lossy_link",
            "forward",
            "--netns",
            ns.name,
            "--netns-path",
            ns.path,
            "--root-if",
            ns.host_if,
            "--ns-if",
            ns.ns_if,
        ]
        if seed is not None:
            argv += ["--seed", str(seed)]
        argv.append("--realtime" if realtime else "--no-realtime")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=str(ROOT),
                env=env,
                bufsize=0,
                # its own session: a Ctrl-C or a kill of our process group does not reach
                # it, it sees its stdin close and cleans up after us
                start_new_session=True,
            )
        finally:
            if not isinstance(log, int):
                log.close()
        self._lock = threading.Lock()
        self._buffer = b""
        self.log_path = log_path
        try:
            hello = self._read(timeout=30.0)
        except BaseException:
            self.kill()
            raise
        self.pid = int(hello["pid"])
        self.seed = int(hello["seed"])
        self.scheduling = str(hello["scheduling"])

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(f"the forwarder did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.poll()
                    where = f"; see {self.log_path}" if self.log_path else ""
                    raise LinkError(f"the forwarder exited (code {code}){where}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def request(self, cmd: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            if self.proc.poll() is not None:
                raise LinkError(f"the forwarder is gone (code {self.proc.returncode})")
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            answer = self._read(timeout)
        if "error" in answer:
            raise LinkError(str(answer["error"]))
        return answer

    def stop(self) -> None:
        """Ask it to stop (its TUN devices go with it); kill it if it does not."""
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.request({"op": "stop"}, timeout=5.0)
        self.kill()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        with contextlib.suppress(Exception):
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _root_ipv4_addresses() -> list[str]:
    """The root namespace's IPv4 addresses but loopback ones (where clients send from)."""
    out: list[str] = []
    for entry in json.loads(netns._run(["ip", "-j", "-4", "addr", "show"]) or "[]"):
        for info in entry.get("addr_info", []):
            addr = ipaddress.IPv4Address(info["local"])
            if not addr.is_loopback and info.get("scope") != "host":
                out.append(str(addr))
    return out


@dataclass(eq=False)
class Link:
    """A namespace joined to the root namespace only through the forwarder.

    Attributes:
        namespace: The namespace (``namespace.ns_ip`` is the far end's address).
        client_ips: The root namespace addresses routed back from the namespace: the
            ones clients send from.
    """

    namespace: netns.Namespace
    client_ips: list[str]
    _forwarder: _Forwarder = field(repr=False)

    @property
    def host(self) -> str:
        """The address at the far end of the link."""
        return self.namespace.ns_ip

    @property
    def forwarder_pid(self) -> int:
        return self._forwarder.pid

    @property
    def scheduling(self) -> str:
        """How the forwarder is scheduled: "SCHED_FIFO 1", "nice -10" or "normal"."""
        return self._forwarder.scheduling

    @property
    def seed(self) -> int:
        """The seed of the loss and jitter draws (pass it to reproduce a run)."""
        return self._forwarder.seed

    def set_impairment(
        self,
        up: Impairment | None = None,
        down: Impairment | None = None,
        *,
        both: Impairment | None = None,
    ) -> None:
        """Change what the link does from now on (packets already held keep their times).

        Args:
            up: Towards the namespace (client to server); None keeps it.
            down: Back from it; None keeps it.
            both: Shorthand for the same ``up`` and ``down``.
        """
        if both is not None:
            if up is not None or down is not None:
                raise ValueError("give either both or up/down")
            up = down = both
        for name, value in (("up", up), ("down", down)):
            if value is not None and not isinstance(value, Impairment):
                raise ValueError(f"{name} must be an Impairment, got {type(value).__name__}")
        self._forwarder.request(
            {
                "op": "set",
                "up": up.to_json() if up is not None else None,
                "down": down.to_json() if down is not None else None,
            }
        )

    def stats(self) -> LinkStats:
        """The forwarder's counters, both directions."""
        answer = self._forwarder.request({"op": "stats"})
        return LinkStats(
            DirectionStats.from_json(answer["up"]), DirectionStats.from_json(answer["down"])
        )

    def reset_stats(self) -> None:
        """Zero the forwarder's counters (both directions)."""
        self._forwarder.request({"op": "reset"})

    def close(self) -> None:
        """Stop the forwarder (its devices go with it), delete the namespace (idempotent)."""
        self._forwarder.stop()
        self.namespace.delete()
        _live.discard(self)


def create_link(
    *,
    up: Impairment = PASSTHROUGH,
    down: Impairment = PASSTHROUGH,
    seed: int | None = None,
    log_path: Path | None = None,
    realtime: bool = True,
) -> Link:
    """A new namespace reachable through the forwarder; see the module docstring.

    Args:
        up: What the link does towards the namespace.
        down: What it does back from it.
        seed: Seeds the loss and jitter draws (random when None).
        log_path: Where the forwarder's stderr goes (discarded when None).
        realtime: Run the forwarder at the lowest real-time priority (it sleeps but for
            the packets it moves), so that a loaded machine does not add jitter; else
            at nice -10.
    """
    made: dict[str, Any] = {}

    def wire(ns: netns.Namespace) -> None:
        fwd = _Forwarder(ns, seed, log_path, realtime)
        made["forwarder"] = fwd
        try:
            netns._run(["ip", "link", "set", ns.host_if, "up"])
            netns._run(["ip", "route", "add", f"{ns.ns_ip}/32", "dev", ns.host_if])
            clients = _root_ipv4_addresses()
            if not clients:  # only loopback addresses here: give the link one of its own
                netns._run(["ip", "addr", "add", f"{ns.host_ip}/32", "dev", ns.host_if])
                route = ["ip", "route", "replace", f"{ns.ns_ip}/32", "dev", ns.host_if]
                netns._run([*route, "src", ns.host_ip])
                clients = [ns.host_ip]
            ns.exec(["ip", "addr", "add", f"{ns.ns_ip}/32", "dev", ns.ns_if])
            ns.exec(["ip", "link", "set", ns.ns_if, "up"])
            for addr in clients:
                ns.exec(["ip", "route", "add", f"{addr}/32", "dev", ns.ns_if, "src", ns.ns_ip])
            made["clients"] = clients
        except BaseException:
            fwd.stop()
            raise

    ns = netns.Namespace.create(wire=wire, pool=POOL)
    link = Link(ns, made["clients"], made["forwarder"])
    _live.add(link)
    try:
        if up != PASSTHROUGH or down != PASSTHROUGH:
            link.set_impairment(up, down)
    except BaseException:
        link.close()
        raise
    return link


@dataclass(eq=False)
class LossyServer:
    """A livekit-server behind a :class:`Link` (see the module docstring)."""

    link: Link
    server: netns.NetnsServer

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def http_url(self) -> str:
        return self.server.http_url

    def set_impairment(
        self,
        up: Impairment | None = None,
        down: Impairment | None = None,
        *,
        both: Impairment | None = None,
    ) -> None:
        """See :meth:`Link.set_impairment`."""
        self.link.set_impairment(up, down, both=both)

    def stats(self) -> LinkStats:
        """See :meth:`Link.stats`."""
        return self.link.stats()

    def stop(self) -> None:
        """Stop the forwarder and the server, delete the namespace (idempotent)."""
        self.link._forwarder.stop()
        self.server.stop()
        _live.discard(self.link)
        _live.discard(self)


def start_server(
    log_path: Path | None = None,
    *,
    up: Impairment = PASSTHROUGH,
    down: Impairment = PASSTHROUGH,
    seed: int | None = None,
    ready_timeout: float = 60.0,
    realtime: bool = True,
) -> LossyServer:
    """Start a livekit-server (--dev) behind a new lossy link; return once it answers HTTP.

    The server starts over a clean link; ``up`` and ``down`` apply once it answers.
    The forwarder logs next to the server (``<log_path>.link``). Everything is torn
    down again if the start fails. ``seed`` and ``realtime``: see :func:`create_link`.
    """
    if log_path is None:
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        log_path = tmp / f"livekit-server-lossy-{os.getpid()}-{os.urandom(3).hex()}.log"
    link = create_link(
        seed=seed, log_path=log_path.with_name(log_path.name + ".link"), realtime=realtime
    )
    try:
        server = netns.start_server(log_path, namespace=link.namespace, ready_timeout=ready_timeout)
    except BaseException:
        link.close()
        raise
    lossy = LossyServer(link, server)
    _live.add(lossy)
    _live.discard(link)
    try:
        link.set_impairment(up, down)
    except BaseException:
        lossy.stop()
        raise
    return lossy


def unavailable_reason() -> str | None:
    """Why a lossy link cannot run here, or None if it can.

    Checks root, the ``ip`` command, ``/dev/net/tun`` (created with ``mknod`` when only
    the device node is missing) and that a namespace can be created and deleted.
    """
    if os.geteuid() != 0:
        return "the lossy link needs root (TUN devices, network namespaces; CI runs as root)"
    if shutil.which("ip") is None:
        return "the 'ip' command is missing (apt-get install -y iproute2)"
    if not os.path.exists(TUN_PATH):
        try:
            os.makedirs(os.path.dirname(TUN_PATH), exist_ok=True)
            os.mknod(TUN_PATH, 0o600 | stat.S_IFCHR, os.makedev(10, 200))
        except OSError as exc:
            return f"{TUN_PATH} is missing and cannot be created: {exc}"
    try:
        os.close(os.open(TUN_PATH, os.O_RDWR))
    except OSError as exc:
        return f"cannot open {TUN_PATH} (no TUN support?): {exc}"
    probe = f"lkpy-{os.getpid()}-probe{os.urandom(2).hex()}"
    try:
        netns._run(["ip", "netns", "add", probe])
    except netns.NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    with contextlib.suppress(netns.NetnsError):
        netns._run(["ip", "netns", "del", probe])
    return None


@atexit.register
def _stop_all() -> None:
    for item in list(_live):
        with contextlib.suppress(Exception):
            item.stop() if isinstance(item, LossyServer) else item.close()


# ---------------------------------------------------------------------------- measuring it


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(host: str, count: int, interval: float, timeout: float = 2.0) -> list[float | None]:
    """Round-trip times (s) of ICMP echo requests to ``host``, None for the lost ones.

    Requests go out every ``interval`` seconds whatever the replies do, so the link's
    delay does not slow the probe down.
    """
    ident = os.getpid() & 0xFFFF
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.setblocking(False)
        start = time.monotonic()
        n = 0
        last_send_due = start + (count - 1) * interval
        while True:
            now = time.monotonic()
            if n < count and now >= start + n * interval:
                header = struct.pack("!BBHHH", 8, 0, 0, ident, n)
                payload = b"lkpy-probe".ljust(32, b".")
                csum = _checksum(header + payload)
                # timed before it goes: a round trip is never measured shorter than it was
                sent[n] = time.monotonic()
                sock.sendto(struct.pack("!BBHHH", 8, 0, csum, ident, n) + payload, (host, 0))
                n += 1
                continue
            if n >= count and (len(rtts) == count or now > last_send_due + timeout):
                break
            wake = start + n * interval if n < count else last_send_due + timeout
            ready, _, _ = select.select([sock], [], [], max(0.0, wake - now))
            if not ready:
                continue
            with contextlib.suppress(BlockingIOError):
                while True:
                    data = sock.recv(2048)
                    got = time.monotonic()
                    ihl = (data[0] & 0x0F) * 4
                    kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                    if kind == 0 and rid == ident and rseq in sent and rseq not in rtts:
                        rtts[rseq] = got - sent[rseq]
    return [rtts.get(i) for i in range(count)]


def _quantiles_ms(values: list[float]) -> str:
    if not values:
        return "no replies"
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1e3

    return (
        f"min {ordered[0] * 1e3:.3f}  p50 {q(50):.3f}  p90 {q(90):.3f}  p99 {q(99):.3f}  "
        f"max {ordered[-1] * 1e3:.3f} ms"
    )


def _blast(host: str, seconds: float, size: int, rate: float | None = None) -> int:
    """Send UDP packets to ``host``'s discard port, ``rate`` a second (None: as fast as
    possible, in bursts of 100 per millisecond otherwise); how many went out."""
    payload = b"x" * size
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        start = time.monotonic()
        end = start + seconds
        while (now := time.monotonic()) < end:
            if rate is not None and n >= (now - start) * rate:
                time.sleep(0.0005)
                continue
            for _ in range(100):
                try:
                    sock.send(payload)
                    n += 1
                except OSError as exc:  # ENOBUFS when the TUN queue is full, ECONNREFUSED
                    if exc.errno not in (errno.ENOBUFS, errno.ECONNREFUSED, errno.EAGAIN):
                        raise
    return n


@contextlib.contextmanager
def _realtime_here(enabled: bool) -> Iterator[None]:
    """This (the probing) process at the lowest real-time priority, so it times well."""
    if not enabled:
        yield
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def measure(pings: int = 500, blast_seconds: float = 1.0) -> None:
    """Print what the forwarder adds (delay, jitter) and the packet rate it sustains.

    The probe is an ICMP echo through the link every 10 ms (the namespace's kernel
    answers), for the forwarder at real-time priority and at nice -10; the rate is a
    UDP blast from this process (at normal priority) for ``blast_seconds``.
    """
    for realtime in (True, False):
        link = create_link(realtime=realtime)
        try:
            print(
                f"link to {link.host} (clients {', '.join(link.client_ips)}), "
                f"forwarder {link.scheduling}"
            )
            for delay in (0.0, 100.0):
                link.set_impairment(both=Impairment(delay))
                link.reset_stats()
                with _realtime_here(realtime):
                    rtts = ping(link.host, pings, 0.01)
                after = link.stats()
                got = [r - 2 * delay / 1e3 for r in rtts if r is not None]
                print(
                    f"  ping, {delay:g} ms each way, {len(got)}/{pings} replies, RTT minus "
                    f"{2 * delay:g} ms: {_quantiles_ms(got)}\n"
                    f"    forwarder lateness p50/p99/max up {after.up.late_p50_ms:.1f}/"
                    f"{after.up.late_p99_ms:.1f}/{after.up.late_max_ms:.2f} ms, down "
                    f"{after.down.late_p50_ms:.1f}/{after.down.late_p99_ms:.1f}/"
                    f"{after.down.late_max_ms:.2f} ms"
                )
            if not realtime:
                continue
            for delay, size, rate in (
                (0.0, 100, None),
                (0.0, 1200, None),
                (100.0, 100, None),
                (100.0, 1200, 20000),
                (100.0, 1200, 50000),
                (100.0, 1200, 100000),
            ):
                link.set_impairment(both=Impairment(delay))
                link.reset_stats()
                sent = _blast(link.host, blast_seconds, size, rate)
                time.sleep(delay / 1e3 + 0.3)
                blasted = link.stats().up
                forwarded = blasted.forwarded / blast_seconds
                print(
                    f"  blast, {delay:g} ms, {size} B UDP: sent {sent / blast_seconds:,.0f}/s, "
                    f"forwarded {forwarded:,.0f}/s ({forwarded * size * 8 / 1e6:,.0f} Mbit/s"
                    + (
                        "; the rest dropped by the kernel at the full TUN queue"
                        if blasted.forwarded < 0.99 * sent
                        else ""
                    )
                    + f"), forwarder lateness p50/p99 {blasted.late_p50_ms:.1f}/"
                    f"{blasted.late_p99_ms:.1f} ms"
                )
        finally:
            link.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signaling.lossy_link")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fwd = sub.add_parser("forward", help="the forwarder process (started by create_link)")
    fwd.add_argument("--netns", required=True)
    fwd.add_argument("--netns-path", required=True)
    fwd.add_argument("--root-if", required=True)
    fwd.add_argument("--ns-if", required=True)
    fwd.add_argument("--seed", type=int)
    fwd.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True)
    m = sub.add_parser("measure", help="measure the forwarder's added jitter and packet rate")
    m.add_argument("--pings", type=int, default=500)
    m.add_argument("--blast-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.cmd == "forward":
        return _forward(args)
    reason = unavailable_reason()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill too
    measure(args.pings, args.blast_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
