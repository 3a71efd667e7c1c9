"""Reliable data across a resume: numbering and keeping what we send, dropping what we saw.

Pure bookkeeping, no asyncio and no aiortc, so that it can be tested on its own.

Sending (:class:`ReliableSendBuffer`): every reliable ``DataPacket`` gets a
``sequence``, 1, 2, 3, ... per session, as the official JS and Rust SDKs number
them. The server keeps, per publishing participant, the last sequence it
forwarded and drops any reliable packet whose sequence is not above it
(livekit-server ``ParticipantImpl.handleReceivedDataMessage``); after a resume
it tells us that number (``ReconnectResponse.last_message_seq``). So a sent
packet is kept until one of two things shows it has left us:

* the server's ``last_message_seq`` is at least its sequence
  (:meth:`ReliableSendBuffer.delivered_through`), or
* the data channel's ``bufferedAmount`` has dropped below the byte offset at
  which the packet was handed to it, i.e. all of its bytes have left the
  channel's queue (:meth:`ReliableSendBuffer.delivered_by_drain`). This is the
  rule of the JS SDK's ``DataPacketBuffer.alignBufferedAmount``. In aiortc the
  bytes leave ``bufferedAmount`` when they are cut into SCTP chunks; from there
  SCTP itself retransmits them for as long as the association lives (which a
  resume keeps).

What is still kept after a resume is sent again (:meth:`ReliableSendBuffer.pending_after`);
the server drops the copies it already has by their sequence.

Receiving (:class:`ReceiveDeduper`): the server forwards a reliable packet with
its sender's ``sequence`` and stamps the sender's ``participant_sid`` on it;
a packet whose sequence is not newer than the last one seen from that sender
is a copy resent after a resume and is dropped, as the JS and Rust SDKs do.
Packets with sequence 0 (senders that do not number) or no sender sid always
pass.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from livekit.protocol import models as proto_models

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PACKETS",
    "MAX_SEQUENCE",
    "ReceiveDeduper",
    "ReliableBufferFullError",
    "ReliableSendBuffer",
]

MAX_SEQUENCE = 0xFFFF_FFFF
"""``DataPacket.sequence`` is a uint32."""

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""Default bound on the bytes kept for resending (8 times the engine's send high-water mark)."""

DEFAULT_MAX_PACKETS = 100_000
"""Default bound on the number of packets kept for resending."""

DEFAULT_MAX_SENDERS = 4096
"""How many senders :class:`ReceiveDeduper` remembers (least recently heard forgotten first)."""


class ReliableBufferFullError(ConnectionError):
    """A reliable packet was refused: too much sent data is not yet known to be delivered.

    The packet was not numbered, kept or sent.
    """


@dataclass
class _Kept:
    sequence: int
    payload: bytes
    end_offset: int
    """Bytes handed to the channel, in total, once this packet had been handed to it."""


