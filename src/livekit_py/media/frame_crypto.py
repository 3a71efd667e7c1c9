"""LiveKit end-to-end encryption of media frames and data packets, interoperable with the
official SDKs.

Pure: no asyncio, no aiortc, no rooms. AES-GCM and the key derivations come from
``cryptography``. What each piece does, and where the fact comes from (webrtc-sdk's
``api/crypto/frame_crypto_transformer.{h,cc}`` is the native frame cryptor the official
Rust/Python SDK 1.2.1 links; client-sdk-js's ``src/e2ee/`` is the browser one; the server is
livekit-server's ``pkg/sfu/downtrack.go``):

**Keys** (native ``ParticipantKeyHandler``, JS ``ParticipantKeyHandler.ts`` / ``utils.ts``).
A participant's *raw key* (any bytes: the shared passphrase or per-participant key) is never
used directly. The AES-128-GCM *encryption key* is ``KDF(raw, ratchet_salt, 128 bits)``
(:func:`derive_encryption_key`), the KDF being PBKDF2-HMAC-SHA256 with 100,000 iterations
(native ``DerivePBKDF2KeyFromRawKey``, JS ``getAlgoOptions('PBKDF2')``; the default) or
HKDF-SHA256 with ``info`` = 128 zero bytes (native ``DeriveHkdfSha256FromSecret``, JS
``getAlgoOptions('HKDF')``, the 1.2.1 ``KeyDerivationFunction.HKDF``). The ratchet salt
defaults to ``b"LKFrameEncryptionKey"`` (both SDKs). *Ratcheting* replaces the raw key by
``KDF(raw, ratchet_salt, 256 bits)`` with the same KDF (native ``RatchetKeyMaterial``, JS
``ratchet``) (:func:`ratchet_raw_key`). A :class:`KeyRing` holds ``key_ring_size`` (default
16, at most 255: the key index is one byte) raw keys with their encryption keys; like native
``SetKeyFromMaterial`` (and JS ``setKeyFromMaterial``), setting a key at an index at or above
the ring size stores it at ``index % size``, and makes that index the ring's current one.

**Frame layout** (native ``encryptFrame``/``decryptFrame``, JS ``FrameCryptor.ts``)::

    frame[:U] (clear) | AES-GCM(frame[U:], aad=frame[:U]) + 16-byte tag | IV (12) | 12 | key index

``U`` clear bytes (native ``get_unencrypted_bytes``, JS ``UNENCRYPTED_BYTES`` and
``naluUtils.ts``): Opus 1 (the TOC byte); VP8 10 on a key frame (``frame[0] & 1 == 0``, the
frame tag's P bit), 3 on a delta frame; H.264 (Annex B, as depacketizers produce it, with
4-byte start codes: libwebrtc and aiortc both write ``00 00 00 01``) up to the first slice NAL
unit (type 1 or 5) plus 2 bytes: its NAL header and the first byte of the slice header; the
whole frame if it has no slice (native ``FindNaluIndices``: 3- and 4-byte start codes). For
H.264 everything after the clear bytes (ciphertext, tag, IV and trailer) is then RBSP-escaped
(``03`` inserted after ``00 00`` when the next byte is at most 3, native ``H264::WriteRbsp``,
counting zeros from the start of the escaped part), so no start code appears in it; the
receiver unescapes (``H264::ParseRbsp``: drop the ``03`` of each ``00 00 03``) when the part
contains ``00 00 03`` before its last byte (native ``NeedsRbspUnescaping``). Empty frames pass
through in clear both ways (DTX). A receiver rejects a trailer whose IV length is not 12, a
frame too short for IV, trailer and tag, and a key index at or above the ring size.

**IV** (native ``makeIv``, JS ``makeIV``): SSRC (32 bits, big endian) | RTP timestamp (32) |
RTP timestamp minus ``(count % 0xFFFF)`` (32, wrapping), ``count`` being a per-SSRC frame
counter. The receiver reads the IV from the trailer, so only its uniqueness per key matters.
JS starts each SSRC's counter at a random value; native means to, but keeps 0 for the first
frame and counts from there (its random start is overwritten; the recorded official audio
streams start at 0). We start at a random value, like JS. Recorded from the official SDK
(``tests/vectors``): the IV's SSRC is the publisher's (the server forwards the stream under
another SSRC), its timestamp the RTP timestamp the receiver sees.

**Server-injected frames** (native ``uncrypted_magic_bytes``, JS ``isFrameServerInjected`` and
``sifPayload.ts``; server ``DownTrack.writeBlankFrameRTP``): ``JoinResponse.sif_trailer`` is a
per-room secret the server appends to the blank frames it sends into encrypted tracks (a
31-byte 8x8 VP8 key frame, an 80-byte Opus silence frame, the SPS/PPS/IDR of a 2x2 H.264 key
frame). A receiver strips the trailer and does not decrypt such a frame; it passes it on only
if what remains is one of those known blank frames, and drops it otherwise (JS
``identifySifPayload``; the native 1.2.1 library logs "forwarding server injected frame" /
"dropping frame with SIF trailer but unexpected payload", and carries the same blank frames).

**Decryption failures, ratchet, states** (native ``decryptFrame`` and
``ParticipantKeyHandler::DecryptionFailure``; states as the official ``EncryptionState``): a
frame that the key at its index does not open is retried with up to ``ratchet_window_size``
successive ratchets of that key (default 16); if one opens it, the ratcheted key replaces
the old one (state ``KEY_RATCHETED``, then ``OK`` at the next frame decrypted; native
reports both with that frame), otherwise the key stays as it was and the failure counts:
with ``failure_tolerance`` < 0 (the default, -1) nothing is ever reported; with N >= 0 the
key ring's failure count (reset only when a key is set or ratcheted, not by a success) going
above N marks the ring's key invalid and the track's state ``DECRYPTION_FAILED``; a track in
that state then drops its frames without trying until a key is set. Native gives each remote
participant its own copy of the shared keys, so this count, and a receiver's ratchet, are
per participant. States change once per change (a track reports ``DECRYPTION_FAILED`` once,
not per frame): ``OK`` at the first frame decrypted (and after any other state),
``MISSING_KEY`` for a frame whose key index has no key, ``DECRYPTION_FAILED`` at once for a
malformed frame (IV length, too short). Native ratchets synchronously on its crypto thread
(each step of PBKDF2 costs tens of ms); here :meth:`FrameDecryptor.decrypt` stays fast and
only notes the failed frame (:attr:`FrameDecryptor.needs_ratchet`); the owner runs
:meth:`FrameDecryptor.try_ratchet` off the event loop. Frames that fail while a ratchet is
pending are dropped without counting; once the window failed for a key, later failures with
that same key count directly (a new window is tried after a success or a new key).

**Data packets** (native ``DataPacketCryptor``, JS ``DataCryptor.ts``, Rust
``E2eeManager::encrypt_data``): ``DataPacket.encrypted_packet`` carries ``iv`` (12 bytes:
random 32 bits | milliseconds | milliseconds minus a counter), ``key_index`` and
``encrypted_value`` = AES-GCM(the serialized ``EncryptedPacketPayload``) + tag, with the same
encryption key as the frames, no AAD. Native's receiver also ratchets within the window on a
failure (:func:`decrypt_data` with ``ratchet=True``).

Threads: a :class:`KeyRing` may be used from several threads (the slow derivations run
outside its lock). A cryptor's ``encrypt``/``decrypt`` may run in one thread (aiortc
encodes in a worker thread) and ``try_ratchet`` in another; ``on_state`` is called in the
thread whose call changed the state, outside every lock.

Contract notes (``CRYPTO_API.md``): :meth:`FrameEncryptor.encrypt` returns ``None`` for a
frame to drop (no key at its index, a VP8 key frame shorter than its clear bytes): native
does not send those, and sending them in clear would leak them. Beyond the contract:
:meth:`KeyRing.clone` (native ``ParticipantKeyHandler::Clone``, for the per-participant copy
of the shared keys), :meth:`FrameDecryptor.pop_recovered` (the frame a successful
``try_ratchet`` opened), :func:`media_kind_for`, and :func:`split_annexb` /
:func:`join_annexb` for turning an H.264 frame into NAL units and back around the send hook.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..log import get_logger

__all__ = [
    "DEFAULT_RATCHET_SALT",
    "H264_BLANK_IDR",
    "H264_BLANK_PPS",
    "H264_BLANK_SPS",
    "HKDF_INFO",
    "IV_LENGTH",
    "MAX_KEY_RING_SIZE",
    "OPUS_SILENCE_FRAME",
    "PBKDF2_ITERATIONS",
    "TAG_LENGTH",
    "VP8_BLANK_KEY_FRAME",
    "CryptorState",
    "FrameDecryptor",
    "FrameEncryptor",
    "KeyDerivationFunction",
    "KeyOptions",
    "KeyRing",
    "MediaKind",
    "clear_bytes",
    "decrypt_data",
    "derive_encryption_key",
    "encrypt_data",
    "escape_rbsp",
    "join_annexb",
    "media_kind_for",
    "ratchet_raw_key",
    "split_annexb",
    "unescape_rbsp",
]

logger = get_logger("media.frame_crypto")

DEFAULT_RATCHET_SALT = b"LKFrameEncryptionKey"
PBKDF2_ITERATIONS = 100_000
HKDF_INFO = bytes(128)
"""The HKDF ``info`` of both official SDKs: 128 zero bytes."""
ENCRYPTION_KEY_LENGTH = 16  # AES-128-GCM
RAW_KEY_LENGTH = 32  # a ratcheted raw key: 256 bits
IV_LENGTH = 12
TAG_LENGTH = 16
TRAILER_LENGTH = 2  # IV length byte, key index byte
MAX_KEY_RING_SIZE = 255

# The blank frames livekit-server injects (pkg/sfu/downtrack.go), also in JS sifPayload.ts.
VP8_BLANK_KEY_FRAME = bytes.fromhex(
    "1002009d012a080008000047088585888584880202000c0d6000feffab5080"
)
H264_BLANK_SPS = bytes.fromhex("6742c01f0fd91f888884000003000400000300c83c60c920")
H264_BLANK_PPS = bytes.fromhex("6887cb83cb20")
H264_BLANK_IDR = bytes.fromhex("6588840af2628000a7be")
OPUS_SILENCE_FRAME = bytes.fromhex("f8fffe") + bytes(77)

_START_CODE = b"\x00\x00\x01"
_START_CODE_4 = b"\x00\x00\x00\x01"
_EMULATION = b"\x00\x00\x03"
_NEEDS_ESCAPE = re.compile(b"\x00\x00(?=[\x00-\x03])")
_H264_SLICE_TYPES = (1, 5)


class KeyDerivationFunction(enum.IntEnum):
    """How raw keys become encryption keys and ratchet (values as the official 1.2.1 enum)."""

    PBKDF2 = 0
    HKDF = 1


class MediaKind(enum.Enum):
    """The codec of a track's frames: it decides which bytes stay in clear."""

    OPUS = "opus"
    VP8 = "vp8"
    H264 = "h264"


