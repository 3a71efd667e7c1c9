"""Our ctypes binding of libopus (media/libopus.py), on the libopus in the PyAV wheel."""

from __future__ import annotations

import ctypes.util
import os
import pathlib
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from livekit_py.media import libopus
from livekit_py.media.libopus import OpusDecoder, OpusEncoder, OpusError

RATE = 48000
FRAME = 960  # 20 ms

pytestmark = pytest.mark.skipif(not libopus.available, reason=f"no libopus: {libopus.reason}")


def tone(freq: float, seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1)


def stepped_tones(seconds: float, rate: int = RATE) -> np.ndarray:
    """A tone whose pitch changes every 20 ms: what was lost cannot be guessed from before."""
    steps = np.array([300.0, 520.0, 710.0, 410.0, 630.0])
    n = int(seconds * rate)
    freq = np.resize(np.repeat(steps, rate // 50), n)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return (0.4 * 32767 * np.sin(phase)).astype(np.int16)[:, None]


def frames(pcm: np.ndarray, size: int = FRAME) -> Iterator[np.ndarray]:
    for start in range(0, len(pcm) - size + 1, size):
        yield pcm[start : start + size]


def level_db(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(10 * np.log10(np.mean(x**2)))


def snr_db(reference: np.ndarray, got: np.ndarray) -> float:
    ref, out = reference.astype(np.float64), got.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - out) ** 2), 1e-9)))


# ---------------------------------------------------------------------- the library


def test_the_wheel_library_is_loaded_and_answers() -> None:
    assert libopus.available and libopus.reason == ""
    assert libopus.version.startswith("libopus ")
    assert libopus.library_path in libopus.candidate_paths()
    assert "av" in os.path.basename(os.path.dirname(libopus.library_path or ""))


def test_candidates_follow_each_wheel_layout(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = os.fspath(tmp_path)
    av_dir = os.path.join(site, "av")
    files = [
        os.path.join(site, "av.libs", "libopus-1a2b.so.0.10.1"),  # auditwheel
        os.path.join(av_dir, ".dylibs", "libopus.0.dylib"),  # delocate
        os.path.join(site, "av.libs", "opus-3c4d.dll"),  # delvewheel
        os.path.join(site, "av.libs", "libopus-0-5e6f.dll"),
    ]
    for path in files:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    open(os.path.join(site, "av.libs", "libvpx-1.so.9"), "wb").close()
    monkeypatch.setattr(libopus, "_av_directory", lambda: av_dir)
    assert libopus.candidate_paths() == files
    monkeypatch.setattr(libopus, "_av_directory", lambda: None)
    assert libopus.candidate_paths() == []


def test_load_reports_why_nothing_could_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    lib, why = libopus.load(["/nonexistent/libopus.so.0"])
    assert lib is None and "/nonexistent/libopus.so.0" in why
    libm = ctypes.util.find_library("m")
    if libm is not None:  # a library that is not libopus: the missing symbol is named
        lib, why = libopus.load([libm])
        assert lib is None and "opus_" in why
    monkeypatch.setattr(libopus, "candidate_paths", lambda: [])
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    lib, why = libopus.load()
    assert lib is None and "no libopus found" in why
    lib, why = libopus.load([libopus.library_path or ""])
    assert lib is not None and why == "" and lib.version == libopus.version


def test_without_libopus_the_classes_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libopus, "available", False)
    monkeypatch.setattr(libopus, "reason", "no usable libopus: test")
    for make in (OpusEncoder, OpusDecoder):
        with pytest.raises(RuntimeError, match="libopus is not available: no usable libopus"):
            make()
    with pytest.raises(RuntimeError, match="not available"):
        libopus.packet_samples(b"\xfc")


# ---------------------------------------------------------------------- encoder controls


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("bitrate", [6000, 32000, 96000, 512000]),
        ("complexity", [0, 5, 10]),
        ("vbr", [False, True]),
        ("inband_fec", [1, 2, 0]),
        ("packet_loss_percent", [0, 7, 30, 100]),
        ("dtx", [True, False]),
        ("signal", [libopus.SIGNAL_VOICE, libopus.SIGNAL_MUSIC, libopus.AUTO]),
    ],
)
def test_each_control_reads_back_what_was_set(name: str, values: list[int]) -> None:
    with OpusEncoder(RATE, 2) as encoder:
        for value in values:
            setattr(encoder, name, value)
            assert getattr(encoder, name) == value


def test_controls_refuse_values_libopus_has_no_meaning_for() -> None:
    encoder = OpusEncoder(RATE, 1)
    for name, value in [
        ("bitrate", 100),
        ("bitrate", 600_000),
        ("complexity", 11),
        ("inband_fec", 3),
        ("packet_loss_percent", -1),
        ("packet_loss_percent", 101),
        ("signal", 1),
        ("complexity", 2.5),
    ]:
        with pytest.raises(ValueError, match=name):
            setattr(encoder, name, value)
    encoder.bitrate = libopus.AUTO  # libopus picks one for the format
    assert encoder.bitrate > 0
    encoder.bitrate = libopus.BITRATE_MAX
    assert encoder.bitrate > 100_000


