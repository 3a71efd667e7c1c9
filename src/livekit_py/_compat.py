"""Small shims over Python-version differences."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

if sys.version_info >= (3, 11):
    timeout = asyncio.timeout
else:

    @asynccontextmanager
    async def timeout(delay: float | None) -> AsyncIterator[None]:
        """``asyncio.timeout`` for Python 3.10: cancel the current task after ``delay``.

        Unlike a nested ``asyncio.wait_for``, an outer cancellation that races
        with the inner work is never swallowed.
        """
        task = asyncio.current_task()
        if delay is None or task is None:
            yield
            return
        fired = False

        def on_timeout() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(delay, on_timeout)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise asyncio.TimeoutError from None
            raise
        finally:
            handle.cancel()
