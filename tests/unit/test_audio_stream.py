"""AudioStream (conversion, framing, capacity, ending, processors), FrameFanout, TrackReader."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from livekit_py.media.frame_source import FrameFanout, TrackReader
from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_source import AudioSource
from livekit_py.rtc.audio_stream import AudioStream, NoiseCancellationOptions
from livekit_py.rtc.frame_processor import FrameProcessor
from livekit_py.types import TrackKind, TrackSource
from livekit_py.webrtc.source_tracks import AudioSourceTrack
from tests.unit.fake_clock import FakeClock


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


def stereo_sine_frames(
    freq: float, seconds: float, *, rate: int = 48000, amplitude: float = 8000, ms: int = 20
) -> list[av.AudioFrame]:
    """s16 stereo frames of a sine, as aiortc's Opus decoder delivers them."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    step = rate * ms // 1000
    frames = []
    for i in range(0, n, step):
        chunk = mono[i : i + step]
        inter = np.repeat(chunk, 2)
        frame = av.AudioFrame.from_ndarray(inter.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = Fraction(1, rate)
        frames.append(frame)
    return frames


def mono_frame(value: int, samples: int = 480, rate: int = 48000) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.full((1, samples), value, dtype=np.int16), format="s16", layout="mono"
    )
    frame.sample_rate = rate
    return frame


async def collect(stream: AudioStream, timeout: float = 5.0) -> list[AudioFrame]:
    async def run() -> list[AudioFrame]:
        return [event.frame async for event in stream]

    return await asyncio.wait_for(run(), timeout)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    windowed = samples.astype(np.float64) * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def pcm(frames: list[AudioFrame]) -> np.ndarray:
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


class Collector:
    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.ended = 0

    def on_frame(self, frame: Any) -> None:
        self.frames.append(frame)

    def on_end(self) -> None:
        self.ended += 1


# ---------------------------------------------------------------------- FrameFanout


async def test_fanout_delivery_end_and_late_subscribers(caplog: pytest.LogCaptureFixture) -> None:
    fanout = FrameFanout()
    a, b = Collector(), Collector()

    class Broken(Collector):
        def on_frame(self, frame: Any) -> None:
            raise RuntimeError("boom")

    sub_a = fanout.subscribe(a)
    fanout.subscribe(Broken())
    fanout.subscribe(b)
    assert fanout.subscriber_count == 3
    with caplog.at_level(logging.ERROR, logger="livekit_py"):
        fanout.publish(mono_frame(1))
    assert "failed on a frame" in caplog.text
    assert len(a.frames) == len(b.frames) == 1

    sub_a.close()
    sub_a.close()  # idempotent
    fanout.publish(mono_frame(2))
    assert len(a.frames) == 1 and len(b.frames) == 2

    fanout.end()
    fanout.end()
    assert fanout.ended and b.ended == 1 and a.ended == 0
    fanout.publish(mono_frame(3))
    assert len(b.frames) == 2

    late = Collector()
    fanout.subscribe(late)
    assert late.ended == 0  # notified from the loop, not from within subscribe()
    await asyncio.sleep(0)
    assert late.ended == 1


# ---------------------------------------------------------------------- conversion


async def test_48k_stereo_to_16k_mono_20ms() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout, sample_rate=16000, num_channels=1, frame_size_ms=20)
    for frame in stereo_sine_frames(440, 1.0):
        fanout.publish(frame)
    fanout.end()
    frames = await collect(stream)
    assert len(frames) in (49, 50)
    for frame in frames:
        assert frame.sample_rate == 16000
        assert frame.num_channels == 1
        assert frame.samples_per_channel == 320
    samples = pcm(frames)
    steady = samples[1600:-1600]
    assert abs(dominant_frequency(steady, 16000) - 440) < 5
    rms = float(np.sqrt(np.mean(steady.astype(np.float64) ** 2)))
    assert rms == pytest.approx(8000 / np.sqrt(2), rel=0.05)
    await stream.aclose()


