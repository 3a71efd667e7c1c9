"""The engine's ``_data_track`` channels: a frame's packets out in order while the send
buffer has room, the newest frame waiting otherwise, every packet of the server's in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit_py.engine.data_track_channel import SEND_BUFFER_LOW, DataTrackChannel


class FakeChannel:
    """The part of aiortc's RTCDataChannel the data track channel uses."""

    def __init__(self, label: str = "_data_track", state: str = "open") -> None:
        self.label = label
        self.readyState = state
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.sent: list[bytes] = []
        self._handlers: dict[str, list[Callable[..., None]]] = {}

    def on(self, event: str, handler: Callable[..., None] | None = None) -> Any:
        def register(f: Callable[..., None]) -> Callable[..., None]:
            self._handlers.setdefault(event, []).append(f)
            return f

        return register(handler) if handler is not None else register

    def emit(self, event: str, *args: Any) -> None:
        for handler in self._handlers.get(event, []):
            handler(*args)

    def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.bufferedAmount += len(data)


def test_frames_go_out_whole_while_the_buffer_has_room() -> None:
    channel = FakeChannel()
    dt = DataTrackChannel()
    dt.attach_local(channel)  # type: ignore[arg-type]
    assert channel.bufferedAmountLowThreshold == SEND_BUFFER_LOW and dt.is_open
    dt.send_frame([b"a1", b"a2"])
    assert channel.sent == [b"a1", b"a2"]
    channel.bufferedAmount = SEND_BUFFER_LOW + 1  # the connection is behind
    dt.send_frame([b"b1", b"b2"])
    dt.send_frame([b"c1"])  # replaces b: the newest frame waits, not a backlog
    assert channel.sent == [b"a1", b"a2"] and dt.frames_replaced == 1
    channel.bufferedAmount = 0
    channel.emit("bufferedamountlow")
    assert channel.sent == [b"a1", b"a2", b"c1"] and dt.frames_sent == 2
    channel.emit("bufferedamountlow")
    assert len(channel.sent) == 3


def test_the_packets_of_a_frame_go_in_as_the_buffer_drains_and_frames_never_interleave() -> None:
    channel = FakeChannel()
    dt = DataTrackChannel()
    dt.attach_local(channel)  # type: ignore[arg-type]
    big = [bytes([n]) * 6000 for n in range(3)]
    dt.send_frame(big)
    assert channel.sent == big[:2]  # 12,000 bytes wait now: the third packet waits too
    dt.send_frame([b"next"])
    channel.bufferedAmount = 0
    channel.emit("bufferedamountlow")
    assert channel.sent == [*big, b"next"]  # the frame's last packet first, then the next
    assert (dt.frames_sent, dt.frames_replaced) == (2, 0)


def test_a_frame_waits_for_the_channel_to_open_and_is_dropped_when_it_closes() -> None:
    channel = FakeChannel(state="connecting")
    dt = DataTrackChannel()
    dt.attach_local(channel)  # type: ignore[arg-type]
    dt.send_frame([b"early"])
    assert channel.sent == [] and not dt.is_open
    channel.readyState = "open"
    channel.emit("open")
    assert channel.sent == [b"early"]
    channel.readyState = "closed"
    dt.send_frame([b"late"])
    channel.readyState = "open"
    channel.emit("bufferedamountlow")
    assert channel.sent == [b"early"]
    dt.close()
    dt.send_frame([b"after close"])
    channel.emit("bufferedamountlow")
    assert channel.sent == [b"early"]


def test_packets_from_the_server_reach_the_handler() -> None:
    ours, theirs = FakeChannel(), FakeChannel()
    dt = DataTrackChannel()
    dt.attach_local(ours)  # type: ignore[arg-type]
    dt.attach_remote(theirs)  # type: ignore[arg-type]
    got: list[bytes] = []
    dt.on_packet = got.append
    theirs.emit("message", b"packet")
    theirs.emit("message", "text is not a packet")
    ours.emit("message", b"on ours")
    assert got == [b"packet", b"on ours"]
    dt.close()
    theirs.emit("message", b"after close")
    assert got == [b"packet", b"on ours"]
