"""A livekit-server inside a network namespace, with firewall faults on its media path.

For tests and benchmarks that need a real network fault between the client (in
the root namespace) and the server: the media ports blocked, or a share of their
packets dropped. This kernel has no ``netem``, so faults are nftables rules
inside the namespace; the signal port is never touched.

Layout of one instance (all names unique per instance, so parallel runs do not
clash)::

    root namespace                        namespace lkpy-<pid>-<hex>
    lk<hex>h  10.231.a.b+1/30  <== veth ==>  lk<hex>n  10.231.a.b+2/30
                                              livekit-server --bind/--node-ip 10.231.a.b+2

The /30 is picked from 10.231.0.0/16, avoiding every address and route the root
namespace already has; the addresses exist only on the veth pair, so no traffic
leaves the machine. The server advertises the namespace-side address as its ICE
host candidate (``--node-ip``), and that address is not a loopback one, which
aiortc would ignore.

Typical use::

    server = netns.start_server(log_path)
    try:
        ...  # connect to server.url
        server.block_media()      # UDP and the ICE/TCP port dropped both ways
        server.block_media(ports) # ... or only one client's ICE sockets' UDP
        ...
        server.unblock_media()
        server.set_media_loss(10)  # or drop 10 % of media packets at random
    finally:
        server.stop()             # kills the server, deletes the namespace

Needs root, ``ip`` (iproute2) and ``nft`` (nftables); :func:`unavailable_reason`
says what is missing, for a test to skip with.

``signaling/lossy_link.py`` builds on this module: the same kind of namespace, joined
to the root namespace by a userspace forwarder that delays and drops packets (through
TUN devices) instead of a veth pair (``Namespace.create(wire=...)``,
``start_server(namespace=...)``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from signaling import local_server

#: Where the per-instance /30s are taken from.
POOL = ipaddress.IPv4Network("10.231.0.0/16")
#: The nftables table holding the fault rules (inside the namespace only).
FAULT_TABLE = "livekit_py_faults"
_NS_PREFIX = "lkpy-"
_NS_PATTERN = re.compile(r"^lkpy-(\d+)-[0-9a-f]+$")
_LOCK_PATH = Path("/run/lock/livekit-py-netns.lock")

# Instances of this process not stopped yet, stopped at interpreter exit.
_live: set[NetnsServer] = set()


class NetnsError(RuntimeError):
    """A namespace, veth or firewall command failed."""


def _run(argv: list[str], *, stdin: str | None = None) -> str:
    res = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def unavailable_reason() -> str | None:
    """Why a namespaced server cannot run here, or None if it can.

    Checks root, the ``ip`` and ``nft`` commands, and that a namespace can be
    created (and deleted again).
    """
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, as CI does)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (apt-get install -y {package})"
    probe = f"{_NS_PREFIX}{os.getpid()}-probe{secrets.token_hex(2)}"
    try:
        _run(["ip", "netns", "add", probe])
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        _run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"])
    except NetnsError as exc:
        return f"nftables does not work inside a namespace: {exc}"
    finally:
        with contextlib.suppress(NetnsError):
            _run(["ip", "netns", "del", probe])
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_namespace(name: str) -> None:
    """Kill what still runs inside namespace ``name`` (our server) and delete it."""
    with contextlib.suppress(NetnsError):
        for pid in _run(["ip", "netns", "pids", name]).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(NetnsError):
        _run(["ip", "netns", "del", name])


def _reap_stale_namespaces() -> None:
    """Delete namespaces of this harness whose creating process is gone (a SIGKILLed run)."""
    with contextlib.suppress(NetnsError):
        for line in _run(["ip", "netns", "list"]).splitlines():
            name = line.split()[0] if line.split() else ""
            m = _NS_PATTERN.match(name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                _delete_namespace(name)


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 address and route of the root namespace, as networks."""
    used: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_run(["ip", "-j", "-4", "addr", "show"]) or "[]"):
        for info in entry.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return used


def _pick_subnet(pool: ipaddress.IPv4Network = POOL) -> ipaddress.IPv4Network:
    used = [n for n in _used_networks() if n.overlaps(pool)]
    subnets = list(pool.subnets(new_prefix=30))
    start = secrets.randbelow(len(subnets))
    for i in range(len(subnets)):
        candidate = subnets[(start + i) % len(subnets)]
        if not any(candidate.overlaps(n) for n in used):
            return candidate
    raise NetnsError(f"no free /30 left in {pool}")


