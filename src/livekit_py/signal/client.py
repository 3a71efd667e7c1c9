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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .._compat import timeout
from ..errors import ConnectError
from ..log import get_logger
from .url import redact, rtc_url

logger = get_logger("signal")

Handler = Callable[[Any], None]

# Fields whose values must never reach a log line.
_SECRET_KINDS = frozenset({"refresh_token"})


@dataclass
class SignalOptions:
    """What the client tells the server when it opens a session."""

    auto_subscribe: bool = True
    adaptive_stream: bool = False
    connect_timeout: float = 10.0
    reconnect: bool = False
    participant_sid: str | None = None
    reconnect_reason: int | None = None


_SECRET_FIELDS = re.compile(
    r'\b(turn_password|credential|password|token|access_token): "(?:[^"\\]|\\.)*"'
)


def describe(msg: Message) -> str:
    """A one-line text form of a protobuf message for DEBUG logs, credentials redacted."""
    text = text_format.MessageToString(msg, as_one_line=True, as_utf8=True)
    return _SECRET_FIELDS.sub(r'\1: "<redacted>"', text)


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
        self._closing = False
        self._last_pong = 0.0
        self._ping_interval = 0.0
        self._ping_timeout = 0.0
        self.rtt_ms = 0
        self.on_close: Callable[[str], None] | None = None
        """Called once when the socket ends without :meth:`close` being called."""

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

    async def join(self, url: str, token: str, options: SignalOptions) -> proto_rtc.JoinResponse:
        """Open the WebSocket and wait for the server's JoinResponse.

        Raises ConnectError for an unreachable server, a rejected token, a server
        that refuses the join, or no answer within ``options.connect_timeout``.
        On any failure or cancellation the socket is closed before returning.
        """
        full_url = rtc_url(
            url,
            token,
            auto_subscribe=options.auto_subscribe,
            adaptive_stream=options.adaptive_stream,
            reconnect=options.reconnect,
            participant_sid=options.participant_sid,
            reconnect_reason=options.reconnect_reason,
        )
        safe_url = redact(full_url)
        logger.debug("connecting to %s", safe_url)
        self._closing = False
        try:
            async with timeout(options.connect_timeout):
                ws, join = await self._open(full_url, safe_url)
        except asyncio.TimeoutError:
            raise ConnectError(
                f"timed out after {options.connect_timeout:g}s waiting for the LiveKit server "
                f"at {safe_url} to accept the session"
            ) from None

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
        full_url = rtc_url(
            url,
            token,
            auto_subscribe=options.auto_subscribe,
            adaptive_stream=options.adaptive_stream,
            reconnect=True,
            participant_sid=options.participant_sid,
            reconnect_reason=options.reconnect_reason,
        )
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
                                f"the server closed the signal connection while resuming "
                                f"({_close_text(e)})"
                            ) from None
                        first = _parse(raw)
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
            return await websockets.connect(
                full_url, open_timeout=None, ping_interval=None, max_size=None
            )
        except InvalidStatus as e:
            raise ConnectError(_describe_http_failure(safe_url, e)) from None
        except InvalidHandshake as e:
            raise ConnectError(f"WebSocket handshake with {safe_url} failed: {e}") from e
        except OSError as e:
            raise ConnectError(
                f"could not reach the LiveKit server at {safe_url}: {e.strerror or e}"
            ) from e

    async def _open(
        self, full_url: str, safe_url: str
    ) -> tuple[ClientConnection, proto_rtc.JoinResponse]:
        try:
            ws = await websockets.connect(
                full_url, open_timeout=None, ping_interval=None, max_size=None
            )
        except InvalidStatus as e:
            raise ConnectError(_describe_http_failure(safe_url, e)) from None
        except InvalidHandshake as e:
            raise ConnectError(f"WebSocket handshake with {safe_url} failed: {e}") from e
        except OSError as e:
            raise ConnectError(
                f"could not reach the LiveKit server at {safe_url}: {e.strerror or e}"
            ) from e
        try:
            return ws, await self._await_join(ws)
        except BaseException:
            await _close_quietly(ws)
            raise

    async def _await_join(self, ws: ClientConnection) -> proto_rtc.JoinResponse:
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as e:
                raise ConnectError(
                    f"the server closed the signal connection before joining ({_close_text(e)})"
                ) from None
            res = _parse(raw)
            if res is None:
                continue
            kind = res.WhichOneof("message")
            _log_message("recv", kind, res)
            if kind == "join":
                return res.join
            if kind == "leave":
                reason = proto_models.DisconnectReason.Name(res.leave.reason)
                raise ConnectError(f"the server refused the join: {reason}")
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
        """Close the socket, first sending ``leave`` if given. Idempotent."""
        ws = self._ws
        if ws is not None and leave is not None and not self._closing:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send(proto_rtc.SignalRequest(leave=leave)), 2.0)
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
            await _close_quietly(ws)

    # -- background loops -----------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        reason = "signal connection closed"
        try:
            async for raw in ws:
                res = _parse(raw)
                if res is None:
                    continue
                self._dispatch(res)
        except ConnectionClosed as e:
            reason = f"signal connection closed: {_close_text(e)}"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in a handler must not kill the session silently
            logger.exception("signal read loop failed")
            reason = f"signal read loop failed: {e}"
        self._socket_ended(ws, reason)

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
        logger.debug("signal socket ended: %s", reason)
        if self.on_close is not None:
            self.on_close(reason)


def _parse(raw: str | bytes) -> proto_rtc.SignalResponse | None:
    if isinstance(raw, str):
        logger.debug("ignoring a text frame on the signal socket")
        return None
    res = proto_rtc.SignalResponse()
    try:
        res.ParseFromString(raw)
    except DecodeError:
        logger.warning("could not decode a signal message of %d bytes", len(raw))
        return None
    return res


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
    if status == 404:
        return f"{safe_url} is not a LiveKit signal endpoint (HTTP 404)"
    return f"the LiveKit server refused the connection (HTTP {status}){detail}"


def _close_text(e: ConnectionClosed) -> str:
    rcvd = e.rcvd
    if rcvd is None:
        return "no close frame"
    return f"code {rcvd.code}{', ' + rcvd.reason if rcvd.reason else ''}"


async def _close_quietly(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 2.0)
