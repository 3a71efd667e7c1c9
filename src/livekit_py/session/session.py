"""One session with a LiveKit server: its lifecycle, its signal client and its engine.

The session is a state machine (:class:`SessionState`) with a single transition
function, :meth:`Session._set_state`, that checks the transition, logs it and
reports it (``Room`` turns it into ``connection_state_changed``, ``connected``
and ``disconnected``)::

    DISCONNECTED --connect--> CONNECTING --media up--> CONNECTED
    CONNECTING --failed / cancelled / disconnect()--> DISCONNECTING
    CONNECTED --disconnect() / server leave / failed media--> DISCONNECTING
    CONNECTED --signal socket lost / leave(RESUME)--> RECONNECTING --resumed--> CONNECTED
    RECONNECTING --gave up / refused / disconnect()--> DISCONNECTING
    DISCONNECTING --everything closed--> DISCONNECTED

A resume opens a new signal WebSocket for the same server session
(``reconnect=1``), sends the room's ``SyncState`` and waits for the primary peer
connection; the server restarts ICE on the subscriber, which the engine follows
(see ``webrtc/aiortc_adapter.adopt_remote_ice_restart``). Attempts follow
:func:`retry_delay` (the official JS schedule) through the injectable ``sleep``
and ``clock``.

The session owns the signal client and the RTC engine, tears them down (a
shielded close, so that a cancelled ``connect`` still closes everything), and
runs the transport grace timer: a lost socket or failed peer connection waits
:data:`TRANSPORT_GRACE` seconds for the server's leave message, whose reason is
the one reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from .._compat import timeout as connect_timeout
from ..engine.engine import EngineConfig, RtcEngine
from ..errors import ConnectError
from ..log import get_logger, quiet_library_loggers
from ..signal.client import ResumeRefused, SignalClient, SignalOptions

logger = get_logger("session")

# How long a transport failure waits for the server's leave message (and its reason).
TRANSPORT_GRACE = 0.5

_CLIENT_INITIATED = proto_models.DisconnectReason.CLIENT_INITIATED
_UNKNOWN_REASON = proto_models.DisconnectReason.UNKNOWN_REASON
_SIGNAL_CLOSE = proto_models.DisconnectReason.SIGNAL_CLOSE
_MEDIA_FAILURE = proto_models.DisconnectReason.MEDIA_FAILURE
_STATE_MISMATCH = proto_models.DisconnectReason.STATE_MISMATCH
_LEAVE = proto_rtc.LeaveRequest.Action

#: Delays before each reconnect attempt (the official JS SDK's default policy:
#: 0, 300 ms, 1.2 s, 2.7 s, 4.8 s, then 7 s; ten attempts in all).
RETRY_DELAYS: tuple[float, ...] = (0.0, 0.3, 1.2, 2.7, 4.8, 7.0, 7.0, 7.0, 7.0, 7.0)
#: How long a resume waits for the server's ICE restart of the subscriber.
ICE_RESTART_WAIT = 2.0
#: No attempt starts later than this after the connection was lost.
MAX_RECONNECT_DURATION = 60.0
#: While the server refuses TCP connections (it is restarting, nothing listens on its
#: port) attempts are cheap and fail at once: probe at this interval instead of the
#: schedule, so that the session is back within this long of the server, whatever the
#: schedule's step. These probes do not use up the schedule's attempts; the time bound
#: above still ends them.
REFUSED_RETRY_DELAY = 0.25


def connection_refused(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a refused TCP connection."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def retry_delay(attempt: int, elapsed: float) -> float | None:
    """The delay before reconnect attempt ``attempt`` (0-based), or None to give up.

    Args:
        attempt: How many attempts were made already.
        elapsed: Seconds since the connection was lost.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    if attempt >= len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempt]
    if elapsed + delay > MAX_RECONNECT_DURATION:
        return None
    return delay


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


S = SessionState

#: The legal transitions.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.DISCONNECTED: frozenset({S.CONNECTING}),
    S.CONNECTING: frozenset({S.CONNECTED, S.DISCONNECTING}),
    S.CONNECTED: frozenset({S.RECONNECTING, S.DISCONNECTING}),
    S.RECONNECTING: frozenset({S.CONNECTED, S.DISCONNECTING}),
    S.DISCONNECTING: frozenset({S.DISCONNECTED}),
}


