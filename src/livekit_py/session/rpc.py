"""The RPC protocol for one room: the calls we make and the methods we serve.

Two versions of the wire protocol travel in reliable ``DataPacket`` messages addressed to
a single participant. Version 1, which every client speaks:

* the caller sends an ``RpcRequest`` (id, method, payload, how long the callee may
  take, protocol version 1), its payload at most 15 KiB;
* the callee answers at once with an ``RpcAck`` carrying the request id, runs the
  handler, then sends an ``RpcResponse`` holding either the result payload (at most
  15 KiB) or an ``RpcError``.

Version 2, toward a participant whose ``ParticipantInfo.client_protocol`` is at least 1
(the official SDKs, and us: see ``livekit_py.signal.client_protocol``), carries the
payloads as text data streams, with no size limit:

* the request is a text stream on topic :data:`RPC_REQUEST_TOPIC` whose attributes are
  :data:`ATTR_REQUEST_ID`, :data:`ATTR_METHOD`, :data:`ATTR_RESPONSE_TIMEOUT_MS` and
  :data:`ATTR_VERSION` (``"2"``); the callee acknowledges it with a version 1
  ``RpcAck`` as soon as its header arrives;
* a successful response is a text stream on :data:`RPC_RESPONSE_TOPIC` whose
  :data:`ATTR_REQUEST_ID` names the request; an error is still a version 1
  ``RpcResponse``. The response takes the form of the request.

The caller gives up with ``CONNECTION_TIMEOUT`` when no acknowledgement arrives within
``max_round_trip_latency`` (default :data:`ACK_TIMEOUT`), and with ``RESPONSE_TIMEOUT``
when, once acknowledged, no response arrives within its ``response_timeout``. The
timeout written into the request is the caller's timeout minus the round trip allowance
(never below :data:`MIN_HANDLER_TIMEOUT`), so that a callee that runs out of time can
still report it before the caller stops listening. These numbers, names and rules are
those of the official SDKs (Rust ``livekit/src/room/rpc``, which the official Python SDK
runs).

Interceptors (:class:`~livekit_py.rtc.rpc.RpcInterceptor`) wrap both directions: the
outgoing chain ends in the call itself, the incoming one in the registered handler; the
caller's response timeout covers the whole incoming chain.

:class:`RpcManager` implements both roles; it reaches the connection only through a
:class:`~livekit_py.session.ports.DataPort` and, for version 2, the room's
:class:`~livekit_py.session.stream_manager.StreamManager`. The public entry points are on
``LocalParticipant``; the public types are in :mod:`livekit_py.rtc.rpc`, a leaf module
that knows nothing of rooms.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

from livekit.protocol import models as proto_models

from ..log import get_logger
from ..rtc.data_stream import StreamError, TextStreamReader
from ..rtc.rpc import (
    MAX_PAYLOAD_BYTES,
    MAX_V1_PAYLOAD_BYTES,
    RpcCallInfo,
    RpcError,
    RpcInterceptor,
    RpcInvocationData,
    _chain_incoming,
    _chain_outgoing,
)
from ..signal.client_protocol import CLIENT_PROTOCOL_DATA_STREAM_RPC
from .ports import DataPort, RemotePeers
from .stream_manager import StreamManager

logger = get_logger("room.rpc")

__all__ = [
    "ACK_TIMEOUT",
    "ATTR_METHOD",
    "ATTR_REQUEST_ID",
    "ATTR_RESPONSE_TIMEOUT_MS",
    "ATTR_VERSION",
    "DEFAULT_RESPONSE_TIMEOUT",
    "HANDLER_UNWIND_TIMEOUT",
    "MAX_PAYLOAD_BYTES",
    "MAX_V1_PAYLOAD_BYTES",
    "MIN_HANDLER_TIMEOUT",
    "MIN_SERVER_VERSION",
    "RPC_REQUEST_TOPIC",
    "RPC_RESPONSE_TOPIC",
    "RPC_VERSION",
    "RPC_VERSION_V2",
    "F",
    "RpcHandler",
    "RpcManager",
]

#: Default seconds the caller waits for the callee's acknowledgement
#: (``max_round_trip_latency``).
ACK_TIMEOUT = 7.0
#: Seconds the caller waits for a response when ``response_timeout`` is not given.
DEFAULT_RESPONSE_TIMEOUT = 15.0
#: Floor of the handler time written into a request, in seconds.
MIN_HANDLER_TIMEOUT = 1.0
#: ``RpcRequest.version`` of a request sent as a data packet.
RPC_VERSION = 1
#: :data:`ATTR_VERSION` of a request sent as a data stream.
RPC_VERSION_V2 = 2
#: Servers older than this do not forward RPC packets.
MIN_SERVER_VERSION = (1, 8, 0)
#: Seconds a cancelled handler chain gets to finish unwinding before the caller is
#: answered (past its deadline) or the room's disconnect goes on without it.
HANDLER_UNWIND_TIMEOUT = 2.0

#: Topic of the text streams carrying version 2 requests.
RPC_REQUEST_TOPIC = "lk.rpc_request"
#: Topic of the text streams carrying version 2 successful responses.
RPC_RESPONSE_TOPIC = "lk.rpc_response"
#: Stream attribute: the request id (requests and responses).
ATTR_REQUEST_ID = "lk.rpc_request_id"
#: Stream attribute: the method called.
ATTR_METHOD = "lk.rpc_request_method"
#: Stream attribute: the handler's time, in milliseconds (decimal text).
ATTR_RESPONSE_TIMEOUT_MS = "lk.rpc_request_response_timeout_ms"
#: Stream attribute: the protocol version, ``"2"``.
ATTR_VERSION = "lk.rpc_request_version"

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
    (:meth:`on_disconnected`). With ``streams``, it claims the two RPC topics of the
    room's stream receiver and serves and calls over data streams (version 2) the
    participants ``peers`` says can take them.

    Args:
        port: How the manager sends data packets and learns who we are.
        streams: The room's data streams; None: version 1 only.
        peers: What the other participants understand; None: every participant is
            taken to speak version 1 only.
    """

    def __init__(
        self,
        port: DataPort,
        *,
        streams: StreamManager | None = None,
        peers: RemotePeers | None = None,
    ) -> None:
        self._port = port
        self._streams = streams
        self._peers = peers
        self._handlers: dict[str, RpcHandler] = {}
        self._interceptors: list[RpcInterceptor] = []
        self._calls: dict[str, _OutgoingCall] = {}
        # requests being served, response streams being read, and handler chains
        # abandoned after their deadline that still unwind
        self._tasks: set[asyncio.Future[Any]] = set()
        if streams is not None:
            streams.receiver.claim_text_topic(RPC_REQUEST_TOPIC, self._on_request_stream)
            streams.receiver.claim_text_topic(RPC_RESPONSE_TOPIC, self._on_response_stream)

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

    @property
    def interceptors(self) -> tuple[RpcInterceptor, ...]:
        """The interceptors, outermost first."""
        return tuple(self._interceptors)

    # -- interceptors -------------------------------------------------------------------

    def add_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Wrap every later call we make or serve in ``interceptor``, inside the ones
        added before it; adding the same object again does nothing."""
        if not isinstance(interceptor, RpcInterceptor):
            raise ValueError(
                f"an RPC interceptor must be an RpcInterceptor, not {type(interceptor).__name__}"
            )
        if not any(existing is interceptor for existing in self._interceptors):
            self._interceptors.append(interceptor)

    def remove_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Stop wrapping later calls in ``interceptor``; calls under way keep their chain."""
        self._interceptors = [i for i in self._interceptors if i is not interceptor]

    # -- calling ----------------------------------------------------------------------

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
        max_round_trip_latency: float | None = None,
    ) -> str:
        """Call ``method`` of the participant ``destination_identity`` with ``payload``.

        Returns the response payload. ``response_timeout`` (seconds, default 15) bounds
        the wait for the response once the callee has acknowledged the request;
        ``max_round_trip_latency`` (seconds, default 7) bounds the wait for the
        acknowledgement. The call goes through the interceptors first. Raises
        ValueError for malformed arguments and :class:`RpcError` for every failure of
        the call itself.
        """
        call = RpcCallInfo(
            destination_identity=destination_identity,
            method=method,
            payload=payload,
            response_timeout=response_timeout,
            max_round_trip_latency=max_round_trip_latency,
        )
        # a snapshot: adding or removing an interceptor does not change calls under way
        chain = _chain_outgoing(list(self._interceptors), self._call)
        return await chain(call)

    async def _call(self, call: RpcCallInfo) -> str:
        """The end of the outgoing chain: the call itself."""
        if not isinstance(call, RpcCallInfo):
            raise ValueError(f"an interceptor passed {type(call).__name__}, not an RpcCallInfo")
        destination = call.destination_identity
        _require_str("destination_identity", destination)
        if not destination:
            raise ValueError("destination_identity must not be empty")
        _require_str("method", call.method)
        _require_str("payload", call.payload)
        timeout = _seconds("response_timeout", call.response_timeout, DEFAULT_RESPONSE_TIMEOUT)
        ack_timeout = _seconds("max_round_trip_latency", call.max_round_trip_latency, ACK_TIMEOUT)
        _utf8_size("destination_identity", destination)
        _utf8_size("method", call.method)
        size = _utf8_size("payload", call.payload)
        if not self._server_supports_rpc():
            raise RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_SERVER)
        over_streams = self._speaks_v2(destination)
        if not over_streams and size > MAX_V1_PAYLOAD_BYTES:
            raise RpcError._built_in(RpcError.ErrorCode.REQUEST_PAYLOAD_TOO_LARGE)

        request_id = str(uuid.uuid4())
        handler_ms = _handler_timeout_ms(timeout, ack_timeout)
        pending = _OutgoingCall(destination, call.method, asyncio.get_running_loop())
        self._calls[request_id] = pending
        logger.debug(
            "rpc %s: calling %r on %s (%d bytes, timeout %gs, version %d)",
            request_id,
            call.method,
            destination,
            size,
            timeout,
            RPC_VERSION_V2 if over_streams else RPC_VERSION,
        )
        try:
            try:
                if over_streams:
                    await self._send_request_stream(destination, request_id, call, handler_ms)
                else:
                    request = proto_models.RpcRequest(
                        id=request_id,
                        method=call.method,
                        payload=call.payload,
                        response_timeout_ms=handler_ms,
                        version=RPC_VERSION,
                    )
                    await self._send(destination, rpc_request=request)
            except Exception as e:
                logger.debug("rpc %s: sending the request failed: %s", request_id, e)
                raise RpcError._built_in(RpcError.ErrorCode.SEND_FAILED, str(e) or None) from None

            # A response can overtake the acknowledgement (or replace it, when the call
            # fails locally), so both end the first wait.
            done, _ = await asyncio.wait(
                (pending.acked, pending.response),
                timeout=None if math.isinf(ack_timeout) else ack_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                logger.debug("rpc %s: no acknowledgement within %gs", request_id, ack_timeout)
                raise RpcError._built_in(RpcError.ErrorCode.CONNECTION_TIMEOUT)
            if not pending.response.done():
                await asyncio.wait(
                    (pending.response,), timeout=None if math.isinf(timeout) else timeout
                )
            if not pending.response.done():
                logger.debug("rpc %s: no response within %gs", request_id, timeout)
                raise RpcError._built_in(RpcError.ErrorCode.RESPONSE_TIMEOUT)
            outcome = pending.response.result()
            if isinstance(outcome, RpcError):
                logger.debug("rpc %s: failed with %d %s", request_id, outcome.code, outcome)
                raise outcome
            logger.debug("rpc %s: answered (%d characters)", request_id, len(outcome))
            return outcome
        finally:
            self._calls.pop(request_id, None)

    async def _send_request_stream(
        self, destination: str, request_id: str, call: RpcCallInfo, handler_ms: int
    ) -> None:
        assert self._streams is not None
        await self._streams.sender.send_text(
            call.payload,
            destination_identities=[destination],
            topic=RPC_REQUEST_TOPIC,
            attributes={
                ATTR_REQUEST_ID: request_id,
                ATTR_METHOD: call.method,
                ATTR_RESPONSE_TIMEOUT_MS: str(handler_ms),
                ATTR_VERSION: str(RPC_VERSION_V2),
            },
        )

    def _speaks_v2(self, identity: str) -> bool:
        """Whether calls to ``identity`` go over data streams (it advertised it)."""
        if self._streams is None or self._peers is None:
            return False
        return self._peers.remote_client_protocol(identity) >= CLIENT_PROTOCOL_DATA_STREAM_RPC

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

    # -- packets and streams ------------------------------------------------------------

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
            "rpc %s: %s calls %r (%d characters, %gs, version %d)",
            request.id,
            caller,
            request.method,
            len(request.payload),
            timeout,
            request.version,
        )
        compressed = bool(request.compressed_payload) and not request.payload
        self._spawn(
            self._serve_packet(caller, request, timeout, compressed),
            f"livekit_py.rpc.serve.{request.method}",
        )

    def _on_request_stream(self, reader: TextStreamReader, caller: str) -> None:
        """A version 2 request: its header arrived (the payload may still be coming)."""
        attributes = reader.info.attributes or {}
        request_id = attributes.get(ATTR_REQUEST_ID, "")
        if not caller or not request_id:
            logger.warning(
                "rpc request stream %s without a caller or %s: dropped",
                reader.info.stream_id,
                ATTR_REQUEST_ID,
            )
            reader.close()
            return
        method = attributes.get(ATTR_METHOD, "")
        self._spawn(
            self._serve_stream(reader, caller, request_id, method, attributes),
            f"livekit_py.rpc.serve.{method}",
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

    def _on_response_stream(self, reader: TextStreamReader, sender: str) -> None:
        """A version 2 successful response: its header arrived."""
        request_id = (reader.info.attributes or {}).get(ATTR_REQUEST_ID, "")
        call = self._calls.get(request_id)
        if call is None or not _from_destination(sender, call):
            logger.debug(
                "rpc %s: unexpected response stream %s from %s",
                request_id or f"(no {ATTR_REQUEST_ID})",
                reader.info.stream_id,
                sender,
            )
            reader.close()
            return
        self._spawn(self._read_response(reader, call), "livekit_py.rpc.response")

    async def _read_response(self, reader: TextStreamReader, call: _OutgoingCall) -> None:
        try:
            payload = await reader.read_all()
        except StreamError as e:
            logger.debug("rpc: reading a response stream failed: %s", e)
            call.finish(
                RpcError._built_in(
                    RpcError.ErrorCode.APPLICATION_ERROR,
                    f"Failed to read response stream: {e.description}",
                )
            )
            return
        call.finish(payload)

    # -- serving a request ------------------------------------------------------------

    async def _serve_packet(
        self,
        caller: str,
        request: proto_models.RpcRequest,
        timeout: float,
        compressed: bool,
    ) -> None:
        """Serve a version 1 request and answer with a version 1 response."""
        request_id = request.id
        try:
            await self._send_quietly(caller, rpc_ack=proto_models.RpcAck(request_id=request_id))
            outcome: str | RpcError
            if request.version != RPC_VERSION:
                outcome = RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_VERSION)
            elif compressed:
                outcome = RpcError._built_in(
                    RpcError.ErrorCode.UNSUPPORTED_VERSION,
                    "compressed payloads are not supported",
                )
            else:
                invocation = RpcInvocationData(
                    request_id, caller, request.payload, timeout, method=request.method
                )
                outcome = await self._invoke(invocation)
            if isinstance(outcome, str) and len(outcome.encode("utf-8")) > MAX_V1_PAYLOAD_BYTES:
                outcome = RpcError._built_in(RpcError.ErrorCode.RESPONSE_PAYLOAD_TOO_LARGE)
            if isinstance(outcome, RpcError):
                await self._send_error(caller, request_id, outcome)
            else:
                logger.debug("rpc %s: answering (%d characters)", request_id, len(outcome))
                response = proto_models.RpcResponse(request_id=request_id, payload=outcome)
                await self._send_quietly(caller, rpc_response=response)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("rpc %s: serving %r failed", request_id, request.method)

    async def _serve_stream(
        self,
        reader: TextStreamReader,
        caller: str,
        request_id: str,
        method: str,
        attributes: dict[str, str],
    ) -> None:
        """Serve a version 2 request: the payload is the stream's text; a result goes
        back as a response stream, an error as a version 1 response."""
        try:
            await self._send_quietly(caller, rpc_ack=proto_models.RpcAck(request_id=request_id))
            version = _int_attribute(attributes.get(ATTR_VERSION))
            if version != RPC_VERSION_V2:
                reader.close()
                await self._send_error(
                    caller, request_id, RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_VERSION)
                )
                return
            timeout_ms = _int_attribute(attributes.get(ATTR_RESPONSE_TIMEOUT_MS))
            timeout = (
                timeout_ms / 1000.0
                if timeout_ms is not None and timeout_ms > 0
                else DEFAULT_RESPONSE_TIMEOUT
            )
            try:
                payload = await reader.read_all()
            except StreamError as e:
                logger.debug("rpc %s: reading the request stream failed: %s", request_id, e)
                await self._send_error(
                    caller,
                    request_id,
                    RpcError._built_in(
                        RpcError.ErrorCode.APPLICATION_ERROR,
                        f"Failed to read request stream: {e.description}",
                    ),
                )
                return
            logger.debug(
                "rpc %s: %s calls %r over a stream (%d characters, %gs)",
                request_id,
                caller,
                method,
                len(payload),
                timeout,
            )
            invocation = RpcInvocationData(request_id, caller, payload, timeout, method=method)
            outcome = await self._invoke(invocation)
            if isinstance(outcome, RpcError):
                await self._send_error(caller, request_id, outcome)
                return
            logger.debug(
                "rpc %s: answering over a stream (%d characters)", request_id, len(outcome)
            )
            assert self._streams is not None
            try:
                await self._streams.sender.send_text(
                    outcome,
                    destination_identities=[caller],
                    topic=RPC_RESPONSE_TOPIC,
                    attributes={ATTR_REQUEST_ID: request_id},
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.debug("rpc %s: sending the response stream failed: %s", request_id, e)
                await self._send_error(
                    caller,
                    request_id,
                    RpcError._built_in(RpcError.ErrorCode.SEND_FAILED, str(e) or None),
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("rpc %s: serving %r failed", request_id, method)

    async def _send_error(self, caller: str, request_id: str, error: RpcError) -> None:
        logger.debug("rpc %s: answering with error %d", request_id, error.code)
        response = proto_models.RpcResponse(request_id=request_id, error=error._to_proto())
        await self._send_quietly(caller, rpc_response=response)

    async def _invoke(self, invocation: RpcInvocationData) -> str | RpcError:
        """Run the interceptors and the handler; the response payload or the error."""
        method = invocation.method
        try:
            result = await self._run_chain(invocation)
        except RpcError as error:
            return error
        except Exception as error:
            logger.warning(
                "rpc handler for %r raised; the caller gets APPLICATION_ERROR",
                method,
                exc_info=error,
            )
            return RpcError._built_in(RpcError.ErrorCode.APPLICATION_ERROR)
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

    async def _run_chain(self, invocation: RpcInvocationData) -> Any:
        """The incoming chain under the caller's deadline, as the official SDK runs it.

        When ``response_timeout`` passes, ``cancel_reason`` becomes RESPONSE_TIMEOUT and
        the chain is cancelled; whatever it then raises, the caller gets
        RESPONSE_TIMEOUT, once the chain has unwound or after
        :data:`HANDLER_UNWIND_TIMEOUT` (it then unwinds on its own, and the room's
        disconnect still waits for it). A cancellation from outside (the room
        disconnecting) sets RECIPIENT_DISCONNECTED, cancels the chain, gives it the
        same time to unwind and propagates. A ``CancelledError`` the chain raises by
        itself is an APPLICATION_ERROR; any other outcome is the chain's.
        """
        chain = _chain_incoming(list(self._interceptors), self._call_handler)
        task: asyncio.Future[Any] = asyncio.ensure_future(chain(invocation))
        timeout = invocation.response_timeout
        try:
            # asyncio.wait does not cancel the chain when we are cancelled: the
            # disconnect path below decides how it stops
            done, _ = await asyncio.wait((task,), timeout=None if math.isinf(timeout) else timeout)
        except asyncio.CancelledError:
            invocation.cancel_reason = RpcError.ErrorCode.RECIPIENT_DISCONNECTED
            task.cancel()
            await self._let_unwind(invocation.method, task)
            raise
        if not done:
            logger.debug(
                "rpc %s: %r exceeded %gs, cancelled",
                invocation.request_id,
                invocation.method,
                timeout,
            )
            invocation.cancel_reason = RpcError.ErrorCode.RESPONSE_TIMEOUT
            task.cancel()
            await self._let_unwind(invocation.method, task)
            raise RpcError._built_in(RpcError.ErrorCode.RESPONSE_TIMEOUT)
        if task.cancelled():
            logger.warning(
                "rpc handler for %r raised CancelledError; the caller gets APPLICATION_ERROR",
                invocation.method,
            )
            raise RpcError._built_in(RpcError.ErrorCode.APPLICATION_ERROR)
        return task.result()

    async def _let_unwind(self, method: str, task: asyncio.Future[Any]) -> None:
        """Give a cancelled chain a moment to unwind; past it, track it and move on."""
        try:
            await asyncio.wait((task,), timeout=HANDLER_UNWIND_TIMEOUT)
        finally:
            if task.done():
                _consume(task)
            else:
                logger.warning(
                    "rpc handler for %r did not stop within %gs of being cancelled",
                    method,
                    HANDLER_UNWIND_TIMEOUT,
                )
                self._track(task)

    async def _call_handler(self, invocation: RpcInvocationData) -> Any:
        """The end of the incoming chain: the registered handler."""
        handler = self._handlers.get(invocation.method)
        if handler is None:
            raise RpcError._built_in(RpcError.ErrorCode.UNSUPPORTED_METHOD)
        return await _invoke(handler, invocation)

    # -- plumbing ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._track(asyncio.get_running_loop().create_task(coro, name=name))

    def _track(self, task: asyncio.Future[Any]) -> None:
        if task in self._tasks:
            return
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # An abandoned handler failed while unwinding: nobody else will look.
            logger.debug("an abandoned rpc task ended with %r", task.exception())

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


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve what a finished, abandoned chain raised, so that nothing is reported
    as never retrieved."""
    if task.done() and not task.cancelled() and task.exception() is not None:
        logger.debug("a cancelled rpc handler raised while unwinding: %r", task.exception())


def _int_attribute(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


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


def _seconds(name: str, value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{name} must be zero or more seconds, not {value!r}")
    return seconds


def _response_timeout(value: object) -> float:
    return _seconds("response_timeout", value, DEFAULT_RESPONSE_TIMEOUT)


def _handler_timeout_ms(response_timeout: float, round_trip: float | None = None) -> int:
    """The time granted to the callee, written into the request, in milliseconds: the
    caller's timeout less the round trip allowance, at least :data:`MIN_HANDLER_TIMEOUT`."""
    allowance = ACK_TIMEOUT if round_trip is None else round_trip
    seconds = max(response_timeout - allowance, MIN_HANDLER_TIMEOUT)
    if math.isinf(seconds) or math.isnan(seconds):
        return _UINT32_MAX
    return min(int(seconds * 1000), _UINT32_MAX)


def _parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION_RE.match(text)
    if match is None:
        return None
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return major, minor, patch
