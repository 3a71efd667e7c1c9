"""Canaries for the aiortc/aioice internals livekit_py uses: one per hook, on real objects.

If one of these fails after an aiortc or aioice upgrade, the hook no longer does
what livekit_py needs, even if the import-time check still passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import aioice
import aioice.stun
import aiortc
import av
import numpy as np
import pytest
from aioice.ice import CandidatePair
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from livekit_py.webrtc import aiortc_adapter
from livekit_py.webrtc.aiortc_adapter import (
    DtlsDetails,
    EncodedFrame,
    TransformingH264Encoder,
    TransformingVp8Encoder,
    adopt_remote_ice_restart,
    aiortc_target_bitrate,
    depayloaded,
    disable_consent_checks,
    divert_received_packets,
    dtls_details,
    enlarge_receive_buffers,
    ice_check_list,
    ice_connection_of,
    ice_connections,
    install_encoder,
    install_receive_buffer,
    installed_encoder,
    installed_frame_filter,
    installed_receive_buffer,
    nominated_pairs,
    observe_ice_checks,
    prompt_remote_nomination,
    read_queued_datagrams,
    received_rtp_timestamp,
    retransmit_sctp_now,
    set_aiortc_target_bitrate,
    set_frame_filter,
)
from livekit_py.webrtc.frame_assembler import (
    CodecKeyframeTest,
    FrameAssembler,
    ensure_frame_assembler,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "livekit_py"


def _video_frame(width: int = 64, height: int = 48, pts: int = 0) -> av.VideoFrame:
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[: height // 2] = 30
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


# ---------------------------------------------------------------------- the import check


def test_the_installed_versions_have_every_internal() -> None:
    assert aiortc_adapter._missing_internals() == []


def test_a_missing_internal_fails_the_import_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_SENDER_ENCODER", "_RTCRtpSender__renamed")
    monkeypatch.setattr(aiortc_adapter, "_QUERY_CONSENT", "renamed_consent")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    message = str(caught.value)
    assert "_RTCRtpSender__renamed" in message
    assert "renamed_consent" in message
    assert f"aiortc {aiortc.__version__}" in message
    assert f"aioice {aioice.__version__}" in message


# ---------------------------------------------------------------------- install_encoder


class _CountingOpusEncoder(OpusEncoder):
    """aiortc's Opus encoder that reports, on the loop, each frame it encodes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, enough: int) -> None:
        super().__init__()
        self._loop = loop
        self._lock = threading.Lock()
        self.count = 0
        self.enough = enough
        self.done = asyncio.Event()

    def encode(
        self, frame: av.frame.Frame, force_keyframe: bool = False
    ) -> tuple[list[bytes], int]:
        with self._lock:
            self.count += 1
            if self.count == self.enough:
                self._loop.call_soon_threadsafe(self.done.set)
        return super().encode(frame, force_keyframe)


async def test_install_encoder_makes_a_real_sender_encode_with_ours() -> None:
    """A real RTCRtpSender, sending on localhost, encodes with the installed encoder."""
    config = RTCConfiguration(iceServers=[])
    sender_pc, receiver_pc = RTCPeerConnection(config), RTCPeerConnection(config)
    track = AudioStreamTrack()
    encoder = _CountingOpusEncoder(asyncio.get_running_loop(), enough=5)
    try:
        rtp_sender = sender_pc.addTrack(track)
        assert installed_encoder(rtp_sender) is None  # aiortc would make its own
        install_encoder(rtp_sender, encoder)
        assert installed_encoder(rtp_sender) is encoder
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await asyncio.wait_for(encoder.done.wait(), 30)
        assert installed_encoder(rtp_sender) is encoder  # not replaced by aiortc's
    finally:
        track.stop()
        await sender_pc.close()
        await receiver_pc.close()


def test_install_encoder_refuses_what_is_not_a_sender_or_an_encoder() -> None:
    with pytest.raises(ValueError, match="RTCRtpSender"):
        install_encoder(object(), OpusEncoder())  # type: ignore[arg-type]


# ---------------------------------------------------------------------- target bitrate


@pytest.mark.parametrize(
    ("cls", "bitrate"), [(Vp8Encoder, 800_000), (H264Encoder, 1_200_000)], ids=["VP8", "H264"]
)
def test_the_private_bitrate_is_what_aiortc_encodes_with(
    cls: type[Vp8Encoder] | type[H264Encoder], bitrate: int
) -> None:
    """Set through the hook, read back by aiortc's own accessor and codec setup."""
    encoder = cls()
    assert aiortc_target_bitrate(encoder) != bitrate
    set_aiortc_target_bitrate(encoder, bitrate)
    assert aiortc_target_bitrate(encoder) == bitrate
    assert cls.target_bitrate.fget(encoder) == bitrate  # type: ignore[attr-defined]
    payloads, _ = encoder.encode(_video_frame())
    assert payloads
    assert encoder.codec is not None
    assert encoder.codec.bit_rate == bitrate


