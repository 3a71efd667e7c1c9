"""End-to-end encryption core (media/frame_crypto.py): vectors from the official SDK, round
trips, H.264 escaping, tampering, server-injected frames, ratchet window, failure tolerance.

``tests/vectors/official_e2ee.json`` holds frames and data packets the official SDK
(livekit 1.2.1) encrypted with known keys, as livekit-py received them through a real
server (written by ``tests/vectors/record_official_e2ee.py``); these tests need no server.
Tests that derive many keys use HKDF: one PBKDF2 derivation costs tens of ms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from livekit.protocol import models

from livekit_py.media import frame_crypto as fc
from livekit_py.media import libopus
from livekit_py.media.frame_crypto import (
    CryptorState,
    FrameDecryptor,
    FrameEncryptor,
    KeyDerivationFunction,
    KeyOptions,
    KeyRing,
    MediaKind,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "official_e2ee.json").read_text()
)
SCENARIOS = {s["name"]: s for s in VECTORS["scenarios"]}
KEY_0 = b"livekit-py e2ee test vectors, key 0"
KEY_1 = b"livekit-py e2ee test vectors, key 1"
FAST = KeyOptions(kdf=KeyDerivationFunction.HKDF)
SALT = fc.DEFAULT_RATCHET_SALT


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def hkdf_ring(raw: bytes = b"key", index: int = 0, **options: Any) -> KeyRing:
    ring = KeyRing(KeyOptions(kdf=KeyDerivationFunction.HKDF, **options))
    ring.set_key(raw, index)
    return ring


class StateLog:
    def __init__(self, cryptor: FrameEncryptor | FrameDecryptor) -> None:
        self.states: list[CryptorState] = []
        cryptor.on_state = self.states.append


def annexb(*nals: bytes, four: bool = True) -> bytes:
    code = b"\x00\x00\x00\x01" if four else b"\x00\x00\x01"
    return b"".join(code + n for n in nals)


SPS = bytes.fromhex("6742c01e95a0a0fd01e11a")
PPS = bytes.fromhex("68ce3c80")
SEI = bytes.fromhex("0605ff") + bytes(range(40))


def h264_frame(rng: np.random.Generator, size: int, *, idr: bool = True) -> bytes:
    body = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    body = body.replace(b"\x00\x00", b"\x00\x07")  # a valid NAL unit has no start code inside
    if idr:
        return annexb(SPS, PPS, bytes([0x65, 0x88]) + body)
    return annexb(bytes([0x41, 0x9A]) + body)


def reference_write_rbsp(data: bytes) -> bytes:
    """libwebrtc's H264::WriteRbsp, byte by byte (the test's independent reference)."""
    out = bytearray()
    zeros = 0
    for byte in data:
        if byte <= 3 and zeros >= 2:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def reference_parse_rbsp(data: bytes) -> bytes:
    """libwebrtc's H264::ParseRbsp, byte by byte."""
    out = bytearray()
    i = 0
    while i < len(data):
        if len(data) - i >= 3 and data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 3:
            out += data[i : i + 2]
            i += 3
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


# -- key derivation ------------------------------------------------------------------------


def test_pbkdf2_is_100000_iterations_of_hmac_sha256_to_128_bits() -> None:
    raw, salt = b"a shared passphrase", b"LKFrameEncryptionKey"
    expected = hashlib.pbkdf2_hmac("sha256", raw, salt, 100_000, 16)
    assert fc.derive_encryption_key(raw, salt, KeyDerivationFunction.PBKDF2) == expected
    assert fc.derive_encryption_key(raw) == expected  # PBKDF2 and the LiveKit salt by default


