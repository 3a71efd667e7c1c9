"""The clock media timing reads: a seam between real time and the code that paces media.

:class:`AudioSource`, :class:`AudioMixer`, :class:`AVSynchronizer`, :class:`VideoSource` and
the aiortc source tracks never read ``loop.time()``, ``time.monotonic()`` or call
``asyncio.sleep`` with a delay themselves: they take a :class:`MediaClock` (keyword-only
``clock`` argument) and ask it. The default, :class:`LoopClock`, is the running event
loop's clock, so nothing changes for an application; a test gives a clock whose time only
moves when the test says so, and no longer depends on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["LoopClock", "MediaClock", "default_clock", "resolve_clock", "wait_done", "wait_event"]


@runtime_checkable
class MediaClock(Protocol):
    """What media code needs from a clock.

    ``now()`` is monotonic, in seconds, on any origin. ``sleep(seconds)`` returns once
    ``now()`` has advanced by at least ``seconds`` (at once, after letting other tasks
    run, for ``seconds <= 0``); it may be cancelled.
    """

    def now(self) -> float:
        """The current time, in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock."""
        ...


class LoopClock:
    """The running event loop's clock (``loop.time()``, ``asyncio.sleep``).

    Outside a running loop :meth:`now` reads ``time.monotonic()``, which is what the
    default asyncio loop's ``time()`` reads too.
    """

    def now(self) -> float:
        """``loop.time()`` of the running loop, else ``time.monotonic()``."""
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "LoopClock()"


_DEFAULT = LoopClock()

_T = TypeVar("_T")


def default_clock() -> MediaClock:
    """The clock media objects use when none is given: the running loop's."""
    return _DEFAULT


def resolve_clock(clock: MediaClock | None) -> MediaClock:
    """``clock``, or the default clock for None.

    Raises:
        ValueError: If ``clock`` has no ``now()`` and ``sleep()``.
    """
    if clock is None:
        return _DEFAULT
    if not isinstance(clock, MediaClock):
        raise ValueError(
            f"clock must have now() and sleep(seconds) (a MediaClock), got {type(clock).__name__}"
        )
    return clock


async def wait_done(future: asyncio.Future[_T], timeout: float, clock: MediaClock) -> bool:
    """Wait until ``future`` is done or ``timeout`` seconds pass on ``clock``.

    ``future`` is never cancelled (unlike ``asyncio.wait_for``).

    Returns:
        Whether ``future`` is done.
    """
    if future.done():
        return True
    timer = asyncio.ensure_future(clock.sleep(timeout))
    racers: set[asyncio.Future[Any]] = {future, timer}
    try:
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not timer.done():
            timer.cancel()
            await asyncio.wait({timer})
        elif not timer.cancelled():
            timer.exception()  # retrieved; a failing clock shows up as a timeout
    return future.done()


async def wait_event(event: asyncio.Event, timeout: float | None, clock: MediaClock) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass on ``clock`` (None: no limit).

    Returns:
        Whether ``event`` is set.
    """
    if event.is_set():
        return True
    if timeout is None:
        await event.wait()
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await wait_done(waiter, timeout, clock)
    finally:
        if not waiter.done():
            waiter.cancel()
            await asyncio.wait({waiter})
    return event.is_set()
