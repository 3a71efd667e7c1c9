"""A session's end-to-end encryption: keys as the native key provider keeps them, the
cryptors' states on the loop, ratchets off it, data packets."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from livekit.protocol import models as proto_models

from livekit_py.media.frame_crypto import (
    CryptorState,
    FrameEncryptor,
    KeyDerivationFunction,
    KeyOptions,
    KeyRing,
    MediaKind,
    ratchet_raw_key,
)
from livekit_py.session.e2ee import E2EEController, KeyStore
from livekit_py.types import VideoCodec
from livekit_py.webrtc.aiortc_adapter import installed_encoder
from livekit_py.webrtc.e2ee_hooks import ReceiveDecryption
from livekit_py.webrtc.encoders import VideoEncoderConfig, configure_sender
from tests.helpers import wait_until
from tests.unit.test_e2ee_hooks import _picture

FAST = KeyOptions(kdf=KeyDerivationFunction.HKDF)


# ---------------------------------------------------------------------- keys


async def test_a_set_key_is_exported_at_once_and_usable_once_settled() -> None:
    keys = KeyStore(FAST, shared=True)
    try:
        keys.set_shared_key(b"first", 0)
        assert keys.export_shared_key(0) == b"first"  # before it is derived
        await keys.settled()
        assert keys._shared.export_key(0) == b"first"
        assert not keys.deriving(keys._shared)
        assert keys.export_shared_key(1) == b""
    finally:
        keys.close()


async def test_shared_keys_are_copied_per_participant_and_updated_everywhere() -> None:
    keys = KeyStore(FAST, shared=True)
    try:
        keys.set_shared_key(b"first", 0)
        alice = keys.ring_for("alice")  # made while the shared key is being derived
        assert keys.ring_for("alice") is alice and alice is not keys._shared
        await keys.settled()
        assert alice.export_key(0) == b"first"
        bob = keys.ring_for("bob")
        assert bob.export_key(0) == b"first"
        keys.set_shared_key(b"second", 0)
        await keys.settled()
        assert alice.export_key(0) == bob.export_key(0) == b"second"
        new = keys.ratchet_shared_key(0)
        assert new == ratchet_raw_key(b"second", FAST.ratchet_salt, FAST.kdf)
        assert keys.export_shared_key(0) == new
        await keys.settled()
        assert alice.export_key(0) == bob.export_key(0) == new
        # one participant's own key changes its copy only
        keys.set_key("alice", b"alice's", 0)
        await keys.settled()
        assert alice.export_key(0) == b"alice's" and bob.export_key(0) == new
        assert keys.export_key("alice", 0) == b"alice's"
        assert keys.ratchet_key("carol", 0) == b""  # no copy yet: nothing to ratchet
    finally:
        keys.close()


async def test_per_participant_keys_and_set_shared_key_doing_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeyStore(FAST, shared=False)
    try:
        with caplog.at_level(logging.WARNING):
            keys.set_shared_key(b"shared", 0)
        assert "set_key" in caplog.text
        assert keys.export_shared_key(0) == b""
        keys.set_key("alice", b"a", 3)
        assert keys.latest_key_index == 3
        assert keys.export_key("alice", 3) == b"a"
        assert keys.export_key("bob", 3) == b""
        new = keys.ratchet_key("alice", 3)  # ratchets the raw key even while deriving
        assert new == ratchet_raw_key(b"a", FAST.ratchet_salt, FAST.kdf)
        await keys.settled()
        assert keys.ring_for("alice").export_key(3) == new
        assert keys.ring_for("bob").export_key(3) is None  # an empty ring of its own
    finally:
        keys.close()


def test_key_arguments_are_checked() -> None:
    keys = KeyStore(FAST, shared=True)
    try:
        with pytest.raises(ValueError, match="key_index"):
            keys.set_shared_key(b"k", 16)
        with pytest.raises(ValueError, match="key_index"):
            keys.export_key("a", -1)
        with pytest.raises(ValueError, match="bytes"):
            keys.set_key("a", "text", 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            keys.set_shared_key(b"", 0)
        with pytest.raises(ValueError, match="identity"):
            keys.set_key("", b"k", 0)
    finally:
        keys.close()


async def test_pbkdf2_derivations_do_not_hold_the_loop() -> None:
    """A set_shared_key returns before its derivation, which runs in the worker thread."""
    keys = KeyStore(KeyOptions(), shared=True)
    threads: set[str] = set()
    original = KeyRing.set_key

    def noting(ring: KeyRing, raw: bytes, index: int = 0) -> None:
        threads.add(threading.current_thread().name)
        original(ring, raw, index)

    try:
        KeyRing.set_key = noting  # type: ignore[method-assign]
        keys.set_shared_key(b"slow", 0)
        assert keys.deriving(keys._shared)
        await keys.settled()
        assert threads and all(t.startswith("livekit_py.e2ee.keys") for t in threads)
    finally:
        KeyRing.set_key = original  # type: ignore[method-assign]
        keys.close()


# ---------------------------------------------------------------------- cryptors


async def _video_sender() -> tuple[RTCPeerConnection, Any]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="sendonly")
    configure_sender(transceiver, VideoEncoderConfig(codec=VideoCodec.VP8, max_bitrate=300_000))
    return pc, transceiver.sender


async def test_states_of_a_sender_come_to_the_loop_and_cryptors_follow_set_enabled() -> None:
    controller = E2EEController(FAST, shared_key=b"secret")
    controller.local_identity = "me"
    states: list[tuple[str, str, CryptorState, bool]] = []
    loop_thread = threading.current_thread()
    controller.on_state = lambda i, sid, st: states.append(
        (i, sid, st, threading.current_thread() is loop_thread)
    )
    pc, sender = await _video_sender()
    try:
        await controller.keys.settled()
        cryptor = controller.encrypt_sender("TR_v", sender)
        assert [c.track_sid for c in controller.cryptors()] == ["TR_v"]
        encoder = installed_encoder(sender)
        assert encoder is not None
        loop = asyncio.get_running_loop()
        payloads, _ = await loop.run_in_executor(None, encoder.encode, _picture(0), True)
        assert payloads
        await wait_until(lambda: bool(states), 5, "the state change")
        assert states == [("me", "TR_v", CryptorState.OK, True)]
        controller.set_enabled(False)
        assert not cryptor.enabled and not controller.enabled
        cryptor.key_index = 2
        assert cryptor.key_index == 2
        with pytest.raises(ValueError):
            cryptor.key_index = 99
        controller.remove("me", "TR_v")
        assert controller.cryptors() == []
    finally:
        controller.close()
        await pc.close()


async def test_a_receiver_ratchets_off_the_loop_to_follow_the_senders_ratchet() -> None:
    ours = E2EEController(FAST, shared_key=b"secret")
    theirs = KeyRing(FAST)
    theirs.set_key(b"secret", 0)
    states: list[CryptorState] = []
    ours.on_state = lambda identity, sid, state: states.append(state)
    try:
        await ours.keys.settled()
        decryption = ReceiveDecryption("audio")
        cryptor = ours.decrypt_receiver("them", "TR_a", decryption, "audio/opus")
        sender = FrameEncryptor(MediaKind.OPUS, theirs)
        assert decryption.decrypt(sender.encrypt(b"\xf8one", 0, 5) or b"") == b"\xf8one"
        theirs.ratchet(0)  # the sender ratchets its key
        frame = sender.encrypt(b"\xf8two", 960, 5)
        assert frame is not None
        assert decryption.decrypt(frame) is None  # the old key: a ratchet is tried
        await wait_until(lambda: CryptorState.KEY_RATCHETED in states, 10, "the ratchet")
        assert decryption.decrypt(sender.encrypt(b"\xf8three", 1920, 5) or b"") == b"\xf8three"
        assert cryptor.state is CryptorState.OK
        await wait_until(lambda: len(states) == 3, 5, "the states reported")
        assert states == [CryptorState.OK, CryptorState.KEY_RATCHETED, CryptorState.OK]
        # the copy of "them" ratcheted; the shared key and our own copy did not
        assert ours.keys.export_shared_key(0) == b"secret"
        assert ours.keys.ring_for("me").export_key(0) == b"secret"
    finally:
        ours.close()


# ---------------------------------------------------------------------- data packets


def _user_packet(payload: bytes, identity: str) -> proto_models.DataPacket:
    return proto_models.DataPacket(
        participant_identity=identity,
        kind=proto_models.DataPacket.Kind.RELIABLE,
        user=proto_models.UserPacket(payload=payload, topic="t"),
    )


async def test_data_packets_go_out_encrypted_and_come_back() -> None:
    sender = E2EEController(FAST, shared_key=b"secret")
    receiver = E2EEController(FAST, shared_key=b"secret")
    stranger = E2EEController(FAST, shared_key=b"another secret")
    sender.local_identity = "alice"
    try:
        for controller in (sender, receiver, stranger):
            await controller.keys.settled()
        packet = _user_packet(b"hello", "alice")
        out = await sender.encrypt_packet(packet)
        assert out.WhichOneof("value") == "encrypted_packet"
        assert b"hello" not in out.SerializeToString()
        assert out.participant_identity == "alice" and out.kind == packet.kind
        assert out.encrypted_packet.encryption_type == proto_models.Encryption.Type.GCM
        back = receiver.decrypt_packet(out)
        assert back is not None and back.WhichOneof("value") == "user"
        assert back.user.payload == b"hello" and back.user.topic == "t"
        assert stranger.decrypt_packet(out) is None
        # what is not in EncryptedPacketPayload goes out as it is
        dtmf = proto_models.DataPacket(sip_dtmf=proto_models.SipDTMF(code=1, digit="1"))
        assert await sender.encrypt_packet(dtmf) is dtmf
    finally:
        for controller in (sender, receiver, stranger):
            controller.close()


async def test_without_data_encryption_packets_go_out_in_clear_and_still_decrypt() -> None:
    deprecated = E2EEController(FAST, shared_key=b"secret", encrypt_data=False)
    current = E2EEController(FAST, shared_key=b"secret")
    current.local_identity = "bob"
    try:
        await deprecated.keys.settled()
        await current.keys.settled()
        packet = _user_packet(b"x", "bob")
        assert await deprecated.encrypt_packet(packet) is packet
        sealed = await current.encrypt_packet(packet)
        back = deprecated.decrypt_packet(sealed)
        assert back is not None and back.user.payload == b"x"
        no_sender = proto_models.DataPacket()
        no_sender.CopyFrom(sealed)
        no_sender.participant_identity = ""
        assert deprecated.decrypt_packet(no_sender) is None
    finally:
        deprecated.close()
        current.close()


async def test_a_packet_with_no_key_to_encrypt_it_raises() -> None:
    controller = E2EEController(FAST, shared_key=None)  # per-participant, none set
    controller.local_identity = "me"
    try:
        with pytest.raises(ValueError, match="cannot be encrypted"):
            await controller.encrypt_packet(_user_packet(b"x", "me"))
    finally:
        controller.close()