class CryptorState(enum.IntEnum):
    """A frame cryptor's state (values as the official ``EncryptionState``)."""

    NEW = 0
    OK = 1
    ENCRYPTION_FAILED = 2
    DECRYPTION_FAILED = 3
    MISSING_KEY = 4
    KEY_RATCHETED = 5
    INTERNAL_ERROR = 6


_MIME_KINDS = {
    "audio/opus": MediaKind.OPUS,
    "video/vp8": MediaKind.VP8,
    "video/h264": MediaKind.H264,
}


def media_kind_for(mime_type: str) -> MediaKind | None:
    """The :class:`MediaKind` of an RTP codec MIME type (``"video/VP8"``...); None: unsupported."""
    return _MIME_KINDS.get(mime_type.lower())


# -- key derivation ----------------------------------------------------------------------


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ValueError(f"{what} must be bytes, not {type(value).__name__}")


def _kdf_of(kdf: object) -> KeyDerivationFunction:
    try:
        return KeyDerivationFunction(kdf)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ValueError(f"unknown key derivation function {kdf!r}") from None


def _derive(secret: bytes, salt: bytes, kdf: KeyDerivationFunction, length: int) -> bytes:
    if kdf is KeyDerivationFunction.PBKDF2:
        return PBKDF2HMAC(
            algorithm=hashes.SHA256(), length=length, salt=salt, iterations=PBKDF2_ITERATIONS
        ).derive(secret)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=HKDF_INFO).derive(secret)


