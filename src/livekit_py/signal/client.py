"""The signal client: one WebSocket to the server carrying SignalRequest/SignalResponse.

It knows the protocol's messages but nothing about media. Upper layers register a
handler per response kind (the name of the ``SignalResponse.message`` oneof field,
e.g. ``"offer"`` or ``"update"``); messages nobody handles are logged at DEBUG and
dropped, so newer servers can add messages without breaking older clients.

A session is opened with :meth:`SignalClient.join`. The same object can open a
new WebSocket for the same session later (``reconnect=True`` in
:class:`SignalOptions`), which is what resuming after a dropped socket needs; the
handlers registered on it stay in place across sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets
from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode
from websockets.protocol import State

from .._compat import timeout
from ..errors import ConnectError
from ..log import get_logger
from .url import redact, rtc_url, rtc_v1_url

logger = get_logger("signal")

Handler = Callable[[Any], None]

# Fields whose values must never reach a log line.
_SECRET_KINDS = frozenset({"refresh_token"})

#: The largest signal message we accept, in bytes; a bigger frame closes the socket
#: (1009) as soon as its header arrives, before its payload is buffered.
#:
#: The biggest real SignalResponses are a JoinResponse or ParticipantUpdate listing
#: a large room (a few hundred bytes per ParticipantInfo, ~1 KB with a few tracks)
#: and an offer SDP with a section per subscribed track (1-2 KB each): a room of a
#: thousand publishers is ~1-2 MB. livekit-server bounds what *it* reads from clients
#: at 2 MiB (``limit.signal_message_size_limit``) and the official Rust/Python SDK
#: inherits tungstenite's 16 MiB frame limit; 16 MiB keeps that 8x margin over the
#: server's own bound while refusing a hostile 50 MB frame outright.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

# How long close() waits, after sending a leave, for the server to close the socket
# (it does once it has processed the leave, so the participant is gone for sure).
LEAVE_ACK_TIMEOUT = 1.0

# How long a cancelled join still waits for the WebSocket handshake under way to finish,
# so that it can send a leave on it.
HANDSHAKE_GRACE = 2.0

# Close codes websockets sends itself when the server's input is invalid.
_FAILURE_CODES = frozenset(
    {
        CloseCode.PROTOCOL_ERROR,
        CloseCode.INVALID_DATA,
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.INTERNAL_ERROR,
    }
)


class BadFrame(Exception):
    """A frame on the signal socket that is not a binary ``SignalResponse``."""


class _SignalConnection(ClientConnection):
    """A client connection that drops the socket as soon as the server's input is invalid.

    When websockets rejects a frame (too big, not valid UTF-8, a protocol error) it
    sends a close frame and, as a client, waits for the server to close the TCP
    connection, which a broken or hostile server may never do: ``recv()`` would hang
    until then. A server that sent invalid input gets no close handshake from us.
    """

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        protocol = self.protocol
        sent = protocol.close_sent
        if (
            protocol.state is State.CLOSING
            and sent is not None
            and sent.code in _FAILURE_CODES
            and protocol.close_rcvd is None
        ):
            self.transport.abort()


@dataclass
class SignalOptions:
    """What the client tells the server when it opens a session."""

    auto_subscribe: bool = True
    adaptive_stream: bool = False
    connect_timeout: float = 10.0
    reconnect: bool = False
    participant_sid: str | None = None
    reconnect_reason: int | None = None
    single_peer_connection: bool = False
    """Join on ``/rtc/v1`` (one peer connection); a server without that path (HTTP 404)
    is joined on ``/rtc`` instead, as the official SDKs do."""


def signal_url(
    url: str,
    token: str,
    options: SignalOptions,
    *,
    v1: bool,
    publisher_offer: proto_rtc.SessionDescription | None = None,
) -> str:
    """The URL of a join or (``options.reconnect``) a resume, on ``/rtc/v1`` or ``/rtc``."""
    common: dict[str, Any] = {
        "auto_subscribe": options.auto_subscribe,
        "adaptive_stream": options.adaptive_stream,
        "reconnect": options.reconnect,
        "participant_sid": options.participant_sid,
        "reconnect_reason": options.reconnect_reason,
    }
    if v1:
        return rtc_v1_url(url, token, publisher_offer=publisher_offer, **common)
    return rtc_url(url, token, **common)


_SECRET_FIELDS = re.compile(
    r'\b(turn_password|credential|password|token|access_token): "(?:[^"\\]|\\.)*"'
)


def describe(msg: Message) -> str:
    """A one-line text form of a protobuf message for DEBUG logs, credentials redacted."""
    text = text_format.MessageToString(msg, as_one_line=True, as_utf8=True)
    return _SECRET_FIELDS.sub(r'\1: "<redacted>"', text)


class _NotFound(Exception):
    """The WebSocket upgrade was answered 404 (``error`` says so for the user)."""

    def __init__(self, error: ConnectError) -> None:
        super().__init__(str(error))
        self.error = error


class ResumeRefused(ConnectError):
    """The server answered a resume with a leave: the session must be joined again."""

    def __init__(self, leave: proto_rtc.LeaveRequest) -> None:
        super().__init__(
            "the server refused to resume the session: "
            f"{proto_models.DisconnectReason.Name(leave.reason)}, "
            f"action {proto_rtc.LeaveRequest.Action.Name(leave.action)}"
        )
        self.leave = leave


class SignalClient:
    """The WebSocket session with the LiveKit server."""

    def __init__(self) -> None:
        self._ws: ClientConnection | None = None
        self._handlers: dict[str, Handler] = {}
        self._read_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        # a socket that ended by itself (broken stream, ping timeout) and that close()
        # must still close if the loop that noticed it was cancelled first
        self._ended_socket: ClientConnection | None = None
        self._closing = False
        self._last_pong = 0.0
        self._ping_interval = 0.0
        self._ping_timeout = 0.0
        self.rtt_ms = 0
        self.single_peer_connection = False
        """Whether the session joined on ``/rtc/v1``: one peer connection (set by
        :meth:`join`; a resume keeps the path of the join)."""
        self.on_close: Callable[[str], None] | None = None
        """Called once when the socket ends without :meth:`close` being called, or
        when the server sends a frame that is not a SignalResponse (the stream is
        then broken: the socket is closed and should be treated as dropped)."""

    # -- registration -------------------------------------------------------

    def on(self, kind: str, handler: Handler) -> None:
        """Handle every SignalResponse whose oneof ``message`` is ``kind``."""
        if kind not in proto_rtc.SignalResponse.DESCRIPTOR.fields_by_name:
            raise ValueError(f"SignalResponse has no message {kind!r}")
        self._handlers[kind] = handler

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closing

    # -- session ------------------------------------------------------------

    async def join(
        self,
        url: str,
        token: str,
        options: SignalOptions,
        *,
        publisher_offer: proto_rtc.SessionDescription | None = None,
    ) -> proto_rtc.JoinResponse:
        """Open the WebSocket and wait for the server's JoinResponse.

        With ``options.single_peer_connection`` the join goes to ``/rtc/v1`` (with
        ``publisher_offer``, our first offer, in its JoinRequest); if the server has
        no such path (HTTP 404 on the upgrade, as servers before single peer
        connections answer), it goes to ``/rtc`` at once, without the offer.
        :attr:`single_peer_connection` says which one was joined.

        Raises ConnectError for an unreachable server, a rejected token, a server
        that refuses the join or closes the socket (with its close code and reason),
        a frame that is not a binary SignalResponse, a message over
        :data:`MAX_MESSAGE_SIZE`, a first message that is not the JoinResponse, or no
        answer within ``options.connect_timeout``. Bad input fails at once, not at
        the timeout. On any failure or cancellation the socket is closed before
        returning; on cancellation a leave is sent first (the server creates the
        participant before it accepts the WebSocket).
        """
        self._closing = False
        ended, self._ended_socket = self._ended_socket, None
        if ended is not None:  # the previous socket of this client, if it broke
            await _close_quietly(ended)
        v1 = options.single_peer_connection
        safe_url = ""
        try:
            async with timeout(options.connect_timeout):
                while True:
                    full_url = signal_url(
                        url, token, options, v1=v1, publisher_offer=publisher_offer if v1 else None
                    )
                    safe_url = redact(full_url)
                    logger.debug("connecting to %s", safe_url)
                    try:
                        ws, join = await self._open(
                            full_url, safe_url, strict=not options.reconnect
                        )
                    except _NotFound as e:
                        if not v1:
                            raise e.error from e.__cause__
                        logger.info(
                            "the server has no single peer connection endpoint (HTTP 404 on "
                            "/rtc/v1): joining with two peer connections"
                        )
                        v1 = False
                        continue
                    break
        except asyncio.TimeoutError:
            raise ConnectError(
                f"timed out after {options.connect_timeout:g}s waiting for the LiveKit server "
                f"at {safe_url} to send its JoinResponse"
            ) from None
        self.single_peer_connection = v1

        self._ws = ws
        self._ping_interval = float(join.ping_interval or 0)
        self._ping_timeout = float(join.ping_timeout or 0)
        self._last_pong = time.monotonic()
        self._read_task = asyncio.get_running_loop().create_task(
            self._read_loop(ws), name="livekit_py.signal.read"
        )
        if self._ping_interval > 0:
            self._ping_task = asyncio.get_running_loop().create_task(
                self._ping_loop(), name="livekit_py.signal.ping"
            )
        return join

    async def resume(
        self, url: str, token: str, options: SignalOptions
    ) -> proto_rtc.ReconnectResponse | None:
        """Open a new WebSocket for the session this client joined (``options.reconnect``).

        The server's first message decides: a ``reconnect`` response is returned;
        a ``leave`` raises :class:`ResumeRefused` (the session is gone: join
        again); anything else means resumed without a ReconnectResponse (None is
        returned and the message is handled like any other). The handlers stay.

        Raises:
            ResumeRefused: The server answered with a leave.
            ConnectError: The server could not be reached or did not answer in time.
        """
        resume = dataclasses.replace(options, reconnect=True)
        full_url = signal_url(url, token, resume, v1=self.single_peer_connection)
        safe_url = redact(full_url)
        logger.debug("resuming at %s", safe_url)
        old = self._ws
        self._ws = None
        if old is not None:
            await _close_quietly(old)
        self._closing = False
        first: proto_rtc.SignalResponse | None = None
        try:
            async with timeout(options.connect_timeout):
                ws = await self._connect_ws(full_url, safe_url)
                try:
                    while first is None:
                        try:
                            raw = await ws.recv()
                        except ConnectionClosed as e:
                            raise ConnectError(
                                f"the signal connection ended while resuming: {_closed_text(e)}"
                            ) from None
                        try:
                            first = _parse(raw)
                        except BadFrame as e:
                            raise ConnectError(f"the server sent {e} while resuming") from None
                except BaseException:
                    await _close_quietly(ws)
                    raise
        except asyncio.TimeoutError:
            raise ConnectError(
                f"timed out after {options.connect_timeout:g}s resuming at {safe_url}"
            ) from None
        kind = first.WhichOneof("message")
        if kind == "leave":
            _log_message("recv", kind, first)
            await _close_quietly(ws)
            raise ResumeRefused(first.leave)
        self._ws = ws
        self._last_pong = time.monotonic()
        self._read_task = asyncio.get_running_loop().create_task(
            self._read_loop(ws), name="livekit_py.signal.read"
        )
        if self._ping_task is not None and not self._ping_task.done():
            self._ping_task.cancel()
        if self._ping_interval > 0:
            self._ping_task = asyncio.get_running_loop().create_task(
                self._ping_loop(), name="livekit_py.signal.ping"
            )
        if kind == "reconnect":
            _log_message("recv", kind, first)
            return first.reconnect
        self._dispatch(first)
        return None

    async def _connect_ws(self, full_url: str, safe_url: str) -> ClientConnection:
        try:
            return await _dial(full_url)
        except (InvalidHandshake, OSError) as e:
            raise _dial_error(e, safe_url) from e

    async def _open(
        self, full_url: str, safe_url: str, *, strict: bool
    ) -> tuple[ClientConnection, proto_rtc.JoinResponse]:
        connecting = asyncio.get_running_loop().create_task(
            _dial(full_url), name="livekit_py.signal.handshake"
        )
        try:
            ws = await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # The server creates our participant before it accepts the WebSocket, and
            # a handshake cut in the middle can leave that participant behind. Let the
            # handshake finish (bounded), then tell the server we are leaving.
            await _shielded(_leave_after_handshake(connecting))
            raise
        except (InvalidHandshake, OSError) as e:
            error = _dial_error(e, safe_url)
            if isinstance(e, InvalidStatus) and _path_not_found(e):
                raise _NotFound(error) from e
            raise error from e
        try:
            return ws, await self._await_join(ws, strict=strict)
        except BaseException as e:
            # Cancelled (by the caller or the connect timeout) with the socket open:
            # the server already has a participant for us, so say we are leaving.
            leave = _CLIENT_LEAVE if isinstance(e, asyncio.CancelledError) else None
            await _shielded(_abandon(ws, leave, await_ack=False))
            raise

    async def _await_join(self, ws: ClientConnection, *, strict: bool) -> proto_rtc.JoinResponse:
        """The JoinResponse; ``strict``: it must be the first message (a fresh join)."""
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as e:
                raise ConnectError(
                    f"the signal connection ended before the JoinResponse: {_closed_text(e)}"
                ) from None
            try:
                res = _parse(raw)
            except BadFrame as e:
                raise ConnectError(f"the server sent {e} before the JoinResponse") from None
            kind = res.WhichOneof("message")
            _log_message("recv", kind, res)
            if kind == "join":
                return res.join
            if kind == "leave":
                reason = proto_models.DisconnectReason.Name(res.leave.reason)
                raise ConnectError(f"the server refused the join: {reason}")
            if strict:
                what = f"a {kind!r} message" if kind else "a SignalResponse with no known message"
                raise ConnectError(
                    f"the server sent {what} where the JoinResponse was expected first"
                )
            logger.debug("ignoring %s received before the join response", kind)

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        """Send one request; raises ConnectionError when the socket is gone."""
        ws = self._ws
        if ws is None or self._closing:
            raise ConnectionError("the signal connection is closed")
        _log_message("send", request.WhichOneof("message"), request)
        data = request.SerializeToString()
        async with self._send_lock:
            try:
                await ws.send(data)
            except ConnectionClosed as e:
                raise ConnectionError(f"the signal connection closed: {_close_text(e)}") from None

    async def abort(self) -> None:
        """Drop the socket as a network fault would: ``on_close`` is called (tests, chaos)."""
        ws = self._ws
        if ws is not None and not self._closing:
            ws.transport.abort()

    async def close(self, leave: proto_rtc.LeaveRequest | None = None) -> None:
        """Close the socket, first sending ``leave`` if given. Idempotent.

        After the leave it waits up to :data:`LEAVE_ACK_TIMEOUT` for the server to
        close the socket, which it does once the leave is processed. Never hangs on
        a socket that is already gone: the leave is then skipped.
        """
        ws = self._ws
        send_leave = ws is not None and leave is not None and not self._closing
        self._closing = True
        self._ws = None
        current = asyncio.current_task()
        for task in (self._ping_task, self._read_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._ping_task = self._read_task = None
        if ws is not None:
            await _abandon(ws, leave if send_leave else None)
        ended, self._ended_socket = self._ended_socket, None
        if ended is not None and ended is not ws:
            await _close_quietly(ended)

    # -- background loops -----------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        reason = "signal connection closed"
        broken = False
        try:
            async for raw in ws:
                self._dispatch(_parse(raw))
        except BadFrame as e:
            # Nothing after a frame we cannot read can be trusted to be in order:
            # report the stream as broken (the session treats it as a dropped socket).
            logger.warning("the signal stream is broken: the server sent %s", e)
            reason = f"the signal stream is broken: the server sent {e}"
            broken = True
        except ConnectionClosed as e:
            if _we_failed(e):
                reason = f"the signal stream is broken: {_closed_text(e)}"
                logger.warning("%s", reason)
            else:
                reason = f"signal connection closed: {_closed_text(e)}"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in a handler must not kill the session silently
            logger.exception("signal read loop failed")
            reason = f"signal read loop failed: {e}"
            broken = True
        self._socket_ended(ws, reason)
        if broken:
            await _close_quietly(ws)

    def _dispatch(self, res: proto_rtc.SignalResponse) -> None:
        kind = res.WhichOneof("message")
        _log_message("recv", kind, res)
        if kind in ("pong", "pong_resp"):
            self._last_pong = time.monotonic()
            if kind == "pong_resp":
                self.rtt_ms = max(0, int(time.time() * 1000) - res.pong_resp.last_ping_timestamp)
            return
        if kind is None:
            logger.debug("signal response with no known message, ignored")
            return
        handler = self._handlers.get(kind)
        if handler is None:
            logger.debug("no handler for signal message %s, ignored", kind)
            return
        try:
            handler(getattr(res, kind))
        except Exception:
            logger.exception("handling signal message %s failed", kind)

    async def _ping_loop(self) -> None:
        ws = self._ws
        while ws is not None and self._ws is ws:
            await asyncio.sleep(self._ping_interval)
            if self._ping_timeout and time.monotonic() - self._last_pong > self._ping_timeout:
                logger.warning("no pong from the server for %.0fs", self._ping_timeout)
                self._socket_ended(ws, "ping timeout")
                await _close_quietly(ws)
                return
            now_ms = int(time.time() * 1000)
            try:
                await self.send(proto_rtc.SignalRequest(ping=now_ms))
                await self.send(
                    proto_rtc.SignalRequest(
                        ping_req=proto_rtc.Ping(timestamp=now_ms, rtt=self.rtt_ms)
                    )
                )
            except ConnectionError:
                return

    def _socket_ended(self, ws: ClientConnection, reason: str) -> None:
        if self._ws is not ws or self._closing:
            return
        self._ws = None
        self._ended_socket = ws
        logger.debug("signal socket ended: %s", reason)
        if self.on_close is not None:
            self.on_close(reason)


_CLIENT_LEAVE = proto_rtc.LeaveRequest(
    can_reconnect=False,
    reason=proto_models.DisconnectReason.CLIENT_INITIATED,
    action=proto_rtc.LeaveRequest.Action.DISCONNECT,
)


async def _dial(full_url: str) -> ClientConnection:
    """Open the signal WebSocket with our input limits (size, broken-input handling)."""
    return await websockets.connect(
        full_url,
        open_timeout=None,
        ping_interval=None,
        max_size=MAX_MESSAGE_SIZE,
        create_connection=_SignalConnection,
    )


def _dial_error(error: InvalidHandshake | OSError, safe_url: str) -> ConnectError:
    """What a failed WebSocket handshake means for the user: HTTP status, handshake, network."""
    if isinstance(error, InvalidStatus):
        return ConnectError(_describe_http_failure(safe_url, error))
    if isinstance(error, InvalidHandshake):
        return ConnectError(f"WebSocket handshake with {safe_url} failed: {error}")
    return ConnectError(
        f"could not reach the LiveKit server at {safe_url}: {error.strerror or error}"
    )


def _parse(raw: str | bytes) -> proto_rtc.SignalResponse:
    """Decode one frame; BadFrame (saying what it was, never its content) if it is not
    a binary SignalResponse."""
    if isinstance(raw, str):
        raise BadFrame(
            f"a text frame ({len(raw)} characters) where a binary SignalResponse was expected"
        )
    res = proto_rtc.SignalResponse()
    try:
        res.ParseFromString(raw)
    except DecodeError as e:
        raise BadFrame(
            f"a {len(raw)}-byte frame that does not parse as a SignalResponse ({e})"
        ) from None
    return res


def _we_failed(e: ConnectionClosed) -> bool:
    """Whether websockets closed the connection itself because of the server's input."""
    return e.sent is not None and e.sent.code in _FAILURE_CODES and e.rcvd is None