@dataclass(eq=False)
class Namespace:
    """A network namespace joined to the root namespace by a veth pair."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    @classmethod
    def create(
        cls,
        *,
        wire: Callable[[Namespace], None] | None = None,
        pool: ipaddress.IPv4Network = POOL,
    ) -> Namespace:
        """Create the namespace and join it to the root namespace; undone on failure.

        Args:
            wire: None: a veth pair with the /30's two addresses (the layout in the
                module docstring). Else called with the new namespace (``lo`` up, no
                other link) to join it some other way, e.g. through the TUN devices of
                ``signaling/lossy_link.py``; it should name its devices ``host_if`` and
                ``ns_if`` and give the namespace side ``ns_ip``. It runs under the
                allocation lock, so its addresses and routes are in place before
                another run picks a subnet.
            pool: Where the /30 is taken from (its two host addresses become
                ``host_ip`` and ``ns_ip``).
        """
        _reap_stale_namespaces()
        tag = secrets.token_hex(4)
        name = f"{_NS_PREFIX}{os.getpid()}-{tag}"
        host_if, ns_if = f"lk{tag}h", f"lk{tag}n"
        _LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        with open(_LOCK_PATH, "a") as lock:
            # one allocation at a time across processes, so two runs never pick the same /30
            fcntl.flock(lock, fcntl.LOCK_EX)
            subnet = _pick_subnet(pool)
            host_ip, ns_ip = (str(a) for a in subnet.hosts())
            ns = cls(name, host_if, ns_if, host_ip, ns_ip)
            _run(["ip", "netns", "add", name])
            try:
                ns.exec(["ip", "link", "set", "lo", "up"])
                if wire is not None:
                    wire(ns)
                else:
                    _run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
                    _run(["ip", "link", "set", ns_if, "netns", name])
                    _run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_if])
                    _run(["ip", "link", "set", host_if, "up"])
                    ns.exec(["ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if])
                    ns.exec(["ip", "link", "set", ns_if, "up"])
            except BaseException:
                ns.delete()
                raise
        return ns

    @property
    def path(self) -> str:
        """The namespace's file (what ``setns`` opens)."""
        return f"/run/netns/{self.name}"

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv: list[str], *, stdin: str | None = None) -> str:
        """Run a command inside the namespace; its stdout, or NetnsError."""
        return _run(self.argv(argv), stdin=stdin)

    def nft(self, script: str) -> None:
        """Apply an nftables script inside the namespace, as one transaction."""
        self.exec(["nft", "-f", "-"], stdin=script)

    def pids(self) -> list[int]:
        """The processes running inside the namespace."""
        try:
            out = _run(["ip", "netns", "pids", self.name])
        except NetnsError:
            return []
        return [int(p) for p in out.split()]

    def delete(self) -> None:
        """Kill what still runs inside, delete the namespace and the veth pair."""
        _delete_namespace(self.name)
        # the veth pair goes with the namespace, but not always at once
        with contextlib.suppress(NetnsError):
            _run(["ip", "link", "del", self.host_if])


