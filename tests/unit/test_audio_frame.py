"""AudioFrame, AudioFrameEvent and combine_audio_frames, checked against the official SDK."""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from livekit_py.rtc.audio_frame import AudioFrame
from livekit_py.rtc.audio_stream import AudioFrameEvent
from livekit_py.rtc.utils import combine_audio_frames


def _pcm(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32767, n, dtype=np.int16)


def test_construction_and_properties() -> None:
    pcm = _pcm(960)
    frame = AudioFrame(pcm.tobytes(), 48000, 2, 480)
    assert frame.sample_rate == 48000
    assert frame.num_channels == 2
    assert frame.samples_per_channel == 480
    assert frame.duration == pytest.approx(0.01)
    assert frame.data.format == "h"
    assert len(frame.data) == 960
    assert np.array_equal(np.frombuffer(frame.data, dtype=np.int16), pcm)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview_h"])
def test_accepted_buffer_types_are_copied(kind: str) -> None:
    pcm = _pcm(480, seed=1)
    source = bytearray(pcm.tobytes())
    data: Any = {
        "bytes": bytes(source),
        "bytearray": source,
        "memoryview": memoryview(source),
        "memoryview_h": memoryview(source).cast("h"),
    }[kind]
    frame = AudioFrame(data, 16000, 1, 480)
    assert np.array_equal(np.frombuffer(frame.data, dtype=np.int16), pcm)
    # the frame owns its samples: changing the source does not reach it
    source[0:2] = b"\x11\x22"
    assert frame.data[0] == pcm[0]


def test_data_view_is_writable() -> None:
    frame = AudioFrame(bytes(8), 8000, 1, 4)
    view = frame.data
    assert not view.readonly
    view[2] = -1234
    assert frame.data[2] == -1234
    np.frombuffer(frame.data, dtype=np.int16)[:] = 7
    assert frame.data.tolist() == [7, 7, 7, 7]


def test_too_short_data_is_rejected_like_the_official() -> None:
    with pytest.raises(ValueError, match="too short"):
        AudioFrame(bytes(6), 48000, 2, 2)
    with pytest.raises(ValueError):
        rtc.AudioFrame(bytes(6), 48000, 2, 2)


def test_odd_byte_count_is_rejected_like_the_official() -> None:
    with pytest.raises(ValueError, match="multiple of 2"):
        AudioFrame(bytes(5), 48000, 1, 2)
    with pytest.raises(ValueError):
        rtc.AudioFrame(bytes(5), 48000, 1, 2)