def _closed_text(e: ConnectionClosed) -> str:
    """Why a connection ended, naming the server's close code or what was wrong with its input."""
    sent = e.sent
    if sent is not None and _we_failed(e):
        if sent.code == CloseCode.MESSAGE_TOO_BIG:
            return (
                f"the server sent a message over the {MAX_MESSAGE_SIZE // (1024 * 1024)} MiB "
                f"size limit ({sent.reason})"
            )
        if sent.code == CloseCode.INVALID_DATA:
            return f"the server sent a text frame that is not valid UTF-8 ({sent.reason})"
        return f"the server broke the WebSocket protocol ({sent})"
    rcvd = e.rcvd
    if rcvd is None:
        return "the connection was lost without a close frame"
    return f"the server closed it with code {rcvd}"


async def _abandon(
    ws: ClientConnection, leave: proto_rtc.LeaveRequest | None, *, await_ack: bool = True
) -> None:
    """Close ``ws``; with ``leave``, send it first and (``await_ack``) give the server
    :data:`LEAVE_ACK_TIMEOUT` to close the socket after processing it. Bounded: a
    dead or silent server costs at most a few seconds, never a hang.

    Before the join response nothing needs the acknowledgement: a participant that
    never connected its media is removed by the server as soon as its socket closes.
    """
    if leave is not None:
        request = proto_rtc.SignalRequest(leave=leave)
        _log_message("send", "leave", request)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.send(request.SerializeToString()), 2.0)
            if await_ack:
                await asyncio.wait_for(ws.wait_closed(), LEAVE_ACK_TIMEOUT)
    await _close_quietly(ws)


