"""Our own counters behind the statistics: levels, ICE checks, data channels, encoders,
the frame assembler, the playout, the source tracks and the track reader."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import numpy as np
import pytest
from aioice.candidate import Candidate
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from pyee.asyncio import AsyncIOEventEmitter

from livekit_py.media import libopus
from livekit_py.media.audio_level import AudioLevelMeter
from livekit_py.media.frame_source import TrackReader
from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_source import AudioSource
from livekit_py.rtc.video_frame import VideoFrame
from livekit_py.rtc.video_source import VideoSource
from livekit_py.types import VideoBufferType
from livekit_py.webrtc.audio_playout import AudioPlayout
from livekit_py.webrtc.data_channel_counts import DataChannelCounter, message_size
from livekit_py.webrtc.frame_assembler import FrameAssembler
from livekit_py.webrtc.ice_checks import IceCheckLog
from livekit_py.webrtc.source_tracks import AudioSourceTrack, VideoSourceTrack
from livekit_py.webrtc.video_codecs import (
    H264VideoEncoder,
    Vp8VideoEncoder,
    h264_payload_is_keyframe,
    vp8_payload_is_keyframe,
)

from .fake_clock import FakeClock

# ---------------------------------------------------------------------- audio level


def _sine(amplitude: float, samples: int, channels: int = 1) -> np.ndarray:
    t = np.arange(samples) / 48000
    mono = (amplitude * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    return np.repeat(mono, channels)


def test_the_level_is_the_peak_and_the_energy_its_square_times_the_duration() -> None:
    meter = AudioLevelMeter()
    assert meter.reading().total_samples == 0
    meter.add(_sine(0.5, 480, 2), 48000, 2)  # 10 ms stereo
    meter.add(np.zeros(960, np.int16), 48000, 2)  # 10 ms of silence
    reading = meter.reading()
    assert reading.audio_level == 0.0  # the latest frame
    assert reading.total_samples == 960
    assert reading.total_samples_duration == pytest.approx(0.02)
    assert reading.total_audio_energy == pytest.approx(0.5**2 * 0.01, rel=1e-3)
    meter.add(np.full(480, -32768, np.int16), 48000, 1)
    assert meter.reading().audio_level == 1.0  # full scale, clipped to 1
    meter.add(np.zeros(0, np.int16), 48000, 1)  # nothing: no change
    assert meter.reading().total_samples == 1440


def test_the_level_meter_refuses_bad_frames() -> None:
    meter = AudioLevelMeter()
    with pytest.raises(ValueError, match="sample_rate"):
        meter.add(np.zeros(10, np.int16), 0, 1)
    with pytest.raises(ValueError, match="channels"):
        meter.add(np.zeros(10, np.int16), 48000, 0)
    with pytest.raises(ValueError, match="divide"):
        meter.add(np.zeros(3, np.int16), 48000, 2)


# ---------------------------------------------------------------------- ICE checks

LOCAL = Candidate("f", 1, "udp", 1, "192.0.2.1", 5000, "host")


def test_the_ice_check_log_keeps_each_pairs_requests_and_round_trips() -> None:
    log = IceCheckLog()
    remote = ("198.51.100.1", 7882)
    assert log.checks(LOCAL, remote) is None
    log.request_sent(LOCAL, remote)
    log.request_sent(LOCAL, remote)
    log.response_received(LOCAL, remote, 0.030)
    log.request_sent(LOCAL, remote)
    log.response_received(LOCAL, remote, 0.010)
    checks = log.checks(LOCAL, remote)
    assert checks is not None
    assert (checks.requests_sent, checks.responses_received) == (3, 2)
    assert checks.total_round_trip_time == pytest.approx(0.04)
    assert checks.current_round_trip_time == 0.010
    assert log.checks(LOCAL, ("198.51.100.1", 7883)) is None  # another pair
    checks.requests_sent = 99  # a copy
    assert log.checks(LOCAL, remote).requests_sent == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="negative"):
        log.response_received(LOCAL, remote, -0.1)


# ---------------------------------------------------------------------- data channels


class _Channel(AsyncIOEventEmitter):
    def __init__(self, label: str, state: str = "connecting") -> None:
        super().__init__()
        self.label = label
        self.readyState = state
        self.sent: list[bytes | str] = []

    def send(self, data: bytes | str) -> None:
        if self.readyState != "open":
            raise RuntimeError("not open")
        self.sent.append(data)


def test_messages_and_bytes_are_counted_both_ways() -> None:
    counter = DataChannelCounter()
    channel = _Channel("_reliable")
    counter.watch(channel)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        channel.send(b"too early")  # not sent: not counted
    channel.readyState = "open"
    channel.emit("open")
    channel.send(b"12345")
    channel.send("héllo")  # a string counts its UTF-8 bytes
    channel.emit("message", b"abc")
    channel.emit("message", "ü")
    ((watched, counts),) = counter.channels()
    assert watched is channel
    assert channel.sent == [b"12345", "héllo"]
    assert (counts.messages_sent, counts.bytes_sent) == (2, 5 + 6)
    assert (counts.messages_received, counts.bytes_received) == (2, 3 + 2)
    assert (counter.opened, counter.closed) == (1, 0)
    assert counter.watch(channel) is not None and len(counter.channels()) == 1  # once  # type: ignore[arg-type]
    channel.readyState = "closed"
    channel.emit("close")
    assert (counter.opened, counter.closed) == (1, 1)
    assert message_size("€") == 3 and message_size(b"\x00\x01") == 2


def test_a_channel_already_open_counts_as_opened_and_one_never_opened_not_as_closed() -> None:
    counter = DataChannelCounter()
    counter.watch(_Channel("opened by the remote side", "open"))  # type: ignore[arg-type]
    never = _Channel("never opened")
    counter.watch(never)  # type: ignore[arg-type]
    never.emit("close")
    assert (counter.opened, counter.closed) == (1, 0)


# ---------------------------------------------------------------------- encoders


def _picture(pts: int, width: int = 320, height: int = 240) -> av.VideoFrame:
    rng = np.random.default_rng(pts)
    frame = av.VideoFrame.from_ndarray(
        rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")
    frame.pts = pts * 3000
    frame.time_base = Fraction(1, 90000)
    return frame


@pytest.mark.parametrize("cls", [Vp8VideoEncoder, H264VideoEncoder])
def test_our_video_encoders_count_frames_and_key_frames(cls: type[Vp8VideoEncoder]) -> None:
    encoder = cls(max_bitrate=500_000, max_framerate=30.0)
    assert encoder.counts.frames_encoded == 0 and encoder.counts.frame_width is None
    test = vp8_payload_is_keyframe if cls is Vp8VideoEncoder else h264_payload_is_keyframe
    keys = []
    for i in range(4):
        payloads, _ = encoder.encode(_picture(i), force_keyframe=i == 3)
        keys.append(any(test(p) for p in payloads))
    assert keys == [True, False, False, True]  # the first one, and the one asked for
    counts = encoder.counts
    assert (counts.frames_encoded, counts.key_frames_encoded) == (4, 2)
    assert (counts.frame_width, counts.frame_height) == (320, 240)
    assert counts.total_encode_time > 0
    # a frame the frame-rate cap drops is not counted
    payloads, _ = encoder.encode(_picture(3), force_keyframe=False)
    assert payloads == [] and encoder.counts.frames_encoded == 4


def test_key_frames_are_told_from_rtp_payloads() -> None:
    # VP8: a descriptor with a 15-bit picture id, then a key frame's tag (P bit 0)
    assert vp8_payload_is_keyframe(bytes([0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00]))
    assert not vp8_payload_is_keyframe(bytes([0x90, 0x80, 0x81, 0x23, 0x11, 0x02, 0x00]))
    assert not vp8_payload_is_keyframe(bytes([0x80, 0x80, 0x81, 0x23, 0x10]))  # not S
    assert vp8_payload_is_keyframe(bytes([0x10, 0x00]))  # no extension
    assert not vp8_payload_is_keyframe(b"\x10")
    # H.264: single NAL units, a STAP-A carrying the SPS, FU-A fragments of an IDR
    assert h264_payload_is_keyframe(bytes([0x65, 0x88]))  # IDR
    assert not h264_payload_is_keyframe(bytes([0x41, 0x9A]))  # non-IDR slice
    stap = bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE])
    assert h264_payload_is_keyframe(stap)
    assert not h264_payload_is_keyframe(bytes([0x78, 0x00, 0x02, 0x68, 0xCE]))
    assert h264_payload_is_keyframe(bytes([0x7C, 0x85, 0x88]))  # FU-A start of an IDR
    assert not h264_payload_is_keyframe(bytes([0x7C, 0x05, 0x88]))  # a later fragment
    assert not h264_payload_is_keyframe(b"")


# ---------------------------------------------------------------------- frame assembler


class _Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never awaited
        self.t += seconds


def _rtp(seq: int, ts: int, data: bytes, *, marker: bool, pt: int = 96) -> RtpPacket:
    p = RtpPacket(
        payload_type=pt, marker=int(marker), sequence_number=seq, timestamp=ts, ssrc=1, payload=data
    )
    p._data = data  # test-only: what aiortc's packet handler attaches (depayloaded)
    return p


def test_the_assembler_counts_bytes_and_multi_packet_frames_with_their_assembly_time() -> None:
    clock = _Clock()
    assembler = FrameAssembler(lambda pt, data: True, clock=clock)
    assert assembler.payload_type is None
    assembler.add_frames(_rtp(1, 3000, b"one", marker=True))  # one packet
    assembler.add_frames(_rtp(2, 6000, b"first", marker=False))  # two packets, 20 ms apart
    clock.t += 0.02
    assembler.add_frames(_rtp(3, 6000, b"second", marker=True, pt=97))
    stats = assembler.stats
    assert stats.frames_assembled == 2
    assert stats.bytes_received == 3 + 5 + 6
    assert stats.frames_assembled_from_multiple_packets == 1
    assert stats.total_assembly_time == pytest.approx(0.02)
    assert assembler.payload_type == 97


# ---------------------------------------------------------------------- playout


@pytest.mark.skipif(not libopus.available, reason=libopus.reason)
async def test_the_playout_counts_payload_bytes_and_the_level_of_what_it_plays() -> None:
    clock = FakeClock()
    playout = AudioPlayout(clock=clock)
    encoder = libopus.OpusEncoder(48000, 2, libopus.APPLICATION_VOIP)
    tone = _sine(0.5, 960 * 10).reshape(-1, 1).repeat(2, axis=1)
    payloads = [encoder.encode(tone[i * 960 : (i + 1) * 960], 960) for i in range(10)]
    frames: list[object] = []

    async def read() -> None:
        try:
            while True:
                frames.append(await playout.track.recv())
        except MediaStreamError:
            pass

    reader = asyncio.ensure_future(read())
    for seq, payload in enumerate(payloads):
        playout.on_packet(
            RtpPacket(
                payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=7, payload=payload
            )
        )
        await clock.advance(0.02)
    await clock.advance(0.2)
    playout.close()
    await asyncio.wait_for(reader, 5)
    assert playout.bytes_received == sum(len(p) for p in payloads)
    assert playout.payload_type == 111
    level = playout.output_level()
    played = sum(f.samples for f in frames)  # type: ignore[attr-defined]
    assert level.total_samples == played > 0
    assert level.total_samples_duration == pytest.approx(played / 48000)
    assert 0 < level.total_audio_energy < level.total_samples_duration


# ---------------------------------------------------------------------- source tracks


async def test_the_audio_source_track_measures_what_it_hands_to_the_encoder() -> None:
    clock = FakeClock()
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)
    for _ in range(5):
        await source.capture_frame(AudioFrame(_sine(0.25, 480).tobytes(), 48000, 1, 480))
    frames = [await clock.run(track.recv(), limit=1) for _ in range(2)]
    level = track.source_level()
    assert level.total_samples == sum(f.samples for f in frames) == 1920
    assert level.total_samples_duration == pytest.approx(0.04)
    assert level.audio_level == pytest.approx(0.25, abs=0.01)
    assert track.dropped_samples == (0, 0)
    track.stop()
    await source.aclose()


async def test_the_video_source_track_counts_its_pictures_size_and_rate() -> None:
    clock = FakeClock()
    source = VideoSource(64, 48, clock=clock)
    track = VideoSourceTrack(source)
    counts = track.source_counts()
    assert (counts.frames, counts.width, counts.height) == (0, None, None)
    rgba = np.full((48, 64, 4), 128, np.uint8).tobytes()
    for _ in range(3):
        source.capture_frame(VideoFrame(64, 48, VideoBufferType.RGBA, rgba))
        await asyncio.wait_for(track.recv(), 5)
        await clock.advance(0.1)
    counts = track.source_counts()
    assert (counts.frames, counts.width, counts.height) == (3, 64, 48)
    assert counts.frames_per_second == 3.0  # all three within the last second
    await clock.advance(1.0)
    assert track.source_counts().frames_per_second == 0.0
    track.stop()
    await source.aclose()


# ---------------------------------------------------------------------- track reader


class _Pictures(MediaStreamTrack):
    kind = "video"

    def __init__(self, sizes: list[tuple[int, int]]) -> None:
        super().__init__()
        self._sizes = list(sizes)

    async def recv(self) -> av.VideoFrame:
        if not self._sizes:
            self.stop()
            raise MediaStreamError
        width, height = self._sizes.pop(0)
        return av.VideoFrame(width, height, "yuv420p")


async def test_the_track_reader_counts_the_frames_it_reads() -> None:
    reader = TrackReader(_Pictures([(64, 48), (320, 180)]))
    assert (reader.frames_read, reader.last_video_size) == (0, None)
    ended = asyncio.Event()

    class _Sink:
        def on_frame(self, frame: object) -> None:
            pass

        def on_end(self) -> None:
            ended.set()

    reader.subscribe(_Sink())
    reader.start()
    await asyncio.wait_for(ended.wait(), 5)
    assert (reader.frames_read, reader.last_video_size) == (2, (320, 180))
