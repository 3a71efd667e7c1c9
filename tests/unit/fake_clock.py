"""A fake :class:`~livekit_py.media.clock.MediaClock` for tests: virtual time, moved by the test.

Time only moves in :meth:`FakeClock.advance` and :meth:`FakeClock.run`. Tasks sleeping on the
clock wake in deadline order (ties in the order they fell asleep), each with ``now()`` equal
to its deadline, and between two wake-ups the loop runs every task that is ready, so what
happens at a virtual instant is finished before time moves on. Nothing depends on the real
clock, so a test asserting exact counts gets the same counts on an idle or a loaded machine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["FakeClock"]

_T = TypeVar("_T")

# loop iterations that let every ready task run (and the tasks they wake, and so on) before
# virtual time moves on; chains of wake-ups through gather/wait/queues are far shorter
_SETTLE_ROUNDS = 100


class FakeClock:
    """Virtual time for media code under test (see the module docstring)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time reaches ``now() + seconds`` (a plain yield for <= 0)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def sleeping(self) -> int:
        """How many tasks sleep on the clock now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """When the next sleeper wakes (None: nobody sleeps)."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleeps
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every ready task run, without moving time."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking the sleepers due on the way, in order."""
        target = self._now + seconds
        await self.settle()
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self._step_to(deadline)
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()

    async def jump(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once, as a blocked event loop sees it.

        Every sleeper due by then wakes at the same instant, late, with ``now()`` at the
        end of the jump.
        """
        await self.settle()
        self._step_to(self._now + seconds)
        await self.settle()

    async def run(self, awaitable: Awaitable[_T], *, limit: float = 60.0) -> _T:
        """Await ``awaitable``, moving time to the next deadline whenever all tasks wait.

        Args:
            awaitable: What to wait for.
            limit: Virtual seconds after which the wait fails (a hang in the code under
                test, rather than a slow machine).

        Raises:
            TimeoutError: If ``awaitable`` is not done within ``limit`` virtual seconds, or
                nobody sleeps on the clock and it is not done after 30 real seconds.
        """
        task = asyncio.ensure_future(awaitable)
        end = self._now + limit
        loop = asyncio.get_running_loop()
        real_limit = loop.time() + 30.0
        try:
            while True:
                await self.settle()
                if task.done():
                    return task.result()
                deadline = self.next_deadline()
                if deadline is not None:
                    if deadline > end:
                        raise TimeoutError(f"not done after {limit} s of virtual time")
                    self._step_to(deadline)
                    continue
                # nobody sleeps on the clock: the task waits for real work (a thread)
                await asyncio.wait({task}, timeout=0.01)
                if loop.time() > real_limit:
                    raise TimeoutError("not done, and nothing sleeps on the fake clock")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    def _step_to(self, deadline: float) -> None:
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.6f}, sleeping={self.sleeping})"