def derive_encryption_key(
    raw: bytes, salt: bytes = DEFAULT_RATCHET_SALT, kdf: int = KeyDerivationFunction.PBKDF2
) -> bytes:
    """The 16-byte AES-128-GCM key of ``raw``: ``KDF(raw, salt, 128 bits)``.

    Slow with PBKDF2 (100,000 iterations, tens of ms): call it off the event loop.

    Raises:
        ValueError: If ``raw`` or ``salt`` is not bytes, or ``kdf`` is unknown.
    """
    return _derive(
        _as_bytes(raw, "raw key"), _as_bytes(salt, "salt"), _kdf_of(kdf), ENCRYPTION_KEY_LENGTH
    )


def ratchet_raw_key(
    raw: bytes, salt: bytes = DEFAULT_RATCHET_SALT, kdf: int = KeyDerivationFunction.PBKDF2
) -> bytes:
    """The next raw key of the ratchet: ``KDF(raw, salt, 256 bits)`` (32 bytes).

    Slow with PBKDF2: call it off the event loop.

    Raises:
        ValueError: If ``raw`` or ``salt`` is not bytes, or ``kdf`` is unknown.
    """
    return _derive(_as_bytes(raw, "raw key"), _as_bytes(salt, "salt"), _kdf_of(kdf), RAW_KEY_LENGTH)


