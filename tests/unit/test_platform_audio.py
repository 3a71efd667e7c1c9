"""PlatformAudio on the fake audio backend of test_media_devices: devices, selection,
capture into a source, automatic playout of subscribed remote audio, and the official
errors when sounddevice or a device is missing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from livekit_py import rtc
from livekit_py.media.devices import remote_audio
from livekit_py.rtc import media_devices as md
from livekit_py.rtc import platform_audio as pa
from livekit_py.rtc.platform_audio import (
    AudioDeviceInfo,
    PlatformAudio,
    PlatformAudioError,
    PlatformAudioOptions,
)
from tests.helpers import wait_until
from tests.integration.audio_utils import dominant_frequency
from tests.unit.test_media_devices import (
    RATE,
    FakeAudioBackend,
    our_threads,
    playing,
    read_source,
    tones,
)


class Devices(FakeAudioBackend):
    """The fake backend with a device list of the test's choosing."""

    def __init__(self, devices: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listed = devices
        self.default = (0, 1)

    def query_devices(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.listed]

    def default_device(self) -> tuple[int | None, int | None]:
        return self.default


def _install(fake: FakeAudioBackend) -> Iterator[FakeAudioBackend]:
    previous = md.set_audio_backend(fake)
    try:
        yield fake
    finally:
        md.set_audio_backend(previous)
        pa._shared = None
    assert our_threads() == []


@pytest.fixture
def backend() -> Iterator[FakeAudioBackend]:
    yield from _install(FakeAudioBackend(mic=tones((440.0, 0.3))))


def test_official_names() -> None:
    assert rtc.PlatformAudio is PlatformAudio
    assert rtc.AudioDeviceInfo is AudioDeviceInfo
    assert rtc.PlatformAudioError is PlatformAudioError
    assert rtc.PlatformAudioOptions().echo_cancellation is True
    options = PlatformAudioOptions()
    assert (options.noise_suppression, options.auto_gain_control, options.prefer_hardware) == (
        True,
        True,
        False,
    )


# ------------------------------------------------------------------------- what is missing


def test_without_sounddevice_platform_audio_raises_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes `import sounddevice` fail
    previous = md.set_audio_backend(None)
    try:
        with pytest.raises(PlatformAudioError, match="Failed to initialize PlatformAudio") as err:
            PlatformAudio()
        assert "sounddevice" in str(err.value)
    finally:
        md.set_audio_backend(previous)
        pa._shared = None


def test_without_any_device_platform_audio_raises_its_error() -> None:
    for _ in _install(Devices([])):
        with pytest.raises(PlatformAudioError, match="no devices"):
            PlatformAudio()


class Broken(FakeAudioBackend):
    def query_devices(self) -> list[dict[str, Any]]:
        raise OSError("PortAudio: host error")


def test_a_backend_that_cannot_list_devices() -> None:
    for _ in _install(Broken()):
        with pytest.raises(PlatformAudioError, match="host error"):
            PlatformAudio()


async def test_without_a_microphone_there_is_no_source() -> None:
    speaker_only = [{"name": "Speaker", "max_input_channels": 0, "max_output_channels": 2}]
    for fake in _install(Devices(speaker_only)):
        fake.default = (None, 0)
        audio = PlatformAudio()
        assert audio.recording_devices() == []
        assert [d.name for d in audio.playout_devices()] == ["Speaker"]
        with pytest.raises(PlatformAudioError, match="no recording device"):
            audio.create_audio_source()
        await audio.aclose()


# ------------------------------------------------------------------------- devices


def test_devices_are_listed_per_kind_with_stable_ids(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    assert audio.recording_devices() == [
        AudioDeviceInfo(0, "Fake Mic", "0:Fake Mic"),
        AudioDeviceInfo(1, "Fake Headset", "0:Fake Headset"),
    ]
    assert audio.playout_devices() == [
        AudioDeviceInfo(0, "Fake Speaker", "0:Fake Speaker"),
        AudioDeviceInfo(1, "Fake Headset", "0:Fake Headset"),
    ]
    audio.close()


def test_ids_of_identical_devices_and_backend_ids() -> None:
    listed = [
        {"name": "USB Mic", "hostapi": 1, "max_input_channels": 1, "max_output_channels": 0},
        {"name": "USB Mic", "hostapi": 1, "max_input_channels": 1, "max_output_channels": 0},
        {"name": "Out", "id": "uid-42", "max_input_channels": 0, "max_output_channels": 2},
    ]
    for _ in _install(Devices(listed)):
        audio = PlatformAudio()
        assert [d.id for d in audio.recording_devices()] == ["1:USB Mic", "1:USB Mic#2"]
        assert [d.id for d in audio.playout_devices()] == ["uid-42"]
        audio.close()


def test_selecting_unknown_devices_raises(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    with pytest.raises(PlatformAudioError, match="no recording device has the id 'nope'"):
        audio.set_recording_device("nope")
    with pytest.raises(PlatformAudioError, match="no playout device has the id"):
        audio.set_playout_device("0:Fake Mic")  # an input device
    audio.set_recording_device("0:Fake Headset")
    audio.set_playout_device("0:Fake Headset")
    audio.close()
    with pytest.raises(PlatformAudioError, match="closed"):
        audio.recording_devices()
    audio.close()  # again: nothing


def test_instances_share_the_selection(backend: FakeAudioBackend) -> None:
    first = PlatformAudio()
    first.set_recording_device("0:Fake Headset")
    second = PlatformAudio()
    assert second._state() is first._state()
    assert second._state().recording_id == "0:Fake Headset"
    first.close()
    assert second.recording_devices()  # still open
    second.close()
    assert pa._shared is None


# ------------------------------------------------------------------------- capture


async def test_source_captures_the_selected_microphone(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    audio.set_recording_device("0:Fake Headset")
    source = audio.create_audio_source()
    try:
        assert source.device.name == "Fake Headset"
        (stream,) = backend.of_kind("input")
        assert stream.device == 2  # the backend's index of the headset
        assert (source.sample_rate, source.num_channels) == (48000, 1)
        capture = source._capture
        assert capture.apm is not None
        apm = capture.apm
        assert apm._echo_enabled and apm._noise_enabled and apm._gain_enabled
        assert apm._high_pass_enabled
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        assert track._source is source.audio_source
        audio_in = await read_source(source.audio_source, 0.5)
        assert dominant_frequency(audio_in[:, 0].astype(np.float64), RATE) == pytest.approx(
            440.0, abs=5.0
        )
    finally:
        await source.aclose()
        await audio.aclose()
    assert stream.closed


async def test_options_choose_the_processing(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    plain = audio.create_audio_source(
        PlatformAudioOptions(
            echo_cancellation=False, noise_suppression=False, auto_gain_control=False
        )
    )
    assert plain._capture.apm is None
    (stream,) = backend.of_kind("input")
    assert stream.device == 0  # the default microphone
    only_ns = audio.create_audio_source(
        PlatformAudioOptions(echo_cancellation=False, auto_gain_control=False)
    )
    apm = only_ns._capture.apm
    assert apm is not None and apm._noise_enabled and not apm._echo_enabled
    plain.close()
    plain.close()  # again: nothing
    await only_ns.aclose()
    await plain.aclose()
    await audio.aclose()


def test_a_source_needs_a_running_loop(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    with pytest.raises(RuntimeError, match="running event loop"):
        audio.create_audio_source()
    audio.close()


async def test_a_device_that_cannot_be_opened(backend: FakeAudioBackend) -> None:
    backend.fail_start = True
    audio = PlatformAudio()
    with pytest.raises(PlatformAudioError, match=r"Fake Mic.*fake device error"):
        audio.create_audio_source()
    await audio.aclose()
    # the failed capture's processing thread ends on its own, shortly after
    await wait_until(lambda: our_threads() == [], timeout=10, what="the capture thread ends")


# ------------------------------------------------------------------------- playout


async def test_subscribed_remote_audio_is_played(backend: FakeAudioBackend) -> None:
    async with playing(660.0, "TR_before") as before:
        remote_audio.track_subscribed(before)  # subscribed before PlatformAudio existed
        audio = PlatformAudio()
        try:
            audio.set_playout_device("0:Fake Headset")
            await wait_until(lambda: bool(backend.of_kind("output")), timeout=10)
            (stream,) = backend.of_kind("output")
            assert stream.device == 2

            async with playing(880.0, "TR_later") as later:
                remote_audio.track_subscribed(later)
                await wait_until(
                    lambda: len(stream.played) > 40 and _tones(stream) == {660, 880}, timeout=20
                )
                remote_audio.track_unsubscribed(later)
                mark = len(stream.played)
                await wait_until(lambda: len(stream.played) > mark + 10, timeout=20)
                assert _tones(stream, since=mark + 5) == {660}
        finally:
            remote_audio.track_unsubscribed(before)
            await audio.aclose()
    assert stream.closed
    assert remote_audio._sinks == []


async def test_selecting_another_speaker_moves_the_playout(backend: FakeAudioBackend) -> None:
    audio = PlatformAudio()
    async with playing(500.0, "TR_a") as track:
        remote_audio.track_subscribed(track)
        try:
            await wait_until(lambda: len(backend.of_kind("output")) == 1, timeout=10)
            first = backend.of_kind("output")[0]
            assert first.device == 1  # the default speaker
            audio.set_playout_device("0:Fake Headset")
            await wait_until(lambda: len(backend.of_kind("output")) == 2, timeout=10)
            second = backend.of_kind("output")[1]
            assert second.device == 2
            await wait_until(lambda: first.closed, timeout=10)
            await wait_until(lambda: _tones(second) == {500}, timeout=20)
        finally:
            remote_audio.track_unsubscribed(track)
            await audio.aclose()


def _tones(stream: Any, since: int = 0) -> set[int]:
    """The frequencies (Hz, to 10 Hz) clearly present in what ``stream`` played."""
    blocks = stream.played[since:]
    if not blocks:
        return set()
    audio = np.concatenate(blocks)[:, 0].astype(np.float64)
    if audio.size < RATE // 4:
        return set()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)
    peak = float(spectrum.max())
    if peak < 1e3:
        return set()
    found = set()
    for f in (500, 660, 880):
        band = (freqs > f - 10) & (freqs < f + 10)
        if float(spectrum[band].max()) > 0.1 * peak:
            found.add(f)
    return found