def test_the_bitrate_hook_refuses_other_encoders() -> None:
    with pytest.raises(ValueError, match="Vp8Encoder or H264Encoder"):
        set_aiortc_target_bitrate(OpusEncoder(), 1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- ICE connections


async def test_ice_connections_are_the_gatherers_aioice_connections() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio")
        (connection,) = ice_connections(pc)
        assert isinstance(connection, aioice.Connection)
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        local = gatherer.getLocalParameters()
        assert (connection.local_username, connection.local_password) == (
            local.usernameFragment,
            local.password,
        )
    finally:
        await pc.close()


# ---------------------------------------------------------------------- receive buffers


def _rmem_max() -> int | None:
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return None


async def test_enlarged_receive_buffers_are_those_of_the_gathered_sockets() -> None:
    connection = aioice.Connection(
        ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False
    )
    try:
        await connection.gather_candidates()
        sockets = [
            protocol.transport.get_extra_info("socket")
            for protocol in getattr(connection, aiortc_adapter._ICE_PROTOCOLS)
        ]
        assert sockets
        before = [s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for s in sockets]
        wanted = 2 * max(before)
        sizes = enlarge_receive_buffers(connection, wanted)
        assert sizes == [s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for s in sockets]
        assert all(after >= first for after, first in zip(sizes, before, strict=True))
        rmem_max = _rmem_max()
        if rmem_max is not None and rmem_max >= wanted:  # else the kernel caps the request
            assert all(size >= wanted for size in sizes)
        assert enlarge_receive_buffers(connection, wanted) == sizes  # already large enough
    finally:
        await connection.close()


async def test_queued_datagrams_are_read_together_and_in_order() -> None:
    """asyncio calls the protocol once per read; ours hands on what else is queued."""
    connection = aioice.Connection(
        ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await connection.gather_candidates()
        protocol = next(
            p
            for p in getattr(connection, aiortc_adapter._ICE_PROTOCOLS)
            if p.local_candidate.host.startswith("127.") or p.local_candidate.host.count(".") == 3
        )
        handed: list[bytes] = []
        protocol.datagram_received = lambda data, addr: handed.append(data)
        assert read_queued_datagrams(connection, 64) >= 1
        assert read_queued_datagrams(connection, 64) == 0  # once per socket
        reads: list[int] = []
        drained = protocol.datagram_received

        def counting(data: bytes, addr: tuple[Any, ...]) -> None:
            reads.append(len(handed))
            drained(data, addr)

        protocol.datagram_received = counting
        address = protocol.transport.get_extra_info("sockname")[:2]
        payloads = [b"\x80datagram %d" % i for i in range(20)]
        for payload in payloads:  # all queued before the loop runs again
            sender.sendto(payload, address)
        for _ in range(200):
            if len(handed) >= len(payloads):
                break
            await asyncio.sleep(0.01)
        assert handed == payloads
        assert len(reads) < len(payloads)  # more than one datagram per read
        with pytest.raises(ValueError, match="limit"):
            read_queued_datagrams(connection, 0)
    finally:
        sender.close()
        await connection.close()


def test_a_missing_protocol_list_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_ICE_PROTOCOLS", "_renamed_protocols")
    with pytest.raises(ImportError, match="_renamed_protocols"):
        aiortc_adapter._check_internals()


# ---------------------------------------------------------------------- consent checks


async def test_disabled_consent_checks_are_what_connect_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aioice's connect() starts the consent loop through the instance: ours replaces it."""
    calls: list[str] = []

    async def replacement() -> None:
        calls.append("replacement")

    monkeypatch.setattr(aiortc_adapter, "_no_consent_checks", replacement)
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for this, other in ((a, b), (b, a)):
            this.remote_username = other.local_username
            this.remote_password = other.local_password
            for candidate in other.local_candidates:
                await this.add_remote_candidate(candidate)
            await this.add_remote_candidate(None)
        disable_consent_checks(a)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 30)
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls == ["replacement"]
    finally:
        await a.close()
        await b.close()


# ---------------------------------------------------------------------- remote ICE restarts


def test_a_missing_ice_restart_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_NOMINATED", "_renamed_nominated")
    with pytest.raises(ImportError, match="_renamed_nominated"):
        aiortc_adapter._check_internals()


async def _connected_pair() -> tuple[aioice.Connection, aioice.Connection]:
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for this, other in ((a, b), (b, a)):
        this.remote_username = other.local_username
        this.remote_password = other.local_password
        for candidate in other.local_candidates:
            await this.add_remote_candidate(candidate)
        await this.add_remote_candidate(None)
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 30)
    return a, b


async def test_adopting_a_remote_ice_restart_nominates_with_the_new_credentials() -> None:
    """The remote agent restarts (new ufrag/pwd): our nominated pair is checked again,
    signed with the new password, and the remote agent accepts it; nothing else changes."""
    a, b = await _connected_pair()
    try:
        # b restarts ICE: it now answers only checks for its new credentials
        new_user, new_password = "restartUfrag", "restartPasswordOf22chars"
        b._local_username = new_user  # test-only: play the restarting remote agent
        b._local_password = new_password
        assert await adopt_remote_ice_restart(a, new_user, new_password) == 1
        assert (a.remote_username, a.remote_password) == (new_user, new_password)
        # unchanged credentials: nothing to do
        assert await adopt_remote_ice_restart(a, new_user, new_password) == 0
        with pytest.raises(ValueError):
            await adopt_remote_ice_restart(a, "", new_password)
        # and data still flows on the pair
        await a.send(b"after restart")
        assert await asyncio.wait_for(b.recv(), 5) == b"after restart"
    finally:
        await a.close()
        await b.close()


async def test_a_connection_not_started_is_left_to_aiortc() -> None:
    a = aioice.Connection(ice_controlling=True, components=1)
    assert await adopt_remote_ice_restart(a, "someUfrag", "somePasswordOf22charsXX") == 0
    assert a.remote_username is None


# ---------------------------------------------------------------------- prompt nomination


class _PionLikeAgent(aioice.Connection):
    """A controlling agent that nominates the way pion does without its 200 ms ticker.

    Its own checks carry no USE-CANDIDATE; it nominates a pair only when a check from
    the remote arrives on a pair whose own check has already succeeded.
    """

    async def check_start(self, pair: Any) -> None:
        self.check_state(pair, CandidatePair.State.IN_PROGRESS)
        request = self.build_request(pair, nominate=False)
        assert self.remote_password is not None
        try:
            await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode()
            )
        except aioice.stun.TransactionError:
            self.check_state(pair, CandidatePair.State.FAILED)
            self.check_complete(pair)
            return
        self.check_state(pair, CandidatePair.State.SUCCEEDED)
        self.check_complete(pair)

    def check_incoming(self, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        super().check_incoming(message, addr, protocol)
        for pair in self._check_list:
            if pair.protocol is protocol and pair.remote_addr == addr:
                if pair.state == CandidatePair.State.SUCCEEDED and not self._nominated:
                    self.check_start_task_nominating(pair)
                return

    def _check_list_maybe_fail(self) -> None:
        # like pion, a succeeded pair is kept waiting for its nomination
        if not any(p.state == CandidatePair.State.SUCCEEDED for p in self._check_list):
            super()._check_list_maybe_fail()

    def check_start_task_nominating(self, pair: Any) -> None:
        async def nominate() -> None:
            assert self.remote_password is not None
            request = self.build_request(pair, nominate=True)
            await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode()
            )
            pair.nominated = True
            self.check_complete(pair)

        self.nominating = asyncio.ensure_future(nominate())


