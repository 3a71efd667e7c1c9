"""One peer connection (``/rtc/v1``) without a server: the join request, the path and its
fallback, the answer as aiortc gets it, and the engine's receive-only m-line bookkeeping.

The engine runs on the fake peer connections of ``test_engine`` (extended with
transceivers we add ourselves), the signal client on a fake WebSocket dialer.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiortc import RTCConfiguration, RTCSessionDescription
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from livekit_py.engine import transport as transport_module
from livekit_py.engine.engine import RtcEngine
from livekit_py.engine.single_pc import (
    INITIAL_AUDIO_SECTIONS,
    INITIAL_VIDEO_SECTIONS,
    MAX_SECTIONS_PER_REQUIREMENT,
    answer_for_aiortc,
    answered_codecs,
    requested_sections,
    sending_ssrcs,
)
from livekit_py.engine.transport import PeerTransport
from livekit_py.errors import ConnectError
from livekit_py.signal import client as signal_client_module
from livekit_py.signal.client import SignalClient, SignalOptions
from livekit_py.signal.url import (
    PROTOCOL_VERSION,
    base_ws_url,
    client_info,
    join_request_param,
    parse_join_request_param,
    redact,
    rtc_url,
    rtc_v1_url,
)
from tests.unit.test_engine import (
    FakeChannel,
    FakePC,
    FakeReceiver,
    FakeSignal,
    candidate_init,
    idle,
)

CANDIDATE = "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host"


# ---------------------------------------------------------------------- the join request


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_the_v1_url_carries_only_the_token_and_a_join_request() -> None:
    url = rtc_v1_url("wss://host/prefix/", "tok.en", auto_subscribe=False, adaptive_stream=True)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "host", "/prefix/rtc/v1")
    query = _query(url)
    assert set(query) == {"access_token", "join_request"}
    assert query["access_token"] == "tok.en"
    request = parse_join_request_param(query["join_request"])
    assert not request.connection_settings.auto_subscribe
    assert request.connection_settings.adaptive_stream
    assert not request.reconnect and not request.participant_sid
    assert not request.HasField("publisher_offer")
    info = request.client_info
    assert info.sdk == proto_models.ClientInfo.SDK.PYTHON
    assert info.protocol == PROTOCOL_VERSION and info.version and info.os


def test_the_client_info_is_what_the_v0_parameters_say() -> None:
    v0 = _query(rtc_url("ws://h", "t", auto_subscribe=True))
    request = parse_join_request_param(
        _query(rtc_v1_url("ws://h", "t", auto_subscribe=True))["join_request"]
    )
    info = request.client_info
    for name in ("version", "os", "os_version"):
        assert getattr(info, name) == v0[name]
    assert str(info.protocol) == v0["protocol"]
    # a /rtc parameter named like a ClientInfo field lands in it (client_protocol, ...)
    extra = client_info({"sdk": "python", "client_protocol": "2", "auto_subscribe": "1"})
    assert (extra.sdk, extra.client_protocol) == (proto_models.ClientInfo.SDK.PYTHON, 2)
    both = "CAP_PACKET_TRAILER,CAP_COMPRESSION_DEFLATE_RAW"
    assert list(client_info({"capabilities": both}).capabilities) == [
        proto_models.ClientInfo.Capability.CAP_PACKET_TRAILER,
        proto_models.ClientInfo.Capability.CAP_COMPRESSION_DEFLATE_RAW,
    ]
    with pytest.raises(ValueError, match="CAP_TELEPATHY"):
        client_info({"capabilities": "CAP_TELEPATHY"})
    with pytest.raises(ValueError, match=r"ClientInfo\.SDK"):
        client_info({"sdk": "cobol"})
    with pytest.raises(ValueError, match="protocol must be a number"):
        client_info({"protocol": "sixteen"})


def test_a_resume_and_an_offer_go_into_the_join_request() -> None:
    offer = proto_rtc.SessionDescription(type="offer", sdp="v=0 " + "x" * 4000, id=1)
    url = rtc_v1_url(
        "ws://h",
        "t",
        auto_subscribe=True,
        reconnect=True,
        participant_sid="PA_me",
        reconnect_reason=proto_models.ReconnectReason.RR_SIGNAL_DISCONNECTED,
        publisher_offer=offer,
    )
    request = parse_join_request_param(_query(url)["join_request"])
    assert request.reconnect and request.participant_sid == "PA_me"
    assert request.reconnect_reason == proto_models.ReconnectReason.RR_SIGNAL_DISCONNECTED
    assert request.publisher_offer == offer
    # not a resume: no sid, no reason, even if given
    fresh = rtc_v1_url("ws://h", "t", auto_subscribe=True, participant_sid="PA_x")
    assert not parse_join_request_param(_query(fresh)["join_request"]).participant_sid


def test_the_join_request_is_gzipped_when_that_is_smaller() -> None:
    big = proto_rtc.JoinRequest(publisher_offer=proto_rtc.SessionDescription(sdp="a=x\r\n" * 500))
    wrapped = proto_rtc.WrappedJoinRequest()
    import base64

    wrapped.ParseFromString(base64.urlsafe_b64decode(join_request_param(big)))
    assert wrapped.compression == proto_rtc.WrappedJoinRequest.GZIP
    assert proto_rtc.JoinRequest.FromString(gzip.decompress(wrapped.join_request)) == big
    small = proto_rtc.JoinRequest(reconnect=True)
    wrapped.ParseFromString(base64.urlsafe_b64decode(join_request_param(small)))
    assert wrapped.compression == proto_rtc.WrappedJoinRequest.NONE
    assert proto_rtc.JoinRequest.FromString(wrapped.join_request) == small
    with pytest.raises(ValueError, match="wrapped JoinRequest"):
        parse_join_request_param("not base64 at all!")


def test_logs_show_the_join_request_by_its_size_and_never_the_token() -> None:
    url = rtc_v1_url("ws://h:1", "secret-token", auto_subscribe=True)
    shown = redact(url)
    assert "secret-token" not in shown and _query(url)["join_request"] not in shown
    assert f"join_request=<{len(_query(url)['join_request'])} characters>" in shown
    assert base_ws_url("ws://h:1/rtc/v1") == "ws://h:1" == base_ws_url("ws://h:1/rtc/")


# ---------------------------------------------------------------------- the path and its fallback


class FakeWs:
    """A WebSocket that sends ``first`` and then nothing until closed."""

    def __init__(self, first: proto_rtc.SignalResponse) -> None:
        self.first = first.SerializeToString()
        self.sent: list[bytes] = []
        self.closed = asyncio.Event()
        self.transport = self

    async def recv(self) -> bytes:
        first, self.first = self.first, b""
        if first:
            return first
        await self.closed.wait()
        raise AssertionError("recv after close")

    def __aiter__(self) -> AsyncIterator[bytes]:
        async def frames() -> AsyncIterator[bytes]:
            await self.closed.wait()
            return
            yield b""  # an async generator

        return frames()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def abort(self) -> None:
        self.closed.set()


ROOM_NOT_FOUND = 4040  # a 404 whose body says the room does not exist


def _status(code: int) -> InvalidStatus:
    if code == ROOM_NOT_FOUND:
        return InvalidStatus(
            Response(404, "Not Found", Headers(), b"requested room does not exist")
        )
    return InvalidStatus(Response(code, "status", Headers(), b""))


@pytest.fixture
def dialed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``dialed(v1=..., v0=...)``: make each path answer so; returns the URLs dialed."""

    def setup(v1: int = 101, v0: int = 101) -> list[str]:
        urls: list[str] = []

        async def dial(url: str) -> FakeWs:
            urls.append(url)
            code = v1 if urlsplit(url).path.endswith("/rtc/v1") else v0
            if code != 101:
                raise _status(code)
            if "reconnect" in url or (
                "join_request" in _query(url)
                and parse_join_request_param(_query(url)["join_request"]).reconnect
            ):
                return FakeWs(proto_rtc.SignalResponse(reconnect=proto_rtc.ReconnectResponse()))
            join = proto_rtc.JoinResponse(participant=proto_models.ParticipantInfo(sid="PA_me"))
            return FakeWs(proto_rtc.SignalResponse(join=join))

        monkeypatch.setattr(signal_client_module, "_dial", dial)
        return urls

    return setup


