"""End-to-end encryption: options, keys, frame cryptors, interoperable with the official SDKs.

Pass ``RoomOptions(encryption=E2EEOptions(...))`` to :meth:`Room.connect`; the room then
encrypts the media of the tracks it publishes (Opus, VP8 and H.264 frames, as the official
SDKs do, so that they can decrypt them) and its data packets, and decrypts what other
participants publish encrypted. Keys are shared (``KeyProviderOptions.shared_key``: one key
for everybody) or per participant (:meth:`KeyProvider.set_key` for each identity,
ourselves included). See docs/e2ee.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..media.frame_crypto import KeyOptions
from ..session.e2ee import E2EEController, KeyStore, TrackCryptor
from ..types import EncryptionType, KeyDerivationFunction

__all__ = [
    "DEFAULT_FAILURE_TOLERANCE",
    "DEFAULT_KEY_RING_SIZE",
    "DEFAULT_RATCHET_SALT",
    "DEFAULT_RATCHET_WINDOW_SIZE",
    "E2EEManager",
    "E2EEOptions",
    "FrameCryptor",
    "KeyProvider",
    "KeyProviderOptions",
]

DEFAULT_RATCHET_SALT = b"LKFrameEncryptionKey"
DEFAULT_RATCHET_WINDOW_SIZE = 16
DEFAULT_FAILURE_TOLERANCE = -1
DEFAULT_KEY_RING_SIZE = 16


@dataclass
class KeyProviderOptions:
    """How keys are given, derived and judged.

    Attributes:
        shared_key: One key for every participant (shared-key mode); None: each
            participant's key is set with :meth:`KeyProvider.set_key`.
        ratchet_salt: The salt of every key derivation.
        ratchet_window_size: How many ratchets of its key a receiver tries on a frame
            that does not decrypt (0: none).
        failure_tolerance: How many undecryptable frames a track tolerates before
            reporting ``DECRYPTION_FAILED``; negative (the default): never.
        key_ring_size: Keys kept per participant (1 to 255).
        key_derivation_function: A :class:`KeyDerivationFunction` value: PBKDF2 (the
            default, what the other SDKs use) or HKDF (fast; every participant must use
            the same).
    """

    shared_key: bytes | None = None
    ratchet_salt: bytes = DEFAULT_RATCHET_SALT
    ratchet_window_size: int = DEFAULT_RATCHET_WINDOW_SIZE
    failure_tolerance: int = DEFAULT_FAILURE_TOLERANCE
    key_ring_size: int = DEFAULT_KEY_RING_SIZE
    key_derivation_function: int = KeyDerivationFunction.PBKDF2


@dataclass
class E2EEOptions:
    """End-to-end encryption settings of a room connection.

    Attributes:
        key_provider_options: The keys.
        encryption_type: An :class:`EncryptionType` value: GCM (the default) encrypts
            our tracks and data; NONE publishes them in clear (what others publish
            encrypted is still decrypted).
    """

    key_provider_options: KeyProviderOptions = field(default_factory=KeyProviderOptions)
    encryption_type: int = EncryptionType.GCM


def key_options(options: KeyProviderOptions) -> KeyOptions:
    """The frame cryptors' key options for ``options``.

    Raises:
        ValueError: For an option of the wrong type or out of range.
    """
    if not isinstance(options, KeyProviderOptions):
        raise ValueError(
            f"key_provider_options must be KeyProviderOptions, not {type(options).__name__}"
        )
    shared = options.shared_key
    if shared is not None and (not isinstance(shared, (bytes, bytearray)) or not shared):
        raise ValueError("KeyProviderOptions.shared_key must be non-empty bytes or None")
    if options.key_derivation_function not in KeyDerivationFunction.values():
        raise ValueError(
            "KeyProviderOptions.key_derivation_function must be a KeyDerivationFunction "
            f"value, not {options.key_derivation_function!r}"
        )
    try:
        return KeyOptions(
            ratchet_salt=options.ratchet_salt,
            ratchet_window_size=options.ratchet_window_size,
            failure_tolerance=options.failure_tolerance,
            key_ring_size=options.key_ring_size,
            kdf=options.key_derivation_function,  # type: ignore[arg-type]
        )
    except ValueError as e:
        raise ValueError(f"KeyProviderOptions: {e}") from None


def make_controller(options: E2EEOptions, *, encrypt_data: bool) -> E2EEController:
    """The session's end-to-end encryption for ``options`` (on the running loop).

    Raises:
        ValueError: For bad options, or an encryption type other than GCM and NONE.
    """
    if not isinstance(options, E2EEOptions):
        raise ValueError(f"encryption must be E2EEOptions, not {type(options).__name__}")
    if options.encryption_type not in (EncryptionType.GCM, EncryptionType.NONE):
        raise ValueError(
            "E2EEOptions.encryption_type must be EncryptionType.GCM or NONE; "
            f"{options.encryption_type!r} is not available"
        )
    provider = options.key_provider_options
    gcm = options.encryption_type == EncryptionType.GCM
    shared = provider.shared_key
    return E2EEController(
        key_options(provider),
        shared_key=bytes(shared) if shared is not None else None,
        encrypt_tracks=gcm,
        encrypt_data=gcm and encrypt_data,
    )


class KeyProvider:
    """The keys of a room with end-to-end encryption (``room.e2ee_manager.key_provider``).

    Setting a key returns at once; its encryption key is derived in the background
    (PBKDF2 takes tens of milliseconds) and used as soon as it is ready. The ratchets
    return the new key, so they take one derivation on the calling thread.
    """

    def __init__(self, keys: KeyStore, options: KeyProviderOptions) -> None:
        self._keys = keys
        self._options = options

    @property
    def options(self) -> KeyProviderOptions:
        return self._options

    def set_shared_key(self, key: bytes, key_index: int) -> None:
        """Set the shared key at ``key_index`` (shared-key mode only; otherwise nothing).

        Example:
            ``key_provider.set_shared_key(b"my_shared_key", key_index=1)``

        Raises:
            ValueError: If ``key`` is not non-empty bytes or ``key_index`` is outside
                the key ring.
        """
        self._keys.set_shared_key(key, key_index)

    def export_shared_key(self, key_index: int) -> bytes:
        """The shared key at ``key_index`` (``b""`` if there is none)."""
        return self._keys.export_shared_key(key_index)

    def ratchet_shared_key(self, key_index: int) -> bytes:
        """Ratchet the shared key at ``key_index`` and return the new one (``b""``: none).

        The receivers of our tracks follow by ratcheting their copy when our frames stop
        decrypting (within their ratchet window).
        """
        return self._keys.ratchet_shared_key(key_index)

    def set_key(self, participant_identity: str, key: bytes, key_index: int) -> None:
        """Set the key of ``participant_identity`` (ours too) at ``key_index``.

        Example:
            ``key_provider.set_key("participant123", b"participant_key", key_index=2)``

        Raises:
            ValueError: For an empty identity, a key that is not non-empty bytes, or a
                ``key_index`` outside the key ring.
        """
        self._keys.set_key(participant_identity, key, key_index)

    def export_key(self, participant_identity: str, key_index: int) -> bytes:
        """The key of ``participant_identity`` at ``key_index`` (``b""`` if there is none)."""
        return self._keys.export_key(participant_identity, key_index)

    def ratchet_key(self, participant_identity: str, key_index: int) -> bytes:
        """Ratchet the key of ``participant_identity`` at ``key_index``; the new key (or b"")."""
        return self._keys.ratchet_key(participant_identity, key_index)


class FrameCryptor:
    """The encryption of one track's frames: one of ours, or one we subscribe to."""

    def __init__(self, cryptor: TrackCryptor) -> None:
        self._cryptor = cryptor

    @property
    def participant_identity(self) -> str:
        return self._cryptor.identity

    @property
    def track_sid(self) -> str:
        return self._cryptor.track_sid

    @property
    def key_index(self) -> int:
        """The index of the key our frames are encrypted with (a receiver reads each frame's)."""
        return self._cryptor.key_index

    @property
    def enabled(self) -> bool:
        return self._cryptor.enabled

    def set_enabled(self, enabled: bool) -> None:
        """Encrypt/decrypt this track's frames (True) or pass them unchanged (False)."""
        self._cryptor.enabled = enabled

    def set_key_index(self, key_index: int) -> None:
        """Encrypt with the key at ``key_index`` from now on.

        Raises:
            ValueError: If ``key_index`` is outside the key ring.
        """
        self._cryptor.key_index = key_index

    def __repr__(self) -> str:
        return (
            f"FrameCryptor(participant_identity={self.participant_identity!r}, "
            f"track_sid={self.track_sid!r}, key_index={self.key_index}, enabled={self.enabled})"
        )


class E2EEManager:
    """End-to-end encryption of a room (``room.e2ee_manager``).

    On a room connected without encryption it is disabled and its ``key_provider`` is
    None (the official SDK raises AttributeError there).
    """

    def __init__(
        self, options: E2EEOptions | None, controller: E2EEController | None = None
    ) -> None:
        self.options = options
        self._controller = controller if options is not None else None
        self._key_provider = (
            KeyProvider(controller.keys, options.key_provider_options)
            if options is not None and controller is not None
            else None
        )

    @property
    def key_provider(self) -> KeyProvider | None:
        return self._key_provider

    @property
    def enabled(self) -> bool:
        """Whether frames are encrypted and decrypted."""
        return self._controller is not None and self._controller.enabled

    def set_enabled(self, enabled: bool) -> None:
        """Encrypt and decrypt every track's frames (True), or pass them unchanged (False).

        Does nothing on a room connected without encryption.
        """
        if self._controller is not None:
            self._controller.set_enabled(enabled)

    def frame_cryptors(self) -> list[FrameCryptor]:
        """The frame cryptors of the tracks published and subscribed now."""
        if self._controller is None:
            return []
        return [FrameCryptor(c) for c in self._controller.cryptors()]