async def _controlled_checks_first(prompt: bool) -> tuple[aioice.Connection, aioice.Connection]:
    """Our controlled agent's checks all succeed before the controlling one starts its own:
    the order in which pion, without a prompt, waits for its next tick to nominate."""
    pion = _PionLikeAgent(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    ours = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    if prompt:
        prompt_remote_nomination(ours)
        prompt_remote_nomination(ours)  # idempotent
    await asyncio.gather(pion.gather_candidates(), ours.gather_candidates())
    for this, other in ((pion, ours), (ours, pion)):
        this.remote_username = other.local_username
        this.remote_password = other.local_password
        for candidate in other.local_candidates:
            await this.add_remote_candidate(candidate)
        await this.add_remote_candidate(None)
    ours_connect = asyncio.ensure_future(ours.connect())
    for _ in range(500):  # pion answers our checks before it starts: its pairs stay waiting
        pairs = ours._check_list
        if pairs and all(p.state == CandidatePair.State.SUCCEEDED for p in pairs):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("our checks never succeeded")
    pion_connect = asyncio.ensure_future(pion.connect())
    try:
        await asyncio.wait_for(asyncio.gather(ours_connect, pion_connect), 10)
    except BaseException:
        ours_connect.cancel()
        pion_connect.cancel()
        await ours.close()
        await pion.close()
        raise
    return pion, ours


async def test_a_controlled_agent_prompts_a_pion_like_agent_to_nominate() -> None:
    pion, ours = await _controlled_checks_first(prompt=True)
    try:
        await pion.send(b"nominated")
        assert await asyncio.wait_for(ours.recv(), 5) == b"nominated"
    finally:
        await ours.close()
        await pion.close()
    assert not getattr(ours, aiortc_adapter._PROMPTED)  # nothing left in flight


async def test_canary_without_the_prompt_a_pion_like_agent_never_nominates() -> None:
    """What the prompt is for: with this order and no ticker, nobody nominates."""
    with pytest.raises(asyncio.TimeoutError):
        await _controlled_checks_first(prompt=False)


async def test_a_controlling_agent_is_not_prompted() -> None:
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    prompt_remote_nomination(a)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for this, other in ((a, b), (b, a)):
        this.remote_username = other.local_username
        this.remote_password = other.local_password
        for candidate in other.local_candidates:
            await this.add_remote_candidate(candidate)
        await this.add_remote_candidate(None)
    try:
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 30)
        assert not getattr(a, aiortc_adapter._PROMPTED)
    finally:
        await a.close()
        await b.close()


def test_a_missing_nomination_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_CHECK_INCOMING", "_renamed_check_incoming")
    with pytest.raises(ImportError, match="_renamed_check_incoming"):
        aiortc_adapter._check_internals()


# ---------------------------------------------------------------------- SCTP after an outage


def test_a_missing_sctp_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_SCTP_T3_EXPIRED", "_renamed_t3_expired")
    with pytest.raises(ImportError, match="_renamed_t3_expired"):
        aiortc_adapter._check_internals()


_Pair = tuple[RTCPeerConnection, RTCPeerConnection, Any, "asyncio.Queue[Any]"]


async def _data_channel_pair() -> _Pair:
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Queue[Any] = asyncio.Queue()
    opened = asyncio.Event()

    @b.on("datachannel")
    def on_channel(channel: Any) -> None:
        channel.on("message", received.put_nowait)

    channel = a.createDataChannel("reliable")
    channel.on("open", opened.set)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(opened.wait(), 30)
    channel.send("first")
    assert await asyncio.wait_for(received.get(), 30) == "first"
    return a, b, channel, received


async def test_retransmit_sctp_now_sends_what_was_lost_without_waiting_for_the_timer() -> None:
    a, b, channel, received = await _data_channel_pair()
    sctp = a.sctp
    assert sctp is not None
    try:
        # the peer's SACK of "first" may still be on its way (on Python 3.12 it always is)
        for _ in range(300):
            if getattr(sctp, aiortc_adapter._SCTP_T3_HANDLE) is None:
                break
            await asyncio.sleep(0.01)
        assert retransmit_sctp_now(sctp) is False  # nothing outstanding
        sctp._rto = 60.0  # test-only: the timer alone would not resend within the test
        real_send = sctp._send_chunk
        dropped = asyncio.Event()

        async def lose_data(chunk: Any) -> None:  # the path is down for DATA chunks
            if type(chunk).__name__ == "DataChunk":
                dropped.set()
                return
            await real_send(chunk)

        sctp._send_chunk = lose_data
        channel.send("held during the outage")
        await asyncio.wait_for(dropped.wait(), 30)
        sctp._send_chunk = real_send  # the path is back
        assert retransmit_sctp_now(sctp) is True
        assert await asyncio.wait_for(received.get(), 30) == "held during the outage"
    finally:
        await a.close()
        await b.close()


# ---------------------------------------------------------------------- received audio packets


async def test_diverted_audio_packets_reach_the_sink_and_not_aiortcs_decoder() -> None:
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    packets: list[Any] = []
    enough = asyncio.Event()

    def sink(packet: Any) -> None:
        packets.append(packet)
        if len(packets) >= 10:
            enough.set()

    @receiver_pc.on("track")
    def on_track(track: Any) -> None:
        (transceiver,) = receiver_pc.getTransceivers()
        divert_received_packets(transceiver.receiver, sink)

    sender_pc.addTrack(AudioStreamTrack())
    try:
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await asyncio.wait_for(enough.wait(), 30)
        sequences = [p.sequence_number for p in packets]
        assert sequences == sorted(sequences) and all(p.payload for p in packets)
        (transceiver,) = receiver_pc.getTransceivers()
        # aiortc decoded nothing: its track has no frame queued
        assert transceiver.receiver.track._queue.qsize() == 0
        with pytest.raises(ValueError, match="audio"):
            video_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            try:
                divert_received_packets(video_pc.addTransceiver("video").receiver, sink)
            finally:
                await video_pc.close()
    finally:
        await sender_pc.close()
        await receiver_pc.close()