def test_read_only_facts_and_reset() -> None:
    encoder = OpusEncoder(RATE, 1)
    assert encoder.lookahead == RATE // 400 + RATE // 250  # 2.5 ms CELT + 4 ms SILK delay
    assert encoder.in_dtx is False
    encoder.bitrate = 24000
    encoder.encode(np.zeros(FRAME, np.int16), FRAME)
    encoder.reset()
    assert encoder.bitrate == 24000  # the controls survive a reset


def test_a_format_libopus_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        OpusEncoder(44100, 1)
    with pytest.raises(ValueError, match="channels"):
        OpusDecoder(48000, 3)
    with pytest.raises(ValueError, match="application"):
        OpusEncoder(48000, 1, application=1)


def test_encode_checks_its_input() -> None:
    encoder = OpusEncoder(RATE, 2)
    with pytest.raises(ValueError, match="int16"):
        encoder.encode(np.zeros((FRAME, 2), np.float32), FRAME)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="960 x 2"):
        encoder.encode(np.zeros(FRAME, np.int16), FRAME)
    with pytest.raises(ValueError, match="frame_size"):
        encoder.encode(np.zeros((700, 2), np.int16), 700)
    with pytest.raises(ValueError, match="frame_size"):
        encoder.encode(np.zeros((1440, 2), np.int16), 1440)  # 30 ms: no such Opus frame
    flat = encoder.encode(np.zeros(2 * FRAME, np.int16), FRAME)  # interleaved, flat
    assert 1 <= len(flat) <= libopus.MAX_PACKET_BYTES
    strided = tone(440, 0.04, channels=2)[::2]  # not contiguous: copied for libopus
    assert len(encoder.encode(strided, FRAME)) > 2


def test_closed_objects_refuse_work_and_close_twice() -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    packet = encoder.encode(np.zeros(FRAME, np.int16), FRAME)
    encoder.close()
    encoder.close()
    decoder.close()
    assert encoder.closed and decoder.closed
    with pytest.raises(RuntimeError, match="closed"):
        encoder.encode(np.zeros(FRAME, np.int16), FRAME)
    with pytest.raises(RuntimeError, match="closed"):
        _ = encoder.bitrate
    with pytest.raises(RuntimeError, match="closed"):
        decoder.decode(packet)


# ---------------------------------------------------------------------- encode and decode


@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (48000, 2), (16000, 1)])
def test_a_tone_comes_back_at_its_level_and_pitch(rate: int, channels: int) -> None:
    encoder, decoder = OpusEncoder(rate, channels), OpusDecoder(rate, channels)
    encoder.bitrate = 32000
    size = rate // 50
    original = tone(440, 1.0, rate, channels)
    decoded = [decoder.decode(encoder.encode(f, size)) for f in frames(original, size)]
    assert all(d.shape == (size, channels) and d.dtype == np.int16 for d in decoded)
    out = np.concatenate(decoded)
    delay = encoder.lookahead  # the decoder's output lags the input by the codec delay
    settle = rate // 10
    ref = original[settle : len(out) - delay]
    got = out[settle + delay :]
    assert abs(level_db(got) - level_db(ref)) < 1.0
    spectrum = np.abs(np.fft.rfft(got[:, 0].astype(np.float64)))
    assert abs(np.argmax(spectrum) * rate / len(got) - 440) < 3
    assert decoder.last_packet_duration == size


def test_packet_facts() -> None:
    encoder = OpusEncoder(RATE, 1)
    packet = encoder.encode(np.zeros(FRAME, np.int16), FRAME)
    assert libopus.packet_samples(packet) == FRAME
    assert libopus.packet_samples(packet, 16000) == 320
    assert OpusDecoder.packet_samples(bytearray(packet), 8000) == 160
    with pytest.raises(ValueError, match="empty"):
        libopus.packet_samples(b"")
    with pytest.raises(OpusError, match="opus_packet_get_nb_samples"):
        libopus.packet_samples(b"\x03")  # code 3 with no frame count byte
    with pytest.raises(ValueError, match="bytes"):
        libopus.packet_has_fec("abc")  # type: ignore[arg-type]


def test_decode_checks_its_input() -> None:
    decoder = OpusDecoder(RATE, 1)
    packet = OpusEncoder(RATE, 1).encode(tone(440, 0.02)[:, 0], FRAME)
    with pytest.raises(ValueError, match="empty"):
        decoder.decode(b"")
    with pytest.raises(OpusError, match="opus_decode"):
        decoder.decode(packet, 480)  # less room than the packet holds
    with pytest.raises(ValueError, match="frame_size"):
        decoder.decode(packet, 1000)
    with pytest.raises(OpusError):
        decoder.decode(b"\x03\xff\x00")  # a frame count of 63 frames, and no data
    assert decoder.decode(packet, 5760).shape == (FRAME, 1)  # room for 120 ms: 20 ms used
    assert decoder.conceal(480).shape == (480, 1)
    assert decoder.last_packet_duration == 480
    decoder.reset()
    assert decoder.decode(memoryview(packet)).shape == (FRAME, 1)


