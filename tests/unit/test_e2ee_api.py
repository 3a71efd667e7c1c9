"""The public E2EE API (livekit_py.rtc.e2ee): as the official 1.2.1, minus its AttributeError."""

from __future__ import annotations

import dataclasses

import pytest

from livekit_py import rtc
from livekit_py.rtc.e2ee import make_controller
from livekit_py.session.e2ee import TrackCryptor

official = pytest.importorskip("livekit.rtc")


def test_the_options_are_the_official_ones() -> None:
    for ours, theirs in (
        (rtc.KeyProviderOptions, official.KeyProviderOptions),
        (rtc.E2EEOptions, official.E2EEOptions),
    ):
        mine = [(f.name, f.default) for f in dataclasses.fields(ours)]
        reference = [(f.name, f.default) for f in dataclasses.fields(theirs)]
        assert [n for n, _ in mine] == [n for n, _ in reference]
        assert [d for _, d in mine if d is not dataclasses.MISSING] == [
            d for _, d in reference if d is not dataclasses.MISSING
        ]
    assert rtc.E2EEOptions().encryption_type == rtc.EncryptionType.GCM == 1
    assert dict(rtc.KeyDerivationFunction.items()) == dict(official.KeyDerivationFunction.items())
    assert dict(rtc.EncryptionState.items()) == dict(official.EncryptionState.items())
    from livekit_py.rtc import e2ee

    assert e2ee.DEFAULT_RATCHET_SALT == official.e2ee.DEFAULT_RATCHET_SALT
    assert e2ee.DEFAULT_KEY_RING_SIZE == official.e2ee.DEFAULT_KEY_RING_SIZE


def test_a_room_without_encryption_has_a_disabled_manager_and_no_key_provider() -> None:
    manager = rtc.Room().e2ee_manager
    assert isinstance(manager, rtc.E2EEManager)
    assert manager.key_provider is None  # (the official raises AttributeError)
    assert not manager.enabled
    manager.set_enabled(True)
    assert not manager.enabled
    assert manager.frame_cryptors() == []


async def test_bad_options_raise_value_errors_naming_them() -> None:
    cases = [
        (rtc.E2EEOptions(encryption_type=rtc.EncryptionType.CUSTOM), "encryption_type"),
        (rtc.E2EEOptions(rtc.KeyProviderOptions(key_ring_size=0)), "key_ring_size"),
        (rtc.E2EEOptions(rtc.KeyProviderOptions(ratchet_window_size=-1)), "ratchet_window_size"),
        (rtc.E2EEOptions(rtc.KeyProviderOptions(shared_key="text")), "shared_key"),  # type: ignore[arg-type]
        (rtc.E2EEOptions(rtc.KeyProviderOptions(key_derivation_function=7)), "key_derivation"),
        (rtc.E2EEOptions(rtc.KeyProviderOptions(ratchet_salt="salt")), "ratchet_salt"),  # type: ignore[arg-type]
    ]
    for options, name in cases:
        with pytest.raises(ValueError, match=name):
            make_controller(options, encrypt_data=True)
    with pytest.raises(ValueError, match="E2EEOptions"):
        make_controller(rtc.KeyProviderOptions(), encrypt_data=True)  # type: ignore[arg-type]


async def test_the_key_provider_and_the_frame_cryptors_are_views_of_the_session() -> None:
    options = rtc.E2EEOptions(
        rtc.KeyProviderOptions(
            shared_key=b"secret", key_derivation_function=rtc.KeyDerivationFunction.HKDF
        )
    )
    controller = make_controller(options, encrypt_data=True)
    try:
        manager = rtc.E2EEManager(options, controller)
        assert manager.enabled and manager.options is options
        provider = manager.key_provider
        assert provider is not None and provider.options is options.key_provider_options
        assert provider.export_shared_key(0) == b"secret"
        new = provider.ratchet_shared_key(0)
        assert len(new) == 32 and provider.export_shared_key(0) == new
        provider.set_key("alice", b"alice", 1)
        assert provider.export_key("alice", 1) == b"alice"
        assert len(provider.ratchet_key("alice", 1)) == 32
        assert provider.export_key("nobody", 1) == b""
        with pytest.raises(ValueError, match="key_index"):
            provider.set_shared_key(b"k", 16)

        cryptor = TrackCryptor("alice", "TR_x")
        controller._cryptors[("alice", "TR_x")] = cryptor
        (view,) = manager.frame_cryptors()
        assert (view.participant_identity, view.track_sid, view.key_index) == ("alice", "TR_x", 0)
        view.set_key_index(3)
        assert view.key_index == 3
        manager.set_enabled(False)
        assert not manager.enabled
        assert "TR_x" in repr(view)
        await controller.keys.settled()
    finally:
        controller.close()