@dataclass(frozen=True)
class KeyOptions:
    """How a key ring derives, ratchets and judges keys (the official ``KeyProviderOptions``).

    Attributes:
        ratchet_salt: Salt of every derivation.
        ratchet_window_size: Ratchets a receiver tries on a frame its key does not open
            (0: none).
        failure_tolerance: Undecryptable frames tolerated before ``DECRYPTION_FAILED``
            (negative: never reported).
        key_ring_size: Keys per participant (1 to 255; the key index is one byte).
        kdf: The key derivation function.
    """

    ratchet_salt: bytes = DEFAULT_RATCHET_SALT
    ratchet_window_size: int = 16
    failure_tolerance: int = -1
    key_ring_size: int = 16
    kdf: KeyDerivationFunction = KeyDerivationFunction.PBKDF2

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratchet_salt", _as_bytes(self.ratchet_salt, "ratchet_salt"))
        object.__setattr__(self, "kdf", _kdf_of(self.kdf))
        for name in ("ratchet_window_size", "failure_tolerance", "key_ring_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, not {type(value).__name__}")
        if self.ratchet_window_size < 0:
            raise ValueError(f"ratchet_window_size must be >= 0, not {self.ratchet_window_size}")
        if not 1 <= self.key_ring_size <= MAX_KEY_RING_SIZE:
            raise ValueError(
                f"key_ring_size must be between 1 and {MAX_KEY_RING_SIZE}, not {self.key_ring_size}"
            )


# -- key ring ----------------------------------------------------------------------------


class _KeySet(NamedTuple):
    raw: bytes
    key: bytes
    aead: AESGCM


def _key_set(raw: bytes, options: KeyOptions) -> _KeySet:
    key = _derive(raw, options.ratchet_salt, options.kdf, ENCRYPTION_KEY_LENGTH)
    return _KeySet(raw, key, AESGCM(key))


class KeyRing:
    """The keys of one participant (or the shared key set): ``key_ring_size`` slots.

    Thread-safe; the derivations (slow with PBKDF2) run outside the lock, so call
    :meth:`set_key` and :meth:`ratchet` off the event loop. Besides the keys the ring
    holds native's per-participant failure count and "has a valid key" flag (see the
    module docstring), which a key set or ratchet resets.

    An ``index`` of -1 means the current index (the last one set or ratcheted), as native.
    """

    def __init__(self, options: KeyOptions | None = None) -> None:
        self._options = options if options is not None else KeyOptions()
        if not isinstance(self._options, KeyOptions):
            raise ValueError(f"options must be KeyOptions, not {type(options).__name__}")
        self._lock = threading.Lock()
        self._slots: list[_KeySet | None] = [None] * self._options.key_ring_size
        self._current = 0
        self._version = 0
        self._valid = False
        self._failures = 0

    @property
    def options(self) -> KeyOptions:
        return self._options

    @property
    def size(self) -> int:
        return len(self._slots)

    @property
    def version(self) -> int:
        """Bumps on every change of a key (set, ratchet, a receiver's successful ratchet)."""
        return self._version

    @property
    def current_index(self) -> int:
        """The index last set or ratcheted (native's current key index)."""
        return self._current

    @property
    def has_valid_key(self) -> bool:
        """False once the failure tolerance was exceeded, until a key is set or ratcheted."""
        return self._valid

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"key index must be an int, not {type(index).__name__}")
        if index == -1:
            return self._current
        if not 0 <= index < len(self._slots):
            raise ValueError(f"key index {index} is outside the key ring (size {len(self._slots)})")
        return index

    def _store(self, index: int, key_set: _KeySet) -> None:
        """Put ``key_set`` at ``index`` (lock held): current index, valid, failures reset."""
        self._slots[index] = key_set
        self._current = index
        self._valid = True
        self._failures = 0
        self._version += 1

    def set_key(self, raw: bytes, index: int = 0) -> None:
        """Derive the encryption key of ``raw`` and store both at ``index``.

        As native, an index at or above the ring size wraps (``index % size``) and a
        negative one means the current index.

        Raises:
            ValueError: If ``raw`` is not bytes or is empty, or ``index`` is not an int.
        """
        raw = _as_bytes(raw, "raw key")
        if not raw:
            raise ValueError("raw key must not be empty")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"key index must be an int, not {type(index).__name__}")
        key_set = _key_set(raw, self._options)
        with self._lock:
            slot = index % len(self._slots) if index >= 0 else self._current
            self._store(slot, key_set)

    def export_key(self, index: int = -1) -> bytes | None:
        """The raw key at ``index``, None if there is none.

        Raises:
            ValueError: If ``index`` is outside the ring.
        """
        with self._lock:
            key_set = self._slots[self._index(index)]
        return key_set.raw if key_set is not None else None

    def ratchet(self, index: int = -1) -> bytes:
        """Ratchet the key at ``index``: store ``KDF(raw, salt, 256 bits)`` there and return it.

        Returns ``b""`` if there is no key at ``index`` (as the official SDK).

        Raises:
            ValueError: If ``index`` is outside the ring.
        """
        with self._lock:
            slot = self._index(index)
            old = self._slots[slot]
        if old is None:
            return b""
        new_raw = _derive(old.raw, self._options.ratchet_salt, self._options.kdf, RAW_KEY_LENGTH)
        key_set = _key_set(new_raw, self._options)
        with self._lock:
            self._store(slot, key_set)
        return new_raw

    def key(self, index: int = -1) -> AESGCM | None:
        """The AES-GCM cipher of the key at ``index``, None if there is none.

        Raises:
            ValueError: If ``index`` is outside the ring.
        """
        key_set = self._slot(index)
        return key_set.aead if key_set is not None else None

    def clone(self) -> KeyRing:
        """A ring with the same options, keys, current index and validity (native ``Clone``).

        Native gives each remote participant its own copy of the shared keys the first
        time it needs them, so a receiver's ratchet changes only that participant's copy.
        """
        copy = KeyRing(self._options)
        with self._lock:
            copy._slots = list(self._slots)
            copy._current = self._current
            copy._valid = self._valid
            copy._version = self._version
        return copy

    # -- for the cryptors of this module ----------------------------------------------------

    def _slot(self, index: int) -> _KeySet | None:
        with self._lock:
            return self._slots[self._index(index)]

    def _replace(self, index: int, expected: _KeySet, key_set: _KeySet) -> bool:
        """Store ``key_set`` at ``index`` if ``expected`` is still there (a receiver's ratchet)."""
        with self._lock:
            if self._slots[index] is not expected:
                return False
            self._store(index, key_set)
            return True

    def _note_failure(self) -> bool:
        """Count one undecryptable frame; True if that exceeds the tolerance (native)."""
        tolerance = self._options.failure_tolerance
        if tolerance < 0:
            return False
        with self._lock:
            self._failures += 1
            if self._failures > tolerance:
                self._valid = False
                return True
            return False