# ---------------------------------------------------------------------- received video frames


def test_a_missing_receive_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_RECEIVER_DECODER_QUEUE", "_RTCRtpReceiver__renamed_q")
    monkeypatch.setattr(aiortc_adapter, "_PACKET_DATA", "_renamed_data")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    assert "_RTCRtpReceiver__renamed_q" in str(caught.value)
    assert "_renamed_data" in str(caught.value)


class _NoisyVideoTrack(VideoStreamTrack):
    """Small random pictures: frames large enough to take several packets, at 30 fps."""

    def __init__(self) -> None:
        super().__init__()
        self._rng = np.random.default_rng(7)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        pixels = self._rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


class _RecordingAssembler(FrameAssembler):
    """Our assembler, noting for every frame it releases the packet that released it."""

    def __init__(self, codecs: dict[int, str]) -> None:
        super().__init__(CodecKeyframeTest(codecs))
        self.packets: list[RtpPacket] = []
        self.releases: list[tuple[RtpPacket, list[int]]] = []

    def add_frames(self, packet: RtpPacket) -> tuple[bool, list[EncodedFrame]]:
        self.packets.append(packet)
        pli, frames = super().add_frames(packet)
        if frames:
            self.releases.append((packet, [f.timestamp for f in frames]))
        return pli, frames


async def _video_pair(
    mime: str, install: Any
) -> tuple[RTCPeerConnection, RTCPeerConnection, asyncio.Future[Any]]:
    """A sender sending ``mime`` video to a receiver; ``install(receiver, codecs)`` on its track."""
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    remote: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    transceiver = sender_pc.addTransceiver(_NoisyVideoTrack(), direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in capabilities if c.mimeType.lower() in (mime.lower(), "video/rtx")]
    )
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    offer = sender_pc.localDescription
    codecs = {
        c.payloadType: c.mimeType for c in SessionDescription.parse(offer.sdp).media[0].rtp.codecs
    }

    @receiver_pc.on("track")
    def on_track(track: Any) -> None:
        (receiving,) = receiver_pc.getTransceivers()
        install(receiving.receiver, codecs)
        remote.set_result(track)

    await receiver_pc.setRemoteDescription(offer)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    return sender_pc, receiver_pc, remote


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
async def test_installed_frame_assembler_feeds_the_receivers_track(mime: str) -> None:
    """Real VP8/H.264 from aiortc's sender: frames come out of the receiver's track, each
    released by our assembler at its own marker packet (aiortc's buffer: at the next frame's)."""
    assemblers: list[_RecordingAssembler] = []

    def install(receiver: Any, codecs: dict[int, str]) -> None:
        assembler = _RecordingAssembler(codecs)
        install_receive_buffer(receiver, assembler)
        assert installed_receive_buffer(receiver) is assembler
        assemblers.append(assembler)

    sender_pc, receiver_pc, remote = await _video_pair(mime, install)
    try:
        track = await asyncio.wait_for(remote, 30)
        for _ in range(10):
            frame = await asyncio.wait_for(track.recv(), 30)
            assert (frame.width, frame.height) == (128, 96)
        (assembler,) = assemblers
        assert assembler.stats.frames_assembled >= 10
        assert assembler.stats.frames_dropped == 0
        for packet, timestamps in assembler.releases:
            assert packet.marker and timestamps == [packet.timestamp]  # at its own marker
        sizes: dict[int, int] = {}
        for packet in assembler.packets:
            sizes[packet.timestamp] = sizes.get(packet.timestamp, 0) + 1
        assert max(sizes.values()) > 1  # multi-packet frames were assembled too
        # aiortc's own buffer, fed the same packets, releases each frame only at a
        # packet of the next frame: the latency this assembler removes
        theirs = JitterBuffer(capacity=512, is_video=True)
        late = 0
        for packet in assembler.packets:
            _, frame = theirs.add(packet)
            if frame is not None:
                assert packet.timestamp != frame.timestamp
                late += 1
        assert late >= 9
        assert depayloaded(assembler.packets[0])  # the data aiortc attached
    finally:
        await sender_pc.close()
        await receiver_pc.close()


class _Withholding:
    """Holds one marker packet back for two more frames, then hands it to the assembler."""

    def __init__(self, inner: FrameAssembler) -> None:
        self.inner = inner
        self.held: RtpPacket | None = None
        self.markers_after = 0
        self.batch: list[int] = []  # RTP timestamps of the frames released together
        self.origin: int | None = None  # the first frame's timestamp (aiortc's pts origin)

    def add_frames(self, packet: RtpPacket) -> tuple[bool, list[EncodedFrame]]:
        if self.held is None and not self.batch and packet.marker:
            if self.inner.stats.frames_assembled >= 5:
                self.held = packet
                return False, []
        pli, frames = self.inner.add_frames(packet)
        if self.held is not None and packet.marker:
            self.markers_after += 1
            if self.markers_after == 2:
                held, self.held = self.held, None
                pli_held, earlier = self.inner.add_frames(held)
                frames, pli = earlier + frames, pli or pli_held
                self.batch = [f.timestamp for f in frames]
        if frames and self.origin is None:
            self.origin = frames[0].timestamp
        return pli, frames


