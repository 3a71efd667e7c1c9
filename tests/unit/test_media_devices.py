"""MediaDevices on a fake audio backend: no sound card (nor sounddevice) needed.

``FakeAudioBackend`` plays the part of sounddevice: its streams run a thread each that calls
the stream callback every block, paced in real time.  Input streams deliver what ``mic``
returns for the block's sample positions (plus, optionally, an echo of what the output
streams played); output streams record what the callback wrote.  The integration tests
import it.

Time is the device's, not the machine's: every block has an exact time on the backend's
shared sample timeline, given in the callback's ``time_info`` and returned by
``backend.clock`` (the clock ``MediaDevices(clock=backend.clock)`` takes its times on)
during that callback.  A callback that runs late on a loaded machine still reports the
time its block belongs to, so the capture and playout times the echo canceller's delay
hint is worked out from do not depend on how fast the machine is.  The streams also take
turns in timeline order (a stream whose block is due waits for every stream with an
earlier block), as the callbacks of one duplex device would: what MediaDevices receives,
and in which order, is the same on a loaded machine as on an idle one.  An output stream
can be made to wait for the audio to play (``FakeStream.ready``), so that a loaded
machine cannot starve it either.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from livekit_py.rtc import media_devices as md
from livekit_py.rtc.apm import AudioProcessingModule
from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_source import AudioSource
from livekit_py.rtc.audio_stream import AudioStream
from livekit_py.rtc.media_devices import MediaDevices
from livekit_py.types import TrackKind
from tests.helpers import wait_until
from tests.integration.audio_utils import dominant_frequency, feed_sine, rms_dbfs
from tests.unit.apm_signals import tone_amplitude

RATE = 48000
BLOCK = 4800

#: ``mic(start, frames, channels)`` -> int16 samples shaped (frames, channels)
MicSignal = Callable[[int, int, int], np.ndarray]


def silence(start: int, frames: int, channels: int) -> np.ndarray:
    return np.zeros((frames, channels), dtype=np.int16)


def tones(*parts: tuple[float, float]) -> MicSignal:
    """A mic signal: the sum of (frequency, amplitude 0-1) sines, on every channel."""

    def signal(start: int, frames: int, channels: int) -> np.ndarray:
        t = np.arange(start, start + frames) / RATE
        x = sum(a * 32767 * np.sin(2 * np.pi * f * t) for f, a in parts)
        mono = np.asarray(x, dtype=np.float64).astype(np.int16)
        return np.repeat(mono[:, None], channels, axis=1)

    return signal


class FakeTime:
    """The ``time_info`` of a callback, with PortAudio's attribute names."""

    def __init__(self, current: float, adc: float, dac: float) -> None:
        self.currentTime = current
        self.inputBufferAdcTime = adc
        self.outputBufferDacTime = dac


