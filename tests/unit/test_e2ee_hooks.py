"""The frame cryptors on our media path: encrypted by our encoders, decrypted before decoding."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.h264 import H264Decoder, h264_depayload
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from livekit_py.media import libopus
from livekit_py.media.frame_crypto import (
    CryptorState,
    FrameDecryptor,
    FrameEncryptor,
    KeyDerivationFunction,
    KeyOptions,
    KeyRing,
    MediaKind,
    clear_bytes,
)
from livekit_py.types import VideoCodec
from livekit_py.webrtc.aiortc_adapter import EncodedFrame, installed_encoder
from livekit_py.webrtc.e2ee_hooks import ReceiveDecryption, SendEncryption, encrypt_sender
from livekit_py.webrtc.encoders import (
    AudioEncoderConfig,
    VideoEncoderConfig,
    configure_sender,
    sent_codec,
    set_frame_transform,
)
from livekit_py.webrtc.frame_assembler import CodecKeyframeTest
from tests.unit.fake_clock import FakeClock

FAST = KeyOptions(kdf=KeyDerivationFunction.HKDF)  # the same frames, without PBKDF2's cost


def _ring(key: bytes = b"the shared secret") -> KeyRing:
    ring = KeyRing(FAST)
    ring.set_key(key, 0)
    return ring


def _picture(pts: int, width: int = 96, height: int = 64) -> av.VideoFrame:
    x = np.arange(width)[None, :] * 2 + pts // 3000
    y = np.arange(height)[:, None] * 3
    grey = ((x + y) % 256).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, Fraction(1, 90000)
    return frame


def _tone(pts: int) -> av.AudioFrame:
    t = (np.arange(960) + pts) / 48000
    samples = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = 48000, pts, Fraction(1, 48000)
    return frame


async def _sender(
    config: AudioEncoderConfig | VideoEncoderConfig,
) -> tuple[RTCPeerConnection, object]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(config.kind, direction="sendonly")
    configure_sender(transceiver, config)
    return pc, transceiver.sender


@pytest.mark.parametrize("codec", [VideoCodec.VP8, VideoCodec.H264], ids=["VP8", "H264"])
async def test_our_encoder_sends_frames_the_frame_decryptor_opens_and_the_decoder_decodes(
    codec: int,
) -> None:
    pc, sender = await _sender(VideoEncoderConfig(codec=codec, max_bitrate=500_000))
    try:
        ring = _ring()
        encryptor = encrypt_sender(sender, ring)  # type: ignore[arg-type]
        kind = MediaKind.VP8 if codec == VideoCodec.VP8 else MediaKind.H264
        assert encryptor.kind is kind
        decryptor = FrameDecryptor(kind, ring.clone())
        encoder = installed_encoder(sender)  # type: ignore[arg-type]
        assert encoder is not None
        depayload = vp8_depayload if codec == VideoCodec.VP8 else h264_depayload
        decoder = Vp8Decoder() if codec == VideoCodec.VP8 else H264Decoder()
        decoded = 0
        for n in range(5):
            payloads, timestamp = encoder.encode(_picture(n * 3000), force_keyframe=n == 0)
            assert payloads
            received = b"".join(depayload(p) for p in payloads)
            plain = decryptor.decrypt(received)
            assert plain is not None, f"frame {n} did not decrypt"
            if codec == VideoCodec.H264:  # no start code in the escaped, encrypted tail
                assert received.find(b"\x00\x00\x01", clear_bytes(kind, received)) == -1
            frames = decoder.decode(JitterFrame(plain, timestamp))
            decoded += len(frames)
            for frame in frames:
                assert (frame.width, frame.height) == (96, 64)
            # undecrypted, the same frame is not a picture the decoder makes sense of
            assert received != plain
        assert decoded >= 4
        assert encryptor.state is CryptorState.OK and decryptor.state is CryptorState.OK
    finally:
        await pc.close()


async def test_our_opus_packets_decrypt_to_what_libopus_decodes() -> None:
    if not libopus.available:
        pytest.skip(libopus.reason)
    pc, sender = await _sender(AudioEncoderConfig(dtx=False))
    try:
        ring = _ring()
        encryptor = encrypt_sender(sender, ring)  # type: ignore[arg-type]
        assert encryptor.kind is MediaKind.OPUS
        decryptor = FrameDecryptor(MediaKind.OPUS, ring)
        encoder = installed_encoder(sender)  # type: ignore[arg-type]
        assert encoder is not None
        opus = libopus.OpusDecoder(48000, 2)
        pcm = []
        for n in range(10):
            payloads, _ = encoder.encode(_tone(n * 960))
            for payload in payloads:
                plain = decryptor.decrypt(payload)
                assert plain is not None and plain != payload
                assert plain[0] == payload[0]  # the TOC byte stays in clear
                pcm.append(opus.decode(plain))
        samples = np.concatenate(pcm)[:, 0].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(samples[2400:]))
        peak = np.fft.rfftfreq(len(samples) - 2400, 1 / 48000)[int(np.argmax(spectrum))]
        assert abs(peak - 440) < 10
        opus.close()
    finally:
        await pc.close()


async def test_without_a_key_nothing_is_sent() -> None:
    pc, sender = await _sender(VideoEncoderConfig(codec=VideoCodec.VP8, max_bitrate=500_000))
    try:
        encryptor = encrypt_sender(sender, KeyRing(FAST))  # type: ignore[arg-type]
        encoder = installed_encoder(sender)  # type: ignore[arg-type]
        assert encoder is not None
        assert encoder.encode(_picture(0), True)[0] == []
        assert encryptor.state is CryptorState.MISSING_KEY
        # without encryption the same encoder sends again
        set_frame_transform(sender, None)  # type: ignore[arg-type]
        assert encoder.encode(_picture(3000), True)[0]
    finally:
        await pc.close()


async def test_senders_without_our_encoder_are_refused() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sender = pc.addTransceiver("video").sender
        assert sent_codec(sender) is None
        with pytest.raises(ValueError, match="configure_sender"):
            set_frame_transform(sender, None)
        with pytest.raises(ValueError, match="cannot be encrypted"):
            encrypt_sender(sender, _ring())
    finally:
        await pc.close()


def test_each_send_encryption_has_its_own_ssrc_for_the_iv() -> None:
    ring = _ring()
    a = SendEncryption(FrameEncryptor(MediaKind.OPUS, ring))
    b = SendEncryption(FrameEncryptor(MediaKind.OPUS, ring))
    assert a.ssrc != b.ssrc
    frame_a, frame_b = a(b"\xf8" + bytes(40), 960), b(b"\xf8" + bytes(40), 960)
    assert frame_a is not None and frame_b is not None
    assert frame_a[-14:-2] != frame_b[-14:-2]  # the IVs differ


# ---------------------------------------------------------------------- receiving


def _vp8(key: bool, size: int = 200, seed: int = 0) -> bytes:
    """A VP8-looking frame: the frame tag's key bit and, for a key frame, the start code."""
    body = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    if key:
        return b"\x10\x02\x00\x9d\x01\x2a" + body
    return b"\x31\x02\x00" + body