#: The transitions of a healthy session's life, logged at DEBUG (the others at INFO).
_ROUTINE_TRANSITIONS = frozenset(
    {
        (S.DISCONNECTED, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTED, S.DISCONNECTING),
        (S.DISCONNECTING, S.DISCONNECTED),
    }
)


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
SyncStateBuilder = Callable[[RtcEngine], proto_rtc.SyncState]
RejoinedCallback = Callable[[proto_rtc.JoinResponse, SignalClient, RtcEngine], None]
RestoreCallback = Callable[[RtcEngine], Awaitable[None]]


class _ResumeFailed(Exception):
    """One resume attempt did not work out (the next one may)."""


class Session:
    """The lifecycle of one connection to a room (reusable: connect again after it ended).

    Args:
        on_state: called with every :class:`StateChange`, synchronously, in order.
        on_closed: awaited during teardown, after the engine and signal client are
            closed, to end what the room built on them (tracks, waiters, managers).
        sleep: how the grace timer and the reconnect retries wait (tests pass a
            controllable one).
        clock: monotonic seconds, for the bound on the total reconnect time.
        signal_factory: makes the signal client for a connect.
        engine_factory: makes the engine from the signal client and its config.
    """

    def __init__(
        self,
        *,
        on_state: Callable[[StateChange], None],
        on_closed: Callable[[], Awaitable[None]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        signal_factory: Callable[[], SignalClient] = SignalClient,
        engine_factory: Callable[[SignalClient, EngineConfig], RtcEngine] = RtcEngine,
    ) -> None:
        self._on_state = on_state
        self._on_closed = on_closed
        self.sleep = sleep
        self.clock = clock
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
        # what a resume needs: where, the newest token, how, and who we are
        self._url = ""
        self.token = ""
        """The newest access token (the room replaces it on ``refresh_token``)."""
        self._options = SignalOptions()
        self._participant_sid = ""
        self._resume_disabled = False
        self._connect_timeout = 10.0
        self._reconnect_task: asyncio.Task[None] | None = None
        self._connected_event = asyncio.Event()
        self.build_sync_state: SyncStateBuilder | None = None
        """Makes the SyncState sent after a resume (the room sets it)."""
        self.on_rejoined: RejoinedCallback | None = None
        """A full reconnect joined again: the room applies the new join and registers its
        handlers on the new signal client and engine (before the engine starts)."""
        self.restore: RestoreCallback | None = None
        """Awaited once the new media connection is up: republish, restore subscriptions."""
        self.on_resumed: Callable[[], None] | None = None
        """Called once a resume succeeded (the server kept the session), before the
        session is CONNECTED again: the room resends its subscription settings."""
        self._config = EngineConfig()
        self._leave_arrived = False
        self._rejoin_requested = False
        # reliable packets a full reconnect moves from the old engine to the new one
        self._carry_over: list[proto_models.DataPacket] = []

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
        if new is SessionState.CONNECTED:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        # a routine connect or disconnect is DEBUG; reconnects and failed joins are INFO
        routine = (old, new) in _ROUTINE_TRANSITIONS
        logger.log(
            logging.DEBUG if routine else logging.INFO,
            "session %s -> %s: %s",
            old.value,
            new.value,
            why,
        )
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
        self._url, self.token, self._options = url, token, options
        self._connect_timeout = timeout
        self._config = config
        self._carry_over = []
        self._leave_arrived = False
        quiet_library_loggers()  # aioice's ICE checks at INFO, unless the application chose
        self._set_state(SessionState.CONNECTING, f"connecting to {url}")
        signal = self.signal_factory()
        try:
            join = await signal.join(url, token, options)
            if not self._in(SessionState.CONNECTING):
                await signal.close()
                raise ConnectError("the room was disconnected while connecting")
            engine = self._adopt(join, signal, config)
            on_joined(join, signal, engine)
            engine.start(join, single_peer_connection=signal.single_peer_connection)
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

    def _adopt(
        self, join: proto_rtc.JoinResponse, signal: SignalClient, config: EngineConfig
    ) -> RtcEngine:
        """Take the joined signal client, make its engine and listen to both."""
        self._signal = signal
        self._participant_sid = join.participant.sid
        self._resume_disabled = (
            join.client_configuration.resume_connection == proto_models.ClientConfigSetting.DISABLED
        )
        engine = self.engine_factory(signal, config)
        self._engine = engine
        engine.on_failure = self._on_engine_failure
        signal.on_close = self._on_signal_closed
        signal.on("leave", self._on_leave)
        return engine

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
        reconnect = self._reconnect_task
        if reconnect is not None and reconnect is not asyncio.current_task():
            reconnect.cancel()
            with contextlib.suppress(BaseException):
                await reconnect
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
        why = (
            f"the server asked us to leave ({proto_models.DisconnectReason.Name(leave.reason)}, "
            f"action {action})"
        )
        if self._state is SessionState.CONNECTED and leave.action in (
            _LEAVE.RESUME,
            _LEAVE.RECONNECT,
        ):
            full = leave.action == _LEAVE.RECONNECT or leave.reason == _STATE_MISMATCH
            self._begin_reconnect(why, proto_models.ReconnectReason.RR_UNKNOWN, full=full)
            return
        if self._state is SessionState.RECONNECTING and leave.action in (
            _LEAVE.RESUME,
            _LEAVE.RECONNECT,
        ):
            # A second leave while we already do what the first asked (seen under
            # load: two CONNECTION_TIMEOUT/RESUME leaves 10 ms apart) must not end
            # the session; a RECONNECT makes the next attempts full rejoins.
            if leave.action == _LEAVE.RECONNECT or leave.reason == _STATE_MISMATCH:
                self._rejoin_requested = True
            logger.debug("already reconnecting; %s", why)
            return
        self._leave_arrived = True
        self._schedule_disconnect(reason, why)

    def _on_signal_closed(self, why: str) -> None:
        if self._disconnect_task is not None and not self._disconnect_task.done():
            return  # the server told us to leave; its socket closing is expected
        if self._state is SessionState.CONNECTED:
            self._begin_reconnect(why, proto_models.ReconnectReason.RR_SIGNAL_DISCONNECTED)

    def _on_engine_failure(self, why: str) -> None:
        if self._state is SessionState.RECONNECTING:
            logger.debug("ignored while reconnecting: %s", why)
            return
        # A failed peer connection: aioice cannot gather again, so only a full
        # rejoin recovers; first the grace wait for a leave from the server.
        self._schedule_disconnect(_MEDIA_FAILURE, why, grace=TRANSPORT_GRACE, rejoin=True)

    # -- resume ----------------------------------------------------------------------------

    def reconnect_now(self, why: str, *, full: bool) -> None:
        """Start a resume (or, ``full``, a full reconnect) now, as a lost connection would.

        Raises:
            RuntimeError: If the session is not connected.
        """
        if self._state is not SessionState.CONNECTED:
            raise RuntimeError("the session is not connected")
        self._begin_reconnect(why, proto_models.ReconnectReason.RR_UNKNOWN, full=full)

    async def wait_connected(self, limit: float) -> None:
        """Wait (at most ``limit`` seconds) while the session is reconnecting.

        Returns at once when connected. Raises ConnectionError when the session
        is not connected and not reconnecting, ends meanwhile, or ``limit`` passes.
        """
        if self._state is SessionState.CONNECTED:
            return
        if self._state is not SessionState.RECONNECTING:
            raise ConnectionError("the room is not connected")
        try:
            async with connect_timeout(limit):
                while self._state is SessionState.RECONNECTING:
                    await self._wait_state_change()
        except asyncio.TimeoutError:
            raise ConnectionError(f"the room did not reconnect within {limit:g}s") from None
        if self._state is not SessionState.CONNECTED:
            raise ConnectionError("the room disconnected while reconnecting")

    async def _wait_state_change(self) -> None:
        event = self._connected_event
        closed = self._closed
        waits = [asyncio.ensure_future(event.wait())]
        if closed is not None:
            waits.append(asyncio.ensure_future(closed.wait()))
        try:
            await asyncio.wait(waits, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _begin_reconnect(
        self, why: str, reason: int, *, full: bool = False, lost: int = _SIGNAL_CLOSE
    ) -> None:
        """RECONNECTING: resume (or, ``full``, rejoin); ``lost`` is the reason if it gives up."""
        if self._resume_disabled and not full:
            why = f"{why}; the server disabled resuming"
            full = True
        self._set_state(SessionState.RECONNECTING, why)
        self._rejoin_requested = False
        if self._engine is not None:
            self._engine.suspend_data()  # reliable sends wait for the reconnect's outcome
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(reason, full=full, lost=lost), name="livekit_py.session.reconnect"
        )

    async def _reconnect(self, reason: int, *, full: bool, lost: int) -> None:
        """Resume (or rejoin) attempts on the retry schedule, until one works or it gives up.

        A resume the server refuses (its leave) turns the next attempts into full
        rejoins, as does a server that disabled resuming.
        """
        started = self.clock()
        attempt = 0  # attempts made
        slot = 0  # the schedule's step: attempts that found a listening server
        final_reason = lost
        failure = "no attempt made"
        rejoin_now = False
        refused = False
        while self._state is SessionState.RECONNECTING:
            if refused:
                # the last attempt found nothing listening: probe again soon, off the schedule
                delay: float | None = REFUSED_RETRY_DELAY
                if self.clock() - started + REFUSED_RETRY_DELAY > MAX_RECONNECT_DURATION:
                    delay = None
            else:
                delay = retry_delay(slot, self.clock() - started)
                slot += 1
            if delay is None:
                break
            refused = False
            if delay and not rejoin_now:
                await self.sleep(delay)
            rejoin_now = False
            if self._state is not SessionState.RECONNECTING:
                return
            if self._rejoin_requested:
                full, self._rejoin_requested = True, False
            attempt += 1
            kind = "rejoin" if full else "resume"
            try:
                if full:
                    await self._rejoin_once()
                else:
                    await self._resume_once(reason)
            except ResumeRefused as e:
                # the server no longer has our session: join it again
                failure = str(e)
                final_reason = e.leave.reason or _SIGNAL_CLOSE
                logger.info("resume attempt %d refused (%s); rejoining now", attempt, failure)
                full = rejoin_now = True
                continue
            except (_ResumeFailed, ConnectError, ConnectionError, OSError) as e:
                failure = str(e)
                refused = connection_refused(e)
                logger.info("%s attempt %d failed: %s", kind, attempt, failure)
                continue
            if self._state is SessionState.RECONNECTING:
                what = "rejoined" if full else "resumed"
                self._set_state(SessionState.CONNECTED, f"{what} (attempt {attempt})")
            return
        if self._state is SessionState.RECONNECTING:
            await self._shutdown(
                final_reason,
                f"gave up reconnecting after {attempt} attempt(s): {failure}",
                send_leave=False,
            )

    async def _resume_once(self, reason: int) -> None:
        """One resume: a new signal socket, SyncState, the media connection back up."""
        signal, engine = self._signal, self._engine
        if signal is None or engine is None:
            raise _ResumeFailed("the session has no signal client or engine")
        options = dataclasses.replace(
            self._options,
            reconnect=True,
            participant_sid=self._participant_sid,
            reconnect_reason=reason,
            connect_timeout=self._connect_timeout,
        )
        restarts = engine.subscriber_ice_restarts
        response = await signal.resume(self._url, self.token, options)
        if self.build_sync_state is not None:
            await signal.send(proto_rtc.SignalRequest(sync_state=self.build_sync_state(engine)))
        try:
            async with connect_timeout(self._connect_timeout):
                await engine.wait_connected()
        except asyncio.TimeoutError:
            raise _ResumeFailed(
                f"the media connection did not come back within {self._connect_timeout:g}s"
            ) from None
        # The server restarts ICE on the subscriber after every resume; media
        # flows again once we followed it (a server that does not: we go on).
        try:
            async with connect_timeout(ICE_RESTART_WAIT):
                await engine.wait_subscriber_ice_restart(restarts)
        except asyncio.TimeoutError:
            logger.debug("no ICE restart from the server within %gs", ICE_RESTART_WAIT)
        # The publisher's ICE is ours to restart, as the official SDKs do: the
        # server's agent for it may have given up during a media outage, and then
        # aioice's consent expires and the publisher closes for good.
        try:
            await engine.restart_publisher_ice()
        except ConnectionError as exc:
            raise _ResumeFailed(f"restarting the publisher's ICE failed: {exc}") from exc
        if not signal.connected:
            raise _ResumeFailed("the signal connection dropped again while resuming")
        await self._after_resume(engine, response)
        if self.on_resumed is not None:
            self.on_resumed()

    async def _rejoin_once(self) -> None:
        """One full reconnect: close both peer connections, join again, restore."""
        if self.on_rejoined is None:
            raise ResumeRefused(
                proto_rtc.LeaveRequest(reason=_SIGNAL_CLOSE, action=_LEAVE.DISCONNECT)
            )
        old_engine, old_signal = self._engine, self._signal
        self._engine = self._signal = None
        if old_engine is not None:
            old_engine.on_failure = None
            old_engine.begin_close()
        if old_signal is not None:
            old_signal.on_close = None
            await old_signal.close()
        if old_engine is not None:
            await old_engine.close()
            self._carry_over.extend(old_engine.undelivered_reliable())
        signal = self.signal_factory()
        options = dataclasses.replace(
            self._options,
            reconnect=False,
            participant_sid=None,
            reconnect_reason=None,
            connect_timeout=self._connect_timeout,
        )
        try:
            join = await signal.join(self._url, self.token, options)
        except BaseException:
            await signal.close()
            raise
        if self._state is not SessionState.RECONNECTING:
            await signal.close()
            raise _ResumeFailed("the session ended while rejoining")
        engine = self._adopt(join, signal, self._config)
        self.on_rejoined(join, signal, engine)
        engine.start(join, single_peer_connection=signal.single_peer_connection)
        try:
            async with connect_timeout(self._connect_timeout):
                await engine.wait_connected()
        except asyncio.TimeoutError:
            raise _ResumeFailed(
                f"the media connection was not established within {self._connect_timeout:g}s"
            ) from None
        if self.restore is not None:
            await self.restore(engine)
        # reliable packets accepted by the old engine whose bytes never left it
        while self._carry_over:
            await engine.send_data(self._carry_over[0], proto_models.DataPacket.Kind.RELIABLE)
            self._carry_over.pop(0)

    async def _after_resume(
        self, engine: RtcEngine, response: proto_rtc.ReconnectResponse | None
    ) -> None:
        """The session is resumed: resend the reliable packets the server did not get.

        The engine resumes its data path itself once they are resent; it raises
        ConnectionError (this resume attempt failed) if the channel is not open.
        """
        last_message_seq = response.last_message_seq if response is not None else 0
        resent = await engine.resend_reliable_after(last_message_seq)
        logger.debug("resumed; the server had up to %d, %d resent", last_message_seq, resent)

    def _schedule_disconnect(
        self, reason: int, why: str, *, grace: float = 0.0, rejoin: bool = False
    ) -> None:
        """Disconnect from inside a callback (server leave, lost socket, failed media).

        The server closes the media connections right after telling us why we
        are leaving, and the two can arrive in either order; a disconnect caused
        by a transport waits ``grace`` seconds so that the server's reason, if
        one is on its way, is the one reported.
        """
        if self._state not in (SessionState.CONNECTED, SessionState.RECONNECTING):
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
            if rejoin and not self._leave_arrived and self._state is SessionState.CONNECTED:
                # no leave from the server within the grace: try a full reconnect
                self._begin_reconnect(
                    why, proto_models.ReconnectReason.RR_UNKNOWN, full=True, lost=reason
                )
                return
            await self._shutdown(final if final is not None else reason, why, send_leave=False)

        self._disconnect_task = asyncio.get_running_loop().create_task(
            run(), name="livekit_py.session.disconnect"
        )
