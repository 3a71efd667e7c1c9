"""End-to-end encryption options of a room connection."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KeyProviderOptions:
    """Key settings for end-to-end encryption."""

    shared_key: bytes | None = None
    ratchet_salt: bytes = b"LKFrameEncryptionKey"
    ratchet_window_size: int = 16
    failure_tolerance: int = -1


@dataclass
class E2EEOptions:
    """End-to-end encryption settings of a room connection."""

    key_provider_options: KeyProviderOptions = field(default_factory=KeyProviderOptions)
    encryption_type: int = 1