class FakeStream:
    """A device stream: a thread calling ``callback`` once per block, in real time."""

    def __init__(
        self,
        backend: FakeAudioBackend,
        kind: str,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: Callable[..., None],
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.samplerate = samplerate
        self.blocksize = blocksize or samplerate // 100
        self.device = device
        self.channels = channels
        self.dtype = dtype
        self.callback = callback
        self.started = self.stopped = self.closed = False
        self.callbacks = 0
        self.played: list[np.ndarray] = []  # output: what the callback wrote, per block
        #: if set, each block is played only once this returns True (or the stream stops)
        self.ready: Callable[[], bool] | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = 0.0
        self._first = 0

    def due(self, n: int) -> float:
        """The device time of block ``n``'s callback: input once the block was captured,
        output before it plays."""
        position = self._first + (n + 1 if self.kind == "input" else n) * self.blocksize
        return self.backend.time_of(position, self.samplerate)

    def start(self) -> None:
        assert not self.closed
        if self.backend.fail_start:
            raise RuntimeError("fake device error")
        self.started = True
        self._origin = time.monotonic()
        # position on the shared timeline
        self._first = round((self._origin - self.backend.epoch) * self.samplerate)
        self.backend.take_turns(self, self.due(0))
        self._thread = threading.Thread(
            target=self._run, name=f"fake-audio {self.kind}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopped = True
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
        if self.backend.fail_stop:
            raise RuntimeError("fake device error on stop")

    def close(self) -> None:
        self.closed = True

    def _run(self) -> None:
        try:
            self._play()
        finally:
            self.backend.leave(self)

    def _play(self) -> None:
        rate, block = self.samplerate, self.blocksize
        period = block / rate
        backend = self.backend
        n = 0
        while not self._halt.is_set():
            # paced in real time: the due time on the machine's clock
            start = backend.time_of(self._first, rate)
            wait = self._origin + (self.due(n) - start) - time.monotonic()
            if wait > 0 and self._halt.wait(wait):
                break
            if not backend.wait_turn(self, self._halt):
                break
            ready = self.ready
            while ready is not None and not ready():
                if self._halt.wait(0.005):
                    return
            now = self.due(n)
            position = self._first + n * block
            if self.kind == "input":
                data = backend.capture(position, block, self.channels, rate)
                info = FakeTime(now, now - period, 0.0)
                with backend.at(now):
                    self.callback(data, block, info, None)
            else:
                out = np.full((block, self.channels), 12345, dtype=np.int16)  # garbage
                info = FakeTime(now, 0.0, now + backend.output_latency)
                with backend.at(now):
                    self.callback(out, block, info, None)
                self.played.append(out.copy())
                backend.render(position, out, rate)
            self.callbacks += 1
            n += 1
            backend.take_turns(self, self.due(n))


class FakeAudioBackend:
    """An :class:`md.AudioBackend` without hardware.

    Devices: 0 "Fake Mic" (2 inputs), 1 "Fake Speaker" (2 outputs), 2 "Fake Headset" (4 in,
    2 out).  ``mic`` gives the captured signal; with ``echo_gain`` the input also hears the
    output streams' audio ``echo_delay`` samples later (mono, on a shared sample timeline).
    """

    def __init__(
        self,
        mic: MicSignal = silence,
        *,
        echo_gain: float = 0.0,
        echo_delay: int = 0,
        output_latency: float = 0.02,
    ) -> None:
        self.mic = mic
        self.echo_gain = echo_gain
        self.echo_delay = echo_delay
        self.output_latency = output_latency
        self.epoch = time.monotonic()
        self.fail_start = False
        self.fail_stop = False
        self.streams: list[FakeStream] = []
        self._tape = np.zeros(RATE * 120, dtype=np.int16)  # what the speakers played
        self._lock = threading.Lock()
        self._now = threading.local()
        # the next callback's device time of every running stream
        self._turns = threading.Condition()
        self._next: dict[FakeStream, float] = {}

    def take_turns(self, stream: FakeStream, due: float) -> None:
        """``stream``'s next callback is due at device time ``due``."""
        with self._turns:
            self._next[stream] = due
            self._turns.notify_all()

    def leave(self, stream: FakeStream) -> None:
        with self._turns:
            self._next.pop(stream, None)
            self._turns.notify_all()

    def wait_turn(self, stream: FakeStream, halt: threading.Event) -> bool:
        """Wait until no other stream has an earlier callback due (ties: creation order);
        False if ``halt`` was set meanwhile."""

        def key(s: FakeStream) -> tuple[float, int]:
            return (self._next[s], self.streams.index(s))

        with self._turns:
            while not halt.is_set():
                if min(self._next, key=key) is stream:
                    return True
                self._turns.wait(0.05)
        return False

    def time_of(self, position: int, rate: int) -> float:
        """The time of a sample position on the shared timeline (``clock``'s seconds)."""
        return self.epoch + position / rate

    @contextlib.contextmanager
    def at(self, now: float) -> Iterator[None]:
        """While a callback runs: ``clock()`` on its thread is the time of its block."""
        self._now.value = now
        try:
            yield
        finally:
            self._now.value = None

    def clock(self) -> float:
        """The device time: that of the block whose callback is running on this thread
        (a callback reads nothing else), the machine's monotonic clock elsewhere."""
        now: float | None = getattr(self._now, "value", None)
        return time.monotonic() if now is None else now

    def devices(self, **options: Any) -> MediaDevices:
        """A :class:`MediaDevices` on this backend's clock."""
        return MediaDevices(clock=self.clock, **options)

    def query_devices(self) -> list[dict[str, Any]]:
        return [
            {"name": "Fake Mic", "max_input_channels": 2, "max_output_channels": 0},
            {"name": "Fake Speaker", "max_input_channels": 0, "max_output_channels": 2},
            {"name": "Fake Headset", "max_input_channels": 4, "max_output_channels": 2},
        ]

    def default_device(self) -> tuple[int | None, int | None]:
        return 0, 1

    def InputStream(self, **kwargs: Any) -> FakeStream:
        stream = FakeStream(self, "input", **kwargs)
        self.streams.append(stream)
        return stream

    def OutputStream(self, **kwargs: Any) -> FakeStream:
        stream = FakeStream(self, "output", **kwargs)
        self.streams.append(stream)
        return stream

    def of_kind(self, kind: str) -> list[FakeStream]:
        return [s for s in self.streams if s.kind == kind]

    def capture(self, position: int, frames: int, channels: int, rate: int) -> np.ndarray:
        data = self.mic(position, frames, channels)
        if self.echo_gain:
            with self._lock:
                start = (position - self.echo_delay) % len(self._tape)
                echo = np.take(self._tape, np.arange(start, start + frames), mode="wrap")
            mixed = data.astype(np.float64) + self.echo_gain * echo[:, None].astype(np.float64)
            data = np.clip(mixed, -32768, 32767).astype(np.int16)
        return data

    def render(self, position: int, out: np.ndarray, rate: int) -> None:
        mono = out.astype(np.float64).mean(axis=1).astype(np.int16)
        with self._lock:
            start = position % len(self._tape)
            np.put(self._tape, np.arange(start, start + len(mono)), mono, mode="wrap")


class FakeTrack:
    """Stands for a subscribed audio track: its audio is what ``source`` plays out."""

    kind = TrackKind.KIND_AUDIO

    def __init__(self, source: AudioSource, sid: str) -> None:
        self.sid = sid
        self.source = source

    def _frame_source(self) -> Any:
        return self.source._fanout


def our_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("livekit_py MediaDevices", "fake-audio"))
    ]


