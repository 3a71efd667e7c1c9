"""Running a command: logging, the two consoles, and stopping on Ctrl-C or a deadline.

What a command prints as its result (events, a token, a summary) goes to standard
output; progress bars, live tables and log lines go to standard error, so that
``livekit-py join --json | jq`` or ``TOKEN=$(livekit-py token ...)`` see only the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

__all__ = ["Consoles", "run_command", "setup_logging", "wait_or_stop"]

_NOISY = ("aioice", "aiortc", "websockets", "asyncio")


class Consoles:
    """``out`` for results (stdout), ``err`` for status and logs (stderr)."""

    def __init__(self, *, no_color: bool = False) -> None:
        self.out = Console(file=sys.stdout, no_color=no_color, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, no_color=no_color, highlight=False)

    def line(self, text: str) -> None:
        """Print a result line as it is (no markup), and flush it at once."""
        self.out.print(text, markup=False, emoji=False, highlight=False)
        self.out.file.flush()

    def status(self, text: str) -> None:
        """A status line on stderr (rich markup allowed)."""
        self.err.print(text)


def setup_logging(verbosity: int, console: Console) -> None:
    """Show livekit_py's warnings (``-v``: info, ``-vv``: debug) on ``console``.

    aioice, aiortc and websockets stay at WARNING unless ``-vvv``.  Only the root
    logger's handler is set, as a program (not a library) may.
    """
    level = logging.WARNING
    if verbosity == 1:
        level = logging.INFO
    elif verbosity >= 2:
        level = logging.DEBUG
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", handlers=[handler])
    logging.getLogger("livekit_py").setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)


def run_command(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` in a new event loop; Ctrl-C (or SIGTERM) sets ``stop``.

    A second Ctrl-C cancels ``main`` outright.  Returns ``main``'s exit status, 130
    when it was cancelled by the second Ctrl-C.
    """

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        installed: list[signal.Signals] = []

        def on_signal() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()

        previous: dict[signal.Signals, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
            except NotImplementedError:  # Windows: a plain handler that wakes the loop
                with contextlib.suppress(ValueError, OSError):
                    previous[sig] = signal.signal(
                        sig, lambda *_: loop.call_soon_threadsafe(on_signal)
                    )
            except (RuntimeError, ValueError):  # not the main thread
                continue
            else:
                installed.append(sig)
        try:
            return await main(stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    try:
        return asyncio.run(runner())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


async def wait_or_stop(stop: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``stop`` is set or ``timeout`` seconds passed; True if stopped."""
    if timeout is None:
        await stop.wait()
        return True
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set()
