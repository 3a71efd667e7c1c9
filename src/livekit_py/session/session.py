"""One session with a LiveKit server: its lifecycle, its signal client and its engine.

The session is a state machine (:class:`SessionState`) with a single transition
function, :meth:`Session._set_state`, that checks the transition, logs it and
reports it (``Room`` turns it into ``connection_state_changed``, ``connected``
and ``disconnected``)::

    DISCONNECTED --connect--> CONNECTING --media up--> CONNECTED
    CONNECTING --failed / cancelled / disconnect()--> DISCONNECTING
    CONNECTED --disconnect() / server leave / transport lost--> DISCONNECTING
    DISCONNECTING --everything closed--> DISCONNECTED
    (next issue) CONNECTED --transport lost--> RECONNECTING --resumed--> CONNECTED
    (next issue) RECONNECTING --gave up--> DISCONNECTING

The session owns the signal client and the RTC engine, tears them down (a
shielded close, so that a cancelled ``connect`` still closes everything), and
runs the transport grace timer: a lost socket or failed peer connection waits
:data:`TRANSPORT_GRACE` seconds for the server's leave message, whose reason is
the one reported.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._compat import timeout as connect_timeout
from ..engine.engine import EngineConfig, RtcEngine
from ..errors import ConnectError
from ..log import get_logger
from ..signal.client import SignalClient, SignalOptions

logger = get_logger("session")

# How long a transport failure waits for the server's leave message (and its reason).
TRANSPORT_GRACE = 0.5

_CLIENT_INITIATED = proto_models.DisconnectReason.CLIENT_INITIATED
_UNKNOWN_REASON = proto_models.DisconnectReason.UNKNOWN_REASON
_SIGNAL_CLOSE = proto_models.DisconnectReason.SIGNAL_CLOSE
_MEDIA_FAILURE = proto_models.DisconnectReason.MEDIA_FAILURE


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


S = SessionState

#: The legal transitions. RECONNECTING is reachable only once resume/reconnect exist.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.DISCONNECTED: frozenset({S.CONNECTING}),
    S.CONNECTING: frozenset({S.CONNECTED, S.DISCONNECTING}),
    S.CONNECTED: frozenset({S.RECONNECTING, S.DISCONNECTING}),
    S.RECONNECTING: frozenset({S.CONNECTED, S.DISCONNECTING}),
    S.DISCONNECTING: frozenset({S.DISCONNECTED}),
}


class IllegalTransition(RuntimeError):
    """A state change the lifecycle does not allow (a bug, not a network condition)."""


@dataclass(frozen=True)
class StateChange:
    """One transition. ``reason`` (a DisconnectReason) is set when entering DISCONNECTED
    after a session that was up or being set up, None otherwise."""

    old: SessionState
    new: SessionState
    why: str
    reason: int | None = None


JoinedCallback = Callable[[proto_rtc.JoinResponse, SignalClient, RtcEngine], None]


class Session:
    """The lifecycle of one connection to a room (reusable: connect again after it ended).

    Args:
        on_state: called with every :class:`StateChange`, synchronously, in order.
        on_closed: awaited during teardown, after the engine and signal client are
            closed, to end what the room built on them (tracks, waiters, managers).
        sleep: how the grace timer waits (tests pass a controllable one).
        signal_factory: makes the signal client for a connect.
        engine_factory: makes the engine from the signal client and its config.
    """

    def __init__(
        self,
        *,
        on_state: Callable[[StateChange], None],
        on_closed: Callable[[], Awaitable[None]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        signal_factory: Callable[[], SignalClient] = SignalClient,
        engine_factory: Callable[[SignalClient, EngineConfig], RtcEngine] = RtcEngine,
    ) -> None:
        self._on_state = on_state
        self._on_closed = on_closed
        self.sleep = sleep
        self.signal_factory = signal_factory
        self.engine_factory = engine_factory
        self._state = SessionState.DISCONNECTED
        self._signal: SignalClient | None = None
        self._engine: RtcEngine | None = None
        self._closed: asyncio.Event | None = None  # set when DISCONNECTING ends
        # the reason a scheduled disconnect will report (a server leave overrides a
        # transport failure during the grace time)
        self._pending_reason: int | None = None
        self._disconnect_task: asyncio.Task[None] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def signal(self) -> SignalClient | None:
        """The signal client while the session has one (CONNECTING after the join, CONNECTED)."""
        return self._signal

    @property
    def engine(self) -> RtcEngine | None:
        return self._engine

    def _in(self, state: SessionState) -> bool:
        """Whether the session is in ``state`` now (after awaits, it may have moved on)."""
        return self._state is state

    def _set_state(self, new: SessionState, why: str, *, reason: int | None = None) -> None:
        """The one transition function: check, log, report."""
        old = self._state
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"session cannot go from {old.value} to {new.value} ({why})")
        self._state = new
        logger.info("session %s -> %s: %s", old.value, new.value, why)
        self._on_state(StateChange(old, new, why, reason))

    # -- connect ---------------------------------------------------------------------------

    async def connect(
        self,
        url: str,
        token: str,
        options: SignalOptions,
        config: EngineConfig,
        *,
        timeout: float,
        on_joined: JoinedCallback,
    ) -> proto_rtc.JoinResponse:
        """Join: the signal handshake, then the media connection, each within ``timeout``.

        ``on_joined(join, signal, engine)`` runs after the join, before the engine
        starts: the room applies the join and registers its handlers there. On any
        failure, including cancellation, everything opened is closed before the
        exception propagates.
        """
        if self._state is not SessionState.DISCONNECTED:
            raise RuntimeError("the room is already connected or connecting")
        self._pending_reason = None
        self._set_state(SessionState.CONNECTING, f"connecting to {url}")
        signal = self.signal_factory()
        try:
            join = await signal.join(url, token, options)
            if not self._in(SessionState.CONNECTING):
                await signal.close()
                raise ConnectError("the room was disconnected while connecting")
            self._signal = signal
            engine = self.engine_factory(signal, config)
            self._engine = engine
            engine.on_failure = self._on_engine_failure
            signal.on_close = self._on_signal_closed
            signal.on("leave", self._on_leave)
            on_joined(join, signal, engine)
            engine.start(join)
            try:
                async with connect_timeout(timeout):
                    await engine.wait_connected()
            except asyncio.TimeoutError:
                raise ConnectError(
                    f"the media connection to the LiveKit server was not established within "
                    f"{timeout:g}s (ICE/DTLS did not complete)"
                ) from None
            if not self._in(SessionState.CONNECTING):
                raise ConnectError("the room was disconnected while connecting")
        except BaseException as e:
            await self._shutdown(None, f"connect failed: {e!r}", send_leave=True)
            raise
        self._set_state(
            SessionState.CONNECTED, "the signal session and the media connection are up"
        )
        return join

    # -- disconnect ------------------------------------------------------------------------

    async def disconnect(
        self, reason: int = _CLIENT_INITIATED, *, why: str = "disconnect() called"
    ) -> None:
        """Leave (telling the server). Safe when already disconnected or disconnecting."""
        if self._state is SessionState.CONNECTING and self._signal is None:
            return  # the join is still under way; connect() will finish or fail by itself
        await self._shutdown(reason, why, send_leave=True)

    async def _shutdown(self, reason: int | None, why: str, *, send_leave: bool) -> None:
        if self._state is SessionState.DISCONNECTED:
            return
        if self._state is SessionState.DISCONNECTING:
            # Another path is already leaving (e.g. the server's reply to our leave
            # request): let that one finish and report.
            closed = self._closed
            if closed is not None:
                await closed.wait()
            return
        self._set_state(SessionState.DISCONNECTING, why)
        closed = self._closed = asyncio.Event()
        try:
            await self._teardown(send_leave=send_leave)
        finally:
            self._closed = None
            closed.set()
            self._set_state(SessionState.DISCONNECTED, why, reason=reason)

    async def _teardown(self, *, send_leave: bool) -> None:
        """Close the engine and the signal socket, then what the room built on them."""
        engine, signal = self._engine, self._signal
        self._engine = None
        self._signal = None
        if signal is not None:
            signal.on_close = None
        if engine is not None:
            engine.on_failure = None
        leave = (
            proto_rtc.LeaveRequest(
                can_reconnect=False,
                reason=_CLIENT_INITIATED,
                action=proto_rtc.LeaveRequest.Action.DISCONNECT,
            )
            if send_leave
            else None
        )

        async def close_all() -> None:
            if engine is not None:
                engine.begin_close()
            if signal is not None:
                await signal.close(leave)
            if engine is not None:
                await engine.close()
            await self._on_closed()

        # Shield the cleanup so that a cancelled connect or disconnect still closes everything.
        cleanup = asyncio.ensure_future(close_all())
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup
            raise

    # -- what ends a session from inside ---------------------------------------------------

    def _on_leave(self, leave: proto_rtc.LeaveRequest) -> None:
        reason = leave.reason or _UNKNOWN_REASON
        action = proto_rtc.LeaveRequest.Action.Name(leave.action)
        # Resume and full reconnect (action RESUME / RECONNECT) go here in the next
        # issue (CONNECTED -> RECONNECTING); today every leave disconnects.
        self._schedule_disconnect(
            reason,
            f"the server asked us to leave ({proto_models.DisconnectReason.Name(leave.reason)}, "
            f"action {action})",
        )

    def _on_signal_closed(self, why: str) -> None:
        # A dropped socket: the next issue tries a resume here (CONNECTED -> RECONNECTING).
        self._schedule_disconnect(_SIGNAL_CLOSE, why, grace=TRANSPORT_GRACE)

    def _on_engine_failure(self, why: str) -> None:
        # A failed peer connection: the next issue restarts ICE / reconnects here.
        self._schedule_disconnect(_MEDIA_FAILURE, why, grace=TRANSPORT_GRACE)

    def _schedule_disconnect(self, reason: int, why: str, *, grace: float = 0.0) -> None:
        """Disconnect from inside a callback (server leave, lost socket, failed media).

        The server closes the media connections right after telling us why we
        are leaving, and the two can arrive in either order; a disconnect caused
        by a transport waits ``grace`` seconds so that the server's reason, if
        one is on its way, is the one reported.
        """
        if self._state is not SessionState.CONNECTED:
            return
        if grace == 0.0 or self._pending_reason is None:
            self._pending_reason = reason
        if self._disconnect_task is not None and not self._disconnect_task.done():
            return
        logger.info("disconnecting: %s", why)

        async def run() -> None:
            if grace:
                await self.sleep(grace)
            final = self._pending_reason
            self._pending_reason = None
            await self._shutdown(final if final is not None else reason, why, send_leave=False)

        self._disconnect_task = asyncio.get_running_loop().create_task(
            run(), name="livekit_py.session.disconnect"
        )