# -- frame layout ------------------------------------------------------------------------


def escape_rbsp(data: bytes) -> bytes:
    """Insert ``03`` after every ``00 00`` followed by a byte <= 3 (native ``H264::WriteRbsp``)."""
    # ciphertext rarely needs it: look for a first place before rewriting
    pos = data.find(b"\x00\x00")
    while pos >= 0:
        if pos + 2 < len(data) and data[pos + 2] <= 3:
            return _NEEDS_ESCAPE.sub(_EMULATION, data)
        pos = data.find(b"\x00\x00", pos + 1)
    return data


def unescape_rbsp(data: bytes, start: int = 0) -> bytes:
    """Drop the ``03`` of every ``00 00 03`` (native ``H264::ParseRbsp``), from ``start`` on."""
    pos = data.find(_EMULATION, start)
    if pos < 0:
        return data
    parts = []
    last = 0
    while pos >= 0:
        parts.append(data[last : pos + 2])
        last = pos + 3
        pos = data.find(_EMULATION, last)
    parts.append(data[last:])
    return b"".join(parts)


def _h264_clear_bytes(frame: bytes) -> int:
    # native FindNaluIndices: a start code 00 00 01 at i < len - 3 (its NAL unit has a
    # first byte); the first NAL unit of type 1 or 5 keeps its header and one more byte
    end = len(frame) - 1
    pos = frame.find(_START_CODE, 0, end)
    while pos >= 0:
        header = pos + 3
        if frame[header] & 0x1F in _H264_SLICE_TYPES:
            return header + 2
        pos = frame.find(_START_CODE, header, end)
    return 0


def clear_bytes(kind: MediaKind, frame: bytes) -> int:
    """How many leading bytes of ``frame`` stay in clear (and are the AAD)."""
    if kind is MediaKind.OPUS:
        return 1
    if kind is MediaKind.VP8:
        return 10 if frame and frame[0] & 1 == 0 else 3
    return _h264_clear_bytes(frame)