async def test_default_frames_are_10ms() -> None:
    fanout = FrameFanout()
    stream = AudioStream.from_track(track=fanout)  # 48 kHz mono
    for frame in stereo_sine_frames(1000, 0.2):
        fanout.publish(frame)
    fanout.end()
    frames = await collect(stream)
    assert len(frames) == 20
    assert all(f.samples_per_channel == 480 and f.num_channels == 1 for f in frames)
    assert abs(dominant_frequency(pcm(frames), 48000) - 1000) < 10


async def test_float_planar_input_and_upmix() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout, sample_rate=24000, num_channels=2, frame_size_ms=40)
    rate = 44100
    t = np.arange(rate // 2) / rate
    tone = (0.25 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    for i in range(0, tone.size, 441):
        frame = av.AudioFrame.from_ndarray(
            tone[i : i + 441].reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        fanout.publish(frame)
    fanout.end()
    frames = await collect(stream)
    assert len(frames) in (12, 13)
    assert all(f.samples_per_channel == 960 and f.num_channels == 2 for f in frames)
    inter = pcm(frames).reshape(-1, 2)
    assert np.array_equal(inter[:, 0], inter[:, 1])
    steady = inter[2400:-2400, 0]
    assert abs(dominant_frequency(steady, 24000) - 300) < 5
    peak = float(np.max(np.abs(steady)))
    assert peak == pytest.approx(0.25 * 32768, rel=0.05)


async def test_exact_passthrough_and_frame_joining() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout, sample_rate=48000, num_channels=1, frame_size_ms=30)
    ramp = np.arange(1, 4801, dtype=np.int16)
    pos = 0
    for size in (100, 7, 993, 1440, 2260):
        frame = av.AudioFrame.from_ndarray(
            ramp[pos : pos + size].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 48000
        fanout.publish(frame)
        pos += size
    fanout.end()
    frames = await collect(stream)
    assert [f.samples_per_channel for f in frames] == [1440] * 3  # 480 left over: dropped
    assert np.array_equal(pcm(frames), ramp[:4320])


# ---------------------------------------------------------------------- queueing and ending


async def test_capacity_drops_oldest() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout, capacity=3)
    for value in range(10):
        fanout.publish(mono_frame(value))
    fanout.end()
    frames = await collect(stream)
    assert [int(np.frombuffer(f.data, dtype=np.int16)[0]) for f in frames] == [7, 8, 9]


async def test_unbounded_by_default() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout)
    for value in range(300):
        fanout.publish(mono_frame(value))
    fanout.end()
    assert len(await collect(stream)) == 300


async def test_iteration_waits_then_ends_on_fanout_end() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout)
    reader = asyncio.create_task(collect(stream))
    await asyncio.sleep(0.01)
    assert not reader.done()
    fanout.publish(mono_frame(5))
    await asyncio.sleep(0.01)
    assert not reader.done()
    fanout.end()
    frames = await asyncio.wait_for(reader, 1)
    assert len(frames) == 1
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_aclose_ends_iteration_and_unsubscribes() -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout)
    assert fanout.subscriber_count == 1
    pending = asyncio.create_task(stream.__anext__())
    await asyncio.sleep(0.01)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 1)
    assert fanout.subscriber_count == 0
    fanout.publish(mono_frame(1))
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    await stream.aclose()  # again: nothing happens


# ---------------------------------------------------------------------- processors


class Doubler(FrameProcessor[AudioFrame]):
    def __init__(self, *, fail: bool = False) -> None:
        self._enabled = True
        self.fail = fail
        self.closed = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = value

    def _process(self, frame: AudioFrame) -> AudioFrame:
        if self.fail:
            raise RuntimeError("processor failure")
        data = np.frombuffer(frame.data, dtype=np.int16) * 2
        return AudioFrame(data.tobytes(), frame.sample_rate, frame.num_channels, len(data))

    def _close(self) -> None:
        self.closed += 1


