"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


class EventLog:
    """Records (event, args) for the named events of an emitter, in order."""

    def __init__(self, emitter: Any, events: Iterable[str]) -> None:
        self.items: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()
        for name in events:
            emitter.on(name, functools.partial(self._record, name))

    def _record(self, name: str, *args: Any) -> None:
        self.items.append((name, args))
        self._changed.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.items if n == name]

    async def wait_for(
        self, name: str, predicate: Callable[..., bool] | None = None, timeout: float = 10.0
    ) -> tuple[Any, ...]:
        """Wait until an event ``name`` (matching ``predicate(*args)``) has been recorded."""
        deadline = time.monotonic() + timeout
        while True:
            for n, args in self.items:
                if n == name and (predicate is None or predicate(*args)):
                    return args
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name!r} event within {timeout}s; got {self.names()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


def open_fds() -> set[str]:
    """The targets of this process's open file descriptors (sockets, files, pipes)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return out


def socket_count() -> int:
    return sum(1 for target in open_fds() if "socket:" in target)


def room_ice_connections(room: Any) -> list[Any]:
    """The aioice connections of both peer connections of our SDK's ``room``."""
    from livekit_py.webrtc.aiortc_adapter import ice_connections

    engine = room._session.engine
    assert engine is not None
    return [
        connection
        for transport in (engine.publisher, engine.subscriber)
        if transport is not None
        for connection in ice_connections(transport.pc)
    ]


def our_ice_ports(room: Any) -> set[int]:
    """The UDP ports of our ICE sockets (the local candidates of both peer connections)."""
    return {
        c.port for connection in room_ice_connections(room) for c in connection.local_candidates
    }