async def test_frames_completed_together_are_all_decoded_at_once_in_order() -> None:
    """A packet completing three frames: the receiver decodes all three, in order."""
    buffers: list[_Withholding] = []

    def install(receiver: Any, codecs: dict[int, str]) -> None:
        buffers.append(_Withholding(FrameAssembler(CodecKeyframeTest(codecs))))
        install_receive_buffer(receiver, buffers[0])

    sender_pc, receiver_pc, remote = await _video_pair("video/VP8", install)
    try:
        track = await asyncio.wait_for(remote, 30)
        pts: list[int] = []
        (buffer,) = buffers

        async def receive() -> None:
            while not buffer.batch or not {
                (t - buffer.origin) % (1 << 32)
                for t in buffer.batch  # type: ignore[operator]
            } <= {p % (1 << 32) for p in pts}:
                pts.append((await track.recv()).pts)

        await asyncio.wait_for(receive(), 30)
        assert len(buffer.batch) == 3
        assert pts == sorted(set(pts))  # decoded in order, none twice
        assert buffer.inner.stats.frames_dropped == 0
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_ensure_frame_assembler_installs_once_and_follows_the_codecs() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video")
        receiver = transceiver.receiver
        first = ensure_frame_assembler(transceiver, {96: "video/VP8"})
        assert installed_receive_buffer(receiver) is first
        again = ensure_frame_assembler(transceiver, {102: "video/H264"})
        assert again is first
        assert again.keyframe_test == CodecKeyframeTest({102: "video/H264"})
        with pytest.raises(ValueError, match="video"):
            ensure_frame_assembler(pc.addTransceiver("audio"), {111: "audio/opus"})
        with pytest.raises(ValueError, match="add"):
            install_receive_buffer(receiver, object())  # type: ignore[arg-type]
    finally:
        await pc.close()


# ---------------------------------------------------------------------- encoded frames


def test_a_missing_packetizer_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_PACKETIZE", "_renamed_packetize")
    monkeypatch.setattr(aiortc_adapter, "_SPLIT_BITSTREAM", "_renamed_split")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    assert "Vp8Encoder has no _renamed_packetize" in str(caught.value)
    assert "H264Encoder has no _renamed_split" in str(caught.value)


def _tagging(seen: list[tuple[bytes, int]]) -> Any:
    """A frame transform that notes each frame and appends a marker to it."""

    def transform(frame: bytes, timestamp: int) -> bytes:
        seen.append((frame, timestamp))
        return frame + b"\x00\x00\x01TAG"  # (a start code, to be split off for H.264)

    return transform


def test_the_vp8_transform_sees_the_frame_before_the_payload_descriptor() -> None:
    """What aiortc sends depayloads (descriptor stripped) to exactly what the transform made."""
    plain, transformed = Vp8Encoder(), TransformingVp8Encoder()
    seen: list[tuple[bytes, int]] = []
    transformed.frame_transform = _tagging(seen)
    transformed.picture_id = plain.picture_id
    frame = _video_frame(pts=9000)
    expected, _ = plain.encode(frame, force_keyframe=True)
    payloads, timestamp = transformed.encode(_video_frame(pts=9000), force_keyframe=True)
    ((data, seen_timestamp),) = seen
    assert seen_timestamp == timestamp == 9000
    assert data == b"".join(VpxPayloadDescriptor.parse(p)[1] for p in expected)  # no descriptor
    assert b"".join(vp8_depayload(p) for p in payloads) == data + b"\x00\x00\x01TAG"
    assert VpxPayloadDescriptor.parse(payloads[0])[0].partition_start == 1
    # a pre-encoded frame (pack) goes through it too, and a dropped frame sends nothing
    transformed.frame_transform = lambda frame, ts: None
    packet = av.Packet(data)
    packet.pts, packet.time_base = 3000, Fraction(1, 90000)
    assert transformed.pack(packet) == ([], 3000)


def test_the_h264_transform_sees_the_access_unit_with_4_byte_start_codes() -> None:
    plain, transformed = H264Encoder(), TransformingH264Encoder()
    seen: list[tuple[bytes, int]] = []
    transformed.frame_transform = _tagging(seen)
    expected, _ = plain.encode(_video_frame(pts=0), force_keyframe=True)
    payloads, timestamp = transformed.encode(_video_frame(pts=0), force_keyframe=True)
    ((unit, _),) = seen
    assert unit.startswith(b"\x00\x00\x00\x01")
    assert b"".join(h264_depayload(p) for p in expected) == unit  # what a receiver assembles
    assembled = b"".join(h264_depayload(p) for p in payloads)
    assert assembled == unit + b"\x00\x00\x00\x01TAG"  # the added NAL unit packetized too
    assert timestamp == 0
    transformed.frame_transform = lambda frame, ts: None
    assert transformed.encode(_video_frame(pts=3000))[0] == []


def test_a_transformed_vp8_frame_keeps_its_last_bytes_together_in_the_last_packet() -> None:
    """aiortc leaves the remainder for the last packet; a trailer there would be split, and
    the server strips a trailer from the last packet only."""
    encoder = TransformingVp8Encoder()
    frame = bytes(range(256)) * 11  # 2816 bytes: 1296 + 1296 + 224 after 4-byte descriptors
    encoder.frame_transform = lambda data, ts: frame + b"T" * 21
    plain = Vp8Encoder._packetize(frame + b"T" * 21, encoder.picture_id)  # aiortc's own split
    assert len(VpxPayloadDescriptor.parse(plain[-1])[1]) < aiortc_adapter.TRAILER_ROOM
    payloads = encoder._packetize(b"encoded", encoder.picture_id)
    assert len(payloads) == len(plain) == 3
    assert b"".join(vp8_depayload(p) for p in payloads) == frame + b"T" * 21
    assert len(vp8_depayload(payloads[-1])) >= aiortc_adapter.TRAILER_ROOM
    assert all(len(p) <= 1300 for p in payloads)
    assert [VpxPayloadDescriptor.parse(p)[0].partition_start for p in payloads] == [1, 0, 0]
    # a frame that fits in one packet, or whose last packet is long enough, is as aiortc made it
    for size in (100, 1296 + 600):
        encoder.frame_transform = lambda data, ts, size=size: bytes(size)  # type: ignore[misc]
        assert encoder._packetize(b"x", 1) == Vp8Encoder._packetize(bytes(size), 1)


