"""rtc.utils: sine_wave_generator (and combine_audio_frames) as the official helpers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from livekit_py import rtc
from livekit_py.rtc.utils import combine_audio_frames, sine_wave_generator


async def _collect(*args: float, **kwargs: float) -> list[rtc.AudioFrame]:
    return [frame async for frame in sine_wave_generator(*args, **kwargs)]  # type: ignore[arg-type]


def test_frames_are_100_ms_mono_and_cover_whole_frames_only() -> None:
    frames = asyncio.run(_collect(440, 0.35, sample_rate=16000))
    assert len(frames) == 3  # 0.35 s: three whole 100 ms frames, the rest is not generated
    for frame in frames:
        assert (frame.sample_rate, frame.num_channels, frame.samples_per_channel) == (
            16000,
            1,
            1600,
        )


def test_tone_frequency_amplitude_and_phase_continuity() -> None:
    frames = asyncio.run(_collect(1000, 1.0, sample_rate=48000, amplitude=0.5))
    assert len(frames) == 10
    signal = np.frombuffer(combine_audio_frames(frames).data, dtype=np.int16).astype(np.float64)
    assert signal.size == 48000
    assert np.max(np.abs(signal)) == pytest.approx(0.5 * 32767, abs=2)
    spectrum = np.abs(np.fft.rfft(signal))
    assert int(np.argmax(spectrum)) == 1000  # 1 Hz bins over one second
    # continuous across frame boundaries: the whole second is one clean tone
    expected = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000) * 32767).astype(np.int16)
    assert np.array_equal(signal.astype(np.int16), expected)


def test_same_samples_as_the_official_helper() -> None:
    official_utils = pytest.importorskip("livekit.rtc.utils")

    async def official() -> list[bytes]:
        return [
            bytes(frame.data.cast("B"))
            async for frame in official_utils.sine_wave_generator(523.25, 0.5, 24000, 0.8)
        ]

    ours = [bytes(frame.data.cast("B")) for frame in asyncio.run(_collect(523.25, 0.5, 24000, 0.8))]
    assert ours == asyncio.run(official())


def test_exported_like_the_official_module() -> None:
    assert rtc.utils.sine_wave_generator is sine_wave_generator


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 5}, "sample_rate"),
        ({"duration": float("nan")}, "duration"),
        ({"freq": float("inf")}, "freq"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    args: dict[str, float] = {"freq": 440.0, "duration": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        asyncio.run(_collect(**args))