class ReliableSendBuffer:
    """Numbers outgoing reliable packets and keeps them until they are known delivered.

    Args:
        max_bytes: Most serialized bytes kept; :meth:`record` refuses beyond it.
        max_packets: Most packets kept; :meth:`record` refuses beyond it.
        first_sequence: The sequence of the first packet (1, as the official SDKs).

    Raises:
        ValueError: If a bound is not positive or ``first_sequence`` is not in 1..2**32-1.
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_packets: int = DEFAULT_MAX_PACKETS,
        first_sequence: int = 1,
    ) -> None:
        if max_bytes <= 0 or max_packets <= 0:
            raise ValueError(
                f"bounds must be positive (max_bytes={max_bytes}, max_packets={max_packets})"
            )
        if not 1 <= first_sequence <= MAX_SEQUENCE:
            raise ValueError(f"first_sequence must be in 1..{MAX_SEQUENCE}, not {first_sequence}")
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self._next = first_sequence
        self._kept: deque[_Kept] = deque()
        self._kept_bytes = 0
        self._handed = 0  # bytes handed to the channel since the start, resends included

    # -- state -------------------------------------------------------------------------

    @property
    def next_sequence(self) -> int:
        """The sequence the next recorded packet gets."""
        return self._next

    @property
    def last_sequence(self) -> int:
        """The sequence of the last recorded packet (0 before the first)."""
        return self._next - 1

    @property
    def pending_count(self) -> int:
        """How many sent packets are not yet known delivered."""
        return len(self._kept)

    @property
    def pending_bytes(self) -> int:
        """Their serialized size in bytes."""
        return self._kept_bytes

    @property
    def pending_sequences(self) -> list[int]:
        """Their sequences, oldest first."""
        return [k.sequence for k in self._kept]

    # -- sending -----------------------------------------------------------------------

    def record(self, packet: proto_models.DataPacket) -> int:
        """Number ``packet`` (sets its ``sequence``) and keep it as handed to the channel now.

        Returns:
            The sequence given. Send :meth:`payload` of it, the packet as recorded.

        Raises:
            ReliableBufferFullError: If keeping it would pass ``max_bytes`` or
                ``max_packets``, or the uint32 sequences are used up. The packet is
                then left as it was.
        """
        if self._next > MAX_SEQUENCE:
            raise ReliableBufferFullError(
                "reliable data sequence numbers are used up for this session (2**32-1 packets)"
            )
        previous = packet.sequence
        packet.sequence = self._next
        payload = packet.SerializeToString()
        if (
            len(self._kept) + 1 > self.max_packets
            or self._kept_bytes + len(payload) > self.max_bytes
        ):
            packet.sequence = previous
            raise ReliableBufferFullError(
                f"the reliable send buffer is full: {len(self._kept)} packets "
                f"({self._kept_bytes} bytes) not yet confirmed delivered, the limit is "
                f"{self.max_packets} packets / {self.max_bytes} bytes; this packet "
                f"({len(payload)} bytes) was not sent"
            )
        self._handed += len(payload)
        self._kept.append(_Kept(self._next, payload, self._handed))
        self._kept_bytes += len(payload)
        self._next += 1
        return packet.sequence

    def payload(self, sequence: int) -> bytes:
        """The serialized packet kept under ``sequence``.

        Raises:
            KeyError: If no packet with that sequence is kept.
        """
        if self._kept:
            index = sequence - self._kept[0].sequence
            if 0 <= index < len(self._kept):
                return self._kept[index].payload
        raise KeyError(sequence)

    def mark_resent(self, sequence: int) -> None:
        """Say that the kept packet ``sequence`` was handed to the channel again, now.

        Resends go in sequence order, so the drain offsets stay ordered.

        Raises:
            KeyError: If no packet with that sequence is kept.
        """
        if self._kept:
            index = sequence - self._kept[0].sequence
            if 0 <= index < len(self._kept):
                kept = self._kept[index]
                self._handed += len(kept.payload)
                kept.end_offset = self._handed
                return
        raise KeyError(sequence)

    # -- delivery ----------------------------------------------------------------------

    def delivered_through(self, sequence: int) -> int:
        """Forget every packet up to and including ``sequence`` (the server has them).

        Returns:
            How many packets were forgotten.
        """
        released = 0
        while self._kept and self._kept[0].sequence <= sequence:
            self._release_first()
            released += 1
        return released

    def delivered_by_drain(self, buffered_amount: int) -> int:
        """Forget the packets whose bytes have all left the channel's send queue.

        Args:
            buffered_amount: The channel's ``bufferedAmount`` now. The channel
                must carry only the payloads recorded (and resent) here.

        Returns:
            How many packets were forgotten.
        """
        left = self._handed - max(0, buffered_amount)
        released = 0
        while self._kept and self._kept[0].end_offset <= left:
            self._release_first()
            released += 1
        return released

    def pending_after(self, sequence: int) -> list[proto_models.DataPacket]:
        """The kept packets with a sequence above ``sequence``, oldest first (to resend)."""
        out = []
        for kept in self._kept:
            if kept.sequence > sequence:
                packet = proto_models.DataPacket()
                packet.ParseFromString(kept.payload)
                out.append(packet)
        return out

    def sequences_after(self, sequence: int) -> list[int]:
        """The sequences of :meth:`pending_after`."""
        return [k.sequence for k in self._kept if k.sequence > sequence]

    def clear(self) -> None:
        """Forget every kept packet (numbering goes on)."""
        self._kept.clear()
        self._kept_bytes = 0

    def _release_first(self) -> None:
        kept = self._kept.popleft()
        self._kept_bytes -= len(kept.payload)


class ReceiveDeduper:
    """Drops received reliable packets not newer than the last one from the same sender.

    Senders are keyed by ``DataPacket.participant_sid``, which the server stamps
    on every packet it forwards; a sender that rejoins (full reconnect) has a
    new sid and starts again from 1.

    Args:
        max_senders: Most senders remembered; the least recently heard is
            forgotten first.

    Raises:
        ValueError: If ``max_senders`` is not positive.
    """

    def __init__(self, *, max_senders: int = DEFAULT_MAX_SENDERS) -> None:
        if max_senders <= 0:
            raise ValueError(f"max_senders must be positive, not {max_senders}")
        self._max = max_senders
        self._last: OrderedDict[str, int] = OrderedDict()

    def accept(self, packet: proto_models.DataPacket) -> bool:
        """Whether ``packet`` is new; a new numbered packet becomes its sender's last."""
        return self.accept_sequence(packet.participant_sid, packet.sequence)

    def accept_sequence(self, sender_sid: str, sequence: int) -> bool:
        """:meth:`accept` from the two fields."""
        if sequence <= 0 or not sender_sid:
            return True
        last = self._last.get(sender_sid)
        if last is not None and sequence <= last:
            return False
        self._last[sender_sid] = sequence
        self._last.move_to_end(sender_sid)
        while len(self._last) > self._max:
            self._last.popitem(last=False)
        return True

    def last_sequence(self, sender_sid: str) -> int:
        """The last sequence accepted from ``sender_sid`` (0 when none)."""
        return self._last.get(sender_sid, 0)

    def last_sequences(self) -> dict[str, int]:
        """Every remembered sender's last sequence (``SyncState.datachannel_receive_states``)."""
        return dict(self._last)

    def forget(self, sender_sid: str) -> None:
        """Forget one sender (e.g. it left the room)."""
        self._last.pop(sender_sid, None)

    def clear(self) -> None:
        """Forget every sender."""
        self._last.clear()