async def _leave_after_handshake(connecting: asyncio.Task[ClientConnection]) -> None:
    """Finish a handshake whose caller was cancelled, then leave and close the socket."""
    try:
        ws = await asyncio.wait_for(connecting, HANDSHAKE_GRACE)
    except BaseException:  # refused, unreachable, or too slow (then cancelled): no socket
        return
    await _abandon(ws, _CLIENT_LEAVE, await_ack=False)


async def _shielded(coro: Awaitable[None]) -> None:
    """Run ``coro`` to the end even if the caller is cancelled meanwhile (then re-raise)."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _log_message(direction: str, kind: str | None, msg: Message) -> None:
    if not logger.isEnabledFor(10):  # logging.DEBUG
        return
    if kind in _SECRET_KINDS:
        logger.debug("signal %s %s: <redacted>", direction, kind)
    else:
        logger.debug("signal %s %s: %s", direction, kind, describe(msg))


def _describe_http_failure(safe_url: str, e: InvalidStatus) -> str:
    status = e.response.status_code
    body = bytes(e.response.body or b"").decode("utf-8", "replace").strip()
    detail = f": {body}" if body else ""
    if status == 401:
        return f"the server rejected the access token (HTTP 401){detail}"
    if status == 403:
        return f"the access token does not allow joining this room (HTTP 403){detail}"
    if status == 404 and _ROOM_NOT_FOUND in body:
        return f"the room does not exist and the token may not create it (HTTP 404){detail}"
    if status == 404:
        return f"{safe_url} is not a LiveKit signal endpoint (HTTP 404)"
    return f"the LiveKit server refused the connection (HTTP {status}){detail}"


# What livekit-server answers (404) to a join of a room that does not exist when it
# may not create it: a refusal, not a missing endpoint (the JS SDK tells them apart so).
_ROOM_NOT_FOUND = "requested room does not exist"


def _path_not_found(e: InvalidStatus) -> bool:
    """Whether a refused upgrade means the path does not exist (404, not a missing room)."""
    body = bytes(e.response.body or b"").decode("utf-8", "replace")
    return e.response.status_code == 404 and _ROOM_NOT_FOUND not in body


def _close_text(e: ConnectionClosed) -> str:
    rcvd = e.rcvd
    if rcvd is None:
        return "no close frame"
    return f"code {rcvd.code}{', ' + rcvd.reason if rcvd.reason else ''}"


async def _close_quietly(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 2.0)
