"""The Opus encoder of a published track (webrtc/opus.py) and what the answer asks of it."""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Iterator

import av
import numpy as np
import pytest
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.mediastreams import MediaStreamError

from livekit_py.media import libopus
from livekit_py.types import TrackPublishOptions
from livekit_py.webrtc import opus
from livekit_py.webrtc.aiortc_adapter import install_encoder, installed_encoder
from livekit_py.webrtc.encoders import (
    AudioEncoderConfig,
    apply_answer,
    audio_encoder_config,
    encoder_for,
    loss_feedback_for,
    offer_opus_fec,
    opus_fmtp_by_mid,
)
from livekit_py.webrtc.opus import OpusEncoder, PyAVOpusEncoder, make_opus_encoder

needs_libopus = pytest.mark.skipif(not libopus.available, reason=f"no libopus: {libopus.reason}")


def track_frames(signal: np.ndarray, rate: int) -> Iterator[av.AudioFrame]:
    """What AudioSourceTrack hands aiortc: 20 ms of s16 stereo at the source rate."""
    step = rate // 50
    for i, start in enumerate(range(0, len(signal) - step + 1, step)):
        block = np.repeat(signal[start : start + step], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = i * step
        frame.time_base = fractions.Fraction(1, rate)
        yield frame


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


# ---------------------------------------------------------------------- the encoder


@needs_libopus
@pytest.mark.parametrize("rate", [48000, 16000, 44100])
def test_packets_and_timestamps_are_aiortcs(rate: int) -> None:
    """Same number of packets per call and the same RTP offsets as aiortc's own encoder."""
    ours, theirs = OpusEncoder(), AiortcOpusEncoder()
    for frame in track_frames(tone(0.6, rate), rate):
        mine, my_ts = ours.encode(frame)
        their, their_ts = theirs.encode(frame)
        assert len(mine) == len(their)
        if their:
            assert my_ts == their_ts
    assert ours.packets_encoded >= 28


@needs_libopus
def test_the_packets_decode_to_the_tone() -> None:
    encoder = OpusEncoder(32_000)
    decoder = libopus.OpusDecoder(48000, 2)
    out = []
    for frame in track_frames(tone(1.0, 48000), 48000):
        payloads, _ = encoder.encode(frame)
        out += [decoder.decode(p) for p in payloads]
    pcm = np.concatenate(out)[4800:, 0].astype(np.float64)
    level = 10 * np.log10(np.mean(pcm**2) / (0.5 * 32767) ** 2 * 2)  # vs the sine's own
    assert abs(level) < 1.0
    peak = np.argmax(np.abs(np.fft.rfft(pcm))) * 48000 / len(pcm)
    assert abs(peak - 440) < 3


@needs_libopus
def test_the_controls_follow_the_options_and_change_while_running() -> None:
    encoder = OpusEncoder(24_000, fec=True, dtx=True, packet_loss_percent=5)
    assert (encoder.bitrate, encoder.fec, encoder.dtx, encoder.packet_loss_percent) == (
        24_000,
        True,
        True,
        5,
    )
    assert encoder.codec.complexity == opus.OPUS_COMPLEXITY
    assert encoder.codec.inband_fec == 1 and encoder.codec.bitrate == 24_000
    encoder.fec, encoder.dtx, encoder.packet_loss_percent = False, False, 12
    encoder.bitrate = 1_000_000
    assert (encoder.fec, encoder.dtx, encoder.packet_loss_percent) == (False, False, 12)
    assert encoder.bitrate == opus.MAX_AUDIO_BITRATE
    encoder.bitrate = 64_000
    encoder.cap_bitrate(40_000)
    assert encoder.bitrate == 40_000 == encoder.codec.bitrate
    encoder.cap_bitrate(None)
    assert encoder.bitrate == 64_000 == encoder.codec.bitrate
    for bad in (-1, 101, 2.5, True):
        with pytest.raises(ValueError, match="packet_loss_percent"):
            encoder.packet_loss_percent = bad  # type: ignore[assignment]


@needs_libopus
def test_encode_refuses_what_is_not_audio() -> None:
    with pytest.raises(ValueError, match="audio frames"):
        OpusEncoder().encode(av.VideoFrame(16, 16, "yuv420p"))


@needs_libopus
def test_pack_sends_a_pre_encoded_packet_as_it_is() -> None:
    packet = av.Packet(b"\xfc\x01\x02")
    packet.pts = 320
    packet.time_base = fractions.Fraction(1, 16000)
    assert OpusEncoder().pack(packet) == ([b"\xfc\x01\x02"], 960)


# ---------------------------------------------------------------------- DTX


def _send(encoder: OpusEncoder | PyAVOpusEncoder, signal: np.ndarray) -> list[tuple[int, bytes]]:
    """(RTP timestamp offset, payload) of each packet the sender would send."""
    sent = []
    for frame in track_frames(signal, 48000):
        payloads, timestamp = encoder.encode(frame)
        # aiortc's sender gives every payload of one call the timestamp it is handed
        sent += [(timestamp, p) for p in payloads]
    return sent


@needs_libopus
def test_dtx_sends_silence_as_libwebrtc_does() -> None:
    """Five seconds of silence: only the packets that refresh the comfort noise, each
    followed by the one DTX packet that tells the receiver; timestamps keep counting."""
    speech, silence = tone(1.0, 48000), np.zeros(5 * 48000, np.int16)
    signal = np.concatenate([speech, silence, speech])
    rates = {}
    for dtx in (False, True):
        encoder = OpusEncoder(dtx=dtx)
        sent = _send(encoder, signal)
        quiet = [(ts, p) for ts, p in sent if 48000 <= ts < 6 * 48000]
        rates[dtx] = (len(quiet) / 5.0, sum(len(p) for _, p in quiet) / 5.0)
        timestamps = [ts for ts, _ in sent]
        assert all(ts % 960 == 0 for ts in timestamps)
        assert timestamps == sorted(set(timestamps))
        assert timestamps[-1] == (len(signal) // 960 - 1) * 960  # no time lost in the gaps
        if dtx:
            tiny = [i for i, (_, p) in enumerate(sent) if len(p) <= opus.DTX_PACKET_MAX_BYTES]
            assert tiny, "libopus made no DTX packet"
            for i in tiny:  # never two DTX packets in a row: the first one only is sent
                assert len(sent[i - 1][1]) > opus.DTX_PACKET_MAX_BYTES
            gaps = np.diff([ts for ts, _ in quiet])
            assert gaps.max() >= 10 * 960  # silence is mostly not sent at all
            assert encoder.dtx_packets_skipped > 150
        else:
            assert encoder.dtx_packets_skipped == 0
    # measured: 50 packets/s and ~200 payload bytes/s without DTX, 6.6 and ~60 with it
    assert rates[False][0] == 50.0
    assert rates[True][0] < 10.0 and rates[True][1] < rates[False][1] / 2, rates


@needs_libopus
def test_dtx_can_be_turned_off_while_running() -> None:
    encoder = OpusEncoder(dtx=True)
    quiet = np.zeros(48000, np.int16)
    assert len(_send(encoder, quiet)) < 20
    encoder.dtx = False
    assert len(_send(encoder, quiet)) == 50


# ---------------------------------------------------------------------- the fallback


def test_without_libopus_the_pyav_encoder_is_used_and_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(libopus, "available", False)
    monkeypatch.setattr(libopus, "reason", "no libopus found (test)")
    monkeypatch.setattr(opus, "_fallback_logged", False)
    with caplog.at_level(logging.INFO, logger="livekit_py.webrtc.opus"):
        first = make_opus_encoder(32_000, fec=True, dtx=True)
        second = encoder_for(AudioEncoderConfig(bitrate=24_000, dtx=True))
    assert isinstance(first, PyAVOpusEncoder) and first.bitrate == 32_000
    assert isinstance(second, PyAVOpusEncoder) and second.bitrate == 24_000
    messages = [r.getMessage() for r in caplog.records if r.name == "livekit_py.webrtc.opus"]
    assert len(messages) == 1
    assert "without FEC and DTX" in messages[0] and "no libopus found (test)" in messages[0]
    assert [r.levelno for r in caplog.records if r.name == "livekit_py.webrtc.opus"] == [
        logging.INFO
    ]
    payloads = sum(len(first.encode(f)[0]) for f in track_frames(tone(0.2, 48000), 48000))
    assert payloads >= 9  # still Opus, at 20 ms a packet
    with pytest.raises(RuntimeError, match="no libopus found"):
        OpusEncoder()


@needs_libopus
def test_with_libopus_ours_is_used() -> None:
    encoder = make_opus_encoder(32_000, dtx=True)
    assert isinstance(encoder, OpusEncoder) and encoder.dtx and not encoder.fec
    assert isinstance(encoder_for(AudioEncoderConfig(dtx=False)), OpusEncoder)


# ---------------------------------------------------------------------- the publication's config


def test_dtx_is_on_unless_the_options_say_otherwise() -> None:
    assert audio_encoder_config(TrackPublishOptions()).dtx is True
    assert audio_encoder_config(TrackPublishOptions(dtx=True)).dtx is True
    assert audio_encoder_config(TrackPublishOptions(dtx=False)) == AudioEncoderConfig(dtx=False)
    options = TrackPublishOptions(dtx=False)
    options.audio_encoding.max_bitrate = 20_000
    assert audio_encoder_config(options) == AudioEncoderConfig(bitrate=20_000, dtx=False)


# ---------------------------------------------------------------------- the offer


async def test_our_offer_asks_for_opus_fec_as_libwebrtc_does() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver("video", direction="sendonly")
        pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    assert "a=fmtp:96 " not in sdp  # aiortc offers Opus without any
    offered = offer_opus_fec(sdp)
    lines = offered.split("\r\n")
    rtpmap = lines.index("a=rtpmap:96 opus/48000/2")
    assert lines[rtpmap + 1] == "a=fmtp:96 useinbandfec=1"
    assert [line for line in lines if line not in sdp.split("\r\n")] == [lines[rtpmap + 1]]
    assert opus_fmtp_by_mid(offered) == {"0": {"useinbandfec": "1"}}
    assert offer_opus_fec(offered) == offered


def test_an_existing_opus_fmtp_keeps_its_parameters() -> None:
    sdp = "\n".join(
        [
            "v=0",
            "m=video 9 UDP/TLS/RTP/SAVPF 111",
            "a=rtpmap:111 VP8/90000",
            "a=fmtp:111 x=1",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
            "a=rtpmap:111 OPUS/48000/2",
            "a=fmtp:111 minptime=10",
            "a=rtpmap:0 PCMU/8000",
            "m=audio 9 UDP/TLS/RTP/SAVPF 100",
            "a=rtpmap:100 opus/48000/2",
            "a=fmtp:100 stereo=1;useinbandfec=0",
            "",
        ]
    )
    lines = offer_opus_fec(sdp).split("\n")
    assert lines[3] == "a=fmtp:111 x=1"  # video: as it was
    assert lines[6] == "a=fmtp:111 minptime=10;useinbandfec=1"
    assert "a=fmtp:0" not in offer_opus_fec(sdp)
    assert lines[10] == "a=fmtp:100 stereo=1;useinbandfec=0"  # said otherwise: kept
    assert len(lines) == len(sdp.split("\n"))


# ---------------------------------------------------------------------- the answer

ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=0;maxaveragebitrate=20000;stereo=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=mid:2",
        "a=recvonly",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
)


def test_the_opus_fmtp_of_each_audio_section_is_read() -> None:
    assert opus_fmtp_by_mid(ANSWER) == {
        "0": {"minptime": "10", "useinbandfec": "1"},
        "1": {
            "minptime": "10",
            "useinbandfec": "0",
            "maxaveragebitrate": "20000",
            "stereo": "1",
        },
    }
    with pytest.raises(ValueError, match="SDP"):
        opus_fmtp_by_mid("m=audio nonsense")


@needs_libopus
async def test_the_answer_sets_fec_and_dtx_and_caps_the_bitrate() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio", direction="sendonly")
        sender = transceiver.sender
        encoder = OpusEncoder(48_000)
        install_encoder(sender, encoder)
        apply_answer(sender, {"minptime": "10", "useinbandfec": "1", "usedtx": "1"})
        assert encoder.fec and encoder.dtx and encoder.bitrate == 48_000
        apply_answer(sender, {"useinbandfec": "0", "maxaveragebitrate": "20000"})
        assert not encoder.fec and not encoder.dtx and encoder.bitrate == 20_000
        apply_answer(sender, {"useinbandfec": "1", "maxaveragebitrate": "x"})
        assert encoder.fec and not encoder.dtx and encoder.bitrate == 48_000
        # video, or the PyAV fallback: nothing to do
        fallback = PyAVOpusEncoder(32_000)
        install_encoder(sender, fallback)
        apply_answer(sender, {"useinbandfec": "1", "maxaveragebitrate": "8000"})
        assert fallback.bitrate == 32_000
        assert loss_feedback_for(sender) is None
        install_encoder(sender, encoder)
        feedback = loss_feedback_for(sender)
        assert feedback is not None and not feedback.running
    finally:
        await pc.close()


# ---------------------------------------------------------------------- through aiortc


class _ToneTrack(AudioStreamTrack):
    """aiortc's paced dummy track, with a 440 Hz tone instead of silence (48 kHz stereo)."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0

    async def recv(self) -> av.frame.Frame:
        await super().recv()  # paces to real time at 20 ms a frame
        t = (self._n + np.arange(960)) / 48000
        self._n += 960
        mono = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), "s16", "stereo")
        frame.sample_rate = 48000
        frame.pts = self._n - 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


@needs_libopus
async def test_a_real_sender_sends_opus_that_a_real_receiver_decodes() -> None:
    config = RTCConfiguration(iceServers=[])
    sender_pc, receiver_pc = RTCPeerConnection(config), RTCPeerConnection(config)
    track = _ToneTrack()
    encoder = OpusEncoder(32_000, fec=True, dtx=True, packet_loss_percent=10)
    received: asyncio.Queue[av.AudioFrame] = asyncio.Queue()

    async def read(remote: AudioStreamTrack) -> None:
        try:
            while True:
                frame = await remote.recv()
                assert isinstance(frame, av.AudioFrame)
                await received.put(frame)
        except MediaStreamError:
            pass

    readers: list[asyncio.Task[None]] = []
    receiver_pc.on("track", lambda remote: readers.append(asyncio.ensure_future(read(remote))))
    try:
        rtp_sender = sender_pc.addTrack(track)
        install_encoder(rtp_sender, encoder)
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        frames = [await asyncio.wait_for(received.get(), 30) for _ in range(40)]
        assert installed_encoder(rtp_sender) is encoder and encoder.packets_encoded >= 40
        pcm = np.concatenate([f.to_ndarray().reshape(-1, 2)[:, 0] for f in frames[10:]])
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        assert abs(np.argmax(spectrum) * frames[0].sample_rate / len(pcm) - 440) < 5
        assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 0.2 * 32767
    finally:
        track.stop()
        await sender_pc.close()
        await receiver_pc.close()
        for reader in readers:
            reader.cancel()