def test_a_transformed_access_units_last_nal_unit_is_never_aggregated() -> None:
    """The last NAL unit (the one a trailer ends) gets a packet of its own, not a STAP-A:
    the server's strip from the end of the packet would leave a STAP-A length wrong."""
    sps, pps, slice_ = b"\x67" + bytes(20), b"\x68" + bytes(8), b"\x65" + b"\x11" * 100
    unit = b"".join(b"\x00\x00\x00\x01" + nal for nal in (sps, pps, slice_)) + b"TRAILER"
    encoder = TransformingH264Encoder()
    encoder.frame_transform = lambda data, ts: unit
    assert len(H264Encoder._packetize([sps, pps, slice_ + b"TRAILER"])) == 1  # aiortc: STAP-A
    payloads = encoder._packetize([b"\x65\x00"])
    assert len(payloads) == 2
    assert payloads[0][0] & 0x1F == 24  # SPS and PPS aggregated
    assert payloads[-1] == slice_ + b"TRAILER"  # a single NAL unit packet, the trailer last
    assert b"".join(h264_depayload(p) for p in payloads) == unit


class _DropFirst:
    """A frame filter dropping the first ``count`` frames, then asking a PLI and passing all."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.dropped: list[int] = []
        self.passed: list[int] = []

    def __call__(self, frames: Any) -> tuple[bool, list[EncodedFrame]]:
        pli = False
        kept = []
        for frame in frames:
            if len(self.dropped) < self.count:
                self.dropped.append(frame.timestamp)
                continue
            pli = pli or not self.passed
            self.passed.append(frame.timestamp)
            kept.append(frame)
        return pli, kept


@pytest.mark.parametrize("ours", [True, False], ids=["our assembler", "aiortc's buffer"])
async def test_the_frame_filter_decides_what_the_decoder_gets(ours: bool) -> None:
    """Real VP8 from aiortc's sender: only the frames the filter returns are decoded, and the
    PLI it asks for is sent (the decoder needs a key frame after the dropped ones)."""
    filters: list[_DropFirst] = []

    def install(receiver: Any, codecs: dict[int, str]) -> None:
        frame_filter = _DropFirst(5)
        set_frame_filter(receiver, frame_filter)
        if ours:  # installed after the filter: the filter stays
            install_receive_buffer(receiver, FrameAssembler(CodecKeyframeTest(codecs)))
        assert installed_frame_filter(receiver) is frame_filter
        filters.append(frame_filter)

    sender_pc, receiver_pc, remote = await _video_pair("video/VP8", install)
    try:
        track = await asyncio.wait_for(remote, 30)
        decoded = [(await asyncio.wait_for(track.recv(), 30)).pts for _ in range(3)]
        (frame_filter,) = filters
        assert len(frame_filter.dropped) == 5
        first = frame_filter.passed[0]  # aiortc's timestamps start at the first frame decoded
        passed = {(t - first) % (1 << 32) for t in frame_filter.passed}
        assert set(decoded) <= passed
        assert not {(t - first) % (1 << 32) for t in frame_filter.dropped} & set(decoded)
        (receiving,) = receiver_pc.getTransceivers()
        set_frame_filter(receiving.receiver, None)
        assert installed_frame_filter(receiving.receiver) is None
    finally:
        await sender_pc.close()
        await receiver_pc.close()


def test_a_missing_timestamp_mapper_internal_fails_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiortc_adapter, "_MAPPER_ORIGIN", "_renamed_origin")
    with pytest.raises(ImportError, match=r"TimestampMapper\.__init__ no longer sets _renamed"):
        aiortc_adapter._check_internals()


async def test_a_decoded_picture_gives_back_the_rtp_timestamp_of_its_frame() -> None:
    """Real VP8 through aiortc's receiver: each picture's pts maps back to the RTP timestamp
    of a frame the filter passed (the 5 dropped ones never map)."""
    filters: list[_DropFirst] = []
    receivers: list[Any] = []

    def install(receiver: Any, codecs: dict[int, str]) -> None:
        frame_filter = _DropFirst(5)
        install_receive_buffer(receiver, FrameAssembler(CodecKeyframeTest(codecs)))
        set_frame_filter(receiver, frame_filter)
        assert received_rtp_timestamp(receiver, 0) is None  # nothing mapped yet
        filters.append(frame_filter)
        receivers.append(receiver)

    sender_pc, receiver_pc, remote = await _video_pair("video/VP8", install)
    try:
        track = await asyncio.wait_for(remote, 30)
        pictures = [await asyncio.wait_for(track.recv(), 30) for _ in range(4)]
        (frame_filter,), (receiver,) = filters, receivers
        timestamps = [received_rtp_timestamp(receiver, p.pts) for p in pictures]
        assert timestamps == sorted(timestamps) and len(set(timestamps)) == 4
        assert set(timestamps) <= set(frame_filter.passed)
        assert not set(timestamps) & set(frame_filter.dropped)
        # pts 0 is the first frame aiortc mapped (decoded or not)
        assert received_rtp_timestamp(receiver, 0) == frame_filter.passed[0]
        assert received_rtp_timestamp(receiver, None) is None
    finally:
        await sender_pc.close()
        await receiver_pc.close()


# ---------------------------------------------------------------------- key-frame requests


def test_a_missing_keyframe_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_SEND_KEYFRAME", "_renamed_keyframe")
    monkeypatch.setattr(aiortc_adapter, "_NEXT_ENCODED_FRAME", "_renamed_next")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    assert "RTCRtpSender has no method _renamed_keyframe" in str(caught.value)
    assert "RTCRtpSender._renamed_next no longer packs" in str(caught.value)


async def test_a_receivers_pli_reaches_the_watcher_and_packets_are_packed_as_given() -> None:
    """Real pre-encoded H.264 through a real sender: the receiver decodes the access units
    our track returned as packets (aiortc's pack path), and a PLI the receiver sends over
    the connection reaches the sender's watcher (and, with the next frame, the source)."""
    from aiortc.codecs.h264 import H264Decoder  # noqa: F401 (the receiver decodes with it)

    from livekit_py.rtc.encoded_video import EncodedVideoFrame, EncodedVideoSource
    from livekit_py.types import EncodedFrameType, VideoCodec
    from livekit_py.webrtc.aiortc_adapter import watch_keyframe_requests
    from livekit_py.webrtc.encoders import VideoEncoderConfig, configure_sender
    from livekit_py.webrtc.pre_encoded import EncodedSourceTrack
    from tests.encoded_frames import encode

    units = encode("h264", 60, 96, 64, keyint=30)
    source = EncodedVideoSource(96, 64)
    track = EncodedSourceTrack(source)
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    remote: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    receiver_pc.on("track", lambda t: remote.done() or remote.set_result(t))
    transceiver = sender_pc.addTransceiver(track, direction="sendonly")
    configure_sender(
        transceiver,
        VideoEncoderConfig(
            codec=VideoCodec.H264, max_bitrate=300_000, max_framerate=30.0, pre_encoded=True
        ),
    )
    requests: list[int] = []
    watch_keyframe_requests(transceiver.sender, lambda: requests.append(1))
    sent = 0

    def capture(index: int) -> None:
        nonlocal sent
        unit = units[index]
        key, delta = EncodedFrameType.ENCODED_FRAME_KEY, EncodedFrameType.ENCODED_FRAME_DELTA
        source.capture_frame(
            EncodedVideoFrame(
                data=unit.data,
                width=96,
                height=64,
                codec=VideoCodec.H264,
                frame_type=key if unit.keyframe else delta,
                timestamp_us=1 + sent * 33_333,
            )
        )
        sent += 1

    async def feed() -> None:
        for n in range(100_000):
            capture(n % len(units))
            await asyncio.sleep(1 / 30)

    feeder = asyncio.ensure_future(feed())
    try:
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        received = await asyncio.wait_for(remote, 30)
        decoded = await asyncio.wait_for(received.recv(), 30)
        assert (decoded.width, decoded.height) == (96, 64)
        feeder.cancel()
        await asyncio.sleep(0.2)  # what was sent arrives; nothing more is
        source.take_feedback()
        requests.clear()
        (receiving,) = receiver_pc.getTransceivers()
        await receiving.receiver._send_rtcp_pli(transceiver.sender._ssrc)  # a real PLI
        for _ in range(3000):
            if requests:
                break
            await asyncio.sleep(0.01)
        assert requests, "the receiver's PLI did not reach the watcher"
        assert not source.take_feedback().keyframe_requested  # handed on with a frame
        capture(1)  # a delta frame: the request goes with it
        for _ in range(3000):
            if source.take_feedback().keyframe_requested:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the key-frame request never reached take_feedback")
        with pytest.raises(ValueError, match="RTCRtpSender"):
            watch_keyframe_requests(object(), lambda: None)  # type: ignore[arg-type]
    finally:
        feeder.cancel()
        await sender_pc.close()
        await receiver_pc.close()
        await source.aclose()


# ---------------------------------------------------------------------- one place


_PRIVATE_NAMES = re.compile(
    r"_RTCRtp|__encoder|\b_connection\b|query_consent|_rtp_router|__target_bitrate"
    r"|_packetize|_split_bitstream|_send_keyframe|_next_encoded_frame"
    r"|\b_check_list\b|\b_get_stats\b|__local_certificate|\b_ssl\b|\b_stats_id\b"
)


def test_private_names_appear_only_in_the_adapter() -> None:
    offenders = sorted(
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in SRC.rglob("*.py")
        if path.name != "aiortc_adapter.py" or path.parent.name != "webrtc"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _PRIVATE_NAMES.search(line)
    )
    assert offenders == []
    assert _PRIVATE_NAMES.search((SRC / "webrtc" / "aiortc_adapter.py").read_text())


# ------------------------------------------------------- extra RTP streams (simulcast)


def test_a_missing_rtp_stream_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_DTLS_ROUTER", "_renamed_router")
    monkeypatch.setattr(aiortc_adapter, "_RTCP_RECIPIENT", "_renamed_recipient")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    assert "_renamed_router" in str(caught.value)
    assert "_renamed_recipient" in str(caught.value)


async def test_rtcp_about_a_registered_ssrc_reaches_its_handler_until_unregistered() -> None:
    from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

    from livekit_py.webrtc.aiortc_adapter import register_rtp_stream, unregister_rtp_stream

    pc = RTCPeerConnection()
    try:
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        transport = pc.getTransceivers()[0].sender.transport
        got: list[Any] = []

        async def handler(packet: Any) -> None:
            got.append(packet)

        register_rtp_stream(transport, 1234, handler)
        pli = bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=1234))
        other = bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=999))
        await transport._handle_rtcp_data(pli)  # what aiortc does with a received packet
        await transport._handle_rtcp_data(other)
        assert [(p.fmt, p.media_ssrc) for p in got] == [(RTCP_PSFB_PLI, 1234)]
        unregister_rtp_stream(transport, 1234)
        await transport._handle_rtcp_data(pli)
        assert len(got) == 1
        with pytest.raises(ValueError, match="RTCDtlsTransport"):
            register_rtp_stream(object(), 1, handler)  # type: ignore[arg-type]
    finally:
        await pc.close()


