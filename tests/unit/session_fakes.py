"""A fake signal client and engine, so a Room can go through its real connect,
message handling and disconnect without a server or a network."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from livekit_py import rtc
from livekit_py.signal.client import SignalClient, SignalOptions


class FakeSignal(SignalClient):
    """Answers ``join`` with ``join_response``; records sent requests; ``deliver`` plays
    the server. ``answer(request)``, when set, is called soon after each send."""

    def __init__(self, join_response: proto_rtc.JoinResponse) -> None:
        super().__init__()
        self.join_response = join_response
        self.sent: list[proto_rtc.SignalRequest] = []
        self.answer: Any = None
        self.closed_with: list[proto_rtc.LeaveRequest | None] = []
        self.open = False
        self.resumes: list[SignalOptions] = []
        self.resume_results: list[BaseException | proto_rtc.ReconnectResponse | None] = []
        """What each resume gives, in order (an exception is raised); then a ReconnectResponse."""

    async def join(
        self,
        url: str,
        token: str,
        options: SignalOptions,
        *,
        publisher_offer: proto_rtc.SessionDescription | None = None,
    ) -> proto_rtc.JoinResponse:
        self.open = True
        self.single_peer_connection = options.single_peer_connection
        return self.join_response

    async def resume(
        self, url: str, token: str, options: SignalOptions
    ) -> proto_rtc.ReconnectResponse | None:
        self.resumes.append(options)
        result = (
            self.resume_results.pop(0)
            if self.resume_results
            else proto_rtc.ReconnectResponse(last_message_seq=7)
        )
        if isinstance(result, BaseException):
            raise result
        self.open = True
        return result

    @property
    def connected(self) -> bool:
        return self.open

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        if not self.open:
            raise ConnectionError("the signal connection is closed")
        self.sent.append(request)
        if self.answer is not None:
            asyncio.get_running_loop().call_soon(self.answer, request)

    async def close(self, leave: proto_rtc.LeaveRequest | None = None) -> None:
        self.closed_with.append(leave)
        self.open = False

    def deliver(self, **message: Any) -> None:
        """The server sends a SignalResponse with ``message`` (one oneof field)."""
        self._dispatch(proto_rtc.SignalResponse(**message))

    def drop(self, why: str = "signal connection closed") -> None:
        """The socket ends (as the read loop reports it)."""
        self.open = False
        if self.on_close is not None:
            self.on_close(why)


class FakeDataTrackChannel:
    """The engine's ``_data_track`` channels: frames sent are recorded, ``deliver`` plays
    the server sending a packet."""

    def __init__(self) -> None:
        self.frames: list[list[bytes]] = []
        self.on_packet: Any = None

    def send_frame(self, packets: list[bytes]) -> None:
        if packets:
            self.frames.append(list(packets))

    def deliver(self, packet: bytes) -> None:
        if self.on_packet is not None:
            self.on_packet(packet)

    def close(self) -> None:
        self.on_packet = None


class FakeEngine:
    """The engine surface the session and the room use."""

    def __init__(self) -> None:
        self.packets: list[tuple[proto_models.DataPacket, int]] = []
        self.fail = False
        self.connected = asyncio.Event()
        self.connected.set()
        self.closed = False
        self.started = asyncio.Event()
        self.on_data_packet: Any = None
        self.on_failure: Any = None
        self.on_remote_track: Any = None
        self.on_remote_track_ended: Any = None
        self.data_tracks = FakeDataTrackChannel()

    single_peer_connection = False

    def start(self, join: proto_rtc.JoinResponse, *, single_peer_connection: bool = False) -> None:
        self.single_peer_connection = single_peer_connection
        self.started.set()

    async def wait_connected(self) -> None:
        await self.connected.wait()

    def begin_close(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def send_data(self, packet: proto_models.DataPacket, kind: int) -> None:
        if self.fail:
            raise ConnectionError("the data channel is not open")
        self.packets.append((packet, kind))

    async def get_stats(self, decoded: object = None) -> tuple[list[Any], list[Any]]:
        return [], []

    # what a resume uses
    subscriber_ice_restarts = 0

    async def wait_subscriber_ice_restart(self, after: int) -> None:
        pass

    publisher_ice_restarts = 0

    async def restart_publisher_ice(self) -> bool:
        self.publisher_ice_restarts += 1
        return True

    def sync_descriptions(
        self,
    ) -> tuple[proto_rtc.SessionDescription | None, proto_rtc.SessionDescription | None]:
        return (
            proto_rtc.SessionDescription(type="answer", sdp="v=0 answer"),
            proto_rtc.SessionDescription(type="offer", sdp="v=0 offer"),
        )

    # the reliable-data hooks (engine/engine.py) the session calls
    data_suspended = False
    resent_after: tuple[int, ...] = ()

    def suspend_data(self) -> None:
        self.data_suspended = True

    async def resend_reliable_after(self, last_message_seq: int) -> int:
        self.resent_after = (*self.resent_after, last_message_seq)
        self.data_suspended = False
        return 0

    def undelivered_reliable(self) -> list[proto_models.DataPacket]:
        return []

    def reliable_receive_states(self) -> list[proto_rtc.DataChannelReceiveState]:
        return []

    def data_channel_infos(self) -> list[proto_rtc.DataChannelInfo]:
        return [
            proto_rtc.DataChannelInfo(
                label="_reliable", id=1, target=proto_rtc.SignalTarget.PUBLISHER
            )
        ]


def join_response(
    *others: proto_models.ParticipantInfo, name: str = "Me", metadata: str = ""
) -> proto_rtc.JoinResponse:
    return proto_rtc.JoinResponse(
        room=proto_models.Room(sid="RM_1", name="r", metadata="m0"),
        participant=proto_models.ParticipantInfo(
            identity="me", sid="PA_me", name=name, metadata=metadata
        ),
        other_participants=list(others),
        server_info=proto_models.ServerInfo(version="1.9.0"),
    )


def fake_room(join: proto_rtc.JoinResponse) -> tuple[rtc.Room, FakeSignal, FakeEngine]:
    """A Room whose session will use the fakes (call ``connect`` next)."""
    room = rtc.Room()
    signal = FakeSignal(join)
    engine = FakeEngine()
    room._session.signal_factory = lambda: signal
    room._session.engine_factory = lambda _signal, _config: engine  # type: ignore[assignment,return-value]
    return room, signal, engine


async def connected_room(
    join: proto_rtc.JoinResponse,
) -> tuple[rtc.Room, FakeSignal, FakeEngine]:
    """A Room connected (through its real connect) to the fakes."""
    room, signal, engine = fake_room(join)
    await room.connect("ws://fake.invalid", "token")
    return room, signal, engine
