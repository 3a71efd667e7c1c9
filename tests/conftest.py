"""Shared fixtures: one real livekit-server per test session, tokens, room names."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from signaling import local_server  # noqa: E402

TokenFactory = Callable[..., str]

# aiortc and aioice log every packet at DEBUG; keep their INFO and above so that
# `-o log_level=DEBUG` shows livekit_py's own messages without the flood.
for _noisy in ("aiortc", "aioice"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_server.LocalServer]:
    """A real livekit-server in --dev mode on free ports, for the whole session."""
    log = tmp_path_factory.mktemp("server") / "livekit-server.log"
    server = local_server.start(log)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_url(livekit_server: local_server.LocalServer) -> str:
    return livekit_server.url


@pytest.fixture
def room_name() -> str:
    """A room name no other test uses."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_token(room_name: str) -> TokenFactory:
    """``make_token(identity, room=None, **grant_overrides)`` signs a dev-key access token."""
    from livekit import api

    def factory(
        identity: str,
        room: str | None = None,
        *,
        name: str | None = None,
        metadata: str | None = None,
        **grants: object,
    ) -> str:
        video = api.VideoGrants(room_join=True, room=room or room_name, **grants)  # type: ignore[arg-type]
        token = (
            api.AccessToken(local_server.API_KEY, local_server.API_SECRET)
            .with_identity(identity)
            .with_grants(video)
        )
        if name is not None:
            token = token.with_name(name)
        if metadata is not None:
            token = token.with_metadata(metadata)
        return token.to_jwt()

    return factory


@pytest.fixture(scope="session")
def livekit_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[local_server.LocalCluster]:
    """A private redis-server and two livekit-server nodes sharing it, for the whole session.

    Skipped only when ``redis-server`` is not installed (``.ci/run`` installs it and sets
    ``LIVEKIT_PY_REQUIRE_REDIS=1``, which turns the skip into a failure).
    """
    if shutil.which(local_server.REDIS_SERVER) is None:
        reason = (
            f"{local_server.REDIS_SERVER} is not installed; the cluster tests need it"
            " (Debian: apt-get install redis-server; .ci/run installs it)"
        )
        if os.environ.get("LIVEKIT_PY_REQUIRE_REDIS"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = local_server.start_cluster(tmp_path_factory.mktemp("cluster"), nodes=2)
    try:
        yield cluster
    finally:
        cluster.stop()