async def test_send_rtp_bytes_refuses_an_unconnected_transport() -> None:
    from livekit_py.webrtc.aiortc_adapter import send_rtp_bytes

    pc = RTCPeerConnection()
    try:
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        with pytest.raises(ConnectionError):
            await send_rtp_bytes(pc.getTransceivers()[0].sender.transport, b"\x80" * 12)
    finally:
        await pc.close()


# ------------------------------------------------------------- statistics: ICE and DTLS


def test_a_missing_statistics_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, renamed in (
        ("_CHECK_LIST", "_renamed_check_list"),
        ("_STUN_REQUEST", "renamed_request"),
        ("_DTLS_GET_STATS", "_renamed_get_stats"),
        ("_DTLS_LOCAL_CERTIFICATE", "_renamed_local_certificate"),
        ("_CERTIFICATE_X509", "_renamed_cert"),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(aiortc_adapter, name, renamed)
            with pytest.raises(ImportError, match=renamed):
                aiortc_adapter._check_internals()


class _Timings:
    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, int], tuple[str, int]]] = []
        self.answered: list[tuple[tuple[str, int], tuple[str, int], float]] = []

    def request_sent(self, local: Any, remote: tuple[str, int]) -> None:
        self.sent.append(((local.host, local.port), remote))

    def response_received(self, local: Any, remote: tuple[str, int], rtt: float) -> None:
        self.answered.append(((local.host, local.port), remote, rtt))


