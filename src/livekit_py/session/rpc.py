"""The RPC protocol for one room: the calls we make and the methods we serve.

The wire protocol (version 1) travels in reliable ``DataPacket`` messages addressed to a
single participant:

* the caller sends an ``RpcRequest`` (id, method, payload, how long the callee may
  take, protocol version);
* the callee answers at once with an ``RpcAck`` carrying the request id, runs the
  handler, then sends an ``RpcResponse`` holding either the result payload or an
  ``RpcError``.

The caller gives up with ``CONNECTION_TIMEOUT`` when no acknowledgement arrives within
:data:`ACK_TIMEOUT`, and with ``RESPONSE_TIMEOUT`` when, once acknowledged, no response
arrives within its ``response_timeout``. The timeout written into the request is the
caller's timeout minus the acknowledgement allowance (never below
:data:`MIN_HANDLER_TIMEOUT`), so that a callee that runs out of time can still report
it before the caller stops listening. These numbers are those of the official SDKs.

:class:`RpcManager` implements both roles; it reaches the connection only through a
:class:`~livekit_py.session.ports.DataPort`. The public entry points are on
``LocalParticipant`` (``perform_rpc``, ``register_rpc_method``,
``unregister_rpc_method``); the public types (:class:`RpcError`,
:class:`RpcInvocationData`) are in :mod:`livekit_py.rtc.rpc`, a leaf module that knows
nothing of rooms.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from livekit.protocol import models as proto_models

from ..log import get_logger
from ..rtc.rpc import MAX_PAYLOAD_BYTES, RpcError, RpcInvocationData
from .ports import DataPort

logger = get_logger("room.rpc")

__all__ = [
    "ACK_TIMEOUT",
    "DEFAULT_RESPONSE_TIMEOUT",
    "HANDLER_UNWIND_TIMEOUT",
    "MAX_PAYLOAD_BYTES",
    "MIN_HANDLER_TIMEOUT",
    "MIN_SERVER_VERSION",
    "RPC_VERSION",
    "F",
    "RpcHandler",
    "RpcManager",
]

#: Seconds the caller waits for the callee's acknowledgement (the round trip allowance).
ACK_TIMEOUT = 7.0
#: Seconds the caller waits for a response when ``response_timeout`` is not given.
DEFAULT_RESPONSE_TIMEOUT = 15.0
#: Floor of the handler time written into a request, in seconds.
MIN_HANDLER_TIMEOUT = 1.0
#: The RPC protocol version spoken here (``RpcRequest.version``).
RPC_VERSION = 1
#: Servers older than this do not forward RPC packets.
MIN_SERVER_VERSION = (1, 8, 0)
#: Seconds a cancelled handler gets to finish unwinding when the room disconnects.
HANDLER_UNWIND_TIMEOUT = 2.0

_UINT32_MAX = 2**32 - 1
_RELIABLE = proto_models.DataPacket.Kind.RELIABLE
_VERSION_RE = re.compile(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


RpcHandler = Callable[[RpcInvocationData], Awaitable[str | None] | str | None]
"""A method handler: takes the invocation, returns (or resolves to) the response payload."""

F = TypeVar("F", bound=RpcHandler)


class _OutgoingCall:
    """A call this participant is waiting on."""

    __slots__ = ("acked", "destination", "method", "response")

    def __init__(self, destination: str, method: str, loop: asyncio.AbstractEventLoop) -> None:
        self.destination = destination
        self.method = method
        self.acked: asyncio.Future[None] = loop.create_future()
        # The outcome is stored as a value, never as the future's exception, so that a
        # call abandoned by its caller leaves no unretrieved exception behind.
        self.response: asyncio.Future[str | RpcError] = loop.create_future()

    def finish(self, outcome: str | RpcError) -> None:
        if not self.response.done():
            self.response.set_result(outcome)


class RpcManager:
    """Both sides of RPC for one room: the calls we make and the methods we serve.

    It sends through ``port`` (as ``port.local_identity``, and only to servers whose
    ``port.server_version`` forwards RPC). The room feeds it the RPC packets it
    receives (:meth:`handle_packet`) and tells it when a remote participant leaves
    (:meth:`on_participant_left`) and when the room disconnects
    (:meth:`on_disconnected`).

    Args:
        port: How the manager sends data packets and learns who we are.
    """

    def __init__(self, port: DataPort) -> None:
        self._port = port
        self._handlers: dict[str, RpcHandler] = {}
        self._calls: dict[str, _OutgoingCall] = {}
        # request tasks, and handlers abandoned after their deadline that still unwind
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- state, for the room's checks and for tests ---------------------------------

    @property
    def pending_calls(self) -> tuple[str, ...]:
        """The request ids of our calls still waiting for their outcome."""
        return tuple(self._calls)

    @property
    def running_tasks(self) -> int:
        """Requests being served, plus cancelled handlers that are still unwinding."""
        return len(self._tasks)

    @property
    def registered_methods(self) -> frozenset[str]:
        """The names of the methods we serve."""
        return frozenset(self._handlers)

    # -- calling ----------------------------------------------------------------------

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
    ) -> str:
        """Call ``method`` of the participant ``destination_identity`` with ``payload``.

        Returns the response payload. ``response_timeout`` (seconds, default 15) bounds
        the wait for the response once the callee has acknowledged the request.
        Raises ValueError for malformed arguments and :class:`RpcError` for every
        failure of the call itself.
        """
        _require_str("destination_identity", destination_identity)
        if not destination_identity:
            raise ValueError("destination_identity must not be empty")
        _require_str("method", method)
        _require_str("payload", payload)
        timeout = _response_timeout(response_timeout)
        _utf8_size("destination_identity", destination_identity)
        _utf8_size("method", method)
        size = _utf8_size("payload", payload)
        if size > MAX_PAYLOAD_BYTES:
            raise RpcError._built_in(RpcError.ErrorCode.REQUEST_PAYLOAD_TOO_LARGE)
        if not self._server_supports_rpc():
            raise RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_SERVER)

        request_id = str(uuid.uuid4())
        request = proto_models.RpcRequest(
            id=request_id,
            method=method,
            payload=payload,
            response_timeout_ms=_handler_timeout_ms(timeout),
            version=RPC_VERSION,
        )
        call = _OutgoingCall(destination_identity, method, asyncio.get_running_loop())
        self._calls[request_id] = call
        logger.debug(
            "rpc %s: calling %r on %s (%d bytes, timeout %gs)",
            request_id,
            method,
            destination_identity,
            size,
            timeout,
        )
        try:
            try:
                await self._send(destination_identity, rpc_request=request)
            except Exception as e:
                logger.debug("rpc %s: sending the request failed: %s", request_id, e)
                raise RpcError._built_in(RpcError.ErrorCode.SEND_FAILED, str(e) or None) from None

            # A response can overtake the acknowledgement (or replace it, when the call
            # fails locally), so both end the first wait.
            done, _ = await asyncio.wait(
                (call.acked, call.response),
                timeout=ACK_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                logger.debug("rpc %s: no acknowledgement within %gs", request_id, ACK_TIMEOUT)
                raise RpcError._built_in(RpcError.ErrorCode.CONNECTION_TIMEOUT)
            if not call.response.done():
                await asyncio.wait(
                    (call.response,), timeout=None if math.isinf(timeout) else timeout
                )
            if not call.response.done():
                logger.debug("rpc %s: no response within %gs", request_id, timeout)
                raise RpcError._built_in(RpcError.ErrorCode.RESPONSE_TIMEOUT)
            outcome = call.response.result()
            if isinstance(outcome, RpcError):
                logger.debug("rpc %s: failed with %d %s", request_id, outcome.code, outcome)
                raise outcome
            logger.debug("rpc %s: answered (%d bytes)", request_id, len(outcome))
            return outcome
        finally:
            self._calls.pop(request_id, None)

    def _server_supports_rpc(self) -> bool:
        version = _parse_version(self._port.server_version)
        # An unknown or unparsable version is given the benefit of the doubt.
        return version is None or version >= MIN_SERVER_VERSION

    # -- serving ----------------------------------------------------------------------

    @overload
    def register_rpc_method(self, method_name: str, handler: F) -> F: ...

    @overload
    def register_rpc_method(self, method_name: str, handler: None = None) -> Callable[[F], F]: ...

    def register_rpc_method(
        self, method_name: str, handler: F | None = None
    ) -> F | Callable[[F], F]:
        """Serve calls of ``method_name`` with ``handler``; without a handler, a decorator.

        The handler receives an :class:`RpcInvocationData` and returns the response
        payload (a str; None counts as empty). It may be a coroutine function or a plain
        function (which then runs on the event loop, so it should be quick). Registering
        a name again replaces the previous handler. Returns the handler.
        """
        _require_str("method_name", method_name)

        def register(func: F) -> F:
            if not callable(func):
                raise ValueError("an RPC method handler must be callable")
            self._handlers[method_name] = func
            logger.debug("rpc method %r registered", method_name)
            return func

        if handler is None:
            return register
        return register(handler)

    def unregister_rpc_method(self, method: str) -> None:
        """Stop serving ``method``; later calls get ``UNSUPPORTED_METHOD``."""
        _require_str("method", method)
        if self._handlers.pop(method, None) is not None:
            logger.debug("rpc method %r unregistered", method)

    # -- input from the room ----------------------------------------------------------

    def handle_packet(self, packet: proto_models.DataPacket) -> None:
        """Process a received DataPacket carrying an RPC request, ack or response."""
        try:
            which = packet.WhichOneof("value")
            sender = packet.participant_identity
            if which == "rpc_request":
                self._on_request(sender, packet.rpc_request)
            elif which == "rpc_ack":
                self._on_ack(sender, packet.rpc_ack)
            elif which == "rpc_response":
                self._on_response(sender, packet.rpc_response)
            else:
                logger.debug("not an RPC packet: %s", which)
        except Exception:
            # Never let a malformed packet escape into the transport's callbacks.
            logger.exception("could not process an RPC packet")

    def on_participant_left(self, identity: str) -> None:
        """Fail our calls to ``identity`` with ``RECIPIENT_DISCONNECTED``."""
        for request_id, call in list(self._calls.items()):
            if call.destination == identity and not call.response.done():
                logger.debug("rpc %s: %s left before answering", request_id, identity)
                call.finish(RpcError._built_in(RpcError.ErrorCode.RECIPIENT_DISCONNECTED))

    async def on_disconnected(self) -> None:
        """The room is gone: fail our pending calls and stop the handlers we run."""
        for call in list(self._calls.values()):
            call.finish(RpcError._built_in(RpcError.ErrorCode.RECIPIENT_DISCONNECTED))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANDLER_UNWIND_TIMEOUT
        while self._tasks:
            tasks = set(self._tasks)
            for task in tasks:
                task.cancel()
            remaining = deadline - loop.time()
            if remaining > 0:
                _, pending = await asyncio.wait(tasks, timeout=remaining)
            else:
                pending = {t for t in tasks if not t.done()}
            if pending:
                logger.warning(
                    "%d RPC handler(s) did not stop within %gs of the disconnect",
                    len(pending),
                    HANDLER_UNWIND_TIMEOUT,
                )
                return
            # yield once so that done callbacks drop the finished tasks
            await asyncio.sleep(0)

    # -- packets ----------------------------------------------------------------------

    def _on_request(self, caller: str, request: proto_models.RpcRequest) -> None:
        if not caller:
            logger.debug("rpc %s: request without a caller identity, dropped", request.id)
            return
        timeout = (
            request.response_timeout_ms / 1000.0
            if request.response_timeout_ms > 0
            else DEFAULT_RESPONSE_TIMEOUT
        )
        logger.debug(
            "rpc %s: %s calls %r (%d bytes, %gs, version %d)",
            request.id,
            caller,
            request.method,
            len(request.payload),
            timeout,
            request.version,
        )
        compressed = bool(request.compressed_payload) and not request.payload
        self._track(
            asyncio.get_running_loop().create_task(
                self._serve(
                    caller,
                    request.id,
                    request.method,
                    request.payload,
                    timeout,
                    request.version,
                    compressed,
                ),
                name=f"livekit_py.rpc.serve.{request.method}",
            )
        )

    def _on_ack(self, sender: str, ack: proto_models.RpcAck) -> None:
        call = self._calls.get(ack.request_id)
        if call is None or not _from_destination(sender, call):
            logger.debug("rpc %s: unexpected acknowledgement from %s", ack.request_id, sender)
            return
        logger.debug("rpc %s: acknowledged", ack.request_id)
        if not call.acked.done():
            call.acked.set_result(None)

    def _on_response(self, sender: str, response: proto_models.RpcResponse) -> None:
        call = self._calls.get(response.request_id)
        if call is None or not _from_destination(sender, call):
            logger.debug("rpc %s: unexpected response from %s", response.request_id, sender)
            return
        which = response.WhichOneof("value")
        outcome: str | RpcError
        if which == "error":
            outcome = RpcError._from_proto(response.error)
        elif which == "compressed_payload":
            # Only sent to clients that advertise support for it, which we do not.
            outcome = RpcError._built_in(
                RpcError.ErrorCode.UNSUPPORTED_VERSION, "compressed payloads are not supported"
            )
        else:
            outcome = response.payload
        call.finish(outcome)

    # -- serving a request ------------------------------------------------------------

    async def _serve(
        self,
        caller: str,
        request_id: str,
        method: str,
        payload: str,
        timeout: float,
        version: int,
        compressed: bool,
    ) -> None:
        try:
            await self._send_quietly(caller, rpc_ack=proto_models.RpcAck(request_id=request_id))
            outcome: str | RpcError
            if version != RPC_VERSION:
                outcome = RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_VERSION)
            elif compressed:
                outcome = RpcError._built_in(
                    RpcError.ErrorCode.UNSUPPORTED_VERSION,
                    "compressed payloads are not supported",
                )
            else:
                handler = self._handlers.get(method)
                if handler is None:
                    outcome = RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_METHOD)
                else:
                    invocation = RpcInvocationData(request_id, caller, payload, timeout)
                    outcome = await self._run_handler(method, handler, invocation)
            if isinstance(outcome, str) and len(outcome.encode("utf-8")) > MAX_PAYLOAD_BYTES:
                outcome = RpcError._built_in(RpcError.ErrorCode.RESPONSE_PAYLOAD_TOO_LARGE)
            if isinstance(outcome, RpcError):
                logger.debug("rpc %s: answering with error %d", request_id, outcome.code)
                response = proto_models.RpcResponse(
                    request_id=request_id, error=outcome._to_proto()
                )
            else:
                logger.debug("rpc %s: answering (%d bytes)", request_id, len(outcome))
                response = proto_models.RpcResponse(request_id=request_id, payload=outcome)
            await self._send_quietly(caller, rpc_response=response)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("rpc %s: serving %r failed", request_id, method)

    async def _run_handler(
        self, method: str, handler: RpcHandler, invocation: RpcInvocationData
    ) -> str | RpcError:
        """Run ``handler`` within the invocation's deadline; return its result or error."""
        task = asyncio.get_running_loop().create_task(
            _invoke(handler, invocation), name=f"livekit_py.rpc.handler.{method}"
        )
        try:
            done, _ = await asyncio.wait((task,), timeout=invocation.response_timeout)
        except asyncio.CancelledError:
            # The room is disconnecting: stop the handler and give it a moment to unwind.
            task.cancel()
            self._track(task)
            await asyncio.wait((task,), timeout=HANDLER_UNWIND_TIMEOUT)
            raise
        if not done:
            logger.debug(
                "rpc %s: handler for %r exceeded %gs, cancelled",
                invocation.request_id,
                method,
                invocation.response_timeout,
            )
            # Answer now; the cancelled handler unwinds on its own time (the room's
            # disconnect still waits for it).
            task.cancel()
            self._track(task)
            return RpcError._built_in(RpcError.ErrorCode.RESPONSE_TIMEOUT)
        if task.cancelled():
            logger.warning("rpc handler for %r was cancelled", method)
            return RpcError._built_in(RpcError.ErrorCode.APPLICATION_ERROR)
        error = task.exception()
        if isinstance(error, RpcError):
            return error
        if error is not None:
            logger.warning(
                "rpc handler for %r raised; the caller gets APPLICATION_ERROR",
                method,
                exc_info=error,
            )
            return RpcError._built_in(RpcError.ErrorCode.APPLICATION_ERROR)
        result = task.result()
        if result is None:
            return ""
        if not isinstance(result, str):
            logger.warning(
                "rpc handler for %r returned %s instead of a str; "
                "the caller gets APPLICATION_ERROR",
                method,
                type(result).__name__,
            )
            return RpcError._built_in(RpcError.ErrorCode.APPLICATION_ERROR)
        return result

    # -- plumbing ---------------------------------------------------------------------

    def _track(self, task: asyncio.Future[Any]) -> None:
        if task in self._tasks:
            return
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # An abandoned handler failed while unwinding: nobody else will look.
            logger.debug("an abandoned rpc handler ended with %r", task.exception())

    async def _send(self, destination: str, **value: Any) -> None:
        packet = proto_models.DataPacket(
            kind=_RELIABLE,
            participant_identity=self._port.local_identity,
            destination_identities=[destination],
            **value,
        )
        await self._port.send_data(packet, _RELIABLE)

    async def _send_quietly(self, destination: str, **value: Any) -> None:
        try:
            await self._send(destination, **value)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.debug("could not send %s to %s: %s", next(iter(value)), destination, e)


async def _invoke(handler: RpcHandler, invocation: RpcInvocationData) -> Any:
    """Call a handler, awaiting its result when it is a coroutine or other awaitable."""
    result: Any = handler(invocation)
    if inspect.isawaitable(result):
        result = await result
    return result


def _from_destination(sender: str, call: _OutgoingCall) -> bool:
    # The server stamps the sender; accept unstamped packets from older servers.
    return not sender or sender == call.destination


def _require_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, not {type(value).__name__}")


def _utf8_size(name: str, value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text (lone surrogates)") from None


def _response_timeout(value: object) -> float:
    if value is None:
        return DEFAULT_RESPONSE_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"response_timeout must be a number of seconds, not {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"response_timeout must be zero or more seconds, not {value!r}")
    return seconds


def _handler_timeout_ms(response_timeout: float) -> int:
    """The time granted to the callee, written into the request, in milliseconds."""
    seconds = max(response_timeout - ACK_TIMEOUT, MIN_HANDLER_TIMEOUT)
    if math.isinf(seconds):
        return _UINT32_MAX
    return min(int(seconds * 1000), _UINT32_MAX)


def _parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION_RE.match(text)
    if match is None:
        return None
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return major, minor, patch