def split_annexb(frame: bytes) -> list[bytes]:
    """The NAL units of an Annex-B H.264 frame (3- or 4-byte start codes), without them.

    A zero byte just before a 3-byte start code belongs to the start code (a 4-byte
    one), as in aiortc's splitter.
    """
    nals: list[bytes] = []
    pos = frame.find(_START_CODE)
    while pos >= 0:
        start = pos + 3
        pos = frame.find(_START_CODE, start)
        if pos < 0:
            nals.append(frame[start:])
        else:
            end = pos - 1 if frame[pos - 1] == 0 else pos
            nals.append(frame[start:end])
    return nals


def join_annexb(nals: Iterable[bytes]) -> bytes:
    """An Annex-B frame of ``nals`` with 4-byte start codes, as depacketizers produce it."""
    return b"".join(_START_CODE_4 + bytes(nal) for nal in nals)


def _is_server_blank(kind: MediaKind, payload: bytes) -> bool:
    if kind is MediaKind.OPUS:
        return payload == OPUS_SILENCE_FRAME
    if kind is MediaKind.VP8:
        return payload == VP8_BLANK_KEY_FRAME
    nals = split_annexb(payload)
    blank = (H264_BLANK_SPS, H264_BLANK_PPS, H264_BLANK_IDR)
    return bool(nals) and all(nal in blank for nal in nals)


StateListener = Callable[[CryptorState], None]


class _StateHolder:
    """A cryptor's state, changed from any thread; listeners are called outside the lock."""

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._state = CryptorState.NEW
        self.on_state: StateListener | None = None
        """Called with each new state, in the thread whose call changed it."""

    @property
    def state(self) -> CryptorState:
        return self._state

    def _set_state(self, state: CryptorState) -> None:
        with self._state_lock:
            if self._state is state:
                return
            self._state = state
        logger.debug("%s: state %s", type(self).__name__, state.name)
        listener = self.on_state
        if listener is not None:
            try:
                listener(state)
            except Exception:
                logger.exception("state listener failed")


def _check_kind(kind: object) -> MediaKind:
    if not isinstance(kind, MediaKind):
        raise ValueError(f"kind must be a MediaKind, not {kind!r}")
    return kind


def _check_ring(ring: object) -> KeyRing:
    if not isinstance(ring, KeyRing):
        raise ValueError(f"ring must be a KeyRing, not {type(ring).__name__}")
    return ring


class FrameEncryptor(_StateHolder):
    """Encrypts the frames of one published track with the key at :attr:`key_index`."""

    def __init__(self, kind: MediaKind, ring: KeyRing, key_index: int = 0) -> None:
        super().__init__()
        self._kind = _check_kind(kind)
        self._ring = _check_ring(ring)
        self._key_index = 0
        self.key_index = key_index
        self.enabled = True
        """When False, frames go out in clear (as native)."""
        self._counts: dict[int, int] = {}
        self._counts_lock = threading.Lock()

    @property
    def kind(self) -> MediaKind:
        return self._kind

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @property
    def key_index(self) -> int:
        """The index of the key this track's frames are encrypted with (in the trailer)."""
        return self._key_index

    @key_index.setter
    def key_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"key index must be an int, not {type(index).__name__}")
        if not 0 <= index < self._ring.size:
            raise ValueError(f"key index {index} is outside the key ring (size {self._ring.size})")
        self._key_index = index

    def _iv(self, ssrc: int, rtp_timestamp: int) -> bytes:
        ssrc &= 0xFFFFFFFF
        rtp_timestamp &= 0xFFFFFFFF
        with self._counts_lock:
            count = self._counts.get(ssrc)
            if count is None:
                count = secrets.randbelow(0xFFFF)
            self._counts[ssrc] = count + 1
        return struct.pack(
            ">III", ssrc, rtp_timestamp, (rtp_timestamp - count % 0xFFFF) & 0xFFFFFFFF
        )

    def encrypt(self, frame: bytes, rtp_timestamp: int, ssrc: int) -> bytes | None:
        """The encrypted ``frame``, or None to drop it. Raises nothing; sets :attr:`state`.

        Empty frames, and every frame while not :attr:`enabled`, come back as they are.
        None (the frame must not be sent): no key at :attr:`key_index` (``MISSING_KEY``),
        a frame shorter than its clear bytes (``ENCRYPTION_FAILED``).
        """
        if not frame or not self.enabled:
            return frame
        key_index = self._key_index
        key_set = self._ring._slot(key_index)
        if key_set is None:
            self._set_state(CryptorState.MISSING_KEY)
            return None
        frame = bytes(frame)
        clear = clear_bytes(self._kind, frame)
        if clear > len(frame):
            self._set_state(CryptorState.ENCRYPTION_FAILED)
            return None
        header = frame[:clear]
        iv = self._iv(ssrc, rtp_timestamp)
        try:
            sealed = key_set.aead.encrypt(iv, frame[clear:], header)
        except Exception:  # cryptography's own limits (2^32 bytes): not a real frame
            logger.exception("AES-GCM encryption failed")
            self._set_state(CryptorState.ENCRYPTION_FAILED)
            return None
        tail = sealed + iv + bytes((IV_LENGTH, key_index))
        if self._kind is MediaKind.H264:
            tail = escape_rbsp(tail)
        self._set_state(CryptorState.OK)
        return header + tail