@dataclass(eq=False)
class NetnsServer:
    """A livekit-server running in its own namespace (see the module docstring)."""

    namespace: Namespace
    port: int
    tcp_port: int
    udp_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: the fault in force: None, or the share (0-100) of media packets dropped
    media_loss: int | None = None

    @property
    def host(self) -> str:
        """The server's address (the namespace end of the veth pair)."""
        return self.namespace.ns_ip

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # faults

    def block_media(self, client_ports: Iterable[int] | None = None) -> None:
        """Drop every media packet both ways; the signal port (TCP ``port``) keeps working.

        Args:
            client_ports: None: all UDP and the ICE/TCP port, for every client.
                Else only the UDP packets from/to these client-side ports (a
                client's ICE sockets, the ports of its local candidates): that
                client loses its media path while the others keep theirs.
        """
        self.set_media_loss(100, client_ports)

    def unblock_media(self) -> None:
        """Remove every fault rule."""
        self.namespace.nft(f"add table inet {FAULT_TABLE}\ndelete table inet {FAULT_TABLE}\n")
        self.media_loss = None

    def set_media_loss(self, percent: int, client_ports: Iterable[int] | None = None) -> None:
        """Drop ``percent`` % of media packets (each direction, independently, at random).

        100 blocks the media path; 0 removes the fault. Replaces any earlier fault.
        ``client_ports`` limits the fault to some clients, as in :meth:`block_media`.
        """
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be within 0..100, got {percent}")
        ports = sorted(set(client_ports)) if client_ports is not None else None
        if ports is not None and (not ports or not all(0 < p < 65536 for p in ports)):
            raise ValueError(f"client_ports must be ports (1..65535), got {ports}")
        if percent == 0:
            self.unblock_media()
            return
        verdict = (
            "counter drop" if percent == 100 else f"numgen random mod 100 < {percent} counter drop"
        )
        if ports is None:
            rules_in = f"meta l4proto udp {verdict}\n    tcp dport {self.tcp_port} {verdict}"
            rules_out = f"meta l4proto udp {verdict}\n    tcp sport {self.tcp_port} {verdict}"
        else:
            port_set = "{ " + ", ".join(str(p) for p in ports) + " }"
            rules_in = f"udp sport {port_set} {verdict}"
            rules_out = f"udp dport {port_set} {verdict}"
        # add + delete + define in one transaction: atomically replaces any old rules
        self.namespace.nft(
            f"add table inet {FAULT_TABLE}\n"
            f"delete table inet {FAULT_TABLE}\n"
            f"table inet {FAULT_TABLE} {{\n"
            f"  chain input {{\n    type filter hook input priority -10; policy accept;\n"
            f"    {rules_in}\n  }}\n"
            f"  chain output {{\n    type filter hook output priority -10; policy accept;\n"
            f"    {rules_out}\n  }}\n"
            f"}}\n"
        )
        self.media_loss = percent

    @contextlib.contextmanager
    def media_blocked(self, client_ports: Iterable[int] | None = None) -> Iterator[None]:
        """Block the media path (see :meth:`block_media`) for the ``with`` block."""
        self.block_media(client_ports)
        try:
            yield
        finally:
            self.unblock_media()

    def dropped_packets(self) -> int:
        """Packets the fault rules dropped so far (0 if none are in force)."""
        try:
            out = self.namespace.exec(["nft", "-j", "list", "table", "inet", FAULT_TABLE])
        except NetnsError:
            return 0
        total = 0
        for item in json.loads(out).get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    total += int(expr["counter"]["packets"])
        return total

    # lifecycle

    def stop(self) -> None:
        """Stop the server and delete the namespace (idempotent)."""
        proc, self.process = self.process, None
        local_server._stop_process(proc)
        self.namespace.delete()
        _live.discard(self)


def start_server(
    log_path: Path | None = None,
    *,
    port: int = 7880,
    tcp_port: int = 7881,
    udp_port: int = 7882,
    ready_timeout: float = 60.0,
    namespace: Namespace | None = None,
) -> NetnsServer:
    """Start a livekit-server in --dev mode in a new namespace; return once it answers HTTP.

    The ports are the namespace's own, so the defaults never clash with another
    run. Everything is torn down again if the start fails.

    Args:
        log_path: The server's log (a file in ``$TMPDIR`` when None).
        port: The signal (HTTP/WebSocket) port.
        tcp_port: The ICE/TCP port.
        udp_port: The ICE/UDP port.
        ready_timeout: Seconds to wait for the server to answer HTTP.
        namespace: Run in this namespace (see :meth:`Namespace.create`'s ``wire``) rather
            than a new one with a veth pair; the server owns it from now on: it is
            deleted with the server, also when the start fails.
    """
    try:
        binary = local_server.install()
    except BaseException:
        if namespace is not None:
            namespace.delete()
        raise
    ns = namespace if namespace is not None else Namespace.create()
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"livekit-server-{ns.name}.log"
    config = (
        f"port: {port}\n"
        f"rtc:\n  tcp_port: {tcp_port}\n  udp_port: {udp_port}\n  use_external_ip: false\n"
        f"logging:\n  level: info\n"
    )
    server = NetnsServer(ns, port, tcp_port, udp_port, log_path)
    _live.add(server)
    try:
        with open(log_path, "wb") as log:
            server.process = subprocess.Popen(
                ns.argv(
                    [
                        binary,
                        "--dev",
                        "--bind",
                        ns.ns_ip,
                        "--node-ip",
                        ns.ns_ip,
                        "--config-body",
                        config,
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            proc = server.process
            if proc.poll() is not None:
                raise RuntimeError(
                    f"livekit-server in {ns.name} exited with code {proc.returncode}; "
                    f"see {log_path}:\n" + log_path.read_text(errors="replace")[-2000:]
                )
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(server.http_url, timeout=1) as res:
                    if res.status == 200:
                        return server
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"livekit-server in {ns.name} did not answer {server.http_url} "
                    f"within {ready_timeout:g}s; see {log_path}"
                )
            time.sleep(0.1)
    except BaseException:
        server.stop()
        raise


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()