async def test_frame_processor_applied_when_enabled(caplog: pytest.LogCaptureFixture) -> None:
    processor = Doubler()
    fanout = FrameFanout()
    stream = AudioStream(fanout, noise_cancellation=processor)
    fanout.publish(mono_frame(10))
    processor.enabled = False
    fanout.publish(mono_frame(10))
    processor.enabled = True
    processor.fail = True
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        fanout.publish(mono_frame(10))
    assert "frame processing failed" in caplog.text
    fanout.end()
    values = [int(np.frombuffer(f.data, dtype=np.int16)[0]) for f in await collect(stream)]
    assert values == [20, 10, 10]
    await stream.aclose()
    assert processor.closed == 1  # 1.2.x closes it by default (1.0.x left it open)

    keeping = AudioStream(
        FrameFanout(), noise_cancellation=processor, auto_close_noise_cancellation=False
    )
    await keeping.aclose()
    assert processor.closed == 1


async def test_noise_cancellation_options_use_own_suppressor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fanout = FrameFanout()
    options = NoiseCancellationOptions(module_id="krisp", options={})
    with caplog.at_level(logging.INFO, logger="livekit_py"):
        stream = AudioStream(
            fanout, sample_rate=24000, num_channels=1, frame_size_ms=20, noise_cancellation=options
        )
    assert "module 'krisp' is a native plugin" in caplog.text
    assert "own noise suppression" in caplog.text
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(48000 * 2) * 1000).astype(np.int16)  # 2 s of white noise
    for i in range(0, noise.size, 960):
        frame = av.AudioFrame.from_ndarray(noise[i : i + 960].reshape(1, -1), layout="mono")
        frame.sample_rate = 48000
        fanout.publish(frame)
    fanout.end()
    frames = await collect(stream, timeout=15)
    assert len(frames) in (99, 100)
    assert all(f.samples_per_channel == 480 and f.sample_rate == 24000 for f in frames)
    out = pcm(frames).astype(np.float64)
    tail_rms = float(np.sqrt(np.mean(out[-12000:] ** 2)))
    assert tail_rms < 1000 * 0.6  # stationary noise is attenuated once learned


# ---------------------------------------------------------------------- tracks and participants


class FakeTrack:
    def __init__(self, fanout: FrameFanout, kind: int = TrackKind.KIND_AUDIO) -> None:
        self.kind = kind
        self.sid = "TR_fake"
        self._fanout = fanout

    def _frame_source(self) -> FrameFanout:
        return self._fanout


async def test_from_track_and_from_participant() -> None:
    from livekit.protocol import models as proto_models
    from livekit.protocol import rtc as proto_rtc

    from livekit_py import Room
    from livekit_py.signal.client import SignalClient

    fanout = FrameFanout()
    track = FakeTrack(fanout)
    stream = AudioStream.from_track(track=track, sample_rate=16000)

    # a room model with alice publishing a microphone track we are not subscribed to yet
    room = Room()
    room._signal = SignalClient()
    mic_info = proto_models.TrackInfo(
        sid="TR_mic", type=proto_models.TrackType.AUDIO, source=proto_models.TrackSource.MICROPHONE
    )
    room._on_join(
        proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_1", name="r"),
            participant=proto_models.ParticipantInfo(identity="me", sid="PA_me"),
            other_participants=[
                proto_models.ParticipantInfo(identity="alice", sid="PA_a", tracks=[mic_info])
            ],
        )
    )
    alice = room.remote_participants["alice"]
    other = AudioStream.from_participant(
        participant=alice, track_source=TrackSource.SOURCE_MICROPHONE, frame_size_ms=20
    )
    assert fanout.subscriber_count == 1  # waiting: not subscribed yet
    room.emit("track_subscribed", track, alice.track_publications["TR_mic"], alice)
    assert fanout.subscriber_count == 2
    for frame in stereo_sine_frames(440, 0.1):
        fanout.publish(frame)
    room.emit("participant_disconnected", alice)  # alice leaves: her stream ends
    fanout.end()
    assert {f.samples_per_channel for f in await collect(stream)} == {160}
    assert {f.samples_per_channel for f in await collect(other)} == {960}

    with pytest.raises(ValueError, match="Participant"):
        AudioStream.from_participant(
            participant=SimpleNamespace(identity="x"),
            track_source=TrackSource.SOURCE_SCREENSHARE_AUDIO,
        )