class _Pending(NamedTuple):
    """A frame the key at its index did not open, kept for :meth:`FrameDecryptor.try_ratchet`."""

    key_index: int
    key_set: _KeySet
    header: bytes
    iv: bytes
    sealed: bytes


class FrameDecryptor(_StateHolder):
    """Decrypts the frames of one subscribed track with its participant's key ring."""

    def __init__(self, kind: MediaKind, ring: KeyRing, sif_trailer: bytes = b"") -> None:
        super().__init__()
        self._kind = _check_kind(kind)
        self._ring = _check_ring(ring)
        self._sif = _as_bytes(sif_trailer, "sif_trailer")
        self.enabled = True
        """When False, frames are passed on as they come (as native)."""
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self._ratchet_failed: tuple[int, _KeySet] | None = None
        self._recovered: bytes | None = None

    @property
    def kind(self) -> MediaKind:
        return self._kind

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @property
    def sif_trailer(self) -> bytes:
        """The room's server-injected-frame trailer (``JoinResponse.sif_trailer``)."""
        return self._sif

    @sif_trailer.setter
    def sif_trailer(self, trailer: bytes) -> None:
        self._sif = _as_bytes(trailer, "sif_trailer")

    @property
    def needs_ratchet(self) -> bool:
        """A frame failed that a ratchet of its key might open: call :meth:`try_ratchet`."""
        return self._pending is not None

    def decrypt(self, frame: bytes) -> bytes | None:
        """The decrypted ``frame``, or None to drop it. Fast; raises nothing; sets :attr:`state`.

        Empty frames, and every frame while not :attr:`enabled`, come back as they are; a
        server-injected frame comes back without its trailer if it is a known blank frame.
        None: a frame with the SIF trailer that is no blank frame, a malformed frame, no
        key at its index, a frame its key does not open (see :attr:`needs_ratchet`), or
        any frame while the state is ``DECRYPTION_FAILED`` and the ring's key invalid.
        """
        if not frame or not self.enabled:
            return frame
        frame = bytes(frame)
        sif = self._sif
        if sif and frame.endswith(sif):
            payload = frame[: len(frame) - len(sif)]
            if _is_server_blank(self._kind, payload):
                return payload
            logger.debug("dropping a frame with the SIF trailer and an unknown payload")
            return None
        clear = clear_bytes(self._kind, frame)
        if clear > len(frame):
            self._set_state(CryptorState.DECRYPTION_FAILED)
            return None
        header, tail = frame[:clear], frame[clear:]
        if self._kind is MediaKind.H264:
            # native unescapes only if 00 00 03 starts before the last three bytes
            first = tail.find(_EMULATION, 0, len(tail) - 1)
            if first >= 0:
                tail = unescape_rbsp(tail, first)
        if len(tail) < TRAILER_LENGTH + IV_LENGTH + TAG_LENGTH or tail[-2] != IV_LENGTH:
            self._set_state(CryptorState.DECRYPTION_FAILED)
            return None
        key_index = tail[-1]
        ring = self._ring
        key_set = ring._slot(key_index) if key_index < ring.size else None
        if key_set is None:
            self._set_state(CryptorState.MISSING_KEY)
            return None
        if self._state is CryptorState.DECRYPTION_FAILED and not ring.has_valid_key:
            return None  # native: wait for a new key
        iv = tail[-TRAILER_LENGTH - IV_LENGTH : -TRAILER_LENGTH]
        sealed = tail[: -TRAILER_LENGTH - IV_LENGTH]
        try:
            plain = key_set.aead.decrypt(iv, sealed, header)
        except InvalidTag:
            self._failed(_Pending(key_index, key_set, header, iv, sealed))
            return None
        with self._lock:
            self._ratchet_failed = None
        self._set_state(CryptorState.OK)
        return header + plain

    def _failed(self, pending: _Pending) -> None:
        ratchet_may_help = self._ring.options.ratchet_window_size > 0 and self._ratchet_failed != (
            pending.key_index,
            pending.key_set,
        )
        if ratchet_may_help:
            with self._lock:
                self._pending = pending  # the latest failed frame; not counted yet
            return
        if self._ring._note_failure():
            self._set_state(CryptorState.DECRYPTION_FAILED)

    def try_ratchet(self) -> bool:
        """Try up to ``ratchet_window_size`` ratchets of the key on the last failed frame.

        Slow (one or two derivations per step): run it off the event loop when
        :attr:`needs_ratchet`. If a ratchet opens the frame and the key is still the
        one that failed, the ratcheted key replaces it in the ring (state
        ``KEY_RATCHETED``; :meth:`pop_recovered` then gives the frame) and True is
        returned. Otherwise the failure counts (see the module docstring), and later
        frames failing with that same key count directly until a success or a new key.
        """
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return False
        ring = self._ring
        options = ring.options
        current = ring._slot(pending.key_index)
        if current is not pending.key_set:
            return False  # a new key came meanwhile: later frames try it
        raw = current.raw
        for _ in range(options.ratchet_window_size):
            raw = _derive(raw, options.ratchet_salt, options.kdf, RAW_KEY_LENGTH)
            candidate = _key_set(raw, options)
            try:
                plain = candidate.aead.decrypt(pending.iv, pending.sealed, pending.header)
            except InvalidTag:
                continue
            if not ring._replace(pending.key_index, current, candidate):
                return False
            with self._lock:
                self._ratchet_failed = None
                self._recovered = pending.header + plain
            self._set_state(CryptorState.KEY_RATCHETED)
            return True
        with self._lock:
            self._ratchet_failed = (pending.key_index, current)
        if ring._note_failure():
            self._set_state(CryptorState.DECRYPTION_FAILED)
        return False

    def pop_recovered(self) -> bytes | None:
        """The frame the last successful :meth:`try_ratchet` decrypted, once; else None."""
        with self._lock:
            frame, self._recovered = self._recovered, None
        return frame


