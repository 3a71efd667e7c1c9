"""Matching signal requests with the server's RequestResponse.

With protocol 16 the server answers some requests (UpdateParticipantMetadata,
AddTrack, Mute, ...) with a ``SignalResponse.request_response`` carrying the
request's ``request_id`` and a reason: ``OK``, or why it was refused
(``NOT_ALLOWED``, ``LIMIT_EXCEEDED``, ``NOT_FOUND``, ...). Requests without an
id are answered with ``request_id`` 0.
"""

from __future__ import annotations

import asyncio
import contextlib

from livekit.protocol import rtc as proto_rtc

from ..log import get_logger

logger = get_logger("room.requests")

# request_id is a uint32 in the protocol.
_MAX_REQUEST_ID = 2**32 - 1


class SignalRequestError(Exception):
    """The server refused a request (e.g. a participant update).

    ``reason`` is the name of the protocol's ``RequestResponse.Reason``
    (``"NOT_ALLOWED"``, ``"LIMIT_EXCEEDED"``, ...) and ``message`` the server's
    explanation.
    """

    def __init__(self, message: str, reason: str = "UNCLASSIFIED_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def reason_name(reason: int) -> str:
    try:
        return proto_rtc.RequestResponse.Reason.Name(reason)
    except ValueError:
        return f"REASON_{reason}"


class RequestTracker:
    """Hands out request ids and resolves waiters when their response arrives."""

    def __init__(self) -> None:
        self._last_id = 0
        self._waiting: dict[int, asyncio.Future[proto_rtc.RequestResponse]] = {}

    def next_id(self) -> int:
        self._last_id = self._last_id % _MAX_REQUEST_ID + 1
        return self._last_id

    def expect(self, request_id: int) -> asyncio.Future[proto_rtc.RequestResponse]:
        """A future resolved with the response to ``request_id``; call :meth:`forget` after."""
        future: asyncio.Future[proto_rtc.RequestResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting[request_id] = future
        return future

    def forget(self, request_id: int) -> None:
        future = self._waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.cancel()

    def handle(self, response: proto_rtc.RequestResponse) -> bool:
        """Deliver ``response``; False when nobody waits for its id."""
        future = self._waiting.pop(response.request_id, None) if response.request_id else None
        if future is None:
            return False
        if not future.done():
            future.set_result(response)
        return True

    def fail_all(self, error: BaseException) -> None:
        """Fail every waiter (the session ended)."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)
                # Mark retrieved so an abandoned waiter does not log "never retrieved".
                with contextlib.suppress(BaseException):
                    future.exception()