def test_bad_arguments() -> None:
    fanout = FrameFanout()
    with pytest.raises(ValueError, match="sample_rate"):
        AudioStream(fanout, sample_rate=0)
    with pytest.raises(ValueError, match="num_channels"):
        AudioStream(fanout, num_channels=-1)
    with pytest.raises(ValueError, match="capacity"):
        AudioStream(fanout, capacity=-1)
    with pytest.raises(ValueError, match="frame_size_ms"):
        AudioStream(fanout, frame_size_ms=0)
    with pytest.raises(ValueError, match="noise_cancellation"):
        AudioStream(fanout, noise_cancellation="krisp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="video track"):
        AudioStream(FakeTrack(fanout, kind=TrackKind.KIND_VIDEO))
    with pytest.raises(ValueError, match="audio Track"):
        AudioStream(object())
    with pytest.raises(ValueError, match="track is required"):
        AudioStream(None)
    assert fanout.subscriber_count == 0


# ---------------------------------------------------------------------- TrackReader


class FakeRemoteTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame], *, then_block: bool = False) -> None:
        super().__init__()
        self._frames = list(frames)
        self._then_block = then_block
        self.reads = 0

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(0)
        if self._frames:
            self.reads += 1
            return self._frames.pop(0)
        if self._then_block:
            await asyncio.Event().wait()
        raise MediaStreamError


async def test_track_reader_drains_and_ends_on_media_stream_error() -> None:
    track = FakeRemoteTrack(stereo_sine_frames(440, 0.2))
    reader = TrackReader(track)
    reader.start()
    stream = AudioStream(reader, sample_rate=16000, frame_size_ms=20)
    frames = await collect(stream)
    assert reader.ended
    assert track.reads == 10  # read even before the stream subscribed
    assert len(frames) >= 8
    await reader.aclose()
    assert reader._task is not None and reader._task.done()


async def test_track_reader_reads_without_subscribers() -> None:
    track = FakeRemoteTrack(stereo_sine_frames(440, 0.1), then_block=True)
    reader = TrackReader(track)
    reader.start()
    await asyncio.sleep(0.05)
    assert track.reads == 5
    assert not reader.ended
    await reader.aclose()
    assert reader.ended
    assert reader._task is not None and reader._task.done()


async def test_track_reader_ends_when_track_stops() -> None:
    track = FakeRemoteTrack([], then_block=True)
    reader = TrackReader(track)
    sink = Collector()
    reader.subscribe(sink)
    reader.start()
    await asyncio.sleep(0.01)
    track.stop()
    assert reader.ended and sink.ended == 1
    await asyncio.sleep(0)
    assert reader._task is not None and reader._task.done()
    await reader.aclose()

    stopped = FakeRemoteTrack([])
    stopped.stop()
    late = TrackReader(stopped)
    late.start()
    assert late.ended
    await late.aclose()


async def test_local_loopback_source_track_reader_stream() -> None:
    clock = FakeClock()
    source = AudioSource(48000, 1, clock=clock)
    track = AudioSourceTrack(source)
    reader = TrackReader(track)
    stream = AudioStream(reader, sample_rate=16000, frame_size_ms=20)
    sent_stream = AudioStream(track._sent, sample_rate=16000, frame_size_ms=20)
    reader.start()
    t = np.arange(24000) / 48000
    tone = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)

    async def play() -> None:
        await source.capture_frame(AudioFrame(tone.tobytes(), 48000, 1, tone.size))
        await source.wait_for_playout()
        await clock.sleep(0.05)
        await source.aclose()  # ends the track, so the reader, so the streams

    await clock.run(play())
    frames = await clock.run(collect(stream))
    sent = await clock.run(collect(sent_stream))
    assert reader.ended
    samples = pcm(frames)
    loud = samples[np.abs(samples) > 0]
    assert loud.size >= 7000
    assert abs(dominant_frequency(samples, 16000) - 440) < 5
    assert np.array_equal(pcm(sent), samples)
    await reader.aclose()


async def test_unconvertible_frames_are_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fanout = FrameFanout()
    stream = AudioStream(fanout)
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        for _ in range(3):
            bad = av.AudioFrame(format="s64", layout="mono", samples=480)
            bad.sample_rate = 48000
            fanout.publish(bad)
        fanout.publish(mono_frame(4))
    assert caplog.text.count("cannot convert") == 1
    fanout.end()
    frames = await collect(stream)
    assert len(frames) == 1