async def test_observed_checks_are_timed_from_request_to_response() -> None:
    """Every check aioice makes goes through the wrapped builder and protocol: the
    nominated pair's checks are seen, answered, with a round-trip time."""
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv4=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv4=True, use_ipv6=False)
    timings = _Timings()
    ticks = iter(range(1_000_000))
    observe_ice_checks(a, timings, clock=lambda: float(next(ticks)))
    observe_ice_checks(a, _Timings())  # a second observer is ignored
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for this, other in ((a, b), (b, a)):
            this.remote_username = other.local_username
            this.remote_password = other.local_password
            for candidate in other.local_candidates:
                await this.add_remote_candidate(candidate)
            await this.add_remote_candidate(None)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 30)
        (pair,) = nominated_pairs(a)
        assert pair in ice_check_list(a)
        assert pair.state == pair.State.SUCCEEDED
        key = ((pair.local_candidate.host, pair.local_candidate.port), pair.remote_addr)
        assert key in timings.sent
        answered = [rtt for local, remote, rtt in timings.answered if (local, remote) == key]
        assert answered and all(rtt >= 1 for rtt in answered)  # clock ticks between the two
        # the restart nomination is built and sent through the same wrapped objects
        before = len(timings.sent)
        b._local_username = "restartUfrag"  # test-only: play the restarting remote agent
        b._local_password = "restartPasswordOf22chars"
        assert await adopt_remote_ice_restart(a, "restartUfrag", "restartPasswordOf22chars") == 1
        assert len(timings.sent) > before
    finally:
        await a.close()
        await b.close()


async def test_dtls_details_are_the_negotiated_ones_of_both_sides() -> None:
    a, b, _channel, _received = await _data_channel_pair()
    try:
        assert a.sctp is not None and b.sctp is not None
        dtls_a, dtls_b = a.sctp.transport, b.sctp.transport
        details_a, details_b = dtls_details(dtls_a), dtls_details(dtls_b)
        assert isinstance(details_a, DtlsDetails)
        assert details_a.stats.type == "transport" and details_a.stats.dtlsState == "connected"
        assert details_a.stats.packetsSent > 0 and details_a.stats.bytesReceived > 0
        assert {details_a.role, details_b.role} == {"client", "server"}
        assert details_a.local_certificate and details_a.remote_certificate
        assert details_a.local_certificate == details_b.remote_certificate
        assert details_a.remote_certificate == details_b.local_certificate
        # our certificate is the one the description's fingerprint names
        sha256 = next(
            f.value for f in dtls_a.getLocalParameters().fingerprints if f.algorithm == "sha-256"
        )
        digest = hashlib.sha256(details_a.local_certificate).hexdigest().upper()
        assert sha256 == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        assert details_a.protocol_version == 0xFEFD  # DTLS 1.2
        assert details_a.cipher == details_b.cipher and details_a.cipher
        assert details_a.srtp_profile is not None
        assert details_a.srtp_profile.startswith("SRTP_")
        assert ice_connection_of(dtls_a) in ice_connections(a)
        with pytest.raises(ValueError, match="RTCDtlsTransport"):
            dtls_details(object())  # type: ignore[arg-type]
    finally:
        await a.close()
        await b.close()
    fresh = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = fresh.addTransceiver("audio")
        before = dtls_details(transceiver.receiver.transport)
        assert before.stats.dtlsState == "new" and before.local_certificate
        assert (before.role, before.remote_certificate, before.cipher) == (None, None, None)
        assert (before.protocol_version, before.srtp_profile) == (None, None)
    finally:
        await fresh.close()


# ---------------------------------------------------------------------- SSRCs of a started receiver


def test_a_missing_ssrc_routing_internal_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_RECEIVER_STARTED", "_RTCRtpReceiver__renamed_started")
    monkeypatch.setattr(aiortc_adapter, "_ROUTER_SSRC_TABLE", "renamed_table")
    with pytest.raises(ImportError) as caught:
        aiortc_adapter._check_internals()
    assert "_RTCRtpReceiver__renamed_started" in str(caught.value)
    assert "renamed_table" in str(caught.value)


async def test_a_started_receiver_gets_the_packets_of_an_ssrc_routed_to_it() -> None:
    """Two audio receivers of one payload type: aiortc drops an SSRC it was not told of."""
    from livekit_py.webrtc.aiortc_adapter import route_received_ssrc

    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender_pc.addTrack(AudioStreamTrack())
    sender_pc.addTrack(AudioStreamTrack())
    try:
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        first, second = receiver_pc.getTransceivers()

        async def both_receive() -> None:
            await first.receiver.track.recv()  # their receivers run
            await second.receiver.track.recv()

        await asyncio.wait_for(both_receive(), 30)
        router = first.receiver.transport._rtp_router
        codecs = first.receiver._RTCRtpReceiver__codecs
        opus = next(pt for pt, c in codecs.items() if c.mimeType == "audio/opus")
        packet = RtpPacket(payload_type=opus, ssrc=424242, sequence_number=1, timestamp=1)
        assert router.route_rtp(packet) is None  # unknown SSRC, two receivers of that type
        assert route_received_ssrc(first.receiver, 424242, 434343)
        assert router.route_rtp(packet) is first.receiver
        assert first.receiver._RTCRtpReceiver__rtx_ssrc[434343] == 424242
        # a receiver aiortc has not started is left to aiortc (it registers at start)
        idle = receiver_pc.addTransceiver("audio", direction="recvonly")
        assert not route_received_ssrc(idle.receiver, 1)
        with pytest.raises(ValueError, match="RTCRtpReceiver"):
            route_received_ssrc(object(), 1)  # type: ignore[arg-type]
    finally:
        await sender_pc.close()
        await receiver_pc.close()