@pytest.fixture
def backend() -> Iterator[FakeAudioBackend]:
    fake = FakeAudioBackend()
    previous = md.set_audio_backend(fake)
    try:
        yield fake
    finally:
        md.set_audio_backend(previous)
    assert our_threads() == []


@contextlib.asynccontextmanager
async def playing(freq: float, sid: str, amplitude: float = 0.5) -> AsyncIterator[FakeTrack]:
    """A fake track playing a sine."""
    source = AudioSource(RATE, 1)
    task = asyncio.ensure_future(feed_sine(source, AudioFrame, freq, amplitude=amplitude))
    try:
        yield FakeTrack(source, sid)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.aclose()


async def read_source(source: AudioSource, seconds: float, skip: float = 0.4) -> np.ndarray:
    """``seconds`` of what ``source`` plays out (int16, (n, channels)), after ``skip``."""
    stream = AudioStream(
        source._fanout, sample_rate=source.sample_rate, num_channels=source.num_channels
    )
    chunks: list[np.ndarray] = []
    needed = round((seconds + skip) * source.sample_rate)

    async def read() -> None:
        got = 0
        async for event in stream:
            frame = event.frame
            data = np.frombuffer(frame.data, dtype=np.int16)
            chunks.append(data.reshape(-1, frame.num_channels).copy())
            got += frame.samples_per_channel
            if got >= needed:
                return

    try:
        await asyncio.wait_for(read(), seconds + skip + 10)
    finally:
        await stream.aclose()
    return np.concatenate(chunks)[round(skip * source.sample_rate) :]


def played_audio(stream: FakeStream) -> np.ndarray:
    return np.concatenate(stream.played) if stream.played else np.zeros((0, stream.channels))


# ---------------------------------------------------------------------------------------
# enumeration, backends, errors


def test_lists_devices_and_defaults(backend: FakeAudioBackend) -> None:
    devices = MediaDevices()
    inputs = devices.list_input_devices()
    outputs = devices.list_output_devices()
    assert [(d["index"], d["name"]) for d in inputs] == [(0, "Fake Mic"), (2, "Fake Headset")]
    assert [(d["index"], d["name"]) for d in outputs] == [(1, "Fake Speaker"), (2, "Fake Headset")]
    assert inputs[1]["max_input_channels"] == 4
    assert devices.default_input_device() == 0
    assert devices.default_output_device() == 1


