"""An adaptive jitter buffer for Opus RTP audio: the buffer decides, the consumer decodes.

:class:`AudioJitterBuffer` is pure bookkeeping: no sockets, no asyncio, no decoder, no clock
of its own. Time comes only from the ``arrival`` and ``now`` arguments (seconds on any
monotonic origin, the same for both).

Input
    :meth:`AudioJitterBuffer.push` takes one RTP packet: its 16-bit sequence number, 32-bit
    timestamp, Opus payload and arrival time. Sequence numbers and timestamps are unwrapped
    to unbounded ("extended") integers, equal to the RTP values modulo 2**16 and 2**32.
    A duplicate is dropped; a packet whose slot was already decided is dropped as late; a
    packet that arrives before its slot (reordered, or simply early) is used. A jump of the
    sequence number (more than 3000 ahead or 100 behind, RFC 3550 A.1) or of the transit
    time (more than 3 s: the timestamps no longer follow our clock) is held until the next
    packet confirms it (a new SSRC or a restarted sender), then the buffer starts a new
    stream; an unconfirmed jump is discarded. :meth:`reset` starts a new stream at once (the
    consumer calls it when the SSRC changes). The packet duration is learned from the
    timestamp steps between consecutive packets (2.5 to 120 ms, usually 20 ms); a consumer
    that knows it (``media.libopus.packet_samples``) passes ``samples=``, and
    ``fec=packet_has_fec(payload)`` for exact FEC decisions.

Output
    :meth:`AudioJitterBuffer.pop` is driven by the consumer's clock: ``pop(now)`` returns
    every :class:`Decision` whose output is due at ``now``, in order; nothing when called
    early, several when called late. Decisions tile two time lines without gap or overlap:

    - the stream: ``timestamp`` is the extended RTP timestamp of the first stream sample a
      decision covers and ``samples`` how many it covers, so each decision starts where the
      previous one ended (``timestamp + samples``) until a decision with ``new_stream``
      (the silence before a stream's first packet, inserted, still has the previous
      stream's end as its timestamp);
    - the output: ``output_samples`` is exactly how many samples the consumer plays for it,
      and ``due`` (the local time its output starts) is the previous ``due`` plus the
      previous ``output_samples / clock_rate``.

    The actions (:class:`Action`):

    - ``PLAY``: decode ``payload``.
    - ``FEC``: the packet of this slot is missing and the next one is here: recover the slot
      from the next packet's in-band FEC, ``decode_fec(payload, samples)``; the next decision
      plays that packet normally. It is emitted whenever the next packet is buffered, unless
      the buffer was built with ``fec=False`` or the packet was pushed with ``fec=False``; a
      consumer that did not tell (``fec=None``) checks ``packet_has_fec(payload)`` and
      conceals instead when it is false.
    - ``CONCEAL``: no audio for this slot (lost, or not arrived yet): packet loss
      concealment, ``conceal(output_samples)``. ``run`` counts the consecutive CONCEAL
      decisions up to this one and ``run_samples`` their output, so the consumer can fade
      to silence after about 100 ms.
    - ``SILENCE``: nothing was sent for this span (before the first packet, a DTX gap, a
      paused sender): output silence, or comfort noise (``conceal()`` after a DTX packet,
      which libopus turns into comfort noise).

    A decision with ``samples == 0`` is *inserted*: it covers no stream time (waiting for a
    late packet, pre-roll before a stream starts, or growing the delay). When
    ``output_samples != samples`` the buffer asks for time scaling: the consumer decodes as
    usual and fits the PCM to ``output_samples`` (:func:`.time_stretch.fit_length`);
    ``output_samples == 0`` means decode (to keep the decoder's state) and play nothing.
    CONCEAL and SILENCE outputs are multiples of 2.5 ms, as libopus requires for PLC.

    A consumer::

        for d in buffer.pop(clock.now()):
            if d.new_stream:
                decoder.reset()
            if d.action is Action.PLAY:
                pcm = decoder.decode(d.payload)
            elif d.action is Action.FEC:
                pcm = decoder.decode_fec(d.payload, d.samples)
            elif d.action is Action.CONCEAL:
                pcm = decoder.conceal(d.output_samples) if d.output_samples else EMPTY
            else:
                pcm = zeros(d.output_samples)
            if len(pcm) != d.output_samples:
                pcm = fit_length(pcm, d.output_samples)
            play(pcm)

Delay policy
    Each packet's *transit* is ``arrival - timestamp / clock_rate``; the fastest packet of
    the last 2 s (the smallest transit) is the reference, and a packet's *relative delay* is
    how much later than that it came. The *jitter* is a peak hold of the relative delays:
    it follows a larger one at once and, after 2 s without one, halves every
    ``jitter_half_life`` seconds. The target delay is ``min_delay`` (one packet by default)
    plus the jitter, plus one more packet while losses were seen in the last
    ``loss_memory`` seconds (so the next packet is there in time to give its FEC; not with
    ``fec=False``, nor after the consumer pushed a packet with ``fec=False``), at most
    ``max_delay``. The *current delay* is how long the fastest packet waits between arrival
    and playout.

    The buffer moves the current delay to the target with the cheapest means first:

    - a missing packet with nothing newer buffered is waited for: inserted CONCEAL (or
      SILENCE after a quiet packet) of one packet each, up to ``max_delay``; beyond it the
      slot is concealed and the stream moves on (after 200 ms of such concealment, SILENCE:
      the sender has stopped). A late packet is thus played later, not lost, and the delay
      grows by what it lacked;
    - a stream starts at its oldest packet that is not already later than the target (the
      older ones are discarded), after a pre-roll of inserted SILENCE up to the target;
    - DTX gaps are stretched or shortened freely, and the concealment of lost slots is
      shortened (down to nothing: after a long wait, the lost slots are skipped);
    - a quiet packet (``silent=True``, or a payload of at most 2 bytes: an Opus DTX frame)
      may be dropped or doubled;
    - other packets are time-scaled by at most a quarter of their length (half when more
      than four packets above the target).

    The delay is corrected when it misses the target by more than a quarter of a packet.

Stats
    :meth:`stats` returns a :class:`JitterBufferStats`, named after W3C
    ``RTCInboundRtpStreamStats``.

Cost: O(1) per packet and per decision (a scan over the buffered packets only when a packet
is missing or the buffer overflows); nothing is allocated per packet but its record and
per decision but the :class:`Decision`.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, replace

from .rtp_numbers import wrapped_delta

__all__ = ["Action", "AudioJitterBuffer", "Decision", "JitterBufferStats", "PushResult"]

_SEQ_MASK = (1 << 16) - 1
_TS_MASK = (1 << 32) - 1
# RFC 3550 A.1: a sequence number further ahead or behind than these starts a new stream
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
# played sequence numbers remembered to tell a duplicate from a late packet
_HISTORY = 64
_HISTORY_MASK = (1 << _HISTORY) - 1
# seconds over which the fastest packet is the delay reference
_BASE_WINDOW = 2.0
# seconds a jitter peak is held before it decays
_JITTER_HOLD = 2.0
# a transit time that jumps by more than this many seconds: the timestamps follow
# another clock (a restarted sender)
_RESTART_TRANSIT = 3.0
# seconds of concealment with nothing buffered after which the stream counts as quiet
_QUIET_AFTER = 0.2
# Opus packet durations, in ms
_DURATIONS_MS = (2.5, 5, 10, 20, 40, 60, 80, 100, 120)


class Action(enum.Enum):
    """What the consumer does for one :class:`Decision` (see the module docstring)."""

    PLAY = "play"
    FEC = "fec"
    CONCEAL = "conceal"
    SILENCE = "silence"


class PushResult(enum.Enum):
    """What :meth:`AudioJitterBuffer.push` did with a packet."""

    BUFFERED = "buffered"
    """Kept for its slot."""
    DUPLICATE = "duplicate"
    """Dropped: the same sequence number is buffered or was played."""
    LATE = "late"
    """Dropped: its slot was already decided."""
    HELD = "held"
    """Held: it jumps away from the stream; the next packet tells whether a new stream
    starts with it."""
    RESTARTED = "restarted"
    """It confirmed the held packet: a new stream starts with both."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One playout decision; see the module docstring for how to carry it out.

    Attributes:
        action: What to do.
        timestamp: Extended RTP timestamp of the first stream sample covered.
        samples: Stream samples covered (0: an inserted decision).
        output_samples: Samples the consumer outputs for it.
        due: Local time at which its output starts.
        payload: The packet to decode (PLAY) or whose FEC to decode (FEC), else None.
        seq: Extended sequence number of the slot (for FEC the missing packet's; the
            payload is the next one's), None for SILENCE and inserted CONCEAL.
        run: For CONCEAL, the number of consecutive CONCEAL decisions ending with this
            one (1 for the first); 0 otherwise.
        run_samples: For CONCEAL, the output samples of that run, this one included.
        new_stream: The first decision of a stream (its lead-in silence excluded): reset
            the decoder.
    """

    action: Action
    timestamp: int
    samples: int
    output_samples: int
    due: float
    payload: bytes | None = None
    seq: int | None = None
    run: int = 0
    run_samples: int = 0
    new_stream: bool = False

    @property
    def inserted(self) -> bool:
        """True when the decision covers no stream time."""
        return self.samples == 0

    @property
    def end_timestamp(self) -> int:
        """The timestamp the next decision of the stream starts at."""
        return self.timestamp + self.samples


@dataclass(slots=True)
class JitterBufferStats:
    """Counters of an :class:`AudioJitterBuffer`, after W3C ``RTCInboundRtpStreamStats``.

    Attributes:
        packets_received: Packets pushed (duplicates, late and held ones included).
        packets_lost: Sequence numbers missing at their slot (concealed or recovered by
            FEC; a packet dropped for overflow is not lost but discarded).
        packets_late: Packets that arrived after their slot was decided.
        packets_duplicated: Duplicates dropped.
        packets_discarded: Packets received but never played: late, overflowed, skipped
            at the start of a stream, left over at a restart, or jumps never confirmed.
        packets_overflowed: Oldest packets dropped because the buffer was full.
        packets_played: PLAY decisions.
        fec_recovered: FEC decisions.
        concealed_samples: Output samples of CONCEAL decisions (not of SILENCE: DTX
            comfort noise is not counted as concealment here).
        silent_concealed_samples: Those of them that follow a quiet packet.
        concealment_events: Runs of consecutive CONCEAL decisions.
        silence_samples: Output samples of SILENCE decisions.
        inserted_samples_for_deceleration: Samples added to PLAY and FEC output by
            stretching.
        removed_samples_for_acceleration: Samples removed from PLAY and FEC output by
            compression or dropping.
        jitter_buffer_delay: Sum over PLAY and FEC output samples of the seconds their
            packet waited in the buffer (arrival to the ``pop`` that emitted it).
        jitter_buffer_emitted_count: PLAY and FEC output samples.
        jitter_buffer_target_delay: Sum over those samples of the target delay (seconds)
            when they were emitted.
        target_delay: The target delay now, in seconds.
        current_delay: The current delay (the fastest recent packet's wait), in seconds.
        jitter: RFC 3550 interarrival jitter, in seconds.
        buffered_packets: Packets waiting for their slot.
        stream_resets: New streams started after the first (restarts and :meth:`reset`).
    """

    packets_received: int = 0
    packets_lost: int = 0
    packets_late: int = 0
    packets_duplicated: int = 0
    packets_discarded: int = 0
    packets_overflowed: int = 0
    packets_played: int = 0
    fec_recovered: int = 0
    concealed_samples: int = 0
    silent_concealed_samples: int = 0
    concealment_events: int = 0
    silence_samples: int = 0
    inserted_samples_for_deceleration: int = 0
    removed_samples_for_acceleration: int = 0
    jitter_buffer_delay: float = 0.0
    jitter_buffer_emitted_count: int = 0
    jitter_buffer_target_delay: float = 0.0
    target_delay: float = 0.0
    current_delay: float = 0.0
    jitter: float = 0.0
    buffered_packets: int = 0
    stream_resets: int = 0


class _Packet:
    __slots__ = ("arrival", "fec", "payload", "samples", "silent", "ts")

    def __init__(
        self, ts: int, payload: bytes, arrival: float, samples: int, silent: bool, fec: bool
    ) -> None:
        self.ts = ts
        self.payload = payload
        self.arrival = arrival
        self.samples = samples  # 0: unknown
        self.silent = silent
        self.fec = fec


class _Held:
    """A packet that jumped away from the stream, waiting for confirmation."""

    __slots__ = ("arrival", "fec", "payload", "samples", "seq", "silent", "timestamp")

    def __init__(
        self,
        seq: int,
        timestamp: int,
        payload: bytes,
        arrival: float,
        samples: int | None,
        silent: bool,
        fec: bool | None,
    ) -> None:
        self.seq = seq
        self.timestamp = timestamp
        self.payload = payload
        self.arrival = arrival
        self.samples = samples
        self.silent = silent
        self.fec = fec

    def continued_by(self, seq: int, timestamp: int, arrival: float, rate: int) -> bool:
        step = wrapped_delta(seq, self.seq, 16)
        if step == 0 or abs(step) > _MAX_MISORDER:
            return False
        advance = wrapped_delta(timestamp, self.timestamp, 32)
        return abs((arrival - self.arrival) - advance / rate) <= _RESTART_TRANSIT


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


class AudioJitterBuffer:
    """Adaptive jitter buffer for one Opus RTP stream (see the module docstring).

    Args:
        clock_rate: RTP clock rate in Hz (48000 for Opus).
        min_delay: The smallest target delay in seconds; None: one packet duration.
        max_delay: The largest target delay, and how long a missing packet is waited
            for, in seconds.
        capacity: Most packets kept; beyond, the oldest is dropped. None: twice
            ``max_delay`` of 10 ms packets.
        fec: Emit FEC decisions (and keep one more packet while losses are seen).
        packet_duration: Packet duration in seconds assumed until one is learned.
        jitter_half_life: Seconds in which the jitter estimate halves once calm.
        loss_memory: Seconds after a loss during which the target keeps one more packet.

    Raises:
        ValueError: If an argument is out of range.
    """

    def __init__(
        self,
        *,
        clock_rate: int = 48000,
        min_delay: float | None = None,
        max_delay: float = 0.5,
        capacity: int | None = None,
        fec: bool = True,
        packet_duration: float = 0.02,
        jitter_half_life: float = 4.0,
        loss_memory: float = 20.0,
    ) -> None:
        if not isinstance(clock_rate, int) or clock_rate < 400:
            raise ValueError(f"clock_rate must be an int of at least 400 Hz, got {clock_rate!r}")
        max_delay = _finite("max_delay", max_delay)
        if max_delay <= 0:
            raise ValueError(f"max_delay must be positive, got {max_delay}")
        if min_delay is not None:
            min_delay = _finite("min_delay", min_delay)
            if not 0 <= min_delay <= max_delay:
                raise ValueError(
                    f"min_delay must be in [0, max_delay={max_delay}], got {min_delay}"
                )
        if capacity is None:
            capacity = 2 * math.ceil(max_delay / 0.01)
        if not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"capacity must be an int of at least 2 packets, got {capacity!r}")
        packet_duration = _finite("packet_duration", packet_duration)
        if not 0 < packet_duration <= 0.12:
            raise ValueError(f"packet_duration must be in (0, 0.12] s, got {packet_duration}")
        jitter_half_life = _finite("jitter_half_life", jitter_half_life)
        if jitter_half_life <= 0:
            raise ValueError(f"jitter_half_life must be positive, got {jitter_half_life}")
        loss_memory = _finite("loss_memory", loss_memory)
        if loss_memory < 0:
            raise ValueError(f"loss_memory must not be negative, got {loss_memory}")

        self._rate = clock_rate
        self._quantum = max(1, round(clock_rate / 400))  # 2.5 ms
        self._durations = frozenset(round(clock_rate * ms / 1000) for ms in _DURATIONS_MS)
        self._max_frame = round(clock_rate * 0.12)
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._capacity = capacity
        self._fec = fec
        self._half_life = jitter_half_life
        self._loss_memory = loss_memory
        self._frame = self._quantize(round(packet_duration * clock_rate)) or self._quantum
        self._frame_candidate = 0
        self._frame_learned = False  # from a timestamp step or a consumer's samples

        self._stats = JitterBufferStats()
        self._now = -math.inf  # the latest time seen
        # output clock: decision outputs are laid end to end from the first pop
        self._origin: float | None = None
        self._out = 0
        # jitter peak hold, shared by the streams of this buffer (same network path)
        self._peak = 0.0
        self._peak_time = -math.inf
        self._last_loss = -math.inf
        self._fec_seen = True  # as the consumer last told: packets carry FEC
        self._run = 0
        self._run_samples = 0
        self._cursor = 0  # extended timestamp of the next stream sample
        self._last_end = 0  # where the last decision ended on its stream's time line
        self._new_stream()

    # -- stream state ----------------------------------------------------------------

    def _new_stream(self) -> None:
        self._packets: dict[int, _Packet] = {}
        self._held: _Held | None = None
        self._anchored = False  # unwrapping references set
        self._top_seq = 0  # highest extended seq seen, and its timestamp
        self._top_ts = 0
        self._ts0 = 0  # timestamp origin of the transit times
        self._base: deque[tuple[float, float]] = deque()  # (arrival, transit), rising
        self._last_transit: float | None = None
        self._overflow_seq: int | None = None  # seqs up to this were dropped, not lost
        self._started = False  # the cursor is on this stream
        self._expected = 0  # extended seq of the next slot
        self._history = 0  # bit i: seq expected-1-i was played
        self._played = False  # a packet of this stream was played
        self._quiet = False  # the last packet was quiet, or concealment ran long
        self._flag_new_stream = False

    def reset(self) -> None:
        """Forget the stream (a new SSRC): buffered packets are discarded, and the next
        packet starts a new stream. The output clock and the stats go on."""
        self._stats.packets_discarded += len(self._packets) + (self._held is not None)
        if self._anchored:
            self._stats.stream_resets += 1
        self._new_stream()
        self._run = 0
        self._run_samples = 0

    # -- input -----------------------------------------------------------------------

    def push(
        self,
        seq: int,
        timestamp: int,
        payload: bytes,
        arrival: float,
        *,
        samples: int | None = None,
        silent: bool | None = None,
        fec: bool | None = None,
    ) -> PushResult:
        """Take one RTP packet.

        Args:
            seq: The RTP sequence number (0..65535).
            timestamp: The RTP timestamp (0..2**32-1), in ``clock_rate`` units.
            payload: The Opus payload.
            arrival: When it arrived, in seconds on the clock ``pop`` is given.
            samples: Its duration in samples, when the consumer knows it.
            silent: It carries silence (e.g. RFC 6464 audio level below -50 dBov, or the
                VAD bit off): it may be dropped to shorten the delay. None: true for
                payloads of at most 2 bytes (Opus DTX).
            fec: Whether it carries in-band FEC (``packet_has_fec``); None: unknown, FEC
                decisions are made from it (unless it is a DTX frame of at most 2 bytes)
                and the consumer checks.

        Returns:
            What happened to it.

        Raises:
            ValueError: If an argument is out of range.
        """
        if not 0 <= seq <= _SEQ_MASK:
            raise ValueError(f"seq must be a 16-bit RTP sequence number, got {seq!r}")
        if not 0 <= timestamp <= _TS_MASK:
            raise ValueError(f"timestamp must be a 32-bit RTP timestamp, got {timestamp!r}")
        if not isinstance(payload, bytes):
            raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
        arrival = _finite("arrival", arrival)
        if samples is not None and not 0 < samples <= self._max_frame:
            raise ValueError(
                f"samples must be a packet duration of 1..{self._max_frame}, got {samples!r}"
            )
        if arrival > self._now:
            self._now = arrival
        self._stats.packets_received += 1
        quiet = len(payload) <= 2 if silent is None else bool(silent)

        if not self._anchored:
            self._anchor(seq, timestamp)
        ext_seq, ext_ts = self._unwrap(seq, timestamp)
        transit = arrival - (ext_ts - self._ts0) / self._rate
        if self._jumped(ext_seq, transit):
            held = self._held
            if held is not None and held.continued_by(seq, timestamp, arrival, self._rate):
                self._held = None
                self.reset()
                self._anchor(held.seq, held.timestamp)
                held_seq, held_ts = self._unwrap(held.seq, held.timestamp)
                held_transit = held.arrival - (held_ts - self._ts0) / self._rate
                self._accept(
                    held_seq,
                    held_ts,
                    held.payload,
                    held.arrival,
                    held_transit,
                    held.samples,
                    held.silent,
                    held.fec,
                )
                ext_seq, ext_ts = self._unwrap(seq, timestamp)
                transit = arrival - (ext_ts - self._ts0) / self._rate
                self._accept(ext_seq, ext_ts, payload, arrival, transit, samples, quiet, fec)
                return PushResult.RESTARTED
            if held is not None:
                self._stats.packets_discarded += 1
            self._held = _Held(seq, timestamp, payload, arrival, samples, quiet, fec)
            return PushResult.HELD
        if self._held is not None:
            self._held = None
            self._stats.packets_discarded += 1
        return self._accept(ext_seq, ext_ts, payload, arrival, transit, samples, quiet, fec)

    def _anchor(self, seq: int, timestamp: int) -> None:
        self._anchored = True
        self._top_seq = seq
        self._top_ts = timestamp
        self._ts0 = timestamp

    def _unwrap(self, seq: int, timestamp: int) -> tuple[int, int]:
        ext_seq = self._top_seq + wrapped_delta(seq, self._top_seq, 16)
        ext_ts = self._top_ts + wrapped_delta(timestamp, self._top_ts, 32)
        return ext_seq, ext_ts

    def _jumped(self, ext_seq: int, transit: float) -> bool:
        step = ext_seq - self._top_seq
        if step > _MAX_DROPOUT or step < -_MAX_MISORDER:
            return True
        last = self._last_transit
        return last is not None and abs(transit - last) > _RESTART_TRANSIT

    def _accept(
        self,
        ext_seq: int,
        ext_ts: int,
        payload: bytes,
        arrival: float,
        transit: float,
        samples: int | None,
        quiet: bool,
        fec: bool | None,
    ) -> PushResult:
        stats = self._stats
        started = self._started
        if ext_seq in self._packets:
            stats.packets_duplicated += 1
            return PushResult.DUPLICATE
        if started and ext_seq < self._expected:
            back = self._expected - 1 - ext_seq
            if back < _HISTORY and (self._history >> back) & 1:
                stats.packets_duplicated += 1
                return PushResult.DUPLICATE

        # measurements: every packet that is not a duplicate, late ones included
        last = self._last_transit
        if last is not None:
            stats.jitter += (abs(transit - last) - stats.jitter) / 16
        self._last_transit = transit
        base = self._base
        while base and base[-1][1] >= transit:
            base.pop()
        base.append((arrival, transit))
        horizon = arrival - _BASE_WINDOW
        while base[0][0] < horizon:
            base.popleft()
        relative = transit - base[0][1]
        if relative >= self._jitter(arrival):
            self._peak = min(relative, self._max_delay)
            self._peak_time = arrival
        if samples is not None:
            self._frame = samples
            self._frame_learned = True
        if ext_seq > self._top_seq:
            if samples is None and ext_seq == self._top_seq + 1:
                self._learn_frame(ext_ts - self._top_ts)
            self._top_seq = ext_seq
            self._top_ts = ext_ts

        if started and ext_seq < self._expected:
            if self._flag_new_stream and ext_seq >= self._expected - _MAX_MISORDER:
                # reordered before the stream's first decision: start earlier
                if ext_ts < self._cursor:
                    self._cursor = ext_ts
                self._expected = ext_seq
            else:
                stats.packets_late += 1
                stats.packets_discarded += 1
                return PushResult.LATE
        if fec is not None:
            self._fec_seen = fec  # the sender's packets carry FEC (or not)
        has_fec = fec is not False and len(payload) > 2
        self._packets[ext_seq] = _Packet(ext_ts, payload, arrival, samples or 0, quiet, has_fec)
        if len(self._packets) > self._capacity:
            self._drop_oldest()
        return PushResult.BUFFERED

    def _learn_frame(self, step: int) -> None:
        """A timestamp step between consecutive packets: the first packet duration sets
        the frame, then two equal ones in a row change it (a DTX gap is no duration)."""
        if step not in self._durations:
            return
        if not self._frame_learned:
            self._frame = step
            self._frame_learned = True
            self._frame_candidate = 0
        elif step == self._frame:
            self._frame_candidate = 0
        elif step == self._frame_candidate:
            self._frame = step
            self._frame_candidate = 0
        else:
            self._frame_candidate = step

    def _drop_oldest(self) -> None:
        oldest = min(self._packets)
        del self._packets[oldest]
        self._stats.packets_overflowed += 1
        self._stats.packets_discarded += 1
        if self._overflow_seq is None or oldest > self._overflow_seq:
            self._overflow_seq = oldest

    # -- delay estimates -------------------------------------------------------------

    def _jitter(self, now: float) -> float:
        held = now - self._peak_time - _JITTER_HOLD
        if not held > 0:  # also before any time was seen (nan)
            return self._peak
        return self._peak * math.pow(0.5, held / self._half_life)

    def _target(self, now: float) -> float:
        frame = self._frame / self._rate
        floor = frame if self._min_delay is None else self._min_delay
        if self._fec and self._fec_seen and now - self._last_loss < self._loss_memory:
            floor += frame
        return min(floor + self._jitter(now), self._max_delay)

    def _delay(self, due: float) -> float:
        """The current delay if the next decision's output starts at ``due``."""
        if not self._base:
            return 0.0
        return due - (self._cursor - self._ts0) / self._rate - self._base[0][1]

    def _quantize(self, samples: float) -> int:
        """``samples`` rounded to the nearest multiple of 2.5 ms, at least 0."""
        q = self._quantum
        return max(0, int(samples / q + 0.5) * q)

    @property
    def target_delay(self) -> float:
        """The target delay in seconds, at the latest time seen."""
        return self._target(self._now)

    @property
    def current_delay(self) -> float:
        """The current delay in seconds (0 before a stream started)."""
        if not self._started or self._origin is None:
            return 0.0
        return self._delay(self._origin + self._out / self._rate)

    @property
    def next_due(self) -> float | None:
        """When the next decision is due (None before the first :meth:`pop`)."""
        if self._origin is None:
            return None
        return self._origin + self._out / self._rate

    def __len__(self) -> int:
        return len(self._packets)

    def stats(self) -> JitterBufferStats:
        """A snapshot of the counters and the current estimates."""
        return replace(
            self._stats,
            target_delay=self.target_delay,
            current_delay=self.current_delay,
            buffered_packets=len(self._packets),
        )

    # -- output ----------------------------------------------------------------------

    def pop(self, now: float) -> list[Decision]:
        """Every decision whose output is due at ``now``, in order.

        The first call starts the output clock at ``now``.

        Args:
            now: The consumer's time, in seconds on the clock of ``arrival``.

        Raises:
            ValueError: If ``now`` is not finite.
        """
        now = _finite("now", now)
        if now > self._now:
            self._now = now
        if self._origin is None:
            self._origin = now
        decisions: list[Decision] = []
        rate = self._rate
        while True:
            due = self._origin + self._out / rate
            if due > now:
                return decisions
            decision = self._decide(now, due)
            decisions.append(decision)
            self._out += decision.output_samples
            self._last_end = decision.timestamp + decision.samples

    def _decide(self, now: float, due: float) -> Decision:
        if not self._started:
            if not self._packets:
                return self._lead_in(due, self._wait())
            self._start(now, due)
        rate = self._rate
        target = self._target(now)
        packets = self._packets
        while True:
            excess = self._delay(due) - target
            if not self._played and excess * rate < -self._tolerance():
                # pre-roll: silence until the first packet is due
                out = min(self._wait(), self._quantize(-excess * rate))
                if out:
                    return self._lead_in(due, out)
            seq = self._expected
            packet = packets.get(seq)
            if packet is not None:
                if packet.ts > self._cursor:
                    return self._gap(due, packet.ts - self._cursor, excess)
                decision = self._play(now, due, seq, packet, excess, target)
                if decision is not None:
                    return decision
                continue
            found = self._next_buffered()
            if found is None:
                return self._underrun(due, excess + target)
            decision = self._missing(now, due, found[0], found[1], excess, target)
            if decision is not None:
                return decision

    def _wait(self) -> int:
        """Output samples of one inserted decision: a packet, in 2.5 ms steps."""
        return self._quantize(self._frame) or self._quantum

    def _tolerance(self) -> int:
        """Samples by which the delay may miss the target before it is corrected."""
        return max(self._quantum, self._frame // 4)

    def _start(self, now: float, due: float) -> None:
        """The first decision of a stream: start at the oldest packet that is not stale."""
        packets = self._packets
        limit = self._target(now) + self._tolerance() / self._rate
        seqs = sorted(packets)
        for seq in seqs:
            self._cursor = packets[seq].ts
            if seq == seqs[-1] or self._delay(due) <= limit:
                break
            del packets[seq]
            self._stats.packets_discarded += 1
        self._expected = seq
        self._history = 0
        self._started = True
        self._played = False
        self._flag_new_stream = True

    def _next_buffered(self) -> tuple[int, _Packet] | None:
        """The buffered packet with the smallest seq after the expected one."""
        packets = self._packets
        if not packets:
            return None
        expected = self._expected
        if self._top_seq - expected <= 2 * len(packets) + 8:
            for seq in range(expected + 1, self._top_seq + 1):
                packet = packets.get(seq)
                if packet is not None:
                    return seq, packet
            return None
        seq = min(packets)
        return seq, packets[seq]

    def _scale(self, samples: int, excess: float, quiet: bool) -> int:
        """Samples to add (positive) or remove (negative) to move the delay to the target."""
        need = excess * self._rate
        tolerance = self._tolerance()
        if abs(need) <= tolerance:
            return 0
        if quiet:
            cap = samples
        elif need > 4 * self._frame:
            cap = samples // 2
        else:
            cap = samples // 4
        q = self._quantum
        amount = min(int(abs(need) / q + 0.5), cap // q) * q
        return -amount if need > 0 else amount

    def _take_flag(self) -> bool:
        flag = self._flag_new_stream
        self._flag_new_stream = False
        return flag

    def _end_run(self) -> None:
        self._run = 0
        self._run_samples = 0

    def _emit_audio(
        self, now: float, packet: _Packet, samples: int, out: int, target: float
    ) -> None:
        stats = self._stats
        stats.jitter_buffer_delay += (now - packet.arrival) * out
        stats.jitter_buffer_emitted_count += out
        stats.jitter_buffer_target_delay += target * out
        if out > samples:
            stats.inserted_samples_for_deceleration += out - samples
        else:
            stats.removed_samples_for_acceleration += samples - out
        self._end_run()

    def _play(
        self, now: float, due: float, seq: int, packet: _Packet, excess: float, target: float
    ) -> Decision | None:
        duration = packet.samples or self._duration(seq, packet)
        end = packet.ts + duration
        del self._packets[seq]
        self._expected = seq + 1
        if end <= self._cursor:
            # its whole span was already decided (the stream moved on without it)
            self._history = (self._history << 1) & _HISTORY_MASK
            self._stats.packets_late += 1
            self._stats.packets_discarded += 1
            return None
        self._history = ((self._history << 1) | 1) & _HISTORY_MASK
        start = self._cursor
        samples = end - start
        out = samples + self._scale(samples, excess, packet.silent)
        self._cursor = end
        self._played = True
        self._quiet = packet.silent
        self._stats.packets_played += 1
        self._emit_audio(now, packet, samples, out, target)
        return Decision(
            Action.PLAY, start, samples, out, due, packet.payload, seq,
            new_stream=self._take_flag(),
        )  # fmt: skip

    def _duration(self, seq: int, packet: _Packet) -> int:
        following = self._packets.get(seq + 1)
        if following is not None:
            step = following.ts - packet.ts
            if step in self._durations:
                return step
        return self._frame

    def _gap(self, due: float, gap: int, excess: float) -> Decision:
        """A span with no packet and no missing sequence number: DTX, re-anchored freely."""
        frame = self._frame
        want = gap - excess * self._rate
        if want <= frame or gap <= frame:
            samples, out = gap, self._quantize(min(want, gap + frame))
        else:
            samples, out = min(gap, int(gap * frame / want)), self._quantize(frame)
        return self._silence(due, samples, out)

    def _silence(self, due: float, samples: int, out: int) -> Decision:
        start = self._cursor
        self._cursor = start + samples
        self._stats.silence_samples += out
        self._end_run()
        return Decision(Action.SILENCE, start, samples, out, due, new_stream=self._take_flag())

    def _lead_in(self, due: float, out: int) -> Decision:
        """Inserted silence before a stream's first decision (before the first packet, or
        its pre-roll): it still belongs to the previous stream's time line."""
        if not self._flag_new_stream and self._started:
            return self._silence(due, 0, out)
        self._stats.silence_samples += out
        self._end_run()
        return Decision(Action.SILENCE, self._last_end, 0, out, due)

    def _conceal(self, due: float, samples: int, out: int, seq: int | None) -> Decision:
        start = self._cursor
        self._cursor = start + samples
        stats = self._stats
        stats.concealed_samples += out
        if self._quiet:
            stats.silent_concealed_samples += out
        if self._run == 0:
            stats.concealment_events += 1
        self._run += 1
        self._run_samples += out
        return Decision(
            Action.CONCEAL, start, samples, out, due, None, seq, self._run, self._run_samples,
            self._take_flag(),
        )  # fmt: skip

    def _underrun(self, due: float, delay: float) -> Decision:
        """Nothing buffered for the next slot: wait (grow the delay) up to max_delay."""
        frame = self._wait()
        samples = 0 if delay + frame / self._rate <= self._max_delay + 1e-9 else frame
        if self._run_samples >= _QUIET_AFTER * self._rate:
            self._quiet = True  # the sender has stopped: silence until it is back
        if self._quiet:
            return self._silence(due, samples, frame)
        return self._conceal(due, samples, frame, None)

    def _lose(self, count: int, now: float) -> None:
        """``count`` sequence numbers from the expected one are missing at their slot."""
        first = self._expected
        overflowed = self._overflow_seq
        lost = count if overflowed is None else min(count, max(0, first + count - 1 - overflowed))
        if lost:
            self._stats.packets_lost += lost
            self._last_loss = now
        self._expected = first + count
        self._history = (self._history << count) & _HISTORY_MASK

    def _missing(
        self,
        now: float,
        due: float,
        next_seq: int,
        following: _Packet,
        excess: float,
        target: float,
    ) -> Decision | None:
        """The expected packet is missing and ``following`` is the next one buffered."""
        missing = next_seq - self._expected
        gap = following.ts - self._cursor
        if gap <= 0:
            self._lose(missing, now)
            return None
        frame = self._frame
        even = gap // missing if gap % missing == 0 else 0
        if even not in self._durations and gap < missing * frame:
            # not enough stream time for every missing packet: those without room are lost
            slots = -(-gap // frame)
            if slots < missing:
                self._lose(missing - slots, now)
                missing = slots
        if missing > 1:
            samples = even if even in self._durations else frame
        elif gap > self._max_frame:
            # a loss and a DTX gap: silence first, the lost slot just before the packet
            return self._gap(due, gap - frame, excess)
        else:
            samples = gap
        seq = self._expected
        self._lose(1, now)
        q = self._quantum
        if missing == 1 and self._fec and following.fec and samples % q == 0:
            # (a DTX frame of 2 bytes or less carries no FEC: following.fec is false)
            out = samples + self._scale(samples, excess, False)
            start = self._cursor
            self._cursor = start + samples
            self._stats.fec_recovered += 1
            self._emit_audio(now, following, samples, out, target)
            return Decision(
                Action.FEC, start, samples, out, due, following.payload, seq,
                new_stream=self._take_flag(),
            )  # fmt: skip
        need = excess * self._rate
        out = self._quantize(samples - need if need > self._tolerance() else samples)
        out = min(out, self._quantize(samples))
        return self._conceal(due, samples, out, seq)