# ---------------------------------------------------------------------- FEC


def _encode_with_fec(pcm: np.ndarray, loss: int = 20, fec: int = 1) -> list[bytes]:
    encoder = OpusEncoder(RATE, pcm.shape[1])
    encoder.bitrate = 32000
    encoder.inband_fec = fec
    encoder.packet_loss_percent = loss
    return [encoder.encode(f, FRAME) for f in frames(pcm)]


@pytest.mark.parametrize("signal", ["tone", "stepped"])
def test_fec_rebuilds_a_lost_packet_much_better_than_concealment(signal: str) -> None:
    pcm = tone(440, 1.0) if signal == "tone" else stepped_tones(1.0)
    packets = _encode_with_fec(pcm)
    clean = OpusDecoder(RATE, 1)
    reference = [clean.decode(p) for p in packets]  # what the decoder makes with no loss
    for lost in (12, 23, 31):
        assert libopus.packet_has_fec(packets[lost + 1])
        results = {}
        for mode in ("fec", "plc"):
            decoder = OpusDecoder(RATE, 1)
            for packet in packets[:lost]:
                decoder.decode(packet)
            if mode == "fec":
                got = decoder.decode_fec(packets[lost + 1], FRAME)
            else:
                got = decoder.conceal(FRAME)
            assert got.shape == (FRAME, 1)
            results[mode] = snr_db(reference[lost], got)
        # FEC: ~35 dB on the tone, ~20 dB on the steps; concealment: 12 dB at best
        assert results["fec"] > 15.0, results
        assert results["fec"] > results["plc"] + 10.0, results


def test_no_fec_without_expected_loss_or_when_off() -> None:
    pcm = tone(440, 0.4)
    assert not any(libopus.packet_has_fec(p) for p in _encode_with_fec(pcm, loss=0))
    assert not any(libopus.packet_has_fec(p) for p in _encode_with_fec(pcm, fec=0))
    assert sum(libopus.packet_has_fec(p) for p in _encode_with_fec(pcm)) >= 15


def test_fec_of_a_packet_without_any_is_concealment() -> None:
    packets = _encode_with_fec(tone(440, 0.2), fec=0)
    a, b = OpusDecoder(RATE, 1), OpusDecoder(RATE, 1)
    for packet in packets[:5]:
        a.decode(packet)
        b.decode(packet)
    assert np.array_equal(a.decode_fec(packets[6], FRAME), b.conceal(FRAME))


def test_reading_the_fec_flag_without_opus_packet_has_lbrr_agrees() -> None:
    """The fallback for a libopus older than 1.5 reads the same bit libopus does."""
    lib = libopus.load([libopus.library_path or ""])[0]
    assert lib is not None
    if lib.packet_has_lbrr is None:  # a libopus older than 1.5 (PyAV 14 ships one)
        pytest.skip("the libopus in this PyAV has no opus_packet_has_lbrr to compare with")
    checked = 0
    for channels in (1, 2):
        pcm = tone(440, 0.5, channels=channels)
        for size in (480, 960, 1920, 2880):
            for fec, bitrate in ((1, 24000), (0, 24000), (1, 128000)):
                encoder = OpusEncoder(RATE, channels)
                encoder.bitrate = bitrate
                encoder.inband_fec = fec
                encoder.packet_loss_percent = 25
                for f in frames(pcm, size):
                    packet = encoder.encode(f, size)
                    expected = bool(lib.packet_has_lbrr(packet, len(packet)))
                    assert libopus._has_lbrr_by_parsing(lib, packet) == expected
                    checked += expected
    assert checked > 20  # FEC was there to be found


# ---------------------------------------------------------------------- DTX


def test_dtx_codes_silence_as_tiny_packets() -> None:
    silence = np.zeros((FRAME, 1), np.int16)
    sizes = {}
    for dtx in (False, True):
        encoder = OpusEncoder(RATE, 1)
        encoder.dtx = dtx
        sizes[dtx] = [len(encoder.encode(silence, FRAME)) for _ in range(100)]
        assert encoder.in_dtx is dtx
    assert min(sizes[False]) > 2
    tiny = [s for s in sizes[True][20:] if s <= 2]
    assert len(tiny) >= 70  # a normal packet every 400 ms or so refreshes the noise
    assert sum(sizes[True]) < sum(sizes[False]) / 5


# ---------------------------------------------------------------------- threads


def test_controls_may_change_while_another_thread_encodes() -> None:
    encoder = OpusEncoder(RATE, 2)
    encoder.inband_fec = 1
    pcm = tone(440, 0.6, channels=2)
    failures: list[BaseException] = []

    def encode_all() -> None:
        try:
            for f in frames(pcm):
                encoder.encode(f, FRAME)
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    worker = threading.Thread(target=encode_all)
    worker.start()
    for i in range(200):
        encoder.packet_loss_percent = i % 31
        encoder.dtx = bool(i % 2)
    worker.join(30)
    assert not worker.is_alive() and failures == []
