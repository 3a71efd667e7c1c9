"""Remote procedure calls between the participants of a room: the public types.

:class:`RpcInvocationData` is what a method handler receives and :class:`RpcError` is
how every failure of a call is reported, on both sides. :class:`RpcInterceptor` wraps
the calls a participant makes (seeing each as an :class:`RpcCallInfo`) and the ones it
serves. The calls themselves are made and served through
``LocalParticipant.perform_rpc``, ``register_rpc_method`` and ``unregister_rpc_method``;
the protocol behind them (requests, acknowledgements, responses and their timeouts, over
data packets or data streams) lives in ``livekit_py.session.rpc``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from livekit.protocol import models as proto_models

#: Largest request or response payload, in UTF-8 bytes (15 KiB), of a call to or from a
#: participant that only speaks RPC over data packets (version 1); over data streams
#: (version 2) payloads have no such limit.
MAX_V1_PAYLOAD_BYTES = 15 * 1024
#: The old name of :data:`MAX_V1_PAYLOAD_BYTES`.
MAX_PAYLOAD_BYTES = MAX_V1_PAYLOAD_BYTES
#: Error messages longer than this many UTF-8 bytes are cut on the wire.
MAX_MESSAGE_BYTES = 256
#: Error data longer than this many UTF-8 bytes is cut on the wire (errors always travel
#: in a version 1 response packet).
MAX_DATA_BYTES = MAX_V1_PAYLOAD_BYTES

__all__ = [
    "IncomingRpcNext",
    "OutgoingRpcNext",
    "RpcCallInfo",
    "RpcError",
    "RpcInterceptor",
    "RpcInvocationData",
]

_UINT32_MAX = 2**32 - 1


@dataclass
class RpcInvocationData:
    """What a method handler learns about the call it is serving.

    Attributes:
        request_id: Identifier of the call, the same on the caller's side.
        caller_identity: Identity of the participant that made the call.
        payload: The request payload, in whatever format the two sides agreed on.
        response_timeout: Seconds the handler (and the interceptors around it) have to
            produce the result; after that the call is answered with
            ``RESPONSE_TIMEOUT`` and the chain is cancelled.
        method: The name of the method called.
        cancel_reason: Why the SDK is cancelling the chain, set just before it cancels:
            ``RESPONSE_TIMEOUT`` when ``response_timeout`` passed,
            ``RECIPIENT_DISCONNECTED`` when the room disconnects. None while the chain
            runs, and when a ``CancelledError`` comes from the chain itself (the caller
            then gets ``APPLICATION_ERROR``). An interceptor unwinding from the
            cancellation can read it to record what the caller is told.
    """

    request_id: str
    caller_identity: str
    payload: str
    response_timeout: float
    method: str = ""
    cancel_reason: RpcError.ErrorCode | None = None


@dataclass
class RpcCallInfo:
    """A call about to be made, as :meth:`RpcInterceptor.intercept_outgoing` sees it.

    The fields are the arguments of ``LocalParticipant.perform_rpc``; an interceptor may
    hand ``next`` a changed copy (``dataclasses.replace``), for instance to add a field
    to a JSON payload.

    Attributes:
        destination_identity: Identity of the participant called.
        method: The method name.
        payload: The request payload.
        response_timeout: Seconds to wait for the response once the request is
            acknowledged; None for the default (15).
        max_round_trip_latency: Seconds to wait for the acknowledgement; None for the
            default (7).
    """

    destination_identity: str
    method: str
    payload: str
    response_timeout: float | None = None
    max_round_trip_latency: float | None = None


OutgoingRpcNext = Callable[[RpcCallInfo], Awaitable[str]]
"""What :meth:`RpcInterceptor.intercept_outgoing` calls to go on with the call."""
IncomingRpcNext = Callable[[RpcInvocationData], Awaitable[str | None]]
"""What :meth:`RpcInterceptor.intercept_incoming` calls to go on to the handler."""


class RpcInterceptor:
    """Observes or wraps the RPC calls a ``LocalParticipant`` makes and serves.

    Add one with ``LocalParticipant.add_rpc_interceptor``. Each method gets the call
    and a ``next`` continuation, and returns (or raises) what ``next`` returns (or
    raises) unless it means to answer in its place. Interceptors run in the order they
    were added, the first added outermost. Both methods pass the call through
    unchanged by default: override the direction of interest.

    Errors pass through the chain unchanged. Outgoing, every failure of the call is an
    :class:`RpcError` raised by ``next``. Incoming, ``next`` raises what the handler
    raised (an RpcError, or any other exception, which the SDK turns into
    ``APPLICATION_ERROR`` only after the chain returns), and ``UNSUPPORTED_METHOD``
    when no handler is registered for the method. The caller's ``response_timeout``
    covers the whole incoming chain: when it passes, the chain is cancelled (the
    interceptors see ``CancelledError``, with ``invocation.cancel_reason`` set) and the
    caller gets ``RESPONSE_TIMEOUT``.
    """

    async def intercept_outgoing(self, call: RpcCallInfo, next: OutgoingRpcNext) -> str:
        """Wrap one ``perform_rpc``; returns the response payload."""
        return await next(call)

    async def intercept_incoming(
        self, invocation: RpcInvocationData, next: IncomingRpcNext
    ) -> str | None:
        """Wrap the handling of one incoming call; returns the response payload."""
        return await next(invocation)


def _chain_outgoing(
    interceptors: Sequence[RpcInterceptor], last: OutgoingRpcNext
) -> OutgoingRpcNext:
    """``last`` wrapped in ``interceptors``, the first of them outermost."""
    step = last
    for interceptor in reversed(interceptors):
        step = _outgoing_step(interceptor, step)
    return step


def _outgoing_step(interceptor: RpcInterceptor, inner: OutgoingRpcNext) -> OutgoingRpcNext:
    async def step(call: RpcCallInfo) -> str:
        return await interceptor.intercept_outgoing(call, inner)

    return step


def _chain_incoming(
    interceptors: Sequence[RpcInterceptor], last: IncomingRpcNext
) -> IncomingRpcNext:
    """``last`` wrapped in ``interceptors``, the first of them outermost."""
    step = last
    for interceptor in reversed(interceptors):
        step = _incoming_step(interceptor, step)
    return step


def _incoming_step(interceptor: RpcInterceptor, inner: IncomingRpcNext) -> IncomingRpcNext:
    async def step(invocation: RpcInvocationData) -> str | None:
        return await interceptor.intercept_incoming(invocation, inner)

    return step


class RpcError(Exception):
    """The failure of an RPC call.

    ``perform_rpc`` raises it for every failure, local (timeouts, payload limits, a
    lost connection) or remote. A method handler may raise it too: its ``code``,
    ``message`` and ``data`` then reach the caller unchanged (the message is limited
    to 256 and the data to 15 KiB of UTF-8 on the wire, which carries errors in a
    version 1 response packet whichever version the call used). Any other exception raised by
    a handler reaches the caller as ``APPLICATION_ERROR``.

    Codes 1001 to 1999 are reserved for the built-in errors listed in
    :class:`RpcError.ErrorCode`; applications are free to use any other code.
    """

    class ErrorCode(IntEnum):
        """The built-in error codes."""

        APPLICATION_ERROR = 1500
        CONNECTION_TIMEOUT = 1501
        RESPONSE_TIMEOUT = 1502
        RECIPIENT_DISCONNECTED = 1503
        RESPONSE_PAYLOAD_TOO_LARGE = 1504
        SEND_FAILED = 1505

        UNSUPPORTED_METHOD = 1400
        RECIPIENT_NOT_FOUND = 1401
        REQUEST_PAYLOAD_TOO_LARGE = 1402
        UNSUPPORTED_SERVER = 1403
        UNSUPPORTED_VERSION = 1404

    # The texts are part of the protocol: every SDK sends the same ones.
    ErrorMessage: ClassVar[dict[RpcError.ErrorCode, str]] = {
        ErrorCode.APPLICATION_ERROR: "Application error in method handler",
        ErrorCode.CONNECTION_TIMEOUT: "Connection timeout",
        ErrorCode.RESPONSE_TIMEOUT: "Response timeout",
        ErrorCode.RECIPIENT_DISCONNECTED: "Recipient disconnected",
        ErrorCode.RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
        ErrorCode.SEND_FAILED: "Failed to send",
        ErrorCode.UNSUPPORTED_METHOD: "Method not supported at destination",
        ErrorCode.RECIPIENT_NOT_FOUND: "Recipient not found",
        ErrorCode.REQUEST_PAYLOAD_TOO_LARGE: "Request payload too large",
        ErrorCode.UNSUPPORTED_SERVER: "RPC not supported by server",
        ErrorCode.UNSUPPORTED_VERSION: "Unsupported RPC version",
    }

    def __init__(
        self,
        code: int | RpcError.ErrorCode,
        message: str,
        data: str | None = None,
    ) -> None:
        """Build an error with a numeric ``code``, a readable ``message`` and optional
        ``data`` (free-form text, JSON recommended)."""
        super().__init__(message)
        self._code = code
        self._message = message
        self._data = data

    @property
    def code(self) -> int:
        """The error code; see :class:`RpcError.ErrorCode` for the built-in ones."""
        return self._code

    @property
    def message(self) -> str:
        """The readable description of the error."""
        return self._message

    @property
    def data(self) -> str | None:
        """Extra information attached to the error, or None."""
        return self._data

    def __repr__(self) -> str:
        return f"RpcError(code={self._code!r}, message={self._message!r}, data={self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # keeps copy.copy and pickle working despite the three-argument constructor
        return (type(self), (self._code, self._message, self._data), self.__dict__ or None)

    @classmethod
    def _built_in(cls, code: RpcError.ErrorCode, data: str | None = None) -> RpcError:
        """The built-in error ``code`` with its standard message."""
        return cls(code, cls.ErrorMessage[code], data)

    @classmethod
    def _from_proto(cls, proto: proto_models.RpcError) -> RpcError:
        """Decode an error received from the wire (empty data becomes None)."""
        return cls(
            proto.code,
            _truncate_utf8(proto.message, MAX_MESSAGE_BYTES),
            _truncate_utf8(proto.data, MAX_DATA_BYTES) or None,
        )

    def _to_proto(self) -> proto_models.RpcError:
        """Encode for the wire, within the protocol's limits.

        Values of the wrong type (an application may raise ``RpcError`` with anything)
        are coerced rather than allowed to break the response.
        """
        code = self._code
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= _UINT32_MAX:
            code = RpcError.ErrorCode.APPLICATION_ERROR
        message = self._message if isinstance(self._message, str) else str(self._message)
        data = "" if self._data is None else self._data
        if not isinstance(data, str):
            data = str(data)
        return proto_models.RpcError(
            code=int(code),
            message=_truncate_utf8(message, MAX_MESSAGE_BYTES),
            data=_truncate_utf8(data, MAX_DATA_BYTES),
        )


def _truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")