def test_missing_sounddevice_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes `import sounddevice` fail
    previous = md.set_audio_backend(None)
    try:
        with pytest.raises(ImportError, match=r"pip install livekit-py\[devices\]"):
            MediaDevices()
        with pytest.raises(ImportError, match="sounddevice"):
            md.get_audio_backend()
    finally:
        md.set_audio_backend(previous)


def test_importing_the_package_does_not_need_sounddevice() -> None:
    code = (
        "import sys; sys.modules['sounddevice'] = None\n"
        "import livekit_py, livekit_py.rtc\n"
        "from livekit_py.rtc import media_devices, synchronizer\n"
        "try:\n"
        "    media_devices.MediaDevices()\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "ERR MediaDevices needs the optional 'sounddevice' package" in out.stdout
    assert "pip install livekit-py[devices]" in out.stdout


class _Pair:
    """Like sounddevice's ``default.device``: indexable, not a tuple."""

    def __init__(self, inp: Any, out: Any) -> None:
        self._pair = [inp, out]

    def __getitem__(self, index: int) -> Any:
        return self._pair[index]


def _fake_sounddevice_module(default: Any) -> types.ModuleType:
    module = types.ModuleType("sounddevice")
    devices = [
        {"name": "a", "index": 0, "max_input_channels": 1, "max_output_channels": 0},
        {"name": "b", "index": 1, "max_input_channels": 0, "max_output_channels": 2},
        {"name": "c", "index": 2, "max_input_channels": 2, "max_output_channels": 2},
    ]
    module.made = []  # type: ignore[attr-defined]

    def query_devices(device: Any = None, kind: str | None = None) -> Any:
        if kind is None and device is None:
            return list(devices)
        if kind == "input":
            return devices[2]
        return devices[1]

    def stream(kind: str) -> Callable[..., Any]:
        def make(**kwargs: Any) -> Any:
            module.made.append((kind, kwargs))
            return types.SimpleNamespace(start=lambda: None, stop=lambda: None, close=lambda: None)

        return make

    module.query_devices = query_devices  # type: ignore[attr-defined]
    module.default = types.SimpleNamespace(device=default)  # type: ignore[attr-defined]
    module.InputStream = stream("input")  # type: ignore[attr-defined]
    module.OutputStream = stream("output")  # type: ignore[attr-defined]
    return module


async def test_the_sounddevice_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_sd = _fake_sounddevice_module(_Pair(-1, None))
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sd)
    previous = md.set_audio_backend(None)
    try:
        devices = MediaDevices(blocksize=960)
        assert isinstance(md.get_audio_backend(), md.SoundDeviceBackend)
        assert [d["name"] for d in devices.list_input_devices()] == ["a", "c"]
        assert [d["index"] for d in devices.list_output_devices()] == [1, 2]
        # -1 / None mean "PortAudio's default": resolved through query_devices(kind=...)
        assert devices.default_input_device() == 2
        assert devices.default_output_device() == 1
        fake_sd.default = types.SimpleNamespace(device=_Pair(0, 2))  # type: ignore[attr-defined]
        assert (devices.default_input_device(), devices.default_output_device()) == (0, 2)

        capture = devices.open_input(input_device=2, enable_aec=False)
        player = devices.open_output(output_device=1)
        (kind_in, args_in), (kind_out, args_out) = fake_sd.made
        assert (kind_in, kind_out) == ("input", "output")
        for args, device in ((args_in, 2), (args_out, 1)):
            assert args["samplerate"] == 48000 and args["blocksize"] == 960
            assert args["dtype"] == "int16" and args["channels"] == 1
            assert args["device"] == device and callable(args["callback"])
        await player.aclose()
        await capture.aclose()
    finally:
        md.set_audio_backend(previous)


def test_bad_arguments(backend: FakeAudioBackend) -> None:
    with pytest.raises(ValueError, match="num_channels"):
        MediaDevices(num_channels=0)
    with pytest.raises(ValueError, match="blocksize"):
        MediaDevices(blocksize=-1)
    devices = MediaDevices()
    with pytest.raises(RuntimeError, match="running event loop"):
        devices.open_input()


