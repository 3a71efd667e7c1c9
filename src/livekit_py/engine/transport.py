"""One aiortc peer connection as LiveKit uses it (publisher or subscriber).

Everything that changes the connection's descriptions or remote candidates runs
in the order it arrived from the server, one step at a time, and offers we make
are serialized: a new negotiation never starts before the previous answer has
been applied. Requests to negotiate that arrive while one is in flight are
folded into one follow-up negotiation.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp

from .._compat import timeout
from ..log import get_logger
from ..webrtc.aiortc_adapter import (
    adopt_remote_ice_restart,
    disable_consent_checks,
    enlarge_receive_buffers,
    ice_connections,
    observe_ice_checks,
    prompt_remote_nomination,
    read_queued_datagrams,
    restart_local_ice,
    retransmit_sctp_now,
)
from ..webrtc.data_channel_counts import DataChannelCounter
from ..webrtc.ice_checks import IceCheckLog
from .offer_filter import (
    RejectedSection,
    offer_for_aiortc,
    reject_in_answer,
    unreceivable_sections,
)

logger = get_logger("engine.transport")

TransportName = Literal["publisher", "subscriber"]

# How long we wait for the server's answer to one of our offers.
ANSWER_TIMEOUT = 15.0
# Kernel receive buffer asked for on each ICE UDP socket. Python reads one
# datagram per event-loop turn, so what the server sends while the loop is busy
# queues in the kernel, up to what our SCTP receive window (aiortc's 1 MiB) lets
# it have in flight: with small lossy messages that is ~4,500 datagrams of ~1.3
# KiB of kernel memory each. The default buffer (net.core.rmem_default, often
# 208 KiB: a few hundred datagrams) overflowed and lost up to a third of a lossy
# burst. Linux doubles the request and caps it at twice net.core.rmem_max.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
# At most this many datagrams read from one socket in one event-loop turn
# (asyncio reads one; see read_queued_datagrams in the adapter).
UDP_READS_PER_TURN = 64


def parse_candidate_init(candidate_init: str) -> RTCIceCandidate | None:
    """Turn the server's trickled ``RTCIceCandidateInit`` JSON into an aiortc candidate.

    Returns None for the end-of-candidates marker (an empty candidate line).
    LiveKit always bundles, so the candidate is pinned to the first m-line,
    which carries the bundle's transport in aiortc.
    """
    try:
        init: dict[str, Any] = json.loads(candidate_init)
    except json.JSONDecodeError as e:
        raise ValueError(f"trickled candidate is not JSON: {candidate_init!r}") from e
    line = str(init.get("candidate") or "").strip()
    if not line:
        return None
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    candidate = candidate_from_sdp(line)
    candidate.sdpMid = None
    candidate.sdpMLineIndex = 0
    return candidate


class PeerTransport:
    """A publisher or subscriber RTCPeerConnection with ordered, serialized negotiation."""

    def __init__(self, name: TransportName, configuration: RTCConfiguration) -> None:
        self.name: TransportName = name
        self.pc = RTCPeerConnection(configuration)
        self._ops: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(
            self._run_ops(), name=f"livekit_py.{name}.ops"
        )
        self._pending_candidates: list[RTCIceCandidate | None] = []
        self._negotiation_lock = asyncio.Lock()
        self._negotiation_needed = False
        self._answer: asyncio.Future[str] | None = None
        self._offer_id = 0
        self._connected = asyncio.Event()
        self._closed = False
        self.closing = False
        """Set when the session is ending: failures are then logged at DEBUG only."""
        self._sdp_lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._candidate_tasks: set[asyncio.Task[None]] = set()
        self.on_state: Callable[[str], None] | None = None
        """Called with aiortc's connectionState on every change."""
        self.on_answer: Callable[[str], None] | None = None
        """Called with the SDP of each remote answer once it has been applied."""
        self.rejected: tuple[RejectedSection, ...] = ()
        """The sections of the latest answered offer that the answer rejected."""
        self.ice_restarts = 0
        """How many ICE restarts of the server this connection has followed."""
        self._ice_restarted = asyncio.Event()
        self.ice_checks = IceCheckLog()
        """The connectivity and consent checks of this connection's ICE agent."""
        self.data_channels = DataChannelCounter()
        """This connection's data channels and what went through them (the ones the
        remote side opens are counted from the start; count ours as they are created)."""
        self.pc.on("datachannel", self.data_channels.watch)

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            state = self.pc.connectionState
            logger.debug("%s connection state: %s", self.name, state)
            if state == "connected":
                self._connected.set()
            else:
                self._connected.clear()
            if self.on_state is not None:
                self.on_state(state)

    # -- ordered operations ---------------------------------------------------

    def _enqueue(self, op: Callable[[], Awaitable[None]]) -> None:
        if not self._closed:
            self._ops.put_nowait(op)

    async def _sdp_call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run one description change to completion, even if our caller is cancelled.

        aiortc gathers candidates and starts ICE inside set*Description; cutting
        that short leaves aioice's STUN queries and checks running with nobody to
        stop them. So the change runs in its own task (one at a time), and
        :meth:`close` waits for it before closing the connection.
        """
        if self._closed:
            raise ConnectionError(f"the {self.name} transport is closed")

        async def locked() -> Any:
            async with self._sdp_lock:
                result = await make()
                # the ICE agents a description created are timed before ICE starts,
                # and the sockets its gathering opened get room for bursts and
                # are read as fast as datagrams arrive
                for connection in ice_connections(self.pc):
                    observe_ice_checks(connection, self.ice_checks)
                    enlarge_receive_buffers(connection, UDP_RECEIVE_BUFFER)
                    read_queued_datagrams(connection, UDP_READS_PER_TURN)
                return result

        task = asyncio.ensure_future(locked())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _run_ops(self) -> None:
        while True:
            op = await self._ops.get()
            if op is None:
                return
            try:
                await op()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closed or self.closing:
                    logger.debug(
                        "%s: server message dropped while closing", self.name, exc_info=True
                    )
                else:
                    logger.exception("%s: applying a server message failed", self.name)

    # -- server-initiated -------------------------------------------------------

    def handle_offer(self, sdp: str, send_answer: Callable[[str], Awaitable[None]]) -> None:
        """Queue the server's offer; the answer is sent through ``send_answer``.

        Audio/video sections with no codec aiortc can receive are answered
        rejected (port 0) instead of failing the whole offer; they are in
        :attr:`rejected` while ``send_answer`` runs.
        """

        async def op() -> None:
            logger.debug("%s remote offer SDP:\n%s", self.name, sdp)
            await self._wait_settled()
            try:
                rejected = unreceivable_sections(sdp)
            except Exception:  # aiortc's parser raises all sorts on bad SDP
                rejected = []  # not SDP we can read: aiortc says what is wrong with it below
            for section in rejected:
                logger.warning("%s: rejecting an m-line: %s", self.name, section.reason)
            offer = RTCSessionDescription(sdp=offer_for_aiortc(sdp, rejected), type="offer")
            await self._sdp_call(lambda: self.pc.setRemoteDescription(offer))
            # we answer, so we are the controlled agent: have the server nominate at once
            for connection in ice_connections(self.pc):
                prompt_remote_nomination(connection)
            await self._flush_candidates()

            async def answer() -> None:
                await self.pc.setLocalDescription(await self.pc.createAnswer())

            await self._sdp_call(answer)
            local = reject_in_answer(self.pc.localDescription.sdp, rejected)
            logger.debug("%s local answer SDP:\n%s", self.name, local)
            self.rejected = tuple(rejected)
            await send_answer(local)
            await self._follow_ice_restart(sdp)

        self._enqueue(op)

    def restart_local_ice(self) -> bool:
        """New local ICE credentials: the next offer restarts ICE (see the adapter).

        Returns:
            False (and nothing changed) if ICE was never started on this connection.
        """
        connections = ice_connections(self.pc)
        if self.pc.remoteDescription is None or not connections:
            return False
        for connection in connections:
            restart_local_ice(connection)
        logger.info("%s: restarting ICE with new local credentials", self.name)
        return True

    async def _follow_ice_restart(self, sdp: str) -> None:
        """If the server's description restarted ICE (new ufrag/pwd), make aioice follow."""
        media = SessionDescription.parse(sdp).media
        ice = media[0].ice if media else None
        if ice is None or not ice.usernameFragment or not ice.password:
            return
        restarted = False
        path_back = False
        for connection in ice_connections(self.pc):
            if connection.remote_username in (None, ice.usernameFragment):
                continue
            restarted = True
            renominated = await adopt_remote_ice_restart(
                connection, ice.usernameFragment, ice.password
            )
            path_back = path_back or renominated > 0
            logger.info(
                "%s: followed the server's ICE restart (%d pair(s) nominated again)",
                self.name,
                renominated,
            )
        if path_back and self.pc.sctp is not None and retransmit_sctp_now(self.pc.sctp):
            # data held during an outage goes now, not at SCTP's next timer (up to 1+ s)
            logger.debug("%s: retransmitted the data outstanding since the outage", self.name)
        if restarted:
            self.ice_restarts += 1
            self._ice_restarted.set()

    async def wait_ice_restart(self, after: int) -> None:
        """Wait until more than ``after`` remote ICE restarts have been followed."""
        while self.ice_restarts <= after:
            self._ice_restarted.clear()
            await self._ice_restarted.wait()

    def handle_answer(self, sdp: str, *, on_applied: Callable[[], None] | None = None) -> None:
        """Queue the server's answer to our pending offer.

        ``on_applied`` runs as soon as aiortc has applied the answer, in the same
        step: before the task aiortc schedules to start the senders and receivers
        of its m-lines runs (so before any packet reaches a receiver it starts).
        """

        async def apply(desc: RTCSessionDescription) -> None:
            await self.pc.setRemoteDescription(desc)
            # aiortc 1.14-1.16 start new m-lines in a task scheduled by
            # setRemoteDescription, which has not run yet: nothing awaited since
            if on_applied is not None:
                try:
                    on_applied()
                except Exception:
                    logger.exception("%s: following the applied answer failed", self.name)

        async def op() -> None:
            logger.debug("%s remote answer SDP:\n%s", self.name, sdp)
            fut = self._answer
            if fut is None or fut.done():
                logger.warning("%s: answer with no offer pending, ignored", self.name)
                return
            try:
                desc = RTCSessionDescription(sdp=sdp, type="answer")
                await self._sdp_call(lambda: apply(desc))
                await self._flush_candidates()
            except Exception as e:
                if not fut.done():
                    fut.set_exception(e)
                raise
            if self.on_answer is not None:
                try:
                    self.on_answer(sdp)
                except Exception:
                    logger.exception("%s: following the answer failed", self.name)
            await self._follow_ice_restart(sdp)  # the answer to our ICE-restart offer
            if not fut.done():
                fut.set_result(sdp)

        self._enqueue(op)

    def add_candidate(self, candidate_init: str, final: bool = False) -> None:
        """Apply a trickled remote candidate, or keep it until a remote description exists.

        Candidates are not queued behind description changes: a renegotiation
        may be waiting for the current ICE/DTLS setup to finish, which may need
        exactly these candidates.
        """
        candidate = parse_candidate_init(candidate_init) if candidate_init else None
        if candidate is not None:
            self._pending_candidates.append(candidate)
        if final or (candidate_init and candidate is None):
            self._pending_candidates.append(None)  # end of candidates
        if self.pc.remoteDescription is not None and not self._closed:
            task = asyncio.ensure_future(self._flush_candidates())
            self._candidate_tasks.add(task)
            task.add_done_callback(self._candidate_done)

    def _candidate_done(self, task: asyncio.Task[None]) -> None:
        self._candidate_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("%s: applying a candidate failed: %s", self.name, task.exception())

    async def _wait_settled(self) -> None:
        """Wait while ICE/DTLS of the previous negotiation is still being set up.

        aiortc (1.14 to 1.16) starts the senders and receivers of new m-lines
        only if the DTLS transport is already connected when the description is
        applied; while it is still connecting they are skipped for good, and
        the new track never sends or receives. So a renegotiation waits for the
        connection to settle (or for SETTLE_WAIT, after which it goes ahead).
        """
        if self.pc.connectionState != "connecting":
            return
        try:
            async with timeout(SETTLE_WAIT):
                await self._connected.wait()
        except asyncio.TimeoutError:
            logger.debug("%s: connection still not settled, negotiating anyway", self.name)

    async def _flush_candidates(self) -> None:
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._sdp_call(functools.partial(self.pc.addIceCandidate, candidate))

    # -- client-initiated -------------------------------------------------------

    async def negotiate(self, send_offer: Callable[[str, int], Awaitable[None]]) -> None:
        """Make an offer, send it and wait for the answer to be applied.

        Concurrent calls coalesce: each returns once a negotiation that started
        after its call has completed.
        """
        self._negotiation_needed = True
        async with self._negotiation_lock:
            while self._negotiation_needed and not self._closed:
                self._negotiation_needed = False
                await self._offer_once(send_offer)

    async def _offer_once(self, send_offer: Callable[[str, int], Awaitable[None]]) -> None:
        await self._wait_settled()
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()

        async def offer() -> None:
            await self.pc.setLocalDescription(await self.pc.createOffer())

        await self._sdp_call(offer)
        local = self.pc.localDescription
        self._offer_id += 1
        logger.debug("%s local offer SDP:\n%s", self.name, local.sdp)
        await send_offer(local.sdp, self._offer_id)
        try:
            async with timeout(ANSWER_TIMEOUT):
                await asyncio.shield(self._answer)
        except asyncio.TimeoutError:
            raise ConnectionError(
                f"the server did not answer the {self.name} offer within {ANSWER_TIMEOUT:g}s"
            ) from None
        finally:
            self._answer = None

    # -- state --------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self.pc.connectionState == "connected"

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def close(self) -> None:
        """Close the connection once in-flight description changes have finished."""
        if self._closed:
            return
        self._closed = self.closing = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(f"the {self.name} transport closed"))
            self._answer.exception()  # retrieved: nobody may be waiting any more
        self._worker.cancel()
        with contextlib.suppress(BaseException):
            await self._worker
        if self._candidate_tasks:
            await asyncio.wait(set(self._candidate_tasks), timeout=CLOSE_WAIT)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=CLOSE_WAIT)
        # a consent loop started by a late ICE completion must not outlive the connection
        for connection in ice_connections(self.pc):
            disable_consent_checks(connection)
        with contextlib.suppress(Exception):
            await self.pc.close()


# How long a renegotiation waits for the previous ICE/DTLS setup to finish.
SETTLE_WAIT = 10.0

# How long close() waits for a description change (candidate gathering is
# bounded by aioice at 5 s) before closing the connection anyway.
CLOSE_WAIT = 6.0
