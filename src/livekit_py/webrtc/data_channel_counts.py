"""Messages and bytes through the data channels of one peer connection.

aiortc counts nothing per data channel. A :class:`DataChannelCounter` watches each
channel it is given: the messages it delivers (its ``message`` event), the messages
sent on it (its ``send`` is wrapped on that instance, so every sender is counted,
whoever holds the channel) and when it opens and closes (W3C
``RTCPeerConnectionStats.dataChannelsOpened``/``Closed``). Sizes are those of the
payload: the bytes, or the UTF-8 encoding of a string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from aiortc import RTCDataChannel

__all__ = ["ChannelCounts", "DataChannelCounter", "message_size"]


def message_size(message: bytes | str) -> int:
    """The size W3C counts for a data channel message: bytes, or a string's UTF-8 bytes."""
    return len(message.encode("utf-8")) if isinstance(message, str) else len(message)


@dataclasses.dataclass
class ChannelCounts:
    """What went through one data channel."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0

    def sent(self, message: bytes | str) -> None:
        self.messages_sent += 1
        self.bytes_sent += message_size(message)

    def received(self, message: bytes | str) -> None:
        self.messages_received += 1
        self.bytes_received += message_size(message)


class DataChannelCounter:
    """Counts the data channels of one peer connection (see the module docstring)."""

    def __init__(self) -> None:
        self._channels: dict[RTCDataChannel, ChannelCounts] = {}
        self._opened = 0
        self._closed = 0

    @property
    def opened(self) -> int:
        """Channels that reached the ``open`` state."""
        return self._opened

    @property
    def closed(self) -> int:
        """Channels that left the ``open`` state for ``closed``."""
        return self._closed

    def watch(self, channel: RTCDataChannel) -> ChannelCounts:
        """Start counting ``channel`` (again: its counts so far)."""
        counts = self._channels.get(channel)
        if counts is not None:
            return counts
        counts = self._channels[channel] = ChannelCounts()
        was_open = [False]

        def on_open() -> None:
            if not was_open[0]:
                was_open[0] = True
                self._opened += 1

        def on_close() -> None:
            if was_open[0]:
                self._closed += 1

        channel.on("message", counts.received)
        channel.on("open", on_open)
        channel.on("close", on_close)
        if channel.readyState == "open":
            on_open()
        original: Callable[[bytes | str], None] | None = getattr(channel, "send", None)
        if original is not None:
            send_on = original

            def send(data: bytes | str) -> None:
                send_on(data)  # raises (and nothing is counted) when it cannot be sent
                counts.sent(data)

            setattr(channel, "send", send)  # noqa: B010 (a method of this instance only)
        return counts

    def channels(self) -> list[tuple[RTCDataChannel, ChannelCounts]]:
        """Every channel watched, with a copy of its counts, in the order watched."""
        return [(c, dataclasses.replace(n)) for c, n in self._channels.items()]
