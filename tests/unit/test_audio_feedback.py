"""The expected-loss policy and its loop on the receiver reports (webrtc/audio_feedback.py)."""

from __future__ import annotations

import datetime

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket
from aiortc.stats import RTCRemoteInboundRtpStreamStats, RTCStatsReport

from livekit_py.media import libopus
from livekit_py.webrtc.audio_feedback import (
    LOSS_FALL_WEIGHT,
    LOSS_RISE_WEIGHT,
    MAX_EXPECTED_LOSS,
    LossFeedback,
    expected_loss,
    report_fraction_lost,
)
from livekit_py.webrtc.opus import OpusEncoder
from tests.unit.fake_clock import FakeClock

needs_libopus = pytest.mark.skipif(not libopus.available, reason=f"no libopus: {libopus.reason}")


# ---------------------------------------------------------------------- the policy (pure)


def test_a_rise_in_loss_is_followed_quickly_and_a_fall_slowly() -> None:
    assert expected_loss(0.0, 0.0) == 0.0
    assert expected_loss(0.0, 0.10) == pytest.approx(10 * LOSS_RISE_WEIGHT)
    assert expected_loss(10.0, 0.0) == pytest.approx(10 * (1 - LOSS_FALL_WEIGHT))
    assert expected_loss(10.0, 0.10) == pytest.approx(10.0)


def test_a_steady_loss_is_reached_and_the_estimate_stays_in_bounds() -> None:
    estimate = 0.0
    for _ in range(20):
        estimate = expected_loss(estimate, 0.08)
    assert estimate == pytest.approx(8.0, abs=0.01)
    for _ in range(10):
        estimate = expected_loss(estimate, 1.0)  # everything lost: still at most the cap
    assert estimate == MAX_EXPECTED_LOSS
    for _ in range(60):
        estimate = expected_loss(estimate, 0.0)
    assert round(estimate) == 0  # back to no FEC once the loss is gone
    assert expected_loss(5.0, -0.5) == expected_loss(5.0, 0.0)
    assert expected_loss(0.0, 7.0) == expected_loss(0.0, 1.0)


def _remote_inbound(fraction: float, when: int = 0) -> RTCRemoteInboundRtpStreamStats:
    return RTCRemoteInboundRtpStreamStats(
        timestamp=datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=when),
        type="remote-inbound-rtp",
        id="remote-inbound-rtp_1",
        ssrc=1,
        kind="audio",
        transportId="t",
        packetsReceived=100,
        packetsLost=0,
        jitter=0,
        roundTripTime=0.05,
        fractionLost=fraction,
    )


def test_the_fraction_is_read_in_either_unit() -> None:
    assert report_fraction_lost(_remote_inbound(64)) == 0.25  # aiortc: the RTCP 1/256ths
    assert report_fraction_lost(_remote_inbound(0.25)) == 0.25  # W3C: a fraction


# ---------------------------------------------------------------------- the loop


class _FakeSender:
    """getStats() answers with whatever the test put in ``report``."""

    def __init__(self) -> None:
        self.report = RTCStatsReport()
        self.fail = False
        self.reads = 0

    async def getStats(self) -> RTCStatsReport:
        self.reads += 1
        if self.fail:
            raise ConnectionError("transport closed")
        return self.report

    def receive(self, stats: RTCRemoteInboundRtpStreamStats) -> None:
        self.report[stats.id] = stats  # aiortc replaces the entry on each report


@needs_libopus
async def test_each_new_report_moves_the_encoders_expected_loss_once() -> None:
    clock = FakeClock()
    sender = _FakeSender()
    encoder = OpusEncoder(fec=True)
    feedback = LossFeedback(sender, encoder, clock=clock, interval=1.0)  # type: ignore[arg-type]
    feedback.start()
    feedback.start()  # once only
    try:
        await clock.advance(1.0)
        assert sender.reads == 1 and feedback.reports == 0
        assert encoder.packet_loss_percent == 0

        sender.receive(_remote_inbound(51))  # 51/256: about 20 %
        await clock.advance(1.0)
        assert feedback.reports == 1
        assert encoder.packet_loss_percent == round(expected_loss(0.0, 51 / 256))

        await clock.advance(3.0)  # no new report: nothing moves
        assert sender.reads == 5 and feedback.reports == 1
        first = encoder.packet_loss_percent

        sender.receive(_remote_inbound(0, when=1))
        await clock.advance(1.0)
        assert feedback.reports == 2 and encoder.packet_loss_percent < first

        sender.fail = True  # a read that fails does not end the loop
        await clock.advance(1.0)
        sender.fail = False
        sender.receive(_remote_inbound(128, when=2))
        await clock.advance(1.0)
        assert feedback.reports == 3 and feedback.running
        assert encoder.packet_loss_percent == round(feedback.estimate)
    finally:
        await feedback.aclose()
    assert not feedback.running
    reads = sender.reads
    await clock.advance(5.0)
    assert sender.reads == reads


@needs_libopus
def test_the_poll_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        LossFeedback(_FakeSender(), OpusEncoder(), interval=0)  # type: ignore[arg-type]


@needs_libopus
async def test_aiortc_keeps_the_receiver_reports_fraction_in_256ths() -> None:
    """Canary: a receiver report reaching a real RTCRtpSender shows up in getStats() as
    a remote-inbound-rtp entry whose fractionLost is the RTCP field as it came.

    The report is handed to the sender the way its DTLS transport does (aiortc's
    ``_handle_rtcp_packet``): only this test uses that private method, to make a
    report without a lossy network.
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sender = pc.addTransceiver("audio", direction="sendonly").sender
        encoder = OpusEncoder(fec=True)
        feedback = LossFeedback(sender, encoder)
        assert not await feedback.poll()
        report = RtcpReceiverInfo(
            ssrc=sender._ssrc,
            fraction_lost=64,
            packets_lost=5,
            highest_sequence=100,
            jitter=0,
            lsr=0,
            dlsr=0,
        )
        await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=1234, reports=[report]))
        stats = [
            s
            for s in (await sender.getStats()).values()
            if isinstance(s, RTCRemoteInboundRtpStreamStats)
        ]
        assert len(stats) == 1 and stats[0].fractionLost == 64
        assert isinstance(stats[0].fractionLost, int)
        assert await feedback.poll()
        assert not await feedback.poll()  # the same report is not counted twice
        assert encoder.packet_loss_percent == round(expected_loss(0.0, 0.25))
    finally:
        await pc.close()