async def test_capture_and_playout_times_come_from_the_given_clock(
    backend: FakeAudioBackend,
) -> None:
    with pytest.raises(TypeError, match="clock must be a callable"):
        MediaDevices(clock=0.0)  # type: ignore[arg-type]
    readers: list[str] = []

    def clock() -> float:
        readers.append(threading.current_thread().name)
        return backend.clock()

    devices = MediaDevices(clock=clock)
    capture = devices.open_input(noise_suppression=False, auto_gain_control=False)
    player = devices.open_output()
    try:
        async with playing(1000.0, "TR_1k") as track:
            await player.add_track(track)
            await player.start()
            output = backend.of_kind("output")[0]
            await wait_until(lambda: output.callbacks >= 3, 30, "played blocks")
            await capture._processor.flush()
    finally:
        await player.aclose()
        await capture.aclose()
    # the callbacks read it, once per block: the capture time, the playout time
    assert {"fake-audio input", "fake-audio output"} <= set(readers)
    # from the fake devices' block times: 20 ms output latency plus up to one capture block
    assert capture._processor.delay_ms is not None and 10 <= capture._processor.delay_ms <= 130


async def test_open_input_argument_checks(backend: FakeAudioBackend) -> None:
    with pytest.raises(ValueError, match="22050 Hz"):
        MediaDevices(input_sample_rate=22050).open_input()
    with pytest.raises(ValueError, match="input_channel_index 2 is out of range"):
        MediaDevices().open_input(input_channel_index=2)  # the default mic has 2 channels
    with pytest.raises(ValueError, match="queue_capacity"):
        MediaDevices().open_input(queue_capacity=0)
    assert backend.streams == []
    # without processing any rate goes
    capture = MediaDevices(input_sample_rate=22050).open_input(
        enable_aec=False,
        noise_suppression=False,
        high_pass_filter=False,
        auto_gain_control=False,
    )
    assert capture.apm is None and capture.source.sample_rate == 22050
    await capture.aclose()
    # processing at 44.1 kHz, as the official APM takes it
    capture = MediaDevices(input_sample_rate=44100).open_input()
    assert capture.apm is not None and capture.source.sample_rate == 44100
    await capture.aclose()


async def test_a_device_that_fails_to_start(backend: FakeAudioBackend) -> None:
    backend.fail_start = True
    devices = backend.devices()
    with pytest.raises(RuntimeError, match="fake device error"):
        devices.open_input()
    player = devices.open_output()
    with pytest.raises(RuntimeError, match="fake device error"):
        await player.start()
    await player.aclose()
    await wait_until(lambda: our_threads() == [], 5, "the processing thread to end")
    assert all(s.closed for s in backend.streams)
    assert devices._captures == [] and devices._players == []


