"""Received audio, our way: the packets of one subscribed audio track, buffered and decoded.

aiortc's own receive path for audio (a fixed jitter buffer of 16 packets that prefetches 4,
stops at the first missing packet and decodes in a thread) costs 80 ms of latency and about
300 ms of audio per lost packet. An :class:`AudioPlayout` takes its place for one track:
:func:`~.aiortc_adapter.divert_received_packets` hands it every packet the receiver accepts
(after aiortc's RTCP statistics and depayloading), an
:class:`~livekit_py.media.jitter_buffer.AudioJitterBuffer` decides what to play for each
slot, and libopus (:mod:`livekit_py.media.libopus`) decodes, rebuilds a lost packet from the
next one's in-band FEC, or conceals it.

Its :attr:`AudioPlayout.track` is an aiortc ``MediaStreamTrack`` read like any other (by
:class:`~livekit_py.media.frame_source.TrackReader`): ``recv()`` returns the next decoded
frame when its playout time comes. A reader that calls late gets every due frame at once, in
order, so a late event loop delays audio but cuts nothing out of it. The output is
continuous from the first packet on: PLC for what is lost, silence for what was not sent.

With end-to-end encryption, ``decrypt`` turns each payload into the Opus packet before the
jitter buffer sees it. A packet that does not decrypt is played as a lost one (concealment,
fading into silence), so a receiver with the wrong key hears silence, as with the official
SDK, and a few packets lost to a key change are concealed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from ..log import get_logger
from ..media import libopus
from ..media.audio_level import AudioLevel, AudioLevelMeter
from ..media.clock import MediaClock, resolve_clock, wait_event
from ..media.jitter_buffer import Action, AudioJitterBuffer, Decision, JitterBufferStats
from ..media.libopus import OpusDecoder, packet_has_fec, packet_samples
from ..media.time_stretch import fit_length, phase_friendly_length

__all__ = ["AVAILABLE", "AudioPlayout", "PlayoutTrack"]

logger = get_logger("webrtc.audio_playout")

SAMPLE_RATE = 48_000
CHANNELS = 2
# the largest Opus packet is 120 ms
_MAX_FRAME = SAMPLE_RATE * 120 // 1000
# after this much concealment in a row, play silence instead of libopus's fading PLC
_FADE_AFTER = SAMPLE_RATE // 10
# a reader this far behind the output clock has not been reading: start over from now
_RESTART_AFTER = 0.5
_TIME_BASE = Fraction(1, SAMPLE_RATE)
# the most output (samples) the playout may run ahead of or behind the jitter buffer's
# timeline while it scales periodic audio by whole periods
_MAX_DEBT = SAMPLE_RATE // 100

AVAILABLE: bool = libopus.available
"""Whether an :class:`AudioPlayout` can be made (it needs libopus)."""

Pcm = npt.NDArray[np.int16]


class PlayoutTrack(MediaStreamTrack):
    """The decoded audio of an :class:`AudioPlayout`, as an aiortc track."""

    kind = "audio"

    def __init__(self, playout: AudioPlayout) -> None:
        super().__init__()
        self._playout = playout

    @property
    def playout(self) -> AudioPlayout:
        """The playout this track reads."""
        return self._playout

    async def recv(self) -> av.AudioFrame:
        """The next frame of audio, when its playout time comes.

        Raises:
            MediaStreamError: Once the track has ended.
        """
        return await self._playout._next_frame()

    def stop(self) -> None:
        """End the track: ``recv()`` raises from now on."""
        self._playout._stopped()
        super().stop()


class AudioPlayout:
    """Jitter buffer, decoder and playout clock of one received Opus stream.

    Args:
        clock: Where time comes from (the event loop's by default).
        make_buffer: Makes the jitter buffer (again after a pause in reading); a default
            :class:`AudioJitterBuffer` if None.
        decrypt: Turns each received payload into the Opus packet, or None when it does
            not decrypt (end-to-end encryption); None: payloads are Opus packets.
    """

    def __init__(
        self,
        *,
        clock: MediaClock | None = None,
        make_buffer: Callable[[], AudioJitterBuffer] | None = None,
        decrypt: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self._clock = resolve_clock(clock)
        self._make_buffer = make_buffer if make_buffer is not None else AudioJitterBuffer
        self._buffer = self._make_buffer()
        self._decoder = OpusDecoder(SAMPLE_RATE, CHANNELS)
        self._ssrc: int | None = None
        self._frames: deque[av.AudioFrame] = deque()
        self._pts = 0
        self._debt = 0  # output samples given beyond what the jitter buffer asked for
        self._arrived = asyncio.Event()
        self._buffer_fed = False  # a packet went into the current buffer
        self._ended = False
        self._closing = asyncio.Event()
        self._stats_before = JitterBufferStats()
        self._decrypt = decrypt
        self._undecrypted_run = 0  # samples played in a row for packets that did not decrypt
        self.packets_undecrypted = 0
        """Packets that did not decrypt (played as lost)."""
        self.bytes_received = 0
        """RTP payload bytes of every packet handed in (headers and padding not counted)."""
        self.payload_type: int | None = None
        """The RTP payload type of the latest packet (None before the first)."""
        self._level = AudioLevelMeter()
        self.track = PlayoutTrack(self)
        """What a reader reads this playout through."""

    # -- input -------------------------------------------------------------------------

    def on_packet(self, packet: RtpPacket) -> None:
        """Take one received packet (the sink given to ``divert_received_packets``)."""
        if self._ended:
            return
        self.bytes_received += len(packet.payload)
        self.payload_type = packet.payload_type
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            logger.debug("new SSRC %d (was %d): a new stream", packet.ssrc, self._ssrc)
            self._buffer.reset()
        self._ssrc = packet.ssrc
        if not packet.payload:
            return  # padding only: nothing to play
        payload = packet.payload
        try:
            samples: int | None = packet_samples(payload, SAMPLE_RATE)
        except ValueError:
            samples = None  # not a valid Opus packet: the buffer sizes it, libopus conceals it
        if self._decrypt is not None:
            plain = self._decrypt(payload)
            if plain is None:
                # in its slot (sized by its TOC byte, which stays in clear): played as lost
                self.packets_undecrypted += 1
                self._buffer.push(
                    packet.sequence_number,
                    packet.timestamp,
                    b"",
                    self._clock.now(),
                    samples=samples,
                    silent=True,
                    fec=False,
                )
                self._buffer_fed = True
                self._arrived.set()
                return
            payload = plain
        self._buffer.push(
            packet.sequence_number,
            packet.timestamp,
            payload,
            self._clock.now(),
            samples=samples,
            fec=packet_has_fec(payload) if samples is not None else False,
        )
        self._buffer_fed = True
        self._arrived.set()

    # -- output ------------------------------------------------------------------------

    async def _next_frame(self) -> av.AudioFrame:
        while True:
            if self._frames:
                return self._frames.popleft()
            if self._ended:
                raise MediaStreamError
            due = self._buffer.next_due
            if due is None and not self._buffer_fed:
                # the output clock starts with the first packet
                self._arrived.clear()
                await self._arrived.wait()
                continue
            now = self._clock.now()
            if due is not None and now - due > _RESTART_AFTER:
                self._restart()
                continue
            if due is not None and due > now:
                await wait_event(self._closing, due - now, self._clock)
                continue
            for decision in self._buffer.pop(now):
                frame = self._render(decision)
                if frame is not None:
                    self._frames.append(frame)

    def _render(self, decision: Decision) -> av.AudioFrame | None:
        if decision.new_stream:
            self._decoder.reset()
        pcm = self._decode(decision)
        out = decision.output_samples
        if out == 0:
            return None
        if pcm.shape[0] != out:
            pcm = self._fit(pcm, out)
            if pcm.shape[0] == 0:
                return None
        self._level.add(pcm, SAMPLE_RATE, CHANNELS)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += pcm.shape[0]
        return frame

    def _fit(self, pcm: Pcm, out: int) -> Pcm:
        """``pcm`` time-scaled towards ``out`` samples, in whole pitch periods when periodic.

        The jitter buffer asks for exact lengths; a periodic frame is cut or stretched by
        whole periods instead (a phase jump is a click), and the difference is owed to
        the next scaled frames (never more than :data:`_MAX_DEBT`).
        """
        want = out - self._debt
        if want <= 0:
            length = 0
        else:
            length = phase_friendly_length(pcm, want, sample_rate=SAMPLE_RATE)
            if abs(self._debt + length - out) > _MAX_DEBT:
                length = want
        self._debt += length - out
        return np.asarray(fit_length(pcm, length), dtype=np.int16)

    def _decode(self, decision: Decision) -> Pcm:
        action = decision.action
        if action is Action.PLAY and decision.payload == b"":  # did not decrypt: a loss
            self._undecrypted_run += decision.output_samples
            return self._conceal(decision.output_samples, self._undecrypted_run)
        if action is not Action.CONCEAL:
            self._undecrypted_run = 0
        try:
            if action is Action.PLAY and decision.payload is not None:
                return self._decoder.decode(decision.payload, _MAX_FRAME)
            if action is Action.FEC and decision.payload is not None:
                return self._decoder.decode_fec(decision.payload, decision.samples)
            if action is Action.CONCEAL:
                return self._conceal(decision.output_samples, decision.run_samples)
        except ValueError as exc:  # a packet libopus refuses: conceal it instead
            logger.debug("undecodable audio packet (%s): concealed", exc)
            return self._conceal(decision.output_samples, 0)
        return np.zeros((decision.output_samples, CHANNELS), np.int16)

    def _conceal(self, samples: int, run_samples: int) -> Pcm:
        if samples == 0:
            return np.zeros((0, CHANNELS), np.int16)
        if run_samples > _FADE_AFTER:
            return np.zeros((samples, CHANNELS), np.int16)
        return self._decoder.conceal(samples)

    def _restart(self) -> None:
        """The reader stopped reading for a while: play from the newest packets on."""
        logger.debug("audio playout restarted after a pause in reading")
        self._add_stats(self._buffer.stats())
        self._buffer = self._make_buffer()
        self._buffer_fed = False
        self._decoder.reset()

    def _add_stats(self, stats: JitterBufferStats) -> None:
        before = self._stats_before
        for name in _CUMULATIVE:
            setattr(before, name, getattr(before, name) + getattr(stats, name))

    # -- lifecycle and facts -------------------------------------------------------------

    def stats(self) -> JitterBufferStats:
        """The jitter buffer's counters since this playout started."""
        now = self._buffer.stats()
        before = self._stats_before
        for name in _CUMULATIVE:
            setattr(now, name, getattr(now, name) + getattr(before, name))
        return now

    def output_level(self) -> AudioLevel:
        """The W3C level counters of the audio played out so far (decoded and concealed)."""
        return self._level.reading()

    def close(self) -> None:
        """End the track (its reader ends too) and free the decoder."""
        if not self._ended:
            self.track.stop()

    def _stopped(self) -> None:
        if self._ended:
            return
        self._ended = True
        logger.debug("audio playout ended: %s", self.stats())
        self._frames.clear()
        self._arrived.set()
        self._closing.set()
        self._decoder.close()


# the counters that add up across a restart (the others describe the present)
_CUMULATIVE = frozenset(
    name
    for name in JitterBufferStats.__dataclass_fields__
    if name not in ("target_delay", "current_delay", "jitter", "buffered_packets")
)
