"""A small synchronous event emitter with the official SDK's ``on``/``once``/``off``/``emit``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from ..log import get_logger

logger = get_logger("events")

T_contra = TypeVar("T_contra", contravariant=True)
F = TypeVar("F", bound=Callable[..., Any])


def _positional_arity(callback: Callable[..., Any]) -> int | None:
    """How many positional arguments ``callback`` takes, or None for "any number"."""
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class EventEmitter(Generic[T_contra]):
    """Registers callbacks per event name and calls them in registration order.

    Callbacks receive as many of the emitted arguments as they accept, so a
    handler may ignore trailing arguments it does not need. As in the official SDK, a
    ``TypeError`` raised by a callback (typically one that needs more arguments than
    were emitted) propagates out of :meth:`emit`, so the mistake fails loudly, and the
    callbacks after it are not called; any other exception is logged and does not stop
    the others. Subclasses may set ``_valid_events`` to reject misspelt event names with
    a ValueError.
    """

    _valid_events: frozenset[str] | None = None

    def __init__(self) -> None:
        self._events: dict[T_contra, dict[Callable[..., Any], None]] = {}

    def _check_event(self, event: T_contra) -> None:
        valid = self._valid_events
        if valid is not None and event not in valid:
            raise ValueError(
                f"unknown event {event!r} for {type(self).__name__}; "
                f"known events: {', '.join(sorted(valid))}"
            )

    def emit(self, event: T_contra, *args: Any) -> None:
        """Call every callback registered for ``event`` with ``args``.

        Each callback gets the first ``n`` of ``args``, ``n`` being the number of
        positional parameters it takes (all of them if it takes ``*args``).

        Raises:
            TypeError: If a callback raises it, e.g. because it needs more positional
                arguments than were emitted; the callbacks after it are not called.
        """
        for callback in list(self._events.get(event, ())):
            arity = _positional_arity(callback)
            call_args = args if arity is None else args[:arity]
            try:
                callback(*call_args)
            except TypeError:
                raise
            except Exception:
                logger.exception("callback for event %r raised", event)

    def on(self, event: T_contra, callback: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """Register ``callback`` for ``event``; without a callback, return a decorator."""
        self._check_event(event)
        if callback is None:

            def decorator(fn: F) -> F:
                self.on(event, fn)
                return fn

            return decorator
        if asyncio.iscoroutinefunction(callback):
            raise ValueError(
                "cannot register an async callback with .on(); register a plain function "
                "and start your coroutine from it with asyncio.create_task"
            )
        self._events.setdefault(event, {})[callback] = None
        return callback

    def once(
        self, event: T_contra, callback: Callable[..., Any] | None = None
    ) -> Callable[..., Any]:
        """Like :meth:`on`, but the callback is removed after its first call."""
        self._check_event(event)
        if callback is None:

            def decorator(fn: F) -> F:
                self.once(event, fn)
                return fn

            return decorator

        def wrapper(*args: Any) -> None:
            self.off(event, wrapper)
            arity = _positional_arity(callback)
            callback(*(args if arity is None else args[:arity]))

        wrapper._once_of = callback  # type: ignore[attr-defined]
        self.on(event, wrapper)
        return callback

    def off(self, event: T_contra, callback: Callable[..., Any]) -> None:
        """Remove ``callback`` from ``event``; unknown callbacks are ignored."""
        handlers = self._events.get(event)
        if handlers is not None:
            handlers.pop(callback, None)
            for registered in [h for h in handlers if getattr(h, "_once_of", None) is callback]:
                handlers.pop(registered, None)
            if not handlers:
                del self._events[event]

    def _listener_count(self, events: Iterable[T_contra] | None = None) -> int:
        keys = self._events.keys() if events is None else events
        return sum(len(self._events.get(k, {})) for k in keys)