VP8_PT = 96
KEYFRAMES = CodecKeyframeTest({VP8_PT: "video/VP8"})


def _frames(*datas: bytes) -> list[EncodedFrame]:
    return [EncodedFrame(d, 3000 * i, VP8_PT) for i, d in enumerate(datas)]


def test_frames_are_dropped_until_the_m_line_is_bound() -> None:
    decryption = ReceiveDecryption("audio")
    assert decryption.decrypt(b"\xf8abc") is None and not decryption.bound
    decryption.bind(None)  # a track published in clear
    assert decryption.decrypt(b"\xf8abc") == b"\xf8abc"
    ring = _ring()
    decryptor = FrameDecryptor(MediaKind.OPUS, ring)
    decryption.bind(decryptor)
    sealed = FrameEncryptor(MediaKind.OPUS, ring).encrypt(b"\xf8hello", 0, 1)
    assert sealed is not None
    assert decryption.decrypt(sealed) == b"\xf8hello"
    decryption.unbind()
    assert decryption.decrypt(sealed) is None
    assert (decryption.frames_decrypted, decryption.frames_dropped) == (2, 2)


def test_a_failure_reports_a_possible_ratchet() -> None:
    decryption = ReceiveDecryption("audio")
    ratchets: list[FrameDecryptor] = []
    decryption.on_failure = ratchets.append
    decryptor = FrameDecryptor(MediaKind.OPUS, _ring(b"ours"))
    decryption.bind(decryptor)
    sealed = FrameEncryptor(MediaKind.OPUS, _ring(b"theirs")).encrypt(b"\xf8hello", 0, 1)
    assert sealed is not None
    assert decryption.decrypt(sealed) is None
    assert ratchets == [decryptor] and decryptor.needs_ratchet