async def test_a_single_peer_connection_join_goes_to_rtc_v1(
    dialed: Callable[..., list[str]],
) -> None:
    urls = dialed()
    client = SignalClient()
    try:
        await client.join("ws://h", "t", SignalOptions(single_peer_connection=True))
        assert [urlsplit(u).path for u in urls] == ["/rtc/v1"]
        assert client.single_peer_connection
        # a resume goes where the join went, with the resume fields in the join request
        await client.resume("ws://h", "t", SignalOptions(participant_sid="PA_me"))
        assert urlsplit(urls[-1]).path == "/rtc/v1"
        request = parse_join_request_param(_query(urls[-1])["join_request"])
        assert request.reconnect and request.participant_sid == "PA_me"
    finally:
        await client.close()


async def test_a_404_on_rtc_v1_joins_on_rtc_without_the_offer(
    dialed: Callable[..., list[str]],
) -> None:
    urls = dialed(v1=404)
    client = SignalClient()
    offer = proto_rtc.SessionDescription(type="offer", sdp="v=0", id=1)
    try:
        await client.join(
            "ws://h", "t", SignalOptions(single_peer_connection=True), publisher_offer=offer
        )
        assert [urlsplit(u).path for u in urls] == ["/rtc/v1", "/rtc"]
        assert "join_request" in _query(urls[0]) and "join_request" not in _query(urls[1])
        assert not client.single_peer_connection
        await client.resume("ws://h", "t", SignalOptions(participant_sid="PA_me"))
        assert urlsplit(urls[-1]).path == "/rtc" and _query(urls[-1])["reconnect"] == "1"
    finally:
        await client.close()


