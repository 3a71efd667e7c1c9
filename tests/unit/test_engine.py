"""The engine without a server: negotiation ordering, candidate buffering, m-line mapping.

The peer connections are fakes that record what the engine does to them (and
can hold a description change or report a connection state), and the signal
client is a fake that records requests and delivers responses. Nothing here
opens a socket except the tests of ``add_publisher_track``, which make offers
on real aiortc connections without gathering candidates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from aiortc import RTCConfiguration, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from pyee.asyncio import AsyncIOEventEmitter

from livekit_py.engine import transport as transport_module
from livekit_py.engine.engine import EngineConfig, RtcEngine
from livekit_py.engine.transport import PeerTransport, parse_candidate_init
from livekit_py.signal.client import Handler
from livekit_py.types import TrackPublishOptions, VideoCodec
from livekit_py.webrtc.aiortc_adapter import installed_encoder
from livekit_py.webrtc.encoders import (
    AudioEncoderConfig,
    VideoEncoderConfig,
    audio_encoder_config,
    opus_fmtp_by_mid,
    video_encoder_config,
)
from livekit_py.webrtc.frame_transform import FilterChain
from livekit_py.webrtc.opus import OpusEncoder
from livekit_py.webrtc.video_codecs import Vp8VideoEncoder

CANDIDATE_1 = "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host"
CANDIDATE_2 = "candidate:2 1 udp 2130706431 192.0.2.2 50001 typ host"


def candidate_init(line: str) -> str:
    return json.dumps({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0})


async def idle(turns: int = 50) -> None:
    """Let every task that can make progress without outside input do so."""
    for _ in range(turns):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------- fakes


class FakeChannel(AsyncIOEventEmitter):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.readyState = "connecting"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0


class FakeReceivedTrack(AsyncIOEventEmitter):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind


class FakeReceiver:
    def __init__(self, kind: str) -> None:
        self.track = FakeReceivedTrack(kind)


class FakeTransceiver:
    def __init__(self, mid: str, kind: str) -> None:
        self.mid = mid
        self.kind = kind
        self.receiver = FakeReceiver(kind)


class FakePC(AsyncIOEventEmitter):
    """Records description changes and candidates in ``log``, in the order they happen."""

    created: ClassVar[list[FakePC]] = []

    def __init__(self, configuration: RTCConfiguration | None = None) -> None:
        super().__init__()
        FakePC.created.append(self)
        self.connectionState = "new"
        self.localDescription: RTCSessionDescription | None = None
        self.remoteDescription: RTCSessionDescription | None = None
        self.sctp = None
        self.log: list[str] = []
        self.hold_remote: asyncio.Event | None = None
        self._transceivers: dict[str, FakeTransceiver] = {}
        self._offers = 0

    async def createOffer(self) -> RTCSessionDescription:
        self._offers += 1
        return RTCSessionDescription(sdp=f"offer {self._offers}", type="offer")

    async def createAnswer(self) -> RTCSessionDescription:
        assert self.remoteDescription is not None
        first_line = self.remoteDescription.sdp.splitlines()[0]
        return RTCSessionDescription(sdp=f"answer to {first_line!r}", type="answer")

    async def setLocalDescription(self, description: RTCSessionDescription) -> None:
        self.log.append(f"local {description.type}")
        self.localDescription = description

    async def setRemoteDescription(self, description: RTCSessionDescription) -> None:
        self.log.append(f"remote {description.type} begins")
        if self.hold_remote is not None:
            await self.hold_remote.wait()
        if description.type == "offer" and description.sdp.startswith("v=0"):
            from aiortc.sdp import SessionDescription

            for media in SessionDescription.parse(description.sdp).media:
                mid = media.rtp.muxId
                if media.kind in ("audio", "video") and mid not in self._transceivers:
                    self._transceivers[mid] = FakeTransceiver(mid, media.kind)
        self.remoteDescription = description
        self.log.append(f"remote {description.type}")

    async def addIceCandidate(self, candidate: Any) -> None:
        self.log.append("end of candidates" if candidate is None else f"candidate {candidate.ip}")

    def getTransceivers(self) -> list[FakeTransceiver]:
        return list(self._transceivers.values())

    def createDataChannel(self, label: str, **kwargs: Any) -> FakeChannel:
        return FakeChannel(label)

    def set_state(self, state: str) -> None:
        self.connectionState = state
        self.emit("connectionstatechange")

    async def close(self) -> None:
        self.connectionState = "closed"


class FakeSignal:
    """Records requests; ``deliver`` hands a response to the engine as the server would."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.sent: asyncio.Queue[proto_rtc.SignalRequest] = asyncio.Queue()

    def on(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def send(self, request: proto_rtc.SignalRequest) -> None:
        self.sent.put_nowait(request)

    def deliver(self, kind: str, message: Any) -> None:
        self.handlers[kind](message)

    async def next_sent(self, kind: str) -> proto_rtc.SignalRequest:
        while True:
            request = await asyncio.wait_for(self.sent.get(), 10)
            if request.WhichOneof("message") == kind:
                return request


@pytest.fixture
def fake_peer_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    FakePC.created = []
    monkeypatch.setattr(transport_module, "RTCPeerConnection", FakePC)
    monkeypatch.setattr(transport_module, "ice_connections", lambda pc: [])


@pytest.fixture
async def transport(fake_peer_connections: None) -> AsyncIterator[PeerTransport]:
    t = PeerTransport("subscriber", RTCConfiguration(iceServers=[]))
    yield t
    await t.close()


def fake_pc(t: PeerTransport) -> FakePC:
    assert isinstance(t.pc, FakePC)
    return t.pc


class Offers:
    """The ``send_offer`` of a negotiation: records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.arrived = asyncio.Queue[tuple[str, int]]()

    async def __call__(self, sdp: str, offer_id: int) -> None:
        self.sent.append((sdp, offer_id))
        self.arrived.put_nowait((sdp, offer_id))

    async def next(self) -> tuple[str, int]:
        return await asyncio.wait_for(self.arrived.get(), 10)


# ---------------------------------------------------------------------- candidates (pure)


def test_a_trickled_candidate_is_pinned_to_the_bundle_m_line() -> None:
    candidate = parse_candidate_init(candidate_init(CANDIDATE_1))
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.type) == ("192.0.2.1", 50000, "host")
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == (None, 0)


def test_an_empty_candidate_is_the_end_of_candidates() -> None:
    assert parse_candidate_init(json.dumps({"candidate": ""})) is None


def test_a_candidate_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_candidate_init("candidate:1 1 udp")


# ---------------------------------------------------------------------- client offers


async def test_offers_are_serialized_and_concurrent_requests_coalesce(
    transport: PeerTransport,
) -> None:
    pc = fake_pc(transport)
    offers = Offers()
    first = asyncio.ensure_future(transport.negotiate(offers))
    assert await offers.next() == ("offer 1", 1)
    # three more requests while the first offer waits for its answer
    more = [asyncio.ensure_future(transport.negotiate(offers)) for _ in range(3)]
    await idle()
    assert offers.sent == [("offer 1", 1)]
    assert pc.log == ["local offer"]

    transport.handle_answer("answer 1")
    # one follow-up offer for all three, made after the first answer was applied
    assert await offers.next() == ("offer 2", 2)
    assert pc.log == ["local offer", "remote answer begins", "remote answer", "local offer"]
    await idle()
    # every call returns once a negotiation that started after it has completed
    assert not any(task.done() for task in [first, *more])

    transport.handle_answer("answer 2")
    await asyncio.wait_for(asyncio.gather(first, *more), 10)
    assert offers.sent == [("offer 1", 1), ("offer 2", 2)]
    assert pc.log[-2:] == ["remote answer begins", "remote answer"]


async def test_an_answer_with_no_offer_pending_is_ignored(transport: PeerTransport) -> None:
    transport.handle_answer("stray")
    await idle()
    assert fake_pc(transport).log == []


async def test_a_renegotiation_waits_for_ice_and_dtls_to_settle(transport: PeerTransport) -> None:
    pc = fake_pc(transport)
    pc.set_state("connecting")  # the previous negotiation's ICE/DTLS is still being set up
    offers = Offers()
    task = asyncio.ensure_future(transport.negotiate(offers))
    await idle()
    assert offers.sent == []
    assert pc.log == []

    pc.set_state("connected")
    assert await offers.next() == ("offer 1", 1)
    transport.handle_answer("answer 1")
    await asyncio.wait_for(task, 10)


async def test_a_server_offer_waits_for_ice_and_dtls_to_settle(transport: PeerTransport) -> None:
    pc = fake_pc(transport)
    pc.set_state("connecting")
    answers: list[str] = []

    async def send_answer(sdp: str) -> None:
        answers.append(sdp)

    transport.handle_offer("server offer", send_answer)
    await idle()
    assert pc.log == []
    pc.set_state("connected")
    await _until(lambda: bool(answers))
    assert pc.log == ["remote offer begins", "remote offer", "local answer"]


async def _until(condition: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not condition():  # noqa: ASYNC110 - the fakes have no event to wait on
            await asyncio.sleep(0)

    await asyncio.wait_for(wait(), 10)


# ---------------------------------------------------------------------- server offers


async def test_server_offers_are_applied_one_at_a_time_in_arrival_order(
    transport: PeerTransport,
) -> None:
    pc = fake_pc(transport)
    pc.hold_remote = asyncio.Event()
    answers: list[str] = []

    def sender(name: str) -> Callable[[str], Awaitable[None]]:
        async def send_answer(sdp: str) -> None:
            answers.append(f"{name}: {sdp}")

        return send_answer

    transport.handle_offer("offer A", sender("A"))
    transport.handle_offer("offer B", sender("B"))
    await idle()
    assert pc.log == ["remote offer begins"]  # B waits for A to be applied and answered
    pc.hold_remote.set()
    await _until(lambda: len(answers) == 2)
    assert answers == ["A: answer to 'offer A'", "B: answer to 'offer B'"]
    assert pc.log == [
        "remote offer begins",
        "remote offer",
        "local answer",
        "remote offer begins",
        "remote offer",
        "local answer",
    ]


async def test_a_failing_server_message_does_not_stop_the_next(transport: PeerTransport) -> None:
    pc = fake_pc(transport)
    answers: list[str] = []

    async def broken(sdp: str) -> None:
        raise ConnectionError("the signal connection is closed")

    async def send_answer(sdp: str) -> None:
        answers.append(sdp)

    transport.handle_offer("offer A", broken)
    transport.handle_offer("offer B", send_answer)
    await _until(lambda: bool(answers))
    assert answers == ["answer to 'offer B'"]
    assert pc.log.count("local answer") == 2


# ---------------------------------------------------------------------- candidate buffering


async def test_candidates_before_the_remote_description_wait_for_it(
    transport: PeerTransport,
) -> None:
    pc = fake_pc(transport)
    pc.hold_remote = asyncio.Event()
    transport.add_candidate(candidate_init(CANDIDATE_1))
    transport.add_candidate(candidate_init(CANDIDATE_2), final=True)
    answers: list[str] = []

    async def send_answer(sdp: str) -> None:
        answers.append(sdp)

    transport.handle_offer("offer", send_answer)
    await idle()
    assert pc.log == ["remote offer begins"]  # nothing applied before the description
    pc.hold_remote.set()
    await _until(lambda: bool(answers))
    assert pc.log == [
        "remote offer begins",
        "remote offer",
        "candidate 192.0.2.1",
        "candidate 192.0.2.2",
        "end of candidates",
        "local answer",
    ]


async def test_candidates_after_the_remote_description_are_applied_at_once(
    transport: PeerTransport,
) -> None:
    pc = fake_pc(transport)
    answers: list[str] = []

    async def send_answer(sdp: str) -> None:
        answers.append(sdp)

    transport.handle_offer("offer", send_answer)
    await _until(lambda: bool(answers))
    # a renegotiation waits for ICE/DTLS to settle; the candidates ICE needs
    # for that do not queue behind it
    pc.set_state("connecting")
    transport.handle_offer("offer 2", send_answer)
    await idle()
    transport.add_candidate(candidate_init(CANDIDATE_1))
    await _until(lambda: "candidate 192.0.2.1" in pc.log)
    transport.add_candidate(json.dumps({"candidate": ""}))  # end of candidates
    await _until(lambda: "end of candidates" in pc.log)
    assert pc.log[-3:] == ["local answer", "candidate 192.0.2.1", "end of candidates"]
    pc.set_state("connected")
    await _until(lambda: len(answers) == 2)
    assert pc.log[-3:] == ["remote offer begins", "remote offer", "local answer"]


async def test_candidates_before_our_offer_is_answered_wait_for_the_answer(
    transport: PeerTransport,
) -> None:
    pc = fake_pc(transport)
    offers = Offers()
    task = asyncio.ensure_future(transport.negotiate(offers))
    await offers.next()
    transport.add_candidate(candidate_init(CANDIDATE_1))
    await idle()
    assert pc.log == ["local offer"]
    transport.handle_answer("answer")
    await asyncio.wait_for(task, 10)
    assert pc.log == ["local offer", "remote answer begins", "remote answer", "candidate 192.0.2.1"]


# ---------------------------------------------------------------------- the engine


def sdp_offer(*mlines: tuple[str, str, str, str | None, int]) -> str:
    """An offer with (kind, mid, direction, msid or None, port) m-lines and a data m-line."""
    mids = [m[1] for m in mlines] + ["data"]
    lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE " + " ".join(mids)]
    for kind, mid, direction, msid, port in mlines:
        pt, rtpmap = (111, "opus/48000/2") if kind == "audio" else (96, "VP8/90000")
        lines += [f"m={kind} {port} UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}"]
        lines.append(f"a={direction}")
        if msid:
            lines.append(f"a=msid:{msid}")
        lines.append(f"a=rtpmap:{pt} {rtpmap}")
    lines += [
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:data",
        "a=sctp-port:5000",
    ]
    return "\r\n".join(lines) + "\r\n"


class Reported:
    """What the engine reports about remote tracks, in order."""

    def __init__(self, engine: RtcEngine) -> None:
        self.events: list[tuple[str, str, str]] = []  # (started|ended, track sid, mid)
        self.tracks: dict[str, object] = {}
        self._mids: dict[str, str] = {}
        engine.on_remote_track = self._started
        engine.on_remote_track_ended = self._ended

    def _started(self, sid: str, track: MediaStreamTrack, transceiver: RTCRtpTransceiver) -> None:
        self._mids[sid] = str(transceiver.mid)
        self.tracks[sid] = track
        self.events.append(("started", sid, str(transceiver.mid)))

    def _ended(self, sid: str) -> None:
        self.events.append(("ended", sid, self._mids.get(sid, "?")))


@pytest.fixture
async def engine(fake_peer_connections: None) -> AsyncIterator[tuple[RtcEngine, FakeSignal]]:
    signal = FakeSignal()
    e = RtcEngine(signal)
    e.start(proto_rtc.JoinResponse(subscriber_primary=True))
    yield e, signal
    await e.close()


async def offer_from_server(
    signal: FakeSignal, sdp: str, offer_id: int, mid_to_track_id: dict[str, str] | None = None
) -> proto_rtc.SignalRequest:
    signal.deliver(
        "offer",
        proto_rtc.SessionDescription(
            type="offer", sdp=sdp, id=offer_id, mid_to_track_id=mid_to_track_id or {}
        ),
    )
    return await signal.next_sent("answer")


async def test_the_publisher_is_negotiated_at_start(engine: tuple[RtcEngine, FakeSignal]) -> None:
    e, signal = engine
    request = await signal.next_sent("offer")
    assert (request.offer.type, request.offer.sdp, request.offer.id) == ("offer", "offer 1", 1)
    signal.deliver("answer", proto_rtc.SessionDescription(type="answer", sdp="answer", id=1))
    assert e.publisher is not None
    await _until(lambda: fake_pc(e.publisher).log[-1] == "remote answer")  # type: ignore[arg-type]


async def test_a_server_offer_is_answered_with_its_id(
    engine: tuple[RtcEngine, FakeSignal],
) -> None:
    _, signal = engine
    answer = await offer_from_server(signal, sdp_offer(), 7)
    assert (answer.answer.type, answer.answer.id) == ("answer", 7)
    assert answer.answer.sdp == "answer to 'v=0'"


async def test_trickled_candidates_go_to_the_transport_they_target(
    engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = engine
    assert e.publisher is not None and e.subscriber is not None
    await offer_from_server(signal, sdp_offer(), 1)
    signal.deliver(
        "trickle",
        proto_rtc.TrickleRequest(
            candidateInit=candidate_init(CANDIDATE_1), target=proto_rtc.SignalTarget.SUBSCRIBER
        ),
    )
    signal.deliver(
        "trickle",
        proto_rtc.TrickleRequest(
            candidateInit=candidate_init(CANDIDATE_2), target=proto_rtc.SignalTarget.PUBLISHER
        ),
    )
    subscriber = fake_pc(e.subscriber)
    await _until(lambda: "candidate 192.0.2.1" in subscriber.log)
    await idle()
    # the publisher has no answer yet: its candidate waits
    assert "candidate 192.0.2.2" not in fake_pc(e.publisher).log
    assert "candidate 192.0.2.2" not in subscriber.log


async def test_m_lines_map_to_track_sids_from_mid_to_track_id(
    engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = engine
    reported = Reported(e)
    sdp = sdp_offer(
        ("audio", "0", "sendonly", "PA_alice TR_msid_a", 9),
        ("video", "1", "sendonly", "PA_alice TR_msid_v", 9),
    )
    await offer_from_server(signal, sdp, 1, {"0": "TR_audio", "1": "TR_video"})
    # mid_to_track_id wins over the msid
    assert reported.events == [("started", "TR_audio", "0"), ("started", "TR_video", "1")]
    assert e.subscriber is not None
    transceivers = {t.mid: t for t in fake_pc(e.subscriber).getTransceivers()}
    assert reported.tracks["TR_audio"] is transceivers["0"].receiver.track  # fakes: aiortc's
    assert reported.tracks["TR_video"] is transceivers["1"].receiver.track


async def test_the_msid_names_the_track_when_mid_to_track_id_is_absent(
    engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = engine
    reported = Reported(e)
    sdp = sdp_offer(
        ("audio", "0", "sendonly", "PA_alice TR_from_msid", 9),
        ("video", "1", "sendonly", "PA_alice", 9),  # no track id at all: not reported
    )
    await offer_from_server(signal, sdp, 1, {"1": ""})
    assert reported.events == [("started", "TR_from_msid", "0")]


async def test_reused_and_inactive_m_lines_end_and_start_tracks(
    engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = engine
    reported = Reported(e)
    first = sdp_offer(("audio", "0", "sendonly", None, 9), ("video", "1", "sendonly", None, 9))
    await offer_from_server(signal, first, 1, {"0": "TR_A", "1": "TR_V"})
    reported.events.clear()

    # an offer that changes nothing reports nothing
    await offer_from_server(signal, first, 2, {"0": "TR_A", "1": "TR_V"})
    assert reported.events == []

    # TR_A unsubscribed (its m-line inactive), TR_V's m-line now carries TR_W
    second = sdp_offer(("audio", "0", "inactive", None, 9), ("video", "1", "sendonly", None, 9))
    await offer_from_server(signal, second, 3, {"0": "TR_A", "1": "TR_W"})
    assert reported.events == [
        ("ended", "TR_A", "0"),
        ("ended", "TR_V", "1"),
        ("started", "TR_W", "1"),
    ]
    # aiortc keeps one receiving track per m-line: TR_W comes on TR_V's track object
    assert reported.tracks["TR_W"] is reported.tracks["TR_V"]

    # the audio m-line comes back with another track; a rejected m-line (port 0) carries none
    reported.events.clear()
    third = sdp_offer(("audio", "0", "sendrecv", None, 9), ("video", "1", "sendonly", None, 0))
    await offer_from_server(signal, third, 4, {"0": "TR_B", "1": "TR_W"})
    assert reported.events == [("ended", "TR_W", "1"), ("started", "TR_B", "0")]


async def test_track_published_resolves_add_track(engine: tuple[RtcEngine, FakeSignal]) -> None:
    e, signal = engine
    request = proto_rtc.AddTrackRequest(cid="cid-1", name="mic")
    pending = asyncio.ensure_future(e.add_track(request))
    sent = await signal.next_sent("add_track")
    assert sent.add_track.cid == "cid-1"
    signal.deliver(
        "track_published",
        proto_rtc.TrackPublishedResponse(cid="cid-1", track=proto_models.TrackInfo(sid="TR_mic")),
    )
    info = await asyncio.wait_for(pending, 10)
    assert info.sid == "TR_mic"


# ---------------------------------------------------------------------- publication encoders


def test_audio_encoder_config_follows_the_options() -> None:
    assert audio_encoder_config(TrackPublishOptions()) == AudioEncoderConfig(bitrate=48_000)
    options = TrackPublishOptions()
    options.audio_encoding.max_bitrate = 24_000
    assert audio_encoder_config(options) == AudioEncoderConfig(bitrate=24_000)


def test_video_encoder_config_follows_the_options() -> None:
    default = video_encoder_config(TrackPublishOptions(simulcast=False), 1280, 720)
    assert default == VideoEncoderConfig(codec=VideoCodec.VP8, max_bitrate=1_700_000)
    options = TrackPublishOptions(video_codec=VideoCodec.H264, simulcast=False)
    options.video_encoding.max_bitrate = 900_000
    options.video_encoding.max_framerate = 15
    assert video_encoder_config(options, 640, 360) == VideoEncoderConfig(
        codec=VideoCodec.H264, max_bitrate=900_000, max_framerate=15.0
    )
    with pytest.raises(ValueError, match="VP9 is not available"):
        video_encoder_config(TrackPublishOptions(video_codec=VideoCodec.VP9), 640, 360)


@pytest.fixture
async def real_publisher() -> AsyncIterator[RtcEngine]:
    """An engine whose publisher is a real aiortc connection (offers only: no ICE)."""
    e = RtcEngine(FakeSignal())
    e.publisher = PeerTransport("publisher", RTCConfiguration(iceServers=[]))
    yield e
    await e.close()


async def test_add_publisher_track_installs_the_chosen_audio_encoder(
    real_publisher: RtcEngine,
) -> None:
    track = AudioStreamTrack()
    transceiver = real_publisher.add_publisher_track(track, AudioEncoderConfig(bitrate=32_000))
    encoder = installed_encoder(transceiver.sender)
    assert isinstance(encoder, OpusEncoder) and encoder.bitrate == 32_000
    assert real_publisher.publisher is not None
    offer = await real_publisher.publisher.pc.createOffer()
    rtpmaps = [line for line in offer.sdp.splitlines() if line.startswith("a=rtpmap:")]
    assert rtpmaps and all("opus/48000" in line for line in rtpmaps)
    track.stop()


async def test_add_publisher_track_installs_the_chosen_video_encoder(
    real_publisher: RtcEngine,
) -> None:
    track = VideoStreamTrack()
    config = VideoEncoderConfig(codec=VideoCodec.VP8, max_bitrate=400_000, max_framerate=15.0)
    transceiver = real_publisher.add_publisher_track(track, config)
    encoder = installed_encoder(transceiver.sender)
    assert isinstance(encoder, Vp8VideoEncoder)
    assert (encoder.max_bitrate, encoder.max_framerate) == (400_000, 15.0)
    assert real_publisher.publisher is not None
    offer = await real_publisher.publisher.pc.createOffer()
    codecs = {
        line.split()[1].split("/")[0]
        for line in offer.sdp.splitlines()
        if line.startswith("a=rtpmap:")
    }
    assert codecs == {"VP8", "rtx"}
    track.stop()


async def test_add_publisher_track_refuses_a_mismatched_encoder(real_publisher: RtcEngine) -> None:
    track = AudioStreamTrack()
    with pytest.raises(ValueError, match="audio track cannot be sent with a video encoder"):
        real_publisher.add_publisher_track(
            track, VideoEncoderConfig(codec=VideoCodec.VP8, max_bitrate=1)
        )
    track.stop()


async def test_add_publisher_track_needs_a_started_engine() -> None:
    e = RtcEngine(FakeSignal())
    with pytest.raises(ConnectionError, match="not started"):
        e.add_publisher_track(AudioStreamTrack(), AudioEncoderConfig())


# ---------------------------------------------------------------------- offers we cannot receive

FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)
VP9_ONLY = [("98", "VP9/90000", "profile-id=0"), ("99", "rtx/90000", "apt=98")]
VP8 = [("96", "VP8/90000", None), ("97", "rtx/90000", "apt=96")]
OPUS = [("111", "opus/48000/2", "minptime=10;useinbandfec=1")]


def server_offer(*mlines: tuple[str, str, str, str, list[tuple[str, str, str | None]]]) -> str:
    """A complete offer as the server makes it: (kind, mid, direction, track sid, codecs) m-lines.

    The data m-line comes first, as in LiveKit's subscriber offers.
    """
    mids = ["0"] + [m[1] for m in mlines]
    lines = ["v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    lines += ["a=msid-semantic:WMS *", "a=group:BUNDLE " + " ".join(mids)]
    common = [
        "c=IN IP4 0.0.0.0",
        "a=setup:actpass",
        "a=ice-ufrag:serverufrag",
        "a=ice-pwd:serverpasswordserverpassword",
        f"a=fingerprint:{FINGERPRINT}",
    ]
    lines += ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", *common, "a=mid:0"]
    lines += ["a=sendrecv", "a=sctp-port:5000", "a=max-message-size:65535"]
    for kind, mid, direction, track_sid, codecs in mlines:
        pts = " ".join(pt for pt, _, _ in codecs)
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pts}", *common, f"a=mid:{mid}"]
        lines += ["a=rtcp-mux", "a=rtcp-rsize"]
        for pt, rtpmap, fmtp in codecs:
            lines.append(f"a=rtpmap:{pt} {rtpmap}")
            if fmtp:
                lines.append(f"a=fmtp:{pt} {fmtp}")
        if direction in ("sendonly", "sendrecv"):
            lines.append(f"a=msid:PA_pub|{track_sid} {track_sid}")
        lines.append(f"a={direction}")
    return "\r\n".join(lines) + "\r\n"


def answered_sections(sdp: str) -> dict[str, tuple[int, str, list[str]]]:
    """mid -> (port, direction, codec names) of an answer; plus the BUNDLE group under 'bundle'."""
    from aiortc.sdp import SessionDescription

    parsed = SessionDescription.parse(sdp)
    out: dict[str, tuple[int, str, list[str]]] = {}
    for media in parsed.media:
        names = [c.mimeType.split("/")[1] for c in media.rtp.codecs]
        out[media.rtp.muxId] = (media.port, str(media.direction), names)
    bundle = next(g for g in parsed.group if g.semantic == "BUNDLE")
    out["bundle"] = (0, "", [str(i) for i in bundle.items])
    return out


class ReportedWithRejections(Reported):
    def __init__(self, engine: RtcEngine) -> None:
        super().__init__(engine)
        self.rejected: list[tuple[str, str]] = []
        engine.on_remote_track_rejected = lambda sid, reason: self.rejected.append((sid, reason))


@pytest.fixture
async def real_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[RtcEngine, FakeSignal]]:
    """A started engine on real aiortc connections (nothing to connect to: offline).

    ICE never completes offline, so renegotiations do not wait for it to settle.
    """
    monkeypatch.setattr(transport_module, "SETTLE_WAIT", 0.0)
    signal = FakeSignal()
    e = RtcEngine(signal)
    e.start(proto_rtc.JoinResponse(subscriber_primary=True))
    yield e, signal
    await e.close()


AUDIO_VP9_VP8 = server_offer(
    ("audio", "1", "sendonly", "TR_audio", OPUS),
    ("video", "2", "sendonly", "TR_vp9", VP9_ONLY),
    ("video", "3", "sendonly", "TR_vp8", VP8),
)


async def test_an_m_line_with_no_codec_we_know_is_rejected_and_the_rest_answered(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = real_engine
    reported = ReportedWithRejections(e)
    answer = await offer_from_server(signal, AUDIO_VP9_VP8, 1)
    sections = answered_sections(answer.answer.sdp)
    assert sections["1"][0] != 0 and sections["1"][1:] == ("recvonly", ["opus"])
    assert sections["3"][0] != 0 and sections["3"][1:] == ("recvonly", ["VP8", "rtx"])
    # RFC 3264: port 0, the offer's first format; RFC 8843: out of the bundle
    assert sections["2"] == (0, "inactive", ["VP9"])
    assert sections["bundle"][2] == ["0", "1", "3"]
    kinds = [line.split()[0] for line in answer.answer.sdp.splitlines() if line[:2] == "m="]
    assert kinds == ["m=application", "m=audio", "m=video", "m=video"]
    assert reported.events == [("started", "TR_audio", "1"), ("started", "TR_vp8", "3")]
    assert len(reported.rejected) == 1
    sid, reason = reported.rejected[0]
    assert sid == "TR_vp9" and "video/VP9" in reason and "m-line 2" in reason


async def test_renegotiation_after_a_rejected_m_line_keeps_working(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = real_engine
    reported = ReportedWithRejections(e)
    await offer_from_server(signal, AUDIO_VP9_VP8, 1)
    reported.events.clear()

    # the same offer again: the same answer, nothing reported twice
    again = await offer_from_server(signal, AUDIO_VP9_VP8, 2)
    assert answered_sections(again.answer.sdp)["2"] == (0, "inactive", ["VP9"])
    assert reported.events == [] and [sid for sid, _ in reported.rejected] == ["TR_vp9"]

    # the server reuses the rejected m-line for a track we can receive, adds another
    # unreceivable one (AV1), and stops the VP8 track
    reuse = server_offer(
        ("audio", "1", "sendonly", "TR_audio", OPUS),
        ("video", "2", "sendonly", "TR_vp8_new", VP8),
        ("video", "3", "recvonly", "", VP8),
        ("video", "4", "sendonly", "TR_av1", [("35", "AV1/90000", None)]),
    )
    answer = await offer_from_server(signal, reuse, 3)
    sections = answered_sections(answer.answer.sdp)
    assert sections["2"][0] != 0 and sections["2"][1:] == ("recvonly", ["VP8", "rtx"])
    assert sections["4"] == (0, "inactive", ["AV1"])
    assert sections["bundle"][2] == ["0", "1", "2", "3"]
    assert reported.events == [("ended", "TR_vp8", "3"), ("started", "TR_vp8_new", "2")]
    assert [sid for sid, _ in reported.rejected] == ["TR_vp9", "TR_av1"]
    assert e.subscriber is not None
    assert e.subscriber.pc.signalingState == "stable"


async def test_an_offer_with_only_known_codecs_is_answered_unchanged(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    e, signal = real_engine
    reported = ReportedWithRejections(e)
    offer = server_offer(("audio", "1", "sendonly", "TR_audio", OPUS))
    answer = await offer_from_server(signal, offer, 1)
    assert e.subscriber is not None
    assert answer.answer.sdp == e.subscriber.pc.localDescription.sdp
    assert reported.rejected == [] and reported.events == [("started", "TR_audio", "1")]


async def test_aiortc_still_refuses_what_the_offer_filter_rejects() -> None:
    """Canary: aiortc raises on exactly the m-lines unreceivable_sections finds."""
    from aiortc import RTCPeerConnection

    from livekit_py.engine.offer_filter import offer_for_aiortc, unreceivable_sections

    vp9_only = server_offer(("video", "1", "sendonly", "TR_vp9", VP9_ONLY))
    rejected = unreceivable_sections(vp9_only)
    assert [(s.index, s.mid, s.codecs) for s in rejected] == [(1, "1", ("video/VP9",))]
    assert unreceivable_sections(AUDIO_VP9_VP8)[0].mid == "2"
    assert unreceivable_sections(server_offer(("video", "1", "sendonly", "TR", VP8))) == []
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        with pytest.raises(Exception, match="Failed to set remote video description"):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=vp9_only, type="offer"))
    finally:
        await pc.close()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offer = offer_for_aiortc(vp9_only, rejected)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        (transceiver,) = pc.getTransceivers()
        assert transceiver.mid == "1" and transceiver.receiver.track is None
    finally:
        await pc.close()


# ---------------------------------------------------------------------- the publisher's answer


def _with_opus_fmtp(sdp: str, fmtp: str) -> str:
    """``sdp`` with ``fmtp`` as the Opus fmtp of every audio section (as a server answers)."""
    out: list[str] = []
    for line in sdp.splitlines():
        if line.startswith("a=fmtp:") and out and "opus/48000" in out[-1]:
            continue
        out.append(line)
        if line.startswith("a=rtpmap:") and "opus/48000" in line:
            payload_type = line.split(":", 1)[1].split()[0]
            out.append(f"a=fmtp:{payload_type} {fmtp}")
    return "\r\n".join(out) + "\r\n"


async def test_the_answer_sets_fec_and_dtx_and_receiver_reports_are_followed(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    """The server's answer says useinbandfec=1 (and usedtx=1): the encoder of the audio
    m-line sends FEC (and DTX); its expected loss follows the receiver reports until the
    track is unpublished."""
    from aiortc import RTCPeerConnection

    e, signal = real_engine
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def answer_next_offer(fmtp: str) -> None:
        offer = (await signal.next_sent("offer")).offer
        if "m=audio" in offer.sdp:  # offered as libwebrtc does, for the answer to say it
            assert opus_fmtp_by_mid(offer.sdp) == {"1": {"useinbandfec": "1"}}
        await server.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await server.setLocalDescription(await server.createAnswer())
        sdp = _with_opus_fmtp(server.localDescription.sdp, fmtp)
        signal.deliver("answer", proto_rtc.SessionDescription(type="answer", sdp=sdp, id=offer.id))

    track = AudioStreamTrack()
    try:
        await answer_next_offer("minptime=10;useinbandfec=1")  # the data channels' offer
        transceiver = e.add_publisher_track(track, AudioEncoderConfig(bitrate=32_000))
        encoder = installed_encoder(transceiver.sender)
        assert isinstance(encoder, OpusEncoder) and not encoder.fec and encoder.dtx
        feedback = e._loss_feedback[transceiver]
        assert feedback.running
        negotiated = asyncio.ensure_future(e.negotiate_publisher())
        await answer_next_offer("minptime=10;useinbandfec=1;usedtx=1;maxaveragebitrate=24000")
        await asyncio.wait_for(negotiated, 10)
        assert encoder.fec and encoder.dtx and encoder.bitrate == 24_000

        negotiated = asyncio.ensure_future(e.negotiate_publisher())
        await answer_next_offer("minptime=10")
        await asyncio.wait_for(negotiated, 10)
        assert not encoder.fec and not encoder.dtx and encoder.bitrate == 32_000

        await e.remove_publisher_track(transceiver, renegotiate=False)
        assert not feedback.running and transceiver not in e._loss_feedback
        again = e.add_publisher_track(AudioStreamTrack(), AudioEncoderConfig())
        assert e._loss_feedback[again].running
        await e.close()
        assert e._loss_feedback == {}
    finally:
        track.stop()
        await server.close()


# ---------------------------------------------------------------------- received video frames

H264 = [
    ("102", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
    ("103", "rtx/90000", "apt=102"),
]


async def test_subscriber_video_receivers_get_our_frame_assembler_before_the_answer(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    from livekit_py.webrtc.aiortc_adapter import installed_receive_buffer
    from livekit_py.webrtc.frame_assembler import CodecKeyframeTest, FrameAssembler

    e, signal = real_engine
    assert e.subscriber is not None
    pc = e.subscriber.pc
    seen_at_answer: dict[str, object] = {}
    send = signal.send

    async def send_and_look(request: proto_rtc.SignalRequest) -> None:
        if request.WhichOneof("message") == "answer":
            for t in pc.getTransceivers():
                seen_at_answer[str(t.mid)] = installed_receive_buffer(t.receiver)
        await send(request)

    signal.send = send_and_look  # type: ignore[method-assign]
    offer = server_offer(
        ("audio", "1", "sendonly", "TR_audio", OPUS),
        ("video", "2", "sendonly", "TR_vp8", VP8),
    )
    await offer_from_server(signal, offer, 1)
    vp8 = seen_at_answer["2"]
    assert isinstance(vp8, FrameAssembler)
    assert vp8.keyframe_test == CodecKeyframeTest({96: "video/VP8", 97: "video/rtx"})
    assert not isinstance(seen_at_answer["1"], FrameAssembler)  # audio: not ours to change

    # the m-line reused for an H.264 track, and a new one: the same assembler follows
    # the new codecs, the new m-line gets its own
    reuse = server_offer(
        ("audio", "1", "sendonly", "TR_audio", OPUS),
        ("video", "2", "sendonly", "TR_h264", H264),
        ("video", "3", "sendonly", "TR_vp8_2", VP8),
    )
    await offer_from_server(signal, reuse, 2)
    assert seen_at_answer["2"] is vp8
    assert vp8.keyframe_test == CodecKeyframeTest({102: "video/H264", 103: "video/rtx"})
    assert isinstance(seen_at_answer["3"], FrameAssembler) and seen_at_answer["3"] is not vp8


@pytest.fixture
async def real_e2ee_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[RtcEngine, FakeSignal]]:
    """As ``real_engine``, with end-to-end encryption."""
    monkeypatch.setattr(transport_module, "SETTLE_WAIT", 0.0)
    signal = FakeSignal()
    e = RtcEngine(signal, EngineConfig(e2ee=True))
    e.start(proto_rtc.JoinResponse(subscriber_primary=True))
    yield e, signal
    await e.close()


async def test_with_e2ee_every_receiver_decrypts_before_the_answer_goes_out(
    real_e2ee_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    """A ReceiveDecryption on each receiving m-line (dropping frames until the room binds
    it) before the server can send; an m-line given another track is unbound first."""
    from livekit_py.webrtc.aiortc_adapter import installed_frame_filter
    from livekit_py.webrtc.e2ee_hooks import ReceiveDecryption

    e, signal = real_e2ee_engine
    assert e.subscriber is not None
    pc = e.subscriber.pc
    at_answer: dict[str, tuple[object, bool]] = {}
    send = signal.send

    async def send_and_look(request: proto_rtc.SignalRequest) -> None:
        if request.WhichOneof("message") == "answer":
            for t in pc.getTransceivers():
                decryption = e.receive_decryption(t)
                bound = decryption is not None and decryption.bound
                at_answer[str(t.mid)] = (installed_frame_filter(t.receiver), bound)
        await send(request)

    signal.send = send_and_look  # type: ignore[method-assign]
    reported = Reported(e)
    offer = server_offer(
        ("audio", "1", "sendonly", "TR_audio", OPUS),
        ("video", "2", "sendonly", "TR_vp8", VP8),
    )
    await offer_from_server(signal, offer, 1)
    transceivers = {t.mid: t for t in pc.getTransceivers()}
    gates = {mid: e.receive_decryption(transceivers[mid]) for mid in ("1", "2")}
    for gate in gates.values():
        assert isinstance(gate, ReceiveDecryption) and not gate.bound
    assert at_answer["1"] == (gates["1"].filter_frames, False)  # type: ignore[union-attr]
    # video: the packet trailer is stripped first, then the frame decrypted
    video_filter, bound = at_answer["2"]
    trailers = e.frame_metadata(transceivers["2"])
    assert isinstance(video_filter, FilterChain) and trailers is not None and not bound
    assert video_filter.filters == (trailers.filter_frames, gates["2"].filter_frames)  # type: ignore[union-attr]
    assert gates["1"].kind == "audio" and gates["2"].kind == "video"  # type: ignore[union-attr]
    assert [sid for kind, sid, _ in reported.events if kind == "started"] == ["TR_audio", "TR_vp8"]
    for gate in gates.values():
        gate.bind(None)  # (the room does this for each subscribed track)
    reuse = server_offer(
        ("audio", "1", "sendonly", "TR_audio", OPUS),
        ("video", "2", "sendonly", "TR_other", VP8),
    )
    await offer_from_server(signal, reuse, 2)
    assert at_answer["1"][1] is True  # the same track: still bound
    assert at_answer["2"][1] is False  # another track: unbound before the answer
    assert e.receive_decryption(transceivers["2"]) is gates["2"]


async def test_without_e2ee_video_receivers_only_strip_packet_trailers(
    real_engine: tuple[RtcEngine, FakeSignal],
) -> None:
    from livekit_py.webrtc.aiortc_adapter import installed_frame_filter

    e, signal = real_engine
    offer = server_offer(("video", "1", "sendonly", "TR_vp8", VP8))
    await offer_from_server(signal, offer, 1)
    assert e.subscriber is not None
    for t in e.subscriber.pc.getTransceivers():
        # only the packet trailer (frame metadata) is taken off the frames
        trailers = e.frame_metadata(t)
        assert trailers is not None
        assert installed_frame_filter(t.receiver) == trailers.filter_frames
        assert e.receive_decryption(t) is None
