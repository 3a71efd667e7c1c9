"""End-to-end encryption of one room session: its keys, its tracks' frame cryptors, its data.

The public :mod:`livekit_py.rtc.e2ee` objects (``KeyProvider``, ``FrameCryptor``,
``E2EEManager``) are views of what is here; :mod:`livekit_py.media.frame_crypto` does
the cryptography and :mod:`livekit_py.webrtc.e2ee_hooks` puts the cryptors on the
media path.

**Keys** (:class:`KeyStore`), as the native key provider the official SDK links keeps
them: with a shared key every participant, ourselves included, gets a copy of the
shared key ring the first time one of its tracks needs it (a receiver's ratchet then
changes that participant's copy only), and ``set_shared_key`` /
``ratchet_shared_key`` change the shared ring and every copy; without one, each
participant has its own ring (``set_key``), and ``set_shared_key`` does nothing.

Deriving an encryption key costs one PBKDF2 of 100,000 iterations (15 to 50 ms here;
``cryptography`` releases the GIL meanwhile). ``set_shared_key`` / ``set_key`` return at
once: the derivation runs in a worker thread (one, so sets apply in the order they were
made), the raw key is exported from the moment it was set, and a frame's encryptor keeps
the previous key (or drops frames, ``MISSING_KEY``, when there is none) until it is
ready; data packets wait for it (:meth:`KeyStore.settled`). The ratchets must return the
new raw key, as the official methods do, so they compute it on the calling thread (one
derivation: a stall of the event loop of that length) and derive its encryption key in
the worker. A receiver's own ratchet attempts (up to ``ratchet_window_size`` steps of
two derivations) run in a second worker thread, one track at a time, and not while a
key of that ring is still being derived (the failing frame most likely already uses it).

**Data packets**: with ``RoomOptions.encryption`` (not the deprecated ``e2ee``, as in the
Rust SDK), the user packets, chat messages, RPC and data-stream packets we send go out as
``DataPacket.encrypted_packet`` (our identity's key, the last key index set); received
encrypted packets are decrypted with the sender's key whatever the options, and one
that does not decrypt is logged and dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpSender
from google.protobuf.message import DecodeError
from livekit.protocol import models as proto_models

from ..log import get_logger
from ..media.frame_crypto import (
    CryptorState,
    FrameDecryptor,
    FrameEncryptor,
    KeyOptions,
    KeyRing,
    decrypt_data,
    encrypt_data,
    ratchet_raw_key,
)
from ..webrtc.e2ee_hooks import ReceiveDecryption, encrypt_sender

__all__ = ["ENCRYPTED_PACKET_KINDS", "E2EEController", "KeyStore", "TrackCryptor"]

logger = get_logger("session.e2ee")

ENCRYPTED_PACKET_KINDS = (
    "user",
    "chat_message",
    "rpc_request",
    "rpc_ack",
    "rpc_response",
    "stream_header",
    "stream_chunk",
    "stream_trailer",
)
"""The ``DataPacket`` values that are sent encrypted (``EncryptedPacketPayload``'s)."""

StateHandler = Callable[[str, str, CryptorState], None]
"""Takes (participant identity, track sid, new state); called on the event loop."""


def _check_key(key: object) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise ValueError(f"key must be bytes, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    return bytes(key)


class KeyStore:
    """The key rings of one room: the shared ring and each participant's.

    Args:
        options: Salt, KDF, window, tolerance and ring size of every ring.
        shared: Shared-key mode (``KeyProviderOptions.shared_key`` given).
    """

    def __init__(self, options: KeyOptions, *, shared: bool) -> None:
        self.options = options
        self.shared = shared
        self._shared = KeyRing(options)
        self._rings: dict[str, KeyRing] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="livekit_py.e2ee.keys"
        )
        self._lock = threading.Lock()
        # (ring id, slot) -> (ring, raw key) of the sets not derived yet
        self._pending: dict[tuple[int, int], tuple[KeyRing, bytes]] = {}
        self._jobs: set[concurrent.futures.Future[None]] = set()
        self._closed = False
        self.latest_key_index = 0
        """The key index last set (data packets are encrypted with it, as in Rust)."""

    # -- rings --------------------------------------------------------------------------

    def ring_for(self, identity: str) -> KeyRing:
        """The ring of ``identity`` (made on first use; in shared mode a copy of the shared one)."""
        ring = self._rings.get(identity)
        if ring is None:
            if self.shared:
                ring = self._shared.clone()
                with self._lock:
                    waiting = [
                        (slot, raw)
                        for (ring_id, slot), (r, raw) in self._pending.items()
                        if r is self._shared
                    ]
                for slot, raw in waiting:  # the copy gets what the shared ring is getting
                    self._submit(ring, raw, slot)
            else:
                ring = KeyRing(self.options)
            self._rings[identity] = ring
        return ring

    def deriving(self, ring: KeyRing) -> bool:
        """Whether a key of ``ring`` is set but not derived yet."""
        with self._lock:
            return any(r is ring for r, _ in self._pending.values())

    def _slot(self, index: object) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"key_index must be an int, not {type(index).__name__}")
        size = self.options.key_ring_size
        if not 0 <= index < size:
            raise ValueError(f"key_index must be in 0..{size - 1} (key_ring_size), not {index}")
        return index

    def _submit(self, ring: KeyRing, raw: bytes, slot: int) -> None:
        if self._closed:
            return
        entry = (ring, raw)
        with self._lock:
            self._pending[(id(ring), slot)] = entry

        def derive() -> None:
            try:
                ring.set_key(raw, slot)
            finally:
                with self._lock:
                    if self._pending.get((id(ring), slot)) is entry:
                        del self._pending[(id(ring), slot)]

        job = self._executor.submit(derive)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _raw(self, ring: KeyRing, slot: int) -> bytes | None:
        with self._lock:
            pending = self._pending.get((id(ring), slot))
        if pending is not None:
            return pending[1]
        return ring.export_key(slot)

    async def settled(self) -> None:
        """Wait until every key set so far is derived (and usable)."""
        jobs = list(self._jobs)
        if jobs:
            await asyncio.gather(*(asyncio.wrap_future(j) for j in jobs), return_exceptions=True)

    def close(self) -> None:
        """Stop deriving: keys set from now on are ignored; a derivation under way ends."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the KeyProvider methods -----------------------------------------------------------

    def set_shared_key(self, key: bytes, key_index: int) -> None:
        """Set the shared key at ``key_index`` in the shared ring and every copy of it."""
        raw, slot = _check_key(key), self._slot(key_index)
        if not self.shared:
            logger.warning(
                "set_shared_key does nothing: the key provider has per-participant keys "
                "(KeyProviderOptions.shared_key was not given); use set_key"
            )
            return
        self.latest_key_index = slot
        for ring in (self._shared, *self._rings.values()):
            self._submit(ring, raw, slot)

    def export_shared_key(self, key_index: int) -> bytes:
        """The shared raw key at ``key_index`` (b"" if there is none)."""
        slot = self._slot(key_index)
        return (self._raw(self._shared, slot) or b"") if self.shared else b""

    def ratchet_shared_key(self, key_index: int) -> bytes:
        """Ratchet the shared key at ``key_index`` everywhere; the new raw key (b"": none)."""
        slot = self._slot(key_index)
        if not self.shared:
            return b""
        current = self._raw(self._shared, slot)
        if current is None:
            return b""
        new = ratchet_raw_key(current, self.options.ratchet_salt, self.options.kdf)
        for ring in (self._shared, *self._rings.values()):
            self._submit(ring, new, slot)
        return new

    def set_key(self, identity: str, key: bytes, key_index: int) -> None:
        """Set the key of ``identity`` at ``key_index`` (its own ring, or its copy)."""
        if not isinstance(identity, str) or not identity:
            raise ValueError("participant_identity must be a non-empty string")
        raw, slot = _check_key(key), self._slot(key_index)
        self.latest_key_index = slot
        self._submit(self.ring_for(identity), raw, slot)

    def export_key(self, identity: str, key_index: int) -> bytes:
        """The raw key of ``identity`` at ``key_index`` (b"" if there is none)."""
        slot = self._slot(key_index)
        ring = self._rings.get(identity)
        return (self._raw(ring, slot) or b"") if ring is not None else b""

    def ratchet_key(self, identity: str, key_index: int) -> bytes:
        """Ratchet the key of ``identity`` at ``key_index``; the new raw key (b"": none)."""
        slot = self._slot(key_index)
        ring = self._rings.get(identity)
        current = self._raw(ring, slot) if ring is not None else None
        if ring is None or current is None:
            return b""
        new = ratchet_raw_key(current, self.options.ratchet_salt, self.options.kdf)
        self._submit(ring, new, slot)
        return new


@dataclass(eq=False)
class TrackCryptor:
    """The frame cryptor of one track: ours (an encryptor) or a remote one (a decryptor)."""

    identity: str
    track_sid: str
    encryptor: FrameEncryptor | None = None
    decryptor: FrameDecryptor | None = None
    decryption: ReceiveDecryption | None = None
    _key_index: int = 0

    @property
    def key_index(self) -> int:
        """The key index our frames are encrypted with (a receiver reads it from each frame)."""
        return self.encryptor.key_index if self.encryptor is not None else self._key_index

    @key_index.setter
    def key_index(self, index: int) -> None:
        if self.encryptor is not None:
            self.encryptor.key_index = index
        else:
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"key_index must be a non-negative int, not {index!r}")
            self._key_index = index

    @property
    def enabled(self) -> bool:
        cryptor = self.encryptor or self.decryptor
        return cryptor.enabled if cryptor is not None else False

    @enabled.setter
    def enabled(self, enabled: bool) -> None:
        cryptor = self.encryptor or self.decryptor
        if cryptor is not None:
            cryptor.enabled = bool(enabled)

    @property
    def state(self) -> CryptorState:
        cryptor = self.encryptor or self.decryptor
        return cryptor.state if cryptor is not None else CryptorState.NEW


class E2EEController:
    """End-to-end encryption of one room session (see the module docstring).

    Made in ``Room.connect`` (on the running loop), closed when the session ends.

    Args:
        options: The key options.
        shared_key: The shared key, or None for per-participant keys.
        encrypt_tracks: Whether our tracks are published encrypted (the options'
            encryption type is GCM).
        encrypt_data: Whether our data packets are sent encrypted.
    """

    def __init__(
        self,
        options: KeyOptions,
        *,
        shared_key: bytes | None,
        encrypt_tracks: bool = True,
        encrypt_data: bool = True,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.keys = KeyStore(options, shared=shared_key is not None)
        if shared_key is not None:
            self.keys.set_shared_key(shared_key, 0)
        self.encrypt_tracks = encrypt_tracks
        self.encrypt_data = encrypt_data
        self.local_identity = ""
        self._sif_trailer = b""
        self._enabled = True
        self._cryptors: dict[tuple[str, str], TrackCryptor] = {}
        self._ratchets = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="livekit_py.e2ee.ratchet"
        )
        self._ratcheting: set[FrameDecryptor] = set()
        self._closed = False
        self.on_state: StateHandler | None = None
        """Called on the loop with (identity, track sid, state) at each cryptor state change."""

    # -- settings -----------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether frames are encrypted and decrypted (``E2EEManager.set_enabled``)."""
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Turn every frame cryptor on or off (off: frames pass unchanged, as native)."""
        self._enabled = bool(enabled)
        for cryptor in self._cryptors.values():
            cryptor.enabled = self._enabled

    @property
    def sif_trailer(self) -> bytes:
        """The room's server-injected-frame trailer (``JoinResponse.sif_trailer``)."""
        return self._sif_trailer

    @sif_trailer.setter
    def sif_trailer(self, trailer: bytes) -> None:
        self._sif_trailer = bytes(trailer)
        for cryptor in self._cryptors.values():
            if cryptor.decryptor is not None:
                cryptor.decryptor.sif_trailer = self._sif_trailer

    def cryptors(self) -> list[TrackCryptor]:
        """The frame cryptors of the tracks published and subscribed now."""
        return list(self._cryptors.values())

    def cryptor(self, identity: str, track_sid: str) -> TrackCryptor | None:
        return self._cryptors.get((identity, track_sid))

    # -- tracks ---------------------------------------------------------------------------

    def encrypt_sender(self, track_sid: str, sender: RTCRtpSender) -> TrackCryptor:
        """Encrypt what ``sender`` (our publication ``track_sid``) sends, from its first frame.

        Raises:
            ValueError: If the sender's encoder cannot be encrypted.
        """
        identity = self.local_identity
        encryptor = encrypt_sender(sender, self.keys.ring_for(identity))
        encryptor.enabled = self._enabled
        cryptor = TrackCryptor(identity, track_sid, encryptor=encryptor)
        self._register(cryptor, encryptor)
        return cryptor

    def decrypt_receiver(
        self, identity: str, track_sid: str, decryption: ReceiveDecryption, mime_type: str
    ) -> TrackCryptor:
        """Decrypt the frames of ``identity``'s track ``track_sid`` on a receiving m-line.

        Raises:
            ValueError: If frames of ``mime_type`` cannot be decrypted.
        """
        mime_type = mime_type or decryption.answered_mime_type
        kind = ReceiveDecryption.media_kind(decryption.kind, mime_type)
        decryptor = FrameDecryptor(kind, self.keys.ring_for(identity), self._sif_trailer)
        decryptor.enabled = self._enabled
        cryptor = TrackCryptor(identity, track_sid, decryptor=decryptor, decryption=decryption)
        decryption.on_failure = self._ratchet_later
        decryption.bind(decryptor)
        self._register(cryptor, decryptor)
        return cryptor

    def _register(self, cryptor: TrackCryptor, holder: FrameEncryptor | FrameDecryptor) -> None:
        key = (cryptor.identity, cryptor.track_sid)
        old = self._cryptors.pop(key, None)
        if old is not None:
            self._forget(old)
        self._cryptors[key] = cryptor

        def changed(state: CryptorState) -> None:  # any thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._report, cryptor, state)

        holder.on_state = changed

    def remove(self, identity: str, track_sid: str) -> None:
        """The track is no longer published or subscribed: forget its cryptor."""
        cryptor = self._cryptors.pop((identity, track_sid), None)
        if cryptor is not None:
            self._forget(cryptor)

    def _forget(self, cryptor: TrackCryptor) -> None:
        for holder in (cryptor.encryptor, cryptor.decryptor):
            if holder is not None:
                holder.on_state = None
        decryption = cryptor.decryption
        if decryption is not None and decryption.decryptor is cryptor.decryptor:
            decryption.on_failure = None

    def _report(self, cryptor: TrackCryptor, state: CryptorState) -> None:
        if self._cryptors.get((cryptor.identity, cryptor.track_sid)) is not cryptor:
            return
        logger.debug(
            "frame cryptor of %s's track %s: %s", cryptor.identity, cryptor.track_sid, state.name
        )
        if self.on_state is not None:
            self.on_state(cryptor.identity, cryptor.track_sid, state)

    def _ratchet_later(self, decryptor: FrameDecryptor) -> None:
        """A frame failed that a ratchet might open: try, off the loop, one at a time."""
        if self._closed or decryptor in self._ratcheting or self.keys.deriving(decryptor.ring):
            return
        self._ratcheting.add(decryptor)

        def attempt() -> bool:
            opened = decryptor.try_ratchet()
            decryptor.pop_recovered()  # too late to decode: the frames after it went on
            return opened

        def done(job: concurrent.futures.Future[bool]) -> None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._ratcheting.discard, decryptor)
            if not job.cancelled() and job.exception() is not None:
                logger.error("a ratchet attempt failed", exc_info=job.exception())

        try:
            job = self._ratchets.submit(attempt)
        except RuntimeError:  # shut down
            self._ratcheting.discard(decryptor)
            return
        job.add_done_callback(done)

    # -- data packets -------------------------------------------------------------------

    async def encrypt_packet(self, packet: proto_models.DataPacket) -> proto_models.DataPacket:
        """``packet`` as it is to be sent: its value encrypted, when data is encrypted.

        Raises:
            ValueError: If there is no key to encrypt it with (none set for us).
        """
        which = packet.WhichOneof("value")
        if not self.encrypt_data or which not in ENCRYPTED_PACKET_KINDS:
            return packet
        await self.keys.settled()
        payload = proto_models.EncryptedPacketPayload()
        getattr(payload, which).CopyFrom(getattr(packet, which))
        key_index = self.keys.latest_key_index
        try:
            iv, sealed = encrypt_data(
                payload.SerializeToString(), self.keys.ring_for(self.local_identity), key_index
            )
        except ValueError as e:
            raise ValueError(f"the data packet cannot be encrypted: {e}") from None
        out = proto_models.DataPacket()
        out.CopyFrom(packet)
        out.encrypted_packet.CopyFrom(
            proto_models.EncryptedPacket(
                encryption_type=proto_models.Encryption.Type.GCM,
                iv=iv,
                key_index=key_index,
                encrypted_value=sealed,
            )
        )
        return out

    def decrypt_packet(self, packet: proto_models.DataPacket) -> proto_models.DataPacket | None:
        """A received ``encrypted_packet`` as the packet it carries; None (logged) if it fails."""
        sender = packet.participant_identity
        encrypted = packet.encrypted_packet
        if not sender:
            logger.warning("dropping an encrypted data packet with no sender identity")
            return None
        try:
            plain = decrypt_data(
                encrypted.iv,
                encrypted.encrypted_value,
                self.keys.ring_for(sender),
                encrypted.key_index,
            )
            payload = proto_models.EncryptedPacketPayload.FromString(plain)
        except (ValueError, DecodeError) as e:
            logger.warning("dropping an encrypted data packet from %r: %s", sender, e)
            return None
        which = payload.WhichOneof("value")
        if which is None:
            logger.warning("dropping an encrypted data packet from %r: it is empty", sender)
            return None
        out = proto_models.DataPacket()
        out.CopyFrom(packet)
        getattr(out, which).CopyFrom(getattr(payload, which))
        return out

    # -- end --------------------------------------------------------------------------------

    def close(self) -> None:
        """The session ended: stop the workers and forget the cryptors."""
        if self._closed:
            return
        self._closed = True
        for cryptor in self._cryptors.values():
            self._forget(cryptor)
        self._cryptors.clear()
        self.keys.close()
        self._ratchets.shutdown(wait=False, cancel_futures=True)