def test_longer_data_is_kept_whole_like_the_official() -> None:
    raw = _pcm(10, seed=2).tobytes()
    ours = AudioFrame(raw, 48000, 1, 4)
    theirs = rtc.AudioFrame(raw, 48000, 1, 4)
    assert ours.samples_per_channel == theirs.samples_per_channel == 4
    assert ours.data.tolist() == theirs.data.tolist()
    assert len(ours.data) == 10
    assert ours.to_wav_bytes() == theirs.to_wav_bytes()


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((48000, 1, -1), "samples_per_channel"),
        ((0, 1, 1), "sample_rate"),
        ((-8000, 1, 1), "sample_rate"),
        ((48000, 0, 1), "num_channels"),
        ((48000, -2, 1), "num_channels"),
        ((48000.0, 1, 1), "sample_rate"),
    ],
)
def test_bad_shape_arguments(args: tuple[Any, int, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AudioFrame(bytes(64), *args)
    with pytest.raises(ValueError, match=name):
        AudioFrame.create(*args)


def test_non_buffer_data_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="data"):
        AudioFrame([0, 0], 48000, 1, 2)  # type: ignore[arg-type]


def test_empty_frame_is_allowed_like_the_official() -> None:
    frame = AudioFrame(b"", 48000, 1, 0)
    assert frame.duration == 0.0
    assert len(frame.data) == 0
    assert rtc.AudioFrame(b"", 48000, 1, 0).samples_per_channel == 0


def test_create_is_silent() -> None:
    frame = AudioFrame.create(44100, 2, 441)
    assert (frame.sample_rate, frame.num_channels, frame.samples_per_channel) == (44100, 2, 441)
    assert len(frame.data) == 882
    assert not any(frame.data)
    assert frame.duration == pytest.approx(0.01)
    official = rtc.AudioFrame.create(44100, 2, 441)
    assert bytes(frame.data) == bytes(official.data)


def test_userdata() -> None:
    frame = AudioFrame.create(48000, 1, 10)
    assert frame.userdata == {}
    frame.userdata["speaker"] = "alice"
    assert frame.userdata == {"speaker": "alice"}
    assert AudioFrame.create(48000, 1, 10).userdata == {}  # not shared between frames

    meta: dict[str, Any] = {"id": 3}
    tagged = AudioFrame(bytes(4), 48000, 1, 2, userdata=meta)
    assert tagged.userdata is meta
    with pytest.raises(ValueError, match="userdata"):
        AudioFrame(bytes(4), 48000, 1, 2, userdata=["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "channels", "count"), [(48000, 1, 480), (16000, 2, 333)])
def test_wav_bytes_round_trip_and_match_the_official(rate: int, channels: int, count: int) -> None:
    pcm = _pcm(channels * count, seed=3)
    frame = AudioFrame(pcm.tobytes(), rate, channels, count)
    blob = frame.to_wav_bytes()
    assert blob[:4] == b"RIFF" and blob[8:16] == b"WAVEfmt "
    with wave.open(io.BytesIO(blob), "rb") as wav:
        assert wav.getnchannels() == channels
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == rate
        assert wav.getnframes() == count
        back = np.frombuffer(wav.readframes(count), dtype="<i2")
    assert np.array_equal(back, pcm)
    assert blob == rtc.AudioFrame(pcm.tobytes(), rate, channels, count).to_wav_bytes()


def test_repr_matches_the_official() -> None:
    raw = bytes(2 * 2 * 441)
    assert repr(AudioFrame(raw, 44100, 2, 441)) == repr(rtc.AudioFrame(raw, 44100, 2, 441))
    assert "duration=0.010" in repr(AudioFrame(raw, 44100, 2, 441))


def test_audio_frame_event() -> None:
    frame = AudioFrame.create(48000, 1, 480)
    event = AudioFrameEvent(frame=frame)
    assert event.frame is frame
    assert event == AudioFrameEvent(frame)


def test_combine_audio_frames() -> None:
    a, b, c = _pcm(2 * 100, 4), _pcm(2 * 50, 5), _pcm(2 * 7, 6)
    frames = [AudioFrame(x.tobytes(), 24000, 2, x.size // 2) for x in (a, b, c)]
    combined = combine_audio_frames(frames)
    assert combined.sample_rate == 24000
    assert combined.num_channels == 2
    assert combined.samples_per_channel == 157
    assert np.array_equal(np.frombuffer(combined.data, dtype=np.int16), np.concatenate([a, b, c]))

    official = rtc.combine_audio_frames(
        [rtc.AudioFrame(x.tobytes(), 24000, 2, x.size // 2) for x in (a, b, c)]
    )
    assert bytes(official.data) == bytes(combined.data)
    assert official.samples_per_channel == combined.samples_per_channel


def test_combine_single_frame_and_one_element_list() -> None:
    frame = AudioFrame(_pcm(10).tobytes(), 8000, 1, 10)
    assert combine_audio_frames(frame) is frame
    single = combine_audio_frames([frame])
    assert single is not frame
    assert bytes(single.data) == bytes(frame.data)


def test_combine_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        combine_audio_frames([])
    with pytest.raises(ValueError, match="sample rate"):
        combine_audio_frames([AudioFrame.create(48000, 1, 4), AudioFrame.create(16000, 1, 4)])
    with pytest.raises(ValueError, match="channel"):
        combine_audio_frames([AudioFrame.create(48000, 1, 4), AudioFrame.create(48000, 2, 4)])
