"""The Opus encoder's expected loss, adapted from the receiver reports its sender gets.

The LiveKit server reports, in RTCP receiver reports (about one a second), the fraction
of our packets it lost since its previous report. aiortc's ``RTCRtpSender`` keeps the
latest one as the ``remote-inbound-rtp`` entry of ``getStats()``
(``RTCRemoteInboundRtpStreamStats.fractionLost``, which aiortc leaves in the RTCP
report's own unit: 1/256ths). :class:`LossFeedback` polls that entry and, on each new
report, moves the encoder's ``packet_loss_percent`` as :func:`expected_loss` says, so
that libopus adds in-band FEC (when it is on) in proportion to the loss seen.

:func:`expected_loss` is the whole policy, and pure: a smoothed estimate that follows a
rise in loss quickly and a fall slowly, kept within 0..:data:`MAX_EXPECTED_LOSS` %.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiortc import RTCRtpSender
from aiortc.stats import RTCRemoteInboundRtpStreamStats

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from .opus import OpusEncoder

__all__ = [
    "LOSS_FALL_WEIGHT",
    "LOSS_RISE_WEIGHT",
    "MAX_EXPECTED_LOSS",
    "REPORT_POLL_INTERVAL",
    "LossFeedback",
    "expected_loss",
    "report_fraction_lost",
]

logger = get_logger("webrtc.audio_feedback")

MAX_EXPECTED_LOSS = 30.0
"""The highest loss (percent) the encoder is told to expect; FEC costs bits beyond that."""
LOSS_RISE_WEIGHT = 0.5
"""How much of the way to a report above the estimate one report moves it."""
LOSS_FALL_WEIGHT = 0.1
"""How much of the way to a report below the estimate one report moves it."""
REPORT_POLL_INTERVAL = 1.0
"""How often (seconds) the sender's stats are read for a new receiver report."""


def expected_loss(previous: float, fraction_lost: float) -> float:
    """The next expected loss, in percent, after a report of ``fraction_lost``.

    Args:
        previous: The estimate so far, in percent (0 before any report).
        fraction_lost: The reported fraction of packets lost, 0..1 (out-of-range
            values are clamped).

    Returns:
        The estimate moved towards the report, by :data:`LOSS_RISE_WEIGHT` of the way
        when the report is higher and :data:`LOSS_FALL_WEIGHT` when lower, within
        0..:data:`MAX_EXPECTED_LOSS`.
    """
    observed = 100.0 * min(1.0, max(0.0, float(fraction_lost)))
    weight = LOSS_RISE_WEIGHT if observed > previous else LOSS_FALL_WEIGHT
    estimate = previous + weight * (observed - previous)
    return min(MAX_EXPECTED_LOSS, max(0.0, estimate))


def report_fraction_lost(stats: RTCRemoteInboundRtpStreamStats) -> float:
    """The fraction (0..1) of packets lost that a ``remote-inbound-rtp`` entry reports.

    aiortc (1.14 to 1.16) stores the RTCP field as it came, an integer in 1/256ths;
    a float is taken to be a fraction already (the W3C definition).
    """
    value = stats.fractionLost
    if isinstance(value, int):
        return value / 256.0
    return float(value)


class LossFeedback:
    """Keeps ``encoder.packet_loss_percent`` in step with the receiver reports of ``sender``.

    Args:
        sender: The aiortc sender that sends ``encoder``'s packets.
        encoder: Our Opus encoder.
        clock: When to poll (default: the running loop's clock).
        interval: Seconds between two reads of the sender's stats.

    Raises:
        ValueError: For an interval that is not positive.
    """

    def __init__(
        self,
        sender: RTCRtpSender,
        encoder: OpusEncoder,
        *,
        clock: MediaClock | None = None,
        interval: float = REPORT_POLL_INTERVAL,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self._sender = sender
        self._encoder = encoder
        self._clock = resolve_clock(clock)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._last: RTCRemoteInboundRtpStreamStats | None = None
        self.estimate = float(encoder.packet_loss_percent)
        """The expected loss so far, in percent."""
        self.reports = 0
        """Receiver reports taken into account."""

    @property
    def running(self) -> bool:
        """Whether the polling task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling (on the running loop); a second call does nothing."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="livekit_py.audio.loss_feedback"
            )

    async def aclose(self) -> None:
        """Stop polling; the encoder keeps its last setting."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def poll(self) -> bool:
        """Read the sender's stats once; adapt the encoder if a new report is there.

        Returns:
            Whether there was a new receiver report.
        """
        report = await self._sender.getStats()
        latest = next(
            (s for s in report.values() if isinstance(s, RTCRemoteInboundRtpStreamStats)),
            None,
        )
        if latest is None or latest is self._last:
            return False
        self._last = latest
        self.reports += 1
        self.estimate = expected_loss(self.estimate, report_fraction_lost(latest))
        percent = round(self.estimate)
        if percent != self._encoder.packet_loss_percent:
            logger.debug(
                "expected audio loss %d%% -> %d%% (reported %.1f%%)",
                self._encoder.packet_loss_percent,
                percent,
                100 * report_fraction_lost(latest),
            )
            self._encoder.packet_loss_percent = percent
        return True

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a closing transport; the next poll or aclose() decides
                logger.debug("reading the audio sender's stats failed", exc_info=True)
