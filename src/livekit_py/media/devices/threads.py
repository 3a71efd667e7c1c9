"""Blocking calls run off the event loop, and futures settled across threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from ...log import get_logger

__all__ = ["STOP_TIMEOUT", "run_in_thread", "settle"]

logger = get_logger("media.media_devices")

#: how long aclose() waits for a device stream or a thread to stop, in seconds
STOP_TIMEOUT = 5.0


def settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def run_in_thread(function: Callable[[], None], name: str) -> None:
    """Run a blocking call on a short-lived thread of its own and wait for it.

    Used for stopping device streams, which may wait for the device's buffers to drain;
    the event loop keeps running meanwhile.  The thread has ended when this returns
    (unless the call outlives :data:`STOP_TIMEOUT`).  Failures are logged, not raised:
    closing goes on.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        error: BaseException | None = None
        try:
            function()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, done, error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(asyncio.shield(done), STOP_TIMEOUT)
    except asyncio.TimeoutError:
        logger.warning("%s did not finish within %.0f s", name, STOP_TIMEOUT)
        return
    except Exception:
        logger.warning("%s failed", name, exc_info=True)
    thread.join()