async def test_opus_loopback_over_aiortc_peer_connections() -> None:
    """AudioSource -> AudioSourceTrack -> Opus/RTP on localhost -> TrackReader -> AudioStream."""
    from aiortc import RTCPeerConnection

    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    source = AudioSource(48000, 1)
    track = AudioSourceTrack(source)
    reader: TrackReader | None = None
    try:
        sender.addTrack(track)
        arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        receiver.on("track", arrived.set_result)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        reader = TrackReader(await asyncio.wait_for(arrived, 10))
        reader.start()
        stream = AudioStream(reader, sample_rate=16000, frame_size_ms=20)

        t = np.arange(48000) / 48000
        tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        for i in range(0, tone.size, 960):
            await source.capture_frame(AudioFrame(tone[i : i + 960].tobytes(), 48000, 1, 960))
        await source.wait_for_playout()

        async def read() -> np.ndarray:
            got: list[AudioFrame] = []
            async for event in stream:
                got.append(event.frame)
                if len(got) >= 60 and not np.any(np.frombuffer(event.frame.data, np.int16)):
                    break
            return pcm(got)

        samples = (await asyncio.wait_for(read(), 10)).astype(np.float64)
        await stream.aclose()
        loud = np.flatnonzero(np.abs(samples) > 500)
        steady = samples[loud[0] + 1600 : loud[-1] - 1600]
        assert steady.size > 16000 * 0.6
        assert abs(dominant_frequency(steady, 16000) - 440) < 5
        rms = float(np.sqrt(np.mean(steady**2)))
        assert rms == pytest.approx(8000 / np.sqrt(2), rel=0.1)
    finally:
        if reader is not None:
            await reader.aclose()
        track.stop()
        await source.aclose()
        await sender.close()
        await receiver.close()


def test_from_participant_checks_the_track_source() -> None:
    follows = SimpleNamespace(_follow_track=lambda source, kind: FrameFanout())
    for bad in ("microphone", True, 1.0):
        with pytest.raises(ValueError, match="track_source must be a TrackSource value"):
            AudioStream.from_participant(participant=follows, track_source=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------ noise-cancellation plugins


def _noise(seconds: float) -> list[av.AudioFrame]:
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(int(48000 * seconds)) * 1000).astype(np.int16)
    frames = []
    for i in range(0, noise.size, 960):
        frame = av.AudioFrame.from_ndarray(noise[i : i + 960].reshape(1, -1), layout="mono")
        frame.sample_rate = 48000
        frames.append(frame)
    return frames


async def test_plugin_options_of_the_official_class_are_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # LiveKit's noise-cancellation package returns the official SDK's
    # NoiseCancellationOptions from NC()/BVC(): a different class with the same fields
    official = pytest.importorskip("livekit.rtc")
    options = official.NoiseCancellationOptions(
        "140230", {"modelPath": "/site-packages/nc/resources/hs.c6.f.m.75df8f.kef"}
    )
    fanout = FrameFanout()
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        stream = AudioStream(fanout, noise_cancellation=options)
    assert "module '140230', model hs.c6.f.m.75df8f.kef is a native plugin" in caplog.text
    for frame in _noise(2.0):
        fanout.publish(frame)
    fanout.end()
    out = pcm(await collect(stream, timeout=15)).astype(np.float64)
    # not passed through unprocessed: our suppressor attenuates the stationary noise
    assert float(np.sqrt(np.mean(out[-12000:] ** 2))) < 1000 * 0.6
    await stream.aclose()


async def test_any_object_with_module_id_and_options_is_accepted() -> None:
    options = SimpleNamespace(module_id="nc-module", options={})
    fanout = FrameFanout()
    stream = AudioStream.from_track(track=FakeTrack(fanout), noise_cancellation=options)
    fanout.publish(mono_frame(100))
    fanout.end()
    assert len(await collect(stream)) == 1
    await stream.aclose()


