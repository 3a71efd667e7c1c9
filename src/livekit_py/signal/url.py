"""Building the signal WebSocket URL the LiveKit server expects."""

from __future__ import annotations

import platform
from urllib.parse import urlencode, urlsplit, urlunsplit

from livekit.protocol import models as proto_models

from ..version import __version__
from . import client_protocol

# The signal protocol version we speak: 16 adds non-error request responses and
# room moves to what the dual peer connection clients use. (17 marks packet
# trailer support too, but the server decides that from the capabilities in
# client_protocol, sent as the comma-separated `capabilities` URL parameter.)
PROTOCOL_VERSION = 16

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def base_ws_url(url: str) -> str:
    """Normalize a user-given server URL to its ``ws(s)://host[:port]/prefix`` form.

    ``ws://``, ``wss://``, ``http://`` and ``https://`` are accepted, with or
    without a trailing slash; anything else is a ValueError.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a non-empty string such as ws://127.0.0.1:7880")
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"url must start with ws://, wss://, http:// or https://, got {url!r}")
    if not parts.netloc:
        raise ValueError(f"url has no host: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/rtc"):
        path = path[: -len("/rtc")]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def rtc_url(
    url: str,
    token: str,
    *,
    auto_subscribe: bool,
    adaptive_stream: bool = False,
    reconnect: bool = False,
    participant_sid: str | None = None,
    reconnect_reason: int | None = None,
) -> str:
    """The full ``.../rtc?...`` URL with the access token and client parameters."""
    params: dict[str, str] = {
        "access_token": token,
        "auto_subscribe": "1" if auto_subscribe else "0",
        "adaptive_stream": "1" if adaptive_stream else "0",
        "sdk": "python",
        "version": __version__,
        "protocol": str(PROTOCOL_VERSION),
        # what the other participants may assume we understand (RPC v2, inline and
        # compressed data streams), as the official SDKs advertise it
        "client_protocol": str(client_protocol.CLIENT_PROTOCOL),
        "os": platform.system().lower(),
        "os_version": platform.release(),
    }
    if client_protocol.CLIENT_CAPABILITIES:
        params["capabilities"] = ",".join(
            proto_models.ClientInfo.Capability.Name(cap)
            for cap in client_protocol.CLIENT_CAPABILITIES
        )
    if reconnect:
        params["reconnect"] = "1"
        if participant_sid:
            params["sid"] = participant_sid
        if reconnect_reason is not None:
            params["reconnect_reason"] = str(reconnect_reason)
    return f"{base_ws_url(url)}/rtc?{urlencode(params)}"


def redact(url: str) -> str:
    """``url`` with the access token replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = "&".join(
        "access_token=<redacted>" if kv.startswith("access_token=") else kv
        for kv in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