def hkdf_reference(secret: bytes, salt: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 with info = 128 zero bytes, from hmac (independent reference)."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + bytes(128) + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def test_hkdf_is_sha256_with_128_zero_bytes_of_info() -> None:
    raw, salt = b"secret", b"custom salt"
    assert fc.derive_encryption_key(raw, salt, KeyDerivationFunction.HKDF) == hkdf_reference(
        raw, salt, 16
    )
    assert fc.ratchet_raw_key(raw, salt, KeyDerivationFunction.HKDF) == hkdf_reference(
        raw, salt, 32
    )


def test_hkdf_and_pbkdf2_give_different_keys() -> None:
    assert fc.derive_encryption_key(b"k", SALT, 0) != fc.derive_encryption_key(b"k", SALT, 1)
    assert len(fc.ratchet_raw_key(b"k", SALT, 1)) == 32


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_ratchet_gives_the_official_sdks_ratcheted_key(name: str) -> None:
    scenario = SCENARIOS[name]
    ratcheted = fc.ratchet_raw_key(KEY_0, b64(scenario["salt"]), scenario["kdf"])
    assert ratcheted == b64(scenario["ratcheted_key"])


def test_bad_key_derivation_inputs_are_value_errors() -> None:
    with pytest.raises(ValueError, match="raw key must be bytes"):
        fc.derive_encryption_key("text", SALT, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown key derivation function 7"):
        fc.ratchet_raw_key(b"k", SALT, 7)
    with pytest.raises(ValueError, match="key_ring_size"):
        KeyOptions(key_ring_size=256)
    with pytest.raises(ValueError, match="key_ring_size"):
        KeyOptions(key_ring_size=0)
    with pytest.raises(ValueError, match="ratchet_window_size"):
        KeyOptions(ratchet_window_size=-1)
    assert KeyOptions(kdf=1).kdf is KeyDerivationFunction.HKDF  # type: ignore[arg-type]


# -- the official SDK's frames ----------------------------------------------------------


@dataclass
class Decrypted:
    frame: dict[str, Any]
    data: bytes
    out: bytes | None
    ratcheted_here: bool = False


@dataclass
class ScenarioResult:
    scenario: dict[str, Any]
    ring: KeyRing
    results: list[Decrypted] = field(default_factory=list)
    states: dict[str, list[CryptorState]] = field(default_factory=dict)

    def of(self, kind: str, phase: str) -> list[Decrypted]:
        return [r for r in self.results if r.frame["kind"] == kind and r.frame["phase"] == phase]


@pytest.fixture(scope="module")
def official() -> dict[str, ScenarioResult]:
    """Each scenario's frames, decrypted in order by one receiver knowing KEY_0 and KEY_1.

    The receiver has the keys the publisher set (KEY_0 at 0, KEY_1 at 1), not the one it
    ratcheted to: the first frame after the publisher's ratchet needs ``try_ratchet``.
    """
    done: dict[str, ScenarioResult] = {}
    for name, scenario in SCENARIOS.items():
        options = KeyOptions(ratchet_salt=b64(scenario["salt"]), kdf=scenario["kdf"])
        ring = KeyRing(options)
        ring.set_key(KEY_1, 1)
        ring.set_key(KEY_0, 0)
        trailer = b64(scenario["sif_trailer"])
        result = ScenarioResult(scenario, ring)
        decryptors: dict[str, FrameDecryptor] = {}
        for frame in scenario["frames"]:
            kind = frame["kind"]
            if kind not in decryptors:
                decryptors[kind] = FrameDecryptor(MediaKind(kind), ring, trailer)
                result.states[kind] = StateLog(decryptors[kind]).states
            decryptor = decryptors[kind]
            data = b64(frame["data"])
            out = decryptor.decrypt(data)
            ratcheted_here = False
            if out is None and decryptor.needs_ratchet:
                ratcheted_here = decryptor.try_ratchet()
                out = decryptor.pop_recovered()
            result.results.append(Decrypted(frame, data, out, ratcheted_here))
        done[name] = result
    return done


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_official_frame_decrypts(official: dict[str, ScenarioResult], name: str) -> None:
    result = official[name]
    kinds = {r.frame["kind"] for r in result.results}
    assert kinds == {"opus", result.scenario["video_codec"].lower()}
    for r in result.results:
        if r.frame.get("server_injected"):
            continue
        assert r.out is not None, f"{r.frame['kind']} {r.frame['phase']} frame did not decrypt"
        clear = fc.clear_bytes(MediaKind(r.frame["kind"]), r.data)
        assert r.out[:clear] == r.data[:clear]  # the clear bytes are the frame's own
        trailer_index = (fc.unescape_rbsp(r.data) if r.frame["kind"] == "h264" else r.data)[-1]
        assert trailer_index == r.frame["key_index"]
    # one ratchet, by the first frame after the publisher's (the others use its result)
    assert sum(r.ratcheted_here for r in result.results) == 1
    assert result.ring.export_key(0) == b64(result.scenario["ratcheted_key"])
    assert result.ring.export_key(1) == KEY_1
    assert all(r.frame["phase"] == "ratcheted" for r in result.results if r.ratcheted_here)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_states_are_ok_and_key_ratcheted(
    official: dict[str, ScenarioResult], name: str
) -> None:
    result = official[name]
    video = result.scenario["video_codec"].lower()
    assert result.states[video] == [CryptorState.OK, CryptorState.KEY_RATCHETED, CryptorState.OK]
    assert result.states["opus"] == [CryptorState.OK]  # its frames found the ratcheted key


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_server_injected_frames_pass_as_opus_silence(
    official: dict[str, ScenarioResult], name: str
) -> None:
    injected = [r for r in official[name].results if r.frame.get("server_injected")]
    assert injected, "the recording has no server-injected frame"
    trailer = b64(official[name].scenario["sif_trailer"])
    for r in injected:
        assert r.data == fc.OPUS_SILENCE_FRAME + trailer
        assert r.out == fc.OPUS_SILENCE_FRAME


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_video_decodes_to_the_picture(
    official: dict[str, ScenarioResult], name: str
) -> None:
    result = official[name]
    codec = result.scenario["video_codec"].lower()
    frames = result.of(codec, "start")
    assert len(frames) >= 3
    first = frames[0].out
    assert first is not None
    if codec == "vp8":
        assert first[0] & 1 == 0  # a key frame first
    else:
        assert [nal[0] & 0x1F for nal in fc.split_annexb(first)] == [7, 8, 5]
    decoder = av.CodecContext.create("libvpx" if codec == "vp8" else "h264", "r")
    pictures = []
    for r in frames:
        assert r.out is not None
        pictures += decoder.decode(av.Packet(r.out))
    assert len(pictures) == len(frames)
    picture = VECTORS["picture"]
    for frame in pictures:
        assert (frame.width, frame.height) == (picture["width"], picture["height"])
        rgb = frame.to_ndarray(format="rgb24").astype(int)
        h, w = rgb.shape[:2]
        left = rgb[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].reshape(-1, 3).mean(axis=0)
        right = rgb[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].reshape(-1, 3).mean(axis=0)
        assert np.abs(left - picture["left"]).max() < 25, f"left {left}"
        assert np.abs(right - picture["right"]).max() < 25, f"right {right}"


@pytest.mark.skipif(not libopus.available, reason="no libopus")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_audio_decodes_to_the_tone(official: dict[str, ScenarioResult], name: str) -> None:
    decoder = libopus.OpusDecoder(48000, 1)
    pcm = []
    for r in official[name].of("opus", "start"):
        assert r.out is not None
        pcm.append(decoder.decode(r.out, 960).reshape(-1))
    samples = np.concatenate(pcm)[-9600:].astype(np.float64)  # the last 200 ms
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    assert np.argmax(spectrum) * 48000 / len(samples) == pytest.approx(VECTORS["tone_hz"], abs=10)
    assert samples.std() > 3000


def ivs_of(frames: list[Decrypted]) -> Iterator[tuple[dict[str, Any], bytes]]:
    for r in frames:
        tail = fc.unescape_rbsp(r.data) if r.frame["kind"] == "h264" else r.data
        yield r.frame, tail[-14:-2]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_iv_is_ssrc_timestamp_and_timestamp_minus_a_frame_count(
    official: dict[str, ScenarioResult], name: str
) -> None:
    result = official[name]
    for kind in ("opus", result.scenario["video_codec"].lower()):
        ivs = list(ivs_of(result.of(kind, "start")))
        ssrcs = {iv[:4] for _, iv in ivs}
        assert len(ssrcs) == 1  # the publisher's SSRC (the server forwards another)
        counts = []
        for frame, iv in ivs:
            _, timestamp, third = struct.unpack(">III", iv)
            assert timestamp == frame["rtp_timestamp"]
            counts.append((timestamp - third) & 0xFFFFFFFF)
        assert counts == list(range(counts[0], counts[0] + len(counts)))  # one per frame


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_data_packets_decrypt(name: str) -> None:
    scenario = SCENARIOS[name]
    options = KeyOptions(ratchet_salt=b64(scenario["salt"]), kdf=scenario["kdf"])
    ring = KeyRing(options)
    ring.set_key(KEY_1, 1)
    ring.set_key(KEY_0, 0)
    kinds = []
    for packet in scenario["data_packets"]:
        assert packet["encryption_type"] == 1  # GCM
        iv, value = b64(packet["iv"]), b64(packet["encrypted_value"])
        assert len(iv) == 12
        if packet["ratchets"]:
            with pytest.raises(ValueError, match="does not decrypt"):
                fc.decrypt_data(iv, value, ring, packet["key_index"])
        plain = fc.decrypt_data(iv, value, ring, packet["key_index"], ratchet=True)
        payload = models.EncryptedPacketPayload()
        payload.ParseFromString(plain)
        kind = payload.WhichOneof("value")
        kinds.append(kind)
        if kind == "user":
            assert payload.user.payload == f"{packet['phase']} data".encode()
            assert payload.user.topic == "vectors"
    assert kinds.count("user") == 3
    assert {"stream_header", "stream_chunk", "stream_trailer"} <= set(kinds)
    assert ring.export_key(0) == b64(scenario["ratcheted_key"])


# -- our frames ----------------------------------------------------------------------------


def frames_of(kind: MediaKind, rng: np.random.Generator) -> list[bytes]:
    if kind is MediaKind.OPUS:
        return [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (1, 2, 3, 80, 400)]
    if kind is MediaKind.VP8:
        key = bytes([0x10]) + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
        delta = bytes([0x31]) + rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
        return [key, delta, bytes([0x01, 0x02, 0x03]), bytes(range(10))]
    return [h264_frame(rng, 5000), h264_frame(rng, 200, idr=False), annexb(SPS, PPS)]


@pytest.mark.parametrize("kind", list(MediaKind))
def test_round_trip(kind: MediaKind) -> None:
    rng = np.random.default_rng(1)
    ring = hkdf_ring()
    ring.set_key(b"second", 3)
    encryptor = FrameEncryptor(kind, ring, key_index=3)
    decryptor = FrameDecryptor(kind, ring, b"sif-trailer")
    for ts, frame in enumerate(frames_of(kind, rng)):
        sealed = encryptor.encrypt(frame, 1000 + ts * 960, 0x1234)
        assert sealed is not None
        clear = fc.clear_bytes(kind, frame)
        assert sealed[:clear] == frame[:clear]
        tail = sealed[clear:]
        if kind is MediaKind.H264:
            tail = fc.unescape_rbsp(tail)
        else:
            assert len(sealed) == len(frame) + 16 + 12 + 2
        assert tail[-2:] == bytes([12, 3])
        assert decryptor.decrypt(sealed) == frame
    assert encryptor.state is CryptorState.OK
    assert decryptor.state is CryptorState.OK


def test_clear_bytes_per_codec() -> None:
    assert fc.clear_bytes(MediaKind.OPUS, b"\xfc\x01\x02") == 1
    assert fc.clear_bytes(MediaKind.VP8, b"\x10" + bytes(20)) == 10  # P bit 0: key frame
    assert fc.clear_bytes(MediaKind.VP8, b"\x11" + bytes(20)) == 3
    idr = annexb(SPS, PPS, SEI, bytes([0x65, 0x88, 0x84, 0x21]))
    assert fc.clear_bytes(MediaKind.H264, idr) == idr.index(b"\x65\x88") + 2
    short = annexb(SPS, bytes([0x41, 0x9A, 0x02]), four=False)
    assert fc.clear_bytes(MediaKind.H264, short) == short.index(b"\x41\x9a") + 2
    assert fc.clear_bytes(MediaKind.H264, annexb(SPS, PPS)) == 0  # no slice: all encrypted
    # a start code in the last three bytes has no NAL unit (native FindNaluIndices)
    assert fc.clear_bytes(MediaKind.H264, SPS + b"\x00\x00\x01") == 0


def test_h264_tail_is_escaped_and_has_no_start_code() -> None:
    ring = hkdf_ring()
    encryptor = FrameEncryptor(MediaKind.H264, ring)
    decryptor = FrameDecryptor(MediaKind.H264, ring)
    frame = annexb(SPS, PPS, bytes([0x65, 0x88]) + bytes(range(1, 200)))
    # SSRC 0 and timestamp 0: the IV starts with eight zero bytes, which must be escaped
    sealed = encryptor.encrypt(frame, 0, 0)
    assert sealed is not None
    clear = fc.clear_bytes(MediaKind.H264, frame)
    tail = sealed[clear:]
    assert b"\x00\x00\x03\x00\x00\x03" in tail
    for code in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert code not in tail
    # what a packetizer splits and a depacketizer joins again is the same frame
    nals = fc.split_annexb(sealed)
    assert [n[0] & 0x1F for n in nals] == [7, 8, 5]
    assert fc.join_annexb(nals) == sealed
    assert decryptor.decrypt(sealed) == frame


def test_escaping_matches_libwebrtcs_write_rbsp() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        data = rng.choice(np.array([0, 0, 0, 1, 2, 3, 4, 255], dtype=np.uint8), 64).tobytes()
        escaped = fc.escape_rbsp(data)
        assert escaped == reference_write_rbsp(data)
        assert fc.unescape_rbsp(escaped) == data
        assert fc.unescape_rbsp(data) == reference_parse_rbsp(data)


@pytest.mark.parametrize(
    ("data", "escaped"),
    [
        ("0000000000", "00000300000300"),
        ("000001", "00000301"),
        ("000003", "00000303"),
        ("000004", "000004"),
        ("0000", "0000"),
        ("00000000", "0000030000"),
        ("000100000002", "00010000030002"),
    ],
)
def test_escaping_edge_cases(data: str, escaped: str) -> None:
    assert fc.escape_rbsp(bytes.fromhex(data)).hex() == escaped
    assert fc.unescape_rbsp(bytes.fromhex(escaped)).hex() == data


def test_split_and_join_annexb() -> None:
    frame = annexb(SPS, PPS, bytes([0x65, 1, 2]))
    assert fc.split_annexb(frame) == [SPS, PPS, bytes([0x65, 1, 2])]
    assert fc.split_annexb(annexb(SPS, PPS, four=False)) == [SPS, PPS]
    assert fc.join_annexb([SPS, PPS]) == annexb(SPS, PPS)
    assert fc.split_annexb(b"") == []


def test_empty_and_disabled_frames_pass_through() -> None:
    ring = hkdf_ring()
    encryptor = FrameEncryptor(MediaKind.VP8, ring)
    decryptor = FrameDecryptor(MediaKind.VP8, ring)
    assert encryptor.encrypt(b"", 0, 1) == b""
    assert decryptor.decrypt(b"") == b""
    encryptor.enabled = False
    decryptor.enabled = False
    frame = b"\x10" + bytes(40)
    assert encryptor.encrypt(frame, 0, 1) == frame
    assert decryptor.decrypt(frame) == frame
    assert encryptor.state is CryptorState.NEW and decryptor.state is CryptorState.NEW


def test_the_iv_is_unique_per_frame_and_laid_out_as_native() -> None:
    ring = hkdf_ring()
    encryptor = FrameEncryptor(MediaKind.OPUS, ring)
    ivs = []
    for n in range(50):
        sealed = encryptor.encrypt(b"\xfc" + bytes(20), 7 * (n // 2), 0xABCDEF01)
        assert sealed is not None
        ivs.append(sealed[-14:-2])
    assert len(set(ivs)) == 50  # even for frames with the same timestamp
    counts = []
    for n, iv in enumerate(ivs):
        ssrc, timestamp, third = struct.unpack(">III", iv)
        assert (ssrc, timestamp) == (0xABCDEF01, 7 * (n // 2))
        counts.append((timestamp - third) & 0xFFFFFFFF)
    assert counts == list(range(counts[0], counts[0] + 50))


# -- rejections ----------------------------------------------------------------------------


def sealed_vp8(ring: KeyRing, key_index: int = 0) -> tuple[bytes, bytes]:
    frame = b"\x10" + bytes(range(1, 120))
    sealed = FrameEncryptor(MediaKind.VP8, ring, key_index).encrypt(frame, 90, 5)
    assert sealed is not None
    return frame, sealed


@pytest.mark.parametrize("position", [0, 5, 9, 10, 60, -17, -15, -3])
def test_a_tampered_frame_is_dropped(position: int) -> None:
    ring = hkdf_ring(ratchet_window_size=0)
    _, sealed = sealed_vp8(ring)
    tampered = bytearray(sealed)
    tampered[position] ^= 0x40
    decryptor = FrameDecryptor(MediaKind.VP8, ring)
    assert decryptor.decrypt(bytes(tampered)) is None
    assert not decryptor.needs_ratchet


def test_a_wrong_iv_length_or_a_short_frame_is_decryption_failed_at_once() -> None:
    ring = hkdf_ring()  # failure tolerance -1: this is not a key failure
    _, sealed = sealed_vp8(ring)
    decryptor = FrameDecryptor(MediaKind.VP8, ring)
    log = StateLog(decryptor)
    assert decryptor.decrypt(sealed[:-2] + bytes([16, 0])) is None
    assert decryptor.decrypt(sealed[:20]) is None
    assert decryptor.decrypt(b"\x10\x00") is None  # shorter than its clear bytes
    assert log.states == [CryptorState.DECRYPTION_FAILED]
    assert decryptor.decrypt(sealed) is not None
    assert log.states == [CryptorState.DECRYPTION_FAILED, CryptorState.OK]


def test_a_key_index_outside_the_ring_or_without_a_key_is_missing_key() -> None:
    ring = KeyRing(KeyOptions(kdf=KeyDerivationFunction.HKDF, key_ring_size=4))
    ring.set_key(b"k0", 0)
    ring.set_key(b"k2", 2)
    _, sealed = sealed_vp8(ring, 2)
    decryptor = FrameDecryptor(MediaKind.VP8, ring)
    log = StateLog(decryptor)
    assert decryptor.decrypt(sealed[:-1] + bytes([4])) is None  # index 4 >= ring size 4
    assert decryptor.decrypt(sealed[:-1] + bytes([1])) is None  # no key at 1
    assert log.states == [CryptorState.MISSING_KEY]
    assert decryptor.decrypt(sealed) is not None
    assert log.states == [CryptorState.MISSING_KEY, CryptorState.OK]


def test_the_encryptor_drops_frames_it_cannot_encrypt() -> None:
    ring = KeyRing(FAST)
    encryptor = FrameEncryptor(MediaKind.VP8, ring)
    log = StateLog(encryptor)
    assert encryptor.encrypt(b"\x10" + bytes(30), 0, 1) is None  # no key yet
    ring.set_key(b"k", 0)
    assert encryptor.encrypt(b"\x10\x00\x00", 0, 1) is None  # a key frame under 10 bytes
    assert encryptor.encrypt(b"\x11\x00\x00", 0, 1) is not None
    assert log.states == [
        CryptorState.MISSING_KEY,
        CryptorState.ENCRYPTION_FAILED,
        CryptorState.OK,
    ]
    with pytest.raises(ValueError, match="outside the key ring"):
        encryptor.key_index = 16
    with pytest.raises(ValueError, match="kind must be a MediaKind"):
        FrameEncryptor("vp8", ring)  # type: ignore[arg-type]


# -- server-injected frames ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "blank"),
    [
        (MediaKind.OPUS, fc.OPUS_SILENCE_FRAME),
        (MediaKind.VP8, fc.VP8_BLANK_KEY_FRAME),
        (MediaKind.H264, annexb(fc.H264_BLANK_SPS, fc.H264_BLANK_PPS, fc.H264_BLANK_IDR)),
        (MediaKind.H264, annexb(fc.H264_BLANK_IDR)),
    ],
)
def test_a_known_blank_frame_with_the_sif_trailer_passes_without_it(
    kind: MediaKind, blank: bytes
) -> None:
    trailer = b"per-room-secret-0123456789"
    decryptor = FrameDecryptor(kind, hkdf_ring(), trailer)
    assert decryptor.decrypt(blank + trailer) == blank
    assert decryptor.state is CryptorState.NEW and not decryptor.needs_ratchet


def test_an_unknown_frame_with_the_sif_trailer_is_dropped_undecrypted() -> None:
    trailer = b"per-room-secret"
    ring = hkdf_ring(failure_tolerance=0)
    _, sealed = sealed_vp8(ring)
    decryptor = FrameDecryptor(MediaKind.VP8, ring, trailer)
    assert decryptor.decrypt(sealed + trailer) is None  # never decrypted
    assert decryptor.decrypt(b"\x10anything" + trailer) is None
    assert decryptor.state is CryptorState.NEW and not decryptor.needs_ratchet
    decryptor.sif_trailer = b""
    assert decryptor.decrypt(fc.VP8_BLANK_KEY_FRAME + trailer) is None  # now a bad frame


# -- ratchet -------------------------------------------------------------------------------


def publisher_ratcheted(times: int, **options: Any) -> tuple[KeyRing, bytes, bytes, bytes]:
    """A publisher ring ratcheted ``times`` from b"key"; two frames it encrypted after."""
    ring = hkdf_ring(**options)
    for _ in range(times):
        ring.ratchet(0)
    encryptor = FrameEncryptor(MediaKind.OPUS, ring)
    first, second = b"\xfc" + b"first frame", b"\xfc" + b"second frame"
    a, b = encryptor.encrypt(first, 960, 9), encryptor.encrypt(second, 1920, 9)
    assert a is not None and b is not None
    return ring, first, a, b


@pytest.mark.parametrize("times", [1, 2, 3])
def test_a_receiver_follows_up_to_window_ratchets(times: int) -> None:
    publisher, first, sealed, later = publisher_ratcheted(times)
    receiver = hkdf_ring(ratchet_window_size=3)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    log = StateLog(decryptor)
    version = receiver.version
    assert decryptor.decrypt(sealed) is None
    assert decryptor.needs_ratchet
    assert decryptor.try_ratchet()
    assert not decryptor.needs_ratchet
    assert decryptor.pop_recovered() == first
    assert decryptor.pop_recovered() is None
    assert receiver.export_key(0) == publisher.export_key(0)
    assert receiver.version > version
    assert decryptor.decrypt(later) == b"\xfc" + b"second frame"
    assert log.states == [CryptorState.KEY_RATCHETED, CryptorState.OK]


def test_a_receiver_does_not_follow_more_ratchets_than_its_window() -> None:
    _, _, sealed, later = publisher_ratcheted(4)
    receiver = hkdf_ring(ratchet_window_size=3, failure_tolerance=1)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    log = StateLog(decryptor)
    assert decryptor.decrypt(sealed) is None and decryptor.needs_ratchet
    assert decryptor.decrypt(later) is None  # while the ratchet is pending: not counted
    assert not decryptor.try_ratchet()
    assert receiver.export_key(0) == b"key"  # the key stays
    assert log.states == []  # one failure (the ratcheted frame), tolerance 1
    # the window failed for this key: later failures count at once, no new ratchet
    assert decryptor.decrypt(later) is None
    assert not decryptor.needs_ratchet
    assert log.states == [CryptorState.DECRYPTION_FAILED]


def test_a_new_key_allows_a_new_ratchet_window() -> None:
    _, _, sealed, _ = publisher_ratcheted(2)
    receiver = hkdf_ring(b"wrong", ratchet_window_size=2)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    assert decryptor.decrypt(sealed) is None
    assert not decryptor.try_ratchet()
    assert decryptor.decrypt(sealed) is None and not decryptor.needs_ratchet
    receiver.set_key(b"key", 0)
    assert decryptor.decrypt(sealed) is None and decryptor.needs_ratchet
    assert decryptor.try_ratchet()


def test_a_key_set_while_a_ratchet_is_pending_wins() -> None:
    publisher, _, sealed, later = publisher_ratcheted(1)
    receiver = hkdf_ring(ratchet_window_size=2)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    assert decryptor.decrypt(sealed) is None and decryptor.needs_ratchet
    new_raw = publisher.export_key(0)
    assert new_raw is not None
    receiver.set_key(new_raw, 0)
    assert not decryptor.try_ratchet()  # nothing to ratchet: the new key is there
    assert receiver.export_key(0) == new_raw
    assert decryptor.decrypt(later) is not None


def test_no_window_no_ratchet() -> None:
    _, _, sealed, _ = publisher_ratcheted(1)
    decryptor = FrameDecryptor(MediaKind.OPUS, hkdf_ring(ratchet_window_size=0))
    assert decryptor.decrypt(sealed) is None
    assert not decryptor.needs_ratchet
    assert not decryptor.try_ratchet()


# -- failure tolerance ---------------------------------------------------------------------


def wrong_and_right(tolerance: int) -> tuple[KeyRing, FrameDecryptor, bytes, bytes]:
    """A receiver with the wrong key; a frame it cannot open and one it can once it has the key."""
    publisher = hkdf_ring(b"right")
    encryptor = FrameEncryptor(MediaKind.OPUS, publisher)
    wrong, right = encryptor.encrypt(b"\xfc1234", 0, 1), encryptor.encrypt(b"\xfc5678", 960, 1)
    assert wrong is not None and right is not None
    receiver = hkdf_ring(b"wrong", ratchet_window_size=0, failure_tolerance=tolerance)
    return receiver, FrameDecryptor(MediaKind.OPUS, receiver), wrong, right


def test_failure_tolerance_minus_one_never_reports_decryption_failed() -> None:
    _, decryptor, wrong, _ = wrong_and_right(-1)
    log = StateLog(decryptor)
    for _ in range(100):
        assert decryptor.decrypt(wrong) is None
    assert log.states == []


def test_failure_tolerance_n_reports_once_after_n_failures_until_a_new_key() -> None:
    receiver, decryptor, wrong, right = wrong_and_right(3)
    log = StateLog(decryptor)
    for _ in range(3):
        assert decryptor.decrypt(wrong) is None
    assert log.states == []
    assert decryptor.decrypt(wrong) is None
    assert log.states == [CryptorState.DECRYPTION_FAILED]
    for _ in range(10):
        decryptor.decrypt(wrong)
    assert log.states == [CryptorState.DECRYPTION_FAILED]  # once
    assert not receiver.has_valid_key
    receiver.set_key(b"right", 0)
    assert decryptor.decrypt(right) == b"\xfc5678"
    assert log.states == [CryptorState.DECRYPTION_FAILED, CryptorState.OK]


def test_a_track_in_decryption_failed_drops_even_good_frames_until_a_key_is_set() -> None:
    publisher = hkdf_ring(b"right")
    encryptor = FrameEncryptor(MediaKind.OPUS, publisher)
    good = encryptor.encrypt(b"\xfcgood", 0, 1)
    receiver = hkdf_ring(b"right", ratchet_window_size=0, failure_tolerance=0)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    assert decryptor.decrypt(b"\xfc" + bytes(40) + bytes([12, 0])) is None
    assert decryptor.state is CryptorState.DECRYPTION_FAILED
    assert decryptor.decrypt(good) is None  # native: no attempt while the key is invalid
    receiver.ratchet(0)
    receiver.set_key(b"right", 0)
    assert decryptor.decrypt(good) == b"\xfcgood"


def test_successes_do_not_reset_the_failure_count() -> None:
    receiver, decryptor, wrong, _ = wrong_and_right(3)
    good = FrameEncryptor(MediaKind.OPUS, receiver).encrypt(b"\xfcok", 0, 2)
    for _ in range(2):
        decryptor.decrypt(wrong)
    assert decryptor.decrypt(good) == b"\xfcok"
    decryptor.decrypt(wrong)
    assert decryptor.state is CryptorState.OK
    decryptor.decrypt(wrong)  # the fourth failure since the key was set
    assert decryptor.state is CryptorState.DECRYPTION_FAILED


def test_each_track_of_a_participant_reports_once() -> None:
    receiver, first, wrong, _ = wrong_and_right(1)
    second = FrameDecryptor(MediaKind.OPUS, receiver)
    logs = StateLog(first), StateLog(second)
    for _ in range(5):
        first.decrypt(wrong)
        second.decrypt(wrong)
    assert logs[0].states == logs[1].states == [CryptorState.DECRYPTION_FAILED]


def test_a_failed_ratchet_window_counts_one_failure() -> None:
    _, _, sealed, _ = publisher_ratcheted(3)
    receiver = hkdf_ring(ratchet_window_size=2, failure_tolerance=0)
    decryptor = FrameDecryptor(MediaKind.OPUS, receiver)
    assert decryptor.decrypt(sealed) is None
    assert decryptor.state is CryptorState.NEW  # pending, not counted
    assert not decryptor.try_ratchet()
    assert decryptor.state is CryptorState.DECRYPTION_FAILED


# -- key ring ------------------------------------------------------------------------------


def test_key_ring_set_export_ratchet() -> None:
    ring = KeyRing(FAST)
    assert ring.export_key(0) is None and ring.key(0) is None
    assert ring.ratchet(3) == b""  # nothing to ratchet, as the official SDK
    version = ring.version
    ring.set_key(b"k", 2)
    assert ring.version == version + 1
    assert ring.export_key(2) == b"k" and ring.current_index == 2
    assert ring.export_key(-1) == b"k"  # -1: the current index
    assert ring.key(2) is not None
    new = ring.ratchet(2)
    assert new == fc.ratchet_raw_key(b"k", SALT, KeyDerivationFunction.HKDF)
    assert ring.export_key(2) == new and ring.version == version + 2
    ring.set_key(b"wraps", 17)  # native: index % size
    assert ring.export_key(1) == b"wraps" and ring.current_index == 1
    with pytest.raises(ValueError, match="outside the key ring"):
        ring.export_key(16)
    with pytest.raises(ValueError, match="must not be empty"):
        ring.set_key(b"", 0)
    with pytest.raises(ValueError, match="key index must be an int"):
        ring.set_key(b"k", "0")  # type: ignore[arg-type]


def test_a_cloned_ring_ratchets_on_its_own() -> None:
    shared = hkdf_ring(b"shared")
    copy = shared.clone()
    assert copy.export_key(0) == b"shared"
    copy.ratchet(0)
    assert shared.export_key(0) == b"shared"
    assert copy.export_key(0) != b"shared"


def test_pbkdf2_and_hkdf_rings_do_not_read_each_other() -> None:
    pbkdf2, hkdf = KeyRing(), hkdf_ring(b"same")
    pbkdf2.set_key(b"same", 0)
    _, sealed = sealed_vp8(hkdf)
    decryptor = FrameDecryptor(MediaKind.VP8, pbkdf2)
    assert decryptor.decrypt(sealed) is None


# -- data packets --------------------------------------------------------------------------


def test_data_round_trip_and_rejections() -> None:
    ring = hkdf_ring()
    iv, sealed = fc.encrypt_data(b"payload", ring, 0)
    assert len(iv) == 12 and len(sealed) == len(b"payload") + 16
    assert fc.decrypt_data(iv, sealed, ring, 0) == b"payload"
    assert fc.encrypt_data(b"payload", ring, 0)[0] != iv
    with pytest.raises(ValueError, match="does not decrypt"):
        fc.decrypt_data(iv, sealed[:-1] + bytes([sealed[-1] ^ 1]), ring, 0)
    with pytest.raises(ValueError, match="does not decrypt"):
        fc.decrypt_data(iv, sealed, hkdf_ring(b"other"), 0)
    with pytest.raises(ValueError, match="no key at index 1"):
        fc.decrypt_data(iv, sealed, ring, 1)
    with pytest.raises(ValueError, match="outside the key ring"):
        fc.encrypt_data(b"x", ring, 16)
    with pytest.raises(ValueError, match="IV"):
        fc.decrypt_data(b"", sealed, ring, 0)


def test_data_decryption_can_follow_a_ratchet() -> None:
    publisher = hkdf_ring()
    publisher.ratchet(0)
    iv, sealed = fc.encrypt_data(b"after the ratchet", publisher, 0)
    receiver = hkdf_ring(ratchet_window_size=2)
    with pytest.raises(ValueError):
        fc.decrypt_data(iv, sealed, receiver, 0)
    assert fc.decrypt_data(iv, sealed, receiver, 0, ratchet=True) == b"after the ratchet"
    assert receiver.export_key(0) == publisher.export_key(0)


def test_media_kind_for_mime_types() -> None:
    assert fc.media_kind_for("audio/opus") is MediaKind.OPUS
    assert fc.media_kind_for("video/VP8") is MediaKind.VP8
    assert fc.media_kind_for("video/H264") is MediaKind.H264
    assert fc.media_kind_for("video/AV1") is None
