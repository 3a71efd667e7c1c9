"""Fixtures for the integration tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling import netns


@pytest.fixture
def netns_server(tmp_path: Path) -> Iterator[netns.NetnsServer]:
    """A livekit-server of its own in a new network namespace, for faults on its media path.

    Skipped when not root or when this kernel cannot create a namespace; as root
    (CI), a missing ``nft`` fails the test instead (``.ci/run`` installs nftables).
    The namespace and the server are gone after the test, even when it fails.
    """
    reason = netns.unavailable_reason()
    if reason is not None:
        if os.geteuid() != 0 or (shutil.which("nft") and shutil.which("ip")):
            pytest.skip(reason)
        pytest.fail(reason)
    server = netns.start_server(tmp_path / "livekit-server.log")
    try:
        yield server
    finally:
        server.stop()