# -- data packets ------------------------------------------------------------------------

_data_lock = threading.Lock()
_data_count = secrets.randbelow(0xFFFF)


def _data_iv() -> bytes:
    global _data_count
    with _data_lock:
        count = _data_count
        _data_count += 1
    millis = int(time.time() * 1000) & 0xFFFFFFFF
    return os.urandom(4) + struct.pack(">II", millis, (millis - count % 0xFFFF) & 0xFFFFFFFF)


def encrypt_data(plaintext: bytes, ring: KeyRing, key_index: int) -> tuple[bytes, bytes]:
    """Encrypt a serialized ``EncryptedPacketPayload``: (iv, ciphertext with its tag).

    Raises:
        ValueError: If ``key_index`` is outside the ring or has no key, or
            ``plaintext`` is not bytes.
    """
    plaintext = _as_bytes(plaintext, "plaintext")
    key_set = _check_ring(ring)._slot(key_index)
    if key_set is None:
        raise ValueError(f"no key at index {key_index}")
    iv = _data_iv()
    return iv, key_set.aead.encrypt(iv, plaintext, None)


def decrypt_data(
    iv: bytes, ciphertext: bytes, ring: KeyRing, key_index: int, *, ratchet: bool = False
) -> bytes:
    """Decrypt an ``EncryptedPacket``'s ``encrypted_value`` (the serialized payload).

    With ``ratchet`` (slow: off the event loop), a packet the key does not open is
    retried with up to ``ratchet_window_size`` ratchets of it, and a ratchet that opens
    it replaces the key (native ``DataPacketCryptor::Decrypt``).

    Raises:
        ValueError: If ``key_index`` is outside the ring or has no key, the IV is not
            8 to 128 bytes, or the packet does not decrypt (wrong key, tampered).
    """
    iv = _as_bytes(iv, "iv")
    ciphertext = _as_bytes(ciphertext, "ciphertext")
    ring = _check_ring(ring)
    if not 8 <= len(iv) <= 128:
        raise ValueError(f"the IV of an encrypted packet must be 8 to 128 bytes, not {len(iv)}")
    key_set = ring._slot(key_index)
    if key_set is None:
        raise ValueError(f"no key at index {key_index}")
    try:
        return key_set.aead.decrypt(iv, ciphertext, None)
    except InvalidTag:
        pass
    if ratchet:
        options = ring.options
        raw = key_set.raw
        for _ in range(options.ratchet_window_size):
            raw = _derive(raw, options.ratchet_salt, options.kdf, RAW_KEY_LENGTH)
            candidate = _key_set(raw, options)
            try:
                plain = candidate.aead.decrypt(iv, ciphertext, None)
            except InvalidTag:
                continue
            ring._replace(ring._index(key_index), key_set, candidate)
            return plain
    raise ValueError(f"the packet does not decrypt with the key at index {key_index}")