async def test_a_device_that_fails_to_stop(
    backend: FakeAudioBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.fail_stop = True
    devices = backend.devices()
    capture = devices.open_input()
    player = devices.open_output()
    await player.start()
    await asyncio.sleep(0.2)
    await player.aclose()
    await capture.aclose()  # closing goes on: the thread and the task end all the same
    assert capture.task.done() and our_threads() == []
    assert all(s.closed for s in backend.streams)
    assert "output stop failed" in caplog.text and "input stop failed" in caplog.text


# ---------------------------------------------------------------------------------------
# capture


async def test_open_input_captures_unprocessed_audio_bit_exact(
    backend: FakeAudioBackend,
) -> None:
    # a ramp: every sample is the previous one plus 7 (mod 2**16), so any reordering,
    # loss or alteration shows
    def ramp(start: int, frames: int, channels: int) -> np.ndarray:
        values = ((np.arange(start, start + frames) * 7) % 65536 - 32768).astype(np.int16)
        return np.repeat(values[:, None], channels, axis=1)

    backend.mic = ramp
    devices = backend.devices(num_channels=2)
    capture = devices.open_input(
        enable_aec=False,
        noise_suppression=False,
        high_pass_filter=False,
        auto_gain_control=False,
    )
    assert capture.apm is None
    try:
        samples = await read_source(capture.source, 1.5)
    finally:
        await capture.aclose()
    assert samples.shape[1] == 2
    assert np.array_equal(samples[:, 0], samples[:, 1])
    steps = np.diff(samples[:, 0].astype(np.int32)) % 65536
    continuous = float(np.mean(steps == 7))
    print(f"\nunprocessed capture: {continuous:.1%} of sample steps continuous")
    assert continuous > 0.97  # a loaded machine may cause a gap or two, nothing else


async def test_open_input_applies_the_apm_high_pass_filter(backend: FakeAudioBackend) -> None:
    backend.mic = tones((50.0, 0.3), (1000.0, 0.1))  # 50 Hz hum over a 1 kHz tone
    devices = backend.devices()
    capture = devices.open_input(
        enable_aec=False,
        noise_suppression=False,
        high_pass_filter=True,
        auto_gain_control=False,
    )
    assert isinstance(capture.apm, AudioProcessingModule)
    stream = backend.of_kind("input")[0]
    assert (stream.samplerate, stream.channels, stream.blocksize) == (48000, 1, BLOCK)
    assert stream.dtype == "int16" and stream.device is None
    try:
        samples = await read_source(capture.source, 1.5, skip=0.5)
    finally:
        await capture.aclose()
    mono = samples[:, 0]
    hum = tone_amplitude(mono, 50.0, RATE) / (0.3 * 32767)
    tone = tone_amplitude(mono, 1000.0, RATE) / (0.1 * 32767)
    hum_db, tone_db = 20 * np.log10(hum), 20 * np.log10(tone)
    print(f"\nhigh-pass through MediaDevices: 50 Hz {hum_db:+.1f} dB, 1 kHz {tone_db:+.1f} dB")
    # relative to the tone, so that a gap in the playout would not matter
    assert hum_db - tone_db < -15.0
    assert tone_db > -2.0


async def test_open_input_takes_the_chosen_device_channel(backend: FakeAudioBackend) -> None:
    def per_channel(start: int, frames: int, channels: int) -> np.ndarray:
        t = np.arange(start, start + frames) / RATE
        cols = [0.4 * 32767 * np.sin(2 * np.pi * 300.0 * (c + 1) * t) for c in range(channels)]
        return np.stack(cols, axis=1).astype(np.int16)

    backend.mic = per_channel
    devices = backend.devices()
    capture = devices.open_input(
        input_device=2,
        input_channel_index=2,
        enable_aec=False,
        noise_suppression=False,
        high_pass_filter=False,
        auto_gain_control=False,
    )
    stream = backend.of_kind("input")[0]
    assert (stream.device, stream.channels) == (2, 3)
    try:
        samples = await read_source(capture.source, 1.0)
    finally:
        await capture.aclose()
    assert abs(dominant_frequency(samples, RATE) - 900.0) < 5.0


async def test_aclose_stops_everything(backend: FakeAudioBackend) -> None:
    backend.mic = tones((440.0, 0.3))
    devices = backend.devices()
    before = set(asyncio.all_tasks())
    capture = devices.open_input()
    player = devices.open_output()
    async with playing(880.0, "TR_a") as track:
        await player.add_track(track)
        await player.start()
        with pytest.raises(RuntimeError, match="already started"):
            await player.start()
        await wait_until(lambda: capture.source.queued_duration > 0, 5, "captured audio")
        assert len(our_threads()) == 3  # input + output device threads, processing thread
        await player.aclose()
        await capture.aclose()
        await capture.aclose()  # idempotent
        await player.aclose()
    assert our_threads() == []
    assert all(s.stopped and s.closed for s in backend.streams)
    assert capture.task.done()
    left = {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()}
    assert left == set()
    with pytest.raises(RuntimeError, match="closed"):
        await player.start()
    with pytest.raises(RuntimeError, match="closed"):
        await player.add_track(FakeTrack(AudioSource(RATE, 1), "TR_b"))


# ---------------------------------------------------------------------------------------
# playback and the reverse stream


def primed(player: md.OutputPlayer) -> Callable[[], bool]:
    """For ``FakeStream.ready``: every track of ``player`` has audio enough to play a block
    (what came before the device's block is played whatever the machine's load)."""

    def ready() -> bool:
        entries = list(player._tracks)
        return bool(entries) and all(e.buffer._size >= player._prime for e in entries)

    return ready


async def play_blocks(stream: FakeStream, count: int) -> np.ndarray:
    """What ``stream`` plays in its next ``count`` blocks."""
    start = len(stream.played)
    await wait_until(lambda: len(stream.played) >= start + count, 60, f"{count} blocks played")
    return np.concatenate(stream.played[start : start + count])


async def test_open_output_plays_and_mixes_tracks(backend: FakeAudioBackend) -> None:
    devices = backend.devices()
    player = devices.open_output(output_device=2)
    stream = backend.of_kind("output")[0]
    assert (stream.device, stream.channels, stream.samplerate) == (2, 1, RATE)
    # the device plays a block once every track has one: the levels are those mixed, not
    # those of a buffer a loaded machine let run dry
    stream.ready = primed(player)
    try:
        async with playing(440.0, "TR_440", 0.4) as a, playing(1000.0, "TR_1k", 0.2) as b:
            await player.add_track(a)
            with pytest.raises(ValueError, match="already added"):
                await player.add_track(a)
            await player.start()
            one = await play_blocks(stream, 15)
            await player.add_track(b)
            await play_blocks(stream, 1)  # the block being mixed while b was added
            both = await play_blocks(stream, 15)
            await player.remove_track(a)
            await player.remove_track(a)  # unknown now: ignored
            await play_blocks(stream, 1)
            only_b = await play_blocks(stream, 12)
            stats = [(e.track.sid, e.buffer.underruns, e.buffer.dropped) for e in player._tracks]
    finally:
        await player.aclose()
    assert stream.stopped and stream.closed
    print("\nbuffers (sid, underruns, dropped samples):", stats)

    def level(samples: np.ndarray, freq: float) -> float:
        return tone_amplitude(samples[-RATE // 2 :, 0], freq, RATE) / 32767

    # what was played before the first frames arrived is silence, never garbage
    assert not np.any(played_audio(stream) == 12345)
    assert abs(dominant_frequency(one[-RATE // 2 :], RATE) - 440.0) < 3.0
    assert abs(rms_dbfs(one[-RATE // 2 :]) - 20 * np.log10(0.4 / np.sqrt(2))) < 1.0
    print(
        f"\nplayed: 440 Hz {level(both, 440.0):.3f}, 1 kHz {level(both, 1000.0):.3f} (mixed); "
        f"after removal 440 Hz {level(only_b, 440.0):.4f}, 1 kHz {level(only_b, 1000.0):.3f}"
    )
    assert abs(level(both, 440.0) - 0.4) < 0.04 and abs(level(both, 1000.0) - 0.2) < 0.02
    assert level(only_b, 440.0) < 0.01 and abs(level(only_b, 1000.0) - 0.2) < 0.02


@pytest.mark.parametrize("output_rate", [48000, 44100])
async def test_the_reverse_stream_is_fed_from_an_active_output(
    backend: FakeAudioBackend, output_rate: int
) -> None:
    devices = backend.devices(output_sample_rate=output_rate)
    capture = devices.open_input(noise_suppression=False, auto_gain_control=False)
    apm = capture.apm
    assert apm is not None
    reverse: list[AudioFrame] = []
    delays: list[int] = []
    real_reverse, real_delay = apm.process_reverse_stream, apm.set_stream_delay_ms

    def record_reverse(frame: AudioFrame) -> None:
        reverse.append(frame)
        real_reverse(frame)

    def record_delay(delay_ms: int) -> None:
        delays.append(delay_ms)
        real_delay(delay_ms)

    apm.process_reverse_stream = record_reverse  # type: ignore[method-assign]
    apm.set_stream_delay_ms = record_delay  # type: ignore[method-assign]
    player = devices.open_output()
    try:
        async with playing(1000.0, "TR_1k", 0.3) as track:
            await player.add_track(track)
            await asyncio.sleep(0.3)
            assert reverse == []  # nothing played yet: no reverse stream
            await player.start()
            await asyncio.sleep(1.5)
            await player.aclose()
            await capture._processor.flush()  # it worked through what was played
            count = len(reverse)
            mic = backend.of_kind("input")[0]
            captured = mic.callbacks
            await wait_until(lambda: mic.callbacks >= captured + 3, 30, "more captured blocks")
            await capture._processor.flush()
            assert len(reverse) == count  # the player stopped: so did the reverse stream
    finally:
        await player.aclose()
        await capture.aclose()
    output = backend.of_kind("output")[0]
    played_seconds = output.callbacks * output.blocksize / output_rate
    fed_seconds = len(reverse) / 100
    print(
        f"\nreverse stream: {fed_seconds:.2f} s fed for {played_seconds:.2f} s played, "
        f"delay hints {sorted(set(delays))} ms"
    )
    assert all(f.sample_rate == 48000 and f.samples_per_channel == 480 for f in reverse)
    assert abs(fed_seconds - played_seconds) < 0.06
    fed = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in reverse])
    assert abs(dominant_frequency(fed[-RATE // 2 :], 48000) - 1000.0) < 3.0
    # from the playout of a reverse frame to the capture of the position where the
    # canceller puts it: the output latency (20 ms) plus up to one capture block
    assert delays and all(10 <= d <= 130 for d in delays)
    assert capture._processor.delay_ms == delays[-1]


async def test_echo_of_the_played_track_is_cancelled(backend: FakeAudioBackend) -> None:
    """The fake mic hears the speaker 30 ms later: with the output's reverse stream the
    echo canceller removes it."""
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(RATE * 20)

    backend.mic = tones((300.0, 0.05))  # the near-end talker, to be kept
    backend.echo_gain, backend.echo_delay = 0.5, round(0.03 * RATE)
    devices = backend.devices()
    capture = devices.open_input(
        enable_aec=True,
        noise_suppression=False,
        high_pass_filter=False,
        auto_gain_control=False,
    )
    player = devices.open_output()
    far = AudioSource(RATE, 1)

    async def feed_noise() -> None:
        position = 0
        while True:
            block = np.clip(noise[position : position + 480] * 0.15 * 32767, -32768, 32767)
            await far.capture_frame(AudioFrame(block.astype(np.int16).tobytes(), RATE, 1, 480))
            position = (position + 480) % (len(noise) - 480)

    feeder = asyncio.ensure_future(feed_noise())
    try:
        await player.add_track(FakeTrack(far, "TR_far"))
        await player.start()
        samples = await read_source(capture.source, 4.0, skip=0.5)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await player.aclose()
        await capture.aclose()
        await far.aclose()
    echo_db = rms_dbfs(np.array([0.5 * 0.15 * 32767]))  # the echo's level at the mic
    last = samples[-RATE:, 0].astype(np.float64)
    near = tone_amplitude(last, 300.0, RATE)
    t = np.arange(len(last)) / RATE
    # what is left once the near-end tone (fitted in phase and amplitude) is taken out
    basis = np.stack([np.sin(2 * np.pi * 300.0 * t), np.cos(2 * np.pi * 300.0 * t)], axis=1)
    fit, *_ = np.linalg.lstsq(basis, last, rcond=None)
    residual_db = rms_dbfs(last - basis @ fit)
    near_db = 20 * np.log10(near / (0.05 * 32767))
    print(
        f"\necho at the mic {echo_db:.1f} dBFS; after AEC, last second: residual "
        f"{residual_db:.1f} dBFS, near-end tone {near_db:+.1f} dB"
    )
    assert residual_db < echo_db - 15.0
    # (the near-end tone is not asserted: during double talk against full-band noise 7 dB
    # louder, livekit_py's echo suppressor takes it down too, MediaDevices or not)


def test_the_longest_delay_hint_does_not_break_the_echo_canceller() -> None:
    """The capture processor hints up to 500 ms; a hint that moves the modelled echo path
    beyond the canceller's span (260 ms) made every later capture frame fail."""
    apm = AudioProcessingModule(
        echo_cancellation=True,
        noise_suppression=False,
        high_pass_filter=False,
        auto_gain_control=False,
    )
    far = tones((700.0, 0.3))
    for delay_ms in (20, 500, 20, 500):
        apm.set_stream_delay_ms(delay_ms)
        for i in range(10):
            block = far(i * 480, 480, 1)
            apm.process_reverse_stream(AudioFrame(block.tobytes(), RATE, 1, 480))
            frame = AudioFrame((block // 2).tobytes(), RATE, 1, 480)
            apm.process_stream(frame)  # raised ValueError (could not broadcast) after 500 ms
            assert frame.samples_per_channel == 480
