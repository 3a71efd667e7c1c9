"""Start and stop a real livekit-server on free local ports (for tests and the demo).

The server is built and cached by the ``signaling/livekit-server`` script next to
this file; this module only runs it in ``--dev`` mode on 127.0.0.1 and waits until
it accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
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