async def test_other_refusals_of_rtc_v1_are_not_masked(dialed: Callable[..., list[str]]) -> None:
    urls = dialed(v1=401)
    with pytest.raises(ConnectError, match="HTTP 401"):
        await SignalClient().join("ws://h", "t", SignalOptions(single_peer_connection=True))
    assert [urlsplit(u).path for u in urls] == ["/rtc/v1"]


async def test_a_missing_room_is_a_refusal_not_a_missing_path(
    dialed: Callable[..., list[str]],
) -> None:
    urls = dialed(v1=ROOM_NOT_FOUND)
    with pytest.raises(ConnectError, match="room does not exist"):
        await SignalClient().join("ws://h", "t", SignalOptions(single_peer_connection=True))
    assert [urlsplit(u).path for u in urls] == ["/rtc/v1"]


async def test_two_peer_connections_go_to_rtc_and_a_404_there_is_an_error(
    dialed: Callable[..., list[str]],
) -> None:
    urls = dialed(v1=500, v0=404)
    with pytest.raises(ConnectError, match="not a LiveKit signal endpoint"):
        await SignalClient().join("ws://h", "t", SignalOptions(single_peer_connection=False))
    assert [urlsplit(u).path for u in urls] == ["/rtc"]
    urls = dialed(v1=404, v0=404)
    with pytest.raises(ConnectError, match="not a LiveKit signal endpoint"):
        await SignalClient().join("ws://h", "t", SignalOptions(single_peer_connection=True))
    assert [urlsplit(u).path for u in urls] == ["/rtc/v1", "/rtc"]


# ---------------------------------------------------------------------- pure SDP work


