"""Start and stop a real livekit-server on free local ports (for tests and the demo).

The server is built and cached by the ``signaling/livekit-server`` script next to
this file; this module only runs it in ``--dev`` mode on 127.0.0.1 and waits until
it accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "livekit-server"
API_KEY = "devkey"
API_SECRET = "secret"


def install() -> str:
    """Build (or find the cached) server binary and return its path."""
    out = subprocess.run(
        [str(SCRIPT), "install"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """A running livekit-server process."""

    port: int
    tcp_port: int
    udp_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(
        self, down_for: float = 0.0, *, kill: bool = True, ready_timeout: float = 60.0
    ) -> None:
        """Stop the server (``kill``: SIGKILL, as a crash), wait ``down_for`` seconds, and
        start it again on the same ports. Every session it had is gone.
        """
        if kill and self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        self.stop()
        time.sleep(down_for)
        self.process = _spawn(self.port, self.tcp_port, self.udp_port, self.log_path, append=True)
        _wait_ready(self, ready_timeout)

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        self.process = None
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start(log_path: Path | None = None, *, ready_timeout: float = 60.0) -> LocalServer:
    """Start the server on free ports and return once it answers HTTP requests."""
    install()
    port, tcp_port, udp_port = (
        _free_port(socket.SOCK_STREAM),
        _free_port(socket.SOCK_STREAM),
        _free_port(socket.SOCK_DGRAM),
    )
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"livekit-server-{port}.log"
    proc = _spawn(port, tcp_port, udp_port, log_path)
    server = LocalServer(port, tcp_port, udp_port, log_path, proc)
    _wait_ready(server, ready_timeout)
    return server


def _spawn(
    port: int, tcp_port: int, udp_port: int, log_path: Path, *, append: bool = False
) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab" if append else "wb")  # handed to the server, closed right after
    try:
        return subprocess.Popen(
            [
                str(SCRIPT),
                "start",
                "--port",
                str(port),
                "--tcp-port",
                str(tcp_port),
                "--udp-port",
                str(udp_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    finally:
        log.close()


def _wait_ready(server: LocalServer, ready_timeout: float) -> None:
    proc = server.process
    assert proc is not None
    log_path = server.log_path
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"livekit-server exited with code {proc.returncode}; see {log_path}:\n"
                + log_path.read_text(errors="replace")[-2000:]
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(server.http_url, timeout=1) as res:
                if res.status == 200:
                    return
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"livekit-server did not start within {ready_timeout:g}s")
        time.sleep(0.1)


# --- a cluster: one private redis-server and N livekit-server nodes sharing it ---------
#
# A room lives on one node. A participant whose WebSocket reaches another node is relayed
# to the room's node through redis (psrpc); its media (ICE) goes straight to the room's
# node, whose candidates the join response carries. So every node needs its own signal,
# ICE/TCP and ICE/UDP ports; they all listen for media on loopback only and advertise
# 127.0.0.1 (``rtc.node_ip``). Node IDs are random per start (``ND_...``, from the log).

REDIS_SERVER = "redis-server"  # Debian package redis-server
_NODE_ID = re.compile(r'starting LiveKit server.*?"nodeID": "([^"]+)"')


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not on PATH (Debian: ``apt-get install redis-server``)."""


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux; best effort).

    A test process that crashes (the official SDK can segfault) then leaves no redis or
    nodes behind. SIGKILL, not SIGTERM: a node's graceful shutdown waits for redis, which
    is going away too.
    """
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


@dataclass
class LocalRedis:
    """A ``redis-server`` subprocess on 127.0.0.1, no persistence, in its own directory."""

    port: int
    directory: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ping(self, timeout: float = 1.0) -> bool:
        """True if the server answers ``PING`` with ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        proc, self.process = self.process, None
        _stop_process(proc)


