"""Exceptions shared by every layer of livekit-py."""

from __future__ import annotations


class ConnectError(Exception):
    """Joining a room failed: rejected token, unreachable server, timeout, or a
    media connection that could not be established. The message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