async def test_processors_built_on_the_official_frame_processor() -> None:
    official = pytest.importorskip("livekit.rtc")

    class OfficialDoubler(official.FrameProcessor):  # type: ignore[misc]
        def __init__(self) -> None:
            self.closed = 0

        @property
        def enabled(self) -> bool:
            return True

        @enabled.setter
        def enabled(self, value: bool) -> None:
            pass

        def _process(self, frame: Any) -> Any:
            data = np.frombuffer(frame.data, dtype=np.int16) * 2
            return AudioFrame(data.tobytes(), frame.sample_rate, frame.num_channels, len(data))

        def _close(self) -> None:
            self.closed += 1

    processor = OfficialDoubler()
    fanout = FrameFanout()
    stream = AudioStream(fanout, noise_cancellation=processor)
    fanout.publish(mono_frame(10))
    fanout.end()
    values = [int(np.frombuffer(f.data, dtype=np.int16)[0]) for f in await collect(stream)]
    assert values == [20]
    await stream.aclose()
    assert processor.closed == 1


async def test_auto_close_defaults_of_from_track_and_from_participant() -> None:
    from livekit.protocol import models as proto_models
    from livekit.protocol import rtc as proto_rtc

    from livekit_py import Room
    from livekit_py.signal.client import SignalClient

    processor = Doubler()
    # from_track leaves the processor open unless told (official default False)
    stream = AudioStream.from_track(track=FakeTrack(FrameFanout()), noise_cancellation=processor)
    await stream.aclose()
    assert processor.closed == 0
    stream = AudioStream.from_track(
        track=FakeTrack(FrameFanout()),
        noise_cancellation=processor,
        auto_close_noise_cancellation=True,
    )
    await stream.aclose()
    assert processor.closed == 1

    room = Room()
    room._signal = SignalClient()
    room._on_join(
        proto_rtc.JoinResponse(
            room=proto_models.Room(sid="RM_1", name="r"),
            participant=proto_models.ParticipantInfo(identity="me", sid="PA_me"),
            other_participants=[proto_models.ParticipantInfo(identity="alice", sid="PA_a")],
        )
    )
    alice = room.remote_participants["alice"]
    # from_participant closes it unless told (official default True)
    stream = AudioStream.from_participant(
        participant=alice, track_source=TrackSource.SOURCE_MICROPHONE, noise_cancellation=processor
    )
    await stream.aclose()
    assert processor.closed == 2
    stream = AudioStream.from_participant(
        participant=alice,
        track_source=TrackSource.SOURCE_MICROPHONE,
        noise_cancellation=processor,
        auto_close_noise_cancellation=False,
    )
    await stream.aclose()
    assert processor.closed == 2


def test_objects_that_are_neither_are_refused() -> None:
    with pytest.raises(ValueError, match="module_id and options"):
        AudioStream(FrameFanout(), noise_cancellation=SimpleNamespace(module_id=3, options={}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_cancellation"):
        AudioStream(FrameFanout(), noise_cancellation=object())  # type: ignore[arg-type]


def test_audio_filter_records_the_plugin_and_checks_its_files(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from livekit_py import rtc
    from livekit_py.rtc.audio_filter import AudioFilter, registered_filter

    library = tmp_path / "libfilter.so"
    library.write_bytes(b"\x7fELF")
    with caplog.at_level(logging.INFO, logger="livekit_py"):
        AudioFilter("mod-1", str(library))
    assert "does not load native filter plugins" in caplog.text
    recorded = registered_filter("mod-1")
    assert recorded is not None and recorded.path == str(library)
    assert rtc.AudioFilter is AudioFilter
    with pytest.raises(RuntimeError, match="is not a file"):
        AudioFilter("mod-2", str(tmp_path / "missing.so"))
    with pytest.raises(RuntimeError, match=r"dep\.so"):
        AudioFilter("mod-3", str(library), [str(tmp_path / "dep.so")])
    with pytest.raises(ValueError, match="module_id"):
        AudioFilter("", str(library))
    # a stream asking for the recorded module names its library in the warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="livekit_py"):
        AudioStream(FrameFanout(), noise_cancellation=NoiseCancellationOptions("mod-1", {}))
    assert "'mod-1' from libfilter.so" in caplog.text