def start_redis(directory: Path, *, ready_timeout: float = 30.0) -> LocalRedis:
    """Start ``redis-server`` in the foreground on a free port, with ``directory`` as its dir.

    Raises:
        RedisUnavailable: ``redis-server`` is not installed.
        RuntimeError: it exited or did not answer ``PING`` within ``ready_timeout``.
    """
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        raise RedisUnavailable(
            f"{REDIS_SERVER} is not installed (Debian: apt-get install {REDIS_SERVER})"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port(socket.SOCK_STREAM)
    log_path = directory / "redis.log"
    log = open(log_path, "wb")  # handed to the redis process, closed right after
    proc = subprocess.Popen(
        # redis.conf syntax as arguments; no config file, nothing saved, no daemon
        [
            binary,
            *("--bind", "127.0.0.1", "--port", str(port)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--dir", str(directory)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    log.close()
    redis = LocalRedis(port, directory, log_path, proc)
    deadline = time.monotonic() + ready_timeout
    while not redis.ping():
        if proc.poll() is not None:
            raise RuntimeError(
                f"{REDIS_SERVER} exited with code {proc.returncode}:\n{_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            redis.stop()
            raise RuntimeError(f"{REDIS_SERVER} did not answer PING within {ready_timeout:g}s")
        time.sleep(0.1)
    return redis


@dataclass
class ClusterNode(LocalServer):
    """One livekit-server node of a ``LocalCluster``."""

    @property
    def node_id(self) -> str:
        """The node's ID (``ND_...``), from its ``starting LiveKit server`` log line."""
        match = _NODE_ID.search(self.log_path.read_text(errors="replace"))
        if match is None:
            raise RuntimeError(f"no 'starting LiveKit server' line with nodeID in {self.log_path}")
        return match.group(1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _node_config(port: int, tcp_port: int, udp_port: int, redis: str, log_level: str) -> str:
    return (
        f"port: {port}\n"
        f"rtc:\n  tcp_port: {tcp_port}\n  udp_port: {udp_port}\n"
        "  use_external_ip: false\n  node_ip: 127.0.0.1\n"
        # the node's media sockets on loopback only: without this they bind every
        # interface's address, including interfaces that come and go (veths of
        # network-namespace tests), and a selected pair on one dies with it
        "  enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\n"
        f"redis:\n  address: {redis}\n"
        f"logging:\n  level: {log_level}\n"
    )


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: TCP for all but the last, which is free for UDP."""
    ports: list[int] = []
    while len(ports) < count:
        kind = socket.SOCK_DGRAM if len(ports) == count - 1 else socket.SOCK_STREAM
        port = _free_port(kind)
        if port not in ports:
            ports.append(port)
    return ports


def _wait_http(server: LocalServer, ready_timeout: float) -> None:
    proc = server.process
    assert proc is not None
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"livekit-server exited with code {proc.returncode}; see {server.log_path}:\n"
                + _tail(server.log_path)
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(server.http_url, timeout=1) as res:
                if res.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"livekit-server on port {server.port} did not start within {ready_timeout:g}s;"
                f" see {server.log_path}"
            )
        time.sleep(0.1)


@dataclass
class LocalCluster:
    """A private redis and the livekit-server nodes sharing it (same dev keys)."""

    redis: LocalRedis
    nodes: list[ClusterNode]

    def node_by_id(self, node_id: str) -> ClusterNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id!r} in the cluster ({[n.node_id for n in self.nodes]})")

    def stop(self) -> None:
        """Stop every node, then redis; safe to call twice."""
        for node in self.nodes:
            node.stop()
        self.redis.stop()


def start_cluster(
    directory: Path,
    nodes: int = 2,
    *,
    log_level: str = "info",
    ready_timeout: float = 60.0,
) -> LocalCluster:
    """Start redis and ``nodes`` livekit-server nodes on free ports under ``directory``.

    Returns once redis answers ``PING`` and every node answers HTTP. If anything fails
    to start, whatever was started is stopped before the error propagates.

    Raises:
        RedisUnavailable: ``redis-server`` is not installed.
        RuntimeError: a process exited or did not become ready in time.
    """
    if nodes < 1:
        raise ValueError(f"a cluster needs at least one node, got {nodes}")
    binary = install()
    redis = start_redis(directory / "redis", ready_timeout=ready_timeout)
    cluster = LocalCluster(redis, [])
    try:
        for i in range(nodes):
            port, tcp_port, udp_port = _free_ports(3)
            log_path = directory / f"node{i}.log"
            log = open(log_path, "wb")  # handed to the node process, closed right after
            proc = subprocess.Popen(
                [
                    *(binary, "--dev", "--bind", "127.0.0.1", "--config-body"),
                    _node_config(port, tcp_port, udp_port, redis.address, log_level),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            log.close()
            cluster.nodes.append(ClusterNode(port, tcp_port, udp_port, log_path, proc))
        for node in cluster.nodes:
            _wait_http(node, ready_timeout)
        ids = [node.node_id for node in cluster.nodes]
        if len(set(ids)) != len(ids):
            raise RuntimeError(f"cluster nodes share a node ID: {ids}")
    except BaseException:
        cluster.stop()
        raise
    return cluster