def answer_sdp(*mlines: tuple[str, str, str, tuple[int, ...]]) -> str:
    """An answer with (kind, mid, direction, ssrcs) m-lines and a data m-line.

    Two SSRCs make an ``a=ssrc-group:FID`` (the second repairs the first).
    """
    mids = [m[1] for m in mlines] + ["data"]
    lines = ["v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE " + " ".join(mids)]
    for kind, mid, direction, ssrcs in mlines:
        if kind == "audio":
            formats, maps = "111", ["a=rtpmap:111 opus/48000/2"]
        else:
            formats, maps = "96 97", ["a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000"]
            maps.append("a=fmtp:97 apt=96")
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {formats}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}"]
        lines += [*maps, f"a={direction}"]
        if len(ssrcs) == 2:
            lines.append(f"a=ssrc-group:FID {ssrcs[0]} {ssrcs[1]}")
        lines += [f"a=ssrc:{ssrc} cname:lk" for ssrc in ssrcs]
    lines += ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0"]
    lines += ["a=mid:data", "a=sctp-port:5000", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def test_answered_m_lines_without_an_ssrc_are_inactive_for_aiortc() -> None:
    sdp = answer_sdp(
        ("audio", "0", "sendonly", (1111,)),
        ("audio", "1", "sendonly", ()),
        ("video", "2", "sendonly", ()),
        ("video", "3", "recvonly", ()),  # one of ours: left alone
        ("audio", "4", "inactive", ()),
    )
    out, idled = answer_for_aiortc(sdp)
    assert idled == ["1", "2"]
    kinds = ("a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv")
    directions = [
        next(line for line in section.split("\r\n") if line in kinds)
        for section in out.split("m=")[1:]
    ]
    assert directions == [
        "a=sendonly",
        "a=inactive",
        "a=inactive",
        "a=recvonly",
        "a=inactive",
        "a=sendrecv",
    ]
    assert out.endswith("\r\n") and "\n\n" not in out
    # nothing to change: the very same text
    assert answer_for_aiortc(answer_sdp(("audio", "0", "sendonly", (5,)))) == (
        answer_sdp(("audio", "0", "sendonly", (5,))),
        [],
    )


def test_the_ssrcs_of_each_m_line_and_their_repair_streams() -> None:
    sdp = answer_sdp(
        ("audio", "0", "sendonly", (1111,)),
        ("video", "1", "sendonly", (2222, 3333)),
        ("video", "2", "inactive", ()),
    )
    assert sending_ssrcs(sdp) == {"0": (1111, None), "1": (2222, 3333)}


def test_the_codecs_answered_for_receiving_by_mid() -> None:
    sdp = answer_sdp(("audio", "0", "sendonly", (1,)), ("video", "1", "sendonly", (2, 3)))
    assert answered_codecs(sdp, "video") == {"1": {96: "video/VP8", 97: "video/rtx"}}
    assert answered_codecs(sdp, "audio") == {"0": {111: "audio/opus"}}


def test_requested_sections_are_bounded() -> None:
    assert requested_sections(0, 0) == (0, 0)
    assert requested_sections(2, 1) == (2, 1)
    assert requested_sections(-3, 10**9) == (0, MAX_SECTIONS_PER_REQUIREMENT)


# ---------------------------------------------------------------------- the engine


class FakeTransceiver:
    def __init__(self, kind: str, direction: str) -> None:
        self.mid: str | None = None
        self.kind = kind
        self.direction = direction
        self.receiver = FakeReceiver(kind)


class FakeSinglePC(FakePC):
    """Transceivers we add get a mid when our offer is applied, as in aiortc."""

    def __init__(self, configuration: RTCConfiguration | None = None) -> None:
        super().__init__(configuration)
        self.added: list[FakeTransceiver] = []
        self.after_remote: list[Callable[[], None]] = []

    def addTransceiver(self, kind: str, direction: str = "sendrecv") -> FakeTransceiver:
        self.log.append(f"add {direction} {kind}")
        transceiver = FakeTransceiver(kind, direction)
        self.added.append(transceiver)
        return transceiver

    def createDataChannel(self, label: str, **kwargs: Any) -> FakeChannel:
        self.log.append(f"channel {label}")
        return FakeChannel(label)

    def getTransceivers(self) -> list[FakeTransceiver]:  # type: ignore[override]
        return list(self.added)

    async def getStats(self) -> dict[str, str]:
        return {"pc": "stats"}

    async def setLocalDescription(self, description: RTCSessionDescription) -> None:
        for transceiver in self.added:
            if transceiver.mid is None:
                transceiver.mid = str(self.added.index(transceiver))
        await super().setLocalDescription(description)

    async def setRemoteDescription(self, description: RTCSessionDescription) -> None:
        await super().setRemoteDescription(description)
        # what aiortc schedules at the end: starting the m-lines' senders and receivers
        asyncio.get_running_loop().call_soon(self.log.append, "aiortc starts m-lines")


@pytest.fixture
def single_pcs(monkeypatch: pytest.MonkeyPatch) -> list[FakeSinglePC]:
    created: list[FakeSinglePC] = []

    def make(configuration: RTCConfiguration | None = None) -> FakeSinglePC:
        pc = FakeSinglePC(configuration)
        created.append(pc)
        return pc

    monkeypatch.setattr(transport_module, "RTCPeerConnection", make)
    monkeypatch.setattr(transport_module, "ice_connections", lambda pc: [])
    return created


@pytest.fixture
async def single(single_pcs: list[FakeSinglePC]) -> AsyncIterator[tuple[RtcEngine, FakeSignal]]:
    signal = FakeSignal()
    e = RtcEngine(signal)
    e.start(proto_rtc.JoinResponse(subscriber_primary=True), single_peer_connection=True)
    yield e, signal
    await e.close()


def pc_of(e: RtcEngine) -> FakeSinglePC:
    assert e.publisher is not None and isinstance(e.publisher.pc, FakeSinglePC)
    return e.publisher.pc


async def answer(
    signal: FakeSignal, e: RtcEngine, sdp: str, mid_to_track_id: dict[str, str]
) -> None:
    """Answer our pending offer (waiting for it) and wait until the answer is applied."""
    offer = await signal.next_sent("offer")
    applied = len([x for x in pc_of(e).log if x == "remote answer"])
    signal.deliver(
        "answer",
        proto_rtc.SessionDescription(
            type="answer", sdp=sdp, id=offer.offer.id, mid_to_track_id=mid_to_track_id
        ),
    )
    for _ in range(1000):
        if len([x for x in pc_of(e).log if x == "remote answer"]) > applied:
            break
        await asyncio.sleep(0)
    await idle()


def track_events(e: RtcEngine) -> list[tuple[str, str, str]]:
    """The tracks the engine reports, in order (also marked in the connection's log)."""
    events: list[tuple[str, str, str]] = []

    def started(sid: str, track: Any, transceiver: Any) -> None:
        events.append(("started", sid, str(transceiver.mid)))
        pc_of(e).log.append(f"started {sid}")

    e.on_remote_track = started
    e.on_remote_track_ended = lambda sid: events.append(("ended", sid, ""))
    return events


async def test_one_connection_with_receive_only_m_lines_before_the_data_channels(
    single: tuple[RtcEngine, FakeSignal], single_pcs: list[FakeSinglePC]
) -> None:
    e, signal = single
    assert e.subscriber is None and not e.subscriber_primary and len(single_pcs) == 1
    kinds = ["audio"] * INITIAL_AUDIO_SECTIONS + ["video"] * INITIAL_VIDEO_SECTIONS
    # the m-lines come first: aiortc bundles on the first m-line's transport
    assert pc_of(e).log[: len(kinds) + 2] == [
        *(f"add recvonly {kind}" for kind in kinds),
        "channel _reliable",
        "channel _lossy",
    ]
    request = await signal.next_sent("offer")  # we offer at once
    assert request.offer.id == 1
    # (the statistics on one connection: tests/integration/test_audio.py::test_stats)
    await asyncio.wait_for(e.wait_subscriber_ice_restart(0), 1)  # the server restarts no ICE


async def test_answers_start_and_end_tracks_on_our_receive_only_m_lines(
    single: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = single
    events = track_events(e)
    first = answer_sdp(
        ("audio", "0", "sendonly", (1111,)),
        ("audio", "1", "sendonly", ()),  # no track yet: inactive for aiortc
        ("audio", "2", "sendonly", ()),
    )
    await answer(signal, e, first, {"0": "TR_a"})
    assert events == [("started", "TR_a", "0")]
    applied = pc_of(e).remoteDescription
    assert applied is not None and applied.sdp.count("a=inactive") == 2
    # the track is reported (and its playout in place) before aiortc starts the m-lines
    log = pc_of(e).log
    assert log.index("remote answer") < log.index("started TR_a")
    assert log.index("started TR_a") < log.index("aiortc starts m-lines")

    # the server moves TR_a away and puts TR_b on m-line 1 (asked with 0 and 0)
    events.clear()
    signal.deliver("media_sections_requirement", proto_rtc.MediaSectionsRequirement())
    second = answer_sdp(
        ("audio", "0", "inactive", ()),
        ("audio", "1", "sendonly", (2222,)),
        ("audio", "2", "sendonly", ()),
    )
    await answer(signal, e, second, {"1": "TR_b"})
    assert events == [("ended", "TR_a", ""), ("started", "TR_b", "1")]
    answer_, offer = e.sync_descriptions()
    assert answer_ is not None and offer is not None
    assert (answer_.type, offer.type) == ("answer", "offer")  # the server's answer, our offer


async def test_a_requirement_adds_receive_only_m_lines_and_makes_an_offer(
    single: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = single
    await answer(signal, e, answer_sdp(("audio", "0", "sendonly", ())), {})
    before = len(pc_of(e).added)
    signal.deliver(
        "media_sections_requirement",
        proto_rtc.MediaSectionsRequirement(num_audios=1, num_videos=2),
    )
    request = await signal.next_sent("offer")
    added = pc_of(e).added[before:]
    assert [(t.kind, t.direction) for t in added] == [
        ("audio", "recvonly"),
        ("video", "recvonly"),
        ("video", "recvonly"),
    ]
    assert request.offer.id == 2


async def test_server_offers_are_ignored_and_every_candidate_is_the_publishers(
    single: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = single
    await answer(signal, e, answer_sdp(("audio", "0", "sendonly", ())), {})
    signal.deliver("offer", proto_rtc.SessionDescription(type="offer", sdp="v=0\r\n", id=9))
    signal.deliver(
        "trickle",
        proto_rtc.TrickleRequest(
            candidateInit=candidate_init(CANDIDATE), target=proto_rtc.SignalTarget.SUBSCRIBER
        ),
    )
    for _ in range(1000):
        if "candidate 192.0.2.1" in pc_of(e).log:
            break
        await asyncio.sleep(0)
    assert "candidate 192.0.2.1" in pc_of(e).log
    assert "remote offer begins" not in pc_of(e).log
    assert signal.sent.empty()  # no answer to the server's offer


async def test_with_two_connections_a_requirement_is_ignored(
    single_pcs: list[FakeSinglePC],
) -> None:
    signal = FakeSignal()
    e = RtcEngine(signal)
    e.start(proto_rtc.JoinResponse(subscriber_primary=True))
    try:
        assert e.subscriber is not None and not e.single_peer_connection
        await signal.next_sent("offer")
        before = len(pc_of(e).added)
        signal.deliver(
            "media_sections_requirement", proto_rtc.MediaSectionsRequirement(num_audios=2)
        )
        await idle()
        assert len(pc_of(e).added) == before and signal.sent.empty()
    finally:
        await e.close()


async def test_the_applied_hook_runs_before_aiortc_starts_the_m_lines(
    single_pcs: list[FakeSinglePC],
) -> None:
    t = PeerTransport("publisher", RTCConfiguration(iceServers=[]))
    pc = single_pcs[0]
    sent: list[str] = []

    async def send_offer(sdp: str, offer_id: int) -> None:
        sent.append(sdp)
        t.handle_answer(
            answer_sdp(("audio", "0", "sendonly", (1,))),
            on_applied=lambda: pc.log.append("hook"),
        )

    try:
        await asyncio.wait_for(t.negotiate(send_offer), 10)
        await idle()
        assert pc.log[-3:] == ["remote answer", "hook", "aiortc starts m-lines"]
    finally:
        await t.close()


# ---------------------------------------------------------------------- the room's option


@pytest.mark.parametrize(
    ("option", "server_has_v1", "asked", "engine_single"),
    [
        (None, True, True, True),  # the default: one, as the official SDK
        (True, True, True, True),
        (False, True, False, False),
        (None, False, True, False),  # a server without /rtc/v1: two
    ],
)
async def test_the_option_reaches_the_signal_client_and_the_engine_follows_the_join(
    option: bool | None, server_has_v1: bool, asked: bool, engine_single: bool
) -> None:
    from livekit_py import rtc
    from tests.unit.session_fakes import fake_room, join_response

    room, signal, engine = fake_room(join_response())
    options: list[SignalOptions] = []
    real_join = signal.join

    async def join(url: str, token: str, o: SignalOptions, **kwargs: Any) -> proto_rtc.JoinResponse:
        options.append(o)
        response = await real_join(url, token, o, **kwargs)
        signal.single_peer_connection = o.single_peer_connection and server_has_v1
        return response

    signal.join = join  # type: ignore[method-assign]
    try:
        await room.connect(
            "ws://fake.invalid", "token", rtc.RoomOptions(single_peer_connection=option)
        )
        (sent,) = options
        assert sent.single_peer_connection is asked
        assert engine.single_peer_connection is engine_single
    finally:
        await room.disconnect()