def test_after_a_failure_video_waits_for_a_key_frame_and_asks_for_one() -> None:
    clock = FakeClock()
    decryption = ReceiveDecryption("video", keyframe_test=KEYFRAMES, clock=clock)
    ring = _ring()
    decryption.bind(FrameDecryptor(MediaKind.VP8, ring.clone()))
    good = FrameEncryptor(MediaKind.VP8, ring)
    bad = FrameEncryptor(MediaKind.VP8, _ring(b"another key"))

    def sealed(encryptor: FrameEncryptor, key: bool, seed: int) -> bytes:
        frame = encryptor.encrypt(_vp8(key, seed=seed), 3000 * seed, 7)
        assert frame is not None
        return frame

    pli, out = decryption.filter_frames(_frames(sealed(good, True, 1), sealed(good, False, 2)))
    assert not pli and [f.data for f in out] == [_vp8(True, seed=1), _vp8(False, seed=2)]
    # a frame that does not decrypt: the next delta frames are held back, a PLI asked once
    pli, out = decryption.filter_frames(_frames(sealed(bad, False, 3)))
    assert (pli, out) == (False, [])  # nothing decrypts yet: no PLI
    pli, out = decryption.filter_frames(_frames(sealed(good, False, 4), sealed(good, False, 5)))
    assert pli and out == []
    clock._now += 0.1
    assert decryption.filter_frames(_frames(sealed(good, False, 6))) == (False, [])
    clock._now += 0.5
    pli, out = decryption.filter_frames(_frames(sealed(good, False, 7)))
    assert pli and out == []  # asked again after pli_interval
    pli, out = decryption.filter_frames(_frames(sealed(good, True, 8), sealed(good, False, 9)))
    assert not pli and [f.data for f in out] == [_vp8(True, seed=8), _vp8(False, seed=9)]


def test_video_frames_before_binding_wait_for_a_key_frame() -> None:
    decryption = ReceiveDecryption("video", keyframe_test=KEYFRAMES, clock=FakeClock())
    assert decryption.filter_frames(_frames(_vp8(True))) == (False, [])
    decryption.bind(None)
    pli, out = decryption.filter_frames(_frames(_vp8(False)))
    assert pli and out == []
    pli, out = decryption.filter_frames(_frames(_vp8(True)))
    assert [f.data for f in out] == [_vp8(True)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind"):
        ReceiveDecryption("data")
    with pytest.raises(ValueError, match="keyframe_test"):
        ReceiveDecryption("video")
    assert ReceiveDecryption.media_kind("video", "video/H264") is MediaKind.H264
    assert ReceiveDecryption.media_kind("audio", "") is MediaKind.OPUS
    h264 = CodecKeyframeTest({102: "video/H264", 103: "video/rtx"})
    assert ReceiveDecryption("video", keyframe_test=h264).answered_mime_type == "video/H264"
    assert ReceiveDecryption("audio").answered_mime_type == ""
    with pytest.raises(ValueError, match="VP9"):
        ReceiveDecryption.media_kind("video", "video/VP9")
